/* Images in the vmm: image_pull, image_list, image_delete, and what sandbox_create and
 * the spec need of an image (vmm/images/images.h). The pulling itself is oci.c's, on the
 * thread pool; its progress reaches the loop through a uv_async_t. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"
#include "images.h"
#include "oci.h"

void vmm_image_info_clear(struct vmm_image_info *info)
{
    store_image_clear(&info->row);
    wr_strv_free(info->used_by);
    memset(info, 0, sizeof(*info));
}

static size_t json_array_size(const char *json)
{
    cJSON *a = json ? cJSON_Parse(json) : NULL;
    size_t n = cJSON_IsArray(a) ? (size_t)cJSON_GetArraySize(a) : 0;
    cJSON_Delete(a);
    return n;
}

/* ---- who uses an image ----------------------------------------------------------------- */

/* The image a snapshot's sandboxes start from (its manifest's "image"). */
static bool snapshot_uses(const struct store_snapshot *s, const char *name)
{
    cJSON *m = s->manifest ? cJSON_Parse(s->manifest) : NULL;
    const char *image = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "image"));
    bool uses = image && !strcmp(image, name);
    cJSON_Delete(m);
    return uses;
}

/* "sandbox 'x'" and "snapshot 'y'" for everything built on image name. */
int vmm__templates_with(struct vmm *vmm, const char *key, const char *value, char ***users,
                        size_t *n, struct wr_error **err)
{
    struct store_image *images = NULL;
    size_t count = 0;
    int r = store_image_list(vmm->store, &images, &count, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < count; i++) {
        cJSON *c = images[i].config ? cJSON_Parse(images[i].config) : NULL;
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, key));
        if (v && !strcmp(v, value))
            wr_strv_push(users, n, wr_asprintf("template '%s'", images[i].name));
        cJSON_Delete(c);
        store_image_clear(&images[i]);
    }
    free(images);
    return 0;
}

int vmm__image_users(struct vmm *vmm, const char *name, char ***ret, struct wr_error **err)
{
    struct store_sandbox *rows = NULL;
    struct store_snapshot *snaps = NULL;
    size_t n_rows = 0, n_snaps = 0, n = 0;
    char **users = wr_calloc(1, sizeof(char *));
    int r = store_sandbox_list(vmm->store, &rows, &n_rows, err);
    if (r >= 0)
        r = store_snapshot_list(vmm->store, NULL, &snaps, &n_snaps, err);
    for (size_t i = 0; i < n_rows; i++) {
        if (r >= 0 && !strcmp(rows[i].image, name))
            wr_strv_push(&users, &n, wr_asprintf("sandbox '%s'", rows[i].name));
        store_sandbox_clear(&rows[i]);
    }
    for (size_t i = 0; i < n_snaps; i++) {
        if (r >= 0 && snapshot_uses(&snaps[i], name))
            wr_strv_push(&users, &n, wr_asprintf("snapshot '%s'", snaps[i].name));
        store_snapshot_clear(&snaps[i]);
    }
    free(rows);
    rows = NULL;
    n_rows = 0;
    if (r >= 0)
        r = store_pool_list(vmm->store, NULL, &rows, &n_rows, err);
    bool pooled = false;
    for (size_t i = 0; i < n_rows; i++) {
        pooled |= r >= 0 && !strcmp(rows[i].image, name);
        store_sandbox_clear(&rows[i]);
    }
    if (pooled)
        wr_strv_push(&users, &n, wr_strdup("a warm pool (--pool)"));
    if (r >= 0)
        r = vmm__templates_with(vmm, "from", name, &users, &n, err);
    free(rows);
    free(snaps);
    if (r < 0) {
        wr_strv_free(users);
        return r;
    }
    *ret = users;
    return 0;
}

static int image_info(struct vmm *vmm, struct store_image *row, struct vmm_image_info *ret,
                      struct wr_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (vmm__image_users(vmm, row->name, &ret->used_by, err) < 0)
        return -(*err)->status;
    ret->row = *row;
    memset(row, 0, sizeof(*row));
    ret->layers = json_array_size(ret->row.layers);
    return 0;
}

int vmm_image_list(struct vmm *vmm, struct vmm_image_info **ret, size_t *ret_n,
                   struct wr_error **err)
{
    struct store_image *rows;
    size_t n;
    if (store_image_list(vmm->store, &rows, &n, err) < 0)
        return -(*err)->status;
    struct vmm_image_info *infos = wr_calloc(n + 1, sizeof(*infos));
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        if (r >= 0)
            r = image_info(vmm, &rows[i], &infos[i], err);
        store_image_clear(&rows[i]);
    }
    free(rows);
    if (r < 0) {
        for (size_t i = 0; i < n; i++)
            vmm_image_info_clear(&infos[i]);
        free(infos);
        return r;
    }
    *ret = infos;
    *ret_n = n;
    return 0;
}

/* ---- pulling ------------------------------------------------------------------------------ */

/* A template's config: {"template": <snapshot id>, ...}; NULL when name is no template. */
static char *template_snapshot(const struct store_image *row)
{
    cJSON *c = row->config ? cJSON_Parse(row->config) : NULL;
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "template"));
    char *snapshot = t ? wr_strdup(t) : NULL;
    cJSON_Delete(c);
    return snapshot;
}

int vmm__image_name(struct vmm *vmm, const char *image, char **ret, struct wr_error **err)
{
    if (!image || !strcmp(image, "host")) {
        *ret = wr_strdup("host");
        return 0;
    }
    /* A template is found by its own name, which has no '/' (an image reference, once
     * normalized, always has one). */
    struct store_image row;
    _cleanup_error_ struct wr_error *missing = NULL;
    if (!strchr(image, '/') && store_image_get(vmm->store, image, &row, &missing) == 0) {
        store_image_clear(&row);
        *ret = wr_strdup(image);
        return 0;
    }
    return oci_normalize_ref(image, ret, err);
}

/* Appends the snapshot's root layers (top first) to v; *ret_image: what it was built on. */
static int append_template(struct vmm *vmm, const char *snapshot, char ***v, size_t *n,
                           char **ret_image, struct wr_error **err)
{
    struct store_snapshot snap;
    if (store_snapshot_get(vmm->store, snapshot, &snap, err) < 0)
        return wr_error_wrap(err, "the template's layers");
    cJSON *m = cJSON_Parse(snap.manifest);
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(m, "root"))
    {
        if (cJSON_IsString(l))
            wr_strv_push(v, n, wr_strdup(l->valuestring));
    }
    const char *image = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "image"));
    *ret_image = wr_strdup(image ? image : "host");
    cJSON_Delete(m);
    store_snapshot_clear(&snap);
    return 0;
}

int vmm__image_lowers(struct vmm *vmm, const char *image, char ***ret, char **ret_base,
                      struct wr_error **err)
{
    char **v = wr_calloc(1, sizeof(char *));
    size_t n = 0;
    _cleanup_free_ char *name = wr_strdup(image);
    int r = 0;
    for (int depth = 0; r >= 0; depth++) {
        if (depth > 8) {
            r = wr_error_set(err, ELOOP, "image '%s': templates nest too deeply", image);
            break;
        }
        char *root = NULL;
        if (!strcmp(name, "host")) {
            if ((r = vmm_image_root(vmm->state_dir, "host", &root, err)) >= 0)
                wr_strv_push(&v, &n, root);
            break;
        }
        struct store_image row;
        if ((r = store_image_get(vmm->store, name, &row, err)) < 0) {
            wr_error_set(err, ENOENT,
                         "image '%s' is not in this state directory (pull it with image_pull)",
                         name);
            break;
        }
        _cleanup_free_ char *snapshot = template_snapshot(&row);
        store_image_clear(&row);
        if (snapshot) {
            char *below = NULL;
            r = append_template(vmm, snapshot, &v, &n, &below, err);
            free(name);
            name = below;
            continue;
        }
        _cleanup_strv_ char **layers = NULL;
        if ((r = vmm_image_root(vmm->state_dir, name, &root, err)) < 0)
            break;
        wr_strv_push(&v, &n, root);
        if ((r = vmm__image_layers(vmm, name, &layers, err)) < 0)
            break;
        for (size_t i = 0; layers[i]; i++)
            wr_strv_push(&v, &n, TAKE_PTR(layers[i]));
        break;
    }
    if (r < 0) {
        wr_strv_free(v);
        return r;
    }
    *ret = v;
    *ret_base = TAKE_PTR(name);
    return 0;
}

int vmm__image_ensure(struct vmm *vmm, const char *name, void (*progress)(void *, const char *),
                      void *data, struct wr_error **err)
{
    struct store_image row;
    _cleanup_error_ struct wr_error *missing = NULL;
    if (!strcmp(name, "host") || store_image_get(vmm->store, name, &row, &missing) == 0) {
        if (strcmp(name, "host") != 0)
            store_image_clear(&row);
        return 0;
    }
    struct oci_pull_request req = {
        .state_dir = vmm->state_dir,
        .name = name,
        .insecure_registries = (const char *const *)vmm->insecure_registries,
        .auth_file = vmm->registry_auth,
        .progress = progress,
        .data = data,
    };
    struct oci_image image;
    if (oci_pull(&req, &image, err) < 0)
        return wr_error_wrap(err, "pulling image '%s'", name);
    cJSON *layers = cJSON_CreateStringArray((const char *const *)image.layers,
                                            (int)wr_strv_len((const char *const *)image.layers));
    _cleanup_free_ char *layers_json = cJSON_PrintUnformatted(layers);
    cJSON_Delete(layers);
    struct store_image rec = {
        .name = (char *)name,
        .digest = image.digest,
        .layers = layers_json,
        .config = image.config_json,
        .size_bytes = image.size_bytes,
        .created_at = wr_unix_time(),
    };
    int r = store_image_put(vmm->store, &rec, err);
    oci_image_clear(&image);
    return r;
}

struct pull_op {
    struct vmm *vmm;
    char *name;
    vmm_progress_cb progress;
    vmm_image_cb cb;
    void *data;
    struct wr_error *err;
    uv_work_t work;
    uv_async_t async;
    pthread_mutex_t lock;
    char *message; /* the latest progress line, handed from the worker to the loop */
};

static void pull_progress(void *data, const char *message)
{
    struct pull_op *op = data;
    pthread_mutex_lock(&op->lock);
    free(op->message);
    op->message = wr_strdup(message);
    pthread_mutex_unlock(&op->lock);
    uv_async_send(&op->async);
}

static void progress_on_loop(uv_async_t *a)
{
    struct pull_op *op = a->data;
    pthread_mutex_lock(&op->lock);
    char *message = TAKE_PTR(op->message);
    pthread_mutex_unlock(&op->lock);
    if (message && op->progress)
        op->progress(op->data, message);
    free(message);
}

static void pull_work(uv_work_t *w)
{
    struct pull_op *op = w->data;
    vmm__image_ensure(op->vmm, op->name, pull_progress, op, &op->err);
}

static void pull_op_free(uv_handle_t *h)
{
    struct pull_op *op = h->data;
    pthread_mutex_destroy(&op->lock);
    free(op->message);
    free(op->name);
    wr_error_free(op->err);
    free(op);
}

static void pull_done(uv_work_t *w, int status)
{
    struct pull_op *op = w->data;
    struct store_image row;
    struct vmm_image_info info;
    struct wr_error *err = TAKE_PTR(op->err);
    if (!err && store_image_get(op->vmm->store, op->name, &row, &err) == 0) {
        int r = image_info(op->vmm, &row, &info, &err);
        store_image_clear(&row);
        if (r == 0) {
            store_event(op->vmm->store, NULL, "image-pull", op->name, NULL);
            op->cb(op->data, &info, NULL);
            vmm_image_info_clear(&info);
        }
    }
    if (err)
        op->cb(op->data, NULL, err);
    uv_close((uv_handle_t *)&op->async, pull_op_free);
}

int vmm_image_pull(struct vmm *vmm, const char *ref, vmm_progress_cb progress, vmm_image_cb cb,
                   void *data, struct wr_error **err)
{
    _cleanup_free_ char *name = NULL;
    if (vmm__image_name(vmm, ref, &name, err) < 0)
        return -(*err)->status;
    if (!strcmp(name, "host"))
        return wr_error_set(err, EINVAL,
                            "'host' is the host's own image: there is nothing to pull");
    struct pull_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct pull_op){
        .vmm = vmm, .name = TAKE_PTR(name), .progress = progress, .cb = cb, .data = data};
    pthread_mutex_init(&op->lock, NULL);
    uv_async_init(vmm->loop, &op->async, progress_on_loop);
    op->async.data = op;
    op->work.data = op;
    uv_queue_work(vmm->loop, &op->work, pull_work, pull_done);
    return 0;
}

/* ---- deleting ---------------------------------------------------------------------------- */

struct delete_op {
    struct vmm *vmm;
    struct vmm_image_info info;
    char **keep; /* manifest digests of the images left */
    vmm_image_cb cb;
    void *data;
    uv_work_t work;
};

static void delete_work(uv_work_t *w)
{
    struct delete_op *op = w->data;
    oci_collect_garbage(op->vmm->state_dir, (const char *const *)op->keep);
}

static void delete_done(uv_work_t *w, int status)
{
    struct delete_op *op = w->data;
    store_event(op->vmm->store, NULL, "image-delete", op->info.row.name, NULL);
    op->cb(op->data, &op->info, NULL);
    vmm_image_info_clear(&op->info);
    wr_strv_free(op->keep);
    free(op);
}

static char **remaining_digests(struct vmm *vmm, struct wr_error **err)
{
    struct store_image *rows;
    size_t n;
    if (store_image_list(vmm->store, &rows, &n, err) < 0)
        return NULL;
    char **keep = wr_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        keep[i] = TAKE_PTR(rows[i].digest);
        store_image_clear(&rows[i]);
    }
    free(rows);
    return keep;
}

int vmm_image_delete(struct vmm *vmm, const char *ref, vmm_image_cb cb, void *data,
                     struct wr_error **err)
{
    _cleanup_free_ char *name = NULL;
    if (vmm__image_name(vmm, ref, &name, err) < 0)
        return -(*err)->status;
    if (!strcmp(name, "host"))
        return wr_error_set(err, EINVAL, "the host image cannot be deleted");
    struct store_image row;
    if (store_image_get(vmm->store, name, &row, err) < 0)
        return -(*err)->status;
    struct delete_op *op = wr_calloc(1, sizeof(*op));
    int r = image_info(vmm, &row, &op->info, err);
    store_image_clear(&row);
    if (r == 0 && op->info.used_by[0]) {
        _cleanup_free_ char *users = wr_strv_join((const char *const *)op->info.used_by, ", ");
        r = wr_error_set(err, EBUSY,
                         "image '%s' is in use by %s; destroy them (sandbox_destroy, "
                         "snapshot_delete) first",
                         name, users);
    }
    if (r == 0)
        r = store_image_delete(vmm->store, name, err);
    if (r == 0 && !(op->keep = remaining_digests(vmm, err)))
        r = -(*err)->status;
    if (r < 0) {
        vmm_image_info_clear(&op->info);
        free(op);
        return r;
    }
    op->vmm = vmm;
    op->cb = cb;
    op->data = data;
    op->work.data = op;
    uv_queue_work(vmm->loop, &op->work, delete_work, delete_done);
    return 0;
}

/* ---- what a sandbox's root is made of -------------------------------------------------- */

int vmm__image_layers(struct vmm *vmm, const char *name, char ***ret, struct wr_error **err)
{
    struct store_image row;
    if (store_image_get(vmm->store, name, &row, err) < 0)
        return wr_error_set(err, ENOENT,
                            "image '%s' is not in this state directory (pull it with image_pull)",
                            name);
    cJSON *a = cJSON_Parse(row.layers);
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    char **top_first = wr_calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        const char *digest = cJSON_GetStringValue(cJSON_GetArrayItem(a, i));
        top_first[n - 1 - i] = oci_layer_dir(vmm->state_dir, digest ? digest : "sha256:");
    }
    cJSON_Delete(a);
    store_image_clear(&row);
    *ret = top_first;
    return 0;
}

void vmm__image_exec_config(struct vmm *vmm, const char *name, char ***ret_env, char **ret_workdir,
                            char **ret_user)
{
    *ret_env = wr_calloc(1, sizeof(char *));
    *ret_workdir = NULL;
    *ret_user = NULL;
    struct store_image row;
    _cleanup_error_ struct wr_error *err = NULL;
    if (!strcmp(name, "host") || store_image_get(vmm->store, name, &row, &err) < 0)
        return;
    cJSON *config = cJSON_Parse(row.config);
    const cJSON *e;
    size_t n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(config, "env"))
    {
        if (cJSON_IsString(e))
            wr_strv_push(ret_env, &n, wr_strdup(e->valuestring));
    }
    const char *workdir = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "workdir"));
    if (workdir && workdir[0] == '/')
        *ret_workdir = wr_strdup(workdir);
    const char *user = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "user"));
    if (user && user[0] && strcmp(user, "root") != 0 && strcmp(user, "0") != 0)
        *ret_user = wr_strdup(user);
    cJSON_Delete(config);
    store_image_clear(&row);
}
