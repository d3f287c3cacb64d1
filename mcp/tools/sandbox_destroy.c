/* sandbox_destroy: kill a sandbox's processes and remove its layers. */
#include "common.h"

static void destroyed(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err) {
        mcp_call_fail_error(call, err);
        return;
    }
    mcp_call_log(call, "info", "sandbox '%s' (%s) destroyed", info->row.name, info->row.id);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "id", info->row.id);
    cJSON_AddStringToObject(r, "name", info->row.name);
    cJSON_AddBoolToObject(r, "destroyed", true);
    mcp_call_succeed(call, r);
}

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", NULL};
    const char *id = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        vmm_sandbox_destroy(mcp_call_vmm(call), id, destroyed, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

const struct mcp_tool mcp_tool_sandbox_destroy = {
    .name = "sandbox_destroy",
    .call = call,
};
