#!/usr/bin/env bash
# The main job: install what qdsl needs, build it, print an example model's
# statistics, compile it with its training step to native code (Halide
# kernels, a model library, `predict` and `train`), build that, train the
# model on Fashion-MNIST (QDSL_EPOCHS epochs, 2 by default; a few minutes on
# two cores) with a progress bar, and check `predict` against the
# reference executor with the trained weights.
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
echo "== qdsl compile $(basename "$model") --train --target=x86-64-avx2 -o $out && qdsl build $out"
"$qdsl" compile "$model" --train --target=x86-64-avx2 -o "$out"
"$qdsl" build "$out" > "$out.build.log" 2>&1 || { cat "$out.build.log"; exit 1; }
echo "built $out/build/predict and $out/build/train"
echo
epochs="${QDSL_EPOCHS:-2}"
echo "== train on Fashion-MNIST, $epochs epochs (metrics: $out/run/metrics.jsonl)"
rm -rf "$out/run"
"$out/build/train" --epochs "$epochs" --batch 64 --out "$out/run"
echo
echo "== predict on 16 random examples with the trained weights, against the reference executor"
/usr/bin/python3 - "$qdsl" "$model" "$out" <<'PY'
import subprocess, sys, numpy as np
qdsl, model, out = sys.argv[1:]
shape = [int(d) for d in open(out + "/model.mlir").read().split("tensor<?x", 1)[1].split("xf32>")[0].split("x")]
np.save(out + "/x.npy", np.random.default_rng(0).standard_normal([16] + shape, dtype=np.float32))
weights = out + "/run/weights.safetensors"
subprocess.run([out + "/build/predict", "--weights", weights, "--input", out + "/x.npy",
                "--output", out + "/y.npy", "--repeat", "20", "--profile"], check=True)
subprocess.run([qdsl, "run", model, "--weights", weights, "--input", out + "/x.npy",
                "-o", out + "/ref.npy"], check=True)
y, ref = np.load(out + "/y.npy"), np.load(out + "/ref.npy")
print("outputs", y.shape, "- classes of the first 8:", y.argmax(1)[:8].tolist())
print("max |predict - reference| / max |reference| = %.2e" % (np.abs(y - ref).max() / np.abs(ref).max()))
PY
