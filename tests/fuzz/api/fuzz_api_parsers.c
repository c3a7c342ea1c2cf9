/* libFuzzer target: every request body parser of the API (Firecracker model, coved's VM
 * definitions) and the router, on the same input. Nothing may crash, leak or hang. */
#include "api/fc_api.h"
#include "api/http.h"
#include "api/json.h"

#include <stdlib.h>
#include <string.h>

#ifdef COVE_FUZZ_VMDEF
#include "daemon/vmdef.h"
#endif

static void h(struct api_request *req, struct api_response *resp)
{
	(void)req;
	(void)resp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *b = (const char *)data;
	struct cove_err err = {0};
	struct fc_vm_config *cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return 0;
	fc_config_init(cfg);
	struct fc_boot_source boot;
	fc_parse_boot_source(b, size, &boot, &err);
	struct fc_machine_config m;
	cove_err_clear(&err);
	fc_parse_machine_config(b, size, size & 1, &cfg->machine, &m, &err);
	struct fc_drive d;
	cove_err_clear(&err);
	if (fc_parse_drive(NULL, b, size, &d, &err) == 0)
		fc_config_put_drive(cfg, &d, &err);
	struct fc_net n;
	cove_err_clear(&err);
	if (fc_parse_net(NULL, b, size, &n, &err) == 0)
		fc_config_put_net(cfg, &n, &err);
	struct fc_vsock v;
	fc_parse_vsock(b, size, &v, &err);
	struct fc_balloon bl;
	fc_parse_balloon(b, size, &bl, &err);
	uint32_t amount;
	fc_parse_balloon_update(b, size, &amount, &err);
	fc_parse_balloon_stats_update(b, size, &amount, &err);
	struct fc_net_update nu;
	fc_parse_net_update("eth0", b, size, &nu, &err);
	struct fc_logger l;
	fc_parse_logger(b, size, &l, &err);
	struct fc_metrics mt;
	fc_parse_metrics(b, size, &mt, &err);
	enum fc_action a;
	fc_parse_action(b, size, &a, &err);
	bool pause;
	fc_parse_vm_state(b, size, &pause, &err);
	cove_err_clear(&err);
	if (fc_parse_full_config(b, size, cfg, &err) == 0)
		json_object_put(fc_config_to_json(cfg));
#ifdef COVE_FUZZ_VMDEF
	struct vmdef *def = NULL;
	cove_err_clear(&err);
	if (vmdef_parse(b, size, &def, &err) == 0) {
		json_object_put(vmdef_to_json(def));
		vmdef_free(def);
	}
#endif
	/* The router over the input as a path. */
	char path[512];
	size_t pl = size < sizeof(path) - 1 ? size : sizeof(path) - 1;
	memcpy(path, data, pl);
	path[pl] = '\0';
	static const struct api_route routes[] = {
	    {"GET", "/v1/vms/{name}", h, 0},
	    {"POST", "/v1/vms/{name}/actions/{action}", h, 0},
	    {"GET", "/drives/{id}", h, 0},
	};
	struct api_request req;
	memset(&req, 0, sizeof(req));
	api_route_match(routes, 3, "GET", path, &req);
	free(cfg);
	return 0;
}
