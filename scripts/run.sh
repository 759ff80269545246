#!/usr/bin/env bash
# The main job: install what qdsl needs, build it, then compile an example
# model and print its statistics and its MLIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" qdsl qdsl-opt
qdsl="$root/build/bin/qdsl"

model="${1:-$root/examples/fashion_mnist.qd}"
echo "== qdsl stats $(basename "$model") --batch 64"
"$qdsl" stats "$model" --batch 64
echo
echo "== qdsl stats quadranet36_t.qd (the paper's QuadraNet36-T)"
"$qdsl" stats "$root/examples/quadranet36_t.qd" | tail -n 2
echo
echo "== qdsl compile $(basename "$model") --emit=mlir"
"$qdsl" compile "$model" --emit=mlir
