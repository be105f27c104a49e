#!/usr/bin/env bash
# scripts/gpu-check cut short by `timeout`, without a GPU: the scripts run from a copy of the
# tree with stand-ins for nvidia-smi, cmake (which "builds" a stand-in slope) and cuSPARSELt.
# Checked: a run stopped during its second experiment still leaves the --pack bundle with the
# first experiment's results and the logs, and a summary that names the stop, also with two
# experiments at once (--gpus 2); a run that ends leaves the same bundle without that line,
# and without the files an earlier run left in OUTDIR.
# Usage: gpu_check_stopped_test.sh SOURCE_DIR
set -uo pipefail
source_dir="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "gpu_check_stopped_test: $*" >&2; exit 1; }

root="$work/root"
mkdir -p "$root" "$work/bin" "$work/cusparselt/include"
cp -r "$source_dir/scripts" "$root/"
touch "$work/cusparselt/include/cusparseLt.h"
cat > "$work/bin/nvidia-smi" <<'FAKE'
#!/usr/bin/env bash
case " $* " in
  *" -L "*) echo "GPU 0: stand-in A"; echo "GPU 1: stand-in B" ;;
  *" -lms "*) exec sleep 60 ;;
  *) echo "NVIDIA stand-in, 0.0" ;;
esac
FAKE
# cmake -S SRC -B DIR ... configures: the stand-in puts a stand-in slope into DIR. spmm ends
# at once; setup hangs until a signal ends it.
cat > "$work/bin/cmake" <<'FAKE'
#!/usr/bin/env bash
while [ $# -gt 0 ]; do
  if [ "$1" = -B ]; then
    mkdir -p "$2/tools/slope"
    cat > "$2/tools/slope/slope" <<'SLOPE'
#!/usr/bin/env bash
[ "$1" != --version ] || { echo "slope stand-in"; exit 0; }
[ "$1" != setup ] || exec sleep 60
while [ $# -gt 0 ]; do
  case "$1" in --csv|--json) echo "stand-in $1" > "$2"; shift ;; esac
  shift
done
echo "geomean_speedup = 1.5"
SLOPE
    chmod +x "$2/tools/slope/slope"
  fi
  shift
done
FAKE
chmod +x "$work/bin/"*

# check OUTDIR TIMEOUT ARGS...: gpu-check under `timeout`; its exit status in $rc, the
# bundle unpacked into OUTDIR/unpacked.
check() {
  local dir="$1" limit="$2"; shift 2
  env PATH="$work/bin:$PATH" CUSPARSELT_ROOT="$work/cusparselt" SLOPE_COMMIT=stand-in \
    timeout "$limit" bash "$root/scripts/gpu-check" --pack --no-tests "$@" "$dir" > "$work/log" 2>&1
  rc=$?
  [ -f "$dir/gpu-check.tar.gz" ] || fail "no bundle after exit $rc: $(cat "$work/log")"
  [ ! -e "$dir/gpu-check" ] || fail "--pack left the unpacked folder beside the bundle"
  mkdir -p "$dir/unpacked" && tar -C "$dir/unpacked" -xzf "$dir/gpu-check.tar.gz" \
    || fail "the bundle does not unpack"
}

check "$work/stopped" 8 --only "spmm setup"
[ "$rc" -eq 124 ] || fail "a run cut by timeout exited $rc, not 124: $(cat "$work/log")"
results="$work/stopped/unpacked/gpu-check/results"
[ -f "$results/spmm.csv" ] && [ -f "$results/spmm.json" ] \
  || fail "the first experiment's results are not in the bundle: $(ls -R "$work/stopped/unpacked")"
grep -q "setup" "$work/stopped/unpacked/gpu-check/logs/experiments.log" \
  || fail "the log of the experiment that was cut is not in the bundle"
grep -q "stopped by SIGTERM" "$work/stopped/summary.txt" || fail "the summary does not name the stop"
grep -q "stopped by SIGTERM" "$work/stopped/unpacked/gpu-check/summary.txt" \
  || fail "the bundle's summary does not name the stop"

# Two experiments at once (--gpus 2): the one still running when the run is cut has its
# output in the log too.
check "$work/lanes" 8 --gpus 2 --only "spmm setup"
[ "$rc" -eq 124 ] || fail "a run of two lanes cut by timeout exited $rc, not 124: $(cat "$work/log")"
[ -f "$work/lanes/unpacked/gpu-check/results/spmm.csv" ] || fail "the lanes' bundle lacks spmm's results"
grep -q "setup on GPU" "$work/lanes/unpacked/gpu-check/logs/experiments.log" \
  || fail "the output of the lane that was cut is not in the bundle's log"

# An OUTDIR that holds an earlier run's folder (a run without --pack into it before): none
# of its files may reach this run's bundle.
mkdir -p "$work/ended/gpu-check/results" "$work/ended/gpu-check/logs/sanitize"
echo "old" > "$work/ended/gpu-check/results/lowrank.csv"
echo "old" > "$work/ended/gpu-check/logs/sanitize/memcheck.log"
check "$work/ended" 30 --only spmm
[ "$rc" -eq 0 ] || fail "a run that ended exited $rc: $(cat "$work/log")"
[ ! -e "$work/ended/unpacked/gpu-check/results/lowrank.csv" ] \
  && [ ! -e "$work/ended/unpacked/gpu-check/logs/sanitize" ] \
  || fail "an earlier run's files in OUTDIR reached the bundle"
[ -f "$work/ended/unpacked/gpu-check/results/spmm.csv" ] || fail "spmm's results are not in the bundle"
! grep -q "stopped by" "$work/ended/summary.txt" || fail "a run that ended says it was stopped"
grep -q "geomean_speedup = 1.5" "$work/ended/summary.txt" || fail "the summary lost the experiment's lines"
grep -q "^slope stand-in$" "$work/ended/summary.txt" || fail "the summary does not name the build (slope --version)"
echo "gpu_check_stopped_test: ok"
