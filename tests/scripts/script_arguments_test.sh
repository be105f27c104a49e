#!/usr/bin/env bash
# The scripts refuse a bad argument before they build or run anything: a non-zero exit, one
# line naming it, no output folder made and no experiment started.
# Usage: script_arguments_test.sh SOURCE_DIR
set -uo pipefail
source_dir="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "script_arguments_test: $*" >&2; exit 1; }

# expect_refused NEEDLE COMMAND...: exits non-zero, prints NEEDLE, in well under a build's time.
expect_refused() {
  local needle="$1"; shift
  local out rc
  out="$(timeout 20 "$@" 2>&1)"; rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "'$*' exited $rc, expected a refusal"
  [[ "$out" == *"$needle"* ]] || fail "'$*' did not say '$needle': $out"
}

# A stand-in for the slope binary that records every call.
cat > "$work/fake-slope" <<FAKE
#!/usr/bin/env bash
echo "\$*" >> "$work/calls"
FAKE
chmod +x "$work/fake-slope"

expect_refused "unknown experiment 'spnm'" bash "$source_dir/scripts/gpu-experiments" "$work/fake-slope" "$work/out" spmm spnm
[ ! -e "$work/calls" ] || fail "gpu-experiments ran an experiment before refusing a misspelt one: $(cat "$work/calls")"
expect_refused "unknown experiment 'lowrnk' in --only" bash "$source_dir/scripts/gpu-check" --only "spmm lowrnk" "$work/check"
[ ! -e "$work/check" ] || fail "gpu-check made its output folder before refusing --only"
expect_refused "unknown option '--fast'" bash "$source_dir/scripts/gpu-check" --fast "$work/check"
expect_refused "unknown option '--sanitise'" bash "$source_dir/scripts/gpu-check" --sanitise "$work/check"
expect_refused "--gpus takes a positive whole number" bash "$source_dir/scripts/gpu-check" --gpus 0 "$work/check"
[ ! -e "$work/check" ] || fail "gpu-check made its output folder before refusing --gpus"
expect_refused "unknown option '--samples'" bash "$source_dir/scripts/gpu-experiments" "$work/fake-slope" "$work/out" --samples 3 spmm
[ ! -e "$work/calls" ] || fail "gpu-experiments ran an experiment before refusing an unknown option"
expect_refused "--shards takes a positive whole number" bash "$source_dir/scripts/gpu-sanitize" --shards 0 "$work/fake-slope" "$work/san"
expect_refused "--timeout takes a positive whole number" bash "$source_dir/scripts/gpu-sanitize" --timeout 1.5 "$work/fake-slope" "$work/san"
expect_refused "no test binary at" bash "$source_dir/scripts/gpu-sanitize" "$work/missing" "$work/san"
[ ! -e "$work/san" ] || fail "gpu-sanitize made its log folder before refusing its arguments"
expect_refused "unknown option '--outdir'" bash "$source_dir/scripts/reproduce" --outdir "$work/r"
[ ! -e "$work/r" ] || fail "reproduce made an output folder for a bad option"
expect_refused "--gpus takes a positive whole number" bash "$source_dir/scripts/reproduce" --gpus -1 --out "$work/r"
[ ! -e "$work/r" ] || fail "reproduce made an output folder for a bad --gpus"
expect_refused "no such file: $work/missing.cpp" bash "$source_dir/scripts/lint" "$work/missing.cpp"
expect_refused "unknown option '--fix'" bash "$source_dir/scripts/lint" --fix
expect_refused "unknown option '--fast'" bash "$source_dir/scripts/gpu-check" --fast  # not taken for OUTDIR
expect_refused "scripts/test takes no arguments" bash "$source_dir/scripts/test" --quick

# --help prints the script's own comment, which names how to call it, and does nothing else:
# exit 0, well before a build could end, no folder made.
for script in test reproduce gpu-check gpu-experiments gpu-sanitize lint; do
  out="$(cd "$work" && timeout 20 bash "$source_dir/scripts/$script" --help 2>&1)" ||
    fail "scripts/$script --help exited $?: $out"
  [[ "$out" == *"scripts/$script"* ]] || fail "scripts/$script --help did not show its usage: $out"
  [[ "$out" != *"[slope]"* ]] || fail "scripts/$script --help started work: $out"
done
out="$(timeout 20 bash "$source_dir/scripts/gpu-check" --quick "$work/check" -h 2>&1)" || fail "gpu-check ... -h exited $?"
[ ! -e "$work/check" ] || fail "gpu-check made its output folder when asked for help"
echo "script_arguments_test: ok"
