/* sandbox_git_commit: the sandbox's workspace changes as a commit on a branch of the
 * user's repository. */
#include "common.h"

static void committed(void *data, const struct vmm_git_commit_result *r, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "commit", r->commit);
    cJSON_AddStringToObject(o, "branch", r->branch);
    cJSON_AddStringToObject(o, "parent", r->parent);
    cJSON_AddNumberToObject(o, "files_changed", (double)r->files_changed);
    cJSON_AddNumberToObject(o, "insertions", (double)r->insertions);
    cJSON_AddNumberToObject(o, "deletions", (double)r->deletions);
    mcp_call_succeed(call, o);
}

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id",     "message", "author_name", "author_email",
                                        "branch", "paths",   NULL};
    struct vmm_git_commit_request req = {0};
    const char *id = NULL;
    _cleanup_strv_ char **paths = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "message", true, 65536, &req.message, &err) < 0 ||
        mcp_arg_string(args, "author_name", false, 256, &req.author_name, &err) < 0 ||
        mcp_arg_string(args, "author_email", false, 256, &req.author_email, &err) < 0 ||
        mcp_arg_string(args, "branch", false, 200, &req.branch, &err) < 0 ||
        mcp_arg_string_array(args, "paths", false, 1024, 4096, &paths, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    if (!req.message[0]) {
        mcp_call_fail(call, "message must not be empty");
        return;
    }
    for (size_t i = 0; paths && paths[i]; i++)
        if (vmm_path_check(paths[i], &err) < 0) {
            mcp_call_fail_error(call, err);
            return;
        }
    req.paths = (const char *const *)paths;
    if (vmm_sandbox_git_commit(mcp_call_vmm(call), id, &req, committed, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

const struct mcp_tool mcp_tool_sandbox_git_commit = {
    .name = "sandbox_git_commit",
    .call = call,
};
