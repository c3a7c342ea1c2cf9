/* Unit tests of coved's SQLite store and VM definitions. */
#include "daemon/store.h"
#include "daemon/vmdef.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

static char dir[64], db[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/cove-store-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(db, sizeof(db), "%s/t.db", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char p[160];
	const char *files[] = {"t.db", "t.db-wal", "t.db-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static int count_cb(void *ctx, const char *name, const char *json)
{
	(void)name;
	(void)json;
	(*(int *)ctx)++;
	return 0;
}

static void test_vms(void **state)
{
	(void)state;
	struct store *s;
	struct cove_err err = {0};
	assert_int_equal(store_open(db, &s, &err), 0);
	assert_int_equal(store_vm_insert(s, "a", "{\"name\":\"a\"}", &err), 0);
	assert_int_equal(store_vm_insert(s, "b", "{\"name\":\"b\"}", &err), 0);
	assert_int_equal(store_vm_insert(s, "a", "{}", &err), -EEXIST);
	assert_non_null(strstr(err.msg, "already exists"));
	char *json;
	assert_int_equal(store_vm_get(s, "a", &json, &err), 0);
	assert_string_equal(json, "{\"name\":\"a\"}");
	free(json);
	cove_err_clear(&err);
	assert_int_equal(store_vm_update(s, "a", "{\"name\":\"a\",\"cpus\":2}", &err), 0);
	assert_int_equal(store_vm_update(s, "zz", "{}", &err), -ENOENT);
	int n = 0;
	store_vm_foreach(s, count_cb, &n, &err);
	assert_int_equal(n, 2);
	assert_int_equal(store_vm_count(s), 2);
	cove_err_clear(&err);
	assert_int_equal(store_vm_delete(s, "b", &err), 0);
	assert_int_equal(store_vm_delete(s, "b", &err), -ENOENT);
	store_close(s);
	/* Reopen: what was committed is there. */
	assert_int_equal(store_open(db, &s, &err), 0);
	assert_int_equal(store_vm_get(s, "a", &json, &err), 0);
	assert_non_null(strstr(json, "cpus"));
	free(json);
	assert_int_equal(store_vm_count(s), 1);
	store_close(s);
}

static int ev_cb(void *ctx, const struct store_event *ev)
{
	char *out = ctx;
	strcat(out, ev->type);
	strcat(out, ev->detail ? "+" : ",");
	return 0;
}

static void test_events_and_runtime(void **state)
{
	(void)state;
	struct store *s;
	struct cove_err err = {0};
	assert_int_equal(store_open(db, &s, &err), 0);
	store_vm_insert(s, "vm", "{}", &err);
	int64_t id1, id2;
	assert_int_equal(store_event_add(s, "vm", "started", "r", NULL, &id1), 0);
	assert_int_equal(store_event_add(s, "other", "defined", "r", NULL, NULL), 0);
	assert_int_equal(store_event_add(s, "vm", "crashed", "exit 3", "log tail", &id2), 0);
	assert_true(id2 > id1);
	char out[256] = "";
	store_event_foreach(s, 0, "vm", 100, ev_cb, out);
	assert_string_equal(out, "started,crashed+");
	out[0] = '\0';
	store_event_foreach(s, id1, NULL, 100, ev_cb, out);
	assert_string_equal(out, "defined,crashed+");
	assert_int_equal(store_event_last_id(s), id2);

	struct store_runtime rt = {.shim_pid = 10,
				   .vmm_pid = 11,
				   .shim_start = 12345,
				   .started_at = 99,
				   .stop_requested = true,
				   .reboot_requested = true};
	strcpy(rt.name, "vm");
	strcpy(rt.state, "paused");
	assert_int_equal(store_runtime_set(s, &rt, &err), 0);
	struct store_runtime got;
	assert_int_equal(store_runtime_get(s, "vm", &got), 0);
	assert_int_equal(got.vmm_pid, 11);
	assert_int_equal(got.shim_start, 12345);
	assert_string_equal(got.state, "paused");
	assert_true(got.stop_requested);
	assert_true(got.reboot_requested);
	assert_false(got.destroy_requested);
	/* Events and a runtime change in one transaction. */
	assert_int_equal(store_begin(s), 0);
	got.destroy_requested = true;
	assert_int_equal(store_runtime_set(s, &got, &err), 0);
	assert_int_equal(store_event_add(s, "vm", "stopped", "destroyed", NULL, NULL), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_runtime_get(s, "vm", &got), 0);
	assert_true(got.destroy_requested);
	int64_t last = store_event_last_id(s);
	assert_true(last > 0);
	/* A transaction that never commits (coved killed inside it) leaves nothing. */
	assert_int_equal(store_begin(s), 0);
	got.vmm_pid = 99;
	got.destroy_requested = false;
	assert_int_equal(store_runtime_set(s, &got, &err), 0);
	assert_int_equal(store_event_add(s, "vm", "crashed", "never committed", NULL, NULL), 0);
	store_close(s);
	assert_int_equal(store_open(db, &s, &err), 0);
	assert_int_equal(store_runtime_get(s, "vm", &got), 0);
	assert_int_equal(got.vmm_pid, 11);
	assert_true(got.destroy_requested);
	assert_int_equal(store_event_last_id(s), last);
	assert_int_equal(store_runtime_clear(s, "vm", &err), 0);
	assert_int_equal(store_runtime_get(s, "vm", &got), -ENOENT);
	store_close(s);
}

static void test_uids(void **state)
{
	(void)state;
	struct store *s;
	struct cove_err err = {0};
	assert_int_equal(store_open(db, &s, &err), 0);
	const char *names[] = {"a", "b", "c", "d"};
	for (int i = 0; i < 4; i++)
		assert_int_equal(store_vm_insert(s, names[i], "{}", &err), 0);
	uid_t ua, ub, uc, again;
	assert_int_equal(store_vm_uid(s, "a", 5000, 3, &ua, &err), 0);
	assert_int_equal(store_vm_uid(s, "b", 5000, 3, &ub, &err), 0);
	assert_int_equal(store_vm_uid(s, "c", 5000, 3, &uc, &err), 0);
	assert_int_equal(ua, 5000);
	assert_int_equal(ub, 5001);
	assert_int_equal(uc, 5002);
	assert_int_equal(store_vm_uid(s, "a", 5000, 3, &again, &err), 0);
	assert_int_equal(again, 5000); /* a VM keeps its uid */
	assert_int_equal(store_vm_uid(s, "d", 5000, 3, &again, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "uids"));
	/* Deleting a definition frees its uid for the next VM. */
	assert_int_equal(store_vm_delete(s, "b", &err), 0);
	assert_int_equal(store_vm_uid(s, "d", 5000, 3, &again, &err), 0);
	assert_int_equal(again, 5001);
	store_close(s);
}

static void test_schema_version(void **state)
{
	(void)state;
	struct store *s;
	struct cove_err err = {0};
	assert_int_equal(store_open(db, &s, &err), 0);
	store_close(s);
	sqlite3 *raw;
	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	char *msg = NULL;
	sqlite3_stmt *st;
	sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
	sqlite3_finalize(st);
	/* A store from a newer coved is refused with a clear message, not damaged. */
	assert_int_equal(sqlite3_exec(raw, "PRAGMA user_version=99", NULL, NULL, &msg), SQLITE_OK);
	sqlite3_close(raw);
	assert_int_equal(store_open(db, &s, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "newer coved"));
}

static void test_vmdef(void **state)
{
	(void)state;
	struct vmdef *d;
	struct cove_err err = {0};
	const char *good = "{\"name\":\"web.1\",\"kernel\":\"/k\",\"cpus\":4,\"memory\":\"1G\","
			   "\"disks\":[{\"path\":\"/d\",\"readonly\":true},"
			   "{\"path\":\"/q\",\"format\":\"qcow2\"}],"
			   "\"nics\":[{\"network\":\"default\",\"mac\":\"52:54:00:00:00:01\"}],"
			   "\"autostart\":true}";
	assert_int_equal(vmdef_parse(good, strlen(good), &d, &err), 0);
	assert_int_equal(d->memory_mib, 1024);
	assert_int_equal(d->cpus, 4);
	assert_true(d->disks[0].readonly);
	assert_string_equal(d->disks[0].format, "");
	assert_string_equal(d->disks[1].format, "qcow2");
	assert_string_equal(d->nics[0].network, "default");
	json_object *j = vmdef_to_json(d);
	const char *text = json_object_to_json_string(j);
	struct vmdef *again;
	assert_int_equal(vmdef_parse(text, strlen(text), &again, &err), 0);
	assert_memory_equal(d, again, sizeof(*d));
	vmdef_free(again);
	json_object_put(j);
	vmdef_free(d);

	const char *bad[] = {
	    "{}",
	    "{\"name\":\"\"}",
	    "{\"name\":\"-x\"}",
	    "{\"name\":\"a b\"}",
	    "{\"name\":\"x\",\"cpus\":33}",
	    "{\"name\":\"x\",\"memory\":\"1.5\"}",
	    "{\"name\":\"x\",\"memory\":8}",
	    "{\"name\":\"x\",\"memory\":true}",
	    "{\"name\":\"x\",\"initrd\":\"/i\"}",
	    "{\"name\":\"x\",\"kernel\":\"rel\"}",
	    "{\"name\":\"x\",\"console\":\"tty\"}",
	    "{\"name\":\"x\",\"nics\":[{}]}",
	    "{\"name\":\"x\",\"nics\":[{\"tap\":\"t\",\"mac\":\"xx\"}]}",
	    "{\"name\":\"x\",\"disks\":{}}",
	    "{\"name\":\"x\",\"disks\":[{\"path\":\"/d\",\"format\":\"vmdk\"}]}",
	    "{\"name\":\"x\",\"autostart\":1}",
	    "{\"name\":\"x\",\"extra\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cove_err_clear(&err);
		d = NULL;
		if (vmdef_parse(bad[i], strlen(bad[i]), &d, &err) == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err.msg[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_vms, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_and_runtime, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
	    cmocka_unit_test(test_vmdef),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
