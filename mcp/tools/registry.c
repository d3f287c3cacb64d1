/* The tools, in the order tools/list shows them, and their definitions: the JSON files
 * next to their code (mcp/tools/<name>.json), compiled into the binary by
 * tools/embed.cmake. */
#include <string.h>

#include "mcp/tool.h"

extern const struct mcp_tool mcp_tool_sandbox_create, mcp_tool_sandbox_exec,
    mcp_tool_sandbox_read_file, mcp_tool_sandbox_write_file, mcp_tool_sandbox_list,
    mcp_tool_sandbox_destroy, mcp_tool_sandbox_git_commit, mcp_tool_sandbox_pause,
    mcp_tool_sandbox_resume, mcp_tool_sandbox_restart, mcp_tool_sandbox_snapshot,
    mcp_tool_sandbox_restore, mcp_tool_snapshot_list, mcp_tool_snapshot_delete,
    mcp_tool_sandbox_git_push, mcp_tool_image_pull, mcp_tool_image_list, mcp_tool_image_delete,
    mcp_tool_image_build, mcp_tool_sandbox_update, mcp_tool_sandbox_events,
    mcp_tool_sandbox_list_dir, mcp_tool_sandbox_stat, mcp_tool_sandbox_make_dir,
    mcp_tool_sandbox_move, mcp_tool_sandbox_remove, mcp_tool_sandbox_diff, mcp_tool_sandbox_metrics;

const struct mcp_tool *const mcp_tools[] = {
    &mcp_tool_sandbox_create,
    &mcp_tool_sandbox_exec,
    &mcp_tool_sandbox_read_file,
    &mcp_tool_sandbox_write_file,
    &mcp_tool_sandbox_list,
    &mcp_tool_sandbox_destroy,
    &mcp_tool_sandbox_pause,
    &mcp_tool_sandbox_resume,
    &mcp_tool_sandbox_restart,
    &mcp_tool_sandbox_update,
    &mcp_tool_sandbox_events,
    &mcp_tool_sandbox_snapshot,
    &mcp_tool_sandbox_restore,
    &mcp_tool_snapshot_list,
    &mcp_tool_snapshot_delete,
    &mcp_tool_sandbox_git_commit,
    &mcp_tool_sandbox_git_push,
    &mcp_tool_image_pull,
    &mcp_tool_image_list,
    &mcp_tool_image_delete,
    &mcp_tool_image_build,
    &mcp_tool_sandbox_list_dir,
    &mcp_tool_sandbox_stat,
    &mcp_tool_sandbox_make_dir,
    &mcp_tool_sandbox_move,
    &mcp_tool_sandbox_remove,
    &mcp_tool_sandbox_diff,
    &mcp_tool_sandbox_metrics,
    NULL,
};

/* Generated from mcp/tools/ *.json by the build. */
extern const struct wr_embedded_file mcp_tool_definitions[];

/* Shared schemas nest no further than this (a guard against a file that names itself). */
#define MAX_REF_DEPTH 4

static int parse_embedded(const char *name, cJSON **ret, struct wr_error **err)
{
    const struct wr_embedded_file *f = wr_embedded_find(mcp_tool_definitions, name);
    if (!f)
        return wr_error_set(err, ENOENT, "no mcp/tools/%s in this build", name);
    *ret = cJSON_ParseWithLength((const char *)f->data, f->len);
    if (!*ret || !cJSON_IsObject(*ret)) {
        cJSON_Delete(*ret);
        return wr_error_set(err, EINVAL, "mcp/tools/%s is not a JSON object", name);
    }
    return 0;
}

/* Replaces every {"$ref": "<file>.schema.json"} under node with that file's schema. */
static int inline_refs(cJSON *node, int depth, struct wr_error **err)
{
    for (cJSON *c = node ? node->child : NULL; c; c = c->next) {
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(c, "$ref");
        if (cJSON_IsObject(c) && cJSON_IsString(ref) && strstr(ref->valuestring, ".schema.json")) {
            if (depth >= MAX_REF_DEPTH)
                return wr_error_set(err, ELOOP, "%s: shared schemas nest too deep",
                                    ref->valuestring);
            cJSON *shared;
            if (parse_embedded(ref->valuestring, &shared, err) < 0)
                return -(*err)->status;
            cJSON_DeleteItemFromObjectCaseSensitive(shared, "$comment");
            if (inline_refs(shared, depth + 1, err) < 0) {
                cJSON_Delete(shared);
                return -(*err)->status;
            }
            /* c is replaced in place, under its key; the walk goes on from the replacement. */
            if (c->string)
                shared->string = wr_strdup(c->string);
            cJSON_ReplaceItemViaPointer(node, c, shared);
            c = shared;
            continue;
        }
        if (inline_refs(c, depth, err) < 0)
            return -(*err)->status;
    }
    return 0;
}

static int check_definition(const cJSON *d, const char *name, struct wr_error **err)
{
    static const char *const strings[] = {"name", "title", "description"};
    static const char *const objects[] = {"annotations", "inputSchema", "outputSchema"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(strings); i++)
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d, strings[i])))
            return wr_error_set(err, EINVAL, "mcp/tools/%s.json: \"%s\" must be a string", name,
                                strings[i]);
    for (size_t i = 0; i < WR_ARRAY_SIZE(objects); i++)
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(d, objects[i])))
            return wr_error_set(err, EINVAL, "mcp/tools/%s.json: \"%s\" must be an object", name,
                                objects[i]);
    if (strcmp(cJSON_GetObjectItemCaseSensitive(d, "name")->valuestring, name) != 0)
        return wr_error_set(err, EINVAL, "mcp/tools/%s.json names another tool", name);
    return 0;
}

static int load_one(const struct mcp_tool *tool, cJSON **ret, struct wr_error **err)
{
    _cleanup_free_ char *file = wr_asprintf("%s.json", tool->name);
    cJSON *d = NULL;
    if (parse_embedded(file, &d, err) < 0)
        return -(*err)->status;
    cJSON_DeleteItemFromObjectCaseSensitive(d, "examples");
    if (check_definition(d, tool->name, err) < 0 || inline_refs(d, 0, err) < 0) {
        cJSON_Delete(d);
        return wr_error_wrap(err, "tool %s", tool->name);
    }
    *ret = d;
    return 0;
}

int mcp_tool_definitions_load(const struct mcp_tool *const *tools, cJSON **ret,
                              struct wr_error **err)
{
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; tools[i]; i++) {
        cJSON *d = NULL;
        if (load_one(tools[i], &d, err) < 0) {
            cJSON_Delete(list);
            return -(*err)->status;
        }
        cJSON_AddItemToArray(list, d);
    }
    *ret = list;
    return 0;
}
