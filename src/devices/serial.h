/* 16550A UART (COM1): the register set Linux's 8250 driver uses, FIFOs, interrupts, loopback. */
#ifndef COVE_DEVICES_SERIAL_H
#define COVE_DEVICES_SERIAL_H

#include "vmm/device.h"
#include "vmm/irq.h"

#include <stddef.h>
#include <stdint.h>

/* The device decodes 8 ports: register it at LAYOUT_PORT_COM1 with this length. */
#define SERIAL_PORT_LEN 8

/* Bytes of host input buffered ahead of the guest (beyond that serial_input drops). */
#define SERIAL_RX_BUF 4096

/*
 * Creates a UART that raises irq (a level, following the IIR) and writes the guest's
 * output to out_fd (-1: discard). Output is batched and written on newline, when the
 * buffer fills, on serial_flush() and on destroy. irq is copied; out_fd stays the
 * caller's (not closed). Returns NULL on allocation failure.
 */
struct device *serial_new(const struct irq_line *irq, int out_fd);

/*
 * Feeds host input (the console) to the guest. Thread-safe against vCPU accesses.
 * Returns how many bytes were taken; the rest did not fit the RX buffer and were dropped
 * (counted in serial_rx_dropped). Call serial_rx_space() first to avoid dropping.
 * Input moves on into the guest-visible FIFO only while the guest asserts DTR or RTS in
 * MCR (as a terminal with flow control would), so what is typed before the guest has set
 * up the port waits for it instead of being lost to its FIFO reset.
 */
size_t serial_input(struct device *dev, const uint8_t *buf, size_t len);
size_t serial_rx_space(struct device *dev);
uint64_t serial_rx_dropped(struct device *dev);

/* Writes out buffered guest output now (event loop: after each batch of exits, at exit). */
void serial_flush(struct device *dev);

#endif
