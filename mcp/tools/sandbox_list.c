/* sandbox_list: every sandbox in the state directory, with state and memory, and the warm
 * pools. */
#include "common.h"

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {NULL};
    struct wr_error *err = NULL;
    struct vmm_sandbox_info *infos;
    size_t n;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        vmm_sandbox_list(mcp_call_vmm(call), &infos, &n, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(r, "sandboxes");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, mcp_sandbox_json(mcp_call_vmm(call), &infos[i]));
        vmm_sandbox_info_clear(&infos[i]);
    }
    free(infos);
    struct vmm_pool_info *pools;
    vmm_pool_list(mcp_call_vmm(call), &pools, &n);
    arr = cJSON_AddArrayToObject(r, "pools");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "image", pools[i].image);
        cJSON_AddStringToObject(o, "backend", pools[i].backend);
        cJSON_AddNumberToObject(o, "size", pools[i].size);
        cJSON_AddNumberToObject(o, "ready", pools[i].ready);
        cJSON_AddBoolToObject(o, "filling", pools[i].filling);
        if (pools[i].error)
            cJSON_AddStringToObject(o, "error", pools[i].error);
        else
            cJSON_AddNullToObject(o, "error");
        cJSON_AddItemToArray(arr, o);
    }
    free(pools);
    mcp_call_succeed(call, r);
}

const struct mcp_tool mcp_tool_sandbox_list = {
    .name = "sandbox_list",
    .call = call,
};
