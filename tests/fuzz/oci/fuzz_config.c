/* libFuzzer target: config.json, process and resources parsing must never crash or leak. */
#include "oci/oci.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oci_config c;
	struct cove_err err = {0};
	if (oci_config_parse((const char *)data, size, 0, &c, &err) == 0) {
		struct oci_process p;
		struct oci_resources r;
		oci_process_parse((const char *)data, size, 0, &c, &p, &err);
		oci_resources_parse((const char *)data, size, &c, &r, &err);
		oci_config_free(&c);
	}
	oci_config_parse((const char *)data, size, OCI_PARSE_STRICT, &c, &err) == 0
	    ? oci_config_free(&c)
	    : (void)0;
	return 0;
}
