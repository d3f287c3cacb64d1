/* The state store: one sqlite database, <state_dir>/warren.db, shared by every warren
 * process that uses the state directory.
 *
 * Concurrency. Each handle is one sqlite connection guarded by a mutex, so libuv pool
 * threads can share a handle. Across processes sqlite's own locking applies: WAL mode
 * lets readers run beside a writer, and the busy timeout makes a writer wait (up to
 * BUSY_TIMEOUT_MS) for another process's write transaction instead of failing. Every
 * write is either a single autocommit statement or a BEGIN IMMEDIATE transaction: a
 * deferred transaction that reads and then writes can fail with SQLITE_BUSY at once,
 * without the busy handler ever being called, when another process wrote in between.
 *
 * Schema. PRAGMA user_version is the schema version. Opening applies the missing
 * migrations inside BEGIN IMMEDIATE and reads the version again once the write lock is
 * held, so two processes opening a fresh directory at once migrate it exactly once. */
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#define BUSY_TIMEOUT_MS 5000
/* No row holds more than a few KiB; the cap bounds what a bug or a damaged file costs. */
#define MAX_VALUE_BYTES (1 << 20)

struct store {
    sqlite3 *db;
    char *path;
    pthread_mutex_t lock;
};

static void finalizep(sqlite3_stmt **stmt)
{
    sqlite3_finalize(*stmt);
}
#define _cleanup_stmt_ _cleanup_(finalizep)

static void unlockp(pthread_mutex_t **lock)
{
    if (*lock)
        pthread_mutex_unlock(*lock);
}
/* The guard variable is never read, only destroyed: "unused" keeps clang quiet. */
#define _cleanup_unlock_ _cleanup_(unlockp) __attribute__((unused))

static pthread_mutex_t *lock_store(struct store *st)
{
    pthread_mutex_lock(&st->lock);
    return &st->lock;
}

/* ---- errors --------------------------------------------------------------------------- */

static int status_from_sqlite(sqlite3 *db, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ? EEXIST
                                                                                    : EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return EBUSY;
    case SQLITE_NOMEM:
        return ENOMEM;
    case SQLITE_READONLY:
        return EROFS;
    case SQLITE_FULL:
        return ENOSPC;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return EACCES;
    case SQLITE_TOOBIG:
        return E2BIG;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR: {
        int sys = db ? sqlite3_system_errno(db) : 0;
        return sys > 0 ? sys : EIO;
    }
    default:
        return EIO;
    }
}

/* Fills err with "store: <context>: <sqlite's message>" and returns the negative status.
 * Must run before anything else uses the connection: sqlite3_errmsg is per connection. */
static int __attribute__((format(printf, 4, 5)))
store_fail(struct store *st, int rc, struct wr_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *context = NULL;
    if (vasprintf(&context, fmt, ap) < 0)
        abort();
    va_end(ap);
    const char *why = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    return wr_error_set(err, status_from_sqlite(st->db, rc), "store: %s: %s", context, why);
}

/* ---- statements ---------------------------------------------------------------------- */

static int prepare(struct store *st, const char *sql, sqlite3_stmt **ret, struct wr_error **err)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, ret, NULL);
    if (rc != SQLITE_OK)
        return store_fail(st, rc, err, "preparing '%.40s...'", sql);
    return 0;
}

/* Binds s, or SQL NULL when s is NULL. The strings outlive the statement's step. */
static void bind_text(sqlite3_stmt *stmt, int index, const char *s)
{
    if (s)
        sqlite3_bind_text(stmt, index, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, index);
}

static char *column_strdup(sqlite3_stmt *stmt, int index)
{
    const unsigned char *s = sqlite3_column_text(stmt, index);
    return s ? wr_strdup((const char *)s) : NULL;
}

/* Runs a statement that returns no rows. */
static int step_done(struct store *st, sqlite3_stmt *stmt, struct wr_error **err, const char *what)
{
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return store_fail(st, rc, err, "%s", what);
    return 0;
}

/* Runs SQL without parameters. Only store_open uses it, hence the context. */
static int exec_sql(struct store *st, const char *sql, struct wr_error **err)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_fail(st, rc, err, "opening %s: running '%.40s'", st->path, sql);
    return 0;
}

/* ---- schema -------------------------------------------------------------------------- */

/* Migration i brings the schema from version i to version i + 1. Append only: a
 * released migration is never edited. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE sandboxes ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL UNIQUE,"
    "  backend TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  image TEXT NOT NULL,"
    "  repo TEXT,"
    "  ref TEXT,"
    "  commit_id TEXT,"
    "  ws_lower TEXT,"
    "  env_json TEXT,"
    "  error TEXT,"
    "  cpus INTEGER NOT NULL,"
    "  memory_mib INTEGER NOT NULL,"
    "  network INTEGER NOT NULL,"
    "  ttl_seconds INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER NOT NULL,"
    "  pid INTEGER NOT NULL DEFAULT 0,"
    "  pid_start INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    /* Events outlive their sandbox (an audit trail), so no foreign key. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  sandbox_id TEXT,"
    "  at INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  detail TEXT"
    ") STRICT;"
    "CREATE INDEX events_by_sandbox ON events (sandbox_id, id);"
    /* A layer is a read-only directory; parent_id is the layer below it in a chain. */
    "CREATE TABLE layers ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  parent_id TEXT REFERENCES layers (id),"
    "  created_at INTEGER NOT NULL"
    ") STRICT;"
    /* layer_ids: JSON array of layer ids, top first. memory: nonzero when the snapshot
     * also holds the machine's memory. A snapshot outlives its sandbox. */
    "CREATE TABLE snapshots ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL UNIQUE,"
    "  sandbox_id TEXT,"
    "  layer_ids TEXT NOT NULL,"
    "  memory INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;",
    /* 2: snapshot layers a sandbox stacks between its own upper and its base (JSON arrays
     * of layer directories, top first). */
    "ALTER TABLE sandboxes ADD COLUMN ws_layers TEXT;"
    "ALTER TABLE sandboxes ADD COLUMN root_layers TEXT;",
    /* 3: OCI images. layers: JSON array of layer digests, bottom first; config: what
     * applies to execs ({"env", "workdir", "user"}). */
    "CREATE TABLE images ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  layers TEXT NOT NULL,"
    "  config TEXT NOT NULL,"
    "  size_bytes INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;",
    /* 4: a warm pool's sandbox: the pool it waits in (NULL once claimed, and for every
     * other sandbox). */
    "ALTER TABLE sandboxes ADD COLUMN pool TEXT;",
    /* 5: network is 0 (none), 1 (NAT) or 2 (allow-list); the allow-list's policy as JSON
     * ({"allow": [...], "deny": [...]}, vmm/net/policy.h), NULL in the other modes. */
    "ALTER TABLE sandboxes ADD COLUMN network_policy TEXT;",
    /* 6: the size of the sandbox's disk (vmm/disk.h), which holds its uppers; 0 for a
     * sandbox without one (made before disks, or where disks cannot be made): its uppers
     * are plain directories of the state directory and nothing caps them. */
    "ALTER TABLE sandboxes ADD COLUMN disk_mib INTEGER NOT NULL DEFAULT 0;",
    /* 7: metadata: a JSON object of string keys and values a client attached at create
     * (the E2B API's metadata), NULL when none. api_keys: keys clients authenticate with
     * besides the server token; only the SHA-256 of a key is kept (hex), never the key.
     * last_used_at is 0 until first use, revoked_at 0 while the key is valid. */
    "ALTER TABLE sandboxes ADD COLUMN metadata TEXT;"
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL UNIQUE,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER NOT NULL DEFAULT 0,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0"
    ") STRICT;",
};

static int read_user_version(struct store *st, int *ret, struct wr_error **err)
{
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "PRAGMA user_version", &stmt, err);
    if (r < 0)
        return r;
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW)
        return store_fail(st, rc, err, "opening %s: reading the schema version", st->path);
    *ret = sqlite3_column_int(stmt, 0);
    return 0;
}

/* Applies migrations [from, end) and records the new version. Runs inside the caller's
 * transaction. PRAGMA takes no bound parameters; the version is our own integer. */
static int apply_migrations(struct store *st, int from, struct wr_error **err)
{
    for (int v = from; v < (int)WR_ARRAY_SIZE(migrations); v++) {
        int rc = sqlite3_exec(st->db, migrations[v], NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return store_fail(st, rc, err, "opening %s: migrating schema %d -> %d", st->path, v,
                              v + 1);
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", (int)WR_ARRAY_SIZE(migrations));
    return exec_sql(st, sql, err);
}

static int migrate_locked(struct store *st, struct wr_error **err)
{
    int version, latest = (int)WR_ARRAY_SIZE(migrations);
    int r = read_user_version(st, &version, err);
    if (r < 0)
        return r;
    if (version > latest)
        return wr_error_set(err, EPROTO,
                            "store: %s has schema version %d but this warren knows only up to "
                            "%d; use a newer warren",
                            st->path, version, latest);
    if (version == latest)
        return 0;
    return apply_migrations(st, version, err);
}

static int migrate(struct store *st, struct wr_error **err)
{
    int version;
    int r = read_user_version(st, &version, err);
    if (r < 0)
        return r;
    if (version == (int)WR_ARRAY_SIZE(migrations))
        return 0; /* the common case: no write lock needed */
    r = exec_sql(st, "BEGIN IMMEDIATE", err);
    if (r < 0)
        return r;
    r = migrate_locked(st, err);
    if (r < 0) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    return exec_sql(st, "COMMIT", err);
}

/* ---- open / close ---------------------------------------------------------------------- */

/* Creates the database file with mode 0600 before sqlite opens it: sqlite creates the
 * -wal and -shm files with the database file's mode, so all three stay private. */
static int create_db_file(const char *path, struct wr_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "store: creating %s", path);
    struct stat s;
    if (fstat(fd, &s) == 0 && (s.st_mode & 077) && s.st_uid == geteuid() && fchmod(fd, 0600) < 0)
        return wr_error_set_errno(err, errno, "store: chmod %s", path);
    return 0;
}

static int configure(struct store *st, struct wr_error **err)
{
    int rc = sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK)
        return store_fail(st, rc, err, "setting the busy timeout");
    sqlite3_limit(st->db, SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES);
    /* journal_mode is persistent in the file; the others are per connection. */
    /* Switching to WAL reads the header under a SHARED lock and then upgrades it; sqlite
     * does not call the busy handler for that upgrade (it could deadlock), so of two
     * processes opening a fresh file at once one fails with SQLITE_BUSY at once. Retry. */
    for (int waited = 0;; waited += 10) {
        rc = sqlite3_exec(st->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY || waited >= BUSY_TIMEOUT_MS)
            break;
        usleep(10 * 1000);
    }
    if (rc != SQLITE_OK)
        return store_fail(st, rc, err, "opening %s: running 'PRAGMA journal_mode = WAL'", st->path);
    static const char *const pragmas[] = {
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    };
    for (size_t i = 0; i < WR_ARRAY_SIZE(pragmas); i++) {
        int r = exec_sql(st, pragmas[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    sqlite3_close_v2(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st->path);
    free(st);
}

static void store_closep(struct store **st)
{
    store_close(*st);
}

/* On success the caller owns *ret and closes it with store_close. A handle may be used
 * from several threads; it must not be used in a child after fork. */
int store_open(const char *state_dir, struct store **ret, struct wr_error **err)
{
    int r = wr_mkdir_p(state_dir, 0700);
    if (r < 0)
        return wr_error_set_errno(err, -r, "store: creating %s", state_dir);
    _cleanup_(store_closep) struct store *st = wr_calloc(1, sizeof(*st));
    pthread_mutex_init(&st->lock, NULL);
    st->path = wr_path_join(state_dir, "warren.db");
    r = create_db_file(st->path, err);
    if (r < 0)
        return r;
    /* NOMUTEX: st->lock serialises use of the connection, including sqlite3_errmsg. */
    int rc =
        sqlite3_open_v2(st->path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK)
        return store_fail(st, rc, err, "opening %s", st->path);
    r = configure(st, err);
    if (r >= 0)
        r = migrate(st, err);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(st);
    return 0;
}

/* ---- sandboxes ------------------------------------------------------------------------- */

void store_sandbox_clear(struct store_sandbox *s)
{
    if (!s)
        return;
    char **strings[] = {&s->id,          &s->name,     &s->backend,       &s->state,
                        &s->image,       &s->repo,     &s->ref,           &s->commit_id,
                        &s->ws_lower,    &s->env_json, &s->error,         &s->ws_layers,
                        &s->root_layers, &s->pool,     &s->network_policy, &s->metadata};
    for (size_t i = 0; i < WR_ARRAY_SIZE(strings); i++)
        free(*strings[i]);
    *s = (struct store_sandbox){0};
}

/* The column order here, in sandbox_bind and in sandbox_read is the same. */
#define SANDBOX_COLUMNS                                                                            \
    "id, name, backend, state, image, repo, ref, commit_id, ws_lower, env_json, error, "           \
    "ws_layers, root_layers, cpus, memory_mib, network, ttl_seconds, created_at, last_used_at, "   \
    "pid, pid_start, pool, network_policy, disk_mib, metadata"

static void sandbox_bind(sqlite3_stmt *stmt, const struct store_sandbox *s)
{
    const char *strings[] = {s->id,    s->name,      s->backend,    s->state,    s->image,
                             s->repo,  s->ref,       s->commit_id,  s->ws_lower, s->env_json,
                             s->error, s->ws_layers, s->root_layers};
    int i = 1;
    for (size_t k = 0; k < WR_ARRAY_SIZE(strings); k++)
        bind_text(stmt, i++, strings[k]);
    sqlite3_bind_int64(stmt, i++, s->cpus);
    sqlite3_bind_int64(stmt, i++, (sqlite3_int64)s->memory_mib);
    sqlite3_bind_int(stmt, i++, s->network);
    sqlite3_bind_int64(stmt, i++, s->ttl_seconds);
    sqlite3_bind_int64(stmt, i++, s->created_at);
    sqlite3_bind_int64(stmt, i++, s->last_used_at);
    sqlite3_bind_int64(stmt, i++, s->pid);
    sqlite3_bind_int64(stmt, i++, (sqlite3_int64)s->pid_start);
    bind_text(stmt, i++, s->pool);
    bind_text(stmt, i++, s->network_policy);
    sqlite3_bind_int64(stmt, i++, (sqlite3_int64)s->disk_mib);
    bind_text(stmt, i++, s->metadata);
}

static void sandbox_read(sqlite3_stmt *stmt, struct store_sandbox *s)
{
    char **strings[] = {&s->id,    &s->name,      &s->backend,    &s->state,    &s->image,
                        &s->repo,  &s->ref,       &s->commit_id,  &s->ws_lower, &s->env_json,
                        &s->error, &s->ws_layers, &s->root_layers};
    int i = 0;
    for (size_t k = 0; k < WR_ARRAY_SIZE(strings); k++)
        *strings[k] = column_strdup(stmt, i++);
    s->cpus = (unsigned)sqlite3_column_int64(stmt, i++);
    s->memory_mib = (uint64_t)sqlite3_column_int64(stmt, i++);
    s->network = sqlite3_column_int(stmt, i++);
    s->ttl_seconds = sqlite3_column_int64(stmt, i++);
    s->created_at = sqlite3_column_int64(stmt, i++);
    s->last_used_at = sqlite3_column_int64(stmt, i++);
    s->pid = (pid_t)sqlite3_column_int64(stmt, i++);
    s->pid_start = (uint64_t)sqlite3_column_int64(stmt, i++);
    s->pool = column_strdup(stmt, i++);
    s->network_policy = column_strdup(stmt, i++);
    s->disk_mib = (uint64_t)sqlite3_column_int64(stmt, i++);
    s->metadata = column_strdup(stmt, i++);
}

/* Turns a failed insert into the error a client reads: a taken name is EEXIST with a
 * plain sentence, anything else keeps sqlite's message. */
static int insert_failed(struct store *st, int rc, const struct store_sandbox *s,
                         struct wr_error **err)
{
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        if (strstr(sqlite3_errmsg(st->db), "sandboxes.name"))
            return wr_error_set(err, EEXIST, "a sandbox named '%s' already exists", s->name);
        return wr_error_set(err, EEXIST, "a sandbox with id '%s' already exists", s->id);
    }
    return store_fail(st, rc, err, "inserting sandbox '%s'", s->name ? s->name : "");
}

/* s is only read; the caller still owns it. */
int store_sandbox_insert(struct store *st, const struct store_sandbox *s, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st,
                    "INSERT INTO sandboxes (" SANDBOX_COLUMNS ") VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &stmt, err);
    if (r < 0)
        return r;
    sandbox_bind(stmt, s);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return insert_failed(st, rc, s, err);
    return 0;
}

/* On success *ret is overwritten (not cleared first) with strings the caller owns and frees
 * with store_sandbox_clear; on failure *ret is untouched. */
int store_sandbox_get(struct store *st, const char *id_or_name, struct store_sandbox *ret,
                      struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    /* An id match wins over a name match: names and ids could collide. A pool's sandbox
     * is found by its id only. */
    int r = prepare(st,
                    "SELECT " SANDBOX_COLUMNS " FROM sandboxes WHERE id = ?1 OR "
                    "(name = ?1 AND pool IS NULL) "
                    "ORDER BY id = ?1 DESC LIMIT 1",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id_or_name);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return wr_error_set(err, ENOENT, "no sandbox '%s'", id_or_name);
    if (rc != SQLITE_ROW)
        return store_fail(st, rc, err, "looking up sandbox '%s'", id_or_name);
    *ret = (struct store_sandbox){0};
    sandbox_read(stmt, ret);
    return 0;
}

static void sandbox_array_free(struct store_sandbox *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_sandbox_clear(&v[i]);
    free(v);
}

/* Rows of sandboxes (pool NULL) or of pools (pool non-NULL; "" for every pool). On success
 * the caller owns the array and every row in it; on failure *ret is untouched. */
static int list_rows(struct store *st, const char *pool, struct store_sandbox **ret, size_t *ret_n,
                     struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st,
                    !pool      ? "SELECT " SANDBOX_COLUMNS " FROM sandboxes WHERE pool IS NULL "
                                 "ORDER BY created_at, rowid"
                    : !pool[0] ? "SELECT " SANDBOX_COLUMNS " FROM sandboxes WHERE pool IS NOT "
                                 "NULL ORDER BY created_at, rowid"
                               : "SELECT " SANDBOX_COLUMNS " FROM sandboxes WHERE pool = ?1 "
                                 "ORDER BY created_at, rowid",
                    &stmt, err);
    if (r < 0)
        return r;
    if (pool && pool[0])
        bind_text(stmt, 1, pool);
    struct store_sandbox *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            v = wr_realloc(v, cap * sizeof(*v));
        }
        v[n] = (struct store_sandbox){0};
        sandbox_read(stmt, &v[n++]);
    }
    if (rc != SQLITE_DONE) {
        sandbox_array_free(v, n);
        return store_fail(st, rc, err, "listing sandboxes");
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

/* Steps an UPDATE/DELETE keyed by sandbox id; ENOENT when it matched no row. */
static int step_one_sandbox(struct store *st, sqlite3_stmt *stmt, const char *id, const char *what,
                            struct wr_error **err)
{
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return store_fail(st, rc, err, "%s sandbox '%s'", what, id);
    if (sqlite3_changes(st->db) == 0)
        return wr_error_set(err, ENOENT, "no sandbox '%s'", id);
    return 0;
}

int store_sandbox_list(struct store *st, struct store_sandbox **ret, size_t *ret_n,
                       struct wr_error **err)
{
    return list_rows(st, NULL, ret, ret_n, err);
}

int store_pool_list(struct store *st, const char *pool, struct store_sandbox **ret, size_t *ret_n,
                    struct wr_error **err)
{
    return list_rows(st, pool ? pool : "", ret, ret_n, err);
}

int store_pool_claim(struct store *st, const struct store_sandbox *s, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st,
                    "UPDATE sandboxes SET pool = NULL, name = ?2, repo = ?3, ref = ?4, "
                    "commit_id = ?5, ws_lower = ?6, env_json = ?7, ttl_seconds = ?8, "
                    "created_at = ?9, last_used_at = ?9, metadata = ?10 "
                    "WHERE id = ?1 AND pool IS NOT NULL",
                    &stmt, err);
    if (r < 0)
        return r;
    const char *strings[] = {s->id,        s->name,     s->repo,    s->ref,
                             s->commit_id, s->ws_lower, s->env_json};
    for (size_t k = 0; k < WR_ARRAY_SIZE(strings); k++)
        bind_text(stmt, (int)k + 1, strings[k]);
    sqlite3_bind_int64(stmt, 8, s->ttl_seconds);
    sqlite3_bind_int64(stmt, 9, s->created_at);
    bind_text(stmt, 10, s->metadata);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return insert_failed(st, rc, s, err);
    if (sqlite3_changes(st->db) == 0)
        return wr_error_set(err, ENOENT, "pooled sandbox '%s' was claimed already", s->id);
    return 0;
}

int store_sandbox_set_state(struct store *st, const char *id, const char *state, pid_t pid,
                            uint64_t pid_start, const char *error, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st,
                    "UPDATE sandboxes SET state = ?2, pid = ?3, pid_start = ?4, error = ?5 "
                    "WHERE id = ?1",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id);
    bind_text(stmt, 2, state);
    sqlite3_bind_int64(stmt, 3, pid);
    sqlite3_bind_int64(stmt, 4, (sqlite3_int64)pid_start);
    bind_text(stmt, 5, error);
    return step_one_sandbox(st, stmt, id, "updating the state of", err);
}

int store_sandbox_touch(struct store *st, const char *id, int64_t now, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "UPDATE sandboxes SET last_used_at = ?2 WHERE id = ?1", &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, now);
    return step_one_sandbox(st, stmt, id, "touching", err);
}

int store_sandbox_set_network(struct store *st, const char *id, int network, const char *policy,
                              struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "UPDATE sandboxes SET network = ?2, network_policy = ?3 WHERE id = ?1",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id);
    sqlite3_bind_int(stmt, 2, network);
    bind_text(stmt, 3, policy);
    return step_one_sandbox(st, stmt, id, "updating the network of", err);
}

int store_sandbox_set_ttl(struct store *st, const char *id, int64_t ttl_seconds,
                          struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "UPDATE sandboxes SET ttl_seconds = ?2 WHERE id = ?1", &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, ttl_seconds);
    return step_one_sandbox(st, stmt, id, "updating the ttl of", err);
}

int store_sandbox_delete(struct store *st, const char *id, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "DELETE FROM sandboxes WHERE id = ?1", &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id);
    return step_one_sandbox(st, stmt, id, "deleting", err);
}

/* ---- events ---------------------------------------------------------------------------- */

/* sandbox_id may be NULL for events about the server itself. Arguments are only read. */
int store_event(struct store *st, const char *sandbox_id, const char *kind, const char *detail,
                struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "INSERT INTO events (sandbox_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, sandbox_id);
    sqlite3_bind_int64(stmt, 2, wr_unix_time());
    bind_text(stmt, 3, kind);
    bind_text(stmt, 4, detail);
    return step_done(st, stmt, err, "recording an event");
}

void store_event_clear(struct store_event_row *e)
{
    free(e->kind);
    free(e->detail);
    free(e->sandbox_id);
    *e = (struct store_event_row){0};
}

/* Steps stmt (columns id, at, kind, detail[, sandbox_id]) into *ret / *ret_n. */
static int read_events(struct store *st, sqlite3_stmt *stmt, bool with_sandbox,
                       struct store_event_row **ret, size_t *ret_n, struct wr_error **err)
{
    struct store_event_row *v = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        v = wr_realloc(v, (n + 1) * sizeof(*v));
        v[n++] = (struct store_event_row){
            .id = sqlite3_column_int64(stmt, 0),
            .at = sqlite3_column_int64(stmt, 1),
            .kind = column_strdup(stmt, 2),
            .detail = column_strdup(stmt, 3),
            .sandbox_id = with_sandbox ? column_strdup(stmt, 4) : NULL,
        };
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++)
            store_event_clear(&v[i]);
        free(v);
        return store_fail(st, rc, err, "listing events");
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int store_event_list(struct store *st, const char *sandbox_id, const char *kind, size_t limit,
                     struct store_event_row **ret, size_t *ret_n, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    /* The newest `limit`, oldest first. */
    int r = prepare(st,
                    "SELECT id, at, kind, detail FROM (SELECT id, at, kind, detail FROM events "
                    "WHERE sandbox_id = ?1 AND (?2 IS NULL OR kind = ?2 OR kind LIKE ?2 || '-%') "
                    "ORDER BY id DESC LIMIT ?3) ORDER BY id",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, sandbox_id);
    bind_text(stmt, 2, kind);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit);
    return read_events(st, stmt, false, ret, ret_n, err);
}

int store_events_since(struct store *st, int64_t after_id, size_t limit,
                       struct store_event_row **ret, size_t *ret_n, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st,
                    "SELECT id, at, kind, detail, sandbox_id FROM events WHERE id > ?1 "
                    "ORDER BY id LIMIT ?2",
                    &stmt, err);
    if (r < 0)
        return r;
    sqlite3_bind_int64(stmt, 1, after_id);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)limit);
    return read_events(st, stmt, true, ret, ret_n, err);
}

int store_events_prune(struct store *st, int64_t keep)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1", &stmt,
                    NULL);
    if (r < 0)
        return r;
    sqlite3_bind_int64(stmt, 1, keep);
    return sqlite3_step(stmt) == SQLITE_DONE ? 0 : -EIO;
}

int64_t store_event_last_id(struct store *st)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    if (prepare(st, "SELECT coalesce(max(id), 0) FROM events", &stmt, NULL) < 0 ||
        sqlite3_step(stmt) != SQLITE_ROW)
        return 0;
    return sqlite3_column_int64(stmt, 0);
}

int store_sandbox_set_layers(struct store *st, const char *id, const char *ws_layers,
                             const char *root_layers, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "UPDATE sandboxes SET ws_layers = ?2, root_layers = ?3 WHERE id = ?1",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id);
    bind_text(stmt, 2, ws_layers);
    bind_text(stmt, 3, root_layers);
    return step_one_sandbox(st, stmt, id, "updating the layers of", err);
}

/* ---- snapshots -------------------------------------------------------------------------- */

void store_snapshot_clear(struct store_snapshot *s)
{
    free(s->id);
    free(s->name);
    free(s->sandbox_id);
    free(s->manifest);
    *s = (struct store_snapshot){0};
}

#define SNAPSHOT_COLUMNS "id, name, sandbox_id, layer_ids, memory, created_at"

static void snapshot_read(sqlite3_stmt *stmt, struct store_snapshot *s)
{
    s->id = column_strdup(stmt, 0);
    s->name = column_strdup(stmt, 1);
    s->sandbox_id = column_strdup(stmt, 2);
    s->manifest = column_strdup(stmt, 3);
    s->memory = sqlite3_column_int(stmt, 4) != 0;
    s->created_at = sqlite3_column_int64(stmt, 5);
}

int store_snapshot_insert(struct store *st, const struct store_snapshot *s, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "INSERT INTO snapshots (" SNAPSHOT_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?)",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, s->id);
    bind_text(stmt, 2, s->name);
    bind_text(stmt, 3, s->sandbox_id);
    bind_text(stmt, 4, s->manifest);
    sqlite3_bind_int(stmt, 5, s->memory ? 1 : 0);
    sqlite3_bind_int64(stmt, 6, s->created_at);
    int rc = sqlite3_step(stmt);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return wr_error_set(err, EEXIST, "a snapshot named '%s' already exists", s->name);
    if (rc != SQLITE_DONE)
        return store_fail(st, rc, err, "inserting snapshot '%s'", s->name);
    return 0;
}

int store_snapshot_get(struct store *st, const char *id_or_name, struct store_snapshot *ret,
                       struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st,
                    "SELECT " SNAPSHOT_COLUMNS " FROM snapshots WHERE id = ?1 OR name = ?1 "
                    "ORDER BY id = ?1 DESC LIMIT 1",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id_or_name);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return wr_error_set(err, ENOENT, "no snapshot '%s'", id_or_name);
    if (rc != SQLITE_ROW)
        return store_fail(st, rc, err, "looking up snapshot '%s'", id_or_name);
    *ret = (struct store_snapshot){0};
    snapshot_read(stmt, ret);
    return 0;
}

int store_snapshot_list(struct store *st, const char *sandbox_id, struct store_snapshot **ret,
                        size_t *ret_n, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st,
                    "SELECT " SNAPSHOT_COLUMNS " FROM snapshots "
                    "WHERE ?1 IS NULL OR sandbox_id = ?1 ORDER BY created_at, rowid",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, sandbox_id);
    struct store_snapshot *v = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        v = wr_realloc(v, (n + 1) * sizeof(*v));
        v[n] = (struct store_snapshot){0};
        snapshot_read(stmt, &v[n++]);
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++)
            store_snapshot_clear(&v[i]);
        free(v);
        return store_fail(st, rc, err, "listing snapshots");
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int store_snapshot_delete(struct store *st, const char *id, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "DELETE FROM snapshots WHERE id = ?1", &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return store_fail(st, rc, err, "deleting snapshot '%s'", id);
    return sqlite3_changes(st->db) ? 0 : wr_error_set(err, ENOENT, "no snapshot '%s'", id);
}

/* ---- images ------------------------------------------------------------------------------ */

#define IMAGE_COLUMNS "name, digest, layers, config, size_bytes, created_at"

void store_image_clear(struct store_image *i)
{
    free(i->name);
    free(i->digest);
    free(i->layers);
    free(i->config);
    memset(i, 0, sizeof(*i));
}

static void image_read(sqlite3_stmt *stmt, struct store_image *i)
{
    i->name = column_strdup(stmt, 0);
    i->digest = column_strdup(stmt, 1);
    i->layers = column_strdup(stmt, 2);
    i->config = column_strdup(stmt, 3);
    i->size_bytes = (uint64_t)sqlite3_column_int64(stmt, 4);
    i->created_at = sqlite3_column_int64(stmt, 5);
}

int store_image_put(struct store *st, const struct store_image *i, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r =
        prepare(st, "INSERT OR REPLACE INTO images (" IMAGE_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?)",
                &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, i->name);
    bind_text(stmt, 2, i->digest);
    bind_text(stmt, 3, i->layers);
    bind_text(stmt, 4, i->config);
    sqlite3_bind_int64(stmt, 5, (sqlite3_int64)i->size_bytes);
    sqlite3_bind_int64(stmt, 6, i->created_at);
    int rc = sqlite3_step(stmt);
    return rc == SQLITE_DONE ? 0 : store_fail(st, rc, err, "recording image '%s'", i->name);
}

int store_image_get(struct store *st, const char *name, struct store_image *ret,
                    struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "SELECT " IMAGE_COLUMNS " FROM images WHERE name = ?1", &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, name);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return wr_error_set(err, ENOENT, "no image '%s'", name);
    if (rc != SQLITE_ROW)
        return store_fail(st, rc, err, "looking up image '%s'", name);
    *ret = (struct store_image){0};
    image_read(stmt, ret);
    return 0;
}

int store_image_list(struct store *st, struct store_image **ret, size_t *ret_n,
                     struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "SELECT " IMAGE_COLUMNS " FROM images ORDER BY name", &stmt, err);
    if (r < 0)
        return r;
    struct store_image *v = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        v = wr_realloc(v, (n + 1) * sizeof(*v));
        v[n] = (struct store_image){0};
        image_read(stmt, &v[n++]);
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++)
            store_image_clear(&v[i]);
        free(v);
        return store_fail(st, rc, err, "listing images");
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int store_image_delete(struct store *st, const char *name, struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "DELETE FROM images WHERE name = ?1", &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, name);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return store_fail(st, rc, err, "deleting image '%s'", name);
    return sqlite3_changes(st->db) ? 0 : wr_error_set(err, ENOENT, "no image '%s'", name);
}

/* ---- API keys -------------------------------------------------------------------------- */

void store_api_key_clear(struct store_api_key *k)
{
    if (!k)
        return;
    free(k->id);
    free(k->name);
    *k = (struct store_api_key){0};
}

int store_api_key_insert(struct store *st, const struct store_api_key *k, const char *hash,
                         struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "INSERT INTO api_keys (id, name, hash, created_at) VALUES (?, ?, ?, ?)",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, k->id);
    bind_text(stmt, 2, k->name);
    bind_text(stmt, 3, hash);
    sqlite3_bind_int64(stmt, 4, k->created_at);
    int rc = sqlite3_step(stmt);
    if ((rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) &&
        strstr(sqlite3_errmsg(st->db), "api_keys.name"))
        return wr_error_set(err, EEXIST, "an API key named '%s' exists already", k->name);
    if (rc != SQLITE_DONE)
        return store_fail(st, rc, err, "adding API key '%s'", k->name);
    return 0;
}

int store_api_key_list(struct store *st, struct store_api_key **ret, size_t *ret_n,
                       struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st,
                    "SELECT id, name, created_at, last_used_at, revoked_at FROM api_keys "
                    "ORDER BY created_at, rowid",
                    &stmt, err);
    if (r < 0)
        return r;
    struct store_api_key *v = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        v = wr_realloc(v, (n + 1) * sizeof(*v));
        v[n++] = (struct store_api_key){.id = column_strdup(stmt, 0),
                                        .name = column_strdup(stmt, 1),
                                        .created_at = sqlite3_column_int64(stmt, 2),
                                        .last_used_at = sqlite3_column_int64(stmt, 3),
                                        .revoked_at = sqlite3_column_int64(stmt, 4)};
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++)
            store_api_key_clear(&v[i]);
        free(v);
        return store_fail(st, rc, err, "listing API keys");
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int store_api_key_revoke(struct store *st, const char *id_or_name, int64_t now,
                         struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    /* An id match wins over a name match, as for sandboxes. */
    int r = prepare(st,
                    "UPDATE api_keys SET revoked_at = CASE revoked_at WHEN 0 THEN ?2 "
                    "ELSE revoked_at END WHERE id = (SELECT id FROM api_keys WHERE id = ?1 "
                    "OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1)",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, id_or_name);
    sqlite3_bind_int64(stmt, 2, now);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return store_fail(st, rc, err, "revoking API key '%s'", id_or_name);
    if (sqlite3_changes(st->db) == 0)
        return wr_error_set(err, ENOENT, "no API key '%s'", id_or_name);
    return 0;
}

int store_api_key_check(struct store *st, const char *hash, int64_t now, bool *ret_valid,
                        struct wr_error **err)
{
    _cleanup_unlock_ pthread_mutex_t *lock = lock_store(st);
    *ret_valid = false;
    _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
    int r = prepare(st, "SELECT last_used_at FROM api_keys WHERE hash = ?1 AND revoked_at = 0",
                    &stmt, err);
    if (r < 0)
        return r;
    bind_text(stmt, 1, hash);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return store_fail(st, rc, err, "checking an API key");
    *ret_valid = true;
    int64_t last_used = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);
    if (last_used > now - 60)
        return 0;
    _cleanup_stmt_ sqlite3_stmt *touch = NULL;
    r = prepare(st, "UPDATE api_keys SET last_used_at = ?2 WHERE hash = ?1", &touch, err);
    if (r < 0)
        return r;
    bind_text(touch, 1, hash);
    sqlite3_bind_int64(touch, 2, now);
    /* A busy database must not refuse a valid key: the last use is a convenience. */
    (void)sqlite3_step(touch);
    return 0;
}
