#!/bin/bash
# The GPU check of qdsl's cuda target (docs/CODEGEN.md, "CUDA"), in one run on
# a GPU machine with nvcc, CMake, Ninja and Python with NumPy and PyTorch (timm
# for the context models), but no qdsl: run from the repository root.
#
#   here:  /usr/bin/python3 bench/gpu/prepare.py --qdsl build/bin/qdsl
#   there: bench/gpu/run.sh [OUT]          (with bench/gpu/prepared carried along)
#
# Builds the prepared CUDA projects, runs the tests (predict against the
# reference executor at fp32/tf32/bf16, compute-sanitizer), the benchmarks
# next to PyTorch and the latency model's error; the table goes to stdout and
# OUT/gpu_results.{txt,json}. Sized for 8 minutes on an H100/H200-class GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-bench/gpu/prepared/out}}
if [ ! -f bench/gpu/prepared/manifest.json ]; then
  echo "run.sh: no bench/gpu/prepared/manifest.json: run bench/gpu/prepare.py on a machine with qdsl first" >&2
  exit 2
fi
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "run.sh: nvidia-smi finds no GPU; bench/gpu/gpu_checks.py --dry-run checks the rest on the CPU" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
export PATH=$PATH:/usr/local/cuda/bin
# Unbuffered: a run cut short still shows how far it got.
exec python3 -u bench/gpu/gpu_checks.py --prepared bench/gpu/prepared --out "$out" --budget 400
