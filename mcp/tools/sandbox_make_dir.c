/* sandbox_make_dir: create a directory in a sandbox (mkdir, or mkdir -p with parents). */
#include "common.h"

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "path", "parents", NULL};
    const char *id = NULL, *path = NULL;
    bool parents = false;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "path", true, 4096, &path, &err) < 0 ||
        mcp_arg_bool(args, "parents", &parents, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    struct mcp_path_call *pc = mcp_path_call_new(call, "creating directory", path, NULL);
    if (vmm_make_dir(mcp_call_vmm(call), id, path, parents, mcp_path_call_done, pc, &err) < 0) {
        mcp_call_fail_error(call, err);
        mcp_path_call_free(pc);
    }
}

const struct mcp_tool mcp_tool_sandbox_make_dir = {
    .name = "sandbox_make_dir",
    .call = call,
};
