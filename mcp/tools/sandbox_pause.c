/* sandbox_pause and sandbox_resume: freeze a sandbox and thaw it (or boot a stopped one
 * again from its files). */
#include "common.h"

static void call_pause_or_resume(struct mcp_call *call, const cJSON *args, bool pause)
{
    static const char *const known[] = {"id", NULL};
    const char *id = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    int r = pause ? vmm_sandbox_pause(mcp_call_vmm(call), id, mcp_sandbox_done, call, &err)
                  : vmm_sandbox_resume(mcp_call_vmm(call), id, mcp_sandbox_done, call, &err);
    if (r < 0)
        mcp_call_fail_error(call, err);
}

static void call_pause(struct mcp_call *call, const cJSON *args)
{
    call_pause_or_resume(call, args, true);
}

static void call_resume(struct mcp_call *call, const cJSON *args)
{
    call_pause_or_resume(call, args, false);
}

const struct mcp_tool mcp_tool_sandbox_pause = {
    .name = "sandbox_pause",
    .call = call_pause,
};

const struct mcp_tool mcp_tool_sandbox_resume = {
    .name = "sandbox_resume",
    .call = call_resume,
};
