/* sandbox_metrics: the samples the server took of a sandbox (memory, balloon, CPU, disk). */
#include "common.h"

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "since_seconds", NULL};
    const char *id = NULL;
    int64_t since = 3600;
    struct wr_error *err = NULL;
    _cleanup_free_ struct vmm_metrics_sample *samples = NULL;
    size_t n = 0;
    struct vmm *vmm = mcp_call_vmm(call);
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_int(args, "since_seconds", false, 1, 86400, &since, &err) < 0 ||
        vmm_sandbox_metrics(vmm, id, wr_unix_time() - since, &samples, &n, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "interval_seconds", vmm_metrics_interval_ms(vmm) / 1000.0);
    cJSON *arr = cJSON_AddArrayToObject(r, "samples");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char at[32];
        wr_format_time(samples[i].at, at);
        cJSON_AddStringToObject(o, "at", at);
        cJSON_AddNumberToObject(o, "memory_usage_bytes", (double)samples[i].memory_usage_bytes);
        cJSON_AddNumberToObject(o, "balloon_bytes", (double)samples[i].balloon_bytes);
        cJSON_AddNumberToObject(o, "cpu_seconds", samples[i].cpu_seconds);
        cJSON_AddNumberToObject(o, "disk_used_bytes", (double)samples[i].disk_used_bytes);
        cJSON_AddItemToArray(arr, o);
    }
    mcp_call_succeed(call, r);
}

const struct mcp_tool mcp_tool_sandbox_metrics = {
    .name = "sandbox_metrics",
    .call = call,
};
