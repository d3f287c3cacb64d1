/* sandbox_move: rename a file or directory in a sandbox; an existing target only with
 * overwrite. */
#include "common.h"

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "from", "to", "overwrite", NULL};
    const char *id = NULL, *from = NULL, *to = NULL;
    bool overwrite = false;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "from", true, 4096, &from, &err) < 0 ||
        mcp_arg_string(args, "to", true, 4096, &to, &err) < 0 ||
        mcp_arg_bool(args, "overwrite", &overwrite, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    struct mcp_path_call *pc = mcp_path_call_new(call, "moving", from, to);
    if (vmm_move(mcp_call_vmm(call), id, from, to, overwrite, mcp_path_call_done, pc, &err) < 0) {
        mcp_call_fail_error(call, err);
        mcp_path_call_free(pc);
    }
}

const struct mcp_tool mcp_tool_sandbox_move = {
    .name = "sandbox_move",
    .call = call,
};
