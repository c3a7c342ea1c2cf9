/* Unit tests of strict JSON parsing and the router. */
#include "api/http.h"
#include "api/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static int parse(const char *s, struct cove_err *err)
{
	json_object *o = NULL;
	int rc = api_json_parse_object(s, strlen(s), &o, err);
	json_object_put(o);
	return rc;
}

static void test_parse_good(void **state)
{
	(void)state;
	struct cove_err err = {0};
	assert_int_equal(parse("{\"a\": 1}  \n", &err), 0);
}

static void test_parse_bad(void **state)
{
	(void)state;
	const char *bad[] = {"",	 "{",	    "{\"a\":1} x", "[1]",    "nul",
			     "{\"a\":}", "{'a':1}", "{\"a\":1}{}", "\"str\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cove_err err = {0};
		assert_int_equal(parse(bad[i], &err), -EINVAL);
		assert_true(err.msg[0] != '\0');
	}
}

static void test_parse_depth(void **state)
{
	(void)state;
	char buf[200];
	memset(buf, '[', 100);
	memset(buf + 100, ']', 100);
	json_object *o = NULL;
	struct cove_err err = {0};
	assert_int_equal(api_json_parse(buf, 200, &o, &err), -EINVAL);
}

static void test_fields(void **state)
{
	(void)state;
	static const char *const allowed[] = {"name", "cpus", NULL};
	json_object *o = json_tokener_parse("{\"name\":\"x\",\"cpuz\":2}");
	struct cove_err err = {0};
	assert_int_equal(api_json_check_fields(o, "vm", allowed, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "unknown field 'cpuz'"));
	json_object_put(o);
}

static void test_getters(void **state)
{
	(void)state;
	json_object *o = json_tokener_parse(
	    "{\"s\":\"abc\",\"n\":5,\"neg\":-1,\"big\":18446744073709551615,\"b\":true,"
	    "\"f\":1.5}");
	struct cove_err err = {0};
	const char *s;
	uint64_t u;
	bool b;
	assert_int_equal(api_json_get_str(o, "s", true, 10, &s, &err), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(api_json_get_str(o, "s", true, 2, &s, &err), -EINVAL);
	assert_int_equal(api_json_get_str(o, "n", true, 10, &s, &err), -EINVAL);
	assert_int_equal(api_json_get_u64(o, "n", true, 1, 10, &u, &err), 0);
	assert_int_equal(u, 5);
	assert_int_equal(api_json_get_u64(o, "n", true, 6, 10, &u, &err), -EINVAL);
	assert_int_equal(api_json_get_u64(o, "neg", true, 0, 10, &u, &err), -EINVAL);
	assert_int_equal(api_json_get_u64(o, "big", true, 0, UINT64_MAX, &u, &err), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(api_json_get_u64(o, "f", true, 0, 10, &u, &err), -EINVAL);
	assert_int_equal(api_json_get_bool(o, "b", true, &b, &err), 0);
	assert_true(b);
	assert_int_equal(api_json_get_bool(o, "missing", false, &b, &err), -ENOENT);
	assert_int_equal(api_json_opt(api_json_get_bool(o, "missing", false, &b, &err)), 0);
	json_object_put(o);
}

static void h(struct api_request *req, struct api_response *resp)
{
	(void)req;
	(void)resp;
}

static void test_router(void **state)
{
	(void)state;
	static const struct api_route r[] = {
	    {"GET", "/v1/vms", h, 0},
	    {"POST", "/v1/vms", h, 0},
	    {"GET", "/v1/vms/{name}", h, 0},
	    {"POST", "/v1/vms/{name}/actions/{action}", h, 0},
	    {"GET", "/", h, 0},
	};
	struct api_request req;
	memset(&req, 0, sizeof(req));
	assert_int_equal(api_route_match(r, 5, "GET", "/v1/vms", &req), 0);
	assert_int_equal(api_route_match(r, 5, "POST", "/v1/vms", &req), 1);
	assert_int_equal(api_route_match(r, 5, "DELETE", "/v1/vms", &req), -EOPNOTSUPP);
	assert_int_equal(api_route_match(r, 5, "GET", "/v1/vms/web1", &req), 2);
	assert_string_equal(req.params[0], "web1");
	assert_int_equal(api_route_match(r, 5, "POST", "/v1/vms/a/actions/start", &req), 3);
	assert_string_equal(req.params[0], "a");
	assert_string_equal(req.params[1], "start");
	assert_int_equal(req.nparams, 2);
	assert_int_equal(api_route_match(r, 5, "GET", "/v1/vms/", &req), -ENOENT);
	assert_int_equal(api_route_match(r, 5, "GET", "/v1/vms/a/b", &req), -ENOENT);
	assert_int_equal(api_route_match(r, 5, "GET", "/v1/vmsx", &req), -ENOENT);
	assert_int_equal(api_route_match(r, 5, "GET", "/", &req), 4);
	char longp[400] = "/v1/vms/";
	memset(longp + 8, 'a', 300);
	assert_int_equal(api_route_match(r, 5, "GET", longp, &req), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),	cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_parse_depth), cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_getters),	cmocka_unit_test(test_router),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
