#!/usr/bin/env bash
# cmake/WriteBuildInfo.cmake, the commit every build records (and every result's JSON meta
# names), on a scratch git repository: HEAD for a clean tree, "-dirty" where the tracked files
# differ, SLOPE_COMMIT taken as named where the .git lacks it, and the stale-.git case (an
# older commit named while the files are newer) marked "-dirty".
# Usage: build_commit_test.sh SOURCE_DIR CMAKE_COMMAND
set -uo pipefail
source_dir="$1"
cmake_command="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GIT_CEILING_DIRECTORIES="$work"  # no repository above the scratch one is found
fail() { echo "build_commit_test: $*" >&2; exit 1; }
command -v git >/dev/null || { echo "build_commit_test: git not found, skipped"; exit 77; }

repo="$work/repo"
mkdir -p "$repo"
# recorded [NAME]: the commit a build of $repo records with SLOPE_COMMIT=NAME (unset without).
recorded() {
  local out="$work/build_info.cpp" env_args=(-u SLOPE_COMMIT)
  [ $# -eq 0 ] || env_args=(SLOPE_COMMIT="$1")
  rm -f "$out"
  env "${env_args[@]}" "$cmake_command" -DSOURCE_DIR="$repo" -DOUTPUT="$out" -DBUILD_TYPE=Release \
    -P "$source_dir/cmake/WriteBuildInfo.cmake" > /dev/null 2>&1 || return 1
  sed -n 's/.*build_commit() { return "\([^"]*\)"; }.*/\1/p' "$out"
}
expect() {
  local want="$1" got
  shift
  got="$(recorded "$@")" || fail "WriteBuildInfo.cmake failed ($*)"
  [ "$got" = "$want" ] || fail "SLOPE_COMMIT=${1:-(unset)}: got '$got', want '$want'"
}

# No .git at all: the caller's name, or "unknown".
expect unknown
expect 1234abc 1234abc

git_in() { git -C "$repo" -c user.name=test -c user.email=test@example.com "$@" >/dev/null; }
git_in init -q
echo one > "$repo/file.txt"
git_in add -A && git_in commit -q -m one
first="$(git -C "$repo" rev-parse HEAD)"
expect "$first"                 # clean tree, HEAD
expect "$first" "$first"        # the same, named
echo changed > "$repo/file.txt"
expect "$first-dirty"           # a tracked file changed
expect "$first-dirty" "$first"
echo two > "$repo/file.txt"
git_in commit -q -am two
second="$(git -C "$repo" rev-parse HEAD)"
expect "$second"
expect "$first-dirty" "$first"  # an older commit named: the files are not its
echo untracked > "$repo/new.txt"
expect "$second" "$second"      # untracked files are not the code's
expect "$(printf 'f%.0s' {1..40})" "$(printf 'f%.0s' {1..40})"  # not in this .git: as named
expect stand-in stand-in
expect "$second-dirty" "$second-dirty"  # already marked: left as it is
echo "build_commit_test: ok"
