/* sandbox_remove: delete a file, a symlink (never what it points to) or, with recursive,
 * a directory tree in a sandbox. */
#include "common.h"

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "path", "recursive", NULL};
    const char *id = NULL, *path = NULL;
    bool recursive = false;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "path", true, 4096, &path, &err) < 0 ||
        mcp_arg_bool(args, "recursive", &recursive, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    struct mcp_path_call *pc = mcp_path_call_new(call, "removing", path, NULL);
    if (vmm_remove(mcp_call_vmm(call), id, path, recursive, mcp_path_call_done, pc, &err) < 0) {
        mcp_call_fail_error(call, err);
        mcp_path_call_free(pc);
    }
}

const struct mcp_tool mcp_tool_sandbox_remove = {
    .name = "sandbox_remove",
    .call = call,
};
