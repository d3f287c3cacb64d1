/* Booting a sandbox's machine (for create and for restarting a stopped one), pausing and
 * resuming it. */
#include <string.h>

#include "agent.h"
#include "conn.h"
#include "lifecycle.h"
#include "network.h"
#include "spec.h"
#include "state.h"

/* ---- boot ------------------------------------------------------------------------- */

/* How long a booting VM's agent has to say HELLO. A kernel under TCG on a busy host takes
 * well over the 10 s an agent that already runs gets (3 s on an idle 2-core machine, 20 s
 * and more with the cores shared). */
#define VM_BOOT_AGENT_TIMEOUT_MS 90000

struct boot_op {
    struct vmm *vmm;
    struct store_sandbox *row;
    struct spec_storage *spec;
    vmm_done_cb cb;
    void *data;
};

static void boot_fail(struct boot_op *op, struct wr_error *err)
{
    struct store_sandbox *row = op->row;
    if (row->pid > 0)
        op->spec->ops->stop(&op->spec->spec, row->pid, NULL);
    vmm__rt_forget(op->vmm, row->id);
    row->pid = 0;
    store_sandbox_set_state(op->vmm->store, row->id, "failed", 0, 0, err->msg, NULL);
    store_event(op->vmm->store, row->id, "failed", err->msg, NULL);
    free(row->state);
    row->state = wr_strdup("failed");
    op->cb(op->data, err);
    free(op);
}

static void boot_net_done(void *data, struct wr_error *err)
{
    struct boot_op *op = data;
    struct store_sandbox *row = op->row;
    if (err) {
        boot_fail(op, err);
        return;
    }
    row->pid_start = wr_process_start_time(row->pid);
    if (store_sandbox_set_state(op->vmm->store, row->id, "running", row->pid, row->pid_start, NULL,
                                &err) < 0) {
        boot_fail(op, err);
        return;
    }
    free(row->state);
    row->state = wr_strdup("running");
    free(TAKE_PTR(row->error));
    op->cb(op->data, NULL);
    free(op);
}

/* The agent answers: the network mode's parts the server keeps come next. */
static void boot_connected(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct boot_op *op = data;
    if (!conn) {
        boot_fail(op, err);
        return;
    }
    vmm__net_started(op->vmm, op->row, conn, boot_net_done, op);
}

static void boot_started(void *data, pid_t pid, struct wr_error *err)
{
    struct boot_op *op = data;
    if (err) {
        boot_fail(op, err);
        return;
    }
    op->row->pid = pid;
    vmm__conn_get(op->vmm, vmm__rt_get(op->vmm, op->row->id, true),
                  op->spec->ops->vm ? VM_BOOT_AGENT_TIMEOUT_MS : 0, boot_connected, op);
}

void vmm__boot(struct vmm *vmm, struct store_sandbox *row, struct spec_storage *spec,
               vmm_done_cb cb, void *data)
{
    struct boot_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct boot_op){.vmm = vmm, .row = row, .spec = spec, .cb = cb, .data = data};
    struct wr_error *err = NULL;
    if (spec->ops->start(vmm->loop, &spec->spec, boot_started, op, &err) < 0)
        boot_fail(op, err);
}

/* ---- pause and resume --------------------------------------------------------------- */

struct life_op {
    struct vmm *vmm;
    struct store_sandbox row;
    struct spec_storage spec;
    const char *new_state; /* what the row becomes when the backend is done */
    vmm_sandbox_cb cb;     /* tool callbacks (with the row) ... */
    vmm_done_cb done;      /* ... or internal ones (resume before work) */
    void *data;
    struct wr_error *err; /* from the thread pool */
    uv_work_t work;
};

static void life_op_free(struct life_op *op)
{
    store_sandbox_clear(&op->row);
    vmm__spec_clear(&op->spec);
    wr_error_free(op->err);
    free(op);
}

static void life_finish(struct life_op *op, struct wr_error *err)
{
    if (op->done) {
        op->done(op->data, err);
    } else if (err) {
        op->cb(op->data, NULL, err);
    } else {
        struct vmm_sandbox_info info = {.row = op->row};
        op->cb(op->data, &info, NULL);
    }
    life_op_free(op);
}

static void state_changed(void *data, struct wr_error *err)
{
    struct life_op *op = data;
    if (!err && store_sandbox_set_state(op->vmm->store, op->row.id, op->new_state, op->row.pid,
                                        op->row.pid_start, NULL, &err) == 0) {
        free(op->row.state);
        op->row.state = wr_strdup(op->new_state);
        store_event(op->vmm->store, op->row.id, op->new_state, op->row.name, NULL);
    }
    if (err)
        wr_error_wrap(&err, "%s sandbox '%s'",
                      !strcmp(op->new_state, "paused") ? "pausing" : "resuming", op->row.name);
    life_finish(op, err);
}

/* Runs the backend's pause or resume for op (spec built here). */
static void freeze_or_thaw(struct life_op *op, bool pause)
{
    struct wr_error *err = NULL;
    op->new_state = pause ? "paused" : "running";
    if (vmm__spec_build(op->vmm, &op->row, &op->spec, &err) == 0) {
        int (*fn)(uv_loop_t *, const struct vmm_sandbox_spec *, pid_t, vmm_done_cb, void *,
                  struct wr_error **) = pause ? op->spec.ops->pause : op->spec.ops->resume;
        if (!fn)
            wr_error_set(&err, ENOTSUP, "the %s backend cannot pause sandboxes",
                         op->spec.ops->name);
        else
            fn(op->vmm->loop, &op->spec.spec, op->row.pid, state_changed, op, &err);
    }
    if (err)
        state_changed(op, err);
}

static struct life_op *life_op_new(struct vmm *vmm, const char *id_or_name, struct wr_error **err)
{
    struct life_op *op = wr_calloc(1, sizeof(*op));
    op->vmm = vmm;
    if (store_sandbox_get(vmm->store, id_or_name, &op->row, err) < 0) {
        free(op);
        return NULL;
    }
    vmm__refresh_state(vmm, &op->row);
    return op;
}

int vmm_sandbox_pause(struct vmm *vmm, const char *id_or_name, vmm_sandbox_cb cb, void *data,
                      struct wr_error **err)
{
    struct life_op *op = life_op_new(vmm, id_or_name, err);
    if (!op)
        return -(*err)->status;
    op->cb = cb;
    op->data = data;
    if (!strcmp(op->row.state, "paused")) {
        life_finish(op, NULL); /* already paused: nothing to do */
        return 0;
    }
    if (strcmp(op->row.state, "running") != 0) {
        int r = wr_error_set(err, EINVAL,
                             "sandbox '%s' is %s: only a running sandbox can be "
                             "paused",
                             op->row.name, op->row.state);
        life_op_free(op);
        return r;
    }
    freeze_or_thaw(op, true);
    return 0;
}

void vmm__resume_then(struct vmm *vmm, const struct store_sandbox *row, vmm_done_cb cb, void *data)
{
    struct wr_error *err = NULL;
    struct life_op *op = life_op_new(vmm, row->id, &err);
    if (!op) {
        cb(data, err);
        return;
    }
    op->done = cb;
    op->data = data;
    if (strcmp(op->row.state, "paused") != 0)
        life_finish(op, NULL); /* someone resumed it meanwhile */
    else
        freeze_or_thaw(op, false);
}

/* ---- stopping an idle sandbox --------------------------------------------------------- */

struct stop_op {
    struct vmm *vmm;
    struct store_sandbox row;
    struct spec_storage spec;
    char *reason;
    struct wr_error *err;
    uv_work_t work;
};

static void stop_work(uv_work_t *w)
{
    struct stop_op *op = w->data;
    op->spec.ops->stop(&op->spec.spec, op->row.pid, &op->err);
}

static void stop_after_work(uv_work_t *w, int status)
{
    struct stop_op *op = w->data;
    if (op->err) {
        log_warning("stopping idle sandbox '%s': %s", op->row.name, op->err->msg);
    } else {
        store_sandbox_set_state(op->vmm->store, op->row.id, "stopped", 0, 0, op->reason, NULL);
        store_event(op->vmm->store, op->row.id, "stopped", op->reason, NULL);
        log_info("stopped sandbox '%s': idle", op->row.name);
    }
    store_sandbox_clear(&op->row);
    vmm__spec_clear(&op->spec);
    wr_error_free(op->err);
    free(op->reason);
    free(op);
}

void vmm__stop_idle(struct vmm *vmm, const struct store_sandbox *row, const char *reason)
{
    struct stop_op *op = wr_calloc(1, sizeof(*op));
    op->vmm = vmm;
    op->reason = wr_strdup(reason);
    if (store_sandbox_get(vmm->store, row->id, &op->row, NULL) < 0 ||
        vmm__spec_build(vmm, &op->row, &op->spec, NULL) < 0) {
        store_sandbox_clear(&op->row);
        free(op->reason);
        free(op);
        return;
    }
    vmm__rt_forget(vmm, row->id);
    op->work.data = op;
    uv_queue_work(vmm->loop, &op->work, stop_work, stop_after_work);
}

/* ---- restart (resume of a stopped or failed sandbox) -------------------------------- */

/* Thread pool: readies a stopped sandbox's files to boot again (op->spec built here). */
static void restart_work(uv_work_t *w)
{
    struct life_op *op = w->data;
    /* The disks may be gone from the mount table (a host reboot): set them up again. */
    if (vmm__spec_build(op->vmm, &op->row, &op->spec, &op->err) < 0 ||
        vmm__spec_boot_files(op->vmm, &op->spec, &op->err) < 0 ||
        vmm__spec_disks_ready(op->vmm, &op->spec, false, &op->err) < 0)
        return;
    /* The jail's overlay work directories must be empty to mount again. */
    const char *dirs[] = {op->spec.root_work, op->spec.ws_work};
    for (size_t i = 0; i < WR_ARRAY_SIZE(dirs); i++) {
        int r = wr_rm_rf(dirs[i]);
        if (r == 0)
            r = wr_mkdir_p(dirs[i], 0755);
        if (r < 0) {
            wr_error_set_errno(&op->err, -r, "preparing %s", dirs[i]);
            return;
        }
    }
}

static void restarted(void *data, struct wr_error *err)
{
    struct life_op *op = data;
    if (err)
        wr_error_wrap(&err, "restarting sandbox '%s'", op->row.name);
    else
        store_event(op->vmm->store, op->row.id, "restarted", op->row.name, NULL);
    life_finish(op, err);
}

static void restart_after_work(uv_work_t *w, int status)
{
    struct life_op *op = w->data;
    struct wr_error *err = TAKE_PTR(op->err);
    if (err) {
        restarted(op, err);
        return;
    }
    vmm__rt_forget(op->vmm, op->row.id);
    vmm__boot(op->vmm, &op->row, &op->spec, restarted, op);
}

/* ---- restart of a live sandbox: stop its machine, boot it again on the same files ---- */

/* Thread pool: stops the machine (its processes end; the files stay), then readies the
 * files as for a stopped sandbox. */
static void reboot_work(uv_work_t *w)
{
    struct life_op *op = w->data;
    if (vmm__spec_build(op->vmm, &op->row, &op->spec, &op->err) < 0)
        return;
    int r = op->spec.ops->stop(&op->spec.spec, op->row.pid, &op->err);
    vmm__spec_clear(&op->spec);
    if (r < 0)
        return;
    restart_work(w);
}

static void reboot_after_work(uv_work_t *w, int status)
{
    struct life_op *op = w->data;
    if (!op->err) {
        /* Between here and the agent's answer the row says what is true: not running. */
        op->row.pid = 0;
        store_sandbox_set_state(op->vmm->store, op->row.id, "stopped", 0, 0, "restarting", NULL);
        store_event(op->vmm->store, op->row.id, "stopped", "restart", NULL);
    }
    restart_after_work(w, status);
}

static void reboot_queue(struct life_op *op)
{
    vmm__rt_forget(op->vmm, op->row.id);
    op->work.data = op;
    uv_queue_work(op->vmm->loop, &op->work, reboot_work, reboot_after_work);
}

static void reboot_synced(void *data, struct wr_error *err)
{
    /* Not fatal: stopping the machine flushes what the guest had written. */
    wr_error_free(err);
    reboot_queue(data);
}

static void reboot_sync_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    if (conn && agent_sync(conn, reboot_synced, data, &err) == 0)
        return;
    reboot_synced(data, err);
}

int vmm_sandbox_restart(struct vmm *vmm, const char *id_or_name, vmm_sandbox_cb cb, void *data,
                        struct wr_error **err)
{
    struct life_op *op = life_op_new(vmm, id_or_name, err);
    if (!op)
        return -(*err)->status;
    op->cb = cb;
    op->data = data;
    const char *state = op->row.state;
    if (!strcmp(state, "running")) {
        vmm__conn_get(vmm, vmm__rt_get(vmm, op->row.id, true), 0, reboot_sync_on_conn, op);
    } else if (!strcmp(state, "paused")) {
        reboot_queue(op); /* a frozen machine writes nothing more: no sync needed */
    } else if (!strcmp(state, "stopped") || !strcmp(state, "failed")) {
        op->work.data = op;
        uv_queue_work(vmm->loop, &op->work, restart_work, restart_after_work);
    } else {
        int r =
            wr_error_set(err, EAGAIN, "sandbox '%s' is %s; try again shortly", op->row.name, state);
        life_op_free(op);
        return r;
    }
    return 0;
}

int vmm_sandbox_resume(struct vmm *vmm, const char *id_or_name, vmm_sandbox_cb cb, void *data,
                       struct wr_error **err)
{
    struct life_op *op = life_op_new(vmm, id_or_name, err);
    if (!op)
        return -(*err)->status;
    op->cb = cb;
    op->data = data;
    const char *state = op->row.state;
    if (!strcmp(state, "running")) {
        life_finish(op, NULL);
    } else if (!strcmp(state, "paused")) {
        freeze_or_thaw(op, false);
    } else if (!strcmp(state, "stopped") || !strcmp(state, "failed")) {
        op->work.data = op;
        uv_queue_work(vmm->loop, &op->work, restart_work, restart_after_work);
    } else {
        int r =
            wr_error_set(err, EAGAIN, "sandbox '%s' is %s; try again shortly", op->row.name, state);
        life_op_free(op);
        return r;
    }
    return 0;
}
