#!/usr/bin/env python3
"""Damages qcow2 files on purpose for the cove img tests (qcow2 spec, big-endian header).

usage: qcow2_patch.py FILE leak          one leaked cluster (refcount 1, no reference)
       qcow2_patch.py FILE corrupt       an L2 table's refcount set to 0 (used but free)
       qcow2_patch.py FILE set FIELD V   sets a header field (size, l1_size, l1_table_offset,
                                         refcount_table_offset, cluster_bits, backing)
"""
import struct
import sys

FIELDS = {"version": (4, ">I"), "cluster_bits": (20, ">I"), "size": (24, ">Q"),
          "l1_size": (36, ">I"), "l1_table_offset": (40, ">Q"),
          "refcount_table_offset": (48, ">Q"), "refcount_table_clusters": (56, ">I"),
          "nb_snapshots": (60, ">I"), "incompatible": (72, ">Q")}


def header(f):
    f.seek(0)
    h = f.read(104)
    cb = struct.unpack(">I", h[20:24])[0]
    version = struct.unpack(">I", h[4:8])[0]
    order = struct.unpack(">I", h[96:100])[0] if version >= 3 else 4
    return {"cluster_size": 1 << cb, "refbits": 1 << order,
            "rt": struct.unpack(">Q", h[48:56])[0],
            "l1": struct.unpack(">Q", h[40:48])[0],
            "l1_size": struct.unpack(">I", h[36:40])[0]}


def set_refcount(f, h, cluster, value):
    cs, bits = h["cluster_size"], h["refbits"]
    assert bits == 16, "tests use 16-bit refcounts"
    per_block = cs * 8 // bits
    f.seek(h["rt"] + 8 * (cluster // per_block))
    block = struct.unpack(">Q", f.read(8))[0]
    assert block, "no refcount block"
    f.seek(block + 2 * (cluster % per_block))
    f.write(struct.pack(">H", value))


def main():
    path, cmd = sys.argv[1], sys.argv[2]
    with open(path, "r+b") as f:
        h = header(f)
        cs = h["cluster_size"]
        if cmd == "leak":
            f.seek(0, 2)
            end = f.tell()
            end = (end + cs - 1) // cs * cs
            f.truncate(end + cs)
            set_refcount(f, h, end // cs, 1)
        elif cmd == "corrupt":
            f.seek(h["l1"])
            l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
            assert l2, "first L1 entry is empty"
            set_refcount(f, h, l2 // cs, 0)
        elif cmd == "set":
            off, fmt = FIELDS[sys.argv[3]]
            f.seek(off)
            f.write(struct.pack(fmt, int(sys.argv[4], 0)))
        else:
            sys.exit(__doc__)


main()
