#!/usr/bin/env python3
"""mkcorpus.py — writes the seed corpora of the fuzz targets (scripts/fuzz.sh).

    python3 tests/fuzz-corpus/mkcorpus.py   # rewrites idx/ and checkpoint/

idx/: inputs of fuzz/fuzz_idx.c: one selector byte (odd: the rest is
written gzipped) then an IDX file, valid or broken. checkpoint/: files for
fuzz/fuzz_checkpoint.c, whose model is W (2, 3), b (3,) and a scalar s;
assembled here from the format described in nn/checkpoint.c, not by the
saver. Every file stays under 4 KB. Deterministic (gzip mtime 0).
"""
import gzip
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def idx(dims, data, typ=8):
    head = bytes([0, 0, typ, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + bytes(data)


def write(sub, name, data):
    assert len(data) < 4096, name
    os.makedirs(os.path.join(HERE, sub), exist_ok=True)
    with open(os.path.join(HERE, sub, name), "wb") as f:
        f.write(data)


def idx_corpus():
    lab = idx([5], [0, 1, 2, 3, 9])
    img = idx([2, 3, 3], range(18))
    gz = gzip.compress(idx([4], [1, 2, 3, 4]), mtime=0)
    files = {
        "labels-plain": b"\x00" + lab,
        "labels-gz": b"\x01" + lab,
        "images-plain": b"\x00" + img,
        "images-gz": b"\x01" + img,
        "rank4": b"\x00" + idx([1, 2, 2, 2], range(8)),
        "truncated": b"\x00" + idx([4, 4], range(10)),
        "trailing": b"\x00" + idx([3], [1, 2, 3]) + b"\x07\x07",
        "bad-type": b"\x00" + idx([3], [1, 2, 3], typ=0x0D),
        "bad-magic": b"\x00\x01\x02\x08\x01" + struct.pack(">I", 3) + b"abc",
        "huge-claim": b"\x00" + bytes([0, 0, 8, 3]) + struct.pack(">III", 60000, 28, 28) + bytes(16),
        "huge-claim-gz": b"\x01" + bytes([0, 0, 8, 3]) + struct.pack(">III", 60000, 28, 28)
        + bytes(16),
        "raw-gzip": b"\x00" + gz,
        "damaged-gzip": b"\x00" + gz[:-5] + b"\xff\xff",
        "empty": b"\x00",
    }
    for k, v in files.items():
        write("idx", k, v)


def ckpt(tensors, es=4, meta=b"kind=fuzz\n", version=1, crc_fix=0):
    """tensors: [(name, dims, values)]."""
    b = b"TAPEGRAD" + struct.pack("<III", version, es, len(meta)) + meta
    b += struct.pack("<I", len(tensors))
    for name, dims, vals in tensors:
        b += struct.pack("<H", len(name)) + name + struct.pack("<I", len(dims))
        b += b"".join(struct.pack("<q", d) for d in dims)
        b += b"".join(struct.pack("<f" if es == 4 else "<d", v) for v in vals)
    return b + struct.pack("<I", (zlib.crc32(b) + crc_fix) & 0xFFFFFFFF)


def ck_corpus():
    model = [(b"W", [2, 3], [0.5, -1, 2, 3.25, 4, -5]), (b"b", [3], [0.125, 0, -0.5]),
             (b"s", [], [7])]
    files = {
        "valid-float": ckpt(model),
        "valid-double": ckpt(model, es=8),
        "valid-reordered": ckpt(model[::-1], meta=b""),
        "other-model": ckpt([(b"W1", [2, 3], [1] * 6), (b"b", [3], [0] * 3), (b"s", [], [1])]),
        "other-shape": ckpt([(b"W", [3, 2], [1] * 6), (b"b", [3], [0] * 3), (b"s", [], [1])]),
        "missing-tensor": ckpt(model[:2]),
        "duplicate-name": ckpt([model[0], model[0], model[2]]),
        "future-version": ckpt(model, version=2),
        "bad-crc": ckpt(model, crc_fix=1),
        "big-dim": ckpt([(b"W", [1 << 40, 3], [])]),
        "truncated": ckpt(model)[:41],
        "empty": b"",
    }
    for k, v in files.items():
        write("checkpoint", k, v)


if __name__ == "__main__":
    idx_corpus()
    ck_corpus()
