/* A sandbox's network mode at run time (see network.h). */
#include <cjson/cJSON.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "helper.h"
#include "network.h"
#include "state.h"
#include "vmm/backends/net.h"
#include "vmm/net/proxy.h"

#define APT_PROXY_FILE "/etc/apt/apt.conf.d/90warren-proxy"
#define NETATTACH_TIMEOUT_MS 20000

static bool is_jail(const struct store_sandbox *row)
{
    return !strcmp(row->backend, "jail");
}

static const char *egress_url(const struct store_sandbox *row)
{
    return is_jail(row) ? VMM_EGRESS_URL_JAIL : VMM_EGRESS_URL_VM;
}

char **vmm__net_env(const struct store_sandbox *row)
{
    if (row->network != VMM_NET_ALLOW)
        return NULL;
    const char *url = egress_url(row);
    char **env = wr_calloc(7, sizeof(char *));
    size_t n = 0;
    static const char *const names[] = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(names); i++)
        env[n++] = wr_asprintf("%s=%s", names[i], url);
    env[n++] = wr_strdup("no_proxy=localhost,127.0.0.1,::1");
    env[n++] = wr_strdup("NO_PROXY=localhost,127.0.0.1,::1");
    return env;
}

int vmm__net_check(const char *backend, const struct vmm_net_policy *p, struct wr_error **err)
{
    if (p->mode != VMM_NET_NONE && geteuid() != 0)
        return wr_error_set(err, ENOTSUP,
                            "network: true and allow-lists need warren to run as root (the "
                            "sandbox's network is joined and firewalled from the host's "
                            "namespaces); without root sandboxes have network: false");
    if (p->mode != VMM_NET_NONE && !strcmp(backend, "cloud-hypervisor"))
        return wr_error_set(err, ENOTSUP,
                            "cloud-hypervisor sandboxes have no network yet (no tap device is "
                            "set up): use network: false, or the jail or qemu backend");
    if (p->mode != VMM_NET_NONE && !vmm_net_available(err))
        return wr_error_wrap(err, "network: true and allow-lists cannot run here");
    return 0;
}

/* ---- the proxy ----------------------------------------------------------------------- */

/* Every connection through a sandbox's proxy is an event of the sandbox. */
static void egress_event(void *data, const struct vmm_egress_event *ev)
{
    struct sandbox_rt *rt = data;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "kind", ev->kind);
    cJSON_AddStringToObject(d, "host", ev->host);
    cJSON_AddNumberToObject(d, "port", ev->port);
    if (ev->address)
        cJSON_AddStringToObject(d, "address", ev->address);
    cJSON_AddBoolToObject(d, "allowed", ev->allowed);
    if (ev->reason)
        cJSON_AddStringToObject(d, "reason", ev->reason);
    cJSON_AddNumberToObject(d, "bytes_up", (double)ev->bytes_up);
    cJSON_AddNumberToObject(d, "bytes_down", (double)ev->bytes_down);
    cJSON_AddNumberToObject(d, "duration_ms", (double)ev->duration_ms);
    char *text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    log_debug("sandbox %s: egress %s", rt->id, text);
    (void)store_event(rt->vmm->store, rt->id, ev->allowed ? "egress" : "egress-refused", text,
                      NULL);
    free(text);
}

/* Opens the proxy of an allow-list sandbox, or gives a running one the row's policy. */
static int proxy_open(struct vmm *vmm, const struct store_sandbox *row,
                      const struct vmm_net_policy *policy, struct wr_error **err)
{
    struct sandbox_rt *rt = vmm__rt_get(vmm, row->id, true);
    if (rt->egress) {
        vmm_egress_set_policy(rt->egress, policy);
        return 0;
    }
    if (row->pid <= 1)
        return wr_error_set(err, ESRCH, "sandbox '%s' has no process to reach", row->name);
    return vmm_egress_open(vmm->loop, row->pid, policy, vmm->egress_hosts, egress_event, rt,
                           &rt->egress, err);
}

static void proxy_close(struct vmm *vmm, const char *id)
{
    struct sandbox_rt *rt = vmm__rt_get(vmm, id, false);
    if (rt && rt->egress)
        vmm_egress_close(TAKE_PTR(rt->egress));
}

void vmm__net_reopen(struct vmm *vmm)
{
    struct store_sandbox *rows = NULL;
    size_t n = 0;
    if (store_sandbox_list(vmm->store, &rows, &n, NULL) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct store_sandbox *row = &rows[i];
        if (row->network == VMM_NET_ALLOW && (vmm__refresh_state(vmm, row), true) &&
            (!strcmp(row->state, "running") || !strcmp(row->state, "paused"))) {
            struct vmm_net_policy p;
            struct wr_error *err = NULL;
            if (vmm_net_policy_parse(row->network_policy ? row->network_policy : "",
                                     row->network_policy ? strlen(row->network_policy) : 0, &p,
                                     &err) < 0 ||
                proxy_open(vmm, row, &p, &err) < 0) {
                log_warning("sandbox '%s': its egress proxy: %s", row->name, err->msg);
                wr_error_free(err);
            }
            vmm_net_policy_clear(&p);
        }
        store_sandbox_clear(row);
    }
    free(rows);
}

/* ---- switching ------------------------------------------------------------------------- */

struct net_op {
    struct vmm *vmm;
    struct store_sandbox row; /* before the change */
    struct agent_conn *conn;
    struct vmm_net_policy to;
    vmm_done_cb cb;
    void *data;
    char *text; /* a file being written */
    int step;
};

static void op_step(struct net_op *op);

static void op_finish(struct net_op *op, struct wr_error *err)
{
    op->cb(op->data, err);
    store_sandbox_clear(&op->row);
    vmm_net_policy_clear(&op->to);
    free(op->text);
    free(op);
}

static void file_written(void *data, uint64_t bytes, struct wr_error *err)
{
    struct net_op *op = data;
    /* An image without apt (or /etc/apt) has nothing to point at the proxy. */
    if (err) {
        log_debug("sandbox '%s': network settings: %s", op->row.name, err->msg);
        wr_error_free(err);
    }
    op_step(op);
}

static void write_file(struct net_op *op, const char *path, char *text)
{
    free(op->text);
    op->text = text;
    struct wr_error *err = NULL;
    if (agent_write_file(op->conn, path, op->text, strlen(op->text), 0644, 0, file_written, op,
                         &err) < 0)
        file_written(op, 0, err);
}

static void nat_attached(void *data, pid_t pid, struct wr_error *err)
{
    struct net_op *op = data;
    if (err) {
        op_finish(op, err);
        return;
    }
    log_info("sandbox '%s': NAT attached (slirp4netns %d)", op->row.name, (int)pid);
    op_step(op);
}

/* The steps, in order; each either calls op_step again (maybe later) or finishes. */
static void op_step(struct net_op *op)
{
    struct vmm *vmm = op->vmm;
    const struct store_sandbox *row = &op->row;
    enum vmm_net_mode from = (enum vmm_net_mode)row->network, to = op->to.mode;
    struct wr_error *err = NULL;
    switch (op->step++) {
    case 0: /* NAT off: its slirp4netns goes, and every connection through it */
        if (from == VMM_NET_NAT && to != VMM_NET_NAT) {
            _cleanup_free_ char *dir = wr_asprintf("%s/sandboxes/%s", vmm->state_dir, row->id);
            if (vmm_net_detach(dir, row->pid, &err) < 0) {
                op_finish(op, err);
                return;
            }
        }
        op_step(op);
        return;
    case 1: /* the proxy: opened, given the new list, or closed */
        if (to == VMM_NET_ALLOW) {
            if (proxy_open(vmm, row, &op->to, &err) < 0) {
                op_finish(op, err);
                return;
            }
        } else
            proxy_close(vmm, row->id);
        op_step(op);
        return;
    case 2: /* NAT on */
        if (to == VMM_NET_NAT && from != VMM_NET_NAT) {
            cJSON *arg = cJSON_CreateObject();
            cJSON_AddNumberToObject(arg, "pid", row->pid);
            _cleanup_free_ char *dir = wr_asprintf("%s/sandboxes/%s", vmm->state_dir, row->id);
            cJSON_AddStringToObject(arg, "dir", dir);
            cJSON_AddStringToObject(arg, "id", row->id);
            _cleanup_free_ char *text = cJSON_PrintUnformatted(arg);
            cJSON_Delete(arg);
            if (vmm_helper_run(vmm->loop, "__netattach", text, NETATTACH_TIMEOUT_MS,
                               "the network helper", nat_attached, op, &err) < 0)
                op_finish(op, err);
            return;
        }
        op_step(op);
        return;
    case 3: /* the jail's resolver: slirp4netns' forwarder once there is NAT */
        if (to == VMM_NET_NAT && from != VMM_NET_NAT && is_jail(row)) {
            write_file(op, "/etc/resolv.conf", wr_strdup("nameserver " VMM_NET_DNS "\n"));
            return;
        }
        op_step(op);
        return;
    case 4: /* apt's proxy setting, written in the allow-list mode and neutral otherwise */
        if (to == VMM_NET_ALLOW || from == VMM_NET_ALLOW) {
            char *text = to == VMM_NET_ALLOW
                             ? wr_asprintf("// warren: this sandbox reaches the network "
                                           "through its egress proxy\nAcquire::http::Proxy "
                                           "\"%s\";\nAcquire::https::Proxy \"%s\";\n",
                                           egress_url(row), egress_url(row))
                             : wr_strdup("// warren: no egress proxy in this sandbox's network "
                                         "mode\n");
            write_file(op, APT_PROXY_FILE, text);
            return;
        }
        op_step(op);
        return;
    default:
        op_finish(op, NULL);
    }
}

void vmm__net_switch(struct vmm *vmm, const struct store_sandbox *row, struct agent_conn *conn,
                     const struct vmm_net_policy *to, vmm_done_cb cb, void *data)
{
    struct net_op *op = wr_calloc(1, sizeof(*op));
    op->vmm = vmm;
    op->conn = conn;
    op->cb = cb;
    op->data = data;
    vmm_net_policy_copy(&op->to, to);
    /* The row's strings are copied: the caller's row may go before the steps end. */
    op->row = (struct store_sandbox){
        .id = wr_strdup(row->id),
        .name = wr_strdup(row->name),
        .backend = wr_strdup(row->backend),
        .network = row->network,
        .pid = row->pid,
    };
    op_step(op);
}

void vmm__net_started(struct vmm *vmm, const struct store_sandbox *row, struct agent_conn *conn,
                      vmm_done_cb cb, void *data)
{
    if (row->network != VMM_NET_ALLOW) {
        cb(data, NULL);
        return;
    }
    struct vmm_net_policy p;
    struct wr_error *err = NULL;
    const char *text = row->network_policy ? row->network_policy : "";
    if (vmm_net_policy_parse(text, strlen(text), &p, &err) < 0) {
        cb(data, err);
        return;
    }
    /* From "none" (what a booted sandbox has) to its allow-list. */
    struct store_sandbox from = *row;
    from.network = VMM_NET_NONE;
    vmm__net_switch(vmm, &from, conn, &p, cb, data);
    vmm_net_policy_clear(&p);
}
