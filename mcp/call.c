/* tools/call: argument checks, the call handle tools work with, progress, results. */
#include <stdio.h>
#include <string.h>

#include "mcp-internal.h"
#include "util/metrics.h"
#include "vmm/vmm.h"

/* Clients reset their idle timers on progress; more than a few a second only costs. */
#define PROGRESS_MIN_INTERVAL_MS 200

static const struct mcp_tool *tool_find(const struct mcp_server *server, const char *name)
{
    for (size_t i = 0; server->tools[i]; i++)
        if (!strcmp(server->tools[i]->name, name))
            return server->tools[i];
    return NULL;
}

struct vmm *mcp_call_vmm(struct mcp_call *call)
{
    return call->session ? call->session->server->vmm : NULL;
}

bool mcp_call_cancelled(const struct mcp_call *call)
{
    return call->cancelled;
}

void mcp_call_on_cancel(struct mcp_call *call, void (*cb)(void *data), void *data)
{
    call->cancel_cb = cb;
    call->cancel_data = data;
}

bool mcp_call_wants_progress(const struct mcp_call *call)
{
    return call->progress_token && call->session && !call->cancelled;
}

void mcp_call_progress(struct mcp_call *call, const char *message)
{
    if (!mcp_call_wants_progress(call) || call->ended)
        return;
    uint64_t now = wr_now_ms();
    if (call->last_progress_ms && now - call->last_progress_ms < PROGRESS_MIN_INTERVAL_MS)
        return;
    call->last_progress_ms = now;
    call->progress += 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    cJSON_AddStringToObject(o, "method", "notifications/progress");
    cJSON *p = cJSON_AddObjectToObject(o, "params");
    cJSON_AddItemToObject(p, "progressToken", cJSON_Duplicate(call->progress_token, true));
    cJSON_AddNumberToObject(p, "progress", call->progress);
    if (message)
        cJSON_AddStringToObject(p, "message", message);
    mcp__session_send(call->session, o, call->id_key, false);
}

void mcp_call_log(struct mcp_call *call, const char *level, const char *fmt, ...)
{
    if (!call->session || call->cancelled)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        abort();
    va_end(ap);
    mcp__session_log(call->session, level, text, call->id_key);
    free(text);
}

static void call_free(struct mcp_call *call)
{
    cJSON_Delete(call->request);
    free(call->id_key);
    free(call->client_name);
    free(call);
}

/* The sandbox's activity log: every tool call on a sandbox, from any client, is an event
 * of that sandbox (kind "tool"): client, tool, a short summary of the arguments, outcome,
 * duration; for exec, the exit code and the first lines of output. */
static void record(struct mcp_call *call, const cJSON *structured, const char *error)
{
    struct vmm *vmm = call->vmm;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(call->request, "params"), "arguments");
    const char *sandbox = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(args, "id"));
    const char *made = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(structured, "id"));
    if (!vmm || (!sandbox && !(made && !strncmp(call->tool->name, "sandbox_", 8))))
        return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "client", call->client_name ? call->client_name : "");
    cJSON_AddStringToObject(d, "tool", call->tool->name);
    /* The arguments, each value cut to 80 characters (file contents are not kept). */
    cJSON *summary = cJSON_AddObjectToObject(d, "args");
    const cJSON *a;
    cJSON_ArrayForEach(a, args)
    {
        if (!strcmp(a->string, "id") || !strcmp(a->string, "content"))
            continue;
        char *text = cJSON_PrintUnformatted(a);
        size_t n = text ? strlen(text) : 0;
        _cleanup_free_ char *cut = wr_utf8_sanitize(text ? text : "", n > 80 ? 80 : n);
        cJSON_AddStringToObject(summary, a->string, cut);
        free(text);
    }
    cJSON_AddBoolToObject(d, "ok", error == NULL);
    if (error) {
        _cleanup_free_ char *cut = wr_utf8_sanitize(error, strnlen(error, 300));
        cJSON_AddStringToObject(d, "error", cut);
    }
    uint64_t now = uv_now(call->loop);
    cJSON_AddNumberToObject(d, "duration_ms", (double)(now - call->started_ms));
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(structured, "exit_code");
    if (cJSON_IsNumber(code)) {
        cJSON_AddNumberToObject(d, "exit_code", code->valuedouble);
        const char *out =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(structured, "stdout"));
        const char *err =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(structured, "stderr"));
        for (int k = 0; k < 2; k++) {
            const char *text = k ? err : out;
            if (!text || !*text)
                continue;
            /* The first five lines, 400 bytes at most. */
            size_t n = 0;
            for (int lines = 0; text[n] && n < 400 && lines < 5; n++)
                lines += text[n] == '\n';
            _cleanup_free_ char *head = wr_utf8_sanitize(text, n);
            cJSON_AddStringToObject(d, k ? "stderr_head" : "stdout_head", head);
        }
    }
    _cleanup_free_ char *detail = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    vmm_record_activity(vmm, sandbox ? sandbox : made, detail);
}

/* The call's outcome and latency in the metrics (util/metrics.h). */
static void count_call(const struct mcp_call *call, bool ok)
{
    const char *outcome = call->cancelled ? "cancelled" : ok ? "ok" : "error";
    double seconds = (double)(uv_hrtime() - call->started_ns) / 1e9;
    wr_metric_add(&wr_metric_tool_calls, call->tool->name, outcome, 1);
    wr_metric_observe(&wr_metric_tool_call_seconds, call->tool->name, NULL, seconds);
}

void mcp__call_detach(struct mcp_call *call, bool cancel)
{
    struct mcp_session *s = call->session;
    if (s) {
        for (struct mcp_call **p = &s->calls; *p; p = &(*p)->next) {
            if (*p == call) {
                *p = call->next;
                break;
            }
        }
        call->session = NULL;
    }
    if (cancel && !call->cancelled) {
        call->cancelled = true;
        if (call->cancel_cb)
            call->cancel_cb(call->cancel_data);
    }
}

/* Marks the call ended and unlinks it. Returns the session to answer, or NULL when the
 * answer must not be sent (cancelled, session gone). A tool ends each call exactly once;
 * the call is freed then. */
static struct mcp_session *call_end_begin(struct mcp_call *call)
{
    call->ended = true;
    struct mcp_session *s = call->cancelled ? NULL : call->session;
    mcp__call_detach(call, false);
    return s;
}

/* Starts a response to call in out: {"jsonrpc":"2.0","id":ID,"result": */
static void response_start(struct mcp_call *call, struct wr_buf *out)
{
    _cleanup_free_ char *id =
        cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(call->request, "id"));
    wr_buf_init(out, SIZE_MAX / 2);
    wr_buf_printf(out, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":", id);
}

static void response_send(struct mcp_session *s, struct mcp_call *call, struct wr_buf *out)
{
    wr_buf_append(out, "}", 1);
    size_t len;
    char *text = wr_buf_steal(out, &len);
    mcp__session_send_owned(s, text, len, call->id_key, true);
}

void mcp_call_succeed(struct mcp_call *call, cJSON *structured)
{
    record(call, structured, NULL);
    count_call(call, true);
    struct mcp_session *s = call_end_begin(call);
    if (s) {
        /* One buffer, no intermediate copies (results can carry tens of megabytes):
         * structuredContent is printed in place, then the same bytes are appended
         * escaped as the text block. */
        struct wr_buf out;
        response_start(call, &out);
        wr_buf_printf(&out, "{\"structuredContent\":");
        size_t start = out.len;
        mcp__json_print(&out, structured);
        size_t end = out.len;
        wr_buf_reserve(&out, mcp__json_string_len(out.data + start, end - start) + 64);
        wr_buf_printf(&out, ",\"content\":[{\"type\":\"text\",\"text\":");
        mcp__json_append_string(&out, out.data + start, end - start);
        wr_buf_printf(&out, "}],\"isError\":false}");
        response_send(s, call, &out);
    }
    cJSON_Delete(structured);
    call_free(call);
}

static void fail_text(struct mcp_call *call, const char *text)
{
    record(call, NULL, text);
    count_call(call, false);
    struct mcp_session *s = call_end_begin(call);
    if (s) {
        cJSON *r = cJSON_CreateObject();
        cJSON *content = cJSON_AddArrayToObject(r, "content");
        cJSON *block = cJSON_CreateObject();
        cJSON_AddStringToObject(block, "type", "text");
        cJSON_AddStringToObject(block, "text", text);
        cJSON_AddItemToArray(content, block);
        cJSON_AddBoolToObject(r, "isError", true);
        struct wr_buf out;
        response_start(call, &out);
        mcp__json_print(&out, r);
        cJSON_Delete(r);
        response_send(s, call, &out);
    }
    call_free(call);
}

void mcp_call_fail(struct mcp_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        abort();
    va_end(ap);
    fail_text(call, text);
    free(text);
}

void mcp_call_fail_error(struct mcp_call *call, struct wr_error *err)
{
    fail_text(call, err && err->msg ? err->msg : "unknown error");
    wr_error_free(err);
}

uv_loop_t *mcp_call_loop(struct mcp_call *call)
{
    return call->session ? call->session->server->loop : NULL;
}

void mcp__tools_call(struct mcp_session *s, cJSON *msg)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
    _cleanup_free_ char *key = cJSON_PrintUnformatted(id);
    const char *problem = NULL;
    const struct mcp_tool *tool = NULL;
    if (!cJSON_IsString(name))
        problem = "tools/call: params.name (string) is required";
    else if (!(tool = tool_find(s->server, name->valuestring)))
        problem = "tools/call: unknown tool";
    else if (args && !cJSON_IsObject(args) && !cJSON_IsNull(args))
        problem = "tools/call: params.arguments must be an object";
    for (struct mcp_call *c = s->calls; !problem && c; c = c->next)
        if (!strcmp(c->id_key, key))
            problem = "tools/call: a request with this id is already in flight";
    if (problem) {
        _cleanup_free_ char *m =
            name && cJSON_IsString(name) && !tool
                ? wr_asprintf("%s '%.128s'; call tools/list for the tools there are", problem,
                              name->valuestring)
                : wr_strdup(problem);
        _cleanup_free_ char *text = mcp_error_json(id, MCP_ERR_INVALID_PARAMS, m);
        mcp__session_send_text(s, text, strlen(text), key, true);
        cJSON_Delete(msg);
        return;
    }
    struct mcp_call *call = wr_calloc(1, sizeof(*call));
    call->session = s;
    call->tool = tool;
    call->request = msg;
    call->id_key = TAKE_PTR(key);
    cJSON *p = cJSON_GetObjectItemCaseSensitive(call->request, "params");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(p, "_meta");
    cJSON *token = cJSON_GetObjectItemCaseSensitive(meta, "progressToken");
    if (token && (cJSON_IsString(token) || cJSON_IsNumber(token)))
        call->progress_token = token;
    cJSON *a = cJSON_GetObjectItemCaseSensitive(p, "arguments");
    if (!a || cJSON_IsNull(a)) {
        cJSON_DeleteItemFromObjectCaseSensitive(p, "arguments");
        a = cJSON_AddObjectToObject(p, "arguments");
    }
    call->started_ms = uv_now(s->server->loop);
    call->started_ns = uv_hrtime();
    call->vmm = s->server->vmm;
    call->loop = s->server->loop;
    call->client_name = s->client_name ? wr_strdup(s->client_name) : NULL;
    call->next = s->calls;
    s->calls = call;
    if (!s->server->vmm) {
        mcp_call_fail(call,
                      "this server has no sandbox manager (started without a state directory)");
        return;
    }
    tool->call(call, a);
}

/* ---- argument helpers ------------------------------------------------------------ */

int mcp_args_check_known(const cJSON *args, const char *const *allowed, struct wr_error **err)
{
    for (const cJSON *c = args->child; c; c = c->next) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(c->string, allowed[i]);
        if (ok)
            continue;
        struct wr_buf names;
        wr_buf_init(&names, 1024);
        for (size_t i = 0; allowed[i]; i++)
            wr_buf_printf(&names, "%s%s", i ? ", " : "", allowed[i]);
        int r = wr_error_set(err, EINVAL, "unknown argument '%.64s'; this tool takes: %s",
                             c->string, names.data ? names.data : "nothing");
        wr_buf_free(&names);
        return r;
    }
    return 0;
}

int mcp_arg_string(const cJSON *args, const char *key, bool required, size_t max_len,
                   const char **ret, struct wr_error **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return wr_error_set(err, EINVAL, "missing required argument '%s' (a string)", key);
        return 0;
    }
    if (!cJSON_IsString(v))
        return wr_error_set(err, EINVAL, "argument '%s' must be a string", key);
    if (strlen(v->valuestring) > max_len)
        return wr_error_set(err, EINVAL, "argument '%s' is too long (at most %zu bytes)", key,
                            max_len);
    *ret = v->valuestring;
    return 1;
}

int mcp_arg_int(const cJSON *args, const char *key, bool required, int64_t min, int64_t max,
                int64_t *ret, struct wr_error **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return wr_error_set(err, EINVAL, "missing required argument '%s' (an integer)", key);
        return 0;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
    if (!cJSON_IsNumber(v) || d != (double)(int64_t)d)
        return wr_error_set(err, EINVAL, "argument '%s' must be an integer", key);
    if ((int64_t)d < min || (int64_t)d > max)
        return wr_error_set(err, EINVAL, "argument '%s' must be between %lld and %lld", key,
                            (long long)min, (long long)max);
    *ret = (int64_t)d;
    return 1;
}

int mcp_arg_bool(const cJSON *args, const char *key, bool *ret, struct wr_error **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v))
        return wr_error_set(err, EINVAL, "argument '%s' must be true or false", key);
    *ret = cJSON_IsTrue(v);
    return 1;
}

int mcp_arg_string_array(const cJSON *args, const char *key, bool required, size_t max_items,
                         size_t max_len, char ***ret, struct wr_error **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return wr_error_set(err, EINVAL, "missing required argument '%s' (an array of strings)",
                                key);
        return 0;
    }
    if (!cJSON_IsArray(v))
        return wr_error_set(err, EINVAL, "argument '%s' must be an array of strings", key);
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n > max_items)
        return wr_error_set(err, EINVAL, "argument '%s' has too many items (at most %zu)", key,
                            max_items);
    char **out = wr_calloc(n + 1, sizeof(char *));
    size_t i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c) || strlen(c->valuestring) > max_len) {
            wr_strv_free(out);
            return wr_error_set(err, EINVAL,
                                "argument '%s'[%zu] must be a string of at most %zu bytes", key, i,
                                max_len);
        }
        out[i] = wr_strdup(c->valuestring);
    }
    *ret = out;
    return 1;
}

static bool env_name_valid(const char *s)
{
    if (!*s || strlen(s) > 128 || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

int mcp_arg_env(const cJSON *args, const char *key, char ***ret, struct wr_error **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v))
        return wr_error_set(err, EINVAL, "argument '%s' must be an object of string values", key);
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n > 256)
        return wr_error_set(err, EINVAL, "argument '%s' has too many variables (at most 256)", key);
    char **out = wr_calloc(n + 1, sizeof(char *));
    size_t i = 0;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (!env_name_valid(c->string) || !cJSON_IsString(c) || strlen(c->valuestring) > 32768) {
            wr_strv_free(out);
            return wr_error_set(
                err, EINVAL,
                "argument '%s': '%.64s' must be a variable name ([A-Za-z_][A-Za-z0-9_]*) "
                "with a string value of at most 32 KiB",
                key, c->string);
        }
        out[i++] = wr_asprintf("%s=%s", c->string, c->valuestring);
    }
    *ret = out;
    return 1;
}
