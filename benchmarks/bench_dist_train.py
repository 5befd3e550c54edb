#!/usr/bin/env python3
"""bench_dist_train.py — data-parallel training throughput: tapegrad over MPI
against PyTorch DDP over Gloo, on the same machine, cores, models and batch,
in one run (bench_dist measures the exchange alone).

Per model (default two-layer-net, multi-layer-net, simple-convnet,
deep-convnet; batch 100, the book's optimizer), samples per second of the
second of two epochs over the first --limit samples of Fashion-MNIST, in
these configurations:

  tg-n1t2     `tapegrad train --threads 2`, one process
  tg-n1t1     `tapegrad train --threads 1`, one process
  tg-n2-shm   `mpirun -np 2 ... tapegrad train --threads 1` over shared
              memory (--mca btl self,vader); each rank computes half of
              every batch
  tg-n2-tcp   the same over TCP on the loopback (--mca btl self,tcp
              --mca btl_tcp_if_include lo)
  tg-n1t1-cpuK  `tapegrad train --threads 1` pinned to CPU K (not run
              unless named): with tg-n1t1-cpu0 and tg-n1t1-cpu1 the report
              adds the efficiency against the two cores' own speeds
  torch-n1t1  PyTorch, one process, one thread
  ddp-n2      PyTorch DistributedDataParallel, 2 processes x 1 thread,
              backend gloo (TCP on the loopback), default 25 MiB buckets;
              each process takes its half of every global batch

PyTorch runs in its best configuration on this kind of machine (see
compare_torch.py, whose model definitions and data reading this reuses):
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp, the glibc malloc
tunables, OMP_NUM_THREADS=1 and torch.set_num_threads(1); the data in one
uint8 tensor, a permutation per epoch (the same on both processes), each
batch gathered with index_select and scaled to [0, 1].

tapegrad's 2-rank runs also report, from their epoch JSON, the step split
into compute, exchange (the messages) and wait (for the slower rank), in
milliseconds per step (means over the ranks), and the bytes each rank
sends per step. Figures:

  <model>/<config>           samples/s, median over --repeats (with min, max)
  <model>/efficiency-<net>   tg-n2-<net> / (2 x tg-n1t1): the scaling
                             efficiency; efficiency_2t-<net> is tg-n2-<net>
                             / tg-n1t2 (the same two cores, used by threads)
  <model>/efficiency_cores-<net>  tg-n2-<net> / (the sum of the pinned
                             tg-n1t1-cpuK): the vCPUs of a shared host can
                             differ by 15% on the same work, and two ranks
                             of equal shares go at the slower one's pace, so
                             2 x tg-n1t1 (on whichever core it got) is no
                             fair measure of them; core_ratio is the slower
                             pinned run over the faster
  <model>/ddp-efficiency     ddp-n2 / (2 x torch-n1t1)
  <model>/over-ddp           tg-n2-shm / ddp-n2 (above 1: tapegrad faster)

Validation before a run counts: two epochs, finite losses, the second lower
than the first; for 2 ranks, compute + exchange + wait within 5% of the
epoch's seconds. The configurations of a model run one after another within
each repeat, so drift on a shared machine touches them alike; the 1-minute
load average is printed before and after.

Run (from the top of the repository, after `ninja -C build`; as root
mpirun gets --allow-run-as-root):

  /usr/bin/python3 benchmarks/bench_dist_train.py
  /usr/bin/python3 benchmarks/bench_dist_train.py --models simple-convnet --repeats 5

--weak measures weak scaling instead: the 2-process runs (tg-n2-*, ddp-n2)
use a global batch of 2 x --batch, so that each process computes --batch
samples a step, as the 1-process runs do (Horovod's and DDP's published
scaling figures are of this kind). The efficiency is the same ratio of
samples/s; it is not the figure at a fixed global batch, and the report says
which one it is.

Options: --build DIR (default build), --models LIST, --configs LIST (the
names above), --limit MODEL=N,... (defaults below), --batch N, --weak, --repeats N
(default 3), --json (adds one JSON line per figure: {"bench":"dist_train",
"name":...,"samples_per_s":...,"min":...,"max":...} and the ratios).

--project ALPHA_US,BETA_NS (from bench_dist's cost model line) adds a
projection to 8-64 nodes, each computing the 2-rank runs' micro-batch
(batch/2 samples, the measured compute time per step of tg-n2-shm), the
gradient buffer of n bytes (tg-n2-shm's bytes per step: at 2 ranks each
sends n) exchanged by

  ring                         T = 2(N-1) alpha + 2(N-1)/N n beta
  recursive halving/doubling   T = 2 log2(N) alpha + 2(N-1)/N n beta

and the efficiency compute / (compute + T): the share of N nodes' time
spent computing (speed-up over one node = N x efficiency).
"""

import argparse
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_torch as ct  # noqa: E402  (the PyTorch models and data reading)
import tg_train  # noqa: E402  (tapegrad train --json, run and validated)

MODELS = ["two-layer-net", "multi-layer-net", "simple-convnet", "deep-convnet"]
LIMIT = {"two-layer-net": 60000, "multi-layer-net": 60000, "simple-convnet": 20000, "deep-convnet": 6000}
CONFIGS = ["tg-n1t2", "tg-n1t1", "tg-n2-shm", "tg-n2-tcp", "torch-n1t1", "ddp-n2"]
PINNED = "tg-n1t1-cpu"  # + K: tg-n1t1 pinned to CPU K
BTL = {"shm": ["--mca", "btl", "self,vader"],
       "tcp": ["--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo"]}


def parse_args():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description="data-parallel throughput, tapegrad vs DDP (see the top of the file)")
    p.add_argument("--build", default=os.path.join(root, "build"))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--limit", default="", help="MODEL=N,... samples per epoch")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--weak", action="store_true", help="2-process runs at a global batch of 2 x --batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--project", default="", help="ALPHA_US,BETA_NS: project to 8-64 nodes")
    # internal: one PyTorch process (RANK WORLD PORT MODEL LIMIT BATCH)
    p.add_argument("--torch-worker", nargs=6, help=argparse.SUPPRESS)
    return p.parse_args()


# ---------------------------------------------------------------------------
# PyTorch side: one process of a DDP job (world 1: plain PyTorch)


def torch_worker(rank, world, port, kind, limit, batch):
    import torch  # the parent set the environment (threads, loader, malloc)

    torch.set_num_threads(1)
    torch.manual_seed(1)
    torch.ones(64, 64) @ torch.ones(64, 64)  # loads the BLAS, for the check below
    with open("/proc/self/maps") as f:
        blas = sorted({line.split()[-1] for line in f if "blas" in line and "/" in line})
    if not any(ct.OPENMP_BLAS in p for p in blas):
        sys.exit(f"bench_dist_train: PyTorch did not load {ct.OPENMP_BLAS} (loaded: {blas})")
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    pixels, dims = ct.read_idx(os.path.join(ct.FASHION, "train-images-idx3-ubyte.gz"))
    labels, _ = ct.read_idx(os.path.join(ct.FASHION, "train-labels-idx1-ubyte.gz"))
    X = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(dims[0], dims[1] * dims[2])
    T = torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()
    n = min(limit, dims[0])
    X, T = X[:n].contiguous(), T[:n].contiguous()
    net = ct.torch_model(torch, kind)  # the same initial weights on every process (seed 1)
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    model.train()
    opt = ct.torch_optimizer(torch, kind, model)
    loss_fn = torch.nn.CrossEntropyLoss()
    steps = (n + batch - 1) // batch
    losses, seconds = [], []
    for epoch in range(2):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))  # alike on all
        if world > 1:
            dist.barrier()
        t0, total = time.perf_counter(), 0.0
        for s in range(steps):
            idx = perm[s * batch:(s + 1) * batch]
            idx = idx[len(idx) * rank // world:len(idx) * (rank + 1) // world]  # this process's part
            x = X.index_select(0, idx).float().div_(255).view(-1, 1, dims[1], dims[2])
            loss = loss_fn(model(x), T.index_select(0, idx))
            opt.zero_grad()
            loss.backward()  # DDP: the mean over processes, bucketed allreduce
            opt.step()
            total += loss.item()
        seconds.append(time.perf_counter() - t0)
        losses.append(total / steps)
    if world > 1:
        dist.destroy_process_group()
    if rank == 0:
        print(json.dumps({"seconds": seconds, "losses": losses, "torch": torch.__version__, "blas": blas}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_torch(kind, world, a):
    """({seconds, losses, ...} of rank 0, None) or (None, why)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", LD_LIBRARY_PATH=ct.OPENMP_BLAS,
               GLIBC_TUNABLES=ct.MALLOC_TUNABLES)
    env.pop("OPENBLAS_NUM_THREADS", None)
    port = free_port()
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--torch-worker", str(r), str(world),
                               str(port), kind, str(limit_of(kind, a)), str(batch_of(world, a))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for r in range(world)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=1200))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if any(p.returncode != 0 for p in procs):
        err = " | ".join((e.strip().splitlines() or ["?"])[-1] for _, e in outs)
        return None, f"PyTorch ({world} process{'es' if world > 1 else ''}) failed: {err}"
    return json.loads(outs[0][0].strip().splitlines()[-1]), None


# ---------------------------------------------------------------------------
# tapegrad side


def mpirun_prefix(net):
    mpirun = shutil.which("mpirun")
    if not mpirun:
        return None
    pre = [mpirun, "--bind-to", "none", "--oversubscribe", "-np", "2"] + BTL[net]
    if os.geteuid() == 0:
        pre.insert(1, "--allow-run-as-root")
    return pre


def run_tg(kind, ranks, threads, net, a, cpu=None):
    """(the second epoch's JSON, None) or (None, why); cpu: pin the process to it."""
    pre = ()
    if ranks > 1:
        pre = mpirun_prefix(net)
        if pre is None:
            return None, "no mpirun"
    epochs, why = tg_train.train(a.build, kind, 2, threads, batch=batch_of(ranks, a),
                                 limit=limit_of(kind, a), prefix=pre,
                                 cpus={cpu} if cpu is not None else None, timeout=1200)
    if not epochs:
        return None, why
    e = epochs[1]
    if ranks > 1:
        parts = e["compute_s"] + e["exchange_s"] + e["wait_s"]
        if abs(parts - e["seconds"]) > 0.05 * e["seconds"] + 0.005:
            return None, f"tapegrad train: the step split adds to {parts} s, the epoch took {e['seconds']} s"
    return e, None


def batch_of(processes, a):
    """The global batch of a run of this many processes."""
    return a.batch * processes if a.weak else a.batch


def limit_of(kind, a):
    for item in filter(None, a.limit.split(",")):
        k, v = item.split("=")
        if k == kind:
            return int(v)
    return LIMIT.get(kind, 10000)


def run_config(kind, config, a):
    """(samples/s, {split}, None) or (None, None, why)."""
    n = min(limit_of(kind, a), 60000)
    if config.startswith("tg-"):
        ranks, threads, net = (1, 2, None) if config == "tg-n1t2" else (1, 1, None) if config.startswith("tg-n1t1") \
            else (2, 1, config.split("-")[-1])
        cpu = int(config[len(PINNED):]) if config.startswith(PINNED) else None
        e, why = run_tg(kind, ranks, threads, net, a, cpu)
        if e is None:
            return None, None, why
        split = None
        if ranks > 1:
            split = {k: 1e3 * e[k + "_s"] / e["steps"] for k in ("compute", "exchange", "wait")}
            split["bytes"] = e["bytes_per_step"]
        return n / e["seconds"], split, None
    res, why = run_torch(kind, 2 if config == "ddp-n2" else 1, a)
    if res is None:
        return None, None, why
    if not all(ct.finite(v) for v in res["losses"]) or not res["losses"][1] < res["losses"][0]:
        return None, None, f"PyTorch: epoch losses {res['losses']} (not finite or not decreasing)"
    return n / res["seconds"][1], {"torch": res["torch"]}, None


def project(a, models, splits):
    alpha, beta = (float(v) for v in a.project.split(","))
    alpha, beta = alpha * 1e-6, beta * 1e-9  # seconds, seconds per byte
    nodes = [8, 16, 32, 64]
    print(f"  projection: alpha {1e6 * alpha:g} us, beta {1e9 * beta:g} ns/byte; each node computes "
          f"{batch_of(2, a) // 2} samples a step; efficiency = compute / (compute + exchange)")
    print(f"  {'model':<16} {'compute ms':>10} {'MiB':>6}  " + "  ".join(f"{'ring/rhd N=' + str(n):>15}" for n in nodes))
    out = []
    for kind in models:
        sp = [s for s in splits.get((kind, "tg-n2-shm"), []) if s and "compute" in s]
        if not sp:
            continue
        c = 1e-3 * statistics.median(s["compute"] for s in sp)
        n = sp[0]["bytes"]
        cols = []
        for N in nodes:
            band = 2 * (N - 1) / N * n * beta
            eff = {"ring": c / (c + 2 * (N - 1) * alpha + band),
                   "rhd": c / (c + 2 * math.log2(N) * alpha + band)}
            cols.append(f"{eff['ring']:7.2f}/{eff['rhd']:<7.2f}")
            out += [{"bench": "dist_train", "name": f"{kind}/projected-{alg}-n{N}", "efficiency": round(e, 3)}
                    for alg, e in eff.items()]
        print(f"  {kind:<16} {1e3 * c:10.3f} {n / 2**20:6.2f}  " + "  ".join(f"{x:>15}" for x in cols))
    return out


def main():
    a = parse_args()
    if a.torch_worker:
        r, w, port, kind, limit, batch = a.torch_worker
        return torch_worker(int(r), int(w), int(port), kind, int(limit), int(batch))
    models = [m for m in a.models.split(",") if m]
    configs = [c for c in a.configs.split(",") if c]
    pinned = [c for c in configs if re.fullmatch(PINNED + "[0-9]+", c)]
    if any(c not in CONFIGS and c not in pinned for c in configs):
        sys.exit(f"bench_dist_train: --configs: {a.configs} (known: {','.join(CONFIGS)}, {PINNED}K)")
    cpus = sorted(os.sched_getaffinity(0))
    for c in pinned:
        if int(c[len(PINNED):]) not in cpus:
            sys.exit(f"bench_dist_train: --configs: {c}: this process may run only on CPUs {cpus}")
    load0 = os.getloadavg()[0]
    sps = {(m, c): [] for m in models for c in configs}
    splits = {(m, c): [] for m in models for c in configs}
    for rep in range(a.repeats):
        for kind in models:
            for config in configs:
                v, split, why = run_config(kind, config, a)
                if v is None:
                    sys.exit(f"bench_dist_train: {kind} {config}: {why}")
                sps[(kind, config)].append(v)
                splits[(kind, config)].append(split)
                print(f"  repeat {rep + 1}: {kind:<16} {config:<13} {v:10.0f} samples/s", file=sys.stderr)
    load1 = os.getloadavg()[0]

    def med(kind, config):
        v = sps.get((kind, config))
        return statistics.median(v) if v else None

    batch = (f"batch {a.batch} per process: 2-process runs at a global batch of {2 * a.batch} (weak scaling)"
             if a.weak else f"batch {a.batch}: 2-process runs split it (a fixed global batch)")
    print(f"samples/s of the second of two epochs (Fashion-MNIST, {batch}), median of {a.repeats} "
          f"(min-max); 1-minute load average {load0:.2f} before, {load1:.2f} after")
    print(f"  {'model':<16} {'config':<13} {'limit':>6} {'samples/s':>10} {'min-max':>15} "
          f"{'compute':>8} {'exchange':>8} {'wait':>8} {'bytes/step':>11}   (ms per step, means over ranks)")
    records = []
    for kind in models:
        for config in configs:
            v = sps[(kind, config)]
            m = statistics.median(v)
            sp = [s for s in splits[(kind, config)] if s and "compute" in s]
            cols = ""
            if sp:
                cols = "".join(f" {statistics.median(s[k] for s in sp):8.2f}" for k in ("compute", "exchange", "wait"))
                cols += f" {sp[0]['bytes']:11d}"
            print(f"  {kind:<16} {config:<13} {limit_of(kind, a):6d} {m:10.0f} {min(v):7.0f}-{max(v):<7.0f}{cols}")
            rec = {"bench": "dist_train", "name": f"{kind}/{config}", "samples_per_s": round(m, 1),
                   "min": round(min(v), 1), "max": round(max(v), 1), "repeats": len(v),
                   "batch": batch_of(2 if "n2" in config else 1, a)}
            if sp:
                for k in ("compute", "exchange", "wait"):
                    rec[f"{k}_ms_per_step"] = round(statistics.median(s[k] for s in sp), 3)
                rec["bytes_per_step"] = sp[0]["bytes"]
            records.append(rec)
    print("  ratios of medians: efficiency = N=2 / (2 x N=1, 1 thread); _2t: N=2 / N=1, 2 threads; "
          "_cores: N=2 / (the sum of N=1 pinned to each CPU); over-ddp: tg-n2-shm / ddp-n2")
    for kind in models:
        ratios = []
        alone = [med(kind, c) for c in pinned]  # the single process on each CPU
        for net in ("shm", "tcp"):
            n2, n1, t2 = med(kind, f"tg-n2-{net}"), med(kind, "tg-n1t1"), med(kind, "tg-n1t2")
            if n2 and n1:
                ratios.append((f"efficiency-{net}", n2 / (2 * n1)))
            if n2 and t2:
                ratios.append((f"efficiency_2t-{net}", n2 / t2))
            if n2 and len(alone) >= 2:
                ratios.append((f"efficiency_cores-{net}", n2 / sum(alone)))
        if len(alone) >= 2:
            ratios.append(("core_ratio", min(alone) / max(alone)))
        d2, d1, t2 = med(kind, "ddp-n2"), med(kind, "torch-n1t1"), med(kind, "tg-n2-shm")
        if d2 and d1:
            ratios.append(("ddp-efficiency", d2 / (2 * d1)))
        if d2 and t2:
            ratios.append(("over-ddp", t2 / d2))
        print(f"  {kind:<16} " + "  ".join(f"{k} {r:.2f}" for k, r in ratios))
        records += [{"bench": "dist_train", "name": f"{kind}/{k}", "ratio": round(r, 3),
                     "scaling": "weak" if a.weak else "fixed-batch"} for k, r in ratios]
    if a.project:
        records += project(a, models, splits)
    if a.json:
        for rec in records:
            print(json.dumps(rec))


if __name__ == "__main__":
    main()
