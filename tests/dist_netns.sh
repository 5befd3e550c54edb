#!/bin/sh
# dist_netns.sh — data-parallel training between two "hosts": two network
# namespaces joined by a veth pair, MPI over TCP between them.
#
# usage: dist_netns.sh MPIRUN TAPEGRAD MKDATA
# mpirun starts in the first namespace; Open MPI reaches the second host
# through an rsh agent that runs its daemon there with `ip netns exec` (in
# place of ssh), and both its control channel and the ranks' messages are
# restricted to the veth subnet. Checks: 2 ranks on the 2 hosts end with
# the checkpoint of 1 process with the same --shards, byte for byte, and
# at least the job's gradient bytes crossed the veth.
# Exit 77 (skipped, never passed) without mpirun, as non-root, or where
# namespaces or veth pairs cannot be made; the namespaces are removed on
# exit.
set -u

mpirun=$1
tg=$2
mkdata=$3
skip() {
  echo "SKIP: $*"
  exit 77
}
[ -n "$mpirun" ] && command -v "$mpirun" >/dev/null 2>&1 || skip "no mpirun"
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
command -v ip >/dev/null 2>&1 || skip "no ip (iproute2)"

export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
tmp=$(mktemp -d)
a=tgA$$ # namespace and veth names, unique to this run
b=tgB$$
cleanup() {
  for ns in $a $b; do # any process left in our namespaces, then them
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add $a 2>"$tmp/err" && ip netns add $b 2>>"$tmp/err" || skip "cannot make namespaces: $(cat "$tmp/err")"
ip link add $a type veth peer name $b 2>"$tmp/err" || skip "cannot make a veth pair: $(cat "$tmp/err")"
# Each end is then named tgv in its namespace: Hydra names one interface
# for every host.
ip link set $a netns $a && ip link set $b netns $b &&
  ip -n $a link set $a name tgv && ip -n $b link set $b name tgv &&
  ip -n $a addr add 10.77.0.1/24 dev tgv && ip -n $b addr add 10.77.0.2/24 dev tgv &&
  ip -n $a link set tgv up && ip -n $b link set tgv up &&
  ip -n $a link set lo up && ip -n $b link set lo up || {
  echo "FAIL: cannot configure the veth pair"
  exit 1
}

# The rsh agent: `agent HOST COMMAND...` runs COMMAND on HOST's namespace.
cat >"$tmp/agent" <<EOF
#!/bin/sh
host=\$1
shift
case "\$host" in
10.77.0.1) exec ip netns exec $a sh -c "\$*" ;;
10.77.0.2) exec ip netns exec $b sh -c "\$*" ;;
esac
echo "agent: no host \$host" >&2
exit 1
EOF
chmod +x "$tmp/agent"
if "$mpirun" --version 2>&1 | grep -q HYDRA; then
  # MPICH: Hydra's proxies start through the agent as through rsh, and reach
  # mpiexec and each other on tgv; UCX would see one machine and use shared
  # memory, so TCP only, on tgv.
  printf '10.77.0.1:1\n10.77.0.2:1\n' >"$tmp/hosts"
  export UCX_TLS=tcp,self UCX_NET_DEVICES=tgv
  set -- -f "$tmp/hosts" -launcher rsh -launcher-exec "$tmp/agent" -iface tgv
else
  # Open MPI: its daemon starts through the agent; control and messages on
  # the veth subnet.
  printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' >"$tmp/hosts"
  set -- --allow-run-as-root --hostfile "$tmp/hosts" --bind-to none --mca plm_rsh_agent "$tmp/agent" \
    --mca btl self,tcp --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24
fi

fails=0
fail() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}
mkdir -p "$tmp/data" && "$mkdata" "$tmp/data" 530 100 3 || fail "mkdata"
args="--data $tmp/data --threads 1 --quiet --json --shards 2 --epochs 2 --optimizer adam"
timeout -k 5 120 "$tg" train $args --save "$tmp/one.ckpt" >"$tmp/out" 2>&1 || {
  cat "$tmp/out"
  fail "1 process"
}
before=$(ip netns exec $a cat /sys/class/net/tgv/statistics/tx_bytes)
timeout -k 5 120 ip netns exec $a "$mpirun" "$@" -np 2 "$tg" train $args --save "$tmp/two.ckpt" \
  >"$tmp/out" 2>&1
rc=$?
after=$(ip netns exec $a cat /sys/class/net/tgv/statistics/tx_bytes)
# 530 samples in batches of 100: 6 steps an epoch, 2 epochs.
need=$(sed -n 's/.*"bytes_per_step":\([0-9]*\).*/\1/p' "$tmp/out" | head -1)
need=$((${need:-1} * 12))
if [ "$rc" -ne 0 ]; then
  cat "$tmp/out"
  fail "2 ranks on 2 hosts: exit $rc"
elif ! cmp -s "$tmp/one.ckpt" "$tmp/two.ckpt"; then
  fail "2 ranks on 2 hosts differ from 1 process"
elif [ $((after - before)) -lt "$need" ]; then
  fail "2 ranks on 2 hosts: $((after - before)) bytes left host 1 over the veth, the gradients alone are $need"
else
  echo "ok: 2 ranks on 2 hosts (namespaces, MPI over TCP on a veth) = 1 process, byte for byte;" \
    "$((after - before)) bytes crossed the veth (gradients: $need)"
fi
[ "$fails" -eq 0 ]
