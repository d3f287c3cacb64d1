/* sandbox_git_push in the vmm: find the sandbox, then push in a `warren __gitpush` helper
 * process (vmm/git/push.c). libgit2 1.5 has no network timeout and leaks a little on every
 * push; a process of its own is killed when it overstays and takes the leaks with it. */
#include <cjson/cJSON.h>
#include <string.h>

#include "push.h"
#include "vmm/helper.h"
#include "vmm/vmm-internal.h"

/* How long past the push's own deadline the helper may take before it is killed (its own
 * messages are better than "timed out"). */
#define ANSWER_GRACE_MS 10000

struct push_op {
    struct vmm *vmm;
    struct store_sandbox row;
    char *remote, *branch;
    vmm_git_push_cb cb;
    void *data;
};

static void push_op_free(struct push_op *op)
{
    store_sandbox_clear(&op->row);
    free(op->remote);
    free(op->branch);
    free(op);
}

static void pushed(void *data, const char *out, size_t len, struct wr_error *err)
{
    struct push_op *op = data;
    cJSON *answer = err ? NULL : cJSON_ParseWithLength(out, len);
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(answer, "url");
    const cJSON *commit = cJSON_GetObjectItemCaseSensitive(answer, "commit");
    if (!err && (!cJSON_IsString(url) || !cJSON_IsString(commit)))
        wr_error_set(&err, EIO, "the push helper gave no result");
    if (err) {
        wr_error_wrap(&err, "pushing %s of sandbox '%s' to %s", op->branch, op->row.name,
                      op->remote);
        op->cb(op->data, NULL, err);
    } else {
        _cleanup_free_ char *detail =
            wr_asprintf("%s %s %s", op->remote, op->branch, commit->valuestring);
        store_event(op->vmm->store, op->row.id, "git-push", detail, NULL);
        struct vmm_git_push_result r = {.remote = op->remote,
                                        .url = url->valuestring,
                                        .branch = op->branch,
                                        .commit = commit->valuestring};
        op->cb(op->data, &r, NULL);
    }
    cJSON_Delete(answer);
    push_op_free(op);
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
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "repo", op->row.repo);
    cJSON_AddStringToObject(j, "remote", op->remote);
    cJSON_AddStringToObject(j, "branch", op->branch);
    cJSON_AddNumberToObject(j, "timeout", GITPUSH_TIMEOUT_SECONDS);
    _cleanup_free_ char *arg = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int r = vmm_helper_run_output(vmm->loop, "__gitpush", arg,
                                  GITPUSH_TIMEOUT_SECONDS * 1000u + ANSWER_GRACE_MS, "the git push",
                                  pushed, op, err);
    if (r < 0)
        push_op_free(op);
    return r;
}
