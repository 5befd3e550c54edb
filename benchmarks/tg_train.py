"""tg_train.py — `tapegrad train --json` for the benchmark scripts that time real epochs.

compare_torch.py, bench_busy.py, bench_dist_train.py and bench_loop.py all
run the same command and accept its timings on the same terms: the run
succeeded, printed one JSON line per epoch, and its training loss is finite
and fell from the first epoch to the last (a run that diverged or learnt
nothing is not a timing of training). Those terms live here, once.
"""
import json
import math
import os
import subprocess


def run_json(argv, what, env=None, cpus=None, timeout=None):
    """(the JSON lines argv prints, None) or (None, why); cpus pins it (a set of CPU numbers)."""
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                           preexec_fn=pin)
    except subprocess.TimeoutExpired:
        return None, f"{what}: no result within {timeout} s"
    if r.returncode != 0:
        return None, f"{what} failed ({r.returncode}): {r.stderr.strip()[-400:]}"
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")], None


def train(build, kind, epochs, threads, batch=100, limit=0, prefix=(), env=None, cpus=None,
          timeout=None):
    """(the epochs' JSON lines, None) or (None, why).

    prefix goes before the program (an mpirun command), cpus pins the
    process (a set of CPU numbers), limit > 0 cuts an epoch to that many
    samples."""
    exe = os.path.join(build, "tools", "tapegrad")
    if not os.access(exe, os.X_OK):
        return None, f"{exe} not found (build it: ninja -C {build})"
    argv = list(prefix) + [exe, "train", "--model", kind, "--epochs", str(epochs), "--threads",
                           str(threads), "--batch-size", str(batch), "--eval-train", "1", "--json",
                           "--quiet"]
    if limit > 0:
        argv += ["--limit", str(limit)]
    lines, why = run_json(argv, f"tapegrad train --model {kind}", env, cpus, timeout)
    if lines is None:
        return None, why
    losses = [e["train_loss"] for e in lines]
    if len(lines) != epochs or not all(math.isfinite(v) for v in losses) or not losses[-1] < losses[0]:
        return None, (f"tapegrad train --model {kind}, {threads} threads: epoch losses {losses} "
                      f"(not {epochs} epochs, not finite or not decreasing)")
    return lines, None


def step_us(epoch):
    """Microseconds per step of one epoch's JSON line: its seconds over its own step count."""
    return 1e6 * epoch["seconds"] / epoch["steps"]
