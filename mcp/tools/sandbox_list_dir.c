/* sandbox_list_dir: a directory of a sandbox, with its subdirectories down to a depth. */
#include <string.h>

#include "common.h"

struct list_call {
    struct mcp_call *call;
    char *path;
};

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* An entry's path as the client names it: relative to the listed directory as given
 * ("." and the empty prefix stand for /workspace: entries are then relative to it). */
static char *entry_path(const char *dir, const char *rel)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if ((n == 1 && dir[0] == '.') || (n == 2 && !strncmp(dir, "./", 2)))
        return wr_strdup(rel);
    if (n == 1 && dir[0] == '/')
        return wr_asprintf("/%s", rel);
    return wr_asprintf("%.*s/%s", (int)n, dir, rel);
}

static cJSON *entry_json(const char *dir, const struct agent_dir_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    _cleanup_free_ char *path = entry_path(dir, e->path);
    _cleanup_free_ char *name = wr_utf8_sanitize(base_name(e->path), strlen(base_name(e->path)));
    _cleanup_free_ char *shown = wr_utf8_sanitize(path, strlen(path));
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "path", shown);
    mcp_add_file_fields(o, e->type, e->size, e->mode, e->mtime);
    if (e->link_target) {
        _cleanup_free_ char *t = wr_utf8_sanitize(e->link_target, strlen(e->link_target));
        cJSON_AddStringToObject(o, "symlink_target", t);
    }
    return o;
}

static void done(void *data, const struct agent_dir_entry *entries, size_t n, bool truncated,
                 struct wr_error *err)
{
    struct list_call *lc = data;
    if (err) {
        mcp_fail_path(lc->call, err, "listing", lc->path);
    } else {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "path", lc->path);
        cJSON *arr = cJSON_AddArrayToObject(r, "entries");
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(arr, entry_json(lc->path, &entries[i]));
        cJSON_AddBoolToObject(r, "truncated", truncated);
        mcp_call_succeed(lc->call, r);
    }
    free(lc->path);
    free(lc);
}

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "path", "depth", "max_entries", NULL};
    const char *id = NULL, *path = ".";
    int64_t depth = 1, max_entries = 1000;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "path", false, 4096, &path, &err) < 0 ||
        mcp_arg_int(args, "depth", false, 1, VMM_LIST_MAX_DEPTH, &depth, &err) < 0 ||
        mcp_arg_int(args, "max_entries", false, 1, VMM_LIST_MAX_ENTRIES, &max_entries, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    struct list_call *lc = wr_calloc(1, sizeof(*lc));
    lc->call = call;
    lc->path = wr_strdup(path);
    if (vmm_list_dir(mcp_call_vmm(call), id, path, (unsigned)depth, (size_t)max_entries, done, lc,
                     &err) < 0) {
        mcp_call_fail_error(call, err);
        free(lc->path);
        free(lc);
    }
}

const struct mcp_tool mcp_tool_sandbox_list_dir = {
    .name = "sandbox_list_dir",
    .call = call,
};
