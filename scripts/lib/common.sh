# Shared by scripts/test, scripts/reproduce and scripts/gpu-check. Source it; do not run it.
set -euo pipefail

SLOPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '[slope] %s\n' "$*" >&2; }
die() { printf '[slope] error: %s\n' "$*" >&2; exit 1; }

# `-h` or `--help` among a script's arguments (help_if_asked "$0" "$@"): print the comment at
# the script's top, which says how to call it, and exit 0 before anything is built or made.
help_if_asked() {
  local script="$1" arg
  shift
  for arg in "$@"; do
    case "$arg" in
      -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$script"; exit 0 ;;
    esac
  done
}

# Python packages the scripts install (cuSPARSELt, matplotlib, and CMake where the system's
# is too old) go into the clone, not into the system's Python: Debian 12 and Ubuntu 23.04+
# refuse `pip install` there (PEP 668, "externally-managed-environment"), and a clone's own
# folder needs no root either. Every python3 the scripts run sees it, and the commands pip
# put into its bin/ come first on PATH.
PYTHON_DEPS="$SLOPE_ROOT/.deps/python"
use_python_deps() {
  [ -d "$PYTHON_DEPS" ] || return 0
  case ":${PYTHONPATH:-}:" in *":$PYTHON_DEPS:"*) ;; *) export PYTHONPATH="$PYTHON_DEPS${PYTHONPATH:+:$PYTHONPATH}" ;; esac
  [ -d "$PYTHON_DEPS/bin" ] || return 0
  case ":$PATH:" in *":$PYTHON_DEPS/bin:"*) ;; *) export PATH="$PYTHON_DEPS/bin:$PATH" ;; esac
}
use_python_deps

# NVIDIA's installers put the CUDA toolkit in /usr/local/cuda ($CUDA_HOME where set) and leave
# PATH alone. Without nvcc on PATH neither CMake nor install_deps finds it, and the build
# leaves out the whole GPU library: its bin/ goes last on PATH then.
use_cuda_toolkit() {
  local home="${CUDA_HOME:-/usr/local/cuda}"
  command -v nvcc >/dev/null || [ ! -x "$home/bin/nvcc" ] || export PATH="$PATH:$home/bin"
}
use_cuda_toolkit

# True when the cmake on PATH is version $1 or newer.
cmake_at_least() {
  local have
  have="$(cmake --version 2>/dev/null | sed -n 's/^cmake version \([0-9][0-9.]*\).*/\1/p')"
  [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$1" "$have" | sort -V | head -n 1)" = "$1" ]
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

# Installs what the build needs and is missing: Debian packages through apt; CMake (where
# the system's is older than 3.25), cuSPARSELt and matplotlib through pip, into the clone.
# Idempotent: a second run installs nothing.
install_deps() {
  local want_plot="${1:-no}"
  # (PIP_ROOT_USER_ACTION: no warning about running as root, which the target folder makes
  # harmless; pip before 22.1 ignores it. --no-warn-conflicts: pip checks the target's packages
  # against every system package too, and printed "ERROR: ... botocore requires
  # python-dateutil<3.0.0" when matplotlib brought python-dateutil 4 into the target; the
  # scripts import no such system package, and the install itself succeeds.)
  local pip=(env PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check
             --no-warn-conflicts --target "$PYTHON_DEPS")
  if command -v dpkg >/dev/null && command -v apt-get >/dev/null; then
    local missing=()
    for pkg in cmake ninja-build g++ libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev python3-pip; do
      dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
      log "installing Debian packages: ${missing[*]}"
      as_root apt-get update -qq || true
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "could not install ${missing[*]}"
    fi
  fi
  # The build needs CMake 3.25 (Debian 12's); Ubuntu 22.04's is 3.22, so PyPI's comes then.
  if ! cmake_at_least 3.25; then
    log "installing CMake from PyPI (the one on PATH is missing or older than 3.25)"
    "${pip[@]}" 'cmake>=3.25' || die "could not install cmake"
    use_python_deps
    cmake_at_least 3.25 || die "CMake from PyPI did not take the place of the older one"
  fi
  # cuSPARSELt is not part of the CUDA toolkit: the wheel brings its header and library so
  # that every GPU source compiles and links, also on machines without a GPU.
  if [ -n "${CUSPARSELT_ROOT:-}" ]; then
    cusparselt_root >/dev/null || die "CUSPARSELT_ROOT=$CUSPARSELT_ROOT holds no include/cusparseLt.h"
  elif command -v nvcc >/dev/null && ! cusparselt_root >/dev/null; then
    log "installing cuSPARSELt (nvidia-cusparselt-cu13 0.8) from PyPI"
    "${pip[@]}" 'nvidia-cusparselt-cu13==0.8.*' || die "could not install nvidia-cusparselt-cu13"
    use_python_deps
  fi
  if [ "$want_plot" = plot ] && ! python3 -c 'import matplotlib' 2>/dev/null; then
    log "installing matplotlib from PyPI"
    "${pip[@]}" matplotlib || die "could not install matplotlib"
    use_python_deps
  fi
}

# Prints the cuSPARSELt root (holding include/ and lib/): $CUSPARSELT_ROOT when set (a
# library of the user's own, say a newer one), else the one install_deps put in the clone,
# else the one in python3's site-packages.
# Wheels up to 0.8 install it under nvidia/cusparselt, 0.9 and later under nvidia/cu13.
cusparselt_root() {
  if [ -n "${CUSPARSELT_ROOT:-}" ]; then
    [ -f "$CUSPARSELT_ROOT/include/cusparseLt.h" ] || return 1
    printf '%s\n' "$CUSPARSELT_ROOT"; return 0
  fi
  python3 - <<'PY'
import os, site, sys, sysconfig
paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
paths += [sysconfig.get_paths()["purelib"]] + site.getsitepackages()
for p in paths:
    for sub in ("cusparselt", "cu13"):
        root = os.path.join(p, "nvidia", sub)
        if os.path.exists(os.path.join(root, "include", "cusparseLt.h")):
            print(root); sys.exit(0)
sys.exit(1)
PY
}

# Configures and builds into $1 with extra CMake arguments after it.
build_slope() {
  local dir="$1"; shift
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  local cslt=()
  local root
  if root="$(cusparselt_root 2>/dev/null)"; then cslt=(-DCUSPARSELT_ROOT="$root"); fi
  cmake -S "$SLOPE_ROOT" -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release "${cslt[@]}" "$@" >/dev/null
  cmake --build "$dir" --parallel "$(nproc)"
}

# True when a CUDA GPU is visible.
have_gpu() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }

# Refuses a --gpus value N (scripts/gpu-experiments, gpu-check, reproduce) that is not a
# positive whole number or, above 1, asks for more GPUs than nvidia-smi lists.
require_gpus() {
  [[ "$1" =~ ^[1-9][0-9]*$ ]] || die "--gpus takes a positive whole number, not '$1'"
  [ "$1" -gt 1 ] || return 0
  local listed
  listed="$({ nvidia-smi -L 2>/dev/null || true; } | grep -c '^GPU ' || true)"
  [ "$listed" -ge "$1" ] || die "--gpus $1, but nvidia-smi lists $listed GPU(s) here"
}

# Samples the GPU's SM clock, power and clock-limit reasons every 100 ms into FILE, in the
# background, until gpu_state_stop. At its 700 W cap the H200 runs large products well below
# its top clock, so absolute times move between runs; this records by how much.
gpu_state_start() {
  GPU_STATE_PID=""
  command -v nvidia-smi >/dev/null || return 0
  # The GPU the experiment runs on: the one CUDA_VISIBLE_DEVICES names by number (as
  # gpu-experiments --gpus sets it), else the first; on a host of several GPUs the others
  # would blur the record.
  local index=0
  [[ "${CUDA_VISIBLE_DEVICES:-}" =~ ^[0-9]+$ ]] && index="$CUDA_VISIBLE_DEVICES"
  nvidia-smi -i "$index" \
    --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv,nounits -lms 100 > "$1" 2>/dev/null &
  GPU_STATE_PID=$!
  # A failing experiment ends the script (set -e): the sampler must not outlive it.
  trap '[ -z "${GPU_STATE_PID:-}" ] || kill "$GPU_STATE_PID" 2>/dev/null || true' EXIT
}

# Stops gpu_state_start's sampler, logs one line summarizing FILE and compresses it to
# FILE.gz (about a sixth of the size): uncompressed, the samples were a quarter of the bytes
# committed under results/, all of which travel with every GPU run (64 MiB at most).
gpu_state_stop() {
  [ -n "${GPU_STATE_PID:-}" ] || return 0
  kill "$GPU_STATE_PID" 2>/dev/null || true
  wait "$GPU_STATE_PID" 2>/dev/null || true
  GPU_STATE_PID=""
  local line
  if line="$(python3 "$SLOPE_ROOT/scripts/gpu_state.py" summarize "$1")"; then log "$line"; fi
  gzip -9nf "$1"
}
