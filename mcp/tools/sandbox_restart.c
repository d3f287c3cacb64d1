/* sandbox_restart: stop a sandbox's machine and boot it again on the same files. */
#include "common.h"

static void call_restart(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", NULL};
    const char *id = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        vmm_sandbox_restart(mcp_call_vmm(call), id, mcp_sandbox_done, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

const struct mcp_tool mcp_tool_sandbox_restart = {
    .name = "sandbox_restart",
    .call = call_restart,
};
