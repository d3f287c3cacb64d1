/* sandbox_git_push: a branch of the user's repository (the one sandbox_git_commit wrote)
 * pushed to one of its remotes. */
#include "common.h"

static void pushed(void *data, const struct vmm_git_push_result *r, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "remote", r->remote);
    cJSON_AddStringToObject(o, "url", r->url);
    cJSON_AddStringToObject(o, "branch", r->branch);
    cJSON_AddStringToObject(o, "commit", r->commit);
    cJSON_AddBoolToObject(o, "pushed", true);
    mcp_call_succeed(call, o);
}

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "remote", "branch", NULL};
    struct vmm_git_push_request req = {0};
    const char *id = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "remote", false, 200, &req.remote, &err) < 0 ||
        mcp_arg_string(args, "branch", false, 200, &req.branch, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    if ((req.remote && !req.remote[0]) || (req.branch && !req.branch[0])) {
        mcp_call_fail(call, "remote and branch must not be empty when given");
        return;
    }
    if (vmm_sandbox_git_push(mcp_call_vmm(call), id, &req, pushed, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

const struct mcp_tool mcp_tool_sandbox_git_push = {
    .name = "sandbox_git_push",
    .call = call,
};
