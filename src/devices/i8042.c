/* i8042 keyboard controller with a minimal AT keyboard: Linux's probe, and the reset line. */
#include "devices/i8042.h"

#include "devices/devutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define STAT_OBF      0x01
#define STAT_SYS      0x04
#define STAT_CMD      0x08 /* the last write went to the command port */
#define STAT_UNLOCKED 0x10
#define STAT_AUX_OBF  0x20

#define CB_KBD_INT     0x01
#define CB_AUX_INT     0x02
#define CB_SYS	       0x04
#define CB_KBD_DISABLE 0x10
#define CB_AUX_DISABLE 0x20
#define CB_DEFAULT     0x47 /* interrupts on, system flag, translation (as QEMU) */

#define OUTPORT_RESET 0x01 /* low: CPU held in reset */
#define OUTPORT_A20   0x02
#define QUEUE_LEN     16
#define KBD_ACK	      0xFA
#define KBD_RESEND    0xFE

struct i8042 {
	struct device dev;
	struct device cmd_dev; /* the view registered at port 0x64 */
	pthread_mutex_t lock;
	struct irq_line irq;
	bool has_irq;
	bool irq_level;
	void (*reset_cb)(void *opaque);
	void *opaque;

	uint8_t cmd_byte;
	uint8_t pending_cmd; /* controller command waiting for its data byte, or 0 */
	uint8_t kbd_pending; /* keyboard command waiting for its argument, or 0 */
	uint8_t outport;
	uint8_t scancode_set;
	uint8_t last_out;
	bool last_was_cmd;
	bool sys_flag;
	bool kbd_scanning;
	/* Output buffer: bytes for the guest, each from the keyboard or the aux port. */
	uint8_t queue[QUEUE_LEN];
	bool queue_aux[QUEUE_LEN];
	uint8_t head, count;
};

static struct i8042 *to_i8042(struct device *dev)
{
	return dev->priv;
}

static void update_irq(struct i8042 *k, bool new_edge)
{
	bool level = k->count && !k->queue_aux[k->head] && (k->cmd_byte & CB_KBD_INT);
	if (!k->has_irq) {
		k->irq_level = level;
		return;
	}
	if (level && k->irq_level && new_edge)
		irq_line_set(&k->irq, false);
	else if (level == k->irq_level)
		return;
	irq_line_set(&k->irq, level);
	k->irq_level = level;
}

/* Queues a byte for the guest; a full buffer drops it (the guest is not reading). */
static void push(struct i8042 *k, uint8_t byte, bool aux)
{
	if (k->count == QUEUE_LEN)
		return;
	unsigned i = (k->head + k->count) % QUEUE_LEN;
	k->queue[i] = byte;
	k->queue_aux[i] = aux;
	k->count++;
	update_irq(k, false); /* a byte behind the first gets its edge when it moves up */
}

static uint8_t status(const struct i8042 *k)
{
	uint8_t v = STAT_UNLOCKED;
	if (k->sys_flag)
		v |= STAT_SYS;
	if (k->last_was_cmd)
		v |= STAT_CMD;
	if (k->count) {
		v |= STAT_OBF;
		if (k->queue_aux[k->head])
			v |= STAT_AUX_OBF;
	}
	return v;
}

/* A byte written to the keyboard: a small AT keyboard that answers Linux's atkbd. */
static void kbd_write(struct i8042 *k, uint8_t v)
{
	if (k->kbd_pending) {
		if (k->kbd_pending == 0xF0 && v == 0) {
			push(k, KBD_ACK, false);
			push(k, k->scancode_set, false);
		} else {
			if (k->kbd_pending == 0xF0 && v >= 1 && v <= 3)
				k->scancode_set = v;
			push(k, KBD_ACK, false);
		}
		k->kbd_pending = 0;
		return;
	}
	switch (v) {
	case 0xED: /* set LEDs */
	case 0xF3: /* typematic rate */
	case 0xF0: /* scan code set */
		k->kbd_pending = v;
		push(k, KBD_ACK, false);
		break;
	case 0xEE: /* echo */
		push(k, 0xEE, false);
		break;
	case 0xF2: /* identify: an MF2 keyboard */
		push(k, KBD_ACK, false);
		push(k, 0xAB, false);
		push(k, 0x83, false);
		break;
	case 0xF4:
		k->kbd_scanning = true;
		push(k, KBD_ACK, false);
		break;
	case 0xF5:
		k->kbd_scanning = false;
		push(k, KBD_ACK, false);
		break;
	case 0xF6:
		k->scancode_set = 2;
		push(k, KBD_ACK, false);
		break;
	case 0xFF: /* reset and self-test */
		k->scancode_set = 2;
		k->kbd_scanning = true;
		push(k, KBD_ACK, false);
		push(k, 0xAA, false);
		break;
	default:
		push(k, (v >= 0xF7 && v <= 0xFD) ? KBD_ACK : KBD_RESEND, false);
		break;
	}
}

/* Returns true when the CPU reset line was pulsed. */
static bool data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;
	k->pending_cmd = 0;
	switch (cmd) {
	case 0x60:
		k->cmd_byte = v;
		k->sys_flag = (v & CB_SYS) != 0;
		update_irq(k, false);
		return false;
	case 0xD1:
		k->outport = v;
		return !(v & OUTPORT_RESET);
	case 0xD2:
		push(k, v, false);
		return false;
	case 0xD3:
		push(k, v, true);
		return false;
	case 0xD4: /* to the aux device: there is none */
		return false;
	default:
		kbd_write(k, v);
		return false;
	}
}

/* Returns true when the CPU reset line was pulsed. */
static bool command(struct i8042 *k, uint8_t v)
{
	switch (v) {
	case 0x20:
		push(k, k->cmd_byte, false);
		break;
	case 0x60:
	case 0xD1:
	case 0xD2:
	case 0xD3:
	case 0xD4:
		k->pending_cmd = v;
		break;
	case 0xA7:
		k->cmd_byte |= CB_AUX_DISABLE;
		break;
	case 0xA8:
		k->cmd_byte &= (uint8_t)~CB_AUX_DISABLE;
		break;
	case 0xA9: /* aux interface test: passed */
	case 0xAB: /* keyboard interface test: passed */
		push(k, 0x00, false);
		break;
	case 0xAA: /* controller self-test */
		k->sys_flag = true;
		k->cmd_byte |= CB_SYS;
		push(k, 0x55, false);
		break;
	case 0xAD:
		k->cmd_byte |= CB_KBD_DISABLE;
		break;
	case 0xAE:
		k->cmd_byte &= (uint8_t)~CB_KBD_DISABLE;
		break;
	case 0xC0: /* input port: keyboard not inhibited */
		push(k, 0x80, false);
		break;
	case 0xD0:
		push(k, k->outport, false);
		break;
	default:
		/* 0xF0-0xFF pulse output-port bits low for 6 us; bit 0 is the reset line. */
		if (v >= 0xF0 && !(v & 1))
			return true;
		break;
	}
	return false;
}

static void i8042_rw(struct i8042 *k, bool cmd_port, bool is_write, void *data, unsigned len)
{
	uint8_t v = 0;
	bool reset = false;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		uint8_t w = (uint8_t)dev_load(data, len);
		k->last_was_cmd = cmd_port;
		reset = cmd_port ? command(k, w) : data_write(k, w);
	} else if (cmd_port) {
		v = status(k);
	} else {
		if (k->count) {
			k->last_out = k->queue[k->head];
			k->head = (k->head + 1) % QUEUE_LEN;
			k->count--;
			update_irq(k, k->count != 0);
		}
		v = k->last_out;
	}
	pthread_mutex_unlock(&k->lock);
	if (!is_write)
		dev_store(data, len, 0xFFFFFFFFFFFFFF00ULL | v);
	/* Outside the lock: the callback may reset every device, this one included. */
	if (reset && k->reset_cb)
		k->reset_cb(k->opaque);
}

static void data_read(struct device *dev, uint64_t offset, void *data, unsigned len)
{
	if (offset != 0) {
		dev_store(data, len, ~0ULL);
		return;
	}
	i8042_rw(to_i8042(dev), false, false, data, len);
}

static void data_write_op(struct device *dev, uint64_t offset, const void *data, unsigned len)
{
	if (offset == 0)
		i8042_rw(to_i8042(dev), false, true, (void *)data, len);
}

static void cmd_read(struct device *dev, uint64_t offset, void *data, unsigned len)
{
	if (offset != 0) {
		dev_store(data, len, ~0ULL);
		return;
	}
	i8042_rw(to_i8042(dev), true, false, data, len);
}

static void cmd_write(struct device *dev, uint64_t offset, const void *data, unsigned len)
{
	if (offset == 0)
		i8042_rw(to_i8042(dev), true, true, (void *)data, len);
}

static void reset_locked(struct i8042 *k)
{
	k->cmd_byte = CB_DEFAULT;
	k->pending_cmd = 0;
	k->kbd_pending = 0;
	k->outport = OUTPORT_RESET | OUTPORT_A20;
	k->scancode_set = 2;
	k->last_out = 0;
	k->last_was_cmd = false;
	k->sys_flag = false;
	k->kbd_scanning = true;
	k->head = 0;
	k->count = 0;
	update_irq(k, false);
}

static void i8042_reset(struct device *dev)
{
	struct i8042 *k = to_i8042(dev);
	pthread_mutex_lock(&k->lock);
	reset_locked(k);
	pthread_mutex_unlock(&k->lock);
}

#define I8042_MAGIC   DEV_MAGIC('8', '0', '4', '2')
#define I8042_VERSION 1

static int i8042_save(struct device *dev, struct state_buf *buf)
{
	struct i8042 *k = to_i8042(dev);
	struct state_w w = {.buf = buf};
	pthread_mutex_lock(&k->lock);
	sw_header(&w, I8042_MAGIC, I8042_VERSION);
	uint8_t regs[9] = {k->cmd_byte,	    k->pending_cmd,  k->kbd_pending,
			   k->outport,	    k->scancode_set, k->last_out,
			   k->last_was_cmd, k->sys_flag,     k->kbd_scanning};
	sw_bytes(&w, regs, sizeof(regs));
	sw_u8(&w, k->count);
	for (unsigned i = 0; i < k->count; i++) {
		unsigned j = (k->head + i) % QUEUE_LEN;
		sw_u8(&w, k->queue[j]);
		sw_u8(&w, k->queue_aux[j]);
	}
	pthread_mutex_unlock(&k->lock);
	return w.err;
}

static bool valid_pending(uint8_t cmd, uint8_t kbd)
{
	bool cmd_ok = cmd == 0 || cmd == 0x60 || (cmd >= 0xD1 && cmd <= 0xD4);
	bool kbd_ok = kbd == 0 || kbd == 0xED || kbd == 0xF3 || kbd == 0xF0;
	return cmd_ok && kbd_ok;
}

static int i8042_restore(struct device *dev, const void *data, size_t len)
{
	struct i8042 *k = to_i8042(dev);
	struct state_r r = {.p = data, .len = len};
	uint8_t regs[9], q[QUEUE_LEN], qa[QUEUE_LEN];
	sr_header(&r, I8042_MAGIC, I8042_VERSION);
	sr_bytes(&r, regs, sizeof(regs));
	uint8_t count = sr_u8(&r);
	if (count > QUEUE_LEN)
		return -EINVAL;
	for (unsigned i = 0; i < count; i++) {
		q[i] = sr_u8(&r);
		qa[i] = sr_u8(&r);
		if (qa[i] > 1)
			return -EINVAL;
	}
	if (!sr_done(&r) || !valid_pending(regs[1], regs[2]) || regs[4] < 1 || regs[4] > 3 ||
	    regs[6] > 1 || regs[7] > 1 || regs[8] > 1)
		return -EINVAL;

	pthread_mutex_lock(&k->lock);
	k->cmd_byte = regs[0];
	k->pending_cmd = regs[1];
	k->kbd_pending = regs[2];
	k->outport = regs[3];
	k->scancode_set = regs[4];
	k->last_out = regs[5];
	k->last_was_cmd = regs[6];
	k->sys_flag = regs[7];
	k->kbd_scanning = regs[8];
	k->head = 0;
	k->count = count;
	for (unsigned i = 0; i < count; i++) {
		k->queue[i] = q[i];
		k->queue_aux[i] = qa[i];
	}
	if (k->has_irq) {
		k->irq_level = k->count && !k->queue_aux[0] && (k->cmd_byte & CB_KBD_INT);
		irq_line_set(&k->irq, k->irq_level);
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void i8042_destroy(struct device *dev)
{
	struct i8042 *k = to_i8042(dev);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static int view_save(struct device *dev, struct state_buf *buf)
{
	return 0; /* the state lives in the data-port device */
}

static int view_restore(struct device *dev, const void *data, size_t len)
{
	return len == 0 ? 0 : -EINVAL;
}

static const struct device_ops i8042_ops = {
    .read = data_read,
    .write = data_write_op,
    .reset = i8042_reset,
    .save = i8042_save,
    .restore = i8042_restore,
    .destroy = i8042_destroy,
};

static const struct device_ops i8042_cmd_ops = {
    .read = cmd_read,
    .write = cmd_write,
    .save = view_save,
    .restore = view_restore,
};

struct device *i8042_new(const struct irq_line *kbd_irq, void (*reset)(void *opaque), void *opaque)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	if (pthread_mutex_init(&k->lock, NULL) != 0) {
		free(k);
		return NULL;
	}
	k->dev.name = "i8042";
	k->dev.ops = &i8042_ops;
	k->dev.priv = k;
	k->cmd_dev.name = "i8042-cmd";
	k->cmd_dev.ops = &i8042_cmd_ops;
	k->cmd_dev.priv = k;
	if (kbd_irq) {
		k->irq = *kbd_irq;
		k->has_irq = true;
	}
	k->reset_cb = reset;
	k->opaque = opaque;
	reset_locked(k);
	return &k->dev;
}

struct device *i8042_command_port(struct device *dev)
{
	return &to_i8042(dev)->cmd_dev;
}
