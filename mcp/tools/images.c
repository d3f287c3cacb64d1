/* image_pull, image_list, image_delete: the OCI images sandboxes start from. */
#include "common.h"

/* One image as the tools show it (mcp/tools/image.schema.json). */
static cJSON *image_json(const struct vmm_image_info *info)
{
    char when[32];
    wr_format_time(info->row.created_at, when);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image", info->row.name);
    cJSON_AddStringToObject(o, "digest", info->row.digest);
    cJSON_AddNumberToObject(o, "size_bytes", (double)info->row.size_bytes);
    cJSON_AddNumberToObject(o, "layers", (double)info->layers);
    cJSON_AddStringToObject(o, "created_at", when);
    cJSON *users = cJSON_AddArrayToObject(o, "used_by");
    for (size_t i = 0; info->used_by && info->used_by[i]; i++)
        cJSON_AddItemToArray(users, cJSON_CreateString(info->used_by[i]));
    return o;
}

static void image_done(void *data, const struct vmm_image_info *info, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err)
        mcp_call_fail_error(call, err);
    else
        mcp_call_succeed(call, image_json(info));
}

static void pull_progress(void *data, const char *message)
{
    mcp_call_progress(data, message);
}

static void call_pull(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"ref", NULL};
    const char *ref = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "ref", true, 255, &ref, &err) < 0 ||
        vmm_image_pull(mcp_call_vmm(call), ref, pull_progress, image_done, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

static void call_list(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {NULL};
    struct wr_error *err = NULL;
    struct vmm_image_info *infos;
    size_t n;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        vmm_image_list(mcp_call_vmm(call), &infos, &n, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(r, "images");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, image_json(&infos[i]));
        vmm_image_info_clear(&infos[i]);
    }
    free(infos);
    mcp_call_succeed(call, r);
}

static void deleted(void *data, const struct vmm_image_info *info, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "image", info->row.name);
    cJSON_AddStringToObject(r, "digest", info->row.digest);
    cJSON_AddBoolToObject(r, "deleted", true);
    mcp_call_succeed(call, r);
}

static void call_delete(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"image", NULL};
    const char *image = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "image", true, 255, &image, &err) < 0 ||
        vmm_image_delete(mcp_call_vmm(call), image, deleted, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

const struct mcp_tool mcp_tool_image_pull = {
    .name = "image_pull",
    .call = call_pull,
};

const struct mcp_tool mcp_tool_image_list = {
    .name = "image_list",
    .call = call_list,
};

const struct mcp_tool mcp_tool_image_delete = {
    .name = "image_delete",
    .call = call_delete,
};
