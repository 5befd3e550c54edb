#!/usr/bin/env bash
# examples.sh — sets everything up (setup.sh: packages, data, the float
# build), then runs every example program of the book's chapters in turn,
# each writing its figures into OUT_DIR (default examples-out/ at the root
# of the tree; git ignores it) and printing its numbers.
#
#   scripts/examples.sh [OUT_DIR]          all of them
#   build/examples/ch6_optimizers          one, from any directory
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/examples-out}
bash "$root/scripts/setup.sh" --config float
mkdir -p "$out"
cd "$out"
n=0
for exe in "$root"/build/examples/ch*; do
  [ -x "$exe" ] && [ -f "$exe" ] || continue
  echo "=== $(basename "$exe")"
  "$exe"
  n=$((n + 1))
done
echo "=== $n examples; figures in $out"
