"""Prepares the GPU check (bench/gpu/run.sh) on a machine with qdsl but no
GPU: the CUDA projects it builds there, their inputs and weights, and the
reference executor's outputs, which are what travel (the GPU machine has
nvcc, CMake and PyTorch, but no qdsl, MLIR or Halide).

    /usr/bin/python3 bench/gpu/prepare.py --qdsl build/bin/qdsl [--prepared bench/gpu/prepared]

Large models' weights do not travel (the device tool carries 64 MiB in
all; Fashion-MNIST's data does, 30 MiB): QuadraNet36-T starts there from `--seed 1`, the initialiser `qdsl
weights init --seed 1` uses here, so the reference outputs match. The
small models carry weights drawn with --random-std, so that no block starts
as the identity. Ten architectures of examples/fmnist_space.qd come with the
latency the h100 profile predicts for them, to be measured there.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402
from benchlib import input_shape  # noqa: E402

# name: (model file, model, batch, --random-std or None for --seed 1 weights
#        initialised there)
CASES = {
    "fashion_mnist": ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST", 4, 0.3),
    "families": ("test/codegen/families.qd", "Families", 3, 0.5),
    "xor": ("examples/xor_neuron.qd", "XorNeuron", 9, 1.0),
    "convblock36_t": ("examples/convblock36_t.qd", "ConvBlock36_T", 2, None),
    "quadranet36_t": ("examples/quadranet36_t.qd", "QuadraNet36_T", 2, None),
}
# Training projects: Fashion-MNIST (its step checked against `qdsl run
# --train`, then trained on the data carried along) and QuadraNet36-T (timed).
TRAIN_CASES = {
    "train_fashion_mnist": ("examples/fashion_mnist.qd", "QuadraNet_FashionMNIST", 4, 0.3),
    "train_quadranet36_t": ("examples/quadranet36_t.qd", "QuadraNet36_T", None, None),
}
DATA = "/usr/share/datasets/fashion-mnist"
SPACE = "examples/fmnist_space.qd"
ARCHITECTURES = 10
LATENCY_BATCH = 64
LATENCY_PROFILE = "profiles/h100.json"


def run(cmd):
    # From the repository root with its relative paths: no path of this
    # machine goes into the generated sources that travel.
    return benchlib.run(cmd, cwd=ROOT)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--prepared", default=os.path.join(HERE, "prepared"))
    parser.add_argument("--cuda-arch", default="90", help="the GPU's architecture (H100/H200: 90)")
    args = parser.parse_args()
    qdsl = os.path.abspath(args.qdsl)
    args.prepared = os.path.abspath(args.prepared)
    shutil.rmtree(args.prepared, ignore_errors=True)
    os.makedirs(args.prepared)
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    manifest = {"cases": {}, "architectures": [], "latency_batch": LATENCY_BATCH,
                "latency_profile": LATENCY_PROFILE, "qdsl_commit": commit}
    rng = np.random.default_rng(0)
    for name, (source, model, batch, std) in CASES.items():
        work = os.path.join(args.prepared, name)
        qd = source
        run([qdsl, "compile", qd, "--model", model, "--target", "cuda", "--cuda-arch",
             args.cuda_arch, "-o", work])
        x = rng.standard_normal([batch] + input_shape(os.path.join(work, "model.mlir")),
                                dtype=np.float32)
        np.save(os.path.join(work, "x.npy"), x)
        weights = os.path.join(work, "w.safetensors")
        init = [qdsl, "weights", "init", qd, "--model", model, "--seed", "1", "-o", weights]
        run(init + (["--random-std", str(std)] if std else []))
        run([qdsl, "run", qd, "--model", model, "--weights", weights, "--input",
             os.path.join(work, "x.npy"), "-o", os.path.join(work, "ref.npy")])
        if std is None:
            os.remove(weights)  # too large to carry: made there with --seed 1
        os.remove(os.path.join(work, "model.mlir"))
        manifest["cases"][name] = {"model": model, "batch": batch,
                                   "weights": "w.safetensors" if std else None, "seed": 1}
        print("prepared", name)
    manifest["train"] = {}
    for name, (source, model, batch, std) in TRAIN_CASES.items():
        work = os.path.join(args.prepared, name)
        qd = source
        run([qdsl, "compile", qd, "--model", model, "--target", "cuda", "--train",
             "--cuda-arch", args.cuda_arch, "-o", work])
        os.remove(os.path.join(work, "model.mlir"))
        entry = {"model": model}
        if batch:
            x = rng.standard_normal([batch, 28, 28, 1], dtype=np.float32)
            np.save(os.path.join(work, "x.npy"), x)
            np.save(os.path.join(work, "labels.npy"),
                    (np.arange(batch) * 7 % 10).astype(np.float32))
            weights = os.path.join(work, "w.safetensors")
            run([qdsl, "weights", "init", qd, "--model", model, "--seed", "1", "--random-std",
                 str(std), "-o", weights])
            run([qdsl, "run", qd, "--model", model, "--train", "--weights", weights, "--input",
                 os.path.join(work, "x.npy"), "--labels", os.path.join(work, "labels.npy"),
                 "-o", os.path.join(work, "g_ref.safetensors")])
            entry.update(batch=batch, weights="w.safetensors")
        manifest["train"][name] = entry
        print("prepared", name)
    data = os.path.join(args.prepared, "data")
    os.makedirs(data)
    for f in sorted(os.listdir(DATA)):
        if f.endswith(".gz"):
            shutil.copy(os.path.join(DATA, f), data)
    for k in range(ARCHITECTURES):
        name = "arch%d" % k
        work = os.path.join(args.prepared, name)
        choices = "seed:%d" % (k + 1)
        run([qdsl, "compile", SPACE, "--choices", choices, "--target",
             "cuda", "--cuda-arch", args.cuda_arch, "-o", work])
        os.remove(os.path.join(work, "model.mlir"))
        estimate = json.loads(run([qdsl, "estimate", SPACE, "--choices",
                                   choices, "--device", LATENCY_PROFILE,
                                   "--batch", str(LATENCY_BATCH), "--json"]).stdout)
        manifest["architectures"].append({"name": name, "choices": choices,
                                          "predicted_ms": estimate["total_ms"]})
    print("prepared %d architectures of %s" % (ARCHITECTURES, SPACE))
    third_party = os.path.join(args.prepared, "third_party", "include")
    os.makedirs(third_party)
    for header in ("nlohmann", "fmt"):
        shutil.copytree(os.path.join("/usr/include", header), os.path.join(third_party, header))
    # zlib's headers for the training runtime (its library is on any Linux).
    for header in ("zlib.h", "zconf.h"):
        shutil.copy(os.path.join("/usr/include", header), third_party)
    with open(os.path.join(args.prepared, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.prepared) for f in fs)
    print("wrote %s (%.1f MiB, from qdsl %s)" % (args.prepared, size / 2**20, commit))
    # The device tool carries 64 MiB with the repository (about 4 MiB).
    if size > 58 * 2**20:
        raise SystemExit("%s is %.1f MiB: too large to carry to the GPU machine" % (
            args.prepared, size / 2**20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
