#!/usr/bin/env python3
"""compare_torch.py — tapegrad against PyTorch (CPU) on the same work, in one run.

What it runs, on both sides, with the same thread count:

  two-layer-net   784-50-10, ReLU, weights N(0, 0.01^2), softmax cross-entropy,
                  SGD lr 0.1, batch 100 (the book's chapter 5)
  simple-convnet  conv 30x5x5 pad 0 stride 1 -> ReLU -> maxpool 2x2 -> Affine 100
                  -> ReLU -> Affine 10, Adam lr 0.001, batch 100, input 1x28x28
                  (chapter 7)
  deep-convnet    3x3 convs 16,16 (pad 1), pool, 32 (pad 1), 32 (pad 2), pool,
                  64 (pad 1), 64 (pad 1), pool, Affine 50, ReLU, Dropout 0.5,
                  Affine 10, Dropout 0.5; Adam lr 0.001, batch 100 (chapter 8)
  op chains       y = y*c + d repeated: 100 ops on (10, 10) tensors, and 10,000
                  ops on (1,) tensors; c, d need gradients; forward + backward

Figures (medians over repeats after warm-up, microseconds):

  <model>/forward   the network and its loss on one batch of random data
  <model>/backward  backward from the loss
  <model>/update    the optimizer's step (and zeroing the gradients)
  <model>/step      one whole training step
  chain.../total    forward + backward of the op chain; per op = total / ops

The ratio column is PyTorch's time / tapegrad's time: above 1 tapegrad is
faster. Both sides validate before timing (the training loss stays finite,
and the eval-mode loss on the fixed batch is lower after ten steps than
before). A model this build of tapegrad does not
have yet shows "model not available" instead of a ratio.

tapegrad's side is the build's own programs, run with --json:
<build>/benchmarks/bench_train (one per model) and <build>/benchmarks/bench_ops.

Run (from the top of the repository, after `ninja -C build`):

  apt-get install -y python3-torch        # Debian's PyTorch; never needed by the tests
  /usr/bin/python3 benchmarks/compare_torch.py                 # all models, all cores
  /usr/bin/python3 benchmarks/compare_torch.py --build build-rel --threads 1 \\
      --models two-layer-net --repeats 100

Options: --build DIR (default build), --threads N (default: all cores),
--models LIST (comma-separated), --batch N, --repeats N, --warmup N,
--no-chains, --json (adds one JSON line per compared figure).
PyTorch runs with OPENBLAS_NUM_THREADS=1 unless it is set (its OpenMP
threads and OpenBLAS's thread pool otherwise fight). On a loaded machine
multi-threaded PyTorch can stall for milliseconds at its barriers: compare
--threads 1 as well. Absolute times drift on shared machines: read the ratios, which come from
one run on the same machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODELS = ["two-layer-net", "simple-convnet", "deep-convnet"]
BOOK_OPTIMIZER = {"two-layer-net": "sgd", "multi-layer-net": "sgd"}  # others: adam
PHASES = ["forward", "backward", "update", "step"]
CHAINS = [("chain100_10x10", 100, (10, 10)), ("tape_overhead", 10000, (1,))]


def parse_args():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description="tapegrad vs PyTorch on the CPU (see the top of the file)")
    p.add_argument("--build", default=os.path.join(root, "build"), help="tapegrad build directory")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--no-chains", action="store_true", help="skip the op chains")
    p.add_argument("--json", action="store_true", help="also print one JSON line per figure")
    return p.parse_args()


# ---------------------------------------------------------------------------
# PyTorch side


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
    return None


def torch_train(torch, kind, batch, repeats, warmup):
    """Median seconds of each phase of a training step, or None if unknown."""
    net = torch_model(torch, kind)
    if net is None:
        return None
    net.train()
    if BOOK_OPTIMIZER.get(kind, "adam") == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=0.001)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 1, 28, 28, generator=gen)
    t = torch.randint(0, 10, (batch,), generator=gen)

    def step():
        t0 = time.perf_counter()
        loss = loss_fn(net(x), t)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad()
        t3 = time.perf_counter()
        return loss.item(), (t1 - t0, t2 - t1, t3 - t2, t3 - t0)

    def eval_loss():  # eval mode: no Dropout noise
        net.eval()
        with torch.no_grad():
            v = loss_fn(net(x), t).item()
        net.train()
        return v

    first = eval_loss()
    losses = [step()[0] for _ in range(10)]
    last = eval_loss()
    if not all(v == v and abs(v) != float("inf") for v in losses) or not last < first:
        sys.exit(f"compare_torch: PyTorch {kind}: validation failed: eval loss {first} -> {last}, "
                 f"train losses {losses}")
    for _ in range(warmup):
        step()
    samples = [step()[1] for _ in range(repeats)]
    return {ph: statistics.median(s[i] for s in samples) for i, ph in enumerate(PHASES)}


def torch_chain(torch, n_ops, shape, repeats, warmup):
    """Median seconds of forward + backward of the op chain (and each part)."""
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
        t1 = time.perf_counter()
        y.backward(ones)
        t2 = time.perf_counter()
        return y, (t1 - t0, t2 - t1, t2 - t0)

    y, _ = run()  # validate against the recurrence in double
    v, gc = 1.0, 0.0
    for _ in range(n_ops // 2):
        gc = v + 0.5 * gc
        v = v * 0.5 + 1.0
    if abs(y.flatten()[0].item() - v) > 1e-5 * abs(v) or abs(c.grad.flatten()[0].item() - gc) > 1e-5 * abs(gc):
        sys.exit("compare_torch: PyTorch op chain computes wrong values")
    for _ in range(warmup):
        run()
    samples = [run()[1] for _ in range(repeats)]
    return {k: statistics.median(s[i] for s in samples) for i, k in enumerate(["forward", "backward", "total"])}


# ---------------------------------------------------------------------------
# tapegrad side


def json_lines(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            out[rec["name"]] = rec
    return out


def tg_train(build, kind, a):
    """(records by name, None) or (None, reason)."""
    exe = os.path.join(build, "benchmarks", "bench_train")
    if not os.access(exe, os.X_OK):
        return None, f"{exe} not found (build it: ninja -C {build})"
    r = subprocess.run([exe, "--model", kind, "--batch", str(a.batch), "--threads", str(a.threads),
                        "--repeats", str(a.repeats), "--warmup", str(a.warmup), "--json"],
                       capture_output=True, text=True)
    if r.returncode == 3:
        return None, "model not available"
    if r.returncode != 0:
        return None, f"bench_train failed ({r.returncode}): {r.stderr.strip()}"
    return json_lines(r.stdout), None


def tg_ops(build, threads):
    exe = os.path.join(build, "benchmarks", "bench_ops")
    if not os.access(exe, os.X_OK):
        return None, f"{exe} not found"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    r = subprocess.run([exe, "--json", "--quick"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return None, f"bench_ops failed ({r.returncode}): {r.stderr.strip()}"
    return json_lines(r.stdout), None


# ---------------------------------------------------------------------------


def main():
    a = parse_args()
    # PyTorch's OpenMP pool and OpenBLAS's own thread pool fight when both
    # run (4-6x slower here): OpenBLAS gets one thread unless told otherwise.
    # It reads this when it is loaded, so before the import.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        import torch
    except ImportError:
        sys.exit("compare_torch: PyTorch is not installed. On Debian: apt-get install -y python3-torch,\n"
                 "then run this script with Debian's interpreter (/usr/bin/python3). "
                 "tapegrad's tests never need it.")
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    rows = []  # (figure, ours_us or None, torch_us or None, note)

    for kind in [m for m in a.models.split(",") if m]:
        ours, why = tg_train(a.build, kind, a)
        theirs = torch_train(torch, kind, a.batch, a.repeats, a.warmup)
        for ph in PHASES if ours else ["step"]:  # without ours, one row says why
            o = ours[f"{kind}/{ph}"]["median_us"] if ours else None
            p = theirs[ph] * 1e6 if theirs else None
            rows.append((f"{kind}/{ph}", o, p, why or ("no PyTorch model" if theirs is None else "")))
        if ours:
            s = ours[f"{kind}/step"]
            rows.append((f"{kind}: arena peak {s['arena_peak_bytes'] / 2**20:.2f} MiB, "
                         f"{s['sys_allocs']} system allocations, peak RSS {s['peak_rss_kb'] / 1024:.1f} MiB",
                         None, None, "info"))

    if not a.no_chains:
        ours, why = tg_ops(a.build, a.threads)
        for name, n_ops, shape in CHAINS:
            theirs = torch_chain(torch, n_ops, shape, max(a.repeats, 200) if n_ops <= 100 else 20, a.warmup)
            for part in ["forward", "backward", "total"]:
                o = ours[f"{name}_{part}"]["median_us"] if ours else None
                rows.append((f"{name}/{part} ({n_ops} ops on {shape})", o, theirs[part] * 1e6, why or ""))

    print(f"tapegrad ({a.build}) vs PyTorch {torch.__version__}, {a.threads} threads, "
          f"batch {a.batch}, {a.repeats} repeats after {a.warmup} warm-up (medians)")
    print(f"  {'figure':<48} {'tapegrad us':>12} {'PyTorch us':>12} {'ratio':>7}   (ratio = PyTorch / tapegrad: > 1, tapegrad faster)")
    for name, o, p, note in rows:
        if note == "info":
            print(f"  {name}")
            continue
        ratio = p / o if o and p else None
        fo = f"{o:12.1f}" if o is not None else f"{'-':>12}"
        fp = f"{p:12.1f}" if p is not None else f"{'-':>12}"
        fr = f"{ratio:7.2f}" if ratio else f"{'-':>7}"
        print(f"  {name:<48} {fo} {fp} {fr}   {note}")
        if a.json and ratio:
            print(json.dumps({"bench": "compare_torch", "name": name.split(" ")[0], "tapegrad_us": round(o, 3),
                              "torch_us": round(p, 3), "ratio": round(ratio, 3), "threads": a.threads}))


if __name__ == "__main__":
    main()
