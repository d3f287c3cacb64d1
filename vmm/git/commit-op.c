/* sandbox_git_commit in the vmm: find the sandbox, flush its writes, then build the commit
 * on the thread pool (vmm/git/commit.c). */
#include <string.h>

#include "commit.h"
#include "vmm/ready.h"
#include "vmm/spec.h"
#include "vmm/state.h"

struct commit_op {
    struct vmm *vmm;
    struct store_sandbox row;
    char *branch, *message, *author_name, *author_email;
    char **paths;
    char **uppers; /* bottom first: snapshot layers, then the upper */
    struct gitcommit_result result;
    struct wr_error *err;
    vmm_git_commit_cb cb;
    void *data;
    uv_work_t work;
};

static void commit_op_free(struct commit_op *op)
{
    store_sandbox_clear(&op->row);
    wr_strv_free(op->uppers);
    free(op->branch);
    free(op->message);
    free(op->author_name);
    free(op->author_email);
    wr_strv_free(op->paths);
    wr_error_free(op->err);
    free(op);
}

static void commit_work(uv_work_t *w)
{
    struct commit_op *op = w->data;
    struct gitcommit_request req = {
        .repo = op->row.repo,
        .base_commit = op->row.commit_id,
        .uppers = (const char *const *)op->uppers,
        .branch = op->branch,
        .message = op->message,
        .author_name = op->author_name,
        .author_email = op->author_email,
        .paths = (const char *const *)op->paths,
    };
    gitcommit_create(&req, &op->result, &op->err);
}

static void commit_done(uv_work_t *w, int status)
{
    struct commit_op *op = w->data;
    if (op->err) {
        wr_error_wrap(&op->err, "committing sandbox '%s' to %s", op->row.name, op->branch);
        op->cb(op->data, NULL, TAKE_PTR(op->err));
    } else {
        _cleanup_free_ char *detail = wr_asprintf("%s %s", op->branch, op->result.commit);
        store_event(op->vmm->store, op->row.id, "git-commit", detail, NULL);
        struct vmm_git_commit_result r = {
            .commit = op->result.commit,
            .parent = op->result.parent,
            .branch = op->branch,
            .files_changed = op->result.files_changed,
            .insertions = op->result.insertions,
            .deletions = op->result.deletions,
        };
        op->cb(op->data, &r, NULL);
    }
    commit_op_free(op);
}

/* The sandbox's workspace layers above its checkout, bottom first. */
static char **layers_bottom_up(struct vmm *vmm, const struct store_sandbox *row)
{
    _cleanup_free_ char *upper =
        wr_asprintf("%s/sandboxes/%s/workspace/upper", vmm->state_dir, row->id);
    char **top_first = vmm__layer_chain(row->ws_layers, upper);
    size_t n = wr_strv_len((const char *const *)top_first);
    for (size_t i = 0; i < n / 2; i++) {
        char *t = top_first[i];
        top_first[i] = top_first[n - 1 - i];
        top_first[n - 1 - i] = t;
    }
    return top_first;
}

static void start_work(struct commit_op *op)
{
    op->work.data = op;
    uv_queue_work(op->vmm->loop, &op->work, commit_work, commit_done);
}

static void synced(void *data, struct wr_error *err)
{
    /* Not fatal: the jail writes straight into the upper; a VM that cannot sync still has
     * most of its writes there. */
    if (err)
        log_warning("syncing before a commit: %s", err->msg);
    wr_error_free(err);
    start_work(data);
}

static void sync_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    if (conn && agent_sync(conn, synced, data, &err) == 0)
        return;
    synced(data, err);
}

int vmm_sandbox_git_commit(struct vmm *vmm, const char *id_or_name,
                           const struct vmm_git_commit_request *req, vmm_git_commit_cb cb,
                           void *data, struct wr_error **err)
{
    struct commit_op *op = wr_calloc(1, sizeof(*op));
    if (store_sandbox_get(vmm->store, id_or_name, &op->row, err) < 0) {
        commit_op_free(op);
        return -(*err)->status;
    }
    if (!op->row.commit_id) {
        int r = wr_error_set(err, EINVAL,
                             "sandbox '%s' was not created from a git repository "
                             "(create it with repo: a git working tree)",
                             op->row.name);
        commit_op_free(op);
        return r;
    }
    vmm__refresh_state(vmm, &op->row);
    op->vmm = vmm;
    op->cb = cb;
    op->data = data;
    op->uppers = layers_bottom_up(vmm, &op->row);
    op->branch = req->branch ? wr_strdup(req->branch) : wr_asprintf("warren/%s", op->row.name);
    op->message = wr_strdup(req->message);
    op->author_name = req->author_name ? wr_strdup(req->author_name) : NULL;
    op->author_email = req->author_email ? wr_strdup(req->author_email) : NULL;
    op->paths = req->paths ? wr_strv_copy(req->paths) : NULL;
    if (!strcmp(op->row.state, "running"))
        vmm__with_conn(vmm, &op->row, 0, sync_on_conn, op);
    else
        start_work(op);
    return 0;
}
