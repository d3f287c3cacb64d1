/* Liveness: a sandbox the store lists as running whose processes are gone is marked
 * stopped (a jail) or failed (a VM), and operations that need a running sandbox say why
 * they cannot go on. */
#include <signal.h>
#include <string.h>

#include "conn.h"
#include "spec.h"
#include "state.h"
#include "vmm/backends/vmfs.h"

static bool row_alive(const struct store_sandbox *row)
{
    return row->pid > 0 && row->pid_start && wr_process_start_time(row->pid) == row->pid_start;
}

/* A VM whose virtiofsd died has lost its root and workspace: it cannot do useful work any
 * more, so its VMM is stopped and the sandbox reported failed (its files are on the host,
 * intact). */
static bool vm_lost_filesystems(struct vmm *vmm, const struct store_sandbox *row)
{
    if (!vmm__backend_for(vmm, row->backend)->vm)
        return false;
    _cleanup_free_ char *dir = wr_asprintf("%s/sandboxes/%s", vmm->state_dir, row->id);
    if (vmm_vmfs_running(dir))
        return false;
    (void)kill(row->pid, SIGKILL); /* row_alive checked pid and start time: it is ours */
    return true;
}

int vmm__refresh_state(struct vmm *vmm, struct store_sandbox *row)
{
    if (strcmp(row->state, "running") != 0 && strcmp(row->state, "paused") != 0)
        return 0;
    bool alive = row_alive(row);
    bool lost_fs = alive && vm_lost_filesystems(vmm, row);
    if (alive && !lost_fs)
        return 0;
    /* A jail whose processes are gone is simply stopped; a VM whose VMM died crashed. */
    bool vm = vmm__backend_for(vmm, row->backend)->vm;
    const char *state = vm ? "failed" : "stopped";
    const char *why = lost_fs ? "its virtiofsd exited, so the VM lost its filesystems; the VM "
                                "was stopped and its files are kept"
                      : vm    ? "its VMM process exited unexpectedly (see serial.log in the "
                                "sandbox directory); its files are kept"
                              : "its processes exited; its files are kept";
    _cleanup_error_ struct wr_error *e = NULL;
    if (store_sandbox_set_state(vmm->store, row->id, state, 0, 0, why, &e) < 0)
        log_warning("marking sandbox %s %s: %s", row->id, state, e->msg);
    free(row->state);
    row->state = wr_strdup(state);
    free(row->error);
    row->error = wr_strdup(why);
    row->pid = 0;
    row->pid_start = 0;
    vmm__rt_forget(vmm, row->id);
    return 1;
}

int vmm__sandbox_running(struct vmm *vmm, const char *id_or_name, struct store_sandbox *ret,
                         struct wr_error **err)
{
    if (store_sandbox_get(vmm->store, id_or_name, ret, err) < 0)
        return -(*err)->status;
    vmm__refresh_state(vmm, ret);
    if (!strcmp(ret->state, "running") || !strcmp(ret->state, "paused"))
        return 0;
    int r;
    if (!strcmp(ret->state, "stopped"))
        r = wr_error_set(err, ESRCH,
                         "sandbox '%s' is stopped (%s); destroy it with sandbox_destroy and "
                         "create a new one",
                         ret->name, ret->error ? ret->error : "not running");
    else if (!strcmp(ret->state, "creating"))
        r = wr_error_set(err, EAGAIN, "sandbox '%s' is still being created; try again shortly",
                         ret->name);
    else
        r = wr_error_set(err, EIO,
                         "sandbox '%s' is %s (%s); destroy it with sandbox_destroy and create a "
                         "new one",
                         ret->name, ret->state, ret->error ? ret->error : "no reason recorded");
    store_sandbox_clear(ret);
    return r;
}
