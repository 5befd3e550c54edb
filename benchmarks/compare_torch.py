#!/usr/bin/env python3
"""compare_torch.py — tapegrad against PyTorch (CPU) on the same work, in one run.

PyTorch runs in a fresh interpreter per configuration, model and round,
started with its configuration's environment (the dynamic loader and glibc
read it only at start-up):

  default  Debian's python3-torch as installed: sgemm through libblas.so.3
           (OpenBLAS-pthread), glibc's default malloc; OPENBLAS_NUM_THREADS=1
           (otherwise OpenBLAS's pthread pool and PyTorch's OpenMP pool
           fight: 4-6x slower with 2 threads).
  best     LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
           (Debian's libopenblas0-openmp: OpenBLAS shares PyTorch's OpenMP
           pool) and GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:
           glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=67108864
           (malloc keeps PyTorch's large buffers instead of returning them to
           the system after every step). The worker checks that the
           OpenMP OpenBLAS is the one loaded.

Both get OMP_NUM_THREADS and torch.set_num_threads(threads) before their
first torch call. The ratio the README quotes is against "best".

The models, on both sides (the book's optimizers; batch 100 unless said):

  two-layer-net   784-50-10, ReLU, weights N(0, 0.01^2), softmax cross-entropy,
                  SGD lr 0.1 (chapter 5)
  simple-convnet  conv 30x5x5 -> ReLU -> maxpool 2x2 -> Affine 100 -> ReLU
                  -> Affine 10, Adam lr 0.001 (chapter 7)
  deep-convnet    3x3 convs 16,16 (pad 1), pool, 32 (pad 1), 32 (pad 2), pool,
                  64 (pad 1), 64 (pad 1), pool, Affine 50, ReLU, Dropout 0.5,
                  Affine 10, Dropout 0.5; Adam lr 0.001 (chapter 8)
  lenet           conv 6x5x5 pad 2 -> sigmoid -> avgpool 2x2 -> conv 16x5x5
                  -> sigmoid -> avgpool 2x2 -> Affine 120 -> sigmoid -> Affine
                  84 -> sigmoid -> Affine 10; Adam lr 0.001
  alexnet         on 3x227x227: conv 96x11x11/4, ReLU, LRN, maxpool 3/2, conv
                  256x5x5 pad 2, ReLU, LRN, maxpool 3/2, convs 384, 384, 256
                  of 3x3 pad 1, maxpool 3/2, Affine 4096, ReLU, Dropout,
                  Affine 4096, ReLU, Dropout, Affine 10; LRN n 5, alpha 1e-4
                  (tapegrad's alpha multiplies the sum; PyTorch's is divided
                  by n, so it gets 5e-4), beta 0.75, k 2; Adam lr 0.001;
                  batch 8 (--alexnet-batch); steps only (it does not take
                  Fashion-MNIST's 28x28 images)
  op chains       y = y*c + d repeated: 100 ops on (10, 10) tensors, and 10,000
                  ops on (1,) tensors; forward + backward

Figures (microseconds):

  <model>/step    one training step on a fixed random batch (median of
                  --repeats after --warmup): tapegrad's bench_train --json
                  against the same step in PyTorch
  <model>/epoch   a real epoch per step: the second epoch's seconds over its
                  steps. tapegrad: `tapegrad train --epochs 2 --json`.
                  PyTorch: Fashion-MNIST (/usr/share/datasets/fashion-mnist,
                  read with gzip) in one uint8 tensor, a fresh permutation
                  each epoch, each batch gathered with index_select and
                  scaled to [0, 1] (pixel / 255), forward, backward, step. --epoch-limit N
                  trains on the first N samples (tapegrad's --limit).
  chain.../total  forward + backward of the op chain (bench_ops --quick)

Rounds (--rounds R, default 1): on shared machines the host's speed drifts
by up to 40% within minutes, so a tapegrad time and the PyTorch time it is
divided by must be taken close together. Each round measures, for each model
in turn, tapegrad's figures and then PyTorch's in each configuration (the op
chains last, likewise); odd rounds (the second, fourth, ...) run each
model's measurements in reverse order, so that a steady drift favours
neither side. A round's ratio divides PyTorch's time in that round by
tapegrad's in the same round; the report gives the medians over rounds of
both times and of the ratios, and with R > 1 the ratios' range.

ratio = PyTorch's time / tapegrad's: above 1 tapegrad is faster. Validation
before anything is timed: the step figures need a finite training loss and
a lower eval-mode loss on the fixed batch after ten steps; the epoch figures
need finite epoch losses, the second below the first (both sides). A model
this build of tapegrad lacks shows "not available".

Run (from the top of the repository, after `ninja -C build`):

  apt-get install -y python3-torch libopenblas0-openmp   # never needed by the tests
  /usr/bin/python3 benchmarks/compare_torch.py                  # everything, 1 and 2 threads
  /usr/bin/python3 benchmarks/compare_torch.py --threads 1 --models two-layer-net \\
      --epoch-limit 10000 --no-chains                          # a quick run
  /usr/bin/python3 benchmarks/compare_torch.py --rounds 3     # each ratio the median of three

Options: --build DIR (default build), --threads LIST (default 1,N with N
the cores), --models LIST, --configs default,best, --batch N,
--alexnet-batch N, --repeats N, --warmup N, --epoch-limit N, --rounds R,
--no-epochs, --no-chains, --json (adds one JSON line per figure:
{"bench":"compare_torch","name":...,"threads":T,"tapegrad_us":...,
"rounds":R,"torch_default_us":...,"ratio_default":...,"ratios_default":[...],
"torch_best_us":...,"ratio_best":...,"ratios_best":[...]}, the times and
ratio_<c> medians over rounds, ratios_<c> the rounds' ratios). Absolute times
drift on shared machines: read the ratios, each from times taken seconds apart.
"""

import argparse
import gzip
import json
import os
import statistics
import struct
import subprocess
import sys
import time

import tg_train  # tapegrad train --json, run and validated as in the other scripts

MODELS = ["two-layer-net", "simple-convnet", "deep-convnet", "lenet", "alexnet"]
BOOK_OPTIMIZER = {"two-layer-net": "sgd", "multi-layer-net": "sgd"}  # others: adam
INPUT = {"alexnet": (3, 227, 227)}  # others: 1x28x28
STEPS_ONLY = {"alexnet"}
CHAINS = [("chain100_10x10", 100, (10, 10)), ("tape_overhead", 10000, (1,))]
FASHION = "/usr/share/datasets/fashion-mnist"
OPENMP_BLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
MALLOC_TUNABLES = ("glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:"
                   "glibc.malloc.top_pad=67108864")
CONFIGS = ["default", "best"]


def parse_args():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description="tapegrad vs PyTorch on the CPU (see the top of the file)")
    p.add_argument("--build", default=os.path.join(root, "build"), help="tapegrad build directory")
    p.add_argument("--threads", default="1" if cores == 1 else f"1,{cores}", help="thread counts, e.g. 1,2")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--configs", default=",".join(CONFIGS), help="PyTorch configurations: default,best")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--alexnet-batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--epoch-limit", type=int, default=0, help="epochs over the first N samples (0: all)")
    p.add_argument("--no-epochs", action="store_true", help="skip the real epochs")
    p.add_argument("--no-chains", action="store_true", help="skip the op chains")
    p.add_argument("--rounds", type=int, default=1,
                   help="rounds of measurements, each model by both sides back to back (see the top)")
    p.add_argument("--json", action="store_true", help="also print one JSON line per figure")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run PyTorch's side, print JSON
    return p.parse_args()


def batch_of(kind, a):
    return a.alexnet_batch if kind == "alexnet" else a.batch


def repeats_of(kind, a):
    """AlexNet's step takes about a second on one core: fewer of them."""
    return (min(a.repeats, 10), min(a.warmup, 2)) if kind == "alexnet" else (a.repeats, a.warmup)


# ---------------------------------------------------------------------------
# PyTorch side (runs in a worker process started with its configuration)


def torch_model(torch, kind):
    """The network of a kind, initialised as tapegrad does where it matters."""
    nn = torch.nn
    if kind == "two-layer-net":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)
        return net
    if kind == "multi-layer-net":
        layers, fan_in = [nn.Flatten()], 784
        for _ in range(5):
            layers += [nn.Linear(fan_in, 100), nn.ReLU()]
            fan_in = 100
        layers.append(nn.Linear(fan_in, 10))
        return nn.Sequential(*layers)
    if kind == "simple-convnet":
        return nn.Sequential(
            nn.Conv2d(1, 30, 5, stride=1, padding=0), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10))
    if kind == "deep-convnet":
        def conv(cin, cout, pad):
            return [nn.Conv2d(cin, cout, 3, stride=1, padding=pad), nn.ReLU()]
        return nn.Sequential(
            *conv(1, 16, 1), *conv(16, 16, 1), nn.MaxPool2d(2, 2),
            *conv(16, 32, 1), *conv(32, 32, 2), nn.MaxPool2d(2, 2),
            *conv(32, 64, 1), *conv(64, 64, 1), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5), nn.Linear(50, 10), nn.Dropout(0.5))
    if kind == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
    if kind == "alexnet":
        def lrn():
            return nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)
        return nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
            nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(4096, 10))
    return None


def torch_optimizer(torch, kind, net):
    if BOOK_OPTIMIZER.get(kind, "adam") == "sgd":
        return torch.optim.SGD(net.parameters(), lr=0.1)
    return torch.optim.Adam(net.parameters(), lr=0.001)


def finite(v):
    return v == v and abs(v) != float("inf")


def torch_step(torch, kind, batch, repeats, warmup):
    """Median seconds of one training step on a fixed random batch."""
    net = torch_model(torch, kind)
    net.train()
    opt = torch_optimizer(torch, kind, net)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(batch, *INPUT.get(kind, (1, 28, 28)), generator=gen)
    t = torch.randint(0, 10, (batch,), generator=gen)

    def step():
        t0 = time.perf_counter()
        loss = loss_fn(net(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item(), time.perf_counter() - t0

    def eval_loss():  # eval mode: no Dropout noise
        net.eval()
        with torch.no_grad():
            v = loss_fn(net(x), t).item()
        net.train()
        return v

    first = eval_loss()
    losses = [step()[0] for _ in range(10)]
    last = eval_loss()
    if not all(finite(v) for v in losses) or not last < first:
        sys.exit(f"compare_torch: PyTorch {kind}: validation failed: eval loss {first} -> {last}, "
                 f"train losses {losses}")
    for _ in range(warmup):
        step()
    return statistics.median(step()[1] for _ in range(repeats))


def read_idx(path):
    """The uint8 contents of a (gzipped) IDX file and its dimensions."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return raw[4 + 4 * ndim:], dims


def torch_epochs(torch, kind, batch, limit):
    """Seconds per step of the second of two real epochs on Fashion-MNIST."""
    pixels, dims = read_idx(os.path.join(FASHION, "train-images-idx3-ubyte.gz"))
    labels, _ = read_idx(os.path.join(FASHION, "train-labels-idx1-ubyte.gz"))
    # (n, rows·cols): index_select copies whole rows (a 4-d tensor makes it
    # about twice as slow); the batch is viewed as (B, 1, rows, cols) after.
    X = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(dims[0], dims[1] * dims[2])
    T = torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()
    n = min(limit, dims[0]) if limit > 0 else dims[0]
    X, T = X[:n].contiguous(), T[:n].contiguous()
    net = torch_model(torch, kind)
    net.train()
    opt = torch_optimizer(torch, kind, net)
    loss_fn = torch.nn.CrossEntropyLoss()
    steps = (n + batch - 1) // batch
    mean_losses, seconds = [], 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        perm, total = torch.randperm(n), 0.0
        for s in range(steps):
            idx = perm[s * batch:(s + 1) * batch]
            x = X.index_select(0, idx).float().div_(255).view(-1, 1, dims[1], dims[2])
            t = T.index_select(0, idx)
            loss = loss_fn(net(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()  # tapegrad train sums its losses too
        seconds = time.perf_counter() - t0
        mean_losses.append(total / steps)
    if not all(finite(v) for v in mean_losses) or not mean_losses[1] < mean_losses[0]:
        sys.exit(f"compare_torch: PyTorch {kind}: epoch losses {mean_losses} (not finite or not decreasing)")
    return seconds / steps


def torch_chain(torch, n_ops, shape, repeats, warmup):
    """Median seconds of forward + backward of the op chain."""
    c = torch.full(shape, 0.5, requires_grad=True)
    d = torch.full(shape, 1.0, requires_grad=True)
    ones = torch.ones(shape)

    def run():
        c.grad = None
        d.grad = None
        t0 = time.perf_counter()
        y = torch.ones(shape)
        for _ in range(n_ops // 2):
            y = y * c + d
        y.backward(ones)
        return y, time.perf_counter() - t0

    y, _ = run()  # validate against the recurrence in double
    v, gc = 1.0, 0.0
    for _ in range(n_ops // 2):
        gc = v + 0.5 * gc
        v = v * 0.5 + 1.0
    if abs(y.flatten()[0].item() - v) > 1e-5 * abs(v) or abs(c.grad.flatten()[0].item() - gc) > 1e-5 * abs(gc):
        sys.exit("compare_torch: PyTorch op chain computes wrong values")
    for _ in range(warmup):
        run()
    return statistics.median(run()[1] for _ in range(repeats))


def worker(a):
    """PyTorch's side in this process's configuration: one JSON object on stdout."""
    threads = int(a.threads)
    import torch  # the environment (threads, loader, malloc) was set by the parent

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    torch.ones(64, 64) @ torch.ones(64, 64)  # loads the BLAS, for the check below
    with open("/proc/self/maps") as f:
        blas = sorted({line.split()[-1] for line in f if "blas" in line and "/" in line})
    if a.worker == "best" and not any(OPENMP_BLAS in p for p in blas):
        sys.exit(f"compare_torch: the best configuration did not load {OPENMP_BLAS} (loaded: {blas})")
    out = {"torch": torch.__version__, "blas": blas, "us": {}}
    for kind in [m for m in a.models.split(",") if m]:
        if torch_model(torch, kind) is None:
            continue
        repeats, warmup = repeats_of(kind, a)
        out["us"][f"{kind}/step"] = 1e6 * torch_step(torch, kind, batch_of(kind, a), repeats, warmup)
        if not a.no_epochs and kind not in STEPS_ONLY:
            out["us"][f"{kind}/epoch"] = 1e6 * torch_epochs(torch, kind, a.batch, a.epoch_limit)
    if not a.no_chains:
        for name, n_ops, shape in CHAINS:
            reps = max(a.repeats, 200) if n_ops <= 100 else 20
            out["us"][f"{name}/total"] = 1e6 * torch_chain(torch, n_ops, shape, reps, a.warmup)
    print(json.dumps(out))


def run_torch(config, threads, models, chains, a):
    """The worker's record ({"us": {figure: us}, "torch", "blas"}) for models (a list, may be
    empty) and, if chains, the op chains, from a worker in config's environment; or (None, why)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    for k in ("LD_LIBRARY_PATH", "GLIBC_TUNABLES", "OPENBLAS_NUM_THREADS"):
        env.pop(k, None)
    if config == "default":
        env["OPENBLAS_NUM_THREADS"] = "1"
    else:
        env["LD_LIBRARY_PATH"] = OPENMP_BLAS
        env["GLIBC_TUNABLES"] = MALLOC_TUNABLES
    argv = [sys.executable, os.path.abspath(__file__), "--worker", config, "--threads", str(threads),
            "--models", ",".join(models), "--batch", str(a.batch), "--alexnet-batch", str(a.alexnet_batch),
            "--repeats", str(a.repeats), "--warmup", str(a.warmup), "--epoch-limit", str(a.epoch_limit)]
    argv += ["--no-epochs"] * a.no_epochs + ["--no-chains"] * (not chains)
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return None, f"PyTorch ({config}) failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
    return json.loads(r.stdout.strip().splitlines()[-1]), None


# ---------------------------------------------------------------------------
# tapegrad side


def json_lines(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            out[rec["name"]] = rec
    return out


def tg_step(build, kind, threads, a):
    """(us per step, None) or (None, reason)."""
    exe = os.path.join(build, "benchmarks", "bench_train")
    if not os.access(exe, os.X_OK):
        return None, f"{exe} not found (build it: ninja -C {build})"
    repeats, warmup = repeats_of(kind, a)
    r = subprocess.run([exe, "--model", kind, "--batch", str(batch_of(kind, a)), "--threads", str(threads),
                        "--repeats", str(repeats), "--warmup", str(warmup), "--json"],
                       capture_output=True, text=True)
    if r.returncode == 3:
        return None, "not available"
    if r.returncode != 0:
        return None, f"bench_train failed ({r.returncode}): {r.stderr.strip()}"
    return json_lines(r.stdout)[f"{kind}/step"]["median_us"], None


def tg_epoch(build, kind, threads, a):
    """(us per step of the second real epoch, None) or (None, reason)."""
    epochs, why = tg_train.train(build, kind, 2, threads, batch=a.batch, limit=a.epoch_limit)
    return (tg_train.step_us(epochs[1]), None) if epochs else (None, why)


def tg_chains(build, threads):
    exe = os.path.join(build, "benchmarks", "bench_ops")
    if not os.access(exe, os.X_OK):
        return None, f"{exe} not found"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    r = subprocess.run([exe, "--json", "--quick"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return None, f"bench_ops failed ({r.returncode}): {r.stderr.strip()}"
    recs = json_lines(r.stdout)
    return {f"{name}/total": recs[f"{name}_total"]["median_us"] for name, _, _ in CHAINS}, None


# ---------------------------------------------------------------------------


def main():
    a = parse_args()
    if a.worker:
        return worker(a)
    try:
        import torch  # noqa: F401  (only to say so early; the workers do the work)
    except ImportError:
        sys.exit("compare_torch: PyTorch is not installed. On Debian: apt-get install -y python3-torch,\n"
                 "then run this script with Debian's interpreter (/usr/bin/python3). "
                 "tapegrad's tests never need it.")
    configs = [c for c in a.configs.split(",") if c]
    if any(c not in CONFIGS for c in configs):
        sys.exit(f"compare_torch: --configs: {a.configs} (known: {','.join(CONFIGS)})")
    models = [m for m in a.models.split(",") if m]
    if a.rounds < 1:
        sys.exit(f"compare_torch: --rounds: {a.rounds} (at least 1)")
    header = {}
    rows = []  # (threads, figure, [ours per round], {config: [theirs per round]}, note)
    for threads in [int(t) for t in a.threads.split(",") if t]:
        ours, theirs, notes = {}, {c: {} for c in configs}, {}

        def tapegrad(kind):
            figs = {}
            if kind is None:
                chains, why = tg_chains(a.build, threads)
                for name, _, _ in CHAINS:
                    figs[f"{name}/total"] = (chains or {}).get(f"{name}/total"), why
            else:
                figs[f"{kind}/step"] = tg_step(a.build, kind, threads, a)
                if not a.no_epochs and kind not in STEPS_ONLY:
                    figs[f"{kind}/epoch"] = tg_epoch(a.build, kind, threads, a)
            for fig, (us, why) in figs.items():
                ours.setdefault(fig, []).append(us)
                notes[fig] = notes.get(fig) or why

        def pytorch(config, kind):
            res, why = run_torch(config, threads, [] if kind is None else [kind], kind is None, a)
            if res is None:
                sys.exit(f"compare_torch: {why}")
            for fig, us in res["us"].items():
                theirs[config].setdefault(fig, []).append(us)
            header[config] = f"PyTorch {res['torch']} {config}: {', '.join(res['blas']) or '?'}"

        # Each model (None: the op chains) is measured by both sides back to
        # back, so a ratio divides times taken seconds apart, not minutes;
        # odd rounds run the same steps in reverse so that a steady drift
        # favours neither side nor either configuration.
        for rnd in range(a.rounds):
            for kind in models + [None] * (not a.no_chains):
                sides = [None] + configs  # None: tapegrad
                for side in (reversed(sides) if rnd % 2 else sides):
                    if side is None:
                        tapegrad(kind)
                    else:
                        pytorch(side, kind)
        for fig in ours:
            rows.append((threads, fig, ours[fig], {c: theirs[c].get(fig, []) for c in configs},
                         notes[fig] or ""))

    def median(xs):
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None

    def ratios(o, p):  # PyTorch's time over tapegrad's, round by round
        return [t / u if u and t else None for u, t in zip(o, p)] if len(o) == len(p) else []

    print(f"tapegrad ({a.build}) vs PyTorch, batch {a.batch} (AlexNet {a.alexnet_batch}), "
          f"steps: median of {a.repeats} after {a.warmup} warm-up; epochs: the second of two"
          + (f" over {a.epoch_limit} samples" if a.epoch_limit else "")
          + (f"; {a.rounds} rounds: times are medians over rounds, ratios the median of the "
             f"rounds' ratios (min-max)" if a.rounds > 1 else ""))
    for config in configs:
        print(f"  {header[config]}")
    w = 21 if a.rounds > 1 else 8  # "2.91 (2.80-3.05)"
    cols = "".join(f" {'torch ' + c + ' us':>17}" for c in configs)
    heads = "".join(f" {'/' + c:>{w}}" for c in configs)
    print(f"  {'threads':>7} {'figure':<26} {'tapegrad us':>12}{cols}{heads}   (ratio = PyTorch / tapegrad: > 1, tapegrad faster)")
    for threads, fig, ours, theirs, note in rows:
        o = median(ours)
        p = {c: median(theirs[c]) for c in configs}
        rs = {c: ratios(ours, theirs[c]) for c in configs}
        r = {c: median(rs[c]) for c in configs}
        fp = "".join(f" {p[c]:17.1f}" if p[c] is not None else f" {'-':>17}" for c in configs)
        fr = ""
        for c in configs:
            got = [x for x in rs[c] if x is not None]
            cell = f"{r[c]:.2f}" if r[c] else "-"
            if a.rounds > 1 and got:
                cell += f" ({min(got):.2f}-{max(got):.2f})"
            fr += f" {cell:>{w}}"
        fo = f"{o:12.1f}" if o is not None else f"{'-':>12}"
        print(f"  {threads:>7} {fig:<26} {fo}{fp}{fr}   {note}")
        if a.json and o is not None:
            rec = {"bench": "compare_torch", "name": fig, "threads": threads, "tapegrad_us": round(o, 3),
                   "rounds": a.rounds}
            for c in configs:
                rec[f"torch_{c}_us"] = round(p[c], 3) if p[c] is not None else None
                rec[f"ratio_{c}"] = round(r[c], 3) if r[c] else None
                rec[f"ratios_{c}"] = [round(x, 3) if x else None for x in rs[c]]
            print(json.dumps(rec))


if __name__ == "__main__":
    main()
