/* The per-sandbox runtime record of this process and its agent connection, shared by
 * every operation on the sandbox: the first operation connects, the ones that arrive
 * meanwhile wait for the same connection. */
#include <string.h>

#include "conn.h"
#include "spec.h"
#include "vmm/net/proxy.h"

/* A VM under TCG on a busy host may take well over 10 s to reach guest-init. */
#define AGENT_CONNECT_TIMEOUT_MS 30000

struct conn_waiter {
    vmm_conn_cb cb;
    void *data;
    struct conn_waiter *next;
};

struct sandbox_rt *vmm__rt_get(struct vmm *vmm, const char *id, bool create)
{
    for (struct sandbox_rt *rt = vmm->rts; rt; rt = rt->next)
        if (!strcmp(rt->id, id))
            return rt;
    if (!create)
        return NULL;
    struct sandbox_rt *rt = wr_calloc(1, sizeof(*rt));
    rt->vmm = vmm;
    rt->id = wr_strdup(id);
    rt->next = vmm->rts;
    vmm->rts = rt;
    return rt;
}

/* The agent client leaves a broken connection to its owner: close it here so that the
 * next operation connects again (or finds the sandbox stopped). */
static void rt_conn_closed(void *data)
{
    struct sandbox_rt *rt = data;
    if (rt->conn)
        agent_conn_close(TAKE_PTR(rt->conn));
}

static void rt_connected(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct sandbox_rt *rt = data;
    rt->connecting = false;
    if (conn) {
        rt->conn = conn;
        agent_conn_on_close(conn, rt_conn_closed, rt);
    }
    struct conn_waiter *w = TAKE_PTR(rt->waiters);
    while (w) {
        struct conn_waiter *next = w->next;
        struct wr_error *copy = err ? wr_calloc(1, sizeof(*copy)) : NULL;
        if (copy) {
            copy->status = err->status;
            copy->msg = wr_asprintf("connecting to the sandbox agent: %s", err->msg);
        }
        w->cb(w->data, conn, copy);
        free(w);
        w = next;
    }
    wr_error_free(err);
}

static void connect_agent(struct vmm *vmm, struct sandbox_rt *rt, uint32_t timeout_ms)
{
    struct wr_error *err = NULL;
    struct spec_storage spec = {0};
    struct store_sandbox row;
    timeout_ms = timeout_ms ? timeout_ms : AGENT_CONNECT_TIMEOUT_MS;
    rt->connecting = true;
    int r = store_sandbox_get(vmm->store, rt->id, &row, &err);
    if (r == 0) {
        r = vmm__spec_build(vmm, &row, &spec, &err);
        if (r == 0 && spec.ops->agent_connect)
            r = spec.ops->agent_connect(vmm->loop, &spec.spec, timeout_ms, rt_connected, rt, &err);
        else if (r == 0)
            r = agent_connect_unix(vmm->loop, spec.spec.agent_socket, timeout_ms, rt_connected, rt,
                                   &err);
        vmm__spec_clear(&spec);
        store_sandbox_clear(&row);
    }
    if (r < 0)
        rt_connected(rt, NULL, err);
}

static void add_waiter(struct sandbox_rt *rt, vmm_conn_cb cb, void *data)
{
    struct conn_waiter *w = wr_calloc(1, sizeof(*w));
    w->cb = cb;
    w->data = data;
    w->next = rt->waiters;
    rt->waiters = w;
}

void vmm__conn_get(struct vmm *vmm, struct sandbox_rt *rt, uint32_t timeout_ms, vmm_conn_cb cb,
                   void *data)
{
    if (rt->conn) {
        cb(data, rt->conn, NULL);
        return;
    }
    add_waiter(rt, cb, data);
    if (!rt->connecting)
        connect_agent(vmm, rt, timeout_ms);
}

void vmm__rt_forget(struct vmm *vmm, const char *id)
{
    for (struct sandbox_rt **p = &vmm->rts; *p; p = &(*p)->next) {
        struct sandbox_rt *rt = *p;
        if (strcmp(rt->id, id) != 0)
            continue;
        /* Its listener would keep the sandbox's network namespace alive. */
        if (rt->egress)
            vmm_egress_close(TAKE_PTR(rt->egress));
        if (rt->connecting)
            return; /* rt_connected still needs it; the connection will be dropped later */
        if (rt->reclaiming || rt->deflating) {
            /* A balloon operation still points at rt: keep the small struct. */
            if (rt->conn)
                agent_conn_close(TAKE_PTR(rt->conn));
            return;
        }
        *p = rt->next;
        if (rt->conn)
            agent_conn_close(rt->conn);
        free(rt->id);
        free(rt);
        return;
    }
}
