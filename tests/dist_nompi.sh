#!/bin/sh
# dist_nompi.sh — a tapegrad built without MPI refuses distributed training
# as a usage error (exit 2) that names the meson option, whether asked with
# --distributed on or started by mpirun (seen in its environment).
# usage: dist_nompi.sh TAPEGRAD
set -u
tg=$1
fails=0
expect2() { # DESCRIPTION COMMAND...
  what=$1
  shift
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -eq 2 ] && echo "$out" | grep -q -- "-Dmpi=enabled"; then
    echo "ok: $what: exit 2: $out"
  else
    echo "FAIL: $what: exit $rc, want 2 and a message naming -Dmpi=enabled: $out"
    fails=$((fails + 1))
  fi
}
expect2 "--distributed on" "$tg" train --distributed on --epochs 1
expect2 "under mpirun (auto)" env OMPI_COMM_WORLD_SIZE=2 "$tg" train --epochs 1
expect2 "under mpirun, --distributed auto" env PMI_SIZE=2 "$tg" train --distributed auto --epochs 1
[ "$fails" -eq 0 ]
