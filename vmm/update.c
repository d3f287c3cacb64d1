/* sandbox_update: a sandbox's network policy and ttl, changed at once (see vmm.h). */
#include <string.h>

#include "network.h"
#include "ready.h"
#include "state.h"

#define UPDATE_CONN_TIMEOUT_MS 30000

struct update_op {
    struct vmm *vmm;
    struct store_sandbox row;
    struct vmm_net_policy to;
    vmm_sandbox_cb cb;
    void *data;
};

static void update_finish(struct update_op *op, struct wr_error *err)
{
    if (err) {
        wr_error_wrap(&err, "updating sandbox '%s'", op->row.name);
        op->cb(op->data, NULL, err);
    } else {
        struct vmm_sandbox_info info = {.row = op->row};
        op->cb(op->data, &info, NULL);
    }
    store_sandbox_clear(&op->row);
    vmm_net_policy_clear(&op->to);
    free(op);
}

/* The new policy is in force: the row says so from now on. */
static void switched(void *data, struct wr_error *err)
{
    struct update_op *op = data;
    if (err) {
        update_finish(op, err);
        return;
    }
    char *text = op->to.mode == VMM_NET_ALLOW ? vmm_net_policy_to_text(&op->to) : NULL;
    if (store_sandbox_set_network(op->vmm->store, op->row.id, (int)op->to.mode, text, &err) < 0) {
        free(text);
        update_finish(op, err);
        return;
    }
    char *event = vmm_net_policy_to_text(&op->to);
    store_event(op->vmm->store, op->row.id, "network", event, NULL);
    log_info("sandbox '%s': network is now %s", op->row.name, event);
    free(event);
    free(op->row.network_policy);
    op->row.network_policy = text;
    op->row.network = (int)op->to.mode;
    update_finish(op, NULL);
}

static void got_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct update_op *op = data;
    if (!conn) {
        update_finish(op, err);
        return;
    }
    /* A paused sandbox was resumed to take its new settings: its row says so now. */
    struct store_sandbox now = {0};
    if (store_sandbox_get(op->vmm->store, op->row.id, &now, NULL) == 0) {
        free(op->row.state);
        op->row.state = TAKE_PTR(now.state);
        store_sandbox_clear(&now);
    }
    vmm__net_switch(op->vmm, &op->row, conn, &op->to, switched, op);
}

int vmm_sandbox_update(struct vmm *vmm, const char *id_or_name,
                       const struct vmm_update_request *req, vmm_sandbox_cb cb, void *data,
                       struct wr_error **err)
{
    struct update_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct update_op){.vmm = vmm, .cb = cb, .data = data};
    int r = store_sandbox_get(vmm->store, id_or_name, &op->row, err);
    if (r == 0 && op->row.pool)
        r = wr_error_set(err, ENOENT, "no sandbox '%s'", id_or_name);
    if (r == 0 && req->network)
        r = vmm__net_check(op->row.backend, req->network, err);
    if (r < 0) {
        store_sandbox_clear(&op->row);
        free(op);
        return r;
    }
    vmm__refresh_state(vmm, &op->row);
    if (req->set_ttl) {
        /* ttl_seconds counts from creation: "from now" is the time already lived plus it. */
        int64_t ttl =
            req->ttl_seconds > 0 ? wr_unix_time() - op->row.created_at + req->ttl_seconds : 0;
        if ((r = store_sandbox_set_ttl(vmm->store, op->row.id, ttl, err)) < 0) {
            store_sandbox_clear(&op->row);
            free(op);
            return r;
        }
        op->row.ttl_seconds = ttl;
        store_event(vmm->store, op->row.id, "ttl", ttl ? "set" : "cleared", NULL);
    }
    if (!req->network) {
        update_finish(op, NULL);
        return 0;
    }
    vmm_net_policy_copy(&op->to, req->network);
    bool live = !strcmp(op->row.state, "running") || !strcmp(op->row.state, "paused");
    if (!live) {
        /* Stopped: the next boot starts in the new mode. */
        switched(op, NULL);
        return 0;
    }
    vmm__with_conn(vmm, &op->row, UPDATE_CONN_TIMEOUT_MS, got_conn, op);
    return 0;
}
