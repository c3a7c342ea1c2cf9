/* The tap network backend: /dev/net/tun in tap mode with 12-byte virtio-net headers, one fd per
 * queue (IFF_MULTI_QUEUE) when a NIC has several queue pairs. */
#include "net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* One more queue of tap name (a new tap as root when it does not exist). Returns the fd or
 * -errno. */
static int open_queue(const char *name, bool multi)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0));
	int hdr = TAP_VNET_HDR_LEN;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int tap_open_queues(const char *name, unsigned n, int *fds, struct cove_err *err)
{
	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return cove_err_set(err, -EINVAL, "tap '%s': name must be 1 to %d bytes",
				    name ? name : "", IFNAMSIZ - 1);
	if (n < 1 || n > TAP_MAX_QUEUES)
		return cove_err_set(err, -EINVAL, "tap %s: %u queues, expected 1 to %d", name, n,
				    TAP_MAX_QUEUES);
	/* One queue works on a tap made either way: the kernel insists that IFF_MULTI_QUEUE
	 * matches how the tap was made, so try the other way on EINVAL. */
	bool multi = n > 1;
	for (unsigned i = 0; i < n; i++) {
		int fd = open_queue(name, multi);
		if (fd == -EINVAL && n == 1) {
			multi = true;
			fd = open_queue(name, multi);
		}
		if (fd < 0) {
			while (i > 0)
				close(fds[--i]);
			if (fd == -ENOENT || fd == -ENODEV)
				return cove_err_set(err, fd, "/dev/net/tun: %s", strerror(-fd));
			return cove_err_set(
			    err, fd, "tap %s: %s%s", name, strerror(-fd),
			    fd == -EPERM ? " (needs CAP_NET_ADMIN, or a tap owned by you)"
			    : fd == -EINVAL && n > 1
				? " (several queues need a tap made with multi_queue, e.g. "
				  "`ip tuntap add NAME mode tap multi_queue`)"
				: "");
		}
		fds[i] = fd;
	}
	tap_set_offload(fds[0], 0);
	return 0;
}

int tap_set_offload(int fd, unsigned tun_flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)tun_flags) < 0 ? -errno : 0;
}

int tap_set_queue(int fd, bool attach)
{
	struct ifreq ifr = {0};
	ifr.ifr_flags = (short)(attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE);
	return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}
