/* libFuzzer target: the `cove run` JSON config parser. */
#include "vmm/config.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run_config c;
	struct cove_err err = {0};
	run_config_init(&c);
	run_config_parse_json(&c, (const char *)data, size, &err);
	run_config_free(&c);
	return 0;
}
