/* sandbox_events: a sandbox's audit trail (created, network, egress, snapshot, ...). */
#include <string.h>

#include "common.h"

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "kind", "limit", NULL};
    const char *id = NULL, *kind = NULL;
    int64_t limit = 100;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "kind", false, 64, &kind, &err) < 0 ||
        mcp_arg_int(args, "limit", false, 1, 1000, &limit, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    struct store_event_row *events = NULL;
    size_t n = 0;
    if (vmm_sandbox_events(mcp_call_vmm(call), id, kind, (size_t)limit, &events, &n, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(out, "events");
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        char at[32];
        wr_format_time(events[i].at, at);
        cJSON_AddStringToObject(e, "at", at);
        cJSON_AddStringToObject(e, "kind", events[i].kind);
        /* Details that are JSON objects (egress) stay objects. */
        cJSON *d =
            events[i].detail && events[i].detail[0] == '{' ? cJSON_Parse(events[i].detail) : NULL;
        if (d)
            cJSON_AddItemToObject(e, "detail", d);
        else if (events[i].detail)
            cJSON_AddStringToObject(e, "detail", events[i].detail);
        else
            cJSON_AddNullToObject(e, "detail");
        cJSON_AddItemToArray(arr, e);
        store_event_clear(&events[i]);
    }
    free(events);
    mcp_call_succeed(call, out);
}

const struct mcp_tool mcp_tool_sandbox_events = {
    .name = "sandbox_events",
    .call = call,
};
