/* sandbox_snapshot, sandbox_restore, snapshot_list, snapshot_delete. */
#include "common.h"

#define SNAPSHOT_SCHEMA                                                                            \
    "{\"type\":\"object\",\"required\":[\"snapshot_id\",\"name\",\"sandbox_id\",\"layers\","       \
    "\"memory\",\"created_at\"],\"properties\":{\"snapshot_id\":{\"type\":\"string\"},"            \
    "\"name\":{\"type\":\"string\"},\"sandbox_id\":{\"type\":[\"string\",\"null\"]},"              \
    "\"layers\":{\"type\":\"integer\",\"description\":\"layers in its workspace chain\"},"         \
    "\"memory\":{\"type\":\"boolean\"},\"created_at\":{\"type\":\"string\"},"                      \
    "\"used_by\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}"

static cJSON *snapshot_json(const struct vmm_snapshot_info *info)
{
    cJSON *o = cJSON_CreateObject();
    char when[32];
    wr_format_time(info->row.created_at, when);
    cJSON_AddStringToObject(o, "snapshot_id", info->row.id);
    cJSON_AddStringToObject(o, "name", info->row.name);
    if (info->row.sandbox_id)
        cJSON_AddStringToObject(o, "sandbox_id", info->row.sandbox_id);
    else
        cJSON_AddNullToObject(o, "sandbox_id");
    cJSON_AddNumberToObject(o, "layers", (double)info->layers);
    cJSON_AddBoolToObject(o, "memory", info->row.memory);
    cJSON_AddStringToObject(o, "created_at", when);
    cJSON *users = cJSON_AddArrayToObject(o, "used_by");
    for (size_t i = 0; info->used_by && info->used_by[i]; i++)
        cJSON_AddItemToArray(users, cJSON_CreateString(info->used_by[i]));
    return o;
}

static void snapshot_done(void *data, const struct vmm_snapshot_info *info, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err)
        mcp_call_fail_error(call, err);
    else
        mcp_call_succeed(call, snapshot_json(info));
}

static void call_snapshot(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "name", "memory", NULL};
    const char *id = NULL, *name = NULL;
    bool memory = false;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "name", false, 63, &name, &err) < 0 ||
        mcp_arg_bool(args, "memory", &memory, &err) < 0 ||
        vmm_sandbox_snapshot(mcp_call_vmm(call), id, name, memory, snapshot_done, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

static void restored(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err)
        mcp_call_fail_error(call, err);
    else
        mcp_call_succeed(call, mcp_sandbox_json(mcp_call_vmm(call), info));
}

static void call_restore(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"snapshot", "name", NULL};
    const char *snapshot = NULL, *name = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "snapshot", true, 128, &snapshot, &err) < 0 ||
        mcp_arg_string(args, "name", false, 63, &name, &err) < 0 ||
        vmm_snapshot_restore(mcp_call_vmm(call), snapshot, name, restored, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

static void call_list(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"sandbox", NULL};
    const char *sandbox = NULL;
    struct vmm_snapshot_info *infos = NULL;
    size_t n = 0;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "sandbox", false, 128, &sandbox, &err) < 0 ||
        vmm_snapshot_list(mcp_call_vmm(call), sandbox, &infos, &n, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(r, "snapshots");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, snapshot_json(&infos[i]));
        vmm_snapshot_info_clear(&infos[i]);
    }
    free(infos);
    mcp_call_succeed(call, r);
}

static void deleted(void *data, const struct vmm_snapshot_info *info, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "snapshot_id", info->row.id);
    cJSON_AddStringToObject(r, "name", info->row.name);
    cJSON_AddBoolToObject(r, "deleted", true);
    mcp_call_succeed(call, r);
}

static void call_delete(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"snapshot", NULL};
    const char *snapshot = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "snapshot", true, 128, &snapshot, &err) < 0 ||
        vmm_snapshot_delete(mcp_call_vmm(call), snapshot, deleted, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

const struct mcp_tool mcp_tool_sandbox_snapshot = {
    .name = "sandbox_snapshot",
    .title = "Snapshot a sandbox",
    .description =
        "Save the sandbox's files as a snapshot: its changes become a read-only layer, in "
        "constant time whatever the workspace size, and the sandbox goes on above it. A running "
        "sandbox is restarted around the snapshot: its files carry on, its processes do not. "
        "Restore the snapshot (sandbox_restore) to go back to this point or to fork from it. "
        "memory: true would also save the machine's memory; the backends of this build cannot "
        "and say why.",
    .input_schema =
        "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"id\"],\"properties\":{"
        "\"id\":{\"type\":\"string\",\"description\":\"Sandbox id or name\"},"
        "\"name\":{\"type\":\"string\",\"description\":\"Unique snapshot name\"},"
        "\"memory\":{\"type\":\"boolean\",\"default\":false}}}",
    .output_schema = SNAPSHOT_SCHEMA,
    .read_only = false,
    .destructive = false,
    .idempotent = false,
    .open_world = false,
    .call = call_snapshot,
};

const struct mcp_tool mcp_tool_sandbox_restore = {
    .name = "sandbox_restore",
    .title = "Start a sandbox from a snapshot",
    .description = "Start a new sandbox from a snapshot, with the files the sandbox had then "
                   "(a fork: call it again for more; forks never see each other's writes).",
    .input_schema =
        "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"snapshot\"],"
        "\"properties\":{\"snapshot\":{\"type\":\"string\",\"description\":\"Snapshot id or "
        "name\"},"
        "\"name\":{\"type\":\"string\",\"description\":\"Name of the new sandbox\"}}}",
    .output_schema = MCP_SANDBOX_SCHEMA,
    .read_only = false,
    .destructive = false,
    .idempotent = false,
    .open_world = false,
    .call = call_restore,
};

const struct mcp_tool mcp_tool_snapshot_list = {
    .name = "snapshot_list",
    .title = "List snapshots",
    .description = "List snapshots (of one sandbox with sandbox), with the sandboxes and "
                   "snapshots built on each.",
    .input_schema = "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                    "\"sandbox\":{\"type\":\"string\",\"description\":\"Sandbox id or name\"}}}",
    .output_schema = "{\"type\":\"object\",\"required\":[\"snapshots\"],\"properties\":{"
                     "\"snapshots\":{\"type\":\"array\",\"items\":" SNAPSHOT_SCHEMA "}}}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .call = call_list,
};

const struct mcp_tool mcp_tool_snapshot_delete = {
    .name = "snapshot_delete",
    .title = "Delete a snapshot",
    .description = "Delete a snapshot and its layer. Refused while a sandbox or a later "
                   "snapshot is built on it (the error names them).",
    .input_schema =
        "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"snapshot\"],"
        "\"properties\":{\"snapshot\":{\"type\":\"string\",\"description\":\"Snapshot id or "
        "name\"}}}",
    .output_schema =
        "{\"type\":\"object\",\"required\":[\"snapshot_id\",\"deleted\"],\"properties\":{"
        "\"snapshot_id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
        "\"deleted\":{\"type\":\"boolean\"}}}",
    .read_only = false,
    .destructive = true,
    .idempotent = false,
    .open_world = false,
    .call = call_delete,
};
