#!/usr/bin/env bash
# What scripts/lib/common.sh finds and installs on a fresh machine. install_deps puts what it
# installs with pip into the clone's .deps/python, never into python3's own environment
# (which Debian 12 and Ubuntu 23.04+ refuse to pip install into), and the scripts then find
# it: cuSPARSELt, matplotlib for every python3 they run, and CMake from PyPI on PATH where the
# system's is older than 3.25 (Ubuntu 22.04's 3.22). A CUDA toolkit in $CUDA_HOME that is not
# on PATH (NVIDIA's installers leave PATH alone) is found. Run from copies of the scripts, with
# stand-ins for nvcc, dpkg, cmake and pip (a pip that refuses any install without --target);
# the other python3 calls go to a fresh virtual environment without cuSPARSELt or matplotlib.
# Usage: install_deps_test.sh SOURCE_DIR
set -uo pipefail
source_dir="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "install_deps_test: $*" >&2; exit 1; }

real_python="$(command -v python3)" || fail "no python3"
"$real_python" -m venv --without-pip "$work/venv" || fail "could not make a virtual environment"
mkdir -p "$work/bin" "$work/toolkit/bin"
printf '#!/bin/sh\nexit 0\n' > "$work/toolkit/bin/nvcc"
printf '#!/bin/sh\nexit 0\n' > "$work/bin/dpkg"  # every Debian package "installed"
# python3 -m pip install ... --target DIR PACKAGE: logged, and a stand-in of the package put
# into DIR; any other call runs the virtual environment's python3.
cat > "$work/bin/python3" <<FAKE
#!/usr/bin/env bash
if [ "\$1 \$2 \$3" = "-m pip install" ]; then
  echo "\$*" >> "\$PIP_LOG"
  target=""; package="\${!#}"
  while [ \$# -gt 0 ]; do [ "\$1" != --target ] || target="\$2"; shift; done
  [ -n "\$target" ] || exit 3  # into python3's own environment: refused, as PEP 668 does
  case "\$package" in
    nvidia-cusparselt-cu13*) mkdir -p "\$target/nvidia/cusparselt/include" && touch "\$target/nvidia/cusparselt/include/cusparseLt.h" ;;
    matplotlib) mkdir -p "\$target/matplotlib" && touch "\$target/matplotlib/__init__.py" ;;
    cmake*) mkdir -p "\$target/bin" && printf '#!/bin/sh\necho "cmake version 3.31.6"\n' > "\$target/bin/cmake" && chmod +x "\$target/bin/cmake" ;;
  esac
  exit 0
fi
exec "$work/venv/bin/python3" "\$@"
FAKE
chmod +x "$work/bin/"* "$work/toolkit/bin/nvcc"
unset CUSPARSELT_ROOT PYTHONPATH
# The system's own commands, without any nvcc: the stand-ins come before them.
system_path=/usr/bin:/bin
if PATH="$system_path" command -v nvcc >/dev/null; then
  echo "install_deps_test: skipped: nvcc in $system_path, and the test needs a PATH without one"
  exit 77
fi

# A copy of the scripts in $1 with a system CMake of version $2 and the toolkit in $3
# (CUDA_HOME); runs install_deps there, then prints where nvcc, cmake and cuSPARSELt are
# found, after checking that matplotlib imports.
run() {
  mkdir -p "$1/sys" && cp -r "$source_dir/scripts" "$1/"
  printf '#!/bin/sh\necho "cmake version %s"\n' "$2" > "$1/sys/cmake" && chmod +x "$1/sys/cmake"
  PATH="$work/bin:$1/sys:$system_path" CUDA_HOME="$3" PIP_LOG="$1/pip.log" bash -c '
    source "$1/scripts/lib/common.sh"
    install_deps plot && python3 -c "import matplotlib" || exit 1
    command -v nvcc || echo "no nvcc"; command -v cmake; cusparselt_root || echo "no cuSPARSELt"' _ "$1"
}
installs() { wc -l < "$1/pip.log"; }
expect() { [ "$2" = "$3" ] || fail "$1: found '$2', expected '$3'"; }

a="$work/a"  # a CMake new enough (Debian 12's) and a toolkit off PATH
expect "first run" "$(run "$a" 3.25.1 "$work/toolkit")" \
  "$work/toolkit/bin/nvcc"$'\n'"$a/sys/cmake"$'\n'"$a/.deps/python/nvidia/cusparselt"
[ "$(grep -c -- "--target $a/.deps/python " "$a/pip.log")" -eq 2 ] || fail "expected two installs into the clone: $(cat "$a/pip.log")"
# A second run installs nothing, and a fresh shell finds both.
expect "second run" "$(run "$a" 3.25.1 "$work/toolkit")" \
  "$work/toolkit/bin/nvcc"$'\n'"$a/sys/cmake"$'\n'"$a/.deps/python/nvidia/cusparselt"
[ "$(installs "$a")" -eq 2 ] || fail "the second run installed again: $(cat "$a/pip.log")"

b="$work/b"  # Ubuntu 22.04's CMake: PyPI's takes its place
expect "old CMake" "$(run "$b" 3.22.1 "$work/toolkit")" \
  "$work/toolkit/bin/nvcc"$'\n'"$b/.deps/python/bin/cmake"$'\n'"$b/.deps/python/nvidia/cusparselt"
grep -q -- "--target $b/.deps/python cmake>=3.25" "$b/pip.log" || fail "no CMake installed: $(cat "$b/pip.log")"
run "$b" 3.22.1 "$work/toolkit" > /dev/null || fail "the second run with an old CMake failed"
[ "$(installs "$b")" -eq 3 ] || fail "the second run installed again: $(cat "$b/pip.log")"

c="$work/c"  # no CUDA toolkit: no cuSPARSELt either (the GPU library is not built)
expect "no toolkit" "$(run "$c" 3.25.1 "$work/none")" "no nvcc"$'\n'"$c/sys/cmake"$'\n'"no cuSPARSELt"
[ "$(installs "$c")" -eq 1 ] || fail "without a toolkit, only matplotlib: $(cat "$c/pip.log")"
echo "install_deps_test: passed"
