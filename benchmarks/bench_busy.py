#!/usr/bin/env python3
"""bench_busy.py — training epochs on a busy machine: 2 threads against 1.

A machine is rarely tapegrad's alone. This starts its own competitor, one
CPU-bound process (a busy loop, killed at the end, also on error), and
times real training epochs with and without it, at 1 and 2 threads:

  <model>/t<T>/<quiet|busy>   microseconds per step of the second of two
                              epochs of `tapegrad train` (Fashion-MNIST,
                              --limit samples, batch 100, the book's
                              optimizer), median over --repeats runs
  <model>/busy_2t_over_1t     the 2-thread time over the 1-thread time on
                              the busy machine: above 1, the second thread
                              costs more than it gives (the target is 1.3
                              at most); quiet_2t_over_1t is the same
                              without the competitor (below 1 is a speed-up)

With fewer than 2 cores the competitor and both threads share one core and
the figures say little. Validation before any figure is kept: every run's
two epoch losses must be finite and the second lower than the first.

Run (from the top of the repository, after `ninja -C build`):

  python3 benchmarks/bench_busy.py                      # two-layer-net, simple-convnet
  python3 benchmarks/bench_busy.py --models two-layer-net --limit 60000 --repeats 5
  python3 benchmarks/bench_busy.py --env OMP_WAIT_POLICY=passive   # an OpenMP setting's effect

Options: --build DIR (default build), --models LIST, --limit N (samples per
epoch, default 10000), --repeats N (default 3), --env KEY=VALUE (for
tapegrad's runs; repeatable), --json (JSON lines only). Output: a table,
then one JSON line per figure: {"bench":"busy","name":...,"model":...,
"threads":T,"busy":0|1,"us_per_step":...} and {"bench":"busy","name":
"<model>/busy_2t_over_1t","ratio":...}. Shared machines are noisy: the
ratios come from one run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

import tg_train  # tapegrad train --json, run and validated as in the other scripts


def parse_args():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description="2 threads against 1, with and without a competitor")
    p.add_argument("--build", default=os.path.join(root, "build"))
    p.add_argument("--models", default="two-layer-net,simple-convnet")
    p.add_argument("--limit", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for tapegrad's runs")
    p.add_argument("--json", action="store_true", help="JSON lines only")
    return p.parse_args()


def epoch_us_per_step(a, env, kind, threads):
    """Microseconds per step of the second of two epochs; exits if the run fails validation."""
    epochs, why = tg_train.train(a.build, kind, 2, threads, limit=a.limit, env=env)
    if not epochs:
        sys.exit(f"bench_busy: {why}")
    return tg_train.step_us(epochs[1])


def main():
    a = parse_args()
    if not os.access(os.path.join(a.build, "tools", "tapegrad"), os.X_OK):
        sys.exit(f"bench_busy: {a.build}/tools/tapegrad not found (build it: ninja -C {a.build})")
    env = dict(os.environ)
    for kv in a.env:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            sys.exit(f"bench_busy: --env {kv}: not KEY=VALUE")
        env[k] = v
    models = [m for m in a.models.split(",") if m]
    us = {}  # (model, threads, busy) -> median us per step
    competitor = None
    try:
        for busy in (0, 1):
            if busy:
                competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for kind in models:
                for threads in (1, 2):
                    runs = [epoch_us_per_step(a, env, kind, threads) for _ in range(a.repeats)]
                    us[kind, threads, busy] = statistics.median(runs)
    finally:
        if competitor:
            competitor.kill()
            competitor.wait()

    lines = []
    if not a.json:
        print(f"tapegrad train, second epoch of {a.limit} samples, median of {a.repeats} runs; "
              f"busy: one busy-loop process alongside ({os.cpu_count()} cores)"
              + (f"; env {' '.join(a.env)}" if a.env else ""))
        print(f"  {'model':<16} {'1t quiet':>10} {'2t quiet':>10} {'1t busy':>10} {'2t busy':>10}"
              f" {'quiet 2t/1t':>12} {'busy 2t/1t':>11}   (us per step; busy 2t/1t target <= 1.3)")
    for kind in models:
        quiet, busy = us[kind, 2, 0] / us[kind, 1, 0], us[kind, 2, 1] / us[kind, 1, 1]
        if not a.json:
            print(f"  {kind:<16} {us[kind, 1, 0]:10.1f} {us[kind, 2, 0]:10.1f} {us[kind, 1, 1]:10.1f} "
                  f"{us[kind, 2, 1]:10.1f} {quiet:12.2f} {busy:11.2f}")
        for threads in (1, 2):
            for b in (0, 1):
                lines.append({"bench": "busy", "name": f"{kind}/t{threads}/{'busy' if b else 'quiet'}",
                              "model": kind, "threads": threads, "busy": b,
                              "us_per_step": round(us[kind, threads, b], 3)})
        lines.append({"bench": "busy", "name": f"{kind}/quiet_2t_over_1t", "ratio": round(quiet, 3)})
        lines.append({"bench": "busy", "name": f"{kind}/busy_2t_over_1t", "ratio": round(busy, 3)})
    for rec in lines:
        if a.env:
            rec["env"] = " ".join(a.env)
        print(json.dumps(rec))


if __name__ == "__main__":
    main()
