/* coved's SQLite store: schema versioning, definitions, runtime records, events. */
#include "daemon/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct store {
	sqlite3 *db;
};

/* Migrations: entry i brings a database at user_version i to i + 1. */
static const char *const migrations[] = {
    "CREATE TABLE vms (name TEXT PRIMARY KEY, def TEXT NOT NULL,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE TABLE runtime (name TEXT PRIMARY KEY REFERENCES vms(name), shim_pid INTEGER,"
    " vmm_pid INTEGER, shim_start INTEGER, state TEXT, started_at INTEGER,"
    " stop_requested INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,"
    " vm TEXT NOT NULL, type TEXT NOT NULL, reason TEXT, detail TEXT);"
    "CREATE INDEX events_vm ON events(vm, id);",
    /* 2: crash safety of destroy and reboot; a uid per confined VM. */
    "ALTER TABLE runtime ADD COLUMN destroy_requested INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE runtime ADD COLUMN reboot_requested INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE vm_uids (name TEXT PRIMARY KEY REFERENCES vms(name) ON DELETE CASCADE,"
    " uid INTEGER NOT NULL UNIQUE);",
};

static int db_err(struct store *s, struct cove_err *err, const char *what)
{
	int code = sqlite3_errcode(s->db);
	int e = code == SQLITE_CONSTRAINT ? -EEXIST : code == SQLITE_BUSY ? -EBUSY : -EIO;
	return cove_err_set(err, e, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

int store_open(const char *path, struct store **out, struct cove_err *err)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return cove_err_set(err, -ENOMEM, "out of memory");
	int rc;
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		rc = cove_err_set(err, -EIO, "cannot open the store %s: %s", path,
				  s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto err_close;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL + synchronous=NORMAL: a commit survives the process being killed at any
	 * moment; FULL adds durability against power loss, which we also want. */
	if (sqlite3_exec(s->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
			 "PRAGMA foreign_keys=ON;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "setting WAL mode");
		goto err_close;
	}
	sqlite3_stmt *st;
	int version = 0;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));
	if (version > latest) {
		rc = cove_err_set(err, -EPROTO,
				  "the store %s has schema version %d; this coved knows up to %d "
				  "(use a newer coved)",
				  path, version, latest);
		goto err_close;
	}
	for (int v = version; v < latest; v++) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d; COMMIT;", v + 1);
		if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			rc = db_err(s, err, "migrating the schema");
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			goto err_close;
		}
	}
	*out = s;
	return 0;
err_close:
	sqlite3_close(s->db);
	free(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	free(s);
}

/* Runs one statement with text/int64 parameters given as a format: 't' text, 'i' int64. */
static int exec1(struct store *s, const char *sql, const char *types, const void **args,
		 int *changes)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	for (int i = 0; types[i]; i++) {
		if (types[i] == 't')
			sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(st, i + 1, *(const int64_t *)args[i]);
	}
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (changes)
		*changes = sqlite3_changes(s->db);
	return r == SQLITE_DONE ? 0 : -EIO;
}

int store_vm_insert(struct store *s, const char *name, const char *json, struct cove_err *err)
{
	int64_t now = now_s();
	const void *args[] = {name, json, &now, &now};
	if (exec1(s, "INSERT INTO vms(name, def, created, updated) VALUES(?,?,?,?)", "ttii", args,
		  NULL)) {
		if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
			return cove_err_set(err, -EEXIST, "a VM named '%s' already exists", name);
		return db_err(s, err, "inserting a VM");
	}
	return 0;
}

int store_vm_update(struct store *s, const char *name, const char *json, struct cove_err *err)
{
	int64_t now = now_s();
	const void *args[] = {json, &now, name};
	int changes = 0;
	if (exec1(s, "UPDATE vms SET def=?, updated=? WHERE name=?", "tit", args, &changes))
		return db_err(s, err, "updating a VM");
	if (!changes)
		return cove_err_set(err, -ENOENT, "no VM named '%s'", name);
	return 0;
}

int store_vm_delete(struct store *s, const char *name, struct cove_err *err)
{
	const void *args[] = {name};
	int changes = 0;
	if (exec1(s, "DELETE FROM vms WHERE name=?", "t", args, &changes))
		return db_err(s, err, "deleting a VM");
	if (!changes)
		return cove_err_set(err, -ENOENT, "no VM named '%s'", name);
	return 0;
}

int store_vm_get(struct store *s, const char *name, char **json, struct cove_err *err)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT def FROM vms WHERE name=?", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(s, err, "reading a VM");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	int rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*json = strdup((const char *)sqlite3_column_text(st, 0));
		rc = *json ? 0 : -ENOMEM;
	} else {
		rc = cove_err_set(err, -ENOENT, "no VM named '%s'", name);
	}
	sqlite3_finalize(st);
	return rc;
}

int store_vm_foreach(struct store *s, int (*fn)(void *ctx, const char *name, const char *json),
		     void *ctx, struct cove_err *err)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT name, def FROM vms ORDER BY name", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(s, err, "listing VMs");
	while (sqlite3_step(st) == SQLITE_ROW)
		if (fn(ctx, (const char *)sqlite3_column_text(st, 0),
		       (const char *)sqlite3_column_text(st, 1)))
			break;
	sqlite3_finalize(st);
	return 0;
}

int store_vm_count(struct store *s)
{
	sqlite3_stmt *st;
	int n = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM vms", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	return n;
}

int store_runtime_set(struct store *s, const struct store_runtime *rt, struct cove_err *err)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db,
			       "INSERT OR REPLACE INTO runtime(name, shim_pid, vmm_pid, shim_start,"
			       " state, started_at, stop_requested, destroy_requested,"
			       " reboot_requested) VALUES(?,?,?,?,?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, "recording a running VM");
	sqlite3_bind_text(st, 1, rt->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, rt->shim_pid);
	sqlite3_bind_int64(st, 3, rt->vmm_pid);
	sqlite3_bind_int64(st, 4, (int64_t)rt->shim_start);
	sqlite3_bind_text(st, 5, rt->state, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, rt->started_at);
	sqlite3_bind_int(st, 7, rt->stop_requested);
	sqlite3_bind_int(st, 8, rt->destroy_requested);
	sqlite3_bind_int(st, 9, rt->reboot_requested);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : db_err(s, err, "recording a running VM");
}

static void row_to_rt(sqlite3_stmt *st, struct store_runtime *rt)
{
	memset(rt, 0, sizeof(*rt));
	snprintf(rt->name, sizeof(rt->name), "%s", (const char *)sqlite3_column_text(st, 0));
	rt->shim_pid = (pid_t)sqlite3_column_int64(st, 1);
	rt->vmm_pid = (pid_t)sqlite3_column_int64(st, 2);
	rt->shim_start = (uint64_t)sqlite3_column_int64(st, 3);
	const unsigned char *state = sqlite3_column_text(st, 4);
	snprintf(rt->state, sizeof(rt->state), "%s", state ? (const char *)state : "running");
	rt->started_at = sqlite3_column_int64(st, 5);
	rt->stop_requested = sqlite3_column_int(st, 6) != 0;
	rt->destroy_requested = sqlite3_column_int(st, 7) != 0;
	rt->reboot_requested = sqlite3_column_int(st, 8) != 0;
}

#define RT_COLS                                                                    \
	"name, shim_pid, vmm_pid, shim_start, state, started_at, stop_requested, " \
	"destroy_requested, reboot_requested"

int store_runtime_get(struct store *s, const char *name, struct store_runtime *rt)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT " RT_COLS " FROM runtime WHERE name=?", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	int rc = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		row_to_rt(st, rt);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

int store_runtime_clear(struct store *s, const char *name, struct cove_err *err)
{
	const void *args[] = {name};
	if (exec1(s, "DELETE FROM runtime WHERE name=?", "t", args, NULL))
		return db_err(s, err, "clearing a VM's runtime record");
	return 0;
}

int store_runtime_foreach(struct store *s, int (*fn)(void *ctx, const struct store_runtime *rt),
			  void *ctx)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT " RT_COLS " FROM runtime ORDER BY name", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	struct store_runtime rt;
	while (sqlite3_step(st) == SQLITE_ROW) {
		row_to_rt(st, &rt);
		if (fn(ctx, &rt))
			break;
	}
	sqlite3_finalize(st);
	return 0;
}

int store_begin(struct store *s)
{
	return sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int store_commit(struct store *s)
{
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

int store_vm_uid(struct store *s, const char *name, uid_t base, unsigned count, uid_t *uid,
		 struct cove_err *err)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT uid FROM vm_uids WHERE name=?", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(s, err, "reading a VM's uid");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	int64_t have = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		have = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (have >= (int64_t)base && have < (int64_t)base + count) {
		*uid = (uid_t)have;
		return 0;
	}
	/* None yet, or from another range: the lowest free uid of the range. */
	const void *dargs[] = {name};
	exec1(s, "DELETE FROM vm_uids WHERE name=?", "t", dargs, NULL);
	if (sqlite3_prepare_v2(s->db,
			       "SELECT uid FROM vm_uids WHERE uid >= ? AND uid < ? ORDER BY uid",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, "allocating a uid");
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, (int64_t)base + count);
	int64_t next = base;
	while (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == next)
		next++;
	sqlite3_finalize(st);
	if (next >= (int64_t)base + count)
		return cove_err_set(err, -ENOSPC,
				    "all %u uids for confined VMs (from %u) are taken; delete VMs "
				    "or give coved a larger range",
				    count, (unsigned)base);
	const void *iargs[] = {name, &next};
	if (exec1(s, "INSERT INTO vm_uids(name, uid) VALUES(?,?)", "ti", iargs, NULL))
		return db_err(s, err, "recording a VM's uid");
	*uid = (uid_t)next;
	return 0;
}

int store_event_add(struct store *s, const char *vm, const char *type, const char *reason,
		    const char *detail, int64_t *id)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db,
			       "INSERT INTO events(time_ms, vm, type, reason, detail) "
			       "VALUES(?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, ms);
	sqlite3_bind_text(st, 2, vm, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, reason ? reason : "", -1, SQLITE_TRANSIENT);
	if (detail)
		sqlite3_bind_text(st, 5, detail, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 5);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return -EIO;
	int64_t last = sqlite3_last_insert_rowid(s->db);
	if (id)
		*id = last;
	/* History is bounded: now and then, forget all but the newest events. */
	if (last % 256 == 0) {
		int64_t below = last - STORE_EVENTS_KEPT;
		const void *args[] = {&below};
		exec1(s, "DELETE FROM events WHERE id <= ?", "i", args, NULL);
	}
	return 0;
}

int store_event_foreach(struct store *s, int64_t after, const char *vm, int limit,
			int (*fn)(void *ctx, const struct store_event *ev), void *ctx)
{
	sqlite3_stmt *st;
	const char *sql = vm ? "SELECT id, time_ms, vm, type, reason, detail FROM events "
			       "WHERE id > ? AND vm = ? ORDER BY id LIMIT ?"
			     : "SELECT id, time_ms, vm, type, reason, detail FROM events "
			       "WHERE id > ? ORDER BY id LIMIT ?";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	int i = 1;
	sqlite3_bind_int64(st, i++, after);
	if (vm)
		sqlite3_bind_text(st, i++, vm, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, i, limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct store_event ev = {0};
		ev.id = sqlite3_column_int64(st, 0);
		ev.time_ms = sqlite3_column_int64(st, 1);
		snprintf(ev.vm, sizeof(ev.vm), "%s", (const char *)sqlite3_column_text(st, 2));
		snprintf(ev.type, sizeof(ev.type), "%s", (const char *)sqlite3_column_text(st, 3));
		const unsigned char *r = sqlite3_column_text(st, 4);
		snprintf(ev.reason, sizeof(ev.reason), "%s", r ? (const char *)r : "");
		ev.detail = (char *)sqlite3_column_text(st, 5);
		if (fn(ctx, &ev))
			break;
	}
	sqlite3_finalize(st);
	return 0;
}

int64_t store_event_last_id(struct store *s)
{
	sqlite3_stmt *st;
	int64_t id = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT max(id) FROM events", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return id;
}
