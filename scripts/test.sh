#!/usr/bin/env bash
# Installs what qdsl needs, builds everything and runs every test: unit tests,
# the lit suite (front end, dialect, passes, tools, examples), code
# generation, hostile inputs, data-parallel training under MPI and bounded
# fuzzing runs of the front end and the readers. QDSL_FUZZ_SECONDS sets each fuzzing run's time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
if [ -n "${QDSL_FUZZ_SECONDS:-}" ]; then
  cmake -DQDSL_FUZZ_SECONDS="$QDSL_FUZZ_SECONDS" "$root/build" >/dev/null
fi
cd "$root/build"
ctest --output-on-failure --timeout 1800 "$@"
