/* sandbox_diff in the vmm: a running sandbox's writes are flushed (SYNC), then the diff
 * of its workspace layers against its start commit is made on the thread pool
 * (vmm/git/diff.c). Paused and stopped sandboxes are read as their layers are. */
#include <string.h>

#include "diff.h"
#include "layers-op.h"
#include "vmm/ready.h"
#include "vmm/state.h"

struct diff_op {
    struct vmm *vmm;
    struct store_sandbox row;
    char **uppers, **paths;
    struct gitdiff_request req;
    struct gitdiff_result result;
    struct wr_error *err;
    vmm_diff_cb cb;
    void *data;
    uv_work_t work;
};

static void diff_op_free(struct diff_op *op)
{
    store_sandbox_clear(&op->row);
    wr_strv_free(op->uppers);
    wr_strv_free(op->paths);
    gitdiff_result_clear(&op->result);
    wr_error_free(op->err);
    free(op);
}

static void diff_work(uv_work_t *w)
{
    struct diff_op *op = w->data;
    gitdiff_create(&op->req, &op->result, &op->err);
}

static void diff_done(uv_work_t *w, int status)
{
    struct diff_op *op = w->data;
    if (op->err) {
        wr_error_wrap(&op->err, "diffing sandbox '%s'", op->row.name);
        op->cb(op->data, NULL, TAKE_PTR(op->err));
    } else {
        op->cb(op->data, &op->result, NULL);
    }
    diff_op_free(op);
}

static void start_work(struct diff_op *op)
{
    op->work.data = op;
    uv_queue_work(op->vmm->loop, &op->work, diff_work, diff_done);
}

static void synced(void *data, struct wr_error *err)
{
    /* Not fatal: the jail writes straight into the upper; a VM that cannot sync still has
     * most of its writes there. */
    if (err)
        log_warning("syncing before a diff: %s", err->msg);
    wr_error_free(err);
    start_work(data);
}

static void sync_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    if (conn && agent_sync(conn, synced, data, &err) == 0)
        return;
    synced(data, err);
}

int vmm_sandbox_diff(struct vmm *vmm, const char *id_or_name, const struct vmm_diff_request *req,
                     vmm_diff_cb cb, void *data, struct wr_error **err)
{
    for (size_t i = 0; req->paths && req->paths[i]; i++)
        if (vmm_path_check(req->paths[i], err) < 0)
            return -(*err)->status;
    struct diff_op *op = wr_calloc(1, sizeof(*op));
    if (store_sandbox_get(vmm->store, id_or_name, &op->row, err) < 0) {
        diff_op_free(op);
        return -(*err)->status;
    }
    if (!op->row.commit_id || !op->row.repo) {
        int r = wr_error_set(err, EINVAL,
                             "sandbox '%s' was not created from a git repository, so it has no "
                             "start commit to compare with (create it with repo: a git working "
                             "tree)",
                             op->row.name);
        diff_op_free(op);
        return r;
    }
    vmm__refresh_state(vmm, &op->row);
    op->vmm = vmm;
    op->cb = cb;
    op->data = data;
    op->uppers = vmm__git_layers_bottom_up(vmm, &op->row);
    op->paths = req->paths ? wr_strv_copy(req->paths) : NULL;
    op->req = (struct gitdiff_request){
        .repo = op->row.repo,
        .base_commit = op->row.commit_id,
        .uppers = (const char *const *)op->uppers,
        .paths = (const char *const *)op->paths,
        .context_lines = req->context_lines,
        .max_bytes = req->max_bytes,
        .max_files = VMM_DIFF_MAX_FILES,
    };
    if (!strcmp(op->row.state, "running")) {
        vmm__with_conn(vmm, &op->row, 0, sync_on_conn, op);
        return 0;
    }
    if (strcmp(op->row.state, "paused") != 0)
        vmm__git_disks_ready(vmm, &op->row);
    start_work(op);
    return 0;
}
