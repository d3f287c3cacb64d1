/* sandbox_stat: type, size, mode and modification time of a path in a sandbox. */
#include "common.h"

struct stat_call {
    struct mcp_call *call;
    char *path;
};

static void done(void *data, const struct agent_stat *st, struct wr_error *err)
{
    struct stat_call *sc = data;
    if (err) {
        mcp_fail_path(sc->call, err, "stat", sc->path);
    } else {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "path", sc->path);
        mcp_add_file_fields(r, (st->mode & 0170000) >> 12, st->size, st->mode, st->mtime);
        mcp_call_succeed(sc->call, r);
    }
    free(sc->path);
    free(sc);
}

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "path", NULL};
    const char *id = NULL, *path = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "path", true, 4096, &path, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    struct stat_call *sc = wr_calloc(1, sizeof(*sc));
    sc->call = call;
    sc->path = wr_strdup(path);
    if (vmm_stat(mcp_call_vmm(call), id, path, done, sc, &err) < 0) {
        mcp_call_fail_error(call, err);
        free(sc->path);
        free(sc);
    }
}

const struct mcp_tool mcp_tool_sandbox_stat = {
    .name = "sandbox_stat",
    .call = call,
};
