#!/bin/sh
# check_exports.sh — the shared library exports only tg_-prefixed symbols.
#
# usage: check_exports.sh NM LIBRARY [SANITIZE]
# Every defined dynamic symbol must start with tg_, so nothing of libxsmm,
# OpenBLAS or our static helpers leaks into users' namespaces. Sanitizer
# builds (SANITIZE other than "none") may add the instrumentation's own
# symbols (__asan_*, __ubsan_*, __odr_asan*, __sanitizer_*), which pass.
set -eu

nm=$1
lib=$2
sanitize=${3:-none}

syms=$("$nm" -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }')
total=$(printf '%s\n' "$syms" | grep -c '^tg_' || true)
if [ "$total" -eq 0 ]; then
  echo "FAIL: $lib exports no tg_ symbol at all" >&2
  exit 1
fi

bad=$(printf '%s\n' "$syms" | grep -v '^tg_' || true)
if [ "$sanitize" != none ] && [ -n "$bad" ]; then
  bad=$(printf '%s\n' "$bad" | grep -v -E '^(__asan|__ubsan|__odr_asan|__sanitizer|__lsan)' || true)
fi
if [ -n "$bad" ]; then
  echo "FAIL: $lib exports symbols without the tg_ prefix:" >&2
  printf '%s\n' "$bad" | sed 's/^/  /' >&2
  exit 1
fi
echo "ok: $total symbols exported, all tg_-prefixed"
