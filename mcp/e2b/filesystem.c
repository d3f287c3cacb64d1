/* envd's filesystem.Filesystem service: Stat, ListDir, MakeDir, Move, Remove here, and the
 * watchers (WatchDir, CreateWatcher, GetWatcherEvents, RemoveWatcher) in watch.c. Each call
 * resolves its paths for the user it acts as (paths.c), then makes the same vmm_* calls
 * as MCP's file tools. Messages are protobuf's JSON mapping of envd's filesystem.proto:
 * enums by name, int64 as strings, Timestamps as RFC 3339. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "e2b-internal.h"

cJSON *e2b_entry_json(const char *path, uint32_t type, uint64_t size, uint32_t mode, int64_t mtime,
                      const char *link_target, const char *owner, const char *group)
{
    cJSON *o = cJSON_CreateObject();
    const char *slash = strrchr(path, '/');
    cJSON_AddStringToObject(o, "name", slash && slash[1] ? slash + 1 : path);
    cJSON_AddStringToObject(o, "type",
                            type == (S_IFREG >> 12)   ? "FILE_TYPE_FILE"
                            : type == (S_IFDIR >> 12) ? "FILE_TYPE_DIRECTORY"
                            : type == (S_IFLNK >> 12) ? "FILE_TYPE_SYMLINK"
                                                      : "FILE_TYPE_UNSPECIFIED");
    cJSON_AddStringToObject(o, "path", path);
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)size);
    cJSON_AddStringToObject(o, "size", num);
    cJSON_AddNumberToObject(o, "mode", mode & 0777);
    /* Go's fs.FileMode.String(), which envd sends: "drwxr-xr-x", "Lrwxrwxrwx", "-rw-r--r--". */
    char perms[11] = "----------";
    perms[0] = type == (S_IFDIR >> 12) ? 'd' : type == (S_IFLNK >> 12) ? 'L' : '-';
    static const char rwx[] = "rwxrwxrwx";
    for (int i = 0; i < 9; i++)
        if (mode & (0400u >> i))
            perms[1 + i] = rwx[i];
    cJSON_AddStringToObject(o, "permissions", perms);
    cJSON_AddStringToObject(o, "owner", owner);
    cJSON_AddStringToObject(o, "group", group);
    struct tm tm;
    time_t t = (time_t)mtime;
    char when[40] = "1970-01-01T00:00:00Z";
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(o, "modifiedTime", when);
    if (link_target)
        cJSON_AddStringToObject(o, "symlinkTarget", link_target);
    return o;
}

/* A string field of the request, or NULL (absent or not a string). */
static const char *msg_string(const struct e2b_call *call, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(call->msg, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The error of a failed path resolution: an unknown user is unauthenticated, as envd says. */
static void fail_resolve(struct e2b_call *call, struct wr_error *err)
{
    if (err && err->status == EACCES) {
        e2b_call_error(call, CONNECT_UNAUTHENTICATED, err->msg);
        wr_error_free(err);
    } else {
        e2b_call_fail(call, err);
    }
}

/* ---- one call's state: the call, its resolved paths, the step it is at ---------------- */

struct fs_op {
    struct e2b_call *call;
    char *path, *to; /* resolved: the subject (Move's source), Move's destination */
    unsigned depth;
    bool retried; /* MakeDir: created the parents after ENOENT */
};

static void fs_op_free(struct fs_op *op)
{
    free(op->path);
    free(op->to);
    free(op);
}

static void fs_op_fail(struct fs_op *op, struct wr_error *err)
{
    e2b_call_fail(op->call, err);
    fs_op_free(op);
}

/* Every call here is unary and answered quickly: its client going away changes nothing,
 * the answer is dropped. */
static void op_gone(struct e2b_call *call)
{
    (void)call;
}

/* Stat of the op's subject, answered as {entry}. */
static void reply_entry(void *data, const struct agent_stat *st, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err)
        return fs_op_fail(op, err);
    cJSON *r = cJSON_CreateObject();
    const char *path = op->to ? op->to : op->path;
    cJSON_AddItemToObject(r, "entry",
                          e2b_entry_json(path, (st->mode & S_IFMT) >> 12, st->size, st->mode,
                                         st->mtime, NULL, st->owner, st->group));
    e2b_call_reply(op->call, r);
    fs_op_free(op);
}

static void stat_subject(struct fs_op *op)
{
    struct wr_error *err = NULL;
    if (vmm_stat(op->call->e2b->vmm, op->call->sandbox, op->to ? op->to : op->path, reply_entry,
                 op, &err) < 0)
        fs_op_fail(op, err);
}

/* Starts a call: resolves field `name` of its request, then runs next. */
static void begin(struct e2b_call *call, const char *name, unsigned depth,
                  void (*next)(void *data, char *path, struct wr_error *err))
{
    call->on_gone = op_gone;
    struct fs_op *op = wr_calloc(1, sizeof *op);
    op->call = call;
    op->depth = depth;
    struct wr_error *err = NULL;
    if (e2b_resolve_path(call->e2b, call->sandbox, call->user, msg_string(call, name), next, op,
                         &err) < 0) {
        fs_op_free(op);
        e2b_call_fail(call, err);
    }
}

/* ---- Stat --------------------------------------------------------------------------- */

static void stat_resolved(void *data, char *path, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err) {
        fail_resolve(op->call, err);
        return fs_op_free(op);
    }
    op->path = path;
    stat_subject(op);
}

static void handle_stat(struct e2b_call *call)
{
    begin(call, "path", 0, stat_resolved);
}

/* ---- ListDir ------------------------------------------------------------------------- */

static void listed(void *data, const struct agent_dir_entry *entries, size_t n, bool truncated,
                   struct wr_error *err)
{
    struct fs_op *op = data;
    if (err)
        return fs_op_fail(op, err);
    cJSON *r = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(r, "entries");
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *full = wr_path_join(op->path, entries[i].path);
        cJSON_AddItemToArray(list, e2b_entry_json(full, entries[i].type, entries[i].size,
                                                  entries[i].mode, entries[i].mtime,
                                                  entries[i].link_target, entries[i].owner,
                                                  entries[i].group));
    }
    if (truncated) {
        op->call->record_extra = cJSON_CreateObject();
        cJSON_AddBoolToObject(op->call->record_extra, "truncated", true);
    }
    e2b_call_reply(op->call, r);
    fs_op_free(op);
}

static void list_resolved(void *data, char *path, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err) {
        fail_resolve(op->call, err);
        return fs_op_free(op);
    }
    op->path = path;
    if (vmm_list_dir(op->call->e2b->vmm, op->call->sandbox, op->path, op->depth,
                     VMM_LIST_MAX_ENTRIES, listed, op, &err) < 0)
        fs_op_fail(op, err);
}

static void handle_list_dir(struct e2b_call *call)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(call->msg, "depth");
    double depth = cJSON_IsNumber(d) ? d->valuedouble : 1;
    if (depth < 1) {
        /* proto3's JSON leaves out a zero depth: envd lists one level then. */
        depth = 1;
    }
    if (depth > VMM_LIST_MAX_DEPTH) {
        _cleanup_free_ char *why =
            wr_asprintf("depth is at most %u here", (unsigned)VMM_LIST_MAX_DEPTH);
        return e2b_call_error(call, CONNECT_INVALID_ARGUMENT, why);
    }
    begin(call, "path", (unsigned)depth, list_resolved);
}

/* ---- MakeDir: mkdir -p, but an existing path is already_exists ------------------------- */

static void mkdir_done(void *data, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err && err->status == ENOENT && !op->retried) {
        /* The parents are missing: create them (envd does mkdir -p). */
        wr_error_free(err);
        err = NULL;
        op->retried = true;
        if (vmm_make_dir(op->call->e2b->vmm, op->call->sandbox, op->path, true, mkdir_done, op,
                         &err) < 0)
            fs_op_fail(op, err);
        return;
    }
    if (err && err->status == EEXIST) {
        _cleanup_free_ char *why = wr_asprintf("directory '%s' already exists", op->path);
        e2b_call_error(op->call, CONNECT_ALREADY_EXISTS, why);
        wr_error_free(err);
        return fs_op_free(op);
    }
    if (err)
        return fs_op_fail(op, err);
    stat_subject(op);
}

static void mkdir_resolved(void *data, char *path, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err) {
        fail_resolve(op->call, err);
        return fs_op_free(op);
    }
    op->path = path;
    if (vmm_make_dir(op->call->e2b->vmm, op->call->sandbox, op->path, false, mkdir_done, op,
                     &err) < 0)
        fs_op_fail(op, err);
}

static void handle_make_dir(struct e2b_call *call)
{
    begin(call, "path", 0, mkdir_resolved);
}

/* ---- Move: rename(2), replacing the destination as envd's os.Rename does --------------- */

static void moved(void *data, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err)
        return fs_op_fail(op, err);
    stat_subject(op);
}

static void move_to_resolved(void *data, char *path, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err) {
        fail_resolve(op->call, err);
        return fs_op_free(op);
    }
    op->to = path;
    if (vmm_move(op->call->e2b->vmm, op->call->sandbox, op->path, op->to, true, moved, op, &err) <
        0)
        fs_op_fail(op, err);
}

static void move_from_resolved(void *data, char *path, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err) {
        fail_resolve(op->call, err);
        return fs_op_free(op);
    }
    op->path = path;
    struct e2b_call *call = op->call;
    if (e2b_resolve_path(call->e2b, call->sandbox, call->user, msg_string(call, "destination"),
                         move_to_resolved, op, &err) < 0)
        fs_op_fail(op, err);
}

static void handle_move(struct e2b_call *call)
{
    if (!msg_string(call, "source") || !msg_string(call, "destination"))
        return e2b_call_error(call, CONNECT_INVALID_ARGUMENT, "source and destination are needed");
    begin(call, "source", 0, move_from_resolved);
}

/* ---- Remove: rm -rf (envd's os.RemoveAll: a missing path is no error) ------------------ */

static void removed(void *data, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err && err->status != ENOENT)
        return fs_op_fail(op, err);
    wr_error_free(err);
    e2b_call_reply(op->call, NULL);
    fs_op_free(op);
}

static void remove_resolved(void *data, char *path, struct wr_error *err)
{
    struct fs_op *op = data;
    if (err) {
        fail_resolve(op->call, err);
        return fs_op_free(op);
    }
    op->path = path;
    if (vmm_remove(op->call->e2b->vmm, op->call->sandbox, op->path, true, removed, op, &err) < 0)
        fs_op_fail(op, err);
}

static void handle_remove(struct e2b_call *call)
{
    if (!msg_string(call, "path"))
        return e2b_call_error(call, CONNECT_INVALID_ARGUMENT, "path is needed");
    begin(call, "path", 0, remove_resolved);
}

const struct e2b_method e2b_filesystem_methods[] = {
    {"Stat", false, handle_stat},
    {"ListDir", false, handle_list_dir},
    {"MakeDir", false, handle_make_dir},
    {"Move", false, handle_move},
    {"Remove", false, handle_remove},
    {"WatchDir", true, e2b_watch_dir},
    {"CreateWatcher", false, e2b_create_watcher},
    {"GetWatcherEvents", false, e2b_get_watcher_events},
    {"RemoveWatcher", false, e2b_remove_watcher},
    {.name = NULL},
};
