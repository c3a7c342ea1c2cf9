# shellcheck shell=bash
# disk-lib.sh: the probe guest's virtio-blk disk image and the host-side check of what its vblk
# test leaves there. Source after probe-lib.sh (check_disk prints TAP through probe_tap).

# The disk image: byte j of sector s is (s * 31 + j) & 0xFF (virtio_tests.c knows it too).
# $1: path; $2: sectors (default 4096).
mkdisk() {
	python3 -c "
import sys
with open(sys.argv[1], 'wb') as f:
    f.write(b''.join(bytes(((s * 31 + j) & 255) for j in range(512)) for s in range(int(sys.argv[2]))))
" "$1" "${2:-4096}"
}

# What the guest must have left on the disk: sectors 1000-1007 written, 1100-1107 zeroed,
# the rest as made (1200-1215 were discarded: zero or old data).
check_disk() { # $1: label, $2: raw image
	local why
	why=$(python3 -c "
import sys
d = open(sys.argv[1], 'rb').read()
for s in range(4096):
    for j in (0, 1, 255, 511):
        b = d[s * 512 + j]
        want = ((s * 7 + j * 13 + 0x5A) & 255) if 1000 <= s < 1008 else 0 if 1100 <= s < 1108 else (s * 31 + j) & 255
        if 1200 <= s < 1216:
            continue  # discarded: zero or old data
        if b != want:
            print('sector %d byte %d is %d, want %d' % (s, j, b, want)); sys.exit(0)
" "$2")
	if [ -z "$why" ]; then
		probe_tap ok "$1 host sees the guest's writes and zeroes"
	else
		probe_tap "not ok" "$1 host-side check: $why"
	fi
}
