#!/bin/sh
# install_test.sh — installs the build into a temporary DESTDIR and builds a
# program outside the tree against it, the way a user would.
#
# usage: install_test.sh MESON BUILDDIR PKG_CONFIG CC SANITIZE OUTSIDE_C OUTSIDE_PLOT_C
#
# Checks, in order: `meson install --destdir` works; the generated
# tapegrad.pc carries the private dependencies static linking needs
# (libxsmm, openblas, -lm, -fopenmp); the engine is lean: neither its .pc
# nor `ldd libtapegrad.so` names cairo, fontconfig or freetype;
# `pkg-config --cflags --libs tapegrad` alone builds OUTSIDE_C against the
# shared library, which runs from the staged tree; with those flags, axes
# passed as int64_t[] instead of int[] do not compile; `pkg-config --static`
# with -l:libtapegrad.a links the archive into a program that needs no
# libtapegrad.so; `pkg-config --cflags --libs tapegrad-plot` builds and runs
# OUTSIDE_PLOT_C, which draws a PNG. The .pc files are relocatable (prefix
# from ${pcfiledir}), so the staged copies resolve to the staged paths
# without a sysroot.
set -eu

meson=$1
builddir=$2
pkgconfig=$3
cc=$4 # may be several words (a launcher, then the compiler)
sanitize=$5
outside=$6
outside_plot=$7

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

"$meson" install -C "$builddir" --destdir "$tmp/stage" --no-rebuild --quiet ||
  fail "meson install --destdir failed"

pc=$(find "$tmp/stage" -name tapegrad.pc)
if [ -z "$pc" ] || [ "$(printf '%s\n' "$pc" | wc -l)" -ne 1 ]; then
  fail "expected one installed tapegrad.pc, found: '$pc'"
fi
echo "installed: ${pc#"$tmp/stage"}"

# --- the .pc file itself ----------------------------------------------------
field() { sed -n "s/^$1:[[:space:]]*//p" "$pc"; }
for want in libxsmm openblas; do
  field Requires.private | grep -q -w "$want" || fail "Requires.private lacks $want:
$(cat "$pc")"
done
for want in -lm -fopenmp; do
  field Libs.private | grep -q -e "$want" || fail "Libs.private lacks $want:
$(cat "$pc")"
done
field Libs | grep -q -e '-ltapegrad' || fail "Libs lacks -ltapegrad"

# --- the engine links no graphics library -----------------------------------
graphics='cairo|fontconfig|freetype|pixman|png'
if grep -E -i "$graphics" "$pc"; then
  fail "tapegrad.pc names a graphics library:
$(cat "$pc")"
fi
so=$(find "$tmp/stage" -name 'libtapegrad.so.*.*' | head -n 1)
[ -n "$so" ] || fail "no libtapegrad.so.* installed"
if ldd "$so" | grep -E -i "$graphics"; then
  fail "ldd ${so#"$tmp/stage"} names a graphics library"
fi
[ -n "$(find "$tmp/stage" -name tapegrad-plot.pc)" ] || fail "no tapegrad-plot.pc installed"

PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH

cflags=$("$pkgconfig" --cflags tapegrad) || fail "pkg-config --cflags tapegrad"
libdir=$("$pkgconfig" --variable=libdir tapegrad)
case "$cflags" in
*"$tmp/stage"*/include/tapegrad*) ;;
*) fail "cflags do not point into the staged tree: $cflags" ;;
esac
if [ ! -e "$libdir/libtapegrad.so" ] || [ ! -e "$libdir/libtapegrad.a" ]; then
  fail "libdir $libdir lacks libtapegrad.so or libtapegrad.a"
fi

san=
[ "$sanitize" = none ] || san="-fsanitize=$sanitize"

# --- shared -----------------------------------------------------------------
libs=$("$pkgconfig" --libs tapegrad)
echo "shared: cc $cflags ... $libs"
# shellcheck disable=SC2086 # word splitting of flags is intended
$cc -std=c11 -Wall -Wextra -Werror $san $cflags "$outside" $libs -lm -o "$tmp/outside-shared" ||
  fail "building against the shared library"
LD_LIBRARY_PATH=$libdir ldd "$tmp/outside-shared" | grep libtapegrad | grep -q "$tmp/stage" ||
  fail "outside-shared does not load the staged libtapegrad.so"
LD_LIBRARY_PATH=$libdir "$tmp/outside-shared" || fail "outside-shared ran and failed"

# --- index types --------------------------------------------------------------
# Axes are int[], shapes int64_t[]: with the .pc's flags, int64_t axes do
# not compile (they would be read as two ints each), int axes do.
for t in int64_t int; do
  printf '#include <tapegrad.h>\ntg_tensor *f(tg_tape *t, tg_tensor *x) {\n  return tg_sum(t, x, (%s[]){0, 1}, 2, 0);\n}\n' \
    "$t" >"$tmp/axes_$t.c"
  # shellcheck disable=SC2086
  if $cc -std=c11 $cflags -c "$tmp/axes_$t.c" -o "$tmp/axes_$t.o" 2>"$tmp/axes_$t.err"; then
    [ "$t" = int ] || fail "int64_t axes compiled with the .pc's flags"
  else
    [ "$t" = int64_t ] || fail "int axes did not compile: $(cat "$tmp/axes_$t.err")"
    grep -q "incompatible-pointer-types" "$tmp/axes_$t.err" ||
      fail "int64_t axes failed for another reason: $(cat "$tmp/axes_$t.err")"
  fi
done

# --- static -----------------------------------------------------------------
# -l:libtapegrad.a picks the archive next to the .so; everything after it
# comes from the .pc's private fields.
slibs=$("$pkgconfig" --static --libs tapegrad | sed 's/-ltapegrad\b/-l:libtapegrad.a/')
echo "static: cc $cflags ... $slibs"
# shellcheck disable=SC2086
$cc -std=c11 -Wall -Wextra -Werror $san $cflags "$outside" $slibs -lm -o "$tmp/outside-static" ||
  fail "building against the static library"
if readelf -d "$tmp/outside-static" | grep NEEDED | grep -q libtapegrad; then
  fail "outside-static still needs libtapegrad.so"
fi
"$tmp/outside-static" || fail "outside-static ran and failed"

# --- the plot library ----------------------------------------------------------
pcflags=$("$pkgconfig" --cflags tapegrad-plot) || fail "pkg-config --cflags tapegrad-plot"
plibs=$("$pkgconfig" --libs tapegrad-plot) || fail "pkg-config --libs tapegrad-plot"
case "$plibs" in
*-ltapegrad-plot*-ltapegrad* | *-ltapegrad*-ltapegrad-plot*) ;;
*) fail "tapegrad-plot's libs lack -ltapegrad-plot or -ltapegrad: $plibs" ;;
esac
echo "plot: cc $pcflags ... $plibs"
# shellcheck disable=SC2086
$cc -std=c11 -Wall -Wextra -Werror $san $pcflags "$outside_plot" $plibs -o "$tmp/outside-plot" ||
  fail "building against the plot library"
(cd "$tmp" && LD_LIBRARY_PATH=$libdir ./outside-plot) || fail "outside-plot ran and failed"

echo "ok: installed, built and ran outside.c (shared and static) and outside_plot.c"
