/* sandbox_update: a sandbox's network policy and ttl, changed at once. */
#include "common.h"

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "network", "ttl_seconds", NULL};
    const char *id = NULL;
    struct vmm_net_policy network;
    bool has_network = false;
    int64_t ttl = 0;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_network(args, &network, &has_network, &err) < 0 ||
        mcp_arg_int(args, "ttl_seconds", false, 0, 90 * 86400, &ttl, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    struct vmm_update_request req = {
        .network = has_network ? &network : NULL,
        .set_ttl = cJSON_GetObjectItemCaseSensitive(args, "ttl_seconds") != NULL,
        .ttl_seconds = ttl,
    };
    if (!req.network && !req.set_ttl)
        mcp_call_fail(call, "nothing to update: pass network, ttl_seconds or both");
    else if (vmm_sandbox_update(mcp_call_vmm(call), id, &req, mcp_sandbox_done, call, &err) < 0)
        mcp_call_fail_error(call, err);
    vmm_net_policy_clear(&network);
}

const struct mcp_tool mcp_tool_sandbox_update = {
    .name = "sandbox_update",
    .call = call,
};
