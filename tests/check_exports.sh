#!/bin/sh
# check_exports.sh — a shared library exports exactly what its installed
# headers declare.
#
# usage: check_exports.sh NM SANITIZE LIBRARY HEADER...
# The libraries are compiled with hidden visibility and mark their public
# declarations TG_API (autograd/tg_api.h). Three checks:
#   - every function declared in HEADER... carries TG_API (a declaration
#     without it would compile and then fail to link against the .so);
#   - every symbol LIBRARY exports is declared TG_API in one of HEADER...
#     (nothing of libxsmm, OpenBLAS or our internal helpers leaks out);
#   - every TG_API declaration of HEADER... is exported.
# Sanitizer builds (SANITIZE other than "none") may add the
# instrumentation's own symbols (__asan_*, __ubsan_*, ...), which pass.
set -eu

nm=$1
sanitize=$2
lib=$3
shift 3

fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# A declaration starts at column 0 with a type and a tg_ name followed by
# "(" on the same line (the tree is clang-formatted); static inline
# functions and typedefs are not symbols.
decl='^[A-Za-z_][A-Za-z0-9_ *]*[ *]tg_[A-Za-z0-9_]*[(]'
unmarked=$(grep -H -E "$decl" "$@" | grep -v -E ':(TG_API|static|typedef|return) ' || true)
if [ -n "$unmarked" ]; then
  echo "FAIL: declarations without TG_API:" >&2
  printf '%s\n' "$unmarked" | sed 's/^/  /' >&2
  fail=1
fi

sed -n 's/^TG_API[^(]*[ *]\(tg_[A-Za-z0-9_]*\)(.*/\1/p' "$@" | sort -u >"$tmp/declared"
"$nm" -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sort -u >"$tmp/exported"
if [ "$sanitize" != none ]; then
  grep -v -E '^(__asan|__ubsan|__odr_asan|__sanitizer|__lsan)' "$tmp/exported" >"$tmp/e" || true
  mv "$tmp/e" "$tmp/exported"
fi

n=$(wc -l <"$tmp/declared")
if [ "$n" -eq 0 ]; then
  echo "FAIL: no TG_API declaration found in $*" >&2
  exit 1
fi
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -n "$extra" ]; then
  echo "FAIL: $lib exports symbols no installed header declares:" >&2
  printf '%s\n' "$extra" | sed 's/^/  /' >&2
  fail=1
fi
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
  echo "FAIL: $lib does not export functions its headers declare TG_API:" >&2
  printf '%s\n' "$missing" | sed 's/^/  /' >&2
  fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "ok: $lib exports exactly the $n functions its headers declare"
