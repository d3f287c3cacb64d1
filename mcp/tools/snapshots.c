/* sandbox_snapshot, sandbox_restore, snapshot_list, snapshot_delete. */
#include "common.h"

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
    if (info->parent_id)
        cJSON_AddStringToObject(o, "parent_snapshot_id", info->parent_id);
    else
        cJSON_AddNullToObject(o, "parent_snapshot_id");
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

static void call_restore(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"snapshot", "name", NULL};
    const char *snapshot = NULL, *name = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "snapshot", true, 128, &snapshot, &err) < 0 ||
        mcp_arg_string(args, "name", false, 63, &name, &err) < 0 ||
        vmm_snapshot_restore(mcp_call_vmm(call), snapshot, name, mcp_sandbox_done, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

static void tree_done(void *data, const struct vmm_snapshot_tree *tree, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *snaps = cJSON_AddArrayToObject(r, "snapshots");
    for (size_t i = 0; i < tree->n_snapshots; i++) {
        cJSON *o = snapshot_json(&tree->snapshots[i]);
        cJSON_AddNumberToObject(o, "size_bytes", (double)tree->snapshots[i].size_bytes);
        cJSON_AddItemToArray(snaps, o);
    }
    cJSON *boxes = cJSON_AddArrayToObject(r, "sandboxes");
    for (size_t i = 0; i < tree->n_sandboxes; i++) {
        const struct vmm_tree_sandbox *b = &tree->sandboxes[i];
        cJSON *o = cJSON_CreateObject();
        char when[32];
        wr_format_time(b->row.created_at, when);
        cJSON_AddStringToObject(o, "id", b->row.id);
        cJSON_AddStringToObject(o, "name", b->row.name);
        cJSON_AddStringToObject(o, "state", b->row.state);
        cJSON_AddStringToObject(o, "created_at", when);
        if (b->from_snapshot)
            cJSON_AddStringToObject(o, "from_snapshot_id", b->from_snapshot);
        else
            cJSON_AddNullToObject(o, "from_snapshot_id");
        cJSON_AddItemToArray(boxes, o);
    }
    mcp_call_succeed(call, r);
}

static void call_list(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"sandbox", "tree", NULL};
    const char *sandbox = NULL;
    bool tree = false;
    struct vmm_snapshot_info *infos = NULL;
    size_t n = 0;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "sandbox", false, 128, &sandbox, &err) < 0 ||
        mcp_arg_bool(args, "tree", &tree, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    if (tree) {
        if (!sandbox)
            wr_error_set(&err, EINVAL, "tree: true needs the sandbox whose family to show");
        if (err || vmm_snapshot_tree(mcp_call_vmm(call), sandbox, tree_done, call, &err) < 0)
            mcp_call_fail_error(call, err);
        return;
    }
    if (vmm_snapshot_list(mcp_call_vmm(call), sandbox, &infos, &n, &err) < 0) {
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
    .call = call_snapshot,
};

const struct mcp_tool mcp_tool_sandbox_restore = {
    .name = "sandbox_restore",
    .call = call_restore,
};

const struct mcp_tool mcp_tool_snapshot_list = {
    .name = "snapshot_list",
    .call = call_list,
};

const struct mcp_tool mcp_tool_snapshot_delete = {
    .name = "snapshot_delete",
    .call = call_delete,
};
