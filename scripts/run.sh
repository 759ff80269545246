#!/usr/bin/env bash
# The main job: install what qdsl needs, build it, print an example model's
# statistics, compile it to native code (Halide kernels, a model library and
# `predict`), build that, and run it on a batch of inputs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" qdsl qdsl-opt
qdsl="$root/build/bin/qdsl"

model="${1:-$root/examples/fashion_mnist.qd}"
out="$root/build/main-job"
echo "== qdsl stats $(basename "$model") --batch 64"
"$qdsl" stats "$model" --batch 64
echo
echo "== qdsl compile $(basename "$model") --emit=kernels"
"$qdsl" compile "$model" --emit=kernels
echo
echo "== qdsl compile $(basename "$model") --target=x86-64-avx2 -o $out && qdsl build $out"
"$qdsl" compile "$model" --target=x86-64-avx2 -o "$out"
"$qdsl" build "$out" > "$out.build.log" 2>&1 || { cat "$out.build.log"; exit 1; }
echo "built $out/build/predict"
echo
echo "== predict on 16 random examples (initial weights, seed 0), against the reference executor"
/usr/bin/python3 - "$qdsl" "$model" "$out" <<'PY'
import subprocess, sys, numpy as np
qdsl, model, out = sys.argv[1:]
shape = [int(d) for d in open(out + "/model.mlir").read().split("tensor<?x", 1)[1].split("xf32>")[0].split("x")]
np.save(out + "/x.npy", np.random.default_rng(0).standard_normal([16] + shape, dtype=np.float32))
subprocess.run([out + "/build/predict", "--input", out + "/x.npy", "--output", out + "/y.npy",
                "--repeat", "20", "--profile"], check=True)
subprocess.run([qdsl, "run", model, "--input", out + "/x.npy", "-o", out + "/ref.npy"], check=True)
y, ref = np.load(out + "/y.npy"), np.load(out + "/ref.npy")
print("outputs", y.shape, "- classes of the first 8:", y.argmax(1)[:8].tolist())
print("max |predict - reference| / max |reference| = %.2e" % (np.abs(y - ref).max() / np.abs(ref).max()))
PY
