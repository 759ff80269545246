"""Compiles models to Halide projects, builds them, runs them and compares
their outputs with qdsl's reference executor.

    check_codegen.py --qdsl build/bin/qdsl --root REPO --work DIR CASE...

Each case is compiled for its target, built with `qdsl build`, run by the
generated `predict` on random NHWC input with random weights, and compared
with `qdsl run` on the same input and weights. The error is normwise,
max|y - ref| / max|ref|, and must stay within 1e-4. Cases whose target does
not run here (ARM) are only built; the OpenCL case is skipped, with a
message, when no OpenCL platform is installed.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

TOLERANCE = 1e-4

# Cases also run in PyTorch (bench/pytorch_quadranet.py) on the same
# weights, exported with `qdsl weights export` and imported back.
PYTORCH = {"fashion_mnist": "fashion_mnist", "quadranet36_t": "quadranet36_t"}
# Cases whose training step (`qdsl run --train`, the reference executor) is
# also compared with PyTorch's autograd: the loss and every parameter's
# gradient, on the same weights, input and labels, with label smoothing.
GRADIENTS = {"fashion_mnist", "quadranet36_t"}
GRADIENT_TOLERANCE = 1e-3

# name: (model file relative to the repository, model, target, batch,
#        weight std for `qdsl weights init --random-std`, extra flags)
CASES = {
    "families": ("test/codegen/families.qd", "Families", "x86-64-avx2", 3, 0.5, []),
    "head": ("test/codegen/families.qd", "Head", "x86-64-avx2", 5, 0.5, []),
    "unfused": ("test/codegen/families.qd", "Families", "x86-64-avx2", 2, 0.5,
                ["--expand-qdwconv"]),
    "xor": ("examples/xor_neuron.qd", "XorNeuron", "x86-64-avx2", 9, 1.0, []),
    "fashion_mnist": ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST",
                      "x86-64-avx2", 4, 0.3, []),
    "quadranet36_t": ("examples/quadranet36_t.qd", "QuadraNet36_T", "x86-64-avx2",
                      1, 0.05, []),
    "opencl": ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST", "opencl", 2,
               0.3, []),
    # AVX-512 (16-float vectors: other register blocks and tails than AVX2's),
    # where the CPU has it.
    "avx512_families": ("test/codegen/families.qd", "Families", "x86-64-avx512", 3, 0.5, []),
    "avx512_fashion_mnist": ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST",
                             "x86-64-avx512", 4, 0.3, []),
    # Training projects: the generated step's loss and gradients against the
    # reference executor's; the Fashion-MNIST one is also trained.
    "train_families": ("test/codegen/families.qd", "Families", "x86-64-avx2", 3, 0.5,
                       ["--train", "--label-smoothing", "0.1"]),
    "train_paper": ("test/codegen/families.qd", "Families", "x86-64-avx2", 2, 0.5,
                    ["--train", "--memory-policy", "paper"]),
    "train_input_qdwconv": ("test/codegen/families.qd", "InputQDWConv", "x86-64-avx2", 3,
                            0.5, ["--train"]),
    "train_flat_mlp": ("test/codegen/families.qd", "FlatMLP", "x86-64-avx2", 3, 0.5,
                       ["--train"]),
    "train_wide_mlp": ("test/codegen/families.qd", "WideMLP", "x86-64-avx2", 3, 0.5,
                       ["--train"]),
    "train_fashion_mnist": ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST",
                            "x86-64-avx2", 4, 0.3, ["--train"]),
    "avx512_train_families": ("test/codegen/families.qd", "Families", "x86-64-avx512", 3,
                              0.5, ["--train", "--label-smoothing", "0.1"]),
    "avx512_train_flat_mlp": ("test/codegen/families.qd", "FlatMLP", "x86-64-avx512", 3, 0.5,
                              ["--train"]),
    "avx512_train_wide_mlp": ("test/codegen/families.qd", "WideMLP", "x86-64-avx512", 3, 0.5,
                              ["--train"]),
    # ARM (check_arm): kernels built here, predict cross-compiled and run
    # under qemu-aarch64, against the reference and the x86 build.
    "arm": ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST", "arm64-a76", 2,
            0.3, []),
    "arm_quadranet25_t": ("examples/quadranet25_t.qd", "QuadraNet25_T", "arm64-a76", 1,
                          0.05, []),
    # The cuda target (check_cuda): every kernel's arithmetic on the CPU
    # emulation against the reference, the sources built by nvcc for sm_80
    # and sm_90, and run on a GPU where nvidia-smi finds one.
    "cuda_families": ("test/codegen/families.qd", "Families", "cuda", 3, 0.5, []),
    "cuda_unfused": ("test/codegen/families.qd", "Families", "cuda", 2, 0.5,
                     ["--expand-qdwconv"]),
    "cuda_head": ("test/codegen/families.qd", "Head", "cuda", 5, 0.5, []),
    "cuda_xor": ("examples/xor_neuron.qd", "XorNeuron", "cuda", 9, 1.0, []),
    "cuda_fashion_mnist": ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST", "cuda", 4,
                           0.3, []),
    "cuda_quadranet36_t": ("examples/quadranet36_t.qd", "QuadraNet36_T", "cuda", 1, 0.05, []),
    # The training step on the CPU emulation against `qdsl run --train`.
    "cuda_train_families": ("test/codegen/families.qd", "Families", "cuda", 3, 0.5,
                            ["--train", "--label-smoothing", "0.1"]),
    "cuda_train_paper": ("test/codegen/families.qd", "Families", "cuda", 2, 0.5,
                         ["--train", "--memory-policy", "paper"]),
    "cuda_train_input_qdwconv": ("test/codegen/families.qd", "InputQDWConv", "cuda", 3, 0.5,
                                 ["--train"]),
    "cuda_train_fashion_mnist": ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST", "cuda",
                                 4, 0.3, ["--train"]),
}
# Cases whose CUDA sources nvcc also compiles (all --all-examples cases too);
# cuda_xor, the smallest, puts an nvcc build in the medium tier.
CUDA_BUILT = {"cuda_xor", "cuda_fashion_mnist", "cuda_quadranet36_t", "cuda_families",
              "cuda_train_fashion_mnist"}
# On a GPU, bf16 tensor cores against the double-precision reference.
BF16_TOLERANCE = 2e-2


def example_cases(root):
    """Every model of examples/ on every target (search spaces excluded)."""
    cases = {}
    examples = os.path.join(root, "examples")
    for name in sorted(os.listdir(examples)):
        if not name.endswith(".qd"):
            continue
        text = open(os.path.join(examples, name)).read()
        for line in text.splitlines():
            if line.startswith("model "):
                model = line.split()[1].split("(")[0].split("{")[0]
                big = "224" in text
                for target in ("x86-64-avx2", "x86-64-avx512", "opencl", "arm64-a76", "cuda"):
                    key = "%s@%s" % (name[:-3], target)
                    cases[key] = ("examples/" + name, model, target, 1 if big else 2,
                                  0.05 if big else 0.3, [])
    return cases


def run(cmd, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (
            result.returncode, " ".join(cmd), result.stdout[-4000:], result.stderr[-4000:]))
    return result


def input_shape(model_mlir):
    # The model's input type, e.g. tensor<?x28x28x1xf32>, from model.mlir.
    with open(model_mlir) as f:
        for line in f:
            if "func.func @" in line:
                start = line.index("tensor<?x") + len("tensor<?x")
                dims = line[start:line.index("xf32>", start)].split("x")
                return [int(d) for d in dims]
    raise RuntimeError("no model in " + model_mlir)


def have_avx512(qdsl):
    """Whether this CPU runs the x86-64-avx512 target's kernels: `qdsl
    machine` refuses a target whose CPU features (codegen/Targets.cpp) this
    CPU lacks, naming the first one missing."""
    probe = subprocess.run([qdsl, "machine", "--threads", "1", "--target", "x86-64-avx512"],
                           capture_output=True, text=True)
    return probe.returncode == 0, probe.stderr.strip()


def have_opencl():
    vendors = "/etc/OpenCL/vendors"
    return os.path.isdir(vendors) and any(f.endswith(".icd") for f in os.listdir(vendors))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    size = struct.unpack("<Q", data[:8])[0]
    header = __import__("json").loads(data[8:8 + size])
    out = {}
    for key, entry in header.items():
        if key != "__metadata__":
            begin, end = entry["data_offsets"]
            out[key] = np.frombuffer(data[8 + size + begin:8 + size + end],
                                     "<f4").reshape(entry["shape"])
    return out


def check_pytorch(name, qd, model, work, args):
    """PyTorch on the same weights and input; weights survive export/import."""
    weights = os.path.join(work, "w.safetensors")
    torch_weights = os.path.join(work, "torch.safetensors")
    back = os.path.join(work, "back.safetensors")
    run([args.qdsl, "weights", "export", qd, "--model", model, weights, "-o", torch_weights])
    run([args.qdsl, "weights", "import", qd, "--model", model, torch_weights, "-o", back])
    original, imported = read_safetensors(weights), read_safetensors(back)
    if original.keys() != imported.keys() or any(
            not np.array_equal(original[k], imported[k]) for k in original):
        raise RuntimeError("export then import does not give the same weights")
    result = run([sys.executable, os.path.join(args.root, "bench", "pytorch_quadranet.py"),
                  "compare", "--model", PYTORCH[name], "--weights", torch_weights,
                  "--input", os.path.join(work, "x.npy"),
                  "--expect", os.path.join(work, "y.npy"), "--tolerance", str(TOLERANCE)])
    print("%-14s pytorch %s" % ("", result.stdout.strip()))
    if name in GRADIENTS:
        check_gradients(name, qd, model, work, args)


def check_gradients(name, qd, model, work, args):
    x = os.path.join(work, "x.npy")
    classes = np.load(os.path.join(work, "y.npy")).shape[-1]
    labels = os.path.join(work, "labels.npy")
    np.save(labels, (np.arange(np.load(x).shape[0]) * 7 % classes).astype(np.float32))
    grads = os.path.join(work, "g.safetensors")
    torch_grads = os.path.join(work, "torch_g.safetensors")
    run([args.qdsl, "run", qd, "--model", model, "--train", "--weights",
         os.path.join(work, "w.safetensors"), "--input", x, "--labels", labels,
         "--label-smoothing", "0.1", "-o", grads])
    run([args.qdsl, "weights", "export", qd, "--model", model, grads, "-o", torch_grads])
    result = run([sys.executable, os.path.join(args.root, "bench", "pytorch_quadranet.py"),
                  "grad", "--model", PYTORCH[name], "--weights",
                  os.path.join(work, "torch.safetensors"), "--input", x, "--labels", labels,
                  "--expect", torch_grads, "--label-smoothing", "0.1",
                  "--tolerance", str(GRADIENT_TOLERANCE)])
    print("%-14s pytorch %s" % ("", result.stdout.strip()))


def flag_value(flags, name, default):
    return flags[flags.index(name) + 1] if name in flags else default


def safetensors_metadata(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        return __import__("json").loads(f.read(size)).get("__metadata__", {})


def check_training_step(name, qd, model, work, flags, args, build="build"):
    """The generated training step against `qdsl run --train`: the loss and
    every weight's gradient, on the same weights, batch and labels (the
    reference's gradients do not depend on the memory policy)."""
    x = os.path.join(work, "x.npy")
    classes = np.load(os.path.join(work, "y.npy")).shape[-1]
    labels = os.path.join(work, "labels.npy")
    np.save(labels, (np.arange(np.load(x).shape[0]) * 7 % classes).astype(np.float32))
    weights = os.path.join(work, "w.safetensors")
    grads, ref = os.path.join(work, "g.safetensors"), os.path.join(work, "g_ref.safetensors")
    smoothing = flag_value(flags, "--label-smoothing", "0")
    start = time.time()
    run([os.path.join(work, build, "train"), "--gradients", grads, "--input", x,
         "--labels", labels, "--weights", weights])
    ran = time.time() - start
    run([args.qdsl, "run", qd, "--model", model, "--train", "--weights", weights, "--input", x,
         "--labels", labels, "--label-smoothing", smoothing, "-o", ref])
    got, want = read_safetensors(grads), read_safetensors(ref)
    if got.keys() != want.keys():
        raise RuntimeError("gradients of %s, expected %s" % (sorted(got), sorted(want)))
    loss = float(safetensors_metadata(grads)["qdsl.loss"])
    ref_loss = float(safetensors_metadata(ref)["qdsl.loss"])
    loss_error = abs(loss - ref_loss) / max(abs(ref_loss), 1e-30)
    worst, where = 0.0, ""
    for key in want:
        error = float(np.abs(got[key] - want[key]).max()) / max(float(np.abs(want[key]).max()), 1e-30)
        if not np.isfinite(got[key]).all():
            error = float("inf")
        if error > worst:
            worst, where = error, key
    ok = loss_error <= TOLERANCE and worst <= TOLERANCE
    print("%-28s train step: loss %.6g vs %.6g (%.1e), %d gradients, worst %.2e (%s), "
          "step %.2f s  %s" % ("", loss, ref_loss, loss_error, len(want), worst, where, ran,
                               "ok" if ok else "FAILED"))
    if not ok:
        raise RuntimeError("the generated training step does not match the reference")


def read_metrics(path):
    return [__import__("json").loads(line) for line in open(path)]


def check_trainer(work, args):
    """Trains Fashion-MNIST to >= 85% test top-1 in a bounded run; checks that
    --resume continues exactly and that a diverging run stops naming the step."""
    small = ["--train-subset", "256", "--test-subset", "64", "--batch", "32", "--seed", "3"]
    train = os.path.join(work, "build", "train")
    out = os.path.join(work, "run")
    start = time.time()
    result = run([train, "--train-subset", str(args.train_examples),
                  "--epochs", str(args.train_epochs), "--batch", "64", "--out", out])
    seconds = time.time() - start
    epochs = [m for m in read_metrics(os.path.join(out, "metrics.jsonl")) if m["event"] == "epoch"]
    top1 = epochs[-1]["test_top1"]
    print("%-28s trained %d examples x %d epochs in %.0f s: test top-1 %.2f%% (goal 85%%)  %s"
          % ("", args.train_examples, args.train_epochs, seconds, 100 * top1,
             "ok" if top1 >= 0.85 else "FAILED"))
    if top1 < 0.85:
        raise RuntimeError("Fashion-MNIST reached %.2f%% test top-1, below 85%%:\n%s"
                           % (100 * top1, result.stdout[-2000:]))
    weights = os.path.join(out, "weights.safetensors")
    run([os.path.join(work, "build", "predict"), "--weights", weights, "--input",
         os.path.join(work, "x.npy"), "--output", os.path.join(work, "trained.npy")])

    # Two epochs straight, and a run stopped inside epoch 1 then resumed:
    # the same weights, bit for bit.
    augmented = small + ["--crop", "2", "--flip"]
    straight, split = os.path.join(work, "straight"), os.path.join(work, "split")
    run([train] + augmented + ["--epochs", "2", "--out", straight])
    run([train] + augmented + ["--epochs", "2", "--steps", "5", "--out", split])
    run([train] + augmented + ["--epochs", "2", "--resume", "--out", split])
    a = read_safetensors(os.path.join(straight, "weights.safetensors"))
    b = read_safetensors(os.path.join(split, "weights.safetensors"))
    if a.keys() != b.keys() or any(not np.array_equal(a[k], b[k]) for k in a):
        raise RuntimeError("--resume after step 5 did not end with the weights of a straight run")
    print("%-28s stopped at step 5 and resumed: the same weights as a straight run" % "")

    # A learning rate that blows the weights up: stopped at the step, with
    # the last checkpoint left as it was.
    diverge = os.path.join(work, "diverge")
    run([train] + small + ["--epochs", "1", "--out", diverge])
    checkpoint = os.path.join(diverge, "checkpoint.safetensors")
    before = open(checkpoint, "rb").read()
    expect_failure([train] + small + ["--epochs", "3", "--lr", "1e30", "--warmup-steps", "0",
                                      "--resume", "--out", diverge],
                   "step 10 (epoch 2): the ")
    if open(checkpoint, "rb").read() != before:
        raise RuntimeError("a stopped run changed the last checkpoint")
    expect_failure([train, "--dataset", "idx", "--train-images", os.path.join(work, "x.npy"),
                    "--train-labels", os.path.join(work, "labels.npy"), "--test-images", "none",
                    "--test-labels", "none", "--out", os.path.join(work, "bad")],
                   "x.npy")
    print("%-28s a diverging run stops naming its step; a bad data file is named" % "")


def expect_failure(cmd, message):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode == 0 or message not in result.stderr:
        raise RuntimeError("expected %r to fail with %r; got exit %d and:\n%s"
                           % (" ".join(cmd), message, result.returncode, result.stderr))


def check_errors(work, args):
    """predict refuses input and weights that do not fit, naming what is wrong."""
    predict = os.path.join(work, "build", "predict")
    out = os.path.join(work, "bad.npy")
    wrong_shape = os.path.join(work, "wrong_shape.npy")
    np.save(wrong_shape, np.zeros((2, 28, 28, 3), np.float32))
    expect_failure([predict, "--input", wrong_shape, "--output", out],
                   "has shape [2, 28, 28, 3]; model QuadraNet_FashionMNIST takes [28, 28, 1]")
    doubles = os.path.join(work, "doubles.npy")
    np.save(doubles, np.zeros((1, 28, 28, 1), np.float64))
    expect_failure([predict, "--input", doubles, "--output", out], "holds float64 data")
    weights = read_safetensors(os.path.join(work, "w.safetensors"))
    partial = {k: v for k, v in weights.items() if k != "head.fc.bias"}
    partial["extra"] = np.zeros(3, np.float32)
    partial["stem.conv.bias"] = np.zeros(5, np.float32)
    bad_weights = os.path.join(work, "bad.safetensors")
    write_safetensors(bad_weights, partial)
    x = os.path.join(work, "x.npy")
    for message in ("missing tensor 'head.fc.bias' [10]", "unexpected tensor 'extra'",
                    "tensor 'stem.conv.bias' has shape [5], expected [32]"):
        expect_failure([predict, "--weights", bad_weights, "--input", x, "--output", out], message)
    expect_failure([predict, "--weights", os.path.join(work, "missing.safetensors"),
                    "--input", x, "--output", out], "cannot read")
    expect_failure([predict, "--input", x], "--input and --output are required")
    if os.path.exists(out):
        raise RuntimeError("a failed predict left an output file behind")
    print("%-14s predict rejects wrong shapes, dtypes and weights, naming them" % "")


def write_safetensors(path, tensors):
    header, data, offset = {}, b"", 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, "<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = __import__("json").dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def cache_report(build_output):
    """(from cache, to generate) as CMake printed them at configure time."""
    match = re.search(r"qdsl kernels: (\d+) from the cache .*, (\d+) to generate", build_output)
    if not match:
        raise RuntimeError("the build did not report the kernel cache:\n" + build_output[-2000:])
    return int(match.group(1)), int(match.group(2))


def check_kernel_cache(args):
    """Projects share compiled kernels through the cache: the second build of
    a model takes every kernel from it (and never builds the generator), a
    damaged entry is regenerated and replaced, and the results are equal."""
    work = os.path.join(args.work, "kernel_cache")
    shutil.rmtree(work, ignore_errors=True)
    cache = os.path.join(work, "cache")
    qd = os.path.join(args.root, "examples/fashion_mnist.qd")
    start = time.time()

    def build(name, cache_dir=cache):
        directory = os.path.join(work, name)
        run([args.qdsl, "compile", qd, "--target", "x86-64-avx2", "-o", directory,
             "--kernel-cache", cache_dir])
        output = run([args.qdsl, "build", directory, "-j", str(args.jobs)]).stdout
        return directory, output

    first, output = build("first")
    hits, misses = cache_report(output)
    if hits != 0 or misses == 0:
        raise RuntimeError("a fresh cache gave %d hits, %d misses" % (hits, misses))
    second, output = build("second")
    if cache_report(output) != (misses, 0):
        raise RuntimeError("the second build reported %s, expected (%d, 0)"
                           % (cache_report(output), misses))
    if os.path.exists(os.path.join(second, "build", "qdsl_generators")):
        raise RuntimeError("the generator was built although every kernel was cached")
    # Damage one entry: it is ignored, regenerated and replaced.
    entries = sorted(glob.glob(os.path.join(cache, "halide-*", "qk_[0-9a-f]*")))
    damaged = os.path.join(entries[0], os.path.basename(entries[0]) + ".a")
    with open(damaged, "ab") as f:
        f.write(b"damage")
    third, output = build("third")
    if cache_report(output) != (misses - 1, 1):
        raise RuntimeError("after damaging one entry: %s" % (cache_report(output),))
    manifest = dict(line.split() for line in open(os.path.join(entries[0], "manifest.txt")))
    with open(damaged, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != manifest[os.path.basename(damaged)]:
            raise RuntimeError("the damaged entry was not replaced")
    _, output = build("uncached", "none")
    if "no kernel cache" not in output:
        raise RuntimeError("--kernel-cache none still used a cache")
    x = np.random.default_rng(0).standard_normal([4, 28, 28, 1], dtype=np.float32)
    np.save(os.path.join(work, "x.npy"), x)
    outputs = []
    for directory in (first, second, third):
        y = os.path.join(directory, "y.npy")
        run([os.path.join(directory, "build", "predict"), "--input", os.path.join(work, "x.npy"),
             "--output", y])
        outputs.append(np.load(y))
    if not all(np.array_equal(outputs[0], o) for o in outputs[1:]):
        raise RuntimeError("projects built from the cache compute something else")
    print("%-28s %d kernels cached and reused, a damaged entry replaced, outputs equal, %.0f s  ok"
          % ("kernel_cache", misses, time.time() - start))
    return True


def check_profile(args):
    """qdsl profile measures a small space and writes a profile that qdsl
    estimate reads; the configurations it timed are estimated by their
    medians, and the emitted cost model agrees with estimate."""
    work = os.path.join(args.work, "profile")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    space = os.path.join(args.root, "test/codegen/tiny_space.qd")
    profile = os.path.join(work, "tiny.json")
    start = time.time()
    out = run([args.qdsl, "profile", space, "--target", "x86-64-avx2", "-o", profile,
               "--architectures", "1", "--refine", "1", "--rounds", "2", "--repeat", "5",
               "--batches", "1,2", "--work", os.path.join(work, "projects")]).stdout
    for expected in ("building the cover architectures", "refining where the error is largest",
                     "end to end on the profiling architectures", "wrote " + profile):
        if expected not in out:
            raise RuntimeError("qdsl profile did not print '%s':\n%s" % (expected, out))
    with open(profile) as f:
        data = json.load(f)
    families = set(data["families"])
    needed = {"conv_ln", "ln_qdwconv_scale_residual", "ln_mlp_scale_residual",
              "pool_ln_linear"}
    if not needed <= families or not data["calibrated"] or not data["measurements"]:
        raise RuntimeError("profile lacks families %s" % sorted(needed - families))
    if {p["batch"] for p in data["passes"]} != {1, 2} or len(data["passes"]) < 8:
        raise RuntimeError("profile passes: %s" % data["passes"])
    estimate = json.loads(run([args.qdsl, "estimate", space, "--choices=1,2", "--device",
                               profile, "--json"]).stdout)
    if any(k["predictor"] != "measured" for k in estimate["kernels"]):
        raise RuntimeError("a profiled configuration was not estimated by its median")
    fitted = json.loads(run([args.qdsl, "estimate", space, "--choices=1,2", "--device",
                             profile, "--json", "--fitted-only"]).stdout)
    if any(k["predictor"] == "measured" for k in fitted["kernels"]):
        raise RuntimeError("--fitted-only still used measured medians")
    # Batch 4 was not profiled: every kernel comes from a fitted predictor.
    other = json.loads(run([args.qdsl, "estimate", space, "--choices=0,0", "--device",
                            profile, "--json", "--batch", "4"]).stdout)
    if any(k["predictor"] == "measured" for k in other["kernels"]) or other["total_ms"] <= 0:
        raise RuntimeError("batch 4 estimate: %s" % other)
    # The profile says where it was made.
    machine = data.get("machine", {})
    if machine.get("fma_peak_gflops", 0) <= 0 or machine.get("halide_version") in (None, "") \
            or machine.get("threads") != 2:
        raise RuntimeError("profile's machine record: %s" % machine)
    # Calibrating it on this machine at 1 thread: the factors are real
    # measurements (1 thread is slower than 2 for the bigger kernels), the
    # record says what it came from, and estimate reads the result.
    calibrated = os.path.join(work, "calibrated.json")
    out = run([args.qdsl, "profile", space, "--calibrate", profile, "-o", calibrated,
               "--threads", "1", "--rounds", "2", "--batches", "1,2",
               "--work", os.path.join(work, "calibration")]).stdout
    for expected in ("calibrating", "calibration kernels", "wrote " + calibrated):
        if expected not in out:
            raise RuntimeError("qdsl profile --calibrate did not print '%s':\n%s"
                               % (expected, out))
    with open(calibrated) as f:
        cal = json.load(f)
    record = cal.get("calibration", {})
    if record.get("base") != "tiny.json" or set(record.get("factors", {})) != families \
            or cal["device"]["threads"] != 1 or cal["machine"]["threads"] != 1 \
            or not all(set(f["by_batch"]) == {"1", "2"} and 0.2 < min(f["by_batch"].values())
                       and max(f["by_batch"].values()) < 5 for f in record["factors"].values()) \
            or record.get("base_machine", {}).get("threads") != 2:
        raise RuntimeError("calibrated profile: %s" % json.dumps(record)[:2000])
    run([args.qdsl, "estimate", space, "--choices=1,2", "--device", calibrated, "--json"])
    # A damaged profile is refused with the field at fault.
    data["device"]["peak_gflops"] = "fast"
    bad = os.path.join(work, "bad.json")
    with open(bad, "w") as f:
        json.dump(data, f)
    expect_failure([args.qdsl, "estimate", space, "--device", bad],
                   "device.peak_gflops: expected a number")
    print("%-28s %d measurements, %d families, estimate at batch 1 %.3f ms, calibrated for "
          "1 thread (overall factor at batch 2: %.2f), %.0f s  ok"
          % ("profile", len(data["measurements"]), len(families), estimate["total_ms"],
             record["overall"]["by_batch"]["2"], time.time() - start))
    return True


def check_search_resume(program, work):
    """The search program killed (SIGKILL) after an epoch's checkpoint and
    resumed ends where an unbroken run ends: the same logits, epochs and
    supernet weights, bit for bit. With --gates all, which recomputes every
    candidate."""
    flags = ["--epochs", "4", "--warmup-epochs", "1", "--train-subset", "12000",
             "--validation", "2000", "--batch", "32", "--arch-lr", "0.0125", "--threads", "2",
             "--gates", "all"]
    straight, broken = os.path.join(work, "unbroken"), os.path.join(work, "broken")
    run([program] + flags + ["--out", straight])
    child = subprocess.Popen([program] + flags + ["--out", broken], stdout=subprocess.DEVNULL)
    checkpoint = os.path.join(broken, "checkpoint.safetensors")
    while not os.path.exists(checkpoint) and child.poll() is None:
        time.sleep(0.01)
    child.kill()
    child.wait()
    with open(os.path.join(broken, "search.json")) as f:
        done = len(json.load(f)["epochs"])
    if done >= 4:
        raise RuntimeError("the search finished before it could be killed")
    again = subprocess.run([program] + flags + ["--out", broken], capture_output=True, text=True)
    if again.returncode == 0 or "continue it with --resume" not in again.stderr:
        raise RuntimeError("a second search into a stopped one's --out: %d %s"
                           % (again.returncode, again.stderr))
    other = subprocess.run([program] + flags[:-2] + ["--gates", "pair", "--out", broken,
                                                     "--resume"], capture_output=True, text=True)
    if other.returncode == 0 or "was searched with --gates all, not pair" not in other.stderr:
        raise RuntimeError("--resume with other flags: %d %s" % (other.returncode, other.stderr))
    resumed = run([program] + flags + ["--out", broken, "--resume"]).stdout
    if "resumed from" not in resumed:
        raise RuntimeError("search --resume said: %s" % resumed)
    # Damaged state is refused naming the file, never resumed from: a
    # truncated checkpoint.
    with open(checkpoint, "rb") as f:
        whole = f.read()
    with open(checkpoint, "wb") as f:
        f.write(whole[:len(whole) // 2])
    cut = subprocess.run([program] + flags + ["--out", broken, "--resume"], capture_output=True,
                         text=True)
    if cut.returncode == 0 or "checkpoint.safetensors" not in cut.stderr:
        raise RuntimeError("--resume from a truncated checkpoint: %d %s"
                           % (cut.returncode, cut.stderr))
    with open(checkpoint, "wb") as f:
        f.write(whole)
    # search --score: a path that names no candidate, and a file of none.
    for text, expected in (("0,99\n", ":1: the path '0,99': layer"), ("# none\n", "lists no path")):
        paths = os.path.join(work, "paths.txt")
        with open(paths, "w") as f:
            f.write(text)
        bad = subprocess.run([program, "--score", paths, "--out", broken, "--train-subset",
                              "12000", "--validation", "2000"], capture_output=True, text=True)
        if bad.returncode == 0 or expected not in bad.stderr:
            raise RuntimeError("search --score %r: %d %s" % (text, bad.returncode, bad.stderr))
    results = []
    for directory in (straight, broken):
        with open(os.path.join(directory, "search.json")) as f:
            result = json.load(f)
        epochs = [{k: v for k, v in e.items() if k != "seconds"} for e in result["epochs"]]
        with open(os.path.join(directory, "supernet.safetensors"), "rb") as f:
            results.append((result["layers"], epochs, f.read()))
    for what, a, b in zip(("logits", "epochs", "supernet weights"), *results):
        if a != b:
            raise RuntimeError("killed after %d epochs and resumed: the %s differ from an "
                               "unbroken search's" % (done, what))


def check_search_evaluation(report, limit, additive):
    """The supernet's ranking (--rank-samples), the retraining seeds and the
    random baselines of the derived model's latency (--baselines, Welch)."""
    derived = report["derived"]
    ranking = report["supernet_ranking"]
    if ranking["derived"]["choices"] != derived["choices"] or \
            not 0 <= ranking["derived"]["accuracy"] <= 1 or ranking["random_count"] < 1:
        raise RuntimeError("supernet ranking: %s" % ranking)
    for r in ranking["random"]:
        picks = [int(p) for p in r["choices"].split(",")]
        if additive(picks) > limit + 1e-6 or r["choices"] == derived["choices"]:
            raise RuntimeError("a random architecture of the ranking breaks the limit or is "
                               "the derived one: %s" % r)
    above = sum(r["accuracy"] > ranking["derived"]["accuracy"] for r in ranking["random"])
    if ranking["derived_rank"] != above + 1:
        raise RuntimeError("derived rank %d, %d random above it" % (ranking["derived_rank"], above))
    if len(derived["test_accuracy_by_seed"]) != 2 or \
            derived["test_accuracy_by_seed"][0] != derived["test_accuracy"]:
        raise RuntimeError("retraining seeds: %s" % derived["test_accuracy_by_seed"])
    baselines = report["baselines"]
    target = report["devices"][0]["predicted_ms"]
    if not 1 <= len(baselines["models"]) <= 2:
        raise RuntimeError("baselines: %s" % baselines)
    for m in baselines["models"]:
        picks = [int(p) for p in m["choices"].split(",")]
        if abs(additive(picks) / target - 1) > 0.03 + 1e-6 or m["choices"] == derived["choices"] \
                or not 0 < m["accuracy"] <= 1:
            raise RuntimeError("a baseline off the derived model's latency: %s (%.4f ms)"
                               % (m, target))
    test = baselines["test"]
    if len(baselines["models"]) < 2:
        if test["p"] != 1:  # one baseline has no spread to test against
            raise RuntimeError("baselines' test with one baseline: %s" % baselines)
    elif not 0 <= test["p"] <= 1 or test["kind"] != "welch" or \
            (test["t"] > 0) != (baselines["searched_mean"] > baselines["baseline_mean"]):
        raise RuntimeError("baselines' test: %s" % baselines)


def check_search_calibration(args, space, searched, work):
    """A host profile made on another machine (the shipped one, its machine
    record edited) is calibrated on the space before qdsl search derives
    with it, and before compile --search writes the supernet's tables;
    --no-calibrate uses it as it is."""
    with open(os.path.join(args.root, "profiles", "host-fmnist.json")) as f:
        profile = json.load(f)
    device = profile["device"]["name"]
    profile["machine"]["cpu_model"] = "a CPU of another machine"
    profile["machine"]["fma_peak_gflops"] *= 0.4
    foreign = os.path.join(work, "foreign-host.json")
    with open(foreign, "w") as f:
        json.dump(profile, f)
    common = ["--device", foreign, "--only", device, "--latency-limit", "2ms", "--from-search",
              searched, "--retrain-epochs", "1", "--batch", "32", "--train-subset", "3000",
              "--test-subset", "1000", "--rank-samples", "0", "-j", str(args.jobs)]
    reports = {}
    for name, extra in (("calibrated", []), ("uncalibrated", ["--no-calibrate"])):
        directory = os.path.join(work, name)
        result = run([args.qdsl, "search", space, "-o", directory] + common + extra)
        with open(os.path.join(directory, "report.json")) as f:
            reports[name] = (json.load(f), result)
    report, result = reports["calibrated"]
    calibrated = os.path.join(work, "calibrated", "profiles", device + ".json")
    limit = report["devices"][0]
    if limit["profile"] != calibrated or limit.get("calibrated_from") != foreign or \
            limit["predicted_from"] != "measured on this machine" or \
            "calibrating it on 'TinySearch'" not in result.stdout:
        raise RuntimeError("qdsl search did not calibrate the foreign profile: %s\n%s"
                           % (limit, result.stdout[-3000:]))
    with open(calibrated) as f:
        record = json.load(f)
    if record["calibration"]["base"] != os.path.basename(foreign):
        raise RuntimeError("the calibrated profile's base: %s" % record["calibration"])
    # The loop closed: the measured latency against the calibrated
    # prediction, said when it is off by more than the profile's accuracy.
    for name, (r, out) in reports.items():
        check, limit = r["latency_check"][0], r["devices"][0]
        ratio = limit["measured_ms"] / limit["predicted_ms"]
        flagged = not check["within_tolerance"] or check["over_limit"]
        said = "measured on this machine for '%s'" % device in out.stdout and \
            check.get("remedy", "?") in out.stderr
        if abs(check["measured_over_predicted"] - ratio) > 1e-9 or \
                check["within_tolerance"] != (abs(ratio - 1) <= 0.15) or \
                check["over_limit"] != (limit["measured_ms"] > 2) or said != flagged or \
                (flagged and "--from-search %s " % searched not in check["remedy"]):
            raise RuntimeError("%s: latency_check %s against ratio %.3f\n%s"
                               % (name, check, ratio, out.stdout[-2000:]))
    plain, plain_result = reports["uncalibrated"]
    ratio = report["devices"][0]["measured_ms"] / report["devices"][0]["predicted_ms"]
    plain_ratio = plain["devices"][0]["measured_ms"] / plain["devices"][0]["predicted_ms"]
    # The calibration changed the predictions, towards what was measured.
    if report["devices"][0]["predicted_ms"] == plain["devices"][0]["predicted_ms"] or \
            abs(ratio - 1) >= abs(plain_ratio - 1):
        raise RuntimeError("calibrated measured/predicted %.3f, not %.3f" % (ratio, plain_ratio))
    if plain["devices"][0]["profile"] != foreign or "calibrated_from" in plain["devices"][0] or \
            plain["devices"][0]["predicted_from"] != "measured on another machine" or \
            "--no-calibrate" not in plain_result.stderr or \
            os.path.exists(os.path.join(work, "uncalibrated", "profiles")):
        raise RuntimeError("--no-calibrate: %s\n%s" % (plain["devices"], plain_result.stderr))
    # compile --search: the calibrated profile lands in the project, and its
    # tables differ from the uncalibrated ones; compiling the project again
    # with --no-calibrate leaves no calibration behind.
    project = os.path.join(work, "calibrated-supernet")
    tables = os.path.join(project, "search_constraints.h")
    compile_search = [args.qdsl, "compile", space, "--search", "--device", foreign, "--only",
                      device, "--latency-limit", "2ms", "-o", project]
    run(compile_search)
    with open(os.path.join(project, "profiles", device + ".json")) as f:
        if json.load(f)["calibration"]["base"] != os.path.basename(foreign):
            raise RuntimeError("compile --search did not calibrate the foreign profile")
    calibrated_tables = open(tables).read()
    run(compile_search + ["--no-calibrate"])
    if open(tables).read() == calibrated_tables or \
            os.path.exists(os.path.join(project, "profiles")):
        raise RuntimeError("compile --search --no-calibrate: the calibrated tables or profile "
                           "stayed")
    print("%-28s measured/predicted %.2f calibrated (%.2f not)  ok"
          % ("search calibration", ratio, plain_ratio))


def check_search(args):
    """qdsl search on a tiny space: a real (short) search whose derived model
    meets its limit, a derived.qd with the statistics of the space at its
    choices, and the supernet on the derived path computing what the fixed
    architecture computes with the same weights."""
    work = os.path.join(args.work, "search")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    start = time.time()
    space = os.path.join(args.root, "test/codegen/tiny_search_space.qd")
    profile = os.path.join(args.root, "test/tools/Inputs/test-profile.json")
    estimate = json.loads(run([args.qdsl, "estimate", space, "--device", profile, "--json"]).stdout)
    fastest = estimate["fixed_ms"] + sum(min(c["ms"] for c in l["candidates"])
                                         for l in estimate["layers"])
    slowest = estimate["fixed_ms"] + sum(max(c["ms"] for c in l["candidates"])
                                         for l in estimate["layers"])
    limit = fastest + 0.3 * (slowest - fastest)  # binds: most architectures are over it
    out_dir = os.path.join(work, "run")
    out = run([args.qdsl, "search", space, "--device", profile, "--latency-limit",
               "%.6fms" % limit, "-o", out_dir, "--epochs", "3", "--warmup-epochs", "1",
               "--retrain-epochs", "1", "--batch", "32", "--train-subset", "3000",
               "--validation", "1000", "--test-subset", "1000", "--arch-lr", "0.0125",
               "--rank-samples", "5", "--score-examples", "500", "--baselines", "2",
               "--retrain-seeds", "2", "-j", str(args.jobs)]).stdout
    with open(os.path.join(out_dir, "report.json")) as f:
        report = json.load(f)
    # The search program got the limit and the learning rate exactly (they
    # once went through a format that kept two decimals: 0.001 became 0).
    with open(os.path.join(out_dir, "search", "search.json")) as f:
        searched = json.load(f)
    got_limit = searched["devices"][0]["limit_ms"]
    if searched["settings"]["arch_lr"] != 0.0125 or \
            abs(got_limit - float("%.6f" % limit)) > 1e-12 * limit:
        raise RuntimeError("the search program ran with --arch-lr %s and limit %r ms, asked "
                           "0.0125 and %.6f" % (searched["settings"]["arch_lr"], got_limit, limit))
    device = report["devices"][0]
    if not device["within_limit"] or device["predicted_ms"] > limit * (1 + 1e-9):
        raise RuntimeError("derived model over its limit: %s" % device)
    if len(report["epochs"]) != 3 or report["epochs"][0]["phase"] != "warmup":
        raise RuntimeError("search epochs: %s" % report["epochs"])
    derived = report["derived"]
    if not 0.2 < derived["test_accuracy"] <= 1 or derived["measured_ms"] <= 0:
        raise RuntimeError("derived model: %s" % {k: derived[k] for k in derived if k != "train"})
    for name in ("derived.qd", "choices.txt", "weights.safetensors", "probabilities.svg",
                 "latency.svg", "accuracy-latency.svg"):
        if not os.path.exists(os.path.join(out_dir, name)):
            raise RuntimeError("qdsl search wrote no %s:\n%s" % (name, out))
    choices = open(os.path.join(out_dir, "choices.txt")).read().strip()
    if choices != derived["choices"]:
        raise RuntimeError("choices.txt %s, report %s" % (choices, derived["choices"]))
    # derived.qd: a model with the space's statistics at those choices.
    stats = lambda *a: json.loads(run([args.qdsl, "stats", "--json"] + list(a)).stdout)
    a, b = stats(os.path.join(out_dir, "derived.qd")), stats(space, "--choices=" + choices)
    for key in ("params", "macs"):
        if a[key] != b[key]:
            raise RuntimeError("derived.qd %s %s, space at %s %s" % (key, a[key],
                                                                      choices, b[key]))
    # What holds each layer, checked against the space's own table: a
    # candidate is held out exactly when taking it there alone would exceed
    # the limit.
    def additive(picks):
        return estimate["fixed_ms"] + sum(l["candidates"][p]["ms"]
                                          for l, p in zip(estimate["layers"], picks))
    def check_holds(report_derived):
        picks = [int(p) for p in report_derived["choices"].split(",")]
        layers = report_derived["layers"]
        if len(layers) != len(picks):
            raise RuntimeError("report layers: %s" % layers)
        for l, (layer, pick) in enumerate(zip(layers, picks)):
            held = set(layer["held_by"].get(device["device"], []))
            for c in range(len(estimate["layers"][l]["candidates"])):
                trial = list(picks)
                trial[l] = c
                # 1e-6 ms: the report's rounding of the table's figures.
                over = additive(trial) > limit + 1e-6
                near = abs(additive(trial) - limit) <= 1e-6
                if not near and over != (c in held):
                    raise RuntimeError("layer %s candidate %d: %s over the limit, held %s"
                                       % (layer["layer"], c, over, sorted(held)))
        return picks
    check_holds(derived)
    check_search_resume(os.path.join(out_dir, "supernet", "build", "search"), work)
    check_search_evaluation(report, limit, additive)
    # --derive=fill from the same search: within the limit, no cheaper than
    # the argmax's, and no single costlier switch left that fits.
    fill_dir = os.path.join(work, "fill")
    run([args.qdsl, "search", space, "--device", profile, "--latency-limit", "%.6fms" % limit,
         "-o", fill_dir, "--from-search", out_dir, "--derive", "fill", "--retrain-epochs", "1",
         "--batch", "32", "--train-subset", "3000", "--test-subset", "1000",
         "-j", str(args.jobs)])
    with open(os.path.join(fill_dir, "report.json")) as f:
        filled = json.load(f)
    fill_picks = check_holds(filled["derived"])
    fill_ms = filled["devices"][0]["predicted_ms"]
    if fill_ms > limit * (1 + 1e-9) or fill_ms < device["predicted_ms"] - 1e-9:
        raise RuntimeError("--derive=fill %s predicted %.4f ms (argmax %.4f, limit %.4f)"
                           % (filled["derived"]["choices"], fill_ms, device["predicted_ms"], limit))
    for l, pick in enumerate(fill_picks):
        for c, candidate in enumerate(estimate["layers"][l]["candidates"]):
            trial = list(fill_picks)
            trial[l] = c
            if candidate["ms"] > estimate["layers"][l]["candidates"][pick]["ms"] and \
                    additive(trial) < limit - 1e-6:
                raise RuntimeError("--derive=fill left %s -> candidate %d within the limit"
                                   % (filled["derived"]["choices"], c))
    if filled["settings"].get("from_search") != out_dir:
        raise RuntimeError("fill report settings: %s" % filled["settings"])
    # --derive accuracy from the same search: the best supernet score within
    # the limit, every scored architecture within it, the front undominated.
    accuracy_dir = os.path.join(work, "accuracy")
    run([args.qdsl, "search", space, "--device", profile, "--latency-limit", "%.6fms" % limit,
         "-o", accuracy_dir, "--from-search", out_dir, "--derive", "accuracy",
         "--retrain-epochs", "1", "--batch", "32", "--train-subset", "3000", "--test-subset",
         "1000", "--rank-samples", "0", "--score-examples", "500", "-j", str(args.jobs)])
    with open(os.path.join(accuracy_dir, "report.json")) as f:
        by_accuracy = json.load(f)
    pareto = by_accuracy["pareto"]
    best = max(e["accuracy"] for e in pareto["evaluated"])
    if by_accuracy["derived"]["choices"] != pareto["best"]["choices"] or \
            pareto["best"]["accuracy"] != best or \
            any(additive([int(p) for p in e["choices"].split(",")]) > limit + 1e-6
                for e in pareto["evaluated"]):
        raise RuntimeError("--derive accuracy: %s" % pareto)
    front = pareto["front"][device["device"]]
    for a in front:
        for e in pareto["evaluated"]:
            if e["predicted_ms"][device["device"]] < a["predicted_ms"][device["device"]] and \
                    e["accuracy"] > a["accuracy"]:
                raise RuntimeError("the Pareto front holds %s, which %s beats" % (a, e))
    if not os.path.exists(os.path.join(accuracy_dir, "pareto.svg")):
        raise RuntimeError("--derive accuracy wrote no pareto.svg")
    check_search_calibration(args, space, out_dir, work)
    # The supernet on that path, and the fixed architecture, on the same
    # weights and input.
    fixed = os.path.join(work, "fixed")
    run([args.qdsl, "compile", space, "--choices=" + choices, "--target", "x86-64-avx2",
         "-o", fixed])
    run([args.qdsl, "build", fixed, "-j", str(args.jobs)])
    names = os.path.join(work, "names.safetensors")
    run([args.qdsl, "weights", "init", space, "--choices=" + choices, "-o", names])
    supernet_weights = read_safetensors(os.path.join(out_dir, "search", "supernet.safetensors"))
    subset = {n: supernet_weights[n] for n in read_safetensors(names)}
    fixed_weights = os.path.join(work, "fixed.safetensors")
    write_safetensors(fixed_weights, subset)
    x = os.path.join(work, "x.npy")
    np.save(x, np.random.default_rng(5).standard_normal((3, 28, 28, 1)).astype(np.float32))
    y_super, y_fixed = os.path.join(work, "y_super.npy"), os.path.join(work, "y_fixed.npy")
    run([os.path.join(out_dir, "supernet", "build", "predict"), "--weights",
         os.path.join(out_dir, "search", "supernet.safetensors"), "--input", x, "--output",
         y_super, "--path", choices])
    run([os.path.join(fixed, "build", "predict"), "--weights", fixed_weights, "--input", x,
         "--output", y_fixed])
    # One path's weight step timed (search --benchmark), and its refusals.
    bench = json.loads(run([os.path.join(out_dir, "supernet", "build", "search"), "--benchmark",
                            "--path", choices, "--batch", "8", "--steps", "2",
                            "--threads", "2"]).stdout.strip().splitlines()[-1])
    if bench["path"] != choices or not bench["step_s"] > 0 or not bench["arena_mb"] > 0:
        raise RuntimeError("search --benchmark: %s" % bench)
    bad = subprocess.run([os.path.join(out_dir, "supernet", "build", "search"), "--benchmark",
                          "--path", "0"], capture_output=True, text=True)
    if bad.returncode != 2 or "--path gives 1 candidates; the supernet has" not in bad.stderr:
        raise RuntimeError("search --benchmark --path 0: %d %s" % (bad.returncode, bad.stderr))
    difference = float(np.max(np.abs(np.load(y_super) - np.load(y_fixed))))
    if difference > TOLERANCE:
        raise RuntimeError("supernet on path %s and the fixed model differ by %g"
                           % (choices, difference))
    print("%-28s limit %.4f ms, derived %s predicted %.4f ms, test top-1 %.1f%%, "
          "filled %s %.4f ms, supernet = fixed model within %.1e, %.0f s  ok"
          % ("search", limit, choices, device["predicted_ms"], 100 * derived["test_accuracy"],
             filled["derived"]["choices"], fill_ms, difference, time.time() - start))
    return True


SPECIAL = {"kernel_cache": check_kernel_cache, "profile": check_profile,
           "search": check_search}


def find_nvcc():
    """nvcc on PATH, else the CUDA toolkit's usual place; None without one."""
    found = shutil.which("nvcc")
    if found:
        return found
    return "/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None


def have_gpu():
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    result = subprocess.run([smi, "-L"], capture_output=True, text=True)
    return result.returncode == 0 and "GPU" in result.stdout


def normwise_error(y, ref):
    if y.shape != ref.shape:
        raise RuntimeError("output shape %s, reference %s" % (y.shape, ref.shape))
    return float(np.abs(y - ref).max()) / max(float(np.abs(ref).max()), 1e-30)


def predict_against_reference(qd, model, work, batch, std, predict, args):
    """Random NHWC input and weights (--random-std), the generated `predict`
    (a path, or a command line that runs it) on them and `qdsl run`: returns (the normwise error, max|ref|, the seconds
    predict ran, y); raises on a shape mismatch."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal([batch] + input_shape(os.path.join(work, "model.mlir")),
                            dtype=np.float32)
    np.save(os.path.join(work, "x.npy"), x)
    weights = os.path.join(work, "w.safetensors")
    run([args.qdsl, "weights", "init", qd, "--model", model, "--seed", "1",
         "--random-std", str(std), "-o", weights])
    start = time.time()
    command = predict if isinstance(predict, list) else [predict]
    run(command + ["--weights", weights, "--input", os.path.join(work, "x.npy"), "--output",
                   os.path.join(work, "y.npy")])
    ran = time.time() - start
    run([args.qdsl, "run", qd, "--model", model, "--weights", weights, "--input",
         os.path.join(work, "x.npy"), "-o", os.path.join(work, "ref.npy")])
    y = np.load(os.path.join(work, "y.npy"))
    ref = np.load(os.path.join(work, "ref.npy"))
    return normwise_error(y, ref), float(np.abs(ref).max()), ran, y


# Where Debian's arm64 cross toolchain keeps its C library: qemu-aarch64's
# -L, the dynamic loader's root for the cross-compiled programs.
ARM_SYSROOT = "/usr/aarch64-linux-gnu"


def check_arm(name, qd, model, work, batch, std, built, args):
    """An arm64-a76 project: every kernel library holds AArch64 code; the
    cross-compiled predict runs under qemu-aarch64 and agrees with the
    reference and with the x86 build of the model on the same input and
    weights. Without the cross compiler or qemu the run is skipped with a
    message."""
    # Kernels come as static libraries build/kernels/qk_*/qk_*.a (ELF
    # e_machine 183: AArch64).
    build = os.path.join(work, "build", "kernels")
    libraries = sorted(os.path.join(d, d + ".a") for d in os.listdir(build)
                       if d.startswith("qk_"))
    if not libraries:
        raise RuntimeError("no ARM kernel libraries were built")
    for lib in libraries:
        members = run(["ar", "t", os.path.join(build, lib)]).stdout.split()
        code = subprocess.run(["ar", "p", os.path.join(build, lib), members[0]],
                              capture_output=True).stdout
        if code[:4] != b"\x7fELF" or struct.unpack_from("<H", code, 18)[0] != 183:
            raise RuntimeError(lib + " does not hold AArch64 code")
    predict = os.path.join(work, "build", "cross", "predict")
    qemu = shutil.which("qemu-aarch64")
    if not os.path.exists(predict) or not qemu:
        print("%-28s built %d AArch64 kernel libraries in %.0f s; run SKIPPED: %s" % (
            name, len(libraries), built,
            "no cross compiler (install g++-aarch64-linux-gnu)" if not os.path.exists(predict)
            else "no qemu-aarch64 (install qemu-user)"))
        return True
    with open(predict, "rb") as f:
        if struct.unpack_from("<H", f.read(20), 18)[0] != 183:
            raise RuntimeError(predict + " is not an AArch64 program")
    error, scale, ran, y = predict_against_reference(
        qd, model, work, batch, std, [qemu, "-L", ARM_SYSROOT, predict], args)
    # The same model built for this machine, on the same input and weights.
    x86 = work + "-x86"
    shutil.rmtree(x86, ignore_errors=True)
    run([args.qdsl, "compile", qd, "--model", model, "--target", "x86-64-avx2", "-o", x86])
    run([args.qdsl, "build", x86, "-j", str(args.jobs)])
    run([os.path.join(x86, "build", "predict"), "--weights", os.path.join(work, "w.safetensors"),
         "--input", os.path.join(work, "x.npy"), "--output", os.path.join(x86, "y.npy")])
    against_x86 = normwise_error(y, np.load(os.path.join(x86, "y.npy")))
    ok = bool(np.isfinite(y).all()) and error <= TOLERANCE and against_x86 <= TOLERANCE
    print("%-28s arm64 under qemu: max|y-ref|/max|ref| = %.2e, against x86 %.2e "
          "(max|ref| %.3g), %d kernel libraries, build %.0f s, run %.1f s  %s"
          % (name, error, against_x86, scale, len(libraries), built, ran,
             "ok" if ok else "FAILED"))
    return ok


def check_cuda(name, qd, model, work, batch, std, flags, args):
    """A CUDA project: built with -DQDSL_CUDA_EMULATE=ON (the kernel bodies
    run on the CPU) and compared with the reference; built by nvcc for
    sm_80 and sm_90; run on the GPU when there is one. The Fashion-MNIST
    project is also compiled twice, which must give the same files."""
    start = time.time()
    emulated = os.path.join(work, "build-emulate")
    run(["cmake", "-S", work, "-B", emulated, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
         "-DQDSL_CUDA_EMULATE=ON"])
    run(["cmake", "--build", emulated, "-j", str(args.jobs)])
    built = time.time() - start
    error, _, ran, y = predict_against_reference(qd, model, work, batch, std,
                                                 os.path.join(emulated, "predict"), args)
    weights = os.path.join(work, "w.safetensors")
    ref = np.load(os.path.join(work, "ref.npy"))
    ok = bool(np.isfinite(y).all()) and error <= TOLERANCE
    print("%-28s %-6s emulated: max|y-ref|/max|ref| = %.2e, build %.0f s, run %.2f s  %s"
          % (name, "cuda", error, built, ran, "ok" if ok else "FAILED"))
    if not ok:
        return False
    if name == "cuda_fashion_mnist":
        # The reduced precisions, emulated as the tensor cores round their
        # inputs: within their bound of the reference, and not fp32's output.
        for precision in ("tf32", "bf16"):
            out = os.path.join(work, "y_emulated_%s.npy" % precision)
            run([os.path.join(emulated, "predict"), "--weights", weights, "--input",
                 os.path.join(work, "x.npy"), "--output", out, "--precision", precision])
            reduced = np.load(out)
            error = normwise_error(reduced, ref)
            ok = error <= BF16_TOLERANCE and not np.array_equal(reduced, y)
            print("%-28s        emulated %s: max|y-ref|/max|ref| = %.2e, differs from fp32 "
                  "by %.1e  %s" % ("", precision, error, normwise_error(reduced, y),
                                  "ok" if ok else "FAILED"))
            if not ok:
                return False
    if "--train" in flags:
        check_training_step(name, qd, model, work, flags, args, build="build-emulate")
    if name == "cuda_fashion_mnist":
        again = work + "-again"
        shutil.rmtree(again, ignore_errors=True)
        run([args.qdsl, "compile", qd, "--model", model, "--target", "cuda", "-o", again] + flags)
        for folder, _, files in os.walk(again):
            for f in files:
                second = os.path.join(folder, f)
                first = os.path.join(work, os.path.relpath(second, again))
                if f != "model.mlir" and open(first, "rb").read() != open(second, "rb").read():
                    raise RuntimeError("compiling twice gave two different %s" %
                                       os.path.relpath(second, again))
        print("%-28s        the same sources when compiled twice" % "")
    if name not in CUDA_BUILT and "@" not in name:
        return True
    nvcc = find_nvcc()
    if not nvcc:
        print("%-28s        nvcc SKIPPED: no CUDA toolkit (nvcc not on PATH nor in "
              "/usr/local/cuda)" % "")
        return True
    start = time.time()
    env = dict(os.environ, CUDACXX=nvcc)
    run([args.qdsl, "build", work, "-j", str(args.jobs)], env=env)
    arch = re.findall(r"arch=compute_(\d+)", open(os.path.join(work, "build", "build.ninja")).read())
    if sorted(set(arch)) != ["80", "90"]:
        raise RuntimeError("nvcc did not build for sm_80 and sm_90 (found %s)" % sorted(set(arch)))
    print("%-28s        nvcc built sm_80 and sm_90 in %.0f s" % ("", time.time() - start))
    if not have_gpu():
        print("%-28s        GPU run SKIPPED: nvidia-smi finds no GPU" % "")
        return True
    for precision, tolerance in (("fp32", TOLERANCE), ("tf32", BF16_TOLERANCE),
                                 ("bf16", BF16_TOLERANCE)):
        out = os.path.join(work, "y_%s.npy" % precision)
        run([os.path.join(work, "build", "predict"), "--weights", weights, "--input",
             os.path.join(work, "x.npy"), "--output", out, "--precision", precision,
             "--repeat", "3"])
        error = normwise_error(np.load(out), ref)
        print("%-28s        GPU %s: max|y-ref|/max|ref| = %.2e  %s" % (
            "", precision, error, "ok" if error <= tolerance else "FAILED"))
        if error > tolerance:
            return False
    return True


def check(name, args):
    if name in SPECIAL:
        return SPECIAL[name](args)
    source, model, target, batch, std, flags = CASES[name]
    work = os.path.join(args.work, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(args.work, exist_ok=True)
    qd = os.path.join(args.root, source)
    if target == "opencl" and not have_opencl():
        print("%-14s SKIPPED: no OpenCL platform (install pocl-opencl-icd)" % name)
        return True
    if target == "x86-64-avx512":
        runs, why = have_avx512(args.qdsl)
        if not runs:
            print("%-14s SKIPPED: %s" % (name, why))
            return True
    start = time.time()
    run([args.qdsl, "compile", qd, "--model", model, "--target", target, "-o", work] + flags)
    if target == "cuda":
        return check_cuda(name, qd, model, work, batch, std, flags, args)
    run([args.qdsl, "build", work, "-j", str(args.jobs)])
    built = time.time() - start
    if target == "arm64-a76":
        return check_arm(name, qd, model, work, batch, std, built, args)
    error, scale, ran, y = predict_against_reference(qd, model, work, batch, std,
                                                     os.path.join(work, "build", "predict"), args)
    ok = np.isfinite(y).all() and error <= TOLERANCE
    print("%-28s %-6s max|y-ref|/max|ref| = %.2e (max|ref| %.3g), build %.0f s, run %.2f s  %s"
          % (name, target, error, scale, built, ran, "ok" if ok else "FAILED"))
    if ok and name in PYTORCH and args.pytorch:
        check_pytorch(name, qd, model, work, args)
    if ok and name == "fashion_mnist":
        check_errors(work, args)
    if ok and "--train" in flags:
        check_training_step(name, qd, model, work, flags, args)
        if name == "train_fashion_mnist":
            check_trainer(work, args)
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--pytorch", action="store_true",
                        help="also compare with PyTorch where a case has a PyTorch twin")
    parser.add_argument("--all-examples", action="store_true",
                        help="every example on every target, or the named model@target cases "
                             "(long: not part of CI)")
    parser.add_argument("--train-examples", type=int, default=30000,
                        help="training examples of the Fashion-MNIST training check")
    parser.add_argument("--train-epochs", type=int, default=4)
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args()
    if args.all_examples:
        # Every example on every target, or those named (model@target).
        CASES.update(example_cases(args.root))
        if not args.cases:
            args.cases = [c for c in sorted(CASES) if "@" in c]
    unknown = [c for c in args.cases if c not in CASES and c not in SPECIAL]
    if unknown or not args.cases:
        parser.error("unknown or no cases: %s; known: %s" % (unknown, ", ".join(sorted(CASES) + sorted(SPECIAL))))
    failures = []
    for name in args.cases:
        start = time.time()
        try:
            if not check(name, args):
                failures.append(name)
        except RuntimeError as error:
            print("%-14s FAILED: %s" % (name, error))
            failures.append(name)
        print("%-28s %s in %.0f s" % (name, "failed" if name in failures else "passed",
                                      time.time() - start), flush=True)
    if failures:
        print("failed: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
