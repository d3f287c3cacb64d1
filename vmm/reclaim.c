/* Memory reclaim for idle VM sandboxes. A sandbox idle for idle_reclaim_s drops its page
 * cache (through the agent), reports its memory use, and its balloon is inflated so the
 * guest keeps only what it uses plus headroom; free page reporting then hands freed pages
 * back continuously. The next exec or file call deflates the balloon before it starts, so
 * a command never runs starved; deflate_on_oom guards the guest in between. */
#include <string.h>

#include "conn.h"
#include "reclaim.h"
#include "spec.h"
#include "util/metrics.h"

/* What the guest keeps above its own use: room for a command to start before the next
 * call deflates the balloon. */
#define HEADROOM_MIN (64ull << 20)

struct reclaim_op {
    struct vmm *vmm;
    struct sandbox_rt *rt;
    struct spec_storage spec;
    struct store_sandbox row;
    struct agent_conn *conn;
    uint64_t target;
};

static void reclaim_done(struct reclaim_op *op, struct wr_error *err)
{
    if (err)
        log_warning("reclaiming memory of sandbox '%s': %s", op->row.name, err->msg);
    else if (op->target)
        log_info("sandbox '%s' idle: balloon inflated to %llu MiB", op->row.name,
                 (unsigned long long)(op->target >> 20));
    wr_error_free(err);
    op->rt->reclaiming = false;
    vmm__spec_clear(&op->spec);
    store_sandbox_clear(&op->row);
    free(op);
}

static void balloon_set_done(void *data, struct wr_error *err)
{
    struct reclaim_op *op = data;
    if (!err) {
        op->rt->balloon_bytes = op->target;
        wr_metric_add(&wr_metric_balloon_reclaimed, op->row.backend, NULL, (double)op->target);
    }
    reclaim_done(op, err);
}

/* Balloon size that leaves the guest its used memory plus headroom. */
static uint64_t balloon_target(const struct agent_memstats *m, uint64_t ram)
{
    uint64_t used = m->total > m->available ? m->total - m->available : 0;
    uint64_t headroom = WR_MAX(HEADROOM_MIN, ram / 8);
    uint64_t keep = used + headroom;
    /* The balloon must stay smaller than RAM (Cloud Hypervisor refuses otherwise). */
    return keep < ram ? WR_MIN(ram - keep, ram - HEADROOM_MIN) : 0;
}

static void got_memstats(void *data, const struct agent_memstats *m, struct wr_error *err)
{
    struct reclaim_op *op = data;
    if (err) {
        reclaim_done(op, err);
        return;
    }
    op->target = balloon_target(m, op->spec.spec.memory_bytes);
    if (op->target == 0 || op->rt->touched) {
        op->target = 0; /* too little to gain, or work arrived meanwhile */
        reclaim_done(op, NULL);
        return;
    }
    if (op->spec.ops->balloon_set(op->vmm->loop, &op->spec.spec, op->row.pid, op->target,
                                  balloon_set_done, op, &err) < 0)
        reclaim_done(op, err);
}

static void caches_dropped(void *data, struct wr_error *err)
{
    struct reclaim_op *op = data;
    /* Dropping caches is an optimisation: measure and inflate even when it failed. */
    wr_error_free(err);
    err = NULL;
    if (agent_memstats(op->conn, got_memstats, op, &err) < 0)
        reclaim_done(op, err);
}

static void reclaim_connected(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct reclaim_op *op = data;
    if (!conn) {
        reclaim_done(op, err);
        return;
    }
    op->conn = conn;
    if (agent_drop_caches(conn, caches_dropped, op, &err) < 0)
        reclaim_done(op, err);
}

void vmm__reclaim_idle(struct vmm *vmm, const struct store_sandbox *row)
{
    if (!vmm__backend_for(vmm, row->backend)->balloon_set || vmm->idle_reclaim_s == 0 ||
        strcmp(row->state, "running"))
        return;
    if (wr_unix_time() - row->last_used_at < (int64_t)vmm->idle_reclaim_s)
        return;
    struct sandbox_rt *rt = vmm__rt_get(vmm, row->id, true);
    if (rt->reclaiming || rt->deflating || rt->balloon_bytes > 0)
        return;
    struct reclaim_op *op = wr_calloc(1, sizeof(*op));
    op->vmm = vmm;
    op->rt = rt;
    if (store_sandbox_get(vmm->store, row->id, &op->row, NULL) < 0 ||
        vmm__spec_build(vmm, &op->row, &op->spec, NULL) < 0) {
        store_sandbox_clear(&op->row);
        free(op);
        return;
    }
    /* Work that arrives from here on (vmm__with_conn) cancels the inflation; a mark left
     * from an earlier reclaim does not. */
    rt->reclaiming = true;
    rt->touched = false;
    vmm__conn_get(vmm, rt, 0, reclaim_connected, op);
}

/* ---- deflating before work ------------------------------------------------------- */

struct deflate_op {
    struct sandbox_rt *rt;
    struct spec_storage spec;
    void (*cb)(void *data);
    void *data;
};

static void deflated(void *data, struct wr_error *err)
{
    struct deflate_op *op = data;
    if (err)
        log_warning("deflating the balloon of sandbox %s: %s", op->rt->id, err->msg);
    else
        op->rt->balloon_bytes = 0;
    wr_error_free(err);
    op->rt->deflating = false;
    vmm__spec_clear(&op->spec);
    op->cb(op->data);
    free(op);
}

void vmm__deflate_then(struct vmm *vmm, struct sandbox_rt *rt, const struct store_sandbox *row,
                       void (*cb)(void *data), void *data)
{
    if (rt->balloon_bytes == 0 || !vmm__backend_for(vmm, row->backend)->balloon_set) {
        cb(data);
        return;
    }
    struct deflate_op *op = wr_calloc(1, sizeof(*op));
    op->rt = rt;
    op->cb = cb;
    op->data = data;
    struct wr_error *err = NULL;
    rt->deflating = true;
    if (vmm__spec_build(vmm, row, &op->spec, &err) < 0 ||
        op->spec.ops->balloon_set(vmm->loop, &op->spec.spec, row->pid, 0, deflated, op, &err) < 0)
        deflated(op, err);
}
