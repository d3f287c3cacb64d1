/* sandbox_read_file: read a file from inside a sandbox, as text or base64. */
#include <string.h>

#include "common.h"
#include "util/metrics.h"

/* The default read of a base64 call: 3 MiB become 4 MiB of base64, 8 MiB in the result. */
#define DEFAULT_BASE64_LENGTH (3u << 20)

struct read_call {
    struct mcp_call *call;
    bool base64;
    bool explicit_length; /* the client set length: no result budget */
    uint64_t offset;
    char *path;
};

static void fail_read(struct read_call *rc, struct wr_error *err)
{
    if (err->status == ENOENT)
        wr_error_wrap(&err, "no file '%s' in the sandbox (relative paths start at /workspace)",
                      rc->path);
    else
        wr_error_wrap(&err, "reading '%s'", rc->path);
    mcp_call_fail_error(rc->call, err);
}

/* A read cut at `length` may end inside a UTF-8 character: drop that partial tail. */
static size_t utf8_prefix(const char *buf, size_t len, bool cut)
{
    if (wr_utf8_valid(buf, len))
        return len;
    for (size_t drop = 1; cut && drop <= 3 && drop <= len; drop++)
        if (wr_utf8_valid(buf, len - drop))
            return len - drop;
    return (size_t)-1;
}

static cJSON *read_result(struct read_call *rc, const char *buf, size_t len, uint64_t size,
                          char **ret_encoded)
{
    bool truncated = rc->offset + len < size;
    cJSON *r = cJSON_CreateObject();
    if (rc->base64) {
        /* Referenced, not copied: the caller frees it after the result is sent. */
        char *enc = wr_malloc(wr_base64_encoded_len(len) + 1);
        wr_base64_encode(buf, len, enc);
        cJSON_AddItemToObject(r, "content", cJSON_CreateStringReference(enc));
        *ret_encoded = enc;
    } else {
        size_t keep = utf8_prefix(buf, len, truncated);
        if (keep == (size_t)-1) {
            cJSON_Delete(r);
            return NULL;
        }
        if (!rc->explicit_length)
            keep = mcp_fit_text(buf, keep, MCP_RESULT_BUDGET);
        _cleanup_free_ char *text = wr_strndup(buf, keep);
        cJSON_AddItemToObject(r, "content", cJSON_CreateString(text));
        truncated = truncated || keep < len;
        len = keep;
    }
    cJSON_AddStringToObject(r, "encoding", rc->base64 ? "base64" : "utf8");
    cJSON_AddNumberToObject(r, "size", (double)size);
    cJSON_AddNumberToObject(r, "bytes_read", (double)len);
    cJSON_AddBoolToObject(r, "truncated", truncated);
    wr_metric_add(&wr_metric_file_bytes, "read", NULL, (double)len);
    return r;
}

static void done(void *data, const char *buf, size_t len, uint64_t size, struct wr_error *err)
{
    struct read_call *rc = data;
    _cleanup_free_ char *encoded = NULL;
    cJSON *r = err ? NULL : read_result(rc, buf, len, size, &encoded);
    if (err)
        fail_read(rc, err);
    else if (!r)
        mcp_call_fail(rc->call, "'%s' is not valid UTF-8 text; read it with encoding \"base64\"",
                      rc->path);
    else
        mcp_call_succeed(rc->call, r);
    free(rc->path);
    free(rc);
}

static void call(struct mcp_call *call, const cJSON *args)
{
    static const char *const known[] = {"id", "path", "offset", "length", "encoding", NULL};
    const char *id = NULL, *path = NULL, *encoding = "utf8";
    int64_t offset = 0, length = -1;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 || mcp_arg_sandbox(args, &id, &err) < 0 ||
        mcp_arg_string(args, "path", true, 4096, &path, &err) < 0 ||
        mcp_arg_int(args, "offset", false, 0, INT64_MAX / 2, &offset, &err) < 0 ||
        mcp_arg_int(args, "length", false, 0, VMM_MAX_FILE_BYTES, &length, &err) < 0 ||
        mcp_arg_string(args, "encoding", false, 16, &encoding, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    if (strcmp(encoding, "utf8") != 0 && strcmp(encoding, "base64") != 0) {
        mcp_call_fail(call, "encoding must be \"utf8\" or \"base64\"");
        return;
    }
    bool base64 = !strcmp(encoding, "base64");
    bool explicit_length = length >= 0;
    if (!explicit_length) /* what fits MCP_RESULT_BUDGET: base64 is 4/3, and sent twice */
        length = base64 ? DEFAULT_BASE64_LENGTH : MCP_RESULT_BUDGET / 2;
    struct read_call *rc = wr_calloc(1, sizeof(*rc));
    *rc = (struct read_call){.call = call,
                             .base64 = base64,
                             .explicit_length = explicit_length,
                             .offset = (uint64_t)offset,
                             .path = wr_strdup(path)};
    if (vmm_read_file(mcp_call_vmm(call), id, path, (uint64_t)offset, (uint64_t)length, done, rc,
                      &err) < 0) {
        mcp_call_fail_error(call, err);
        free(rc->path);
        free(rc);
    }
}

const struct mcp_tool mcp_tool_sandbox_read_file = {
    .name = "sandbox_read_file",
    .call = call,
};
