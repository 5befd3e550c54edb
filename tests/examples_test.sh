#!/usr/bin/env bash
# examples_test.sh — runs every example program quickly (TG_EXAMPLE_QUICK=1:
# fewer iterations and samples) in a temporary directory of its own and
# checks that it exits 0, prints something, and draws at least one PNG and
# one SVG, each a real file of its kind.
# usage: examples_test.sh EXAMPLE...
set -u
pass=0
fail=0
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
for exe in "$@"; do
  exe=$(realpath "$exe")
  name=$(basename "$exe")
  dir=$top/$name
  mkdir -p "$dir"
  if ! (cd "$dir" && TG_EXAMPLE_QUICK=1 "$exe" >stdout 2>stderr); then
    echo "FAIL: $name exited non-zero: $(tail -c 400 "$dir/stderr")"
    fail=$((fail + 1))
    continue
  fi
  bad=""
  [ -s "$dir/stdout" ] || bad="printed nothing"
  pngs=$(find "$dir" -name '*.png' | wc -l)
  svgs=$(find "$dir" -name '*.svg' | wc -l)
  [ "$pngs" -gt 0 ] && [ "$svgs" -gt 0 ] || bad="drew $pngs PNG and $svgs SVG files"
  for f in "$dir"/*.png; do
    [ -e "$f" ] || continue
    [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' ')" = 89504e47 ] || bad="$(basename "$f") is not a PNG"
  done
  for f in "$dir"/*.svg; do
    [ -e "$f" ] || continue
    grep -q '<svg' "$f" || bad="$(basename "$f") is not an SVG"
  done
  if [ -n "$bad" ]; then
    echo "FAIL: $name: $bad"
    fail=$((fail + 1))
  else
    echo "ok: $name ($pngs PNG, $svgs SVG)"
    pass=$((pass + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
