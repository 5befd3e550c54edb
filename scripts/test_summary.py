#!/usr/bin/env python3
"""test_summary.py — one "N passed, M failed" line per configuration and in total.

usage: test_summary.py NAME TESTLOG RC [NAME TESTLOG RC ...]

TESTLOG is a meson-logs/testlog*.json, or scripts/fuzz.sh's fuzz-testlog.json
(one line per fuzz target, in the same form); RC the exit status of the
`meson test` or fuzz.sh that wrote it (or of the build, when that failed first). Counts come from TESTLOG:
a Check suite counts its checks (from its line "100%: Checks: 12, Failures: 0,
Errors: 0"); any other test counts as one. Meson's own verdict always wins:
a test meson calls failed (crash, leak, timeout after Check's summary) adds a
failure even when its Check counts are clean, and so does a non-zero RC with
no failing test to show for it. Exit status 1 when anything failed or no
test ran at all.
"""

import json
import re
import sys

CHECK_LINE = re.compile(r"\d+%: Checks: (\d+), Failures: (\d+), Errors: (\d+)")
GOOD = {"OK", "EXPECTEDFAIL"}


def count(path, rc):
    """Returns (passed, failed, skipped, notes) for one configuration."""
    passed = failed = skipped = 0
    notes = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            entries = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        return 0, 1, 0, [f"no test log, the build or meson failed (exit status {rc}; {e})"]

    for t in entries:
        name, result = t.get("name", "?"), t.get("result", "?")
        out = (t.get("stdout") or "") + "\n" + (t.get("stderr") or "")
        checks = CHECK_LINE.findall(out)
        if result == "SKIP":
            skipped += 1
            continue
        if checks:
            n = sum(int(c[0]) for c in checks)
            bad = sum(int(c[1]) + int(c[2]) for c in checks)
            passed += n - bad
            failed += bad
            if result not in GOOD and bad == 0:
                failed += 1
                notes.append(f"{name}: Check passed all {n} but meson says {result}")
        elif result in GOOD:
            passed += 1
        else:
            failed += 1
        if result not in GOOD:
            notes.append(f"{name}: {result}")
    if rc != 0 and failed == 0:
        failed += 1
        notes.append(f"meson test exited with status {rc}")
    return passed, failed, skipped, notes


def line(p, f, s):
    return f"{p} passed, {f} failed" + (f", {s} skipped" if s else "")


def main(argv):
    if len(argv) < 3 or len(argv) % 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    tp = tf = ts = 0
    for i in range(0, len(argv), 3):
        name, path, rc = argv[i], argv[i + 1], int(argv[i + 2])
        p, f, s, notes = count(path, rc)
        for n in notes:
            print(f"  {name}: {n}")
        print(f"{name}: {line(p, f, s)}")
        tp, tf, ts = tp + p, tf + f, ts + s
    if tf == 0 and tp == 0:
        print("no test ran")
    print(line(tp, tf, ts))
    return 0 if tf == 0 and tp > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
