/* image_pull, image_list, image_delete: the OCI images sandboxes start from. */
#include <string.h>

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

/* ---- image_build ---------------------------------------------------------------------- */

#define MAX_STEPS 100
#define MAX_STEP_BYTES (64u << 10)
#define MAX_FILES 64
#define MAX_FILE_BYTES (1u << 20)

static void built(void *data, const struct vmm_build_result *result, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "image", result->image);
    cJSON_AddStringToObject(r, "digest", result->digest);
    cJSON_AddNumberToObject(r, "steps", (double)result->steps);
    cJSON_AddNumberToObject(r, "cached_steps", (double)result->cached);
    mcp_call_succeed(call, r);
}

/* files: an object of path -> text, each path checked like the file tools' paths. */
static int arg_files(const cJSON *args, const cJSON **ret, struct wr_error **err)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(args, "files");
    if (!files)
        return 0;
    if (!cJSON_IsObject(files) || cJSON_GetArraySize(files) > MAX_FILES)
        return wr_error_set(err, EINVAL, "files must be an object of at most %d path: text pairs",
                            MAX_FILES);
    const cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        if (!cJSON_IsString(f) || strlen(f->valuestring) > MAX_FILE_BYTES)
            return wr_error_set(err, EINVAL, "files['%.100s'] must be text of at most 1 MiB",
                                f->string);
        if (vmm_path_check(f->string, err) < 0)
            return wr_error_wrap(err, "files");
    }
    *ret = files;
    return 1;
}

static void call_build(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"name", "from", "run", "env", "workdir", "files", NULL};
    const char *name = NULL, *from = NULL, *workdir = NULL;
    _cleanup_strv_ char **run = NULL, **env = NULL;
    const cJSON *files = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "name", true, 63, &name, &err) < 0 ||
        mcp_arg_string(args, "from", true, 255, &from, &err) < 0 ||
        mcp_arg_string_array(args, "run", false, MAX_STEPS, MAX_STEP_BYTES, &run, &err) < 0 ||
        mcp_arg_env(args, "env", &env, &err) < 0 ||
        mcp_arg_string(args, "workdir", false, 4096, &workdir, &err) < 0 ||
        arg_files(args, &files, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    struct vmm_build_request req = {.name = name,
                                    .from = from,
                                    .run = (const char *const *)run,
                                    .env = (const char *const *)env,
                                    .workdir = workdir,
                                    .files = files};
    if (vmm_image_build(mcp_call_vmm(call), &req, pull_progress, built, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

const struct mcp_tool mcp_tool_image_build = {
    .name = "image_build",
    .call = call_build,
};
