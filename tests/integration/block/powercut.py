#!/usr/bin/env python3
"""Rebuilds an image file as a power cut could have left it, from blkcat's journal (journal.c).

usage: powercut.py JOURNAL BASE OUT SEED

BASE is the file before the writer started (synced). Everything up to a sync point picked at
random (or none) reached the disk; of the operations between that sync and the next one, each
write, truncate or fallocate reached the disk or not, in any subset, and a write that did may
have landed only in part (whole 4 KiB blocks of it). Operations after the next sync were never
issued. OUT gets the result; one line on stdout says what was chosen.
"""
import random
import shutil
import struct
import sys

J_WRITE, J_SYNC, J_TRUNCATE, J_FALLOCATE = 1, 2, 3, 4
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10
REC = struct.Struct("=IIQQ")
BLOCK = 4096


def load(path):
    """The records, each (type, mode, off, len, data_offset) with data left in the file."""
    recs = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        if pos + REC.size > len(data):
            sys.exit("powercut.py: journal ends inside a record")
        t, mode, off, ln = REC.unpack_from(data, pos)
        pos += REC.size
        recs.append((t, mode, off, ln, pos))
        if t == J_WRITE:
            pos += ln
    return recs, data


def apply(f, rec, data, rng=None):
    t, mode, off, ln, dpos = rec
    if t == J_WRITE:
        if rng is None:
            f.seek(off)
            f.write(data[dpos:dpos + ln])
            return
        # Torn: each whole block of the write landed or not.
        for b in range(0, ln, BLOCK):
            if rng.random() < 0.5:
                f.seek(off + b)
                f.write(data[dpos + b:dpos + min(ln, b + BLOCK)])
    elif t == J_TRUNCATE:
        f.truncate(off)
    elif t == J_FALLOCATE:
        f.seek(0, 2)
        size = f.tell()
        end = off + ln
        if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            zend = min(end, size) if mode & FALLOC_FL_KEEP_SIZE else end
            if zend > off:
                f.seek(off)
                f.write(bytes(zend - off))
        if not mode & FALLOC_FL_KEEP_SIZE and end > size:
            f.truncate(end)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    journal, base, out, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    recs, data = load(journal)
    rng = random.Random(seed)
    syncs = [i for i, r in enumerate(recs) if r[0] == J_SYNC]
    last = rng.choice([-1] + syncs)  # the last sync that completed
    nxt = next((i for i in syncs if i > last), len(recs))
    shutil.copyfile(base, out)
    landed = torn = 0
    with open(out, "r+b") as f:
        for r in recs[:last + 1]:
            apply(f, r, data)
        for r in recs[last + 1:nxt]:
            x = rng.random()
            if x < 0.4:
                continue
            if x < 0.8 or r[0] != J_WRITE:
                apply(f, r, data)
            else:
                apply(f, r, data, rng)
                torn += 1
            landed += 1
    print("sync %d of %d (record %d of %d), %d of the %d later operations landed (%d torn)"
          % (syncs.index(last) + 1 if last >= 0 else 0, len(syncs), last + 1, len(recs),
             landed, nxt - last - 1, torn))


main()
