#!/usr/bin/env python3
"""Builds the probe guest with explicit gcc/ld commands, whatever the meson build's compiler.

usage:
  build.py elf --cc GCC --ld LD --inc DIR --script probe.ld --out OUT --tmp DIR SOURCES...
  build.py bzimage --cc GCC --ld LD --setup setup.S --elf ELF --out OUT --tmp DIR [--define ENTER64]
      [--lz4 LZ4]

The PVH ELF links every source at 1 MiB. The bzImage is the 16-bit setup (5 sectors) followed
by the ELF's loadable bytes; syssize and init_size are patched into the setup header.
With --lz4, the whole ELF also follows as the bzImage's payload, compressed the way Linux's
build does (lz4 -l, then its size in 4 bytes), after the image's memory size (so its bss
stays zero): the boot protocol runs the code as before, and a loader that decompresses the
payload finds a vmlinux with a PVH note, as in a Linux bzImage built with CONFIG_PVH.
"""
import argparse
import os
import struct
import subprocess
import sys

CFLAGS = [
    '-std=gnu17', '-O2', '-g0', '-ffreestanding', '-nostdlib', '-fno-builtin-printf',
    '-mgeneral-regs-only', '-mno-red-zone', '-fno-pic', '-fno-pie', '-fno-stack-protector',
    '-mcmodel=small', '-fcf-protection=none', '-fno-asynchronous-unwind-tables',
    '-fno-unwind-tables', '-fno-strict-aliasing', '-fno-tree-loop-distribute-patterns',
    '-fno-jump-tables', '--param=min-pagesize=0', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter',
]


def run(cmd):
    r = subprocess.run(cmd)
    if r.returncode:
        sys.exit('build.py: failed: ' + ' '.join(cmd))


def build_elf(a):
    os.makedirs(a.tmp, exist_ok=True)
    objs = []
    for src in a.sources:
        if not src.endswith(('.c', '.S')):
            continue  # headers are inputs only so that meson rebuilds on change
        obj = os.path.join(a.tmp, os.path.basename(src) + '.o')
        run([a.cc] + CFLAGS + ['-I', a.inc, '-I', os.path.dirname(src), '-c', src, '-o', obj])
        objs.append(obj)
    run([a.ld, '-nostdlib', '-static', '-z', 'max-page-size=0x1000', '--no-warn-rwx-segments',
         '-T', a.script, '-o', a.out] + objs)


def load_span(elf):
    """(file offset, load size, memory size) of the single PT_LOAD segment."""
    if elf[:4] != b'\x7fELF' or elf[4] != 2:
        sys.exit('build.py: not an ELF64 file')
    phoff, = struct.unpack_from('<Q', elf, 0x20)
    phentsize, phnum = struct.unpack_from('<HH', elf, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, p_paddr, p_filesz, p_memsz, _ = struct.unpack_from(
            '<IIQQQQQQ', elf, phoff + i * phentsize)
        if p_type == 1:
            if p_paddr != 0x100000:
                sys.exit('build.py: PT_LOAD is not at 1 MiB')
            return p_offset, p_filesz, p_memsz
    sys.exit('build.py: no PT_LOAD segment')


def build_bzimage(a):
    os.makedirs(a.tmp, exist_ok=True)
    obj = os.path.join(a.tmp, 'setup.o')
    raw = os.path.join(a.tmp, 'setup.bin')
    run([a.cc, '-c', a.setup, '-o', obj] + ['-D' + d for d in a.define])
    run([a.ld, '-Ttext=0', '--oformat', 'binary', '-o', raw, obj])
    with open(raw, 'rb') as f:
        setup = bytearray(f.read())
    if len(setup) != 5 * 512 or setup[0x202:0x206] != b'HdrS':
        sys.exit('build.py: setup is %d bytes, want 2560 with HdrS' % len(setup))
    with open(a.elf, 'rb') as f:
        elf = f.read()
    off, filesz, memsz = load_span(elf)
    payload = elf[off:off + filesz]
    init_size = (memsz + 0xFFF) & ~0xFFF
    if a.lz4:
        r = subprocess.run([a.lz4, '-l', '-9', '-q', '-c', a.elf], stdout=subprocess.PIPE)
        if r.returncode or not r.stdout:
            sys.exit('build.py: %s -l failed' % a.lz4)
        packed = r.stdout + struct.pack('<I', len(elf))
        payload += b'\0' * (init_size - len(payload))
        struct.pack_into('<II', setup, 0x248, len(payload), len(packed))  # payload_offset, _length
        payload += packed
        init_size = (len(payload) + 0xFFF) & ~0xFFF
    payload += b'\0' * (-len(payload) % 16)
    struct.pack_into('<I', setup, 0x1F4, len(payload) // 16)
    struct.pack_into('<I', setup, 0x260, init_size)
    tmp = a.out + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(setup + payload)
    os.replace(tmp, a.out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=['elf', 'bzimage'])
    ap.add_argument('--cc', required=True)
    ap.add_argument('--ld', required=True)
    ap.add_argument('--inc')
    ap.add_argument('--script')
    ap.add_argument('--setup')
    ap.add_argument('--elf')
    ap.add_argument('--define', action='append', default=[])
    ap.add_argument('--lz4')
    ap.add_argument('--out', required=True)
    ap.add_argument('--tmp', required=True)
    ap.add_argument('sources', nargs='*')
    a = ap.parse_intermixed_args()
    if a.what == 'elf':
        build_elf(a)
    else:
        build_bzimage(a)


if __name__ == '__main__':
    main()
