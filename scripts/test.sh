#!/usr/bin/env bash
# Installs what qdsl needs, builds everything and runs the tests through
# ctest. With no tier flag, every test (CI's run): unit tests, the lit suite
# (front end, dialect, passes, tools, examples), each code-generation case,
# hostile inputs, data-parallel training under MPI and bounded fuzzing runs.
#   --fast    unit and lit only: nothing that builds a generated project
#   --medium  fast, plus one small project per back end, hostile inputs and
#             the fuzzing runs
# Other arguments go to ctest (e.g. -R codegen.xor, -L slow, -j 1).
# QDSL_FUZZ_SECONDS sets each fuzzing run's time; QDSL_TEST_JOBS how many
# tests run at once (default 2; tests that time kernels always run alone).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tier=()
args=()
for arg in "$@"; do
  case "$arg" in
    --fast) tier=(-L '^fast$') ;;
    --medium) tier=(-L '^(fast|medium)$') ;;
    *) args+=("$arg") ;;
  esac
done
jobs=${QDSL_TEST_JOBS:-2}
if ! [[ "$jobs" =~ ^[1-9][0-9]{0,2}$ ]]; then
  echo "test.sh: QDSL_TEST_JOBS must be a number of tests to run at once, 1 to 999; got '$jobs'" >&2
  exit 2
fi
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
if [ -n "${QDSL_FUZZ_SECONDS:-}" ]; then
  cmake -DQDSL_FUZZ_SECONDS="$QDSL_FUZZ_SECONDS" "$root/build" >/dev/null
fi
cd "$root/build"
start=$(date +%s)
status=0
ctest --output-on-failure --no-tests=error --timeout 1800 -j "$jobs" \
  "${tier[@]}" "${args[@]}" || status=$?
echo "test.sh: ctest took $(( $(date +%s) - start )) s"
exit $status
