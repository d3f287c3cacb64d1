/* Work inside a running sandbox: exec and file transfer over its agent connection. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <string.h>

#include "guest-init/proto.h"
#include "network.h"
#include "ops.h"
#include "ready.h"
#include "state.h"
#include "util/metrics.h"
#include "vmm/images/images.h"

static const char *const base_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "USER=root",
    "LANG=C.UTF-8",
    "TERM=dumb",
    NULL,
};

/* Appends entry ("K=V") to env, replacing an earlier entry with the same key. */
static void env_put(char ***env, size_t *n, const char *entry)
{
    size_t klen = strcspn(entry, "=");
    for (size_t i = 0; i < *n; i++) {
        if (!strncmp((*env)[i], entry, klen) && (*env)[i][klen] == '=') {
            free((*env)[i]);
            (*env)[i] = wr_strdup(entry);
            return;
        }
    }
    *env = wr_realloc(*env, (*n + 2) * sizeof(char *));
    (*env)[(*n)++] = wr_strdup(entry);
    (*env)[*n] = NULL;
}

char **vmm__exec_env(const struct store_sandbox *row, const char *const *image_env,
                     const char *const *call_env)
{
    char **env = wr_calloc(1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; base_env[i]; i++)
        env_put(&env, &n, base_env[i]);
    for (size_t i = 0; image_env && image_env[i]; i++)
        env_put(&env, &n, image_env[i]);
    _cleanup_strv_ char **net_env = vmm__net_env(row);
    for (size_t i = 0; net_env && net_env[i]; i++)
        env_put(&env, &n, net_env[i]);
    cJSON *o = row->env_json ? cJSON_Parse(row->env_json) : NULL;
    for (cJSON *c = o ? o->child : NULL; c; c = c->next) {
        if (!cJSON_IsString(c))
            continue;
        _cleanup_free_ char *e = wr_asprintf("%s=%s", c->string, c->valuestring);
        env_put(&env, &n, e);
    }
    cJSON_Delete(o);
    for (size_t i = 0; call_env && call_env[i]; i++)
        env_put(&env, &n, call_env[i]);
    return env;
}

/* ---- exec ------------------------------------------------------------------------- */

struct vmm_op {
    struct vmm *vmm;
    char *sandbox_name;
    char **argv;
    char **env;
    char *cwd;
    char *user; /* the image config's User, or the call's */
    char *stdin_data;
    size_t stdin_len;
    uint32_t timeout_ms;
    struct agent_exec_handlers handlers;
    void *data;
    struct agent_exec *exec;
    bool cancelled;
    uint64_t started_ns; /* when the process was asked for: the duration histogram */
};

static void op_free(struct vmm_op *op)
{
    free(op->sandbox_name);
    wr_strv_free(op->argv);
    wr_strv_free(op->env);
    free(op->cwd);
    free(op->user);
    free(op->stdin_data);
    free(op);
}

static void op_output(void *data, int fd, const char *buf, size_t len)
{
    struct vmm_op *op = data;
    if (op->handlers.output)
        op->handlers.output(op->data, fd, buf, len);
}

static void op_done(void *data, const struct agent_exit *exit, struct wr_error *err)
{
    struct vmm_op *op = data;
    op->exec = NULL;
    const char *outcome = op->cancelled ? "cancelled" : err ? "failed" : "exited";
    wr_metric_add(&wr_metric_execs, outcome, NULL, 1);
    if (!err && !op->cancelled)
        wr_metric_observe(&wr_metric_exec_seconds, NULL, NULL,
                          (double)(uv_hrtime() - op->started_ns) / 1e9);
    if (err && err->status == ECONNRESET)
        wr_error_wrap(&err, "sandbox '%s' went away while the command ran (check sandbox_list)",
                      op->sandbox_name);
    op->handlers.done(op->data, exit, err);
    op_free(op);
}

static void exec_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct vmm_op *op = data;
    if (!conn || op->cancelled) {
        if (!err)
            wr_error_set(&err, ECANCELED, "cancelled");
        op->handlers.done(op->data, NULL, err);
        op_free(op);
        return;
    }
    struct agent_exec_request req = {
        .argv = (const char *const *)op->argv,
        .env = (const char *const *)op->env,
        .cwd = op->cwd,
        .user = op->user,
        .stdin_data = op->stdin_data,
        .stdin_len = op->stdin_len,
        .timeout_ms = op->timeout_ms,
    };
    static const struct agent_exec_handlers handlers = {.output = op_output, .done = op_done};
    op->started_ns = uv_hrtime();
    if (agent_exec(conn, &req, &handlers, op, &op->exec, &err) < 0) {
        op->handlers.done(op->data, NULL, err);
        op_free(op);
    }
}

int vmm_exec(struct vmm *vmm, const char *id_or_name, const struct agent_exec_request *req,
             const struct agent_exec_handlers *handlers, void *data, struct vmm_op **ret_op,
             struct wr_error **err)
{
    struct store_sandbox row;
    if (vmm__sandbox_running(vmm, id_or_name, &row, err) < 0)
        return -(*err)->status;
    store_sandbox_touch(vmm->store, row.id, wr_unix_time(), NULL);
    struct vmm_op *op = wr_calloc(1, sizeof(*op));
    op->vmm = vmm;
    op->sandbox_name = wr_strdup(row.name);
    op->argv = wr_strv_copy(req->argv);
    _cleanup_strv_ char **image_env = NULL;
    _cleanup_free_ char *workdir = NULL, *user = NULL;
    vmm__image_exec_config(vmm, row.image, &image_env, &workdir, &user);
    op->user = req->user ? wr_strdup(req->user) : TAKE_PTR(user);
    op->env = vmm__exec_env(&row, (const char *const *)image_env, req->env);
    op->cwd = wr_strdup(req->cwd ? req->cwd : workdir ? workdir : "/workspace");
    if (req->stdin_len) {
        op->stdin_data = wr_malloc(req->stdin_len);
        memcpy(op->stdin_data, req->stdin_data, req->stdin_len);
        op->stdin_len = req->stdin_len;
    }
    op->timeout_ms = req->timeout_ms;
    op->handlers = *handlers;
    op->data = data;
    *ret_op = op;
    vmm__with_conn(vmm, &row, 0, exec_on_conn, op);
    store_sandbox_clear(&row);
    return 0;
}

void vmm_op_cancel(struct vmm_op *op)
{
    op->cancelled = true;
    if (op->exec)
        agent_exec_signal(op->exec, SIGKILL);
}

/* ---- files ------------------------------------------------------------------------ */

struct file_op {
    bool write;
    char *path;
    uint64_t offset, length;
    const void *buf;
    size_t len;
    uint32_t mode, flags;
    agent_read_cb read_cb;
    agent_write_cb write_cb;
    void *data;
};

static void file_op_fail(struct file_op *op, struct wr_error *err)
{
    if (op->write)
        op->write_cb(op->data, 0, err);
    else
        op->read_cb(op->data, NULL, 0, 0, err);
}

static void file_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct file_op *op = data;
    if (conn) {
        if (op->write)
            agent_write_file(conn, op->path, op->buf, op->len, op->mode, op->flags, op->write_cb,
                             op->data, &err);
        else
            agent_read_file(conn, op->path, op->offset, op->length, op->read_cb, op->data, &err);
    }
    if (err)
        file_op_fail(op, err);
    free(op->path);
    free(op);
}

static int file_start(struct vmm *vmm, const char *id_or_name, struct file_op *op,
                      struct wr_error **err)
{
    struct store_sandbox row;
    if (vmm_path_check(op->path, err) < 0 || vmm__sandbox_running(vmm, id_or_name, &row, err) < 0) {
        free(op->path);
        free(op);
        return -(*err)->status;
    }
    store_sandbox_touch(vmm->store, row.id, wr_unix_time(), NULL);
    vmm__with_conn(vmm, &row, 0, file_on_conn, op);
    store_sandbox_clear(&row);
    return 0;
}

/* The agent resolves relative paths against /workspace. */
int vmm_read_file(struct vmm *vmm, const char *id_or_name, const char *path, uint64_t offset,
                  uint64_t length, agent_read_cb cb, void *data, struct wr_error **err)
{
    struct file_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct file_op){.path = wr_strdup(path),
                           .offset = offset,
                           .length = WR_MIN(length, (uint64_t)VMM_MAX_FILE_BYTES),
                           .read_cb = cb,
                           .data = data};
    return file_start(vmm, id_or_name, op, err);
}

int vmm_write_file(struct vmm *vmm, const char *id_or_name, const char *path, const void *buf,
                   size_t len, uint32_t mode, uint32_t flags, agent_write_cb cb, void *data,
                   struct wr_error **err)
{
    if (len > VMM_MAX_FILE_BYTES)
        return wr_error_set(err, EFBIG,
                            "content is too large (at most %u bytes per call; "
                            "use append for more)",
                            VMM_MAX_FILE_BYTES);
    struct file_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct file_op){.write = true,
                           .path = wr_strdup(path),
                           .buf = buf,
                           .len = len,
                           .mode = mode,
                           .flags = flags,
                           .write_cb = cb,
                           .data = data};
    return file_start(vmm, id_or_name, op, err);
}

/* ---- directories and stat --------------------------------------------------------- */

enum path_op_kind { PATH_LIST, PATH_MKDIR, PATH_RENAME, PATH_REMOVE, PATH_STAT };

struct path_op {
    enum path_op_kind kind;
    char *path, *new_path;
    unsigned depth;
    size_t max_entries;
    uint32_t mode, flags;
    agent_list_dir_cb list_cb;
    agent_simple_cb simple_cb;
    agent_stat_cb stat_cb;
    void *data;
};

static void path_op_free(struct path_op *op)
{
    free(op->path);
    free(op->new_path);
    free(op);
}

static void path_op_fail(struct path_op *op, struct wr_error *err)
{
    if (op->kind == PATH_LIST)
        op->list_cb(op->data, NULL, 0, false, err);
    else if (op->kind == PATH_STAT)
        op->stat_cb(op->data, NULL, err);
    else
        op->simple_cb(op->data, err);
}

static int path_op_send(struct path_op *op, struct agent_conn *conn, struct wr_error **err)
{
    switch (op->kind) {
    case PATH_LIST:
        return agent_list_dir(conn, op->path, op->depth, op->max_entries, op->list_cb, op->data,
                              err);
    case PATH_MKDIR:
        return agent_mkdir(conn, op->path, op->mode, op->flags, op->simple_cb, op->data, err);
    case PATH_RENAME:
        return agent_rename(conn, op->path, op->new_path, op->flags, op->simple_cb, op->data,
                            err);
    case PATH_REMOVE:
        return agent_remove(conn, op->path, op->flags, op->simple_cb, op->data, err);
    case PATH_STAT:
        return agent_stat(conn, op->path, op->stat_cb, op->data, err);
    }
    return wr_error_set(err, EINVAL, "unknown operation");
}

static void path_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct path_op *op = data;
    if (conn)
        path_op_send(op, conn, &err);
    if (err)
        path_op_fail(op, err);
    path_op_free(op);
}

/* Takes op; on failure nothing has been called back. */
static int path_start(struct vmm *vmm, const char *id_or_name, struct path_op *op,
                      struct wr_error **err)
{
    struct store_sandbox row;
    if (vmm_path_check(op->path, err) < 0 ||
        (op->new_path && vmm_path_check(op->new_path, err) < 0) ||
        vmm__sandbox_running(vmm, id_or_name, &row, err) < 0) {
        path_op_free(op);
        return -(*err)->status;
    }
    store_sandbox_touch(vmm->store, row.id, wr_unix_time(), NULL);
    vmm__with_conn(vmm, &row, 0, path_on_conn, op);
    store_sandbox_clear(&row);
    return 0;
}

static struct path_op *path_op_new(enum path_op_kind kind, const char *path, void *data)
{
    struct path_op *op = wr_calloc(1, sizeof(*op));
    op->kind = kind;
    op->path = wr_strdup(path);
    op->data = data;
    return op;
}

int vmm_list_dir(struct vmm *vmm, const char *id_or_name, const char *path, unsigned depth,
                 size_t max_entries, agent_list_dir_cb cb, void *data, struct wr_error **err)
{
    if (depth < 1 || depth > VMM_LIST_MAX_DEPTH)
        return wr_error_set(err, EINVAL, "depth must be 1 to %u", VMM_LIST_MAX_DEPTH);
    if (max_entries < 1 || max_entries > VMM_LIST_MAX_ENTRIES)
        return wr_error_set(err, EINVAL, "max_entries must be 1 to %u", VMM_LIST_MAX_ENTRIES);
    struct path_op *op = path_op_new(PATH_LIST, path, data);
    op->depth = depth;
    op->max_entries = max_entries;
    op->list_cb = cb;
    return path_start(vmm, id_or_name, op, err);
}

int vmm_make_dir(struct vmm *vmm, const char *id_or_name, const char *path, bool parents,
                 agent_simple_cb cb, void *data, struct wr_error **err)
{
    struct path_op *op = path_op_new(PATH_MKDIR, path, data);
    op->mode = 0755;
    op->flags = parents ? GI_MKDIR_PARENTS : 0;
    op->simple_cb = cb;
    return path_start(vmm, id_or_name, op, err);
}

int vmm_move(struct vmm *vmm, const char *id_or_name, const char *from, const char *to,
             bool overwrite, agent_simple_cb cb, void *data, struct wr_error **err)
{
    struct path_op *op = path_op_new(PATH_RENAME, from, data);
    op->new_path = wr_strdup(to);
    op->flags = overwrite ? GI_RENAME_OVERWRITE : 0;
    op->simple_cb = cb;
    return path_start(vmm, id_or_name, op, err);
}

int vmm_remove(struct vmm *vmm, const char *id_or_name, const char *path, bool recursive,
               agent_simple_cb cb, void *data, struct wr_error **err)
{
    struct path_op *op = path_op_new(PATH_REMOVE, path, data);
    op->flags = recursive ? GI_REMOVE_RECURSIVE : 0;
    op->simple_cb = cb;
    return path_start(vmm, id_or_name, op, err);
}

int vmm_stat(struct vmm *vmm, const char *id_or_name, const char *path, agent_stat_cb cb,
             void *data, struct wr_error **err)
{
    struct path_op *op = path_op_new(PATH_STAT, path, data);
    op->stat_cb = cb;
    return path_start(vmm, id_or_name, op, err);
}
