#!/usr/bin/env bash
# The library as another project uses it: installs BUILD_DIR into a temporary prefix, builds
# examples/ against that prefix with find_package(slope), and runs the examples (the GPU ones
# only where a GPU is visible; elsewhere they are built and linked).
# Usage: install_test.sh BUILD_DIR SOURCE_DIR CXX_COMPILER
set -euo pipefail
build="$1" source="$2" cxx="$3"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "install_test: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >/dev/null
"$work/prefix/bin/slope" --version >/dev/null || fail "the installed slope does not run"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$source/examples" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log" 2>&1 \
  || { cat "$work/configure.log" >&2; fail "examples/ does not configure against the installed package"; }
cmake --build "$work/build" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; fail "examples/ does not build against the installed package"; }

"$work/build/prune_and_memory" OPT-13B
set +e
"$work/build/prune_and_memory" No-Such-Model 2>"$work/bad.err"
status=$?
set -e
[ "$status" -eq 2 ] || fail "an unknown model exited with $status, not 2"
[ "$(wc -l <"$work/bad.err")" -eq 1 ] || fail "an unknown model did not get a one-line error"

if [ -x "$work/build/sparse_linear" ] && [ -x "$work/build/train_and_export" ]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    XDG_CACHE_HOME="$work/cache" "$work/build/sparse_linear" 1040 2064 1008
    XDG_CACHE_HOME="$work/cache" "$work/build/train_and_export"
  else
    echo "sparse_linear and train_and_export built and linked; no GPU here to run them"
  fi
fi
