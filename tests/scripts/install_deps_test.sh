#!/usr/bin/env bash
# install_deps (scripts/lib/common.sh) puts the Python packages it installs into the clone's
# .deps/python, never into python3's own environment (which Debian 12 and Ubuntu 23.04+
# refuse to pip install into), and every python3 the scripts run then finds them. Run from a
# copy of the scripts, with stand-ins for nvcc, dpkg and pip; the other python3 calls go to a
# fresh virtual environment that holds neither cuSPARSELt nor matplotlib.
# Usage: install_deps_test.sh SOURCE_DIR
set -uo pipefail
source_dir="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "install_deps_test: $*" >&2; exit 1; }

real_python="$(command -v python3)" || fail "no python3"
"$real_python" -m venv --without-pip "$work/venv" || fail "could not make a virtual environment"
root="$work/root"
mkdir -p "$root" "$work/bin"
cp -r "$source_dir/scripts" "$root/"
printf '#!/bin/sh\nexit 0\n' > "$work/bin/nvcc"
printf '#!/bin/sh\nexit 0\n' > "$work/bin/dpkg"  # every Debian package "installed"
# python3 -m pip install ... --target DIR PACKAGE: logged, and a stand-in of the package put
# into DIR; any other call runs the virtual environment's python3.
cat > "$work/bin/python3" <<FAKE
#!/usr/bin/env bash
if [ "\$1 \$2 \$3" = "-m pip install" ]; then
  echo "\$*" >> "$work/pip.log"
  target=""; package="\${!#}"
  while [ \$# -gt 0 ]; do [ "\$1" != --target ] || target="\$2"; shift; done
  [ -n "\$target" ] || exit 3  # into python3's own environment: refused, as PEP 668 does
  case "\$package" in
    nvidia-cusparselt-cu13*) mkdir -p "\$target/nvidia/cusparselt/include" && touch "\$target/nvidia/cusparselt/include/cusparseLt.h" ;;
    matplotlib) mkdir -p "\$target/matplotlib" && touch "\$target/matplotlib/__init__.py" ;;
  esac
  exit 0
fi
exec "$work/venv/bin/python3" "\$@"
FAKE
chmod +x "$work/bin/"*
export PATH="$work/bin:$PATH"
unset CUSPARSELT_ROOT PYTHONPATH

run() { bash -c 'source "$1/scripts/lib/common.sh"; install_deps plot; cusparselt_root; python3 -c "import matplotlib"' _ "$root"; }
found="$(run)" || fail "install_deps, cusparselt_root or the matplotlib import failed"
deps="$root/.deps/python"
[ "$found" = "$deps/nvidia/cusparselt" ] || fail "cuSPARSELt found at '$found', not in $deps"
[ "$(grep -c -- "--target $deps " "$work/pip.log")" -eq 2 ] || fail "expected two installs into $deps: $(cat "$work/pip.log")"
# A second run installs nothing, and a fresh shell finds both without installing.
found="$(run)" || fail "the second run failed"
[ "$found" = "$deps/nvidia/cusparselt" ] || fail "second run: cuSPARSELt found at '$found'"
[ "$(wc -l < "$work/pip.log")" -eq 2 ] || fail "the second run installed again: $(cat "$work/pip.log")"
echo "install_deps_test: passed"
