/* The warning a PVM host gives for a kernel that is not built as a PVM guest. */
#ifndef COVE_CLI_RUN_PVM_WARN_H
#define COVE_CLI_RUN_PVM_WARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * On a PVM host, warns once (log_warn) unless the kernel is the probe guest or a PVM guest
 * kernel. With background, a bzImage is decompressed on a thread, so the VM need not wait
 * for it (exit() waits for that thread); without, here (before --sandbox, which must be
 * entered with one thread). Call it at most once per process.
 */
void pvm_warn_once(const uint8_t *kernel, size_t len, bool background);

#endif
