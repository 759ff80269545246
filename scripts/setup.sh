#!/usr/bin/env bash
# Installs every Debian package qdsl needs to build and test. Idempotent; run as root.
# Later features add their packages to PACKAGES below, never anywhere else.
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build git python3
  # MLIR/LLVM 19 and the compiler that builds qdsl (libFuzzer comes with clang's runtime)
  llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools
  clang-19 lld-19 libclang-rt-19-dev
  # libraries
  libgtest-dev nlohmann-json3-dev zlib1g-dev
  # fmt: how generated programs (predict, train) print
  libfmt-dev
  # training data: Fashion-MNIST as gzip-compressed IDX files
  dataset-fashion-mnist
  # code generation: Halide 14 for the generated kernels, OpenCL on the CPU
  # (PoCL) for the VPU stand-in target
  libhalide14-0-dev pocl-opencl-icd ocl-icd-opencl-dev
  # tests and benchmarks: NumPy, and PyTorch in its best CPU setting
  # (OpenBLAS's OpenMP flavour, selected per process by bench/benchlib.py;
  # tcmalloc) as the peer of every speed comparison; the pthread flavour
  # for the figure that shows why not it; oneDNN for the 1×1 convolution
  # that bench/gemm_peers.cpp measures next to OpenBLAS's sgemm
  python3-numpy python3-torch libopenblas0-openmp libopenblas0-pthread
  # models out: the ONNX checker (python3-onnx 1.12, opset 17); images in:
  # JPEG and PNG decoding for train --dataset folder, and PIL, with which
  # the tests make their own images
  python3-onnx libturbojpeg0-dev libpng-dev python3-pil
  libtcmalloc-minimal4 libdnnl-dev
  # the arm64-a76 target's programs: cross compiler (with the arm64 C
  # library as its sysroot) and user-mode emulation to run them here
  g++-aarch64-linux-gnu qemu-user
  # data-parallel training of the generated programs (mpirun, FindMPI)
  openmpi-bin libopenmpi-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node runs ONNX Runtime (below); machine images often have their own.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
elif [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run this script as root to install them" >&2
  exit 1
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A machine may list sources it cannot reach (only Debian's archive is
  # reachable on CI); their failure must not stop the install from Debian.
  apt-get update -qq || echo "setup: apt-get update reported errors; installing from the lists it got"
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime, the second CPU peer and the runner of exported models
# (bench/ort_run.js): npm's onnxruntime-node, whose CPU library ships in the
# package. --ignore-scripts: its install script downloads GPU binaries,
# which fails offline and is not needed.
ORT_VERSION=1.31.1
ORT_PREFIX=${QDSL_NODE_PREFIX:-/usr/local/lib/qdsl-node}
ORT_PACKAGE="$ORT_PREFIX/node_modules/onnxruntime-node/package.json"
if [ -f "$ORT_PACKAGE" ] && grep -q "\"version\": \"$ORT_VERSION\"" "$ORT_PACKAGE"; then
  echo "setup: onnxruntime-node $ORT_VERSION already in $ORT_PREFIX"
elif [ ! -w "$(dirname "$ORT_PREFIX")" ] && [ ! -w "$ORT_PREFIX" ]; then
  echo "setup: onnxruntime-node missing from $ORT_PREFIX; run this script as root" >&2
  exit 1
else
  mkdir -p "$ORT_PREFIX"
  for attempt in 1 2 3; do
    if npm install --prefix "$ORT_PREFIX" --ignore-scripts --no-audit --no-fund \
        "onnxruntime-node@$ORT_VERSION"; then
      break
    fi
    [ "$attempt" = 3 ] && { echo "setup: npm could not install onnxruntime-node" >&2; exit 1; }
    sleep 5
  done
fi
