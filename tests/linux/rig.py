#!/usr/bin/env python3
"""The nested rig: real Linux guests under Cove, on a host whose KVM cannot boot them.

QEMU's TCG emulates an AMD CPU with SVM and nested paging. A Debian cloud kernel boots in
it as the level-1 guest (L1), loads kvm_amd and so has a /dev/kvm; Cove, copied into L1's
initramfs with its libraries, boots stock Debian kernels as level-2 guests (L2). L1 runs
the scenarios of tests/linux/l1/ and prints one result line each; this script turns them
into TAP.

What is slow to make (kernel packages, the L2 initramfs and tools disk) is cached under
$COVE_RIG_CACHE (default /var/tmp/cove-rig), keyed by the package versions and the rig's
own files, so a change of either rebuilds it. What changes with every build (the Cove
binary under test) goes into a small per-run initramfs.

usage: tests/linux/rig.py --cove BUILD/src/cli/cove [--only NAME,...] [--bench] [-v]
       tests/linux/rig.py --build-only          (make the cached images and stop)
Exit 77 with a reason when qemu-system-x86_64 is missing.
"""
import argparse
import fcntl
import hashlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
L1_MEM = '6G'
L1_MODULES = ['irqbypass', 'kvm', 'kvm_amd', 'tun', 'virtio_pci', 'virtio_blk']
L2_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_console', 'virtio_rng',
              'virtio_balloon', 'vmw_vsock_virtio_transport', 'ext4', 'crc32c_generic']
# Host tools L2 runs from its tools disk, and L1 from its initramfs.
L2_TOOLS = ['/usr/bin/fio', '/usr/sbin/mke2fs', '/usr/sbin/e2fsck']
L1_TOOLS = ['/usr/sbin/e2fsck', '/usr/sbin/debugfs', '/usr/sbin/ip']
QEMU_BIOS = ['bios-256k.bin', 'bios-microvm.bin', 'kvmvapic.bin', 'linuxboot_dma.bin',
             'vgabios-stdvga.bin', 'efi-virtio.rom', 'pvh.bin']


def log(msg):
    print('# rig: ' + msg, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def sha_files(paths):
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(HERE)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# Debian packages

def apt_resolve(meta):
    """The real package a metapackage depends on, and its version."""
    for attempt in range(2):
        out = subprocess.run(['apt-cache', 'depends', meta], capture_output=True, text=True).stdout
        m = re.search(r'Depends: (linux-image-\S+)', out)
        if m:
            pkg = m.group(1)
            pol = subprocess.run(['apt-cache', 'policy', pkg], capture_output=True,
                                 text=True).stdout
            v = re.search(r'Candidate: (\S+)', pol)
            return pkg, v.group(1) if v else 'unknown'
        if attempt == 0:
            subprocess.run(['apt-get', 'update', '-qq'], capture_output=True)
    raise SystemExit('rig: cannot resolve %s (is apt reachable?)' % meta)


def pkg_version(pkg):
    pol = subprocess.run(['apt-cache', 'policy', pkg], capture_output=True, text=True).stdout
    v = re.search(r'Candidate: (\S+)', pol)
    return v.group(1) if v else 'unknown'


def fetch_deb(pkg, debs):
    debs.mkdir(parents=True, exist_ok=True)
    have = list(debs.glob(pkg + '_*.deb'))
    if have:
        return have[0]
    for attempt in range(2):
        r = subprocess.run(['apt-get', 'download', '-q', pkg], cwd=debs, capture_output=True,
                           text=True)
        have = list(debs.glob(pkg + '_*.deb'))
        if r.returncode == 0 and have:
            return have[0]
        subprocess.run(['apt-get', 'update', '-qq'], capture_output=True)
    raise SystemExit('rig: apt-get download %s failed: %s' % (pkg, r.stderr.strip()))


def unpack(deb, dest):
    if not dest.exists():
        tmp = Path(str(dest) + '.tmp')
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        run(['dpkg-deb', '-x', str(deb), str(tmp)])
        tmp.rename(dest)
    return dest


# ---------------------------------------------------------------------------------------
# Kernels and modules

class Kernel:
    def __init__(self, root):
        self.root = root
        mods = root / 'lib/modules'
        self.version = next(mods.iterdir()).name
        self.moddir = mods / self.version
        self.vmlinuz = root / 'boot' / ('vmlinuz-' + self.version)

    def module_path(self, name):
        for cand in (name, name.replace('_', '-')):
            hits = list(self.moddir.rglob(cand + '.ko'))
            if hits:
                return hits[0]
        return None

    def module_closure(self, names):
        """Module files in load order (dependencies first); built-in ones are absent."""
        order, seen = [], set()

        def add(name):
            name = name.replace('-', '_')
            if name in seen:
                return
            seen.add(name)
            path = self.module_path(name)
            if not path:
                return
            m = re.search(rb'depends=([^\0]*)\0', path.read_bytes())
            for dep in (m.group(1).decode().split(',') if m and m.group(1) else []):
                add(dep)
            order.append(path)

        for n in names:
            add(n)
        return order


def extract_vmlinux(bzimage, out):
    """The ELF vmlinux inside a bzImage (its PVH note included), for the PVH boot path."""
    data = bzimage.read_bytes()
    setup_sects = data[0x1f1] or 4
    poff, plen = int.from_bytes(data[0x248:0x24c], 'little'), int.from_bytes(data[0x24c:0x250],
                                                                               'little')
    payload = data[(setup_sects + 1) * 512 + poff:][:plen]
    magic = payload[:4]
    tools = {b'\x02\x21\x4c\x18': ['lz4', '-dc'], b'\x28\xb5\x2f\xfd': ['zstd', '-dc'],
             b'\xfd7zX': ['xz', '-dc']}
    cmd = tools.get(magic) or (['gzip', '-dc'] if magic[:2] == b'\x1f\x8b' else None)
    if not cmd:
        raise SystemExit('rig: unknown bzImage payload compression %s' % magic.hex())
    # The payload has trailing bytes (the decompressed size) that some tools complain about.
    r = subprocess.run(cmd, input=payload, capture_output=True)
    if not r.stdout.startswith(b'\x7fELF'):
        raise SystemExit('rig: could not extract vmlinux: %s' % r.stderr.decode()[-200:])
    out.write_bytes(r.stdout)


# ---------------------------------------------------------------------------------------
# File trees: binaries with the libraries they need

def ldd_closure(binary):
    out = subprocess.run(['ldd', str(binary)], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r'(/\S+) \(0x', line)
        if m:
            libs.append(m.group(1))
    return libs


def add_with_libs(root, binary, extra_libs=()):
    """Copies a host binary and every library it loads to the same paths under root."""
    files = [binary] + ldd_closure(binary)
    for lib in extra_libs:
        files += [lib] + ldd_closure(lib)
    for f in files:
        dst = root / f.lstrip('/')
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(f), dst)


def find_lib(name):
    out = subprocess.run(['ldconfig', '-p'], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.strip().startswith(name + ' ') and 'x86-64' in line:
            return line.split('=>')[-1].strip()
    return None


def busybox_tree(root, busybox):
    (root / 'bin').mkdir(parents=True, exist_ok=True)
    for d in ('dev', 'proc', 'sys', 'tmp', 'run', 'mnt', 'etc', 'root', 'sbin', 'usr/bin',
              'usr/sbin'):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / 'bin/busybox')
    (root / 'bin/sh').symlink_to('busybox')


def cpio(root, out):
    """An uncompressed newc archive: nothing to decompress at emulated speed."""
    files = subprocess.run(['find', '.'], cwd=root, capture_output=True, text=True,
                           check=True).stdout
    with open(out, 'wb') as f:
        subprocess.run(['cpio', '-o', '-H', 'newc', '--quiet', '-R', '0:0'], cwd=root,
                       input=files.encode(), stdout=f, check=True)


def ext4_image(root, out, label, extra_mb=64):
    size = sum(p.stat().st_size for p in root.rglob('*') if p.is_file() and not p.is_symlink())
    mb = size * 5 // 4 // (1 << 20) + extra_mb
    if out.exists():
        out.unlink()
    r = subprocess.run(['mkfs.ext4', '-q', '-F', '-L', label, '-d', str(root), '-E',
                        'root_owner=0:0', str(out), '%dM' % mb], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit('rig: mkfs.ext4 -d %s failed: %s' % (root, r.stderr.strip()))


# ---------------------------------------------------------------------------------------
# The cached assets

def build_assets(cache, bench):
    cloud_pkg, cloud_ver = apt_resolve('linux-image-cloud-amd64')
    gen_pkg, gen_ver = apt_resolve('linux-image-amd64')
    inputs = [p for p in HERE.rglob('*') if p.is_file() and p.parent.name != '__pycache__'
              and 'l1' not in p.relative_to(HERE).parts]
    tools = L2_TOOLS + (['/usr/bin/qemu-system-x86_64'] if bench else [])
    key_src = '|'.join([cloud_pkg, cloud_ver, gen_pkg, gen_ver, pkg_version('busybox-static'),
                        pkg_version('fio'), pkg_version('e2fsprogs'),
                        pkg_version('qemu-system-x86') if bench else '',
                        sha_files(inputs)])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    out = cache / ('assets-' + key + ('-bench' if bench else ''))
    if (out / 'done').exists():
        return out
    log('building images into %s (once per input change)' % out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    debs = cache / 'debs'
    cloud = Kernel(unpack(fetch_deb(cloud_pkg, debs), cache / ('pkg-' + cloud_pkg + cloud_ver)))
    gen = Kernel(unpack(fetch_deb(gen_pkg, debs), cache / ('pkg-' + gen_pkg + gen_ver)))
    bb = unpack(fetch_deb('busybox-static', debs), cache / ('pkg-busybox-' +
                                                            pkg_version('busybox-static')))
    busybox = bb / 'bin/busybox'
    rigtool = out / 'rigtool'
    run(['cc', '-O2', '-static', '-Wall', '-Werror', '-o', str(rigtool),
         str(HERE / 'rigtool.c')])

    # L1: its kernel and modules (both go in the per-run initramfs).
    shutil.copy2(cloud.vmlinuz, out / 'l1-vmlinuz')
    l1mods = out / 'l1-modules'
    l1mods.mkdir()
    with open(l1mods / 'order', 'w') as f:
        for p in cloud.module_closure(L1_MODULES):
            shutil.copy2(p, l1mods / p.name)
            f.write(p.name + '\n')
    shutil.copy2(busybox, out / 'busybox')

    # L2: kernels (bzImage of both flavours, the cloud one's ELF for PVH), an initramfs per
    # flavour, and a tools disk.
    disk = out / 'disk'
    l2 = disk / 'l2'
    l2.mkdir(parents=True)
    for name, k in (('cloud', cloud), ('generic', gen)):
        shutil.copy2(k.vmlinuz, l2 / ('vmlinuz-' + name))
        root = Path(tempfile.mkdtemp(dir=out))
        busybox_tree(root, busybox)
        shutil.copy2(rigtool, root / 'bin/rigtool')
        shutil.copy2(HERE / 'l2' / 'init', root / 'init')
        shutil.copy2(HERE / 'l2' / 'checks.sh', root / 'checks.sh')
        os.chmod(root / 'init', 0o755)
        (root / 'lib/modules').mkdir(parents=True)
        with open(root / 'lib/modules/order', 'w') as f:
            for p in k.module_closure(L2_MODULES):
                shutil.copy2(p, root / 'lib/modules' / p.name)
                f.write(p.name + '\n')
        cpio(root, l2 / ('initrd-' + name))
        if name == 'cloud':
            # The same tree as an ext4 root disk, for boots with root=/dev/vda.
            ext4_image(root, l2 / 'rootfs.img', 'coveroot', extra_mb=16)
        shutil.rmtree(root)
    extract_vmlinux(cloud.vmlinuz, l2 / 'vmlinux-cloud')
    troot = Path(tempfile.mkdtemp(dir=out))
    for t in L2_TOOLS:
        add_with_libs(troot, t)
    ext4_image(troot, l2 / 'tools.img', 'covetools', extra_mb=8)
    shutil.rmtree(troot)
    if bench:
        qroot = disk / 'qemu'
        add_with_libs(qroot, '/usr/bin/qemu-system-x86_64')
        bios = qroot / 'usr/share/qemu'
        bios.mkdir(parents=True, exist_ok=True)
        for b in QEMU_BIOS:
            for d in ('/usr/share/qemu', '/usr/share/seabios'):
                src = Path(d) / b
                if src.exists():
                    shutil.copy2(os.path.realpath(src), bios / b)
                    break
    ext4_image(disk, out / 'assets.img', 'coveassets', extra_mb=32)
    shutil.rmtree(disk)
    (out / 'done').write_text(key_src + '\n')
    return out


# ---------------------------------------------------------------------------------------
# The per-run initramfs of L1: busybox, modules, scenarios, the Cove binary under test

def build_l1_initrd(assets, cove, work):
    root = work / 'l1root'
    busybox_tree(root, assets / 'busybox')
    shutil.copy2(assets / 'rigtool', root / 'bin/rigtool')
    mods = root / 'lib/modules'
    mods.mkdir(parents=True)
    for p in (assets / 'l1-modules').iterdir():
        shutil.copy2(p, mods / p.name)
    rig = root / 'rig'
    shutil.copytree(HERE / 'l1', rig)
    shutil.copy2(HERE / 'l1' / 'init', root / 'init')
    os.chmod(root / 'init', 0o755)
    # The VMM loads libmicrohttpd (and its TLS libraries) only when an API server starts.
    extra = [lib for lib in (find_lib('libmicrohttpd.so.12'),) if lib]
    add_with_libs(root, str(cove), extra)
    shutil.copy2(cove, root / 'bin/cove')
    for t in L1_TOOLS:
        if Path(t).exists():
            add_with_libs(root, t)
    out = work / 'l1.cpio'
    cpio(root, out)
    return out


# ---------------------------------------------------------------------------------------
# Running L1

class Qemu:
    def __init__(self, cmd, verbose):
        self.verbose = verbose
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.buf = b''

    def lines(self, idle_timeout, total_deadline):
        """Yields output lines; stops at EOF, after idle_timeout s of silence or the deadline."""
        fd = self.proc.stdout.fileno()
        while True:
            while b'\n' in self.buf:
                line, self.buf = self.buf.split(b'\n', 1)
                text = line.decode(errors='replace').rstrip('\r')
                if self.verbose:
                    print('# L1| ' + text, flush=True)
                yield text
            wait = min(idle_timeout, total_deadline - time.monotonic())
            if wait <= 0:
                yield None
                return
            r, _, _ = select.select([fd], [], [], wait)
            if not r:
                yield None
                return
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            self.buf += chunk

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description='real Linux guests under Cove, nested in QEMU')
    ap.add_argument('--cove', help='the cove binary under test')
    ap.add_argument('--only', default='', help='comma-separated scenario names (default: all)')
    ap.add_argument('--bench', action='store_true', help='run the benchmarks instead')
    ap.add_argument('--build-only', action='store_true')
    ap.add_argument('--rounds', type=int, default=5, help='benchmark rounds (default 5)')
    ap.add_argument('--fio-seconds', type=int, default=10, help='each fio job (default 10)')
    ap.add_argument('--stall-timeout', type=int, default=150,
                    help='L1 silent this long (it beats every 30 s) has stalled (default 150)')
    ap.add_argument('--timeout', type=int, default=1500)
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()

    qemu = shutil.which('qemu-system-x86_64')
    if not qemu:
        print('1..0 # SKIP qemu-system-x86_64 is missing (apt-get install qemu-system-x86)')
        return 77
    cache = Path(os.environ.get('COVE_RIG_CACHE', '/var/tmp/cove-rig'))
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    # Several rigs may share the cache: one builds, the others wait for it.
    with open(cache / 'lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assets = build_assets(cache, args.bench)
    log('images ready in %.1fs' % (time.monotonic() - t0))
    if args.build_only:
        return 0
    if not args.cove:
        ap.error('--cove is required')

    mode = 'bench' if args.bench else 'test'
    listed = [x for x in (HERE / 'l1' / (mode + '.list')).read_text().splitlines()
              if x.strip() and not x.startswith('#')]
    only = [x for x in args.only.split(',') if x]
    todo = [x for x in listed if not only or x in only]
    unknown = [x for x in only if x not in listed]
    if unknown:
        ap.error('no such scenario: %s (see tests/linux/l1/%s.list)' % (', '.join(unknown), mode))

    work = Path(tempfile.mkdtemp(prefix='cove-rig-'))
    tap = Tap()
    deadline = time.monotonic() + args.timeout
    stalls = {}
    try:
        initrd = build_l1_initrd(assets, Path(args.cove).resolve(), work)
        cmd = [qemu, '-accel', 'tcg', '-cpu', 'EPYC,-xsave', '-smp', '1', '-m', L1_MEM, '-M',
               'q35', '-display', 'none', '-serial', 'stdio', '-no-reboot',
               '-monitor', 'unix:%s,server=on,wait=off' % (work / 'monitor'),
               '-kernel', str(assets / 'l1-vmlinuz'), '-initrd', str(initrd),
               '-drive', 'file=%s,if=virtio,format=raw,readonly=on' % (assets / 'assets.img')]
        while todo and time.monotonic() < deadline:
            append = ('console=ttyS0 panic=-1 quiet rig.mode=%s rig.only=%s rig.rounds=%d '
                      'rig.fiotime=%d' % (mode, ','.join(todo), args.rounds, args.fio_seconds))
            log('booting L1 (%s): %d scenario(s)' % (mode, len(todo)))
            stalled = run_l1(cmd + ['-append', append], work / 'monitor', todo, tap, args,
                             deadline)
            if stalled is None:
                break
            # L1 itself stopped (no heartbeat): a fault of the emulation, not of a guest
            # Cove runs. Boot a fresh L1 and run the scenario again, once.
            stalls[stalled] = stalls.get(stalled, 0) + 1
            i = todo.index(stalled)
            if stalls[stalled] > 1:
                tap.result('not ok', stalled, 'L1 stalled in this scenario twice')
                todo = todo[i + 1:]
            else:
                tap.note('L1 stalled during %s; a fresh L1 runs it again' % stalled)
                todo = todo[i:]
        if todo and time.monotonic() >= deadline:
            tap.result('not ok', 'rig', 'past %d s with %s still to run' %
                       (args.timeout, ', '.join(todo)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tap.plan()
    log('%.0fs in all%s' % (time.monotonic() - t0, ', L1 restarted after %d stall(s)' %
                            sum(stalls.values()) if stalls else ''))
    return 1 if tap.failed else 0


class Tap:
    """TAP output; a scenario's results are held until it ends, so a rerun does not
    count them twice."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.held = []

    def result(self, status, name, why=''):
        self.n += 1
        if status == 'skip':
            print('ok %d - %s # SKIP %s' % (self.n, name, why), flush=True)
            return
        self.failed += status == 'not ok'
        print('%s %d - %s%s' % (status, self.n, name, ' # ' + why if why else ''), flush=True)

    def note(self, text):
        print('# ' + text, flush=True)

    def hold(self, item):
        self.held.append(item)

    def flush(self):
        for kind, a, b, c in self.held:
            if kind == 'result':
                self.result(a, b, c)
            else:
                self.note(a)
        self.held = []

    def drop(self):
        dropped = len([h for h in self.held if h[0] == 'result'])
        self.held = []
        return dropped

    def plan(self):
        print('1..%d' % self.n)


def monitor_dump(path):
    """What L1's vCPU is doing, from QEMU's monitor (for a stall's report)."""
    import socket
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(str(path))
        out = b''
        for c in (b'info cpus\n', b'info registers\n'):
            s.sendall(c)
            time.sleep(0.5)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        s.close()
        keep = [x for x in out.decode(errors='replace').splitlines()
                if re.match(r'^\s*(\*?\s*CPU|RIP|RAX|CR0|CS |EFER|HLT)', x)]
        return keep[:8]
    except OSError as e:
        return ['monitor: %s' % e]


def run_l1(cmd, monitor, todo, tap, args, deadline):
    """Boots L1 once and reports what it prints. Returns None when it ran to the end (or
    ended otherwise, reported), or the scenario during which L1 stalled."""
    q = Qemu(cmd, args.verbose)
    current = None
    tail = []
    try:
        for line in q.lines(args.stall_timeout, deadline):
            if line is None:
                if current is None or time.monotonic() >= deadline:
                    tap.result('not ok', 'rig', 'L1 silent for %d s outside a scenario; last '
                               'lines: %s' % (args.stall_timeout, ' | '.join(tail[-5:])))
                    return None
                dropped = tap.drop()
                tap.note('L1 silent for %d s (no heartbeat) in %s after %d result(s); L1 '
                         'was at: %s' % (args.stall_timeout, current, dropped,
                                         ' / '.join(monitor_dump(monitor))))
                return current
            tail = (tail + [line])[-20:]
            m = re.match(r'^RIG: (ok|not ok|skip) (\S+)(?: # (.*))?$', line)
            if m:
                tap.hold(('result',) + m.groups())
                if current is None:
                    tap.flush()
            elif line.startswith('RIG: begin '):
                current = line[11:].strip()
            elif line.startswith('RIG: end '):
                tap.flush()
                current = None
            elif line.startswith('RIG: info '):
                tap.hold(('note', line[10:], None, None))
                if current is None:
                    tap.flush()
            elif line.startswith('RIG: done'):
                tap.flush()
                return None
        tap.flush()
        tap.result('not ok', 'rig', 'L1 ended before its last scenario; last lines: %s' %
                   ' | '.join(tail[-8:]))
        return None
    finally:
        q.stop()


if __name__ == '__main__':
    sys.exit(main())
