/*
 * The device model: a device is a struct with an ops table, registered on the port-I/O
 * or MMIO bus over one or more ranges. vCPU threads call read/write with the bus lock
 * not held; a device that shares state with other threads locks it itself.
 */
#ifndef COVE_VMM_DEVICE_H
#define COVE_VMM_DEVICE_H

#include <stddef.h>
#include <stdint.h>

struct device;
struct state_buf;

struct device_ops {
	/* offset is relative to the start of the range that matched; len is 1, 2, 4 or 8. */
	void (*read)(struct device *dev, uint64_t offset, void *data, unsigned len);
	void (*write)(struct device *dev, uint64_t offset, const void *data, unsigned len);
	/* Back to power-on state (machine reset). May be NULL. */
	void (*reset)(struct device *dev);
	/* Appends the device's state to buf; restore reads back exactly what save wrote.
	 * Both return 0 or -errno (-EINVAL: a state that does not fit this device). */
	int (*save)(struct device *dev, struct state_buf *buf);
	int (*restore)(struct device *dev, const void *data, size_t len);
	/* Frees the device. May be NULL. */
	void (*destroy)(struct device *dev);
};

struct device {
	const char *name; /* "serial0", "i8042", ... (for logs and saved state) */
	const struct device_ops *ops;
	void *priv; /* the device's own state */
};

/* A growable byte buffer for save(). */
struct state_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};
/* Appends len bytes. Returns 0 or -ENOMEM. */
int state_buf_put(struct state_buf *buf, const void *data, size_t len);
void state_buf_free(struct state_buf *buf);

#endif
