#!/usr/bin/env python3
"""Compares `blkcat map IMAGE` with `qemu-img map --output=json IMAGE` (start, length, depth,
zero, data, offset), after merging adjacent runs the way qemu-img does."""
import json, subprocess, sys

blkcat, image = sys.argv[1], sys.argv[2]
ZERO, DATA, OFFSET = 2, 1, 8

def merge(runs):
    out = []
    for r in runs:
        if out:
            p = out[-1]
            same = all(p[k] == r[k] for k in ('depth', 'zero', 'data'))
            contig = (p['offset'] is None and r['offset'] is None) or (
                p['offset'] is not None and r['offset'] is not None and
                p['offset'] + p['length'] == r['offset'])
            if same and contig and p['start'] + p['length'] == r['start']:
                p['length'] += r['length']
                continue
        out.append(dict(r))
    return out

ours = []
for line in subprocess.run([blkcat, 'map', image], check=True, capture_output=True,
                           text=True).stdout.split('\n'):
    if not line:
        continue
    start, length, flags, depth, off = line.split()
    f = int(flags.split('=')[1])
    ours.append({'start': int(start), 'length': int(length),
                 'depth': int(depth.split('=')[1]), 'zero': bool(f & ZERO),
                 'data': bool(f & DATA),
                 'offset': int(off.split('=')[1]) if f & OFFSET else None})
theirs = [{'start': e['start'], 'length': e['length'], 'depth': e['depth'], 'zero': e['zero'],
           'data': e['data'], 'offset': e.get('offset')}
          for e in json.loads(subprocess.run(['qemu-img', 'map', '--output=json', image],
                                             check=True, capture_output=True,
                                             text=True).stdout)]
a, b = merge(ours), merge(theirs)
if a != b:
    for x, y in zip(a, b):
        if x != y:
            print('first difference:\n  cove: %s\n  qemu: %s' % (x, y))
            break
    else:
        print('lengths differ: %d vs %d runs' % (len(a), len(b)))
    sys.exit(1)
