#!/usr/bin/env bash
# scripts/gpu-experiments --gpus N, without a GPU: a stand-in nvidia-smi lists two GPUs and a
# stand-in slope records where each call ran. Checked: no more experiments at once than GPUs,
# never two on one GPU, each GPU with its own tuning cache and clock sampler, each experiment's
# output printed whole, a failing experiment failing the run without stopping the others, and
# the one-GPU default unchanged.
# Usage: gpu_experiments_lanes_test.sh SOURCE_DIR
set -uo pipefail
source_dir="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "gpu_experiments_lanes_test: $*" >&2; exit 1; }

mkdir -p "$work/bin" "$work/running"
# nvidia-smi: two GPUs for -L; a sampler (-lms) records which GPU it was asked for.
cat > "$work/bin/nvidia-smi" <<FAKE
#!/usr/bin/env bash
case " \$* " in
  *" -L "*) echo "GPU 0: stand-in A"; echo "GPU 1: stand-in B" ;;
  *" -lms "*) echo "sampler \$*" >> "$work/samplers"; exec sleep 30 ;;
  *) echo "NVIDIA stand-in" ;;
esac
FAKE
# slope: holds its GPU for a moment (a folder per GPU; finding it taken is a clash), records
# the most experiments seen at once, and writes the files it is asked for.
cat > "$work/bin/slope" <<FAKE
#!/usr/bin/env bash
gpu="\${CUDA_VISIBLE_DEVICES:-none}"
mkdir "$work/running/\$gpu" 2>/dev/null || echo "clash on GPU \$gpu: \$*" >> "$work/clashes"
ls "$work/running" | wc -l >> "$work/concurrency"
echo "\$gpu|\${XDG_CACHE_HOME:-}|\$*" >> "$work/calls"
[ "\${FAKE_FAIL:-}" != "\$1" ] || { rmdir "$work/running/\$gpu"; echo "stand-in failure" >&2; exit 3; }
sleep 0.5
while [ \$# -gt 0 ]; do
  case "\$1" in --csv|--json) echo "x" > "\$2"; shift ;; esac
  shift
done
echo "plans: 0 searched"; echo "geomean_speedup = 1"
rmdir "$work/running/\$gpu"
FAKE
chmod +x "$work/bin/"*

# run EXPECTED_EXIT ENV... -- ARGS...: the script with the stand-ins; output in $out.
run() {
  local expected="$1"; shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  rm -f "$work/calls" "$work/clashes" "$work/concurrency" "$work/samplers"
  out="$(env PATH="$work/bin:$PATH" XDG_CACHE_HOME="$work/cache" "${envs[@]}" \
    timeout 60 bash "$source_dir/scripts/gpu-experiments" "$work/bin/slope" "$work/out" "$@" 2>&1)"
  local rc=$?
  [ "$rc" -eq "$expected" ] || fail "with $* the script exited $rc, expected $expected: $out"
}

run 0 -- --quick --gpus 2 spmm setup lowrank memcheck layer_step
[ ! -e "$work/clashes" ] || fail "two experiments ran on one GPU at once: $(cat "$work/clashes")"
[ "$(sort -n "$work/concurrency" | tail -n1)" -eq 2 ] || fail "never two experiments at once: $(cat "$work/concurrency")"
[ "$(wc -l < "$work/calls")" -eq 6 ] || fail "expected 6 slope calls (spmm twice): $(cat "$work/calls")"
while IFS='|' read -r gpu cache args; do
  [[ "$gpu" == [01] ]] || fail "a call ran on GPU '$gpu': $args"
  [ "$cache" = "$work/cache/gpu$gpu" ] || fail "GPU $gpu's call used the tuning cache under '$cache': $args"
  [[ "$args" == *"--samples 10"* ]] || [[ "$args" == memcheck* ]] || fail "--quick was lost: $args"
done < "$work/calls"
grep -q -- "-i 1 " "$work/samplers" || fail "no clock sampler on GPU 1: $(cat "$work/samplers")"
grep -q -- "-i 0 " "$work/samplers" || fail "no clock sampler on GPU 0: $(cat "$work/samplers")"
# spmm's block is whole: nothing from another experiment between its first and last line.
block="$(sed -n '/spmm on GPU/,/spmm again with the tuning cache warm/p' <<< "$out")"
[ -n "$block" ] || fail "spmm's output is missing: $out"
! grep -qE "(setup|lowrank|memcheck|layer_step) on GPU|setup:|lowrank:|memcheck:" <<< "$block" \
  || fail "spmm's output is interleaved with another experiment's: $block"

# A failing experiment fails the run; the others still run.
run 1 FAKE_FAIL=setup -- --gpus 2 spmm setup lowrank
[[ "$out" == *"experiments failed: setup"* ]] || fail "the failure was not named: $out"
grep -q "|lowrank " "$work/calls" || fail "lowrank did not run after setup failed: $(cat "$work/calls")"

# More GPUs than the host has, or a bad count: refused before any experiment starts.
run 1 -- --gpus 3 spmm
[[ "$out" == *"--gpus 3, but nvidia-smi lists 2 GPU(s)"* ]] || fail "--gpus 3 not refused: $out"
[ ! -e "$work/calls" ] || fail "an experiment ran before --gpus 3 was refused"
run 1 -- --gpus two spmm
[[ "$out" == *"--gpus takes a positive whole number"* ]] || fail "--gpus two not refused: $out"

# The default: one experiment after the other, on the GPU the caller chose, its cache as given.
run 0 -- setup lowrank
[ "$(sort -n "$work/concurrency" | tail -n1)" -eq 1 ] || fail "the default ran experiments at once"
[ "$(cut -d'|' -f1-2 "$work/calls" | sort -u)" = "none|$work/cache" ] \
  || fail "the default changed the GPU or the cache: $(cat "$work/calls")"
echo "gpu_experiments_lanes_test: ok"
