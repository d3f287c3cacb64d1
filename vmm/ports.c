/* A server inside a sandbox, reached from the host (vmm_port_connect, see vmm.h): on the
 * jail, the sandbox's own loopback, joined from a thread of its own in the sandbox's
 * network namespace; on a VM, a forward on QEMU's user network (the backend's
 * port_forward) into the guest, reached the same way in QEMU's namespace. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ready.h"
#include "spec.h"
#include "state.h"

struct port_op {
    struct vmm *vmm;
    struct store_sandbox row;
    struct spec_storage spec;
    uint16_t port;
    vmm_port_cb cb;
    void *data;
    int fd;
    struct wr_error *err;
    uv_work_t work;
};

struct ns_connect {
    int ns_fd;
    uint16_t port;
    int fd, error;
    const char *step;
};

/* setns changes only the calling thread: a thread of its own joins, connects, ends. */
static void *connect_in_ns(void *arg)
{
    struct ns_connect *c = arg;
    c->fd = -1;
    if (setns(c->ns_fd, CLONE_NEWNET) < 0) {
        c->error = errno, c->step = "joining the sandbox's network namespace";
        return NULL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(c->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        c->error = errno, c->step = "connecting";
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    c->fd = fd;
    return NULL;
}

static void port_work(uv_work_t *w)
{
    struct port_op *op = w->data;
    uint16_t port = op->port;
    const struct vmm_backend_ops *ops = op->spec.ops;
    if (ops->port_forward &&
        ops->port_forward(&op->spec.spec, op->row.pid, op->port, &port, &op->err) < 0)
        return;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)op->row.pid);
    struct ns_connect c = {.ns_fd = open(path, O_RDONLY | O_CLOEXEC), .port = port};
    if (c.ns_fd < 0) {
        wr_error_set_errno(&op->err, errno, "opening %s", path);
        return;
    }
    pthread_t t;
    int r = pthread_create(&t, NULL, connect_in_ns, &c);
    if (r == 0)
        pthread_join(t, NULL);
    close(c.ns_fd);
    if (r != 0)
        wr_error_set_errno(&op->err, r, "starting a thread");
    else if (c.fd < 0 && c.error == ECONNREFUSED)
        wr_error_set(&op->err, ECONNREFUSED, "nothing listens on port %u in sandbox '%s'", op->port,
                     op->row.name);
    else if (c.fd < 0)
        wr_error_set_errno(&op->err, c.error, "port %u of sandbox '%s': %s", op->port, op->row.name,
                           c.step);
    op->fd = c.fd;
}

static void port_done(uv_work_t *w, int status)
{
    struct port_op *op = w->data;
    if (status < 0 && !op->err)
        wr_error_set(&op->err, ECANCELED, "cancelled");
    op->cb(op->data, op->err ? -1 : op->fd, op->err);
    store_sandbox_clear(&op->row);
    vmm__spec_clear(&op->spec);
    free(op);
}

/* The sandbox is running (a paused one was resumed): its namespace can be joined. */
static void ready_for_port(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct port_op *op = data;
    if (!conn) {
        op->cb(op->data, -1, err);
        store_sandbox_clear(&op->row);
        vmm__spec_clear(&op->spec);
        free(op);
        return;
    }
    op->work.data = op;
    uv_queue_work(op->vmm->loop, &op->work, port_work, port_done);
}

int vmm_port_connect(struct vmm *vmm, const char *id_or_name, uint16_t port, vmm_port_cb cb,
                     void *data, struct wr_error **err)
{
    if (port == 0)
        return wr_error_set(err, EINVAL, "a port is 1 to 65535");
    struct port_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct port_op){.vmm = vmm, .port = port, .cb = cb, .data = data, .fd = -1};
    int r = vmm__sandbox_running(vmm, id_or_name, &op->row, err);
    if (r == 0 && (r = vmm__spec_build(vmm, &op->row, &op->spec, err)) < 0)
        store_sandbox_clear(&op->row);
    if (r < 0) {
        free(op);
        return r;
    }
    vmm__with_conn(vmm, &op->row, 30000, ready_for_port, op);
    return 0;
}
