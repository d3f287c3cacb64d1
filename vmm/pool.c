/* Warm pools (--pool IMAGE=N): N sandboxes of an image kept started, with an empty
 * workspace and the plain hostname "sandbox", waiting for a create.
 *
 * A pool's sandbox is an ordinary row of the store with `pool` set to its pool's key
 * ("<backend>:<image>"); the store hides such rows from lists and name lookups. A create
 * that a pool can serve (same image, the pool's cpus, memory and network) claims one:
 *
 *   1. thread pool: the repository's checkout layer, as a fresh create makes it;
 *   2. loop: store_pool_claim gives the row the create's name, repo, env and ttl, in one
 *      UPDATE that only one process can win;
 *   3. thread pool: git's seed in the workspace upper, then the backend's attach op mounts
 *      the workspace into the running machine and renames it;
 *   4. loop, VMs only: guest-init binds the workspace on /workspace and takes the name.
 *
 * A claim that loses the race, or whose sandbox turns out dead or cannot be attached,
 * falls back to a fresh create: the client gets its sandbox either way. Refills run one
 * at a time per pool, after every claim and on the reaper's tick, with a growing delay
 * after failures. Pooled VMs hand their memory back like any idle VM (vmm/reclaim.c). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "pool.h"
#include "ready.h"
#include "reclaim.h"
#include "sandbox.h"
#include "spec.h"
#include "state.h"
#include "util/metrics.h"
#include "vmm/git/checkout.h"
#include "vmm/images/images.h"

#define POOL_SIZE_MAX 256
#define ATTACH_TIMEOUT_MS 30000
#define RETRY_MIN_S 5
#define RETRY_MAX_S 300

struct pool {
    struct vmm *vmm;
    char *image; /* normalized image name */
    char *key;   /* "<backend>:<image>", the rows' pool column */
    unsigned size;
    char **ready; /* ids of started sandboxes, oldest first */
    size_t n_ready;
    bool filling;
    unsigned failures;
    int64_t retry_at;
    char *error; /* the last refill's failure, cleared by a success */
    int lock_fd; /* <state>/pools/<key>.lock, flock'ed while this process keeps the pool */
    bool owner;  /* false: another warren on this state directory keeps it */
    struct pool *next;
};

static void ready_remove(struct pool *p, size_t i)
{
    free(p->ready[i]);
    memmove(&p->ready[i], &p->ready[i + 1], (p->n_ready - i) * sizeof(char *));
    p->n_ready--;
}

static void ready_push(struct pool *p, char *id, bool front)
{
    p->ready = wr_realloc(p->ready, (p->n_ready + 2) * sizeof(char *));
    if (front) {
        memmove(&p->ready[1], &p->ready[0], (p->n_ready + 1) * sizeof(char *));
        p->ready[0] = id;
    } else {
        p->ready[p->n_ready] = id;
    }
    p->ready[++p->n_ready] = NULL;
}

static void destroyed(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    char *id = data;
    if (err)
        log_warning("removing pooled sandbox %s: %s", id, err->msg);
    wr_error_free(err);
    free(id);
}

static void destroy_pooled(struct vmm *vmm, const char *id)
{
    struct wr_error *err = NULL;
    char *copy = wr_strdup(id);
    if (vmm_sandbox_destroy(vmm, id, destroyed, copy, &err) < 0)
        destroyed(copy, NULL, err);
}

/* ---- refill ----------------------------------------------------------------------------- */

static void fill(struct pool *p);

static void filled(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct pool *p = data;
    p->filling = false;
    if (err) {
        p->failures++;
        int64_t delay = RETRY_MIN_S << (p->failures < 7 ? p->failures - 1 : 6);
        p->retry_at = wr_unix_time() + (delay < RETRY_MAX_S ? delay : RETRY_MAX_S);
        free(p->error);
        p->error = wr_strdup(err->msg);
        log_warning("warm pool %s: %s (retrying in %llds)", p->key, err->msg,
                    (long long)(p->retry_at - wr_unix_time()));
        wr_error_free(err);
        return;
    }
    p->failures = 0;
    p->retry_at = 0;
    free(TAKE_PTR(p->error));
    ready_push(p, wr_strdup(info->row.id), false);
    fill(p);
}

static void fill(struct pool *p)
{
    if (!p->owner || p->filling || p->n_ready >= p->size || wr_unix_time() < p->retry_at)
        return;
    struct vmm *vmm = p->vmm;
    struct vmm_create_request req = {.image = p->image};
    struct store_sandbox row;
    struct wr_error *err = NULL;
    if (vmm__row_for_request(vmm, &req, &row, &err) < 0) {
        store_sandbox_clear(&row);
        p->filling = true;
        filled(p, NULL, err);
        return;
    }
    free(row.name);
    row.name = wr_asprintf(".pool-%s", row.id); /* no client can pick a name with a dot */
    row.pool = wr_strdup(p->key);
    p->filling = true;
    if (vmm__create_from_row(vmm, &row, filled, p, &err) < 0)
        filled(p, NULL, err);
}

/* The reaper's tick: drops what another process claimed, removes what died, lets idle
 * VMs hand memory back, and refills. */
void vmm__pools_tick(struct vmm *vmm)
{
    for (struct pool *p = vmm->pools; p; p = p->next) {
        for (size_t i = 0; i < p->n_ready;) {
            struct store_sandbox row = {0};
            if (store_sandbox_get(vmm->store, p->ready[i], &row, NULL) < 0 || !row.pool) {
                ready_remove(p, i); /* claimed by another warren on this state directory */
            } else if (vmm__refresh_state(vmm, &row), strcmp(row.state, "running") != 0) {
                log_warning("warm pool %s: sandbox %s is %s; replacing it", p->key, row.id,
                            row.state);
                destroy_pooled(vmm, row.id);
                ready_remove(p, i);
            } else {
                vmm__reclaim_idle(vmm, &row);
                i++;
            }
            store_sandbox_clear(&row);
        }
        fill(p);
    }
}

/* ---- claim -------------------------------------------------------------------------------- */

struct claim_op {
    struct vmm *vmm;
    struct pool *pool;
    vmm_sandbox_cb cb;
    void *data;
    struct store_sandbox want; /* the create's row; its id is used if the claim falls back */
    char *pooled_id;
    struct store_sandbox row; /* the claimed row */
    struct spec_storage spec;
    char *guest_dir;
    struct wr_error *err; /* set on the thread pool */
    uv_work_t work;
};

static void claim_free(struct claim_op *op)
{
    store_sandbox_clear(&op->want);
    store_sandbox_clear(&op->row);
    vmm__spec_clear(&op->spec);
    free(op->pooled_id);
    free(op->guest_dir);
    wr_error_free(op->err);
    free(op);
}

/* The pooled sandbox could not be used: a fresh create serves the call. */
static void fall_back(struct claim_op *op, struct wr_error *why)
{
    log_warning("warm pool %s: %s; creating sandbox '%s' afresh", op->pool->key, why->msg,
                op->want.name);
    wr_error_free(why);
    struct wr_error *err = NULL;
    if (vmm__create_from_row(op->vmm, &op->want, op->cb, op->data, &err) < 0)
        op->cb(op->data, NULL, err);
    fill(op->pool);
    claim_free(op);
}

/* After the claim in the store the sandbox is the client's; one that cannot take its
 * workspace is destroyed and a fresh one made under the same name. */
static void broken_destroyed(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct claim_op *op = data;
    struct wr_error *why = TAKE_PTR(op->err);
    if (err) {
        log_warning("removing pooled sandbox %s: %s", op->pooled_id, err->msg);
        wr_error_free(err);
    }
    fall_back(op, why);
}

static void claim_broken(struct claim_op *op, struct wr_error *why)
{
    wr_error_wrap(&why, "attaching pooled sandbox %s", op->pooled_id);
    op->err = why;
    struct wr_error *err = NULL;
    if (vmm_sandbox_destroy(op->vmm, op->pooled_id, broken_destroyed, op, &err) < 0)
        broken_destroyed(op, NULL, err);
}

static void claimed(struct claim_op *op)
{
    store_event(op->vmm->store, op->row.id, "created", op->row.name, NULL);
    struct vmm_sandbox_info info = {.row = op->row};
    info.disk_used_bytes = vmm__disk_used(op->vmm, &op->row);
    op->cb(op->data, &info, NULL);
    fill(op->pool);
    claim_free(op);
}

static void guest_attached(void *data, struct wr_error *err)
{
    struct claim_op *op = data;
    if (err)
        claim_broken(op, err);
    else
        claimed(op);
}

static void guest_connected(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct claim_op *op = data;
    if (err) {
        claim_broken(op, err);
        return;
    }
    if (agent_attach(conn, op->guest_dir, op->row.name, guest_attached, op, &err) < 0)
        claim_broken(op, err);
}

static void attach_work(uv_work_t *w)
{
    struct claim_op *op = w->data;
    if (vmm__spec_build(op->vmm, &op->row, &op->spec, &op->err) < 0)
        return;
    if (op->row.commit_id && vmm__prepare_git(&op->row, &op->spec, &op->err) < 0)
        return;
    op->spec.ops->attach(&op->spec.spec, op->row.pid, &op->guest_dir, &op->err);
}

static void attach_done(uv_work_t *w, int status)
{
    struct claim_op *op = w->data;
    struct wr_error *err = TAKE_PTR(op->err);
    if (err)
        claim_broken(op, err);
    else if (op->guest_dir)
        vmm__with_conn(op->vmm, &op->row, ATTACH_TIMEOUT_MS, guest_connected, op);
    else
        claimed(op);
}

static void checkout_work(uv_work_t *w)
{
    struct claim_op *op = w->data;
    struct store_sandbox *want = &op->want;
    if (want->repo && layers_workspace_from_repo(op->vmm->state_dir, want->repo, want->ref,
                                                 &want->ws_lower, &want->commit_id, &op->err) < 0)
        return;
}

static void checkout_done(uv_work_t *w, int status)
{
    struct claim_op *op = w->data;
    struct vmm *vmm = op->vmm;
    struct wr_error *err = TAKE_PTR(op->err);
    if (err) {
        /* The create's own fault (a bad repo or ref): the pooled sandbox goes back. */
        ready_push(op->pool, TAKE_PTR(op->pooled_id), true);
        wr_error_wrap(&err, "creating sandbox '%s'", op->want.name);
        wr_metric_add(&wr_metric_create_failures, op->want.backend, NULL, 1);
        op->cb(op->data, NULL, err);
        claim_free(op);
        return;
    }
    /* The claim: the pooled row takes the create's fields. */
    char *fresh_id = op->want.id;
    op->want.id = op->pooled_id;
    op->want.created_at = op->want.last_used_at = wr_unix_time();
    int r = store_pool_claim(vmm->store, &op->want, &err);
    op->want.id = fresh_id;
    if (r < 0 && err->status == EEXIST) {
        ready_push(op->pool, TAKE_PTR(op->pooled_id), true);
        wr_error_wrap(&err, "creating sandbox '%s'", op->want.name);
        wr_metric_add(&wr_metric_create_failures, op->want.backend, NULL, 1);
        op->cb(op->data, NULL, err);
        claim_free(op);
        return;
    }
    if (r < 0) {
        fall_back(op, err); /* another warren claimed it first */
        return;
    }
    if (store_sandbox_get(vmm->store, op->pooled_id, &op->row, &err) < 0) {
        claim_broken(op, err);
        return;
    }
    op->work.data = op;
    uv_queue_work(vmm->loop, &op->work, attach_work, attach_done);
}

/* A ready sandbox of a pool that serves want, taken off the pool's list; NULL when none. */
static struct pool *take_ready(struct vmm *vmm, const struct store_sandbox *want, char **ret_id)
{
    for (struct pool *p = vmm->pools; p; p = p->next) {
        if (strcmp(p->image, want->image) != 0)
            continue;
        while (p->n_ready > 0) {
            struct store_sandbox row = {0};
            char *id = TAKE_PTR(p->ready[0]);
            ready_remove(p, 0);
            bool usable = store_sandbox_get(vmm->store, id, &row, NULL) == 0 && row.pool &&
                          (vmm__refresh_state(vmm, &row), !strcmp(row.state, "running"));
            bool fits = usable && row.cpus == want->cpus && row.memory_mib == want->memory_mib &&
                        row.disk_mib == want->disk_mib && row.network == want->network &&
                        want->network == VMM_NET_NONE;
            if (usable && !fits) {
                ready_push(p, id, true);
                store_sandbox_clear(&row);
                return NULL; /* the pool's sandboxes are all alike: none fits */
            }
            if (row.pool && !usable)
                destroy_pooled(vmm, id);
            store_sandbox_clear(&row);
            if (usable) {
                *ret_id = id;
                return p;
            }
            free(id);
        }
        fill(p);
    }
    return NULL;
}

int vmm_sandbox_create(struct vmm *vmm, const struct vmm_create_request *req, vmm_sandbox_cb cb,
                       void *data, struct wr_error **err)
{
    struct store_sandbox want;
    if (vmm__row_for_request(vmm, req, &want, err) < 0) {
        store_sandbox_clear(&want);
        wr_metric_add(&wr_metric_create_failures, vmm->backend->name, NULL, 1);
        return -(*err)->status;
    }
    char *pooled_id = NULL;
    struct store_sandbox other;
    struct pool *p = NULL;
    if (store_sandbox_get(vmm->store, want.name, &other, NULL) == 0)
        store_sandbox_clear(&other); /* vmm__create_from_row says so */
    else
        p = take_ready(vmm, &want, &pooled_id);
    if (!p) {
        int r = vmm__create_from_row(vmm, &want, cb, data, err);
        if (r < 0) /* refused before any work (a taken name); later failures count there */
            wr_metric_add(&wr_metric_create_failures, vmm->backend->name, NULL, 1);
        return r;
    }
    struct claim_op *op = wr_calloc(1, sizeof(*op));
    op->vmm = vmm;
    op->pool = p;
    op->cb = cb;
    op->data = data;
    op->want = want;
    op->pooled_id = pooled_id;
    op->work.data = op;
    uv_queue_work(vmm->loop, &op->work, checkout_work, checkout_done);
    return 0;
}

/* ---- configuration and listing ------------------------------------------------------------ */

static void pool_free(struct pool *p);

/* One process keeps a pool (adopts, fills, drains it): the one that holds its lock. */
static int lock_pool(struct vmm *vmm, struct pool *p, struct wr_error **err)
{
    _cleanup_free_ char *dir = wr_path_join(vmm->state_dir, "pools");
    int r = wr_mkdir_p(dir, 0700);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating %s", dir);
    _cleanup_free_ char *name = wr_strdup(p->key);
    for (char *c = name; *c; c++)
        if (*c == '/' || *c == ':')
            *c = '_';
    _cleanup_free_ char *path = wr_asprintf("%s/%s.lock", dir, name);
    p->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (p->lock_fd < 0)
        return wr_error_set_errno(err, errno, "opening %s", path);
    p->owner = flock(p->lock_fd, LOCK_EX | LOCK_NB) == 0;
    if (!p->owner && errno != EWOULDBLOCK)
        return wr_error_set_errno(err, errno, "locking %s", path);
    return 0;
}

static int parse_pool(struct vmm *vmm, const char *spec, struct pool **ret, struct wr_error **err)
{
    const char *eq = strrchr(spec, '=');
    char *end = NULL;
    unsigned long n = eq ? strtoul(eq + 1, &end, 10) : 0;
    if (!eq || eq == spec || !eq[1] || *end || n > POOL_SIZE_MAX)
        return wr_error_set(err, EINVAL,
                            "--pool expects IMAGE=N with N from 0 to %d (for example host=4), "
                            "got '%.200s'",
                            POOL_SIZE_MAX, spec);
    _cleanup_free_ char *image = wr_strndup(spec, (size_t)(eq - spec));
    struct pool *p = wr_calloc(1, sizeof(*p));
    p->vmm = vmm;
    if (vmm__image_name(vmm, image, &p->image, err) < 0) {
        free(p);
        return wr_error_wrap(err, "--pool %.200s", spec);
    }
    p->key = wr_asprintf("%s:%s", vmm->backend->name, p->image);
    p->size = (unsigned)n;
    p->ready = wr_calloc(1, sizeof(char *));
    p->lock_fd = -1;
    *ret = p;
    return 0;
}

/* The rows a pool left in the store (an earlier run of warren): running ones are ready,
 * the rest (and any beyond the pool's size) are removed. */
static void adopt(struct pool *p)
{
    struct vmm *vmm = p->vmm;
    struct store_sandbox *rows;
    size_t n;
    struct wr_error *err = NULL;
    if (store_pool_list(vmm->store, p->key, &rows, &n, &err) < 0) {
        log_warning("warm pool %s: %s", p->key, err->msg);
        wr_error_free(err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        vmm__refresh_state(vmm, &rows[i]);
        /* This process holds the pool's lock: a row still "creating" is a refill that the
         * last owner left midway (it stopped during a boot). */
        if (!strcmp(rows[i].state, "running") && p->n_ready < p->size)
            ready_push(p, wr_strdup(rows[i].id), false);
        else
            destroy_pooled(vmm, rows[i].id);
        store_sandbox_clear(&rows[i]);
    }
    free(rows);
}

int vmm__pools_open(struct vmm *vmm, const char *const *specs, struct wr_error **err)
{
    struct pool **tail = &vmm->pools;
    for (size_t i = 0; specs && specs[i]; i++) {
        if (!vmm->backend->attach)
            return wr_error_set(err, ENOTSUP, "--pool: the %s backend keeps no warm pools",
                                vmm->backend->name);
        if (!vmm->backend->vm && geteuid() != 0)
            return wr_error_set(err, EPERM,
                                "--pool: warm pools of jails need warren to run as root (a "
                                "claimed jail's workspace is mounted into it)");
        struct pool *p = NULL;
        if (parse_pool(vmm, specs[i], &p, err) < 0)
            return -(*err)->status;
        for (struct pool *q = vmm->pools; q; q = q->next)
            if (!strcmp(q->key, p->key)) {
                wr_error_set(err, EINVAL, "--pool %s is given twice", p->image);
                pool_free(p);
                return -EINVAL;
            }
        *tail = p;
        tail = &p->next;
    }
    for (struct pool *p = vmm->pools; p; p = p->next) {
        if (lock_pool(vmm, p, err) < 0)
            return -(*err)->status;
        if (!p->owner) {
            log_warning("warm pool %s is kept by another warren process on this state "
                        "directory; this one leaves it alone",
                        p->key);
            continue;
        }
        adopt(p);
        fill(p);
    }
    return 0;
}

static void pool_free(struct pool *p)
{
    if (p->lock_fd >= 0)
        close(p->lock_fd);
    wr_strv_free(p->ready);
    free(p->image);
    free(p->key);
    free(p->error);
    free(p);
}

void vmm__pools_close(struct vmm *vmm)
{
    while (vmm->pools) {
        struct pool *p = vmm->pools;
        vmm->pools = p->next;
        pool_free(p);
    }
}

int vmm_pool_list(struct vmm *vmm, struct vmm_pool_info **ret, size_t *ret_n)
{
    size_t n = 0;
    for (struct pool *p = vmm->pools; p; p = p->next)
        n++;
    struct vmm_pool_info *v = wr_calloc(n ? n : 1, sizeof(*v));
    size_t i = 0;
    for (struct pool *p = vmm->pools; p; p = p->next, i++)
        v[i] = (struct vmm_pool_info){.image = p->image,
                                      .backend = vmm->backend->name,
                                      .size = p->size,
                                      .ready = p->n_ready,
                                      .filling = p->filling,
                                      .error = p->owner ? p->error
                                                        : "kept by another warren process "
                                                          "on this state directory"};
    *ret = v;
    *ret_n = n;
    return 0;
}
