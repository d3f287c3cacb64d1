/* Snapshots: a sandbox's upper layers become read-only layers, O(1) (two renames), and the
 * sandbox goes on with fresh uppers above them. Restore starts a new sandbox on the same
 * chain, so forks share every layer below their own uppers.
 *
 * Layout: <state>/layers/snap/<snapshot id>/{workspace,root}. A sandbox with a disk
 * (vmm/disk.h) has its uppers on it: its snapshot is the disk image itself, renamed to
 * <state>/layers/snap/<id>/disk.img and mounted read-only on .../disk (its layers are
 * .../disk/workspace/upper and .../disk/root/upper), and the sandbox goes on with a fresh
 * disk of its full size. A sandbox's row lists the
 * snapshot layers it stacks (ws_layers, root_layers, top first); a snapshot's manifest
 * records its chains and what a restored sandbox starts from. A running sandbox is synced,
 * stopped and booted again around the switch: otherwise a process holding an old file
 * open could still write into the layer the snapshot just froze. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "disk.h"
#include "lifecycle.h"
#include "ready.h"
#include "sandbox.h"
#include "spec.h"
#include "state.h"
#include "vmm/images/images.h"

struct snap_op {
    struct vmm *vmm;
    struct store_sandbox row;
    struct spec_storage spec;
    struct store_snapshot snap;
    bool was_running;
    vmm_snapshot_cb cb;
    void *data;
    struct wr_error *err;
    uv_work_t work;
};

static void snap_op_free(struct snap_op *op)
{
    store_sandbox_clear(&op->row);
    vmm__spec_clear(&op->spec);
    store_snapshot_clear(&op->snap);
    wr_error_free(op->err);
    free(op);
}

static char *layer_dir(const struct vmm *vmm, const char *snapshot_id)
{
    return wr_asprintf("%s/layers/snap/%s", vmm->state_dir, snapshot_id);
}

/* Prepends layer to a JSON array of layers (NULL: empty); returns the new JSON text. */
static char *chain_push(const char *chain_json, const char *layer)
{
    cJSON *a = chain_json ? cJSON_Parse(chain_json) : NULL;
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        a = cJSON_CreateArray();
    }
    cJSON_InsertItemInArray(a, 0, cJSON_CreateString(layer));
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

/* What a restored sandbox starts from, beside the layers. */
static char *manifest_json(const struct store_sandbox *row)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToObject(m, "workspace", cJSON_Parse(row->ws_layers ? row->ws_layers : "[]"));
    cJSON_AddItemToObject(m, "root", cJSON_Parse(row->root_layers ? row->root_layers : "[]"));
    const char *strings[][2] = {{"ws_lower", row->ws_lower}, {"repo", row->repo},
                                {"ref", row->ref},           {"commit", row->commit_id},
                                {"image", row->image},       {"env", row->env_json}};
    for (size_t i = 0; i < WR_ARRAY_SIZE(strings); i++)
        if (strings[i][1])
            cJSON_AddStringToObject(m, strings[i][0], strings[i][1]);
    cJSON_AddNumberToObject(m, "cpus", row->cpus);
    cJSON_AddNumberToObject(m, "memory_mib", (double)row->memory_mib);
    cJSON_AddNumberToObject(m, "disk_mib", (double)row->disk_mib);
    /* The policy as sandbox_create takes it (older manifests hold a boolean). */
    cJSON *net = NULL;
    struct vmm_net_policy p;
    const char *text = row->network_policy;
    if (row->network == VMM_NET_ALLOW && text &&
        vmm_net_policy_parse(text, strlen(text), &p, NULL) == 0) {
        net = vmm_net_policy_to_json(&p);
        vmm_net_policy_clear(&p);
    }
    cJSON_AddItemToObject(m, "network", net ? net : cJSON_CreateBool(row->network == VMM_NET_NAT));
    char *s = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    return s;
}

/* Moves one upper into the snapshot layer and leaves an empty upper and work dir. */
static int rotate_one(const char *upper, const char *work, const char *layer, struct wr_error **err)
{
    if (rename(upper, layer) < 0)
        return wr_error_set_errno(err, errno, "moving %s to %s", upper, layer);
    int r = wr_mkdir_p(upper, 0755);
    if (r == 0)
        r = wr_rm_rf(work);
    if (r == 0)
        r = wr_mkdir_p(work, 0755);
    return r < 0 ? wr_error_set_errno(err, -r, "preparing fresh layers in %s", upper) : 0;
}

/* A sandbox without a disk: its upper directories move into the layer directory. */
static int rotate_dirs(const struct spec_storage *spec, const char *dir, const char *name,
                       char **ret_ws, char **ret_root, struct wr_error **err)
{
    _cleanup_free_ char *ws = wr_path_join(dir, "workspace");
    _cleanup_free_ char *root = wr_path_join(dir, "root");
    if (rotate_one(spec->ws_upper, spec->ws_work, ws, err) < 0)
        return -(*err)->status;
    if (rotate_one(spec->root_upper, spec->root_work, root, err) < 0) {
        /* Put the workspace back where the sandbox looks for it: no change is lost. */
        if (wr_rm_rf(spec->ws_upper) < 0 || rename(ws, spec->ws_upper) < 0)
            log_error("snapshot of %s: the workspace changes stay in %s", name, ws);
        return -(*err)->status;
    }
    *ret_ws = TAKE_PTR(ws);
    *ret_root = TAKE_PTR(root);
    return 0;
}

/* A sandbox with a disk: the image moves into the layer directory, unmounted everywhere
 * first (a filesystem still mounted read-write must not be mounted again as a layer), and
 * the sandbox gets a fresh one. */
static int rotate_disk(struct vmm *vmm, struct spec_storage *spec, const char *dir, char **ret_ws,
                       char **ret_root, struct wr_error **err)
{
    _cleanup_free_ char *image = wr_path_join(dir, VMM_DISK_IMAGE);
    _cleanup_free_ char *mount = wr_path_join(dir, VMM_DISK_MOUNT);
    int r = vmm_disk_unmount(spec->disk_dir, true, err);
    if (r == 0 && rename(spec->disk_image, image) < 0)
        r = wr_error_set_errno(err, errno, "moving %s to %s", spec->disk_image, image);
    if (r < 0) {
        (void)vmm_disk_mount(spec->disk_image, spec->disk_dir, false, NULL);
        return r;
    }
    if (vmm__spec_disks_ready(vmm, spec, true, err) < 0 || vmm__spec_make_dirs(spec, err) < 0) {
        /* Back to the disk it had: no change is lost. */
        (void)vmm_disk_unmount(spec->disk_dir, false, NULL);
        if (rename(image, spec->disk_image) < 0 ||
            vmm_disk_mount(spec->disk_image, spec->disk_dir, false, NULL) < 0)
            log_error("snapshot of %s: its changes stay in %s", spec->dir, image);
        return -(*err)->status;
    }
    _cleanup_error_ struct wr_error *not_now = NULL;
    if (vmm_disk_mount(image, mount, true, &not_now) < 0) /* mounted again when used */
        log_warning("snapshot of %s: %s", spec->dir, not_now->msg);
    *ret_ws = wr_path_join(mount, "workspace/upper");
    *ret_root = wr_path_join(mount, "root/upper");
    return 0;
}

/* Thread pool: stop the machine (when it runs), then turn its uppers into the layer. */
static void snapshot_work(uv_work_t *w)
{
    struct snap_op *op = w->data;
    struct vmm *vmm = op->vmm;
    struct spec_storage *spec = &op->spec;
    if (op->was_running && spec->ops->stop(&spec->spec, op->row.pid, &op->err) < 0)
        return;
    _cleanup_free_ char *dir = layer_dir(vmm, op->snap.id);
    _cleanup_free_ char *ws = NULL, *root = NULL;
    int r = wr_mkdir_p(dir, 0755);
    if (r < 0) {
        wr_error_set_errno(&op->err, -r, "creating %s", dir);
        return;
    }
    if (spec->disk_image ? rotate_disk(vmm, spec, dir, &ws, &root, &op->err) < 0
                         : rotate_dirs(spec, dir, op->row.name, &ws, &root, &op->err) < 0) {
        (void)rmdir(dir);
        return;
    }
    char *ws_chain = chain_push(op->row.ws_layers, ws);
    char *root_chain = chain_push(op->row.root_layers, root);
    free(op->row.ws_layers);
    free(op->row.root_layers);
    op->row.ws_layers = ws_chain;
    op->row.root_layers = root_chain;
    op->snap.manifest = manifest_json(&op->row);
    /* The sandbox boots again on the new chain. */
    vmm__spec_clear(spec);
    if (vmm__spec_build(vmm, &op->row, spec, &op->err) == 0 && op->was_running)
        vmm__spec_boot_files(vmm, spec, &op->err);
}

static void snapshot_finish(struct snap_op *op, struct wr_error *err)
{
    if (err) {
        wr_error_wrap(&err, "snapshot of sandbox '%s'", op->row.name);
        op->cb(op->data, NULL, err);
    } else {
        struct vmm_snapshot_info info = {.row = op->snap};
        info.layers =
            wr_strv_len((const char *const *)op->spec.ws_lowers) - (op->row.ws_lower ? 1 : 0);
        char *none[] = {NULL};
        info.used_by = none;
        op->cb(op->data, &info, NULL);
    }
    snap_op_free(op);
}

static void rebooted(void *data, struct wr_error *err)
{
    snapshot_finish(data, err);
}

static void snapshot_after_work(uv_work_t *w, int status)
{
    struct snap_op *op = w->data;
    struct vmm *vmm = op->vmm;
    struct wr_error *err = TAKE_PTR(op->err);
    if (err && op->was_running) {
        /* The machine may be stopped already: say so rather than claim it runs. */
        store_sandbox_set_state(vmm->store, op->row.id, "stopped", 0, 0, err->msg, NULL);
    }
    if (!err)
        store_sandbox_set_layers(vmm->store, op->row.id, op->row.ws_layers, op->row.root_layers,
                                 &err);
    if (!err)
        store_snapshot_insert(vmm->store, &op->snap, &err);
    if (err) {
        snapshot_finish(op, err);
        return;
    }
    store_event(vmm->store, op->row.id, "snapshot", op->snap.name, NULL);
    if (op->was_running)
        vmm__boot(vmm, &op->row, &op->spec, rebooted, op);
    else
        snapshot_finish(op, NULL);
}

static void start_snapshot_work(struct snap_op *op)
{
    vmm__rt_forget(op->vmm, op->row.id);
    op->work.data = op;
    uv_queue_work(op->vmm->loop, &op->work, snapshot_work, snapshot_after_work);
}

static void synced(void *data, struct wr_error *err)
{
    /* Not fatal: the machine is stopped next, which flushes what the guest had written. */
    wr_error_free(err);
    start_snapshot_work(data);
}

static void sync_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    if (conn && agent_sync(conn, synced, data, &err) == 0)
        return;
    synced(data, err);
}

/* Why this backend cannot save a machine's memory here. */
static int memory_refused(const struct vmm_backend_ops *ops, struct wr_error **err)
{
    const char *why =
        !ops->vm ? "the jail backend has no machine memory to save (processes run on the host)"
        : !strcmp(ops->name, "qemu")
            ? "QEMU 7.2 cannot save a VM with virtiofs (vhost-user-fs) devices attached"
            : "Cloud Hypervisor needs a virtiofsd with vhost-user device-state support (the Rust "
              "virtiofsd 1.13 or later) to save virtiofs state, and this build runs Debian's C "
              "virtiofsd, which has none";
    return wr_error_set(err, ENOTSUP,
                        "memory snapshots are not available: %s; take a file "
                        "snapshot (memory: false) instead",
                        why);
}

static int snapshot_name(struct vmm *vmm, const char *name, const struct store_sandbox *row,
                         const char *id, char **ret, struct wr_error **err)
{
    if (name && !wr_name_valid(name))
        return wr_error_set(err, EINVAL,
                            "invalid snapshot name '%.80s': use 1-63 characters of "
                            "letters, digits, '_', '.' and '-'",
                            name);
    *ret = name ? wr_strdup(name) : wr_asprintf("%.48s-%.6s", row->name, id);
    struct store_snapshot other;
    if (store_snapshot_get(vmm->store, *ret, &other, NULL) == 0) {
        store_snapshot_clear(&other);
        return wr_error_set(err, EEXIST, "a snapshot named '%s' already exists", *ret);
    }
    return 0;
}

int vmm_sandbox_snapshot(struct vmm *vmm, const char *id_or_name, const char *name, bool memory,
                         vmm_snapshot_cb cb, void *data, struct wr_error **err)
{
    struct snap_op *op = wr_calloc(1, sizeof(*op));
    char id[17];
    int r = store_sandbox_get(vmm->store, id_or_name, &op->row, err);
    if (r == 0) {
        vmm__refresh_state(vmm, &op->row);
        if (!strcmp(op->row.state, "creating"))
            r = wr_error_set(err, EAGAIN, "sandbox '%s' is still being created", op->row.name);
    }
    if (r == 0 && memory)
        r = memory_refused(vmm__backend_for(vmm, op->row.backend), err);
    if (r == 0 && (r = vmm__new_id(id)) < 0)
        wr_error_set_errno(err, -r, "generating a snapshot id");
    if (r == 0)
        r = snapshot_name(vmm, name, &op->row, id, &op->snap.name, err);
    if (r == 0)
        r = vmm__spec_build(vmm, &op->row, &op->spec, err);
    if (r < 0) {
        snap_op_free(op);
        return r;
    }
    op->vmm = vmm;
    op->cb = cb;
    op->data = data;
    op->snap.id = wr_strdup(id);
    op->snap.sandbox_id = wr_strdup(op->row.id);
    op->snap.created_at = wr_unix_time();
    op->was_running = !strcmp(op->row.state, "running") || !strcmp(op->row.state, "paused");
    if (!strcmp(op->row.state, "running"))
        vmm__with_conn(vmm, &op->row, 0, sync_on_conn, op);
    else
        start_snapshot_work(op);
    return 0;
}

/* ---- restore ------------------------------------------------------------------------ */

static char *manifest_string(const cJSON *m, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    return cJSON_IsString(v) ? wr_strdup(v->valuestring) : NULL;
}

static char *manifest_array(const cJSON *m, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    return cJSON_IsArray(v) ? cJSON_PrintUnformatted(v) : NULL;
}

static int row_from_snapshot(struct vmm *vmm, const struct store_snapshot *snap, const char *name,
                             struct store_sandbox *row, struct wr_error **err)
{
    char id[17];
    int r = vmm__new_id(id);
    if (r < 0)
        return wr_error_set_errno(err, -r, "generating a sandbox id");
    if (name && !wr_name_valid(name))
        return wr_error_set(err, EINVAL,
                            "invalid name '%.80s': use 1-63 characters of letters, "
                            "digits, '_', '.' and '-'",
                            name);
    cJSON *m = cJSON_Parse(snap->manifest);
    if (!cJSON_IsObject(m)) {
        cJSON_Delete(m);
        return wr_error_set(err, EIO, "snapshot '%s' has a damaged manifest", snap->name);
    }
    *row = (struct store_sandbox){
        .id = wr_strdup(id),
        .name = name ? wr_strdup(name) : wr_asprintf("%.48s-%.6s", snap->name, id),
        .backend = wr_strdup(vmm->backend->name),
        .state = wr_strdup("creating"),
        .image = manifest_string(m, "image"),
        .repo = manifest_string(m, "repo"),
        .ref = manifest_string(m, "ref"),
        .commit_id = manifest_string(m, "commit"),
        .ws_lower = manifest_string(m, "ws_lower"),
        .env_json = manifest_string(m, "env"),
        .ws_layers = manifest_array(m, "workspace"),
        .root_layers = manifest_array(m, "root"),
        .cpus = (unsigned)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "cpus")),
        .memory_mib = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "memory_mib")),

        .created_at = wr_unix_time(),
    };
    row->last_used_at = row->created_at;
    struct vmm_net_policy p;
    const cJSON *net = cJSON_GetObjectItem(m, "network");
    if (net && vmm_net_policy_from_json(net, &p, NULL) == 0) {
        row->network = (int)p.mode;
        if (p.mode == VMM_NET_ALLOW)
            row->network_policy = vmm_net_policy_to_text(&p);
        vmm_net_policy_clear(&p);
    }
    if (!row->image)
        row->image = wr_strdup("host");
    row->cpus = row->cpus ? row->cpus : 1;
    row->memory_mib = row->memory_mib ? row->memory_mib : 512;
    /* A fork has a fresh disk of the snapshot's sandbox's size, within this server's cap;
     * what the snapshot holds is a read-only layer below it and not counted. */
    const cJSON *disk = cJSON_GetObjectItem(m, "disk_mib");
    row->disk_mib =
        cJSON_IsNumber(disk) && disk->valuedouble >= 1 ? (uint64_t)disk->valuedouble : 0;
    if (!row->disk_mib || row->disk_mib > vmm->max_disk_mib)
        row->disk_mib = row->disk_mib ? vmm->max_disk_mib : vmm__default_disk_mib(vmm);
    cJSON_Delete(m);
    return 0;
}

int vmm_snapshot_restore(struct vmm *vmm, const char *snapshot, const char *name, vmm_sandbox_cb cb,
                         void *data, struct wr_error **err)
{
    struct store_snapshot snap;
    if (store_snapshot_get(vmm->store, snapshot, &snap, err) < 0)
        return -(*err)->status;
    struct store_sandbox row = {0};
    int r = row_from_snapshot(vmm, &snap, name, &row, err);
    store_snapshot_clear(&snap);
    if (r < 0) {
        store_sandbox_clear(&row);
        return r;
    }
    return vmm__create_from_row(vmm, &row, cb, data, err);
}

/* ---- list and delete ----------------------------------------------------------------- */

void vmm_snapshot_info_clear(struct vmm_snapshot_info *info)
{
    store_snapshot_clear(&info->row);
    wr_strv_free(info->used_by);
    info->used_by = NULL;
    free(info->parent_id);
    info->parent_id = NULL;
}

static bool chain_has_prefix(const char *chain_json, const char *prefix)
{
    _cleanup_strv_ char **v = vmm__layer_chain(chain_json, NULL);
    for (size_t i = 0; v[i]; i++)
        if (!strncmp(v[i], prefix, strlen(prefix)))
            return true;
    return false;
}

/* Who is built on snapshot id (named name): sandboxes stacking its layer, later snapshots
 * of them, and templates made of it. */
static char **users_of(struct vmm *vmm, const char *id, const char *name, struct wr_error **err)
{
    _cleanup_free_ char *dir = layer_dir(vmm, id);
    _cleanup_free_ char *prefix = wr_asprintf("%s/", dir);
    char **users = wr_calloc(1, sizeof(char *));
    size_t n = 0;
    struct store_sandbox *rows = NULL;
    size_t nrows = 0;
    if (store_sandbox_list(vmm->store, &rows, &nrows, err) < 0) {
        wr_strv_free(users);
        return NULL;
    }
    for (size_t i = 0; i < nrows; i++) {
        if (chain_has_prefix(rows[i].ws_layers, prefix)) {
            wr_strv_push(&users, &n, wr_asprintf("sandbox '%s'", rows[i].name));
        }
        store_sandbox_clear(&rows[i]);
    }
    free(rows);
    struct store_snapshot *snaps = NULL;
    size_t nsnaps = 0;
    if (store_snapshot_list(vmm->store, NULL, &snaps, &nsnaps, NULL) == 0) {
        for (size_t i = 0; i < nsnaps; i++) {
            cJSON *m = cJSON_Parse(snaps[i].manifest);
            _cleanup_free_ char *ws = manifest_array(m, "workspace");
            if (strcmp(snaps[i].id, id) != 0 && chain_has_prefix(ws, prefix)) {
                wr_strv_push(&users, &n, wr_asprintf("snapshot '%s'", snaps[i].name));
            }
            cJSON_Delete(m);
            store_snapshot_clear(&snaps[i]);
        }
        free(snaps);
    }
    (void)vmm__templates_with(vmm, "template", name, &users, &n, NULL);
    return users;
}

static size_t manifest_layers(const char *manifest)
{
    cJSON *m = cJSON_Parse(manifest);
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(m, "workspace");
    size_t n = cJSON_IsArray(ws) ? (size_t)cJSON_GetArraySize(ws) : 0;
    cJSON_Delete(m);
    return n;
}

/* The snapshot id of a layer directory under prefix ("<state>/layers/snap/"), or NULL. */
static char *layer_snapshot(const char *layer, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(layer, prefix, n) != 0)
        return NULL;
    const char *end = strchr(layer + n, '/');
    return end ? wr_strndup(layer + n, (size_t)(end - layer - n)) : wr_strdup(layer + n);
}

static ssize_t find_snapshot(const struct store_snapshot *snaps, size_t n, const char *id)
{
    for (size_t i = 0; id && i < n; i++)
        if (!strcmp(snaps[i].id, id))
            return (ssize_t)i;
    return -1;
}

/* The snapshot below a snapshot in its workspace chain: the one it is built on. */
static char *snapshot_parent(const struct store_snapshot *s, const char *prefix)
{
    cJSON *m = cJSON_Parse(s->manifest);
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(m, "workspace");
    const char *below = cJSON_GetStringValue(cJSON_GetArrayItem(ws, 1));
    char *id = below ? layer_snapshot(below, prefix) : NULL;
    cJSON_Delete(m);
    return id;
}

int vmm_snapshot_list(struct vmm *vmm, const char *sandbox, struct vmm_snapshot_info **ret,
                      size_t *ret_n, struct wr_error **err)
{
    struct store_sandbox row = {0};
    if (sandbox && store_sandbox_get(vmm->store, sandbox, &row, err) < 0)
        return -(*err)->status;
    struct store_snapshot *snaps;
    size_t n;
    int r = store_snapshot_list(vmm->store, sandbox ? row.id : NULL, &snaps, &n, err);
    store_sandbox_clear(&row);
    if (r < 0)
        return r;
    struct vmm_snapshot_info *infos = wr_calloc(n ? n : 1, sizeof(*infos));
    _cleanup_free_ char *prefix = layer_dir(vmm, "");
    for (size_t i = 0; i < n; i++) {
        infos[i].row = snaps[i];
        infos[i].layers = manifest_layers(snaps[i].manifest);
        infos[i].parent_id = snapshot_parent(&snaps[i], prefix);
        infos[i].used_by = users_of(vmm, snaps[i].id, snaps[i].name, NULL);
        if (!infos[i].used_by)
            infos[i].used_by = wr_calloc(1, sizeof(char *));
    }
    free(snaps);
    *ret = infos;
    *ret_n = n;
    return 0;
}

struct delete_op {
    struct vmm_snapshot_info info;
    char *dir;
    vmm_snapshot_cb cb;
    void *data;
    int rm_result;
    uv_work_t work;
};

static void delete_work(uv_work_t *w)
{
    struct delete_op *op = w->data;
    _cleanup_free_ char *disk = wr_path_join(op->dir, VMM_DISK_MOUNT);
    _cleanup_error_ struct wr_error *err = NULL;
    if (vmm_disk_unmount(disk, false, &err) < 0) {
        op->rm_result = -err->status;
        return;
    }
    op->rm_result = wr_rm_rf(op->dir);
}

static void delete_after_work(uv_work_t *w, int status)
{
    struct delete_op *op = w->data;
    if (op->rm_result < 0)
        log_warning("removing snapshot layer %s: %s", op->dir, strerror(-op->rm_result));
    op->cb(op->data, &op->info, NULL);
    vmm_snapshot_info_clear(&op->info);
    free(op->dir);
    free(op);
}

int vmm_snapshot_delete(struct vmm *vmm, const char *snapshot, vmm_snapshot_cb cb, void *data,
                        struct wr_error **err)
{
    struct delete_op *op = wr_calloc(1, sizeof(*op));
    int r = store_snapshot_get(vmm->store, snapshot, &op->info.row, err);
    if (r == 0 && !(op->info.used_by = users_of(vmm, op->info.row.id, op->info.row.name, err)))
        r = -(*err)->status;
    if (r == 0 && op->info.used_by[0]) {
        _cleanup_free_ char *who = wr_strv_join((const char *const *)op->info.used_by, ", ");
        r = wr_error_set(err, EBUSY,
                         "snapshot '%s' is in use by %s: destroy or delete those "
                         "first",
                         op->info.row.name, who);
    }
    if (r == 0)
        r = store_snapshot_delete(vmm->store, op->info.row.id, err);
    if (r < 0) {
        vmm_snapshot_info_clear(&op->info);
        free(op);
        return r;
    }
    op->dir = layer_dir(vmm, op->info.row.id);
    op->cb = cb;
    op->data = data;
    op->work.data = op;
    uv_queue_work(vmm->loop, &op->work, delete_work, delete_after_work);
    return 0;
}

/* ---- the family tree ------------------------------------------------------------------- */

/* The family a sandbox belongs to: the snapshots and sandboxes linked to it by "taken
 * from" (a snapshot and its sandbox), "built on" (a snapshot and the snapshot below it in
 * its layer chain) and "forked from" (a sandbox and the snapshot it was restored from),
 * followed both ways from the sandbox: up to the first ancestor, down to every
 * descendant. The store keeps no parent column: the layer chains are the record (a layer
 * lives in layer_dir(snapshot id)), so the tree is read from them. */

struct tree_op {
    struct vmm *vmm;
    struct vmm_snapshot_tree tree;
    char **dirs; /* each family snapshot's layer directory, for the sizes */
    vmm_snapshot_tree_cb cb;
    void *data;
    uv_work_t work;
};

/* The snapshot a sandbox was forked from: the first layer of its chain that is not one of
 * its own snapshots. */
static char *sandbox_origin(const struct store_sandbox *row, const struct store_snapshot *snaps,
                            size_t n, const char *prefix)
{
    _cleanup_strv_ char **chain = vmm__layer_chain(row->ws_layers, NULL);
    for (size_t i = 0; chain[i]; i++) {
        char *id = layer_snapshot(chain[i], prefix);
        ssize_t k = find_snapshot(snaps, n, id);
        if (k >= 0 && (!snaps[k].sandbox_id || strcmp(snaps[k].sandbox_id, row->id) != 0))
            return id;
        free(id);
    }
    return NULL;
}

struct edge {
    size_t a, b; /* nodes: snapshots 0..ns-1, then sandboxes ns.. */
};

/* Marks every node linked to a marked one, until nothing changes (the depth of a family
 * is small; each pass is linear in the edges). */
static void spread(bool *in, const struct edge *edges, size_t n_edges)
{
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < n_edges; i++)
            if (in[edges[i].a] != in[edges[i].b]) {
                in[edges[i].a] = in[edges[i].b] = true;
                changed = true;
            }
    }
}

static void tree_work(uv_work_t *w)
{
    struct tree_op *op = w->data;
    for (size_t i = 0; i < op->tree.n_snapshots; i++)
        op->tree.snapshots[i].size_bytes = wr_disk_usage(op->dirs[i]);
}

static void tree_after_work(uv_work_t *w, int status)
{
    struct tree_op *op = w->data;
    op->cb(op->data, &op->tree, NULL);
    vmm_snapshot_tree_clear(&op->tree);
    wr_strv_free(op->dirs);
    free(op);
}

void vmm_snapshot_tree_clear(struct vmm_snapshot_tree *tree)
{
    for (size_t i = 0; i < tree->n_snapshots; i++)
        vmm_snapshot_info_clear(&tree->snapshots[i]);
    for (size_t i = 0; i < tree->n_sandboxes; i++) {
        store_sandbox_clear(&tree->sandboxes[i].row);
        free(tree->sandboxes[i].from_snapshot);
    }
    free(tree->snapshots);
    free(tree->sandboxes);
    *tree = (struct vmm_snapshot_tree){0};
}

/* Moves the family's rows (marked in in) into op->tree; frees the others. */
static void collect(struct tree_op *op, struct store_snapshot *snaps, size_t ns, char **parents,
                    struct store_sandbox *rows, size_t nb, char **origins, const bool *in)
{
    struct vmm_snapshot_tree *t = &op->tree;
    t->snapshots = wr_calloc(ns + 1, sizeof(*t->snapshots));
    t->sandboxes = wr_calloc(nb + 1, sizeof(*t->sandboxes));
    op->dirs = wr_calloc(ns + 1, sizeof(char *));
    for (size_t i = 0; i < ns; i++) {
        if (!in[i]) {
            store_snapshot_clear(&snaps[i]);
            free(parents[i]);
            continue;
        }
        op->dirs[t->n_snapshots] = layer_dir(op->vmm, snaps[i].id);
        t->snapshots[t->n_snapshots++] = (struct vmm_snapshot_info){
            .row = snaps[i],
            .parent_id = parents[i],
            .layers = manifest_layers(snaps[i].manifest),
            .used_by = users_of(op->vmm, snaps[i].id, snaps[i].name, NULL),
        };
        if (!t->snapshots[t->n_snapshots - 1].used_by)
            t->snapshots[t->n_snapshots - 1].used_by = wr_calloc(1, sizeof(char *));
    }
    for (size_t j = 0; j < nb; j++) {
        if (!in[ns + j]) {
            store_sandbox_clear(&rows[j]);
            free(origins[j]);
            continue;
        }
        t->sandboxes[t->n_sandboxes++] =
            (struct vmm_tree_sandbox){.row = rows[j], .from_snapshot = origins[j]};
    }
}

int vmm_snapshot_tree(struct vmm *vmm, const char *sandbox, vmm_snapshot_tree_cb cb, void *data,
                      struct wr_error **err)
{
    struct store_sandbox self = {0};
    if (store_sandbox_get(vmm->store, sandbox, &self, err) < 0)
        return -(*err)->status;
    struct store_snapshot *snaps = NULL;
    struct store_sandbox *rows = NULL;
    size_t ns = 0, nb = 0;
    if (store_snapshot_list(vmm->store, NULL, &snaps, &ns, err) < 0 ||
        store_sandbox_list(vmm->store, &rows, &nb, err) < 0) {
        for (size_t i = 0; i < ns; i++)
            store_snapshot_clear(&snaps[i]);
        free(snaps);
        store_sandbox_clear(&self);
        return -(*err)->status;
    }
    _cleanup_free_ char *root = layer_dir(vmm, "");
    const char *prefix = root; /* "<state>/layers/snap/" */
    char **parents = wr_calloc(ns + 1, sizeof(char *));
    char **origins = wr_calloc(nb + 1, sizeof(char *));
    struct edge *edges = wr_calloc(2 * ns + nb + 1, sizeof(*edges));
    bool *in = wr_calloc(ns + nb + 1, sizeof(bool));
    size_t n_edges = 0;
    for (size_t i = 0; i < ns; i++) {
        parents[i] = snapshot_parent(&snaps[i], prefix);
        ssize_t k = find_snapshot(snaps, ns, parents[i]);
        if (k >= 0)
            edges[n_edges++] = (struct edge){i, (size_t)k};
        for (size_t j = 0; j < nb; j++)
            if (snaps[i].sandbox_id && !strcmp(snaps[i].sandbox_id, rows[j].id))
                edges[n_edges++] = (struct edge){i, ns + j};
    }
    for (size_t j = 0; j < nb; j++) {
        in[ns + j] = !strcmp(rows[j].id, self.id);
        if (rows[j].pool) /* a warm pool's sandbox belongs to no family yet */
            continue;
        origins[j] = sandbox_origin(&rows[j], snaps, ns, prefix);
        ssize_t k = find_snapshot(snaps, ns, origins[j]);
        if (k >= 0)
            edges[n_edges++] = (struct edge){(size_t)k, ns + j};
    }
    spread(in, edges, n_edges);
    struct tree_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct tree_op){.vmm = vmm, .cb = cb, .data = data};
    collect(op, snaps, ns, parents, rows, nb, origins, in);
    free(snaps);
    free(rows);
    free(parents);
    free(origins);
    free(edges);
    free(in);
    store_sandbox_clear(&self);
    op->work.data = op;
    uv_queue_work(vmm->loop, &op->work, tree_work, tree_after_work);
    return 0;
}
