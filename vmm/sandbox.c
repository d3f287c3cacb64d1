/* Sandbox lifecycle: create (layers on the thread pool, then the backend, then the agent),
 * list (with liveness and memory), destroy (kill and remove on the thread pool). */
#include <cjson/cJSON.h>
#include <string.h>
#include <sys/stat.h>

#include "conn.h"
#include "disk.h"
#include "lifecycle.h"
#include "network.h"
#include "sandbox.h"
#include "spec.h"
#include "state.h"
#include "vmm/git/checkout.h"
#include "vmm/images/images.h"

struct create_op {
    struct vmm *vmm;
    vmm_sandbox_cb cb;
    void *data;
    struct store_sandbox row;
    struct spec_storage spec;
    struct wr_error *err; /* set on the thread pool */
    uv_work_t work;
    bool inserted;
};

static char *env_to_json(const char *const *env)
{
    if (!env || !env[0])
        return NULL;
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (!eq)
            continue;
        _cleanup_free_ char *k = wr_strndup(env[i], (size_t)(eq - env[i]));
        cJSON_AddStringToObject(o, k, eq + 1);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int vmm__new_id(char out[17])
{
    uint8_t raw[8];
    int r = wr_random_bytes(raw, sizeof(raw));
    if (r < 0)
        return r;
    wr_hex_encode(raw, sizeof(raw), out);
    return 0;
}

/* The disk a request asks for: its size, checked against this server's bounds. */
static int disk_for_request(const struct vmm *vmm, const struct vmm_create_request *req,
                            uint64_t *ret_mib, struct wr_error **err)
{
    *ret_mib = req->disk_mib ? req->disk_mib : vmm__default_disk_mib(vmm);
    if (!vmm->max_disk_mib && req->disk_mib)
        return wr_error_set(err, ENOTSUP,
                            "disk_mib cannot be honoured: %s; leave disk_mib out (this server's "
                            "sandboxes are then limited only by the host's free space)",
                            vmm->no_disk_reason ? vmm->no_disk_reason : "no disks here");
    if (req->disk_mib && req->disk_mib < VMM_DISK_MIB_MIN)
        return wr_error_set(err, EINVAL, "disk_mib must be at least %d (got %llu)",
                            VMM_DISK_MIB_MIN, (unsigned long long)req->disk_mib);
    if (req->disk_mib > vmm->max_disk_mib)
        return wr_error_set(err, EINVAL,
                            "disk_mib %llu is above this server's cap of %llu MiB "
                            "(warren --max-disk-mib)",
                            (unsigned long long)req->disk_mib,
                            (unsigned long long)vmm->max_disk_mib);
    return 0;
}

int vmm__row_for_request(struct vmm *vmm, const struct vmm_create_request *req,
                         struct store_sandbox *row, struct wr_error **err)
{
    char id[17];
    memset(row, 0, sizeof(*row));
    int r = vmm__new_id(id);
    if (r < 0)
        return wr_error_set_errno(err, -r, "generating a sandbox id");
    if (req->name && !wr_name_valid(req->name))
        return wr_error_set(err, EINVAL,
                            "invalid name '%.80s': use 1-63 characters of letters, digits, '_', "
                            "'.' and '-', not starting with '.' or '-'",
                            req->name);
    if (req->repo && req->repo[0] != '/')
        return wr_error_set(err, EINVAL, "repo must be an absolute host path, got '%.200s'",
                            req->repo);
    if (vmm__net_check(vmm->backend->name, &req->network, err) < 0)
        return -(*err)->status;
    if (disk_for_request(vmm, req, &row->disk_mib, err) < 0)
        return -(*err)->status;
    row->id = wr_strdup(id);
    row->name = req->name ? wr_strdup(req->name) : wr_asprintf("sandbox-%.6s", id);
    row->backend = wr_strdup(vmm->backend->name);
    row->state = wr_strdup("creating");
    if (vmm__image_name(vmm, req->image, &row->image, err) < 0)
        return -(*err)->status;
    row->repo = req->repo ? wr_strdup(req->repo) : NULL;
    row->ref = req->ref ? wr_strdup(req->ref) : NULL;
    row->env_json = env_to_json(req->env);
    row->cpus = req->cpus ? req->cpus : 1;
    row->memory_mib = req->memory_mib ? req->memory_mib : 512;
    row->network = (int)req->network.mode;
    if (req->network.mode == VMM_NET_ALLOW)
        row->network_policy = vmm_net_policy_to_text(&req->network);
    row->ttl_seconds = req->ttl_seconds;
    row->metadata = req->metadata ? wr_strdup(req->metadata) : NULL;
    row->created_at = row->last_used_at = wr_unix_time();
    return 0;
}

int vmm__prepare_git(const struct store_sandbox *row, struct spec_storage *spec,
                     struct wr_error **err)
{
    bool fork = row->ws_layers && strcmp(row->ws_layers, "[]") != 0;
    _cleanup_free_ char *branch = wr_asprintf("warren/%s", row->name);
    _cleanup_free_ char *objects = NULL;
    if (layers_git_prepare(row->repo, row->commit_id, branch, fork ? NULL : spec->ws_upper,
                           &objects, err) < 0)
        return -(*err)->status;
    _cleanup_free_ char *path = wr_path_join(spec->dir, "git-objects");
    int r = wr_write_file_atomic(path, objects, strlen(objects), 0600);
    if (r < 0)
        return wr_error_set_errno(err, -r, "writing %s", path);
    vmm__spec_load_git_objects(spec);
    return 0;
}

/* Thread pool: resolve and check out the workspace, prepare the image and directories. */
static void create_work(uv_work_t *w)
{
    struct create_op *op = w->data;
    struct store_sandbox *row = &op->row;
    /* A sandbox restored from a snapshot arrives with its workspace base already known. */
    if (row->repo && !row->ws_lower &&
        layers_workspace_from_repo(op->vmm->state_dir, row->repo, row->ref, &row->ws_lower,
                                   &row->commit_id, &op->err) < 0)
        return;
    if (vmm__image_ensure(op->vmm, row->image, NULL, NULL, &op->err) < 0 ||
        vmm__spec_build(op->vmm, row, &op->spec, &op->err) < 0 ||
        vmm__spec_boot_files(op->vmm, &op->spec, &op->err) < 0 ||
        vmm__spec_disks_ready(op->vmm, &op->spec, true, &op->err) < 0)
        return;
    if (vmm__spec_make_dirs(&op->spec, &op->err) < 0)
        return;
    if (row->commit_id)
        vmm__prepare_git(row, &op->spec, &op->err);
}

static void create_op_free(struct create_op *op)
{
    store_sandbox_clear(&op->row);
    vmm__spec_clear(&op->spec);
    wr_error_free(op->err);
    free(op);
}

/* A create that fails before the sandbox is registered leaves nothing behind. A failure
 * while booting (vmm__boot) leaves it listed as failed, with its files, until
 * sandbox_destroy. */
static void create_fail(struct create_op *op, struct wr_error *err)
{
    wr_error_wrap(&err, "creating sandbox '%s'", op->row.name);
    if (!op->inserted && op->spec.dir) {
        if (op->spec.disk_dir)
            (void)vmm_disk_unmount(op->spec.disk_dir, false, NULL);
        wr_rm_rf(op->spec.dir);
    }
    op->cb(op->data, NULL, err);
    create_op_free(op);
}

static void create_booted(void *data, struct wr_error *err)
{
    struct create_op *op = data;
    if (err) {
        create_fail(op, err);
        return;
    }
    store_event(op->vmm->store, op->row.id, "created", op->row.name, NULL);
    struct vmm_sandbox_info info = {.row = op->row};
    info.disk_used_bytes = vmm__disk_used(op->vmm, &op->row);
    op->cb(op->data, &info, NULL);
    create_op_free(op);
}

static void create_after_work(uv_work_t *w, int status)
{
    struct create_op *op = w->data;
    struct wr_error *err = TAKE_PTR(op->err);
    if (!err && store_sandbox_insert(op->vmm->store, &op->row, &err) == 0)
        op->inserted = true;
    if (err)
        create_fail(op, err);
    else
        vmm__boot(op->vmm, &op->row, &op->spec, create_booted, op);
}

int vmm__create_from_row(struct vmm *vmm, struct store_sandbox *row, vmm_sandbox_cb cb, void *data,
                         struct wr_error **err)
{
    struct create_op *op = wr_calloc(1, sizeof(*op));
    op->row = *row;
    *row = (struct store_sandbox){0};
    /* A quick check so that a taken name fails before any work; the insert re-checks. */
    struct store_sandbox other;
    if (store_sandbox_get(vmm->store, op->row.name, &other, NULL) == 0) {
        store_sandbox_clear(&other);
        int r = wr_error_set(err, EEXIST,
                             "a sandbox named '%s' already exists; pick another "
                             "name or destroy it first",
                             op->row.name);
        create_op_free(op);
        return r;
    }
    op->vmm = vmm;
    op->cb = cb;
    op->data = data;
    op->work.data = op;
    uv_queue_work(vmm->loop, &op->work, create_work, create_after_work);
    return 0;
}

/* ---- list ------------------------------------------------------------------------- */

/* Takes row over into info, with its state checked and its live figures. */
static void info_fill(struct vmm *vmm, struct vmm_sandbox_info *info, struct store_sandbox *row)
{
    *info = (struct vmm_sandbox_info){.row = *row};
    *row = (struct store_sandbox){0};
    vmm__refresh_state(vmm, &info->row);
    struct sandbox_rt *rt = vmm__rt_get(vmm, info->row.id, false);
    info->balloon_bytes = rt ? rt->balloon_bytes : 0;
    if (!strcmp(info->row.state, "running")) {
        struct spec_storage spec;
        if (vmm__spec_build(vmm, &info->row, &spec, NULL) == 0) {
            spec.ops->memory_usage(&spec.spec, info->row.pid, &info->memory_usage_bytes);
            vmm__spec_clear(&spec);
        }
    }
    info->disk_used_bytes = vmm__disk_used(vmm, &info->row);
}

int vmm_sandbox_get(struct vmm *vmm, const char *id_or_name, struct vmm_sandbox_info *ret,
                    struct wr_error **err)
{
    struct store_sandbox row;
    if (store_sandbox_get(vmm->store, id_or_name, &row, err) < 0)
        return -(*err)->status;
    if (row.pool) {
        store_sandbox_clear(&row);
        return wr_error_set(err, ENOENT, "no sandbox '%s'", id_or_name);
    }
    info_fill(vmm, ret, &row);
    return 0;
}

int vmm_sandbox_list(struct vmm *vmm, struct vmm_sandbox_info **ret, size_t *ret_n,
                     struct wr_error **err)
{
    struct store_sandbox *rows;
    size_t n;
    if (store_sandbox_list(vmm->store, &rows, &n, err) < 0)
        return -(*err)->status;
    struct vmm_sandbox_info *infos = wr_calloc(n, sizeof(*infos));
    for (size_t i = 0; i < n; i++)
        info_fill(vmm, &infos[i], &rows[i]);
    free(rows);
    *ret = infos;
    *ret_n = n;
    return 0;
}

/* ---- destroy ---------------------------------------------------------------------- */

struct destroy_op {
    struct vmm *vmm;
    vmm_sandbox_cb cb;
    void *data;
    struct store_sandbox row;
    struct spec_storage spec;
    struct wr_error *err;
    uv_work_t work;
};

static void destroy_work(uv_work_t *w)
{
    struct destroy_op *op = w->data;
    if (op->spec.ops->stop(&op->spec.spec, op->row.pid, &op->err) < 0)
        return;
    /* Its disk goes with it (the loop device once no namespace holds the mount). */
    if (op->spec.disk_dir && vmm_disk_unmount(op->spec.disk_dir, false, &op->err) < 0)
        return;
    int r = wr_rm_rf(op->spec.dir);
    if (r < 0)
        wr_error_set_errno(&op->err, -r, "removing %s", op->spec.dir);
}

static void destroy_after_work(uv_work_t *w, int status)
{
    struct destroy_op *op = w->data;
    struct wr_error *err = TAKE_PTR(op->err);
    if (!err)
        store_sandbox_delete(op->vmm->store, op->row.id, &err);
    if (err) {
        wr_error_wrap(&err, "destroying sandbox '%s'", op->row.name);
        op->cb(op->data, NULL, err);
    } else {
        store_event(op->vmm->store, op->row.id, "destroyed", op->row.name, NULL);
        struct vmm_sandbox_info info = {.row = op->row};
        op->cb(op->data, &info, NULL);
    }
    store_sandbox_clear(&op->row);
    vmm__spec_clear(&op->spec);
    free(op);
}

int vmm_sandbox_destroy(struct vmm *vmm, const char *id_or_name, vmm_sandbox_cb cb, void *data,
                        struct wr_error **err)
{
    struct destroy_op *op = wr_calloc(1, sizeof(*op));
    if (store_sandbox_get(vmm->store, id_or_name, &op->row, err) < 0 ||
        vmm__spec_build(vmm, &op->row, &op->spec, err) < 0) {
        store_sandbox_clear(&op->row);
        free(op);
        return -(*err)->status;
    }
    vmm__rt_forget(vmm, op->row.id);
    if (op->row.pid &&
        (!op->row.pid_start || wr_process_start_time(op->row.pid) != op->row.pid_start))
        op->row.pid = 0; /* that pid now belongs to someone else: never signal it */
    op->vmm = vmm;
    op->cb = cb;
    op->data = data;
    op->work.data = op;
    uv_queue_work(vmm->loop, &op->work, destroy_work, destroy_after_work);
    return 0;
}

int vmm_sandbox_events(struct vmm *vmm, const char *id_or_name, const char *kind, size_t limit,
                       struct store_event_row **ret, size_t *ret_n, struct wr_error **err)
{
    struct store_sandbox row = {0};
    /* Events outlive their sandbox: a destroyed one's are found by its id. */
    bool known = store_sandbox_get(vmm->store, id_or_name, &row, NULL) == 0;
    if (!known && !wr_id_valid(id_or_name))
        return wr_error_set(err, ENOENT, "no sandbox '%.80s'", id_or_name);
    int r = store_event_list(vmm->store, known ? row.id : id_or_name, kind, limit, ret, ret_n, err);
    store_sandbox_clear(&row);
    return r;
}

int vmm_events_since(struct vmm *vmm, int64_t after_id, size_t limit, struct store_event_row **ret,
                     size_t *ret_n, struct wr_error **err)
{
    return store_events_since(vmm->store, after_id, limit, ret, ret_n, err);
}

int64_t vmm_events_last_id(struct vmm *vmm)
{
    return store_event_last_id(vmm->store);
}

#define ACTIVITY_KEEP 200000 /* events kept in all (the oldest go first) */
#define ACTIVITY_PRUNE_EVERY 1000

void vmm_record_activity(struct vmm *vmm, const char *id_or_name, const char *detail)
{
    struct store_sandbox row = {0};
    /* A sandbox destroyed by the call is still known by its id. */
    bool known = store_sandbox_get(vmm->store, id_or_name, &row, NULL) == 0;
    if (known || wr_id_valid(id_or_name))
        (void)store_event(vmm->store, known ? row.id : id_or_name, "tool", detail, NULL);
    store_sandbox_clear(&row);
    if (++vmm->activity_records % ACTIVITY_PRUNE_EVERY == 0)
        (void)store_events_prune(vmm->store, ACTIVITY_KEEP);
}
