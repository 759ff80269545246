"""Every model of examples/ (and an architecture of every search space,
through its derived model file) exported to ONNX and to PyTorch, each run
against the generated `predict` on the same weights and inputs.

    check_export.py --qdsl build/bin/qdsl --root REPO --work DIR [--only NAME...] [--small]

For each model: random weights (`qdsl weights init --random-std`), a random
batch of 8 and its first example alone (batch 1); `predict` of a project
compiled for x86-64-avx2; the ONNX file checked by onnx.checker
(full_check) and run by ONNX Runtime (bench/ort_run.js, npm's
onnxruntime-node); the PyTorch module (imports only torch) loaded with the
weights of `qdsl weights export`, whose state_dict written back through
`qdsl weights import` must give the original weights bit for bit. Errors
are normwise, max|y - predict| / max|predict|, and must stay within 1e-5.
--small leaves out the 224x224 models; --all adds QuadraNet36-S, 36-B and
25-B, the wider variants of blocks QuadraNet36-T and 25-T already cover
(the test suite leaves them out: their kernels take minutes to build on 2
cores; docs/INTEROP.md has their figures).
"""
import argparse
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "codegen"))
from check_codegen import read_safetensors, run  # noqa: E402

TOLERANCE = 1e-5
# The paper's wider variants (C = 96, 128) of blocks QuadraNet36-T and -25-T
# already cover: their kernels take the test suite minutes to build, so
# they run with --all only.
WIDE = ("quadranet36_s", "quadranet36_b", "quadranet25_b")
BATCH = 8


def models_of(path):
    """(model or space name, is a space) of each in a .qd file."""
    found = []
    for line in open(path):
        words = line.split()
        if len(words) >= 2 and words[0] in ("model", "space"):
            found.append((words[1].split("(")[0].split("{")[0], words[0] == "space"))
    return found


def cases(root, small, wide):
    """name: (model file, model name, whether a space, whether 224x224)."""
    out = {}
    examples = os.path.join(root, "examples")
    for file in sorted(os.listdir(examples)):
        if not file.endswith(".qd"):
            continue
        path = os.path.join(examples, file)
        big = "224" in open(path).read()
        if (small and big) or (not wide and file[:-3] in WIDE):
            continue
        for name, space in models_of(path):
            out["%s.%s" % (file[:-3], name)] = (path, name, space, big)
    return out


def normwise(y, ref):
    if y.shape != ref.shape:
        raise RuntimeError("shape %s, predict's %s" % (y.shape, ref.shape))
    return float(np.abs(y - ref).max()) / max(float(np.abs(ref).max()), 1e-30)


def to_exported(x):
    """predict's NHWC images → the exported models' NCHW."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def check_case(name, qd, model, space, big, work, args):
    os.makedirs(work, exist_ok=True)
    if space:
        # One architecture of the space as a model file: what `qdsl search`
        # writes as derived.qd.
        derived = os.path.join(work, "derived.qd")
        run([args.qdsl, "compile", qd, "--model", model, "--choices", "seed:3", "--emit=qd",
             "-o", derived])
        qd = derived
        model = models_of(derived)[0][0]
    std = "0.05" if big else "0.3"
    weights = os.path.join(work, "w.safetensors")
    run([args.qdsl, "weights", "init", qd, "--model", model, "--seed", "1", "--random-std", std,
         "-o", weights])
    project = os.path.join(work, "project")
    run([args.qdsl, "compile", qd, "--model", model, "--target", "x86-64-avx2", "-o", project])
    run([args.qdsl, "build", project, "-j", str(args.jobs)])
    mlir = open(os.path.join(project, "model.mlir")).read()
    start = mlir.index("tensor<?x", mlir.index("func.func @")) + len("tensor<?x")
    shape = [int(d) for d in mlir[start:mlir.index("xf32>", start)].split("x")]
    rng = np.random.default_rng(0)
    x = rng.standard_normal([BATCH] + shape, dtype=np.float32)
    outputs = {}
    for batch in (1, BATCH):
        np.save(os.path.join(work, "x%d.npy" % batch), x[:batch])
        np.save(os.path.join(work, "xe%d.npy" % batch), to_exported(x[:batch]))
        run([os.path.join(project, "build", "predict"), "--weights", weights, "--input",
             os.path.join(work, "x%d.npy" % batch), "--output",
             os.path.join(work, "y%d.npy" % batch)])
        outputs[batch] = np.load(os.path.join(work, "y%d.npy" % batch))

    # ONNX: checker, then ONNX Runtime.
    onnx_file = os.path.join(work, "model.onnx")
    run([args.qdsl, "export", qd, "--model", model, "--format", "onnx", "--weights", weights,
         "-o", onnx_file])
    run([sys.executable, "-c", "import onnx, sys; "
         "onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)", onnx_file])
    errors = []
    for batch in (1, BATCH):
        y = os.path.join(work, "ort%d.npy" % batch)
        run(["node", args.ort_runner, "--model", onnx_file, "--input",
             os.path.join(work, "xe%d.npy" % batch), "--output", y])
        errors.append(("onnxruntime", batch, normwise(np.load(y), outputs[batch])))
    if not big:
        # The weights in a file of their own (ONNX's external data): the
        # same model, the same outputs.
        external = os.path.join(work, "external.onnx")
        run([args.qdsl, "export", qd, "--model", model, "--format", "onnx", "--weights",
             weights, "--external-data", "-o", external])
        if not os.path.getsize(external + ".data"):
            raise RuntimeError("--external-data wrote no weights file")
        y = os.path.join(work, "ort_external.npy")
        run(["node", args.ort_runner, "--model", external, "--input",
             os.path.join(work, "xe%d.npy" % BATCH), "--output", y])
        if not np.array_equal(np.load(y), np.load(os.path.join(work, "ort%d.npy" % BATCH))):
            raise RuntimeError("the model with external data computes other outputs")

    # PyTorch: the module with `qdsl weights export`'s state dict.
    module_file = os.path.join(work, "model.py")
    run([args.qdsl, "export", qd, "--model", model, "--format", "pytorch", "-o", module_file])
    torch_weights = os.path.join(work, "torch.safetensors")
    run([args.qdsl, "weights", "export", qd, "--model", model, weights, "-o", torch_weights])
    run([sys.executable, os.path.join(os.path.dirname(__file__), "run_module.py"),
                  module_file, torch_weights, work] + [str(b) for b in (1, BATCH)])
    for batch in (1, BATCH):
        y = np.load(os.path.join(work, "torch%d.npy" % batch))
        errors.append(("pytorch", batch, normwise(y, outputs[batch])))
    back = os.path.join(work, "back.safetensors")
    run([args.qdsl, "weights", "import", qd, "--model", model,
         os.path.join(work, "state_dict.safetensors"), "-o", back])
    original, returned = read_safetensors(weights), read_safetensors(back)
    if original.keys() != returned.keys() or any(
            not np.array_equal(original[k], returned[k]) for k in original):
        raise RuntimeError("the module's state_dict imported back differs from the weights")
    worst = max(e for _, _, e in errors)
    print("%-40s %s  state_dict round trip: bit for bit" % (name, "  ".join(
        "%s b%d %.1e" % e for e in errors)))
    if worst > TOLERANCE:
        raise RuntimeError("%s: exported model differs from predict by %.2e (> %.0e)" %
                           (name, worst, TOLERANCE))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--all", action="store_true",
                        help="also the wide variants (QuadraNet36-S, 36-B, 25-B)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    args.qdsl = os.path.abspath(args.qdsl)
    args.ort_runner = os.path.join(args.root, "bench", "ort_run.js")
    try:
        import onnx  # noqa: F401
    except ImportError:
        print("check_export: python3-onnx is missing (scripts/setup.sh installs it)")
        return 1
    if shutil.which("node") is None:
        print("check_export: node is missing (scripts/setup.sh installs it)")
        return 1
    selected = cases(args.root, args.small, args.all)
    if args.only:
        selected = {k: v for k, v in selected.items() if any(o in k for o in args.only)}
    failures = []
    for name, (qd, model, space, big) in selected.items():
        try:
            check_case(name, qd, model, space, big, os.path.join(args.work, name), args)
        except Exception as e:  # report every case, then fail
            print("%-40s FAILED: %s" % (name, e))
            failures.append(name)
    print("%d of %d models exported and matched predict" % (len(selected) - len(failures),
                                                             len(selected)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
