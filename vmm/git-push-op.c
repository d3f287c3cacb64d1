/* sandbox_git_push in the vmm: find the sandbox, then push on the thread pool
 * (vmm/gitpush.c). libgit2 1.5 has no network timeout and only gives control back in its
 * callbacks, so a timer on the loop answers the caller when a stalled push overstays; the
 * push itself is told to stop and its thread is released whenever libgit2 returns. */
#include <stdatomic.h>
#include <string.h>

#include "gitpush.h"
#include "vmm-internal.h"

/* How long past the push's own deadline the timer waits for libgit2 to give up by itself
 * (its messages are better than "timed out"). */
#define ANSWER_GRACE_MS 10000

struct push_op {
    struct vmm *vmm;
    struct store_sandbox row;
    char *remote, *branch;
    struct gitpush_result result;
    struct wr_error *err;
    atomic_bool cancel;
    bool answered;
    vmm_git_push_cb cb;
    void *data;
    uv_work_t work;
    uv_timer_t timer;
};

static void push_op_free(struct push_op *op)
{
    store_sandbox_clear(&op->row);
    free(op->remote);
    free(op->branch);
    gitpush_result_clear(&op->result);
    wr_error_free(op->err);
    free(op);
}

static void timer_closed(uv_handle_t *h)
{
    push_op_free(h->data);
}

static void push_work(uv_work_t *w)
{
    struct push_op *op = w->data;
    struct gitpush_request req = {
        .repo = op->row.repo,
        .remote = op->remote,
        .branch = op->branch,
        .timeout_seconds = GITPUSH_TIMEOUT_SECONDS,
        .cancel = &op->cancel,
    };
    gitpush_push(&req, &op->result, &op->err);
}

static void answer_error(struct push_op *op, struct wr_error *err)
{
    op->answered = true;
    wr_error_wrap(&err, "pushing %s of sandbox '%s' to %s", op->branch, op->row.name, op->remote);
    op->cb(op->data, NULL, err);
}

static void answer(struct push_op *op)
{
    if (op->err) {
        answer_error(op, TAKE_PTR(op->err));
        return;
    }
    op->answered = true;
    _cleanup_free_ char *detail =
        wr_asprintf("%s %s %s", op->remote, op->branch, op->result.commit);
    store_event(op->vmm->store, op->row.id, "git-push", detail, NULL);
    struct vmm_git_push_result r = {
        .remote = op->remote,
        .url = op->result.url,
        .branch = op->branch,
        .commit = op->result.commit,
    };
    op->cb(op->data, &r, NULL);
}

static void push_done(uv_work_t *w, int status)
{
    struct push_op *op = w->data;
    if (!op->answered)
        answer(op);
    uv_close((uv_handle_t *)&op->timer, timer_closed);
}

/* Runs on the loop while the worker may still be inside libgit2: it touches neither
 * op->err nor op->result, which the worker owns until push_done. */
static void overstayed(uv_timer_t *t)
{
    struct push_op *op = t->data;
    struct wr_error *err = NULL;
    atomic_store(&op->cancel, true);
    wr_error_set(&err, ETIMEDOUT,
                 "no answer from the remote within %d s (the network or the server stalled)",
                 GITPUSH_TIMEOUT_SECONDS);
    answer_error(op, err);
}

static int load_sandbox(struct vmm *vmm, const char *id_or_name, struct store_sandbox *row,
                        struct wr_error **err)
{
    if (store_sandbox_get(vmm->store, id_or_name, row, err) < 0)
        return -(*err)->status;
    if (!row->repo || !row->commit_id)
        return wr_error_set(err, EINVAL,
                            "sandbox '%s' was not created from a git repository (create it "
                            "with repo: a git working tree)",
                            row->name);
    return 0;
}

int vmm_sandbox_git_push(struct vmm *vmm, const char *id_or_name,
                         const struct vmm_git_push_request *req, vmm_git_push_cb cb, void *data,
                         struct wr_error **err)
{
    struct push_op *op = wr_calloc(1, sizeof(*op));
    if (load_sandbox(vmm, id_or_name, &op->row, err) < 0) {
        push_op_free(op);
        return -(*err)->status;
    }
    op->vmm = vmm;
    op->cb = cb;
    op->data = data;
    op->remote = wr_strdup(req->remote ? req->remote : "origin");
    op->branch = req->branch ? wr_strdup(req->branch) : wr_asprintf("warren/%s", op->row.name);
    atomic_init(&op->cancel, false);
    op->work.data = op;
    op->timer.data = op;
    uv_timer_init(vmm->loop, &op->timer);
    /* The work request keeps the loop alive; the timer alone must not. */
    uv_unref((uv_handle_t *)&op->timer);
    uv_timer_start(&op->timer, overstayed, GITPUSH_TIMEOUT_SECONDS * 1000ull + ANSWER_GRACE_MS, 0);
    uv_queue_work(vmm->loop, &op->work, push_work, push_done);
    return 0;
}
