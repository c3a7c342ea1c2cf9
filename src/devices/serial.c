/* 16550A UART: registers, FIFOs and interrupts as Linux's 8250 driver uses them. */
#include "devices/serial.h"

#include "devices/devutil.h"
#include "util/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* Register offsets. */
enum {
	REG_DATA = 0, /* RBR (read), THR (write), DLL with DLAB */
	REG_IER = 1,  /* DLM with DLAB */
	REG_IIR = 2,  /* IIR (read), FCR (write) */
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI	 0x01 /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI	 0x08 /* modem status */
#define IER_MASK 0x0F

#define IIR_NONE    0x01
#define IIR_MSI	    0x00
#define IIR_THRI    0x02
#define IIR_RDI	    0x04
#define IIR_RLSI    0x06
#define IIR_TIMEOUT 0x0C
#define IIR_FIFO    0xC0

#define FCR_ENABLE    0x01
#define FCR_CLEAR_RX  0x02
#define FCR_CLEAR_TX  0x04
#define FCR_STORED    0xC9 /* enable, DMA mode, RX trigger */
#define LCR_DLAB      0x80
#define MCR_DTR	      0x01
#define MCR_RTS	      0x02
#define MCR_OUT1      0x04
#define MCR_OUT2      0x08
#define MCR_LOOP      0x10
#define MCR_MASK      0x1F
#define LSR_DR	      0x01
#define LSR_OE	      0x02
#define LSR_PE	      0x04
#define LSR_FE	      0x08
#define LSR_BI	      0x10
#define LSR_THRE      0x20
#define LSR_TEMT      0x40
#define LSR_ERR	      (LSR_OE | LSR_PE | LSR_FE | LSR_BI)
#define MSR_DCTS      0x01
#define MSR_DDSR      0x02
#define MSR_TERI      0x04
#define MSR_DDCD      0x08
#define MSR_DELTA     0x0F
#define MSR_CTS	      0x10
#define MSR_DSR	      0x20
#define MSR_RI	      0x40
#define MSR_DCD	      0x80
#define HW_FIFO	      16 /* the receive FIFO the guest sees */
#define TX_BUF	      4096
#define FLUSH_WAIT_MS 1000

struct serial {
	struct device dev;
	pthread_mutex_t lock;
	struct irq_line irq;
	bool has_irq;
	bool irq_level;
	int out_fd;

	uint8_t ier, fcr, lcr, mcr, lsr_err, msr, scr, dll, dlm;
	bool thr_ipending;

	/* The receiver: what the guest can read (16 bytes, or 1 with the FIFO off). */
	uint8_t fifo[HW_FIFO];
	uint8_t fifo_head, fifo_count;
	/*
	 * Host input not yet received: the "terminal" sends only while the guest asserts
	 * DTR or RTS (flow control), so input that arrives before the guest has set up the
	 * port survives its FIFO reset.
	 */
	uint8_t rx[SERIAL_RX_BUF];
	size_t rx_head, rx_count;
	uint64_t rx_dropped;

	uint8_t tx[TX_BUF];
	size_t tx_len;
	uint64_t tx_dropped;
};

static struct serial *to_serial(struct device *dev)
{
	return dev->priv;
}

static size_t hw_fifo_size(const struct serial *s)
{
	return (s->fcr & FCR_ENABLE) ? HW_FIFO : 1;
}

static uint8_t rx_trigger(const struct serial *s)
{
	static const uint8_t levels[4] = {1, 4, 8, 14};
	return (s->fcr & FCR_ENABLE) ? levels[s->fcr >> 6] : 1;
}

/* The pending interrupt of highest priority, as IIR bits 0-3. */
static uint8_t pending_iir(const struct serial *s)
{
	if ((s->ier & IER_RLSI) && (s->lsr_err & LSR_ERR))
		return IIR_RLSI;
	if ((s->ier & IER_RDI) && s->fifo_count) {
		/* Below the trigger level the character timeout fires; we do not wait for it. */
		return s->fifo_count >= rx_trigger(s) ? IIR_RDI : IIR_TIMEOUT;
	}
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_MSI) && (s->msr & MSR_DELTA))
		return IIR_MSI;
	return IIR_NONE;
}

/*
 * Drives the line from the pending interrupts. With new_edge, a line that stays high is
 * dropped and raised again so that an edge-triggered IOAPIC pin sees a new interrupt.
 */
static void update_irq(struct serial *s, bool new_edge)
{
	bool level = pending_iir(s) != IIR_NONE;
	if (!s->has_irq) {
		s->irq_level = level;
		return;
	}
	if (level && s->irq_level && new_edge)
		irq_line_set(&s->irq, false);
	else if (level == s->irq_level)
		return;
	irq_line_set(&s->irq, level);
	s->irq_level = level;
}

/* Writes buf fully to fd, waiting a bounded time when fd is non-blocking and full. */
static void write_all(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(s->out_fd, buf + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = s->out_fd, .events = POLLOUT};
			if (poll(&pfd, 1, FLUSH_WAIT_MS) > 0)
				continue;
		}
		s->tx_dropped += len - done;
		return;
	}
}

static void flush_locked(struct serial *s)
{
	if (s->tx_len && s->out_fd >= 0)
		write_all(s, s->tx, s->tx_len);
	s->tx_len = 0;
}

static uint8_t modem_lines(const struct serial *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS; /* a connected terminal */
	uint8_t v = 0;
	if (s->mcr & MCR_RTS)
		v |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		v |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		v |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		v |= MSR_DCD;
	return v;
}

static void update_msr(struct serial *s)
{
	uint8_t old = s->msr & 0xF0, now = modem_lines(s), delta = s->msr & MSR_DELTA;
	if ((old ^ now) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((old ^ now) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		delta |= MSR_TERI;
	if ((old ^ now) & MSR_DCD)
		delta |= MSR_DDCD;
	s->msr = now | delta;
}

static void fifo_push(struct serial *s, uint8_t byte)
{
	s->fifo[(s->fifo_head + s->fifo_count) % HW_FIFO] = byte;
	s->fifo_count++;
}

static void fifo_clear(struct serial *s)
{
	s->fifo_head = 0;
	s->fifo_count = 0;
}

/* Moves host input into the receiver while it has room and the guest is ready for it. */
static void pump(struct serial *s)
{
	if ((s->mcr & MCR_LOOP) || !(s->mcr & (MCR_DTR | MCR_RTS)))
		return;
	while (s->rx_count && s->fifo_count < hw_fifo_size(s)) {
		fifo_push(s, s->rx[s->rx_head]);
		s->rx_head = (s->rx_head + 1) % SERIAL_RX_BUF;
		s->rx_count--;
	}
}

static void transmit(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP) {
		/* Loopback: the byte arrives at the receiver; a full FIFO overruns. */
		if (s->fifo_count >= hw_fifo_size(s))
			s->lsr_err |= LSR_OE;
		else
			fifo_push(s, byte);
	} else {
		s->tx[s->tx_len++] = byte;
		if (byte == '\n' || s->tx_len == TX_BUF)
			flush_locked(s);
	}
	/* The byte left at once: the holding register is empty again. */
	s->thr_ipending = true;
	update_irq(s, true);
}

static void serial_read(struct device *dev, uint64_t offset, void *data, unsigned len)
{
	struct serial *s = to_serial(dev);
	uint8_t v = 0xFF;
	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB) {
			v = s->dll;
			break;
		}
		v = 0;
		if (s->fifo_count) {
			v = s->fifo[s->fifo_head];
			s->fifo_head = (s->fifo_head + 1) % HW_FIFO;
			s->fifo_count--;
			pump(s);
		}
		update_irq(s, false);
		break;
	case REG_IER:
		v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
		break;
	case REG_IIR:
		v = pending_iir(s);
		if (v == IIR_THRI)
			s->thr_ipending = false; /* reading IIR acknowledges THRE */
		if (s->fcr & FCR_ENABLE)
			v |= IIR_FIFO;
		update_irq(s, false);
		break;
	case REG_LCR:
		v = s->lcr;
		break;
	case REG_MCR:
		v = s->mcr;
		break;
	case REG_LSR:
		v = LSR_THRE | LSR_TEMT | s->lsr_err | (s->fifo_count ? LSR_DR : 0);
		s->lsr_err = 0;
		update_irq(s, false);
		break;
	case REG_MSR:
		v = s->msr;
		s->msr &= (uint8_t)~MSR_DELTA;
		update_irq(s, false);
		break;
	case REG_SCR:
		v = s->scr;
		break;
	}
	pthread_mutex_unlock(&s->lock);
	/* Wider accesses see the register in the low byte and ones above (no other device). */
	dev_store(data, len, 0xFFFFFFFFFFFFFF00ULL | v);
}

static void serial_write(struct device *dev, uint64_t offset, const void *data, unsigned len)
{
	struct serial *s = to_serial(dev);
	uint8_t v = (uint8_t)dev_load(data, len);
	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			transmit(s, v);
		break;
	case REG_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		if ((v ^ s->ier) & IER_THRI)
			s->thr_ipending = (v & IER_THRI) != 0; /* THR is always empty */
		s->ier = v & IER_MASK;
		update_irq(s, false);
		break;
	case REG_IIR: {
		uint8_t fcr = (v & FCR_ENABLE) ? (v & FCR_STORED) : 0;
		if ((fcr ^ s->fcr) & FCR_ENABLE)
			v |= FCR_CLEAR_RX | FCR_CLEAR_TX; /* switching FIFO mode empties them */
		if (v & FCR_CLEAR_RX)
			fifo_clear(s);
		s->fcr = fcr;
		pump(s);
		update_irq(s, false);
		break;
	}
	case REG_LCR:
		s->lcr = v;
		break;
	case REG_MCR:
		s->mcr = v & MCR_MASK;
		update_msr(s);
		pump(s);
		update_irq(s, false);
		break;
	case REG_SCR:
		s->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	pthread_mutex_unlock(&s->lock);
}

static void reset_locked(struct serial *s)
{
	flush_locked(s);
	s->ier = 0;
	s->fcr = 0;
	s->lcr = 0;
	s->mcr = 0;
	s->lsr_err = 0;
	s->msr = modem_lines(s);
	s->scr = 0;
	s->dll = 0x0C; /* 9600 baud */
	s->dlm = 0;
	s->thr_ipending = false;
	fifo_clear(s); /* the host's pending input stays: the terminal still holds it */
	update_irq(s, false);
}

static void serial_reset(struct device *dev)
{
	struct serial *s = to_serial(dev);
	pthread_mutex_lock(&s->lock);
	reset_locked(s);
	pthread_mutex_unlock(&s->lock);
}

#define SERIAL_MAGIC   DEV_MAGIC('U', 'A', 'R', 'T')
#define SERIAL_VERSION 1

static int serial_save(struct device *dev, struct state_buf *buf)
{
	struct serial *s = to_serial(dev);
	struct state_w w = {.buf = buf};
	pthread_mutex_lock(&s->lock);
	flush_locked(s); /* output already sent belongs to this host's console */
	sw_header(&w, SERIAL_MAGIC, SERIAL_VERSION);
	uint8_t regs[9] = {s->ier, s->fcr, s->lcr, s->mcr, s->lsr_err,
			   s->msr, s->scr, s->dll, s->dlm};
	sw_bytes(&w, regs, sizeof(regs));
	sw_u8(&w, s->thr_ipending);
	sw_u64(&w, s->rx_dropped);
	sw_u8(&w, s->fifo_count);
	for (size_t i = 0; i < s->fifo_count; i++)
		sw_u8(&w, s->fifo[(s->fifo_head + i) % HW_FIFO]);
	sw_u16(&w, (uint16_t)s->rx_count);
	for (size_t i = 0; i < s->rx_count; i++)
		sw_u8(&w, s->rx[(s->rx_head + i) % SERIAL_RX_BUF]);
	pthread_mutex_unlock(&s->lock);
	return w.err;
}

static int serial_restore(struct device *dev, const void *data, size_t len)
{
	struct serial *s = to_serial(dev);
	struct state_r r = {.p = data, .len = len};
	uint8_t regs[9];
	sr_header(&r, SERIAL_MAGIC, SERIAL_VERSION);
	sr_bytes(&r, regs, sizeof(regs));
	uint8_t thr = sr_u8(&r);
	uint64_t dropped = sr_u64(&r);
	size_t fifo_count = sr_u8(&r);
	if (fifo_count > HW_FIFO)
		return -EINVAL;
	const uint8_t *fifo = sr_take(&r, fifo_count);
	size_t count = sr_u16(&r);
	if (count > SERIAL_RX_BUF)
		return -EINVAL;
	const uint8_t *rx = sr_take(&r, count);
	if (!sr_done(&r) || thr > 1 || (regs[0] & ~IER_MASK) || (regs[1] & ~FCR_STORED) ||
	    ((regs[1] & ~FCR_ENABLE) && !(regs[1] & FCR_ENABLE)) || (regs[3] & ~MCR_MASK) ||
	    (regs[4] & ~LSR_ERR) || fifo_count > ((regs[1] & FCR_ENABLE) ? HW_FIFO : 1))
		return -EINVAL;

	pthread_mutex_lock(&s->lock);
	flush_locked(s);
	s->ier = regs[0];
	s->fcr = regs[1];
	s->lcr = regs[2];
	s->mcr = regs[3];
	s->lsr_err = regs[4];
	s->msr = regs[5];
	s->scr = regs[6];
	s->dll = regs[7];
	s->dlm = regs[8];
	s->thr_ipending = thr;
	s->rx_dropped = dropped;
	s->fifo_head = 0;
	s->fifo_count = (uint8_t)fifo_count;
	if (fifo_count)
		memcpy(s->fifo, fifo, fifo_count);
	s->rx_head = 0;
	s->rx_count = count;
	if (count)
		memcpy(s->rx, rx, count);
	/* The modem lines follow MCR; keep only the saved deltas. */
	s->msr = modem_lines(s) | (s->msr & MSR_DELTA);
	if (s->has_irq) {
		s->irq_level = pending_iir(s) != IIR_NONE;
		irq_line_set(&s->irq, s->irq_level);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void serial_destroy(struct device *dev)
{
	struct serial *s = to_serial(dev);
	pthread_mutex_lock(&s->lock);
	flush_locked(s);
	pthread_mutex_unlock(&s->lock);
	if (s->tx_dropped)
		log_warn("serial: %llu bytes of guest output could not be written",
			 (unsigned long long)s->tx_dropped);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct device_ops serial_ops = {
    .read = serial_read,
    .write = serial_write,
    .reset = serial_reset,
    .save = serial_save,
    .restore = serial_restore,
    .destroy = serial_destroy,
};

struct device *serial_new(const struct irq_line *irq, int out_fd)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return NULL;
	}
	s->dev.name = "serial0";
	s->dev.ops = &serial_ops;
	s->dev.priv = s;
	if (irq) {
		s->irq = *irq;
		s->has_irq = true;
	}
	s->out_fd = out_fd;
	reset_locked(s);
	return &s->dev;
}

size_t serial_input(struct device *dev, const uint8_t *buf, size_t len)
{
	struct serial *s = to_serial(dev);
	pthread_mutex_lock(&s->lock);
	size_t room = SERIAL_RX_BUF - s->rx_count;
	size_t n = len < room ? len : room;
	for (size_t i = 0; i < n; i++)
		s->rx[(s->rx_head + s->rx_count + i) % SERIAL_RX_BUF] = buf[i];
	s->rx_count += n;
	if (n < len) {
		if (s->rx_dropped == 0)
			log_warn("serial: input buffer full, dropping input");
		s->rx_dropped += len - n;
	}
	if (n) {
		pump(s);
		update_irq(s, false); /* like the pin: it stays high while data waits */
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_space(struct device *dev)
{
	struct serial *s = to_serial(dev);
	pthread_mutex_lock(&s->lock);
	size_t room = SERIAL_RX_BUF - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return room;
}

uint64_t serial_rx_dropped(struct device *dev)
{
	struct serial *s = to_serial(dev);
	pthread_mutex_lock(&s->lock);
	uint64_t n = s->rx_dropped;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_flush(struct device *dev)
{
	struct serial *s = to_serial(dev);
	pthread_mutex_lock(&s->lock);
	flush_locked(s);
	pthread_mutex_unlock(&s->lock);
}
