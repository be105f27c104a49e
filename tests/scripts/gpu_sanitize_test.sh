#!/usr/bin/env bash
# scripts/gpu-sanitize's verdict, without a GPU: stand-ins for nvidia-smi and compute-sanitizer
# print what the real tools print and exit as they do, and the script must call each run
# ok or FAILED by the rules in its header.
# Usage: gpu_sanitize_test.sh SOURCE_DIR
set -uo pipefail
source_dir="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "gpu_sanitize_test: $*" >&2; exit 1; }

mkdir -p "$work/bin"
cat > "$work/bin/nvidia-smi" <<'FAKE'
#!/usr/bin/env bash
echo "GPU 0: stand-in"
FAKE
# The stand-in sanitizer: FAKE_<TOOL>=exit,output picks how a tool's run ends; "tests" prints
# a failed test's count and no failure, "products" a test failing on product comparisons as
# gtest prints them, "other" that test and one failing on an exception, "brief" two failed
# tests named as --gtest_brief=1 (the kernel tools' runs) names them (no count),
# "errors" a tool error (exit 9 as --error-exitcode asks), "crash" the tool's
# own failure on a hardware exception, "mute" a run that ends before printing anything, "slow"
# a run that finishes one test, reports one error and then outlasts the timeout.
cat > "$work/bin/compute-sanitizer" <<'FAKE'
#!/usr/bin/env bash
tool=memcheck
while [ $# -gt 0 ]; do [ "$1" = --tool ] && tool="$2"; shift; done
var="FAKE_${tool^^}"
case "${!var:-clean}" in
  clean) echo "[  PASSED  ] 3 tests."; echo "========= ERROR SUMMARY: 0 errors"; exit 0 ;;
  tests) echo "[  PASSED  ] 2 tests."; echo "[  FAILED  ] 1 test, listed below:"
         echo "========= ERROR SUMMARY: 0 errors"; exit 1 ;;
  products|other)
    echo "[ RUN      ] Suite.Product"
    echo "/src/tests/gpu/gpu_test.hpp:50: Failure"; echo "Value of: c.ok"; echo "  Actual: false"
    echo "Expected: true"; echo "7 of 96 elements out of tolerance"; echo "Google Test trace:"
    echo "/src/tests/gpu/sparse_matmul_test.cpp:131: fp16 token-major X, token-major Y"; echo
    echo "/src/tests/gpu/gpu_test.hpp:51: Failure"
    echo "Expected: (c.rel_fro_error) < (1e-3), actual: 0.7 vs 0.001"; echo
    echo "/src/tests/gpu/kernel_configurations_test.cpp:68: Failure"; echo "Value of: wrong.empty()"
    echo "of 52 configurations run, these computed another product: 36 (relative error 0.8)"; echo
    echo "[  FAILED  ] Suite.Product (9 ms)"
    failed=1
    if [ "${!var}" = other ]; then
      echo "[ RUN      ] Shapes/Suite.Throws/fp16"; echo "unknown file: Failure"
      echo 'C++ exception with description "cuSPARSELt call failed" thrown in the test body.'; echo
      echo "[slope] c.ok, printed by the test after its failure, is not part of its message"
      echo "[  FAILED  ] Shapes/Suite.Throws/fp16, where GetParam() = 4-byte object <00-00 00-00> (4 ms)"
      failed=2
    fi
    echo "[  PASSED  ] 1 test."; echo "[  FAILED  ] $failed tests, listed below:"
    echo "========= ERROR SUMMARY: 0 errors"; exit 1 ;;
  brief) echo "[  FAILED  ] Suite.Test (5 ms)"
         echo "[  FAILED  ] Shapes/Suite.Param/x, where GetParam() = 4-byte object <00-00 00-00> (7 ms)"
         echo "[  PASSED  ] 2 tests."; echo "========= ERROR SUMMARY: 0 errors"; exit 1 ;;
  errors) echo "[  PASSED  ] 3 tests."; echo "========= ERROR SUMMARY: 2 errors"; exit 9 ;;
  mute) exit 3 ;;
  slow) echo "========= COMPUTE-SANITIZER"; echo "[       OK ] Suite.Fast (3 ms)"
        echo "========= Invalid __global__ read of size 4 bytes"; echo "=========     at kernel+0x10"
        exec sleep 5 ;;
  crash) echo "========= Internal Sanitizer Error: The Sanitizer failed to handle a hardware exception."
         echo "[  FAILED  ] 3 tests, listed below:"; echo "========= ERROR SUMMARY: 1 error"; exit 9 ;;
esac
FAKE
printf '#!/usr/bin/env bash\n' > "$work/slope_gpu_tests"
chmod +x "$work/bin/"* "$work/slope_gpu_tests"

# run EXPECTED_EXIT ENV...: runs the script with the stand-ins and the options in $options;
# its output lands in $out.
options=(--shards 2 --timeout 20)
run() {
  local expected="$1"; shift
  rm -rf "$work/logs"
  out="$(env PATH="$work/bin:$PATH" "$@" bash "$source_dir/scripts/gpu-sanitize" "${options[@]}" \
    "$work/slope_gpu_tests" "$work/logs" 2>&1)"
  local rc=$?
  [ "$rc" -eq "$expected" ] || fail "with $* the script exited $rc, expected $expected: $out"
}
expect_line() { grep -q "^$1" <<< "$out" || fail "no line '$1' in: $out"; }

run 0
expect_line "memcheck_shard0: ok"
expect_line "memcheck_shard1: ok"
expect_line "racecheck: ok"
expect_line "initcheck: ok; \[  PASSED  \] 3 tests. ERROR SUMMARY: 0 errors"

# Tests failing under memcheck on product comparisons do not decide (instrumented cuSPARSELt
# products); any other failure there does, and is named; elsewhere every failure decides.
run 0 FAKE_MEMCHECK=products
expect_line "memcheck_shard0: ok; \[  PASSED  \] 1 test. \[  FAILED  \] 1 tests, listed below: ERROR SUMMARY: 0 errors$"
run 1 FAKE_MEMCHECK=other
expect_line "memcheck_shard0: FAILED; .*ERROR SUMMARY: 0 errors; failed on more than a product: Shapes/Suite.Throws/fp16$"
run 1 FAKE_MEMCHECK=tests
expect_line "memcheck_shard1: FAILED; \[  PASSED  \] 2 tests. \[  FAILED  \] 1 test.*tests failed, but the log holds no failure to judge$"
run 1 FAKE_RACECHECK=brief
expect_line "racecheck: FAILED; \[  PASSED  \] 2 tests. \[  FAILED  \] 2 test(s): Shapes/Suite.Param/x Suite.Test. ERROR"
run 1 FAKE_RACECHECK=tests
expect_line "racecheck: FAILED"
expect_line "synccheck: ok"

run 1 FAKE_MEMCHECK=errors
expect_line "memcheck_shard1: FAILED; \[  PASSED  \] 3 tests. ERROR SUMMARY: 2 errors"
# A run cut short is reported, and the runs after it too.
run 1 FAKE_RACECHECK=mute
expect_line "racecheck: FAILED; no test tally; no summary (exit 3)"
expect_line "initcheck: ok"
run 1 FAKE_SYNCCHECK=crash
expect_line "synccheck: FAILED; \[  FAILED  \] 3 tests.*the tool could not handle a kernel"

# A run stopped by the timeout says how far it got and what its tool had found by then.
options=(--shards 2 --timeout 1)
run 1 FAKE_MEMCHECK=slow
expect_line "memcheck_shard0: FAILED; no test tally; timed out after 1 s, 1 tests finished, 1 errors reported by then"
expect_line "racecheck: ok"

# --shard-range runs only the shards it names; a range outside them is refused.
options=(--shards 4 --shard-range 2-3 --timeout 20)
run 0
expect_line "memcheck_shard2: ok"
expect_line "memcheck_shard3: ok"
! grep -q "^memcheck_shard[01]" <<< "$out" || fail "--shard-range 2-3 ran other shards: $out"
[ ! -e "$work/logs/memcheck_shard0.log" ] || fail "--shard-range 2-3 wrote shard 0's log"
options=(--shards 4 --shard-range 3-4 --timeout 20)
run 1
expect_line "\[slope\] error: --shard-range 3-4 is not within the 4 shards (0-3)"
options=(--shards 4 --shard-range 2 --timeout 20)
run 1
expect_line "\[slope\] error: --shard-range takes FIRST-LAST"
echo "gpu_sanitize_test: ok"
