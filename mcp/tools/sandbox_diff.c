/* sandbox_diff: a sandbox's changes against its start commit, as unified diffs. */
#include <string.h>

#include "common.h"

#define DEFAULT_MAX_BYTES (1u << 20)
#define MAX_PATHS 100

static cJSON *file_json(const struct gitdiff_file *f)
{
    cJSON *o = cJSON_CreateObject();
    _cleanup_free_ char *path = wr_utf8_sanitize(f->path, strlen(f->path));
    _cleanup_free_ char *patch = wr_utf8_sanitize(f->patch, strlen(f->patch));
    cJSON_AddStringToObject(o, "path", path);
    if (f->old_path) {
        _cleanup_free_ char *old = wr_utf8_sanitize(f->old_path, strlen(f->old_path));
        cJSON_AddStringToObject(o, "old_path", old);
    }
    cJSON_AddStringToObject(o, "status", f->status);
    cJSON_AddBoolToObject(o, "binary", f->binary);
    cJSON_AddNumberToObject(o, "insertions", (double)f->insertions);
    cJSON_AddNumberToObject(o, "deletions", (double)f->deletions);
    cJSON_AddStringToObject(o, "patch", patch);
    cJSON_AddBoolToObject(o, "truncated", f->truncated);
    return o;
}

static void done(void *data, const struct gitdiff_result *result, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err) {
        mcp_call_fail_error(call, err);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "base", result->base);
    cJSON *files = cJSON_AddArrayToObject(r, "files");
    for (size_t i = 0; i < result->n_files; i++)
        cJSON_AddItemToArray(files, file_json(&result->files[i]));
    cJSON_AddBoolToObject(r, "truncated", result->truncated);
    mcp_call_succeed(call, r);
}

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "paths", "context_lines", "max_bytes", NULL};
    const char *id = NULL;
    int64_t context = 3, max_bytes = DEFAULT_MAX_BYTES;
    _cleanup_strv_ char **paths = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string_array(args, "paths", false, MAX_PATHS, 4096, &paths, &err) < 0 ||
        mcp_arg_int(args, "context_lines", false, 0, 1000, &context, &err) < 0 ||
        mcp_arg_int(args, "max_bytes", false, 0, VMM_DIFF_MAX_BYTES, &max_bytes, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    struct vmm_diff_request req = {.paths = (const char *const *)paths,
                                   .context_lines = (unsigned)context,
                                   .max_bytes = (size_t)max_bytes};
    if (vmm_sandbox_diff(mcp_call_vmm(call), id, &req, done, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

const struct mcp_tool mcp_tool_sandbox_diff = {
    .name = "sandbox_diff",
    .call = call,
};
