#!/usr/bin/env python3
"""layers_test.py — the build refuses an #include that points up a layer.

usage: layers_test.py BUILDDIR

Each layer (autograd, ops, nn, data, optim, models, plot) is a static
library compiled with only its own and lower layers' folders on the include
path (meson.build). This test takes the real compile command of one file of
each layer from BUILDDIR/compile_commands.json, swaps the file for a probe
that includes one header, and runs the compiler with -fsyntax-only. A
header of the same or a lower layer must compile; a header of a higher or
sibling layer must not. The "must compile" cases show that a failure comes
from the include path, not from a broken command.
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile

# (a file of the layer, header to include, should it compile?)
CASES = [
    ("autograd/tape.c", "tape.h", True),
    ("autograd/tape.c", "ops.h", False),
    ("autograd/tape.c", "tapegrad.h", False),
    ("ops/binary.c", "op.h", True),
    ("ops/binary.c", "nn.h", False),
    ("ops/binary.c", "data.h", False),
    ("ops/binary.c", "plot.h", False),
    ("nn/layers.c", "ops.h", True),
    ("nn/layers.c", "data.h", False),
    ("nn/layers.c", "optim.h", False),
    ("data/idx.c", "ops.h", True),
    ("data/idx.c", "nn.h", False),
    ("optim/optim.c", "params.h", True),
    ("optim/optim.c", "op.h", True),
    ("optim/optim.c", "model.h", False),
    ("models/models.c", "optim.h", True),
    ("models/models.c", "data.h", True),
    ("models/models.c", "plot.h", False),
    ("models/models.c", "cli.h", False),
    ("plot/plot.c", "tensor.h", True),
    ("plot/plot.c", "ops.h", False),
    ("plot/plot.c", "nn.h", False),
]


def probe_command(entry, probe):
    """The entry's compiler command, checking `probe` instead of its file."""
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("-o", "-MQ", "-MF", "-MT"):
            skip = True
        elif a in ("-c", "-MD", "-MMD") or a == entry["file"]:
            pass
        else:
            out.append(a)
    return out + ["-fsyntax-only", probe]


def main():
    build = sys.argv[1]
    with open(os.path.join(build, "compile_commands.json")) as f:
        db = json.load(f)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src, header, good in CASES:
            entry = next((e for e in db if e["file"].endswith(src) and os.path.basename(
                os.path.dirname(e.get("output", ""))).startswith("libtg_")), None)
            if entry is None:
                print(f"FAIL: no compile command for {src} in a layer library")
                failed += 1
                continue
            probe = os.path.join(tmp, "probe.c")
            with open(probe, "w") as f:
                f.write(f'#include "{header}"\nint tg_probe_unused;\n')
            r = subprocess.run(probe_command(entry, probe), cwd=entry["directory"],
                               capture_output=True, text=True)
            compiled = r.returncode == 0
            verdict = "ok  " if compiled == good else "FAIL"
            want = "compiles" if good else "is refused"
            print(f"{verdict} {src}: #include \"{header}\" {want}")
            if compiled != good:
                failed += 1
                print(r.stderr.strip()[:600])
    print(f"{len(CASES) - failed} of {len(CASES)} cases as expected")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
