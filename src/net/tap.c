/* The tap network backend: /dev/net/tun in tap mode with 12-byte virtio-net headers. */
#include "net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int tap_open(const char *name, struct cove_err *err)
{
	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return cove_err_set(err, -EINVAL, "tap '%s': name must be 1 to %d bytes",
				    name ? name : "", IFNAMSIZ - 1);
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return cove_err_set(err, -errno, "/dev/net/tun: %s", strerror(errno));
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	int hdr = TAP_VNET_HDR_LEN;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return cove_err_set(err, -e, "tap %s: %s%s", name, strerror(e),
				    e == EPERM ? " (needs CAP_NET_ADMIN, or a tap owned by you)"
					       : "");
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int e = errno;
		close(fd);
		return cove_err_set(err, -e, "tap %s: TUNSETVNETHDRSZ: %s", name, strerror(e));
	}
	tap_set_offload(fd, 0);
	return fd;
}

int tap_set_offload(int fd, unsigned tun_flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)tun_flags) < 0 ? -errno : 0;
}
