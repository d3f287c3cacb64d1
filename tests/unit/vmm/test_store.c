/* Unit tests for vmm/store.c against a real sqlite database in a temporary directory. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test.h"
#include "vmm/apikeys.h"
#include "vmm/store.h"

/* A fresh state directory per test, so tests do not see each other's rows. */
static char *new_state_dir(void)
{
    char tmpl[] = "/tmp/warren-test-store-XXXXXX";
    ASSERT(mkdtemp(tmpl));
    return wr_strdup(tmpl);
}

static struct store *open_store(const char *dir)
{
    _cleanup_error_ struct wr_error *err = NULL;
    struct store *st = NULL;
    int r = store_open(dir, &st, &err);
    if (r < 0)
        fprintf(stderr, "store_open: %s\n", err->msg);
    ASSERT_EQ(r, 0);
    return st;
}

/* Fills a sandbox whose strings point at static storage (never cleared). */
static struct store_sandbox sample(const char *id, const char *name, int64_t created)
{
    return (struct store_sandbox){
        .id = (char *)id,
        .name = (char *)name,
        .backend = "jail",
        .state = "creating",
        .image = "host",
        .repo = "/home/u/repo",
        .ref = "main",
        .commit_id = "0123456789abcdef0123456789abcdef01234567",
        .ws_lower = "/var/lib/warren/layers/git/0123",
        .env_json = "{\"A\":\"1\"}",
        .error = NULL,
        .cpus = 2,
        .memory_mib = 1ull << 33, /* larger than 32 bits on purpose */
        .disk_mib = 10240,
        .network = 2, /* an allow-list */
        .network_policy = "{\"allow\":[\"pypi.org\"],\"deny\":[]}",
        .ttl_seconds = 3600,
        .created_at = created,
        .last_used_at = created,
        .pid = 0,
        .pid_start = 0,
    };
}

static void insert_ok(struct store *st, const struct store_sandbox *s)
{
    _cleanup_error_ struct wr_error *err = NULL;
    int r = store_sandbox_insert(st, s, &err);
    if (r < 0)
        fprintf(stderr, "insert: %s\n", err->msg);
    ASSERT_EQ(r, 0);
}

static void test_insert_get(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    struct store_sandbox in = sample("00000000000000a1", "alpha", 100);
    insert_ok(st, &in);

    _cleanup_error_ struct wr_error *err = NULL;
    struct store_sandbox out;
    ASSERT_EQ(store_sandbox_get(st, "00000000000000a1", &out, &err), 0);
    ASSERT_STREQ(out.name, "alpha");
    ASSERT_STREQ(out.backend, "jail");
    ASSERT_STREQ(out.state, "creating");
    ASSERT_STREQ(out.image, "host");
    ASSERT_STREQ(out.repo, "/home/u/repo");
    ASSERT_STREQ(out.ref, "main");
    ASSERT_STREQ(out.commit_id, in.commit_id);
    ASSERT_STREQ(out.ws_lower, in.ws_lower);
    ASSERT_STREQ(out.env_json, in.env_json);
    ASSERT(out.error == NULL);
    ASSERT_EQ(out.cpus, 2u);
    ASSERT_EQ(out.memory_mib, 1ull << 33);
    ASSERT_EQ(out.disk_mib, 10240);
    ASSERT_EQ(out.network, 2);
    ASSERT_STREQ(out.network_policy, in.network_policy);
    ASSERT_EQ(out.ttl_seconds, 3600);
    ASSERT_EQ(out.created_at, 100);
    store_sandbox_clear(&out);

    /* By name, too; and NULL optional strings come back NULL. */
    struct store_sandbox bare = sample("00000000000000b2", "beta", 101);
    bare.repo = bare.ref = bare.commit_id = bare.ws_lower = bare.env_json = NULL;
    bare.network = 0;
    bare.network_policy = NULL;
    insert_ok(st, &bare);
    ASSERT_EQ(store_sandbox_get(st, "beta", &out, &err), 0);
    ASSERT_STREQ(out.id, "00000000000000b2");
    ASSERT(!out.repo && !out.ref && !out.commit_id && !out.ws_lower && !out.env_json);
    ASSERT(!out.network && !out.network_policy);
    store_sandbox_clear(&out);

    /* sandbox_update's changes. */
    ASSERT_EQ(store_sandbox_set_network(st, "00000000000000b2", 1, NULL, &err), 0);
    ASSERT_EQ(store_sandbox_set_ttl(st, "00000000000000b2", 42, &err), 0);
    ASSERT_EQ(store_sandbox_get(st, "beta", &out, &err), 0);
    ASSERT(out.network == 1 && !out.network_policy && out.ttl_seconds == 42);
    store_sandbox_clear(&out);
    ASSERT(store_sandbox_set_ttl(st, "00000000000000ff", 1, &err) < 0);
    ASSERT_EQ(err->status, ENOENT);
    store_close(st);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

/* A name equal to another sandbox's id must not shadow that id. */
static void test_get_prefers_id(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    struct store_sandbox a = sample("00000000000000a1", "first", 1);
    struct store_sandbox b = sample("00000000000000b2", "00000000000000a1", 2);
    insert_ok(st, &a);
    insert_ok(st, &b);
    _cleanup_error_ struct wr_error *err = NULL;
    struct store_sandbox out;
    ASSERT_EQ(store_sandbox_get(st, "00000000000000a1", &out, &err), 0);
    ASSERT_STREQ(out.name, "first");
    store_sandbox_clear(&out);
    store_close(st);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

static void test_duplicate_and_missing(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    struct store_sandbox a = sample("00000000000000a1", "dup", 1);
    insert_ok(st, &a);

    struct wr_error *err = NULL;
    struct store_sandbox same_name = sample("00000000000000b2", "dup", 2);
    ASSERT_EQ(store_sandbox_insert(st, &same_name, &err), -EEXIST);
    ASSERT_EQ(err->status, EEXIST);
    ASSERT_STREQ(err->msg, "a sandbox named 'dup' already exists");
    wr_error_free(TAKE_PTR(err));

    struct store_sandbox same_id = sample("00000000000000a1", "other", 2);
    ASSERT_EQ(store_sandbox_insert(st, &same_id, &err), -EEXIST);
    ASSERT(strstr(err->msg, "id '00000000000000a1'"));
    wr_error_free(TAKE_PTR(err));

    struct store_sandbox out;
    ASSERT_EQ(store_sandbox_get(st, "nope", &out, &err), -ENOENT);
    ASSERT_STREQ(err->msg, "no sandbox 'nope'");
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(store_sandbox_set_state(st, "nope", "running", 1, 1, NULL, &err), -ENOENT);
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(store_sandbox_touch(st, "nope", 5, &err), -ENOENT);
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(store_sandbox_delete(st, "nope", &err), -ENOENT);
    wr_error_free(TAKE_PTR(err));
    store_close(st);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

static void test_list_state_touch_delete(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    /* Inserted out of creation order: list sorts oldest first. */
    struct store_sandbox c = sample("00000000000000c3", "c", 30);
    struct store_sandbox a = sample("00000000000000a1", "a", 10);
    struct store_sandbox b = sample("00000000000000b2", "b", 20);
    insert_ok(st, &c);
    insert_ok(st, &a);
    insert_ok(st, &b);

    _cleanup_error_ struct wr_error *err = NULL;
    ASSERT_EQ(store_sandbox_set_state(st, b.id, "running", 4242, 987654321, NULL, &err), 0);
    ASSERT_EQ(store_sandbox_set_state(st, c.id, "failed", 0, 0, "boom", &err), 0);
    ASSERT_EQ(store_sandbox_touch(st, a.id, 999, &err), 0);

    struct store_sandbox *v = NULL;
    size_t n = 0;
    ASSERT_EQ(store_sandbox_list(st, &v, &n, &err), 0);
    ASSERT_EQ(n, 3u);
    ASSERT_STREQ(v[0].name, "a");
    ASSERT_EQ(v[0].last_used_at, 999);
    ASSERT_STREQ(v[1].name, "b");
    ASSERT_STREQ(v[1].state, "running");
    ASSERT_EQ(v[1].pid, 4242);
    ASSERT_EQ(v[1].pid_start, 987654321u);
    ASSERT_STREQ(v[2].state, "failed");
    ASSERT_STREQ(v[2].error, "boom");
    for (size_t i = 0; i < n; i++)
        store_sandbox_clear(&v[i]);
    free(v);

    /* set_state with a NULL error clears the old one. */
    ASSERT_EQ(store_sandbox_set_state(st, c.id, "stopped", 0, 0, NULL, &err), 0);
    struct store_sandbox out;
    ASSERT_EQ(store_sandbox_get(st, "c", &out, &err), 0);
    ASSERT(out.error == NULL);
    store_sandbox_clear(&out);

    ASSERT_EQ(store_sandbox_delete(st, b.id, &err), 0);
    ASSERT_EQ(store_sandbox_list(st, &v, &n, &err), 0);
    ASSERT_EQ(n, 2u);
    for (size_t i = 0; i < n; i++)
        store_sandbox_clear(&v[i]);
    free(v);
    store_close(st);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

static void test_empty_list(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    _cleanup_error_ struct wr_error *err = NULL;
    struct store_sandbox *v = (void *)1;
    size_t n = 7;
    ASSERT_EQ(store_sandbox_list(st, &v, &n, &err), 0);
    ASSERT_EQ(n, 0u);
    free(v);
    store_close(st);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

static int64_t count_rows(const char *dir, const char *sql)
{
    _cleanup_free_ char *path = wr_path_join(dir, "warren.db");
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

static void test_events(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    _cleanup_error_ struct wr_error *err = NULL;
    ASSERT_EQ(store_event(st, "00000000000000a1", "created", "{\"image\":\"host\"}", &err), 0);
    ASSERT_EQ(store_event(st, "00000000000000a1", "exec", NULL, &err), 0);
    ASSERT_EQ(store_event(st, NULL, "server-start", NULL, &err), 0);
    /* A hostile-looking detail is data, not SQL. */
    ASSERT_EQ(store_event(st, "x", "exec", "'); DROP TABLE events; --", &err), 0);
    /* Listed newest-limited, oldest first; a kind takes the kinds it prefixes with '-'. */
    ASSERT_EQ(store_event(st, "00000000000000a1", "egress", "{}", &err), 0);
    ASSERT_EQ(store_event(st, "00000000000000a1", "egress-refused", "{}", &err), 0);
    ASSERT_EQ(store_event(st, "00000000000000a1", "egressx", "{}", &err), 0);
    struct store_event_row *ev;
    size_t n;
    ASSERT_EQ(store_event_list(st, "00000000000000a1", NULL, 100, &ev, &n, &err), 0);
    ASSERT_EQ(n, 5u);
    ASSERT_STREQ(ev[0].kind, "created");
    ASSERT_STREQ(ev[0].detail, "{\"image\":\"host\"}");
    ASSERT(ev[1].detail == NULL && ev[0].id < ev[1].id && ev[0].at > 1700000000);
    for (size_t i = 0; i < n; i++)
        store_event_clear(&ev[i]);
    free(ev);
    ASSERT_EQ(store_event_list(st, "00000000000000a1", "egress", 100, &ev, &n, &err), 0);
    ASSERT_EQ(n, 2u);
    ASSERT_STREQ(ev[0].kind, "egress");
    ASSERT_STREQ(ev[1].kind, "egress-refused");
    for (size_t i = 0; i < n; i++)
        store_event_clear(&ev[i]);
    free(ev);
    ASSERT_EQ(store_event_list(st, "00000000000000a1", NULL, 2, &ev, &n, &err), 0);
    ASSERT_EQ(n, 2u);
    ASSERT_STREQ(ev[0].kind, "egress-refused");
    ASSERT_STREQ(ev[1].kind, "egressx");
    for (size_t i = 0; i < n; i++)
        store_event_clear(&ev[i]);
    free(ev);
    store_close(st);
    ASSERT_EQ(count_rows(dir, "SELECT count(*) FROM events"), 7);
    ASSERT_EQ(count_rows(dir, "SELECT count(*) FROM events WHERE sandbox_id = '00000000000000a1'"
                              " AND at > 1700000000"),
              5);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

static void test_reopen_and_modes(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    struct store_sandbox a = sample("00000000000000a1", "kept", 1);
    insert_ok(st, &a);

    /* While open, the WAL and shared-memory files exist; all three are private. */
    const char *suffixes[] = {"warren.db", "warren.db-wal", "warren.db-shm"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(suffixes); i++) {
        _cleanup_free_ char *p = wr_path_join(dir, suffixes[i]);
        struct stat s;
        ASSERT_EQ(stat(p, &s), 0);
        ASSERT_EQ(s.st_mode & 0777, 0600u);
    }
    store_close(st);

    st = open_store(dir);
    _cleanup_error_ struct wr_error *err = NULL;
    struct store_sandbox out;
    ASSERT_EQ(store_sandbox_get(st, "kept", &out, &err), 0);
    ASSERT_EQ(out.memory_mib, 1ull << 33);
    store_sandbox_clear(&out);
    store_close(st);
    ASSERT_EQ(count_rows(dir, "PRAGMA user_version"), 7);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

/* A pool's rows: hidden from lists and name lookups, found by id; a claim is won once. */
static void test_pool_claim(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    struct store_sandbox mine = sample("00000000000000b1", "mine", 1);
    struct store_sandbox pooled = sample("00000000000000b2", ".pool-00000000000000b2", 2);
    pooled.pool = "jail:host";
    pooled.repo = pooled.ref = pooled.commit_id = pooled.ws_lower = pooled.env_json = NULL;
    insert_ok(st, &mine);
    insert_ok(st, &pooled);
    _cleanup_error_ struct wr_error *err = NULL;
    struct store_sandbox *rows;
    size_t n;
    ASSERT_EQ(store_sandbox_list(st, &rows, &n, &err), 0);
    ASSERT_EQ(n, 1u);
    ASSERT_STREQ(rows[0].name, "mine");
    ASSERT_EQ(rows[0].pool, NULL);
    store_sandbox_clear(&rows[0]);
    free(rows);
    ASSERT_EQ(store_pool_list(st, "jail:host", &rows, &n, &err), 0);
    ASSERT_EQ(n, 1u);
    ASSERT_STREQ(rows[0].pool, "jail:host");
    store_sandbox_clear(&rows[0]);
    free(rows);
    ASSERT_EQ(store_pool_list(st, "qemu:host", &rows, &n, &err), 0);
    ASSERT_EQ(n, 0u);
    free(rows);
    struct store_sandbox out;
    ASSERT_EQ(store_sandbox_get(st, ".pool-00000000000000b2", &out, &err), -ENOENT);
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(store_sandbox_get(st, "00000000000000b2", &out, &err), 0);
    store_sandbox_clear(&out);

    /* A claim under a taken name fails and leaves the row pooled. */
    struct store_sandbox claim = sample("00000000000000b2", "mine", 5);
    ASSERT_EQ(store_pool_claim(st, &claim, &err), -EEXIST);
    wr_error_free(TAKE_PTR(err));
    claim.name = "claimed";
    claim.ttl_seconds = 60;
    ASSERT_EQ(store_pool_claim(st, &claim, &err), 0);
    ASSERT_EQ(store_sandbox_get(st, "claimed", &out, &err), 0);
    ASSERT_EQ(out.pool, NULL);
    ASSERT_STREQ(out.repo, "/home/u/repo");
    ASSERT_EQ(out.ttl_seconds, 60);
    ASSERT_EQ(out.created_at, 5);
    store_sandbox_clear(&out);
    /* The second claim of the same row loses. */
    claim.name = "other";
    ASSERT_EQ(store_pool_claim(st, &claim, &err), -ENOENT);
    store_close(st);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

static void test_newer_schema_refused(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    store_close(open_store(dir));
    _cleanup_free_ char *path = wr_path_join(dir, "warren.db");
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct store *st = NULL;
    _cleanup_error_ struct wr_error *err = NULL;
    ASSERT(store_open(dir, &st, &err) < 0);
    ASSERT(st == NULL);
    ASSERT(strstr(err->msg, "schema version 99"));
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

static void test_garbage_file_refused(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    _cleanup_free_ char *path = wr_path_join(dir, "warren.db");
    const char junk[] = "this is not a database, it is a text file long enough to matter....."
                        "................................................................";
    ASSERT_EQ(wr_write_file_atomic(path, junk, sizeof(junk), 0600), 0);
    struct store *st = NULL;
    _cleanup_error_ struct wr_error *err = NULL;
    ASSERT(store_open(dir, &st, &err) < 0);
    ASSERT(strstr(err->msg, "warren.db"));
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

/* Inserts count sandboxes named <prefix>-<i> with ids <tag><i> (and an event for each);
 * returns how many writes failed. */
static int insert_many(const char *dir, const char *prefix, unsigned tag, int count, int ready_fd,
                       int go_fd)
{
    struct store *st = open_store(dir);
    char c = 0;
    if (ready_fd >= 0)
        ASSERT_EQ(write(ready_fd, &c, 1), 1);
    if (go_fd >= 0)
        ASSERT_EQ(read(go_fd, &c, 1), 1);
    int failed = 0;
    for (int i = 0; i < count; i++) {
        _cleanup_free_ char *name = wr_asprintf("%s-%d", prefix, i);
        _cleanup_free_ char *id = wr_asprintf("%04x%012x", tag, (unsigned)i);
        struct store_sandbox s = sample(id, name, i);
        _cleanup_error_ struct wr_error *err = NULL;
        if (store_sandbox_insert(st, &s, &err) < 0) {
            fprintf(stderr, "%s: %s\n", prefix, err->msg);
            failed++;
        }
        if (store_event(st, id, "created", NULL, &err) < 0)
            failed++;
    }
    store_close(st);
    return failed;
}

/* Two processes, each with its own handle, write at the same time. Both open after the
 * fork: a sqlite connection must never be carried across fork. The child opens the
 * fresh directory too, so the schema migration itself races. */
static void test_two_processes(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    int ready[2], go[2];
    ASSERT_EQ(pipe(ready), 0);
    ASSERT_EQ(pipe(go), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        _exit(insert_many(dir, "child", 1, 200, ready[1], go[0]) == 0 ? 0 : 1);
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    ASSERT_EQ(write(go[1], &c, 1), 1);
    int failed = insert_many(dir, "parent", 2, 200, -1, -1);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ(failed, 0);
    close(ready[0]), close(ready[1]), close(go[0]), close(go[1]);

    struct store *st = open_store(dir);
    _cleanup_error_ struct wr_error *err = NULL;
    struct store_sandbox *v = NULL;
    size_t n = 0;
    ASSERT_EQ(store_sandbox_list(st, &v, &n, &err), 0);
    ASSERT_EQ(n, 400u);
    for (size_t i = 0; i < n; i++)
        store_sandbox_clear(&v[i]);
    free(v);
    store_close(st);
    ASSERT_EQ(count_rows(dir, "SELECT count(*) FROM events"), 400);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

/* Several processes open one fresh directory at the same instant: exactly one migrates,
 * none fails. */
static void test_concurrent_first_open(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    enum { N = 8 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        ASSERT(pids[i] >= 0);
        if (pids[i] == 0) {
            _cleanup_free_ char *prefix = wr_asprintf("p%d", i);
            _exit(insert_many(dir, prefix, (unsigned)i, 1, -1, -1) == 0 ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int status;
        ASSERT_EQ(waitpid(pids[i], &status, 0), pids[i]);
        ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ASSERT_EQ(count_rows(dir, "SELECT count(*) FROM sandboxes"), N);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

/* Metadata (migration 7) is kept with the row, through a pool claim too. */
static void test_metadata(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    struct store_sandbox s = sample("00000000000000a1", "meta", 1);
    s.metadata = "{\"owner\":\"ci\"}";
    ASSERT_EQ(store_sandbox_insert(st, &s, NULL), 0);
    struct store_sandbox got;
    ASSERT_EQ(store_sandbox_get(st, "meta", &got, NULL), 0);
    ASSERT_STREQ(got.metadata, "{\"owner\":\"ci\"}");
    store_sandbox_clear(&got);
    struct store_sandbox plain = sample("00000000000000a2", "plain", 2);
    ASSERT_EQ(store_sandbox_insert(st, &plain, NULL), 0);
    ASSERT_EQ(store_sandbox_get(st, "plain", &got, NULL), 0);
    ASSERT(got.metadata == NULL);
    store_sandbox_clear(&got);
    store_close(st);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

/* API keys: the store holds hashes; a revoke is seen by another connection at once. */
static void test_api_keys(void)
{
    _cleanup_free_ char *dir = new_state_dir();
    struct store *st = open_store(dir);
    struct store *other = open_store(dir); /* as a running server's */
    _cleanup_free_ char *key = NULL, *id = NULL, *key2 = NULL, *id2 = NULL;
    _cleanup_error_ struct wr_error *err = NULL;
    ASSERT_EQ(apikey_create(st, "ci", &key, &id, NULL), 0);
    ASSERT_EQ(strlen(key), APIKEY_LENGTH);
    ASSERT(!strncmp(key, "e2b_", 4));
    ASSERT_EQ(apikey_create(st, NULL, &key2, &id2, NULL), 0);
    ASSERT(strcmp(key, key2) != 0);
    ASSERT(apikey_create(st, "ci", &key2, &id2, &err) < 0);
    ASSERT_EQ(err->status, EEXIST);
    wr_error_free(TAKE_PTR(err));
    ASSERT(apikey_create(st, "../x", &key2, &id2, &err) < 0);
    ASSERT_EQ(err->status, EINVAL);
    wr_error_free(TAKE_PTR(err));
    /* The key itself is nowhere in the database. */
    _cleanup_free_ char *like = wr_asprintf("SELECT count(*) FROM api_keys WHERE hash LIKE '%%%s%%' "
                                            "OR name LIKE '%%%s%%'", key + 4, key + 4);
    ASSERT_EQ(count_rows(dir, like), 0);
    ASSERT(apikey_valid(other, key));
    ASSERT(!apikey_valid(other, "e2b_0000000000000000000000000000000000000000"));
    ASSERT(!apikey_valid(other, "not a key"));
    ASSERT(!apikey_valid(other, NULL));
    struct store_api_key *keys;
    size_t n;
    ASSERT_EQ(store_api_key_list(st, &keys, &n, NULL), 0);
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(keys[0].name, "ci");
    ASSERT_STREQ(keys[0].id, id);
    ASSERT(keys[0].last_used_at > 0); /* apikey_valid recorded the use */
    ASSERT_EQ(keys[0].revoked_at, 0);
    _cleanup_free_ char *default_name = wr_asprintf("key-%s", id2);
    ASSERT_STREQ(keys[1].name, default_name);
    for (size_t i = 0; i < n; i++)
        store_api_key_clear(&keys[i]);
    free(keys);
    ASSERT_EQ(store_api_key_revoke(st, "ci", 100, NULL), 0);
    ASSERT(!apikey_valid(other, key));
    ASSERT(apikey_valid(other, key2));
    ASSERT_EQ(store_api_key_revoke(st, id2, 200, NULL), 0);
    ASSERT(!apikey_valid(other, key2));
    ASSERT_EQ(store_api_key_revoke(st, id2, 300, NULL), 0); /* again: kept as it was */
    ASSERT(store_api_key_revoke(st, "nope", 1, &err) < 0);
    ASSERT_EQ(err->status, ENOENT);
    ASSERT_EQ(store_api_key_list(st, &keys, &n, NULL), 0);
    ASSERT_EQ(keys[1].revoked_at, 200);
    for (size_t i = 0; i < n; i++)
        store_api_key_clear(&keys[i]);
    free(keys);
    store_close(other);
    store_close(st);
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

int main(void)
{
    RUN(test_insert_get);
    RUN(test_get_prefers_id);
    RUN(test_duplicate_and_missing);
    RUN(test_list_state_touch_delete);
    RUN(test_empty_list);
    RUN(test_events);
    RUN(test_reopen_and_modes);
    RUN(test_pool_claim);
    RUN(test_newer_schema_refused);
    RUN(test_garbage_file_refused);
    RUN(test_two_processes);
    RUN(test_concurrent_first_open);
    RUN(test_metadata);
    RUN(test_api_keys);
    return 0;
}
