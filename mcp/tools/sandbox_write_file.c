/* sandbox_write_file: write (or append to) a file inside a sandbox. */
#include <string.h>

#include "common.h"
#include "util/metrics.h"
#include "guest-init/proto.h"

struct write_call {
    struct mcp_call *call;
    char *path;
    char *data; /* decoded content, alive until the agent has written it */
};

static void done(void *data, uint64_t written, struct wr_error *err)
{
    struct write_call *wc = data;
    if (err) {
        wr_error_wrap(&err, "writing '%s'%s", wc->path,
                      err->status == ENOENT ? " (its directory is missing: pass create_dirs: true)"
                                            : "");
        mcp_call_fail_error(wc->call, err);
    } else {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "path", wc->path);
        cJSON_AddNumberToObject(r, "bytes_written", (double)written);
        wr_metric_add(&wr_metric_file_bytes, "write", NULL, (double)written);
        mcp_call_succeed(wc->call, r);
    }
    free(wc->path);
    free(wc->data);
    free(wc);
}

/* mode: an integer (420) or an octal string ("0644", "755"). */
static int parse_mode(const cJSON *args, uint32_t *ret, struct wr_error **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, "mode");
    if (!v || cJSON_IsNull(v))
        return 0;
    long m = -1;
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(long)v->valuedouble)
        m = (long)v->valuedouble;
    else if (cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) <= 5 &&
             strspn(v->valuestring, "01234567") == strlen(v->valuestring))
        m = strtol(v->valuestring, NULL, 8);
    if (m < 0 || m > 07777)
        return wr_error_set(err, EINVAL,
                            "mode must be file permission bits: an octal string "
                            "like \"0644\" or an integer up to 4095");
    *ret = (uint32_t)m;
    return 1;
}

static int decode(const char *content, bool base64, char **ret, size_t *ret_len,
                  struct wr_error **err)
{
    size_t n = strlen(content);
    if (!base64) {
        *ret = wr_strndup(content, n);
        *ret_len = n;
        return 0;
    }
    char *buf = wr_malloc(3 * (n / 4) + 3);
    ssize_t len = wr_base64_decode(content, n, buf);
    if (len < 0) {
        free(buf);
        return wr_error_set(err, EINVAL, "content is not valid base64");
    }
    *ret = buf;
    *ret_len = (size_t)len;
    return 0;
}

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id",   "path",   "content",     "encoding",
                                        "mode", "append", "create_dirs", NULL};
    const char *id = NULL, *path = NULL, *content = NULL, *encoding = "utf8";
    bool append = false, create_dirs = false;
    uint32_t mode = 0644;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "path", true, 4096, &path, &err) < 0 ||
        mcp_arg_string(args, "content", true, MCP_MAX_FILE_ARG, &content, &err) < 0 ||
        mcp_arg_string(args, "encoding", false, 16, &encoding, &err) < 0 ||
        parse_mode(args, &mode, &err) < 0 || mcp_arg_bool(args, "append", &append, &err) < 0 ||
        mcp_arg_bool(args, "create_dirs", &create_dirs, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    if (strcmp(encoding, "utf8") != 0 && strcmp(encoding, "base64") != 0) {
        mcp_call_fail(call, "encoding must be \"utf8\" or \"base64\"");
        return;
    }
    struct write_call *wc = wr_calloc(1, sizeof(*wc));
    wc->call = call;
    wc->path = wr_strdup(path);
    size_t len = 0;
    uint32_t flags = (append ? GI_WRITE_APPEND : 0) | (create_dirs ? GI_WRITE_CREATE_DIRS : 0);
    if (decode(content, !strcmp(encoding, "base64"), &wc->data, &len, &err) < 0 ||
        vmm_write_file(mcp_call_vmm(call), id, path, wc->data, len, mode, flags, done, wc, &err) <
            0) {
        mcp_call_fail_error(call, err);
        free(wc->path);
        free(wc->data);
        free(wc);
    }
}

const struct mcp_tool mcp_tool_sandbox_write_file = {
    .name = "sandbox_write_file",
    .call = call,
};
