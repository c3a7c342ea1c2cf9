/* Unit tests of the 16550A UART: Linux's probe, FIFOs, interrupts, batching, state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "devices/serial.h"
#include "fakes.h"
#include "vmm/layout.h"

static const struct irq_line com1_irq = {.gsi = LAYOUT_IRQ_COM1};

static size_t drain(int fd, char *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap);
	return n > 0 ? (size_t)n : 0;
}

static void linux_autoconfig(void **state)
{
	struct device *d = serial_new(&com1_irq, -1);
	assert_non_null(d);
	/* IER: all four bits stick, nothing else (UUE bit 6 must not). */
	wr8(d, 1, 0);
	assert_int_equal(rd8(d, 1) & 0x0F, 0);
	wr8(d, 1, 0x0F);
	assert_int_equal(rd8(d, 1), 0x0F);
	wr8(d, 1, 0x4F);
	assert_int_equal(rd8(d, 1), 0x0F);
	wr8(d, 1, 0);
	/* Scratch register. */
	wr8(d, 7, 0xA5);
	assert_int_equal(rd8(d, 7), 0xA5);
	/* FIFO enabled: IIR bits 7:6 = 11 (16550A), bit 5 clear (not a 16750). */
	wr8(d, 2, 0x01 | 0x20);
	assert_int_equal(rd8(d, 2) >> 5, 6);
	wr8(d, 3, 0x80);
	wr8(d, 2, 0x01 | 0x20);
	assert_int_equal(rd8(d, 2) >> 5, 6);
	/* No EFR at offset 2 with LCR 0xBF (not a 16650). */
	wr8(d, 3, 0xBF);
	assert_int_not_equal(rd8(d, 2), 0);
	wr8(d, 3, 0x03);
	/* Loopback test: MCR = LOOP | OUT2 | RTS gives MSR 0x90 (DCD, CTS). */
	wr8(d, 4, 0x10 | 0x0A);
	assert_int_equal(rd8(d, 6) & 0xF0, 0x90);
	wr8(d, 4, 0);
	/* LSR: transmitter empty. */
	assert_int_equal(rd8(d, 5) & 0x60, 0x60);
	d->ops->destroy(d);
}

static void divisor_latch(void **state)
{
	struct device *d = serial_new(&com1_irq, -1);
	wr8(d, 3, 0x83);
	wr8(d, 0, 0x01);
	wr8(d, 1, 0x02);
	assert_int_equal(rd8(d, 0), 0x01);
	assert_int_equal(rd8(d, 1), 0x02);
	wr8(d, 3, 0x03);
	assert_int_equal(rd8(d, 1), 0); /* IER again */
	assert_int_equal(rd8(d, 3), 0x03);
	d->ops->destroy(d);
}

static void output_is_batched(void **state)
{
	int p[2];
	char buf[64];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	struct device *d = serial_new(&com1_irq, p[1]);
	wr8(d, 0, 'a');
	wr8(d, 0, 'b');
	assert_int_equal(drain(p[0], buf, sizeof(buf)), 0);
	wr8(d, 0, '\n');
	assert_int_equal(drain(p[0], buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "ab\n", 3);
	wr8(d, 0, 'x');
	serial_flush(d);
	assert_int_equal(drain(p[0], buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'x');
	/* Nothing is lost at exit. */
	wr8(d, 0, 'y');
	d->ops->destroy(d);
	assert_int_equal(drain(p[0], buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'y');
	/* A full buffer is written without waiting for a newline. */
	d = serial_new(&com1_irq, p[1]);
	size_t total = 0;
	char big[8192];
	for (int i = 0; i < 5000; i++) {
		wr8(d, 0, 'z');
		total += drain(p[0], big, sizeof(big));
	}
	assert_int_equal(total, 4096);
	d->ops->destroy(d);
	total += drain(p[0], big, sizeof(big));
	assert_int_equal(total, 5000);
	close(p[0]);
	close(p[1]);
}

static void receive_interrupts(void **state)
{
	fake_irq_clear();
	struct device *d = serial_new(&com1_irq, -1);
	wr8(d, 2, 0x07); /* FIFO on, trigger 1 */
	wr8(d, 1, 0x01); /* RX data interrupt */
	wr8(d, 4, 0x03); /* DTR, RTS: ready to receive */
	assert_false(fake_irq_level[LAYOUT_IRQ_COM1]);
	assert_int_equal(rd8(d, 2), 0xC1);
	assert_int_equal(serial_input(d, (const uint8_t *)"hi", 2), 2);
	assert_true(fake_irq_level[LAYOUT_IRQ_COM1]);
	assert_int_equal(rd8(d, 2), 0xC4);
	assert_true(rd8(d, 5) & 0x01);
	assert_int_equal(rd8(d, 0), 'h');
	assert_int_equal(rd8(d, 0), 'i');
	assert_false(rd8(d, 5) & 0x01);
	assert_int_equal(rd8(d, 2), 0xC1);
	assert_false(fake_irq_level[LAYOUT_IRQ_COM1]);
	/* Trigger level 8 with 2 bytes: the character timeout (0x0C) reports them. */
	wr8(d, 2, 0x81);
	serial_input(d, (const uint8_t *)"ab", 2);
	assert_int_equal(rd8(d, 2), 0xCC);
	/* FCR clears the receive FIFO. */
	wr8(d, 2, 0x83);
	assert_false(rd8(d, 5) & 0x01);
	assert_false(fake_irq_level[LAYOUT_IRQ_COM1]);
	d->ops->destroy(d);
}

static void thre_interrupts(void **state)
{
	fake_irq_clear();
	struct device *d = serial_new(&com1_irq, -1);
	wr8(d, 1, 0x02); /* enabling THRI with THR empty raises it at once */
	assert_true(fake_irq_level[LAYOUT_IRQ_COM1]);
	assert_int_equal(rd8(d, 2) & 0x0F, 0x02);
	/* Reading IIR acknowledged it. */
	assert_int_equal(rd8(d, 2) & 0x0F, 0x01);
	assert_false(fake_irq_level[LAYOUT_IRQ_COM1]);
	unsigned rises = fake_irq_rises[LAYOUT_IRQ_COM1];
	wr8(d, 0, 'x');
	assert_true(fake_irq_level[LAYOUT_IRQ_COM1]);
	/* A second byte while the line is high gives a new edge. */
	wr8(d, 0, 'y');
	assert_int_equal(fake_irq_rises[LAYOUT_IRQ_COM1], rises + 2);
	wr8(d, 1, 0);
	assert_false(fake_irq_level[LAYOUT_IRQ_COM1]);
	/* Modem status interrupt from loopback line changes. */
	wr8(d, 1, 0x08);
	wr8(d, 4, 0x10);
	wr8(d, 4, 0x12); /* RTS -> CTS changes: DCTS */
	assert_int_equal(rd8(d, 2) & 0x0F, 0x00);
	assert_true(rd8(d, 6) & 0x01);
	assert_int_equal(rd8(d, 2) & 0x0F, 0x01);
	d->ops->destroy(d);
}

static void loopback(void **state)
{
	int p[2];
	char buf[16];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	struct device *d = serial_new(&com1_irq, p[1]);
	wr8(d, 4, 0x10);
	wr8(d, 0, 'A');
	wr8(d, 0, 'B'); /* FIFO off: the second byte overruns */
	assert_int_equal(rd8(d, 5) & 0x03, 0x03);
	assert_int_equal(rd8(d, 5) & 0x02, 0); /* OE cleared by the read */
	assert_int_equal(rd8(d, 0), 'A');
	serial_flush(d);
	assert_int_equal(drain(p[0], buf, sizeof(buf)), 0);
	d->ops->destroy(d);
	close(p[0]);
	close(p[1]);
}

static void input_is_bounded(void **state)
{
	static uint8_t in[SERIAL_RX_BUF + 100];
	struct device *d = serial_new(&com1_irq, -1);
	assert_int_equal(serial_rx_space(d), SERIAL_RX_BUF);
	assert_int_equal(serial_input(d, in, sizeof(in)), SERIAL_RX_BUF);
	assert_int_equal(serial_rx_dropped(d), 100);
	assert_int_equal(serial_rx_space(d), 0);
	/* The guest gets ready: its FIFO fills from the buffer, which makes room. */
	wr8(d, 2, 0x01);
	wr8(d, 4, 0x03);
	assert_int_equal(serial_rx_space(d), 16);
	rd8(d, 0);
	assert_int_equal(serial_rx_space(d), 17);
	d->ops->destroy(d);
}

/* Input that arrives before the guest sets up the port survives its FIFO reset. */
static void early_input_waits_for_the_guest(void **state)
{
	struct device *d = serial_new(&com1_irq, -1);
	serial_input(d, (const uint8_t *)"early", 5);
	assert_false(rd8(d, 5) & 0x01); /* nothing received yet: DTR and RTS are low */
	/* The probe guest's and Linux's set-up: FIFO on and cleared, then DTR|RTS. */
	wr8(d, 2, 0x07);
	wr8(d, 4, 0x03);
	char got[6] = {0};
	for (int i = 0; i < 5; i++) {
		assert_true(rd8(d, 5) & 0x01);
		got[i] = (char)rd8(d, 0);
	}
	assert_string_equal(got, "early");
	assert_false(rd8(d, 5) & 0x01);
	/* A FIFO reset drops only what had been received (16 bytes), not what waits. */
	static uint8_t many[40];
	memset(many, 'm', sizeof(many));
	serial_input(d, many, sizeof(many));
	wr8(d, 2, 0x07);
	int n = 0;
	while (rd8(d, 5) & 0x01) {
		rd8(d, 0);
		n++;
	}
	assert_int_equal(n, 40 - 16);
	/* Loopback disconnects the input; dropping DTR and RTS holds it. */
	serial_input(d, (const uint8_t *)"x", 1);
	rd8(d, 0);
	wr8(d, 4, 0x00);
	serial_input(d, (const uint8_t *)"y", 1);
	assert_false(rd8(d, 5) & 0x01);
	wr8(d, 4, 0x13);
	assert_false(rd8(d, 5) & 0x01);
	wr8(d, 4, 0x03);
	assert_int_equal(rd8(d, 0), 'y');
	d->ops->destroy(d);
}

static void state_and_hostile(void **state)
{
	struct device *d = serial_new(&com1_irq, -1), *f = serial_new(&com1_irq, -1);
	wr8(d, 2, 0xC1);
	wr8(d, 1, 0x05);
	wr8(d, 3, 0x1B);
	wr8(d, 7, 0x42);
	wr8(d, 4, 0x0B);
	serial_input(d, (const uint8_t *)"pending", 7);
	static uint8_t waiting[100];
	serial_input(d, waiting, sizeof(waiting));
	check_save_restore(d, f);
	assert_int_equal(rd8(f, 0), 'p');
	assert_int_equal(rd8(f, 7), 0x42);
	check_bad_states(d);
	hammer(d, SERIAL_PORT_LEN + 4, 3000, 1);
	d->ops->reset(d);
	assert_int_equal(rd8(d, 1), 0);
	assert_false(rd8(d, 5) & 0x01);
	check_save_restore(d, f);
	d->ops->destroy(d);
	f->ops->destroy(f);
}

struct race {
	struct device *dev;
	int fd;
	size_t got;
};

static void *vcpu_thread(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < 20000; i++)
		wr8(r->dev, 0, i % 100 == 99 ? '\n' : 'v');
	return NULL;
}

static void *reader_thread(void *arg)
{
	struct race *r = arg;
	char buf[4096];
	ssize_t n;
	while ((n = read(r->fd, buf, sizeof(buf))) > 0)
		r->got += (size_t)n;
	return NULL;
}

/* A vCPU writing while the event loop feeds input and flushes: no byte lost or doubled. */
static void concurrent_use(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct race r = {.dev = serial_new(&com1_irq, p[1]), .fd = p[0]};
	wr8(r.dev, 4, 0x03);
	pthread_t vcpu, reader;
	assert_int_equal(pthread_create(&reader, NULL, reader_thread, &r), 0);
	assert_int_equal(pthread_create(&vcpu, NULL, vcpu_thread, &r), 0);
	size_t taken = 0;
	for (int i = 0; i < 2000; i++) {
		taken += serial_input(r.dev, (const uint8_t *)"k", 1);
		serial_flush(r.dev);
		while (rd8(r.dev, 5) & 0x01)
			rd8(r.dev, 0);
	}
	pthread_join(vcpu, NULL);
	r.dev->ops->destroy(r.dev);
	close(p[1]);
	pthread_join(reader, NULL);
	close(p[0]);
	assert_int_equal(r.got, 20000);
	assert_int_equal(taken, 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(linux_autoconfig),	 cmocka_unit_test(divisor_latch),
	    cmocka_unit_test(output_is_batched), cmocka_unit_test(receive_interrupts),
	    cmocka_unit_test(thre_interrupts),	 cmocka_unit_test(loopback),
	    cmocka_unit_test(input_is_bounded),	 cmocka_unit_test(state_and_hostile),
	    cmocka_unit_test(concurrent_use),	 cmocka_unit_test(early_input_waits_for_the_guest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
