/* The MCP session core: JSON-RPC 2.0 framing rules, the lifecycle (initialize, ping,
 * logging/setLevel, cancellation) and tools/list + tools/call dispatch. Transports own
 * the bytes; this file owns the meaning. */
#include <stdio.h>
#include <string.h>

#include "mcp-internal.h"

static const char *const supported_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", NULL};

static const char *const log_levels[] = {"debug",    "info",  "notice",    "warning", "error",
                                         "critical", "alert", "emergency", NULL};

bool mcp_protocol_version_supported(const char *v)
{
    for (size_t i = 0; v && supported_versions[i]; i++)
        if (!strcmp(v, supported_versions[i]))
            return true;
    return false;
}

int mcp_server_new(const struct mcp_server_options *opts, struct mcp_server **ret,
                   struct wr_error **err)
{
    struct mcp_server *s = wr_calloc(1, sizeof(*s));
    s->loop = opts->loop;
    s->vmm = opts->vmm;
    s->version = wr_strdup(opts->server_version ? opts->server_version : "0.1.0");
    const char *page = getenv("WARREN_TOOLS_PAGE_SIZE");
    s->tools_page_size = page && atoi(page) > 0 ? (size_t)atoi(page) : 100;
    *ret = s;
    return 0;
}

void mcp_server_free(struct mcp_server *server)
{
    if (!server)
        return;
    free(server->version);
    free(server);
}

/* ---- parsing ------------------------------------------------------------------- */

static int json_depth(const cJSON *j, int depth)
{
    if (depth > MCP_MAX_JSON_DEPTH)
        return depth;
    int max = depth;
    for (const cJSON *c = j ? j->child : NULL; c; c = c->next) {
        int d = json_depth(c, depth + 1);
        if (d > max)
            max = d;
        if (max > MCP_MAX_JSON_DEPTH)
            break;
    }
    return max;
}

char *mcp_error_json(const cJSON *id, int code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    cJSON_AddItemToObject(o, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static bool id_valid(const cJSON *id);

/* True when a JSON string in text holds an escaped NUL (\u0000). cJSON would decode it
 * into a C string that silently ends there: "a\u0000b" would become "a". */
static bool has_escaped_nul(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while ((p = memchr(p, '\\', (size_t)(end - p)))) {
        if (end - p >= 6 && !memcmp(p + 1, "u0000", 5))
            return true;
        p += 2; /* skip the escaped character, which may itself be a backslash */
        if (p >= end)
            break;
    }
    return false;
}

int mcp_parse_message(const char *text, size_t len, cJSON **ret, char **ret_error_json)
{
    *ret = NULL;
    if (len > MCP_MAX_MESSAGE_BYTES) {
        *ret_error_json = mcp_error_json(NULL, MCP_ERR_INVALID_REQUEST, "message too large");
        return -EMSGSIZE;
    }
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j) {
        *ret_error_json = mcp_error_json(NULL, MCP_ERR_PARSE, "parse error: not valid JSON");
        return -EINVAL;
    }
    if (cJSON_IsArray(j)) {
        cJSON_Delete(j);
        *ret_error_json = mcp_error_json(NULL, MCP_ERR_INVALID_REQUEST,
                                         "JSON-RPC batches are not supported; send one message");
        return -EINVAL;
    }
    if (cJSON_IsObject(j) && has_escaped_nul(text, len)) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
        *ret_error_json = mcp_error_json(id_valid(id) ? id : NULL, MCP_ERR_INVALID_PARAMS,
                                         "strings must not contain NUL characters (\\u0000); "
                                         "send binary data as base64");
        cJSON_Delete(j);
        return -EINVAL;
    }
    if (!cJSON_IsObject(j) || json_depth(j, 0) > MCP_MAX_JSON_DEPTH) {
        cJSON_Delete(j);
        *ret_error_json = mcp_error_json(NULL, MCP_ERR_INVALID_REQUEST,
                                         "invalid request: expected one JSON-RPC object "
                                         "nested at most 64 levels deep");
        return -EINVAL;
    }
    *ret = j;
    return 0;
}

static bool id_valid(const cJSON *id)
{
    return id && (cJSON_IsString(id) || (cJSON_IsNumber(id)));
}

enum mcp_message_kind mcp_message_kind(const cJSON *msg)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc");
    if (!cJSON_IsString(v) || strcmp(v->valuestring, "2.0") != 0)
        return MCP_MSG_INVALID;
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    if (method) {
        if (!cJSON_IsString(method))
            return MCP_MSG_INVALID;
        if (!id)
            return MCP_MSG_NOTIFICATION;
        return id_valid(id) ? MCP_MSG_REQUEST : MCP_MSG_INVALID;
    }
    if (id_valid(id) && (cJSON_GetObjectItemCaseSensitive(msg, "result") ||
                         cJSON_GetObjectItemCaseSensitive(msg, "error")))
        return MCP_MSG_RESPONSE;
    return MCP_MSG_INVALID;
}

char *mcp_message_id_key(const cJSON *msg)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    return id ? cJSON_PrintUnformatted(id) : NULL;
}

/* ---- sending ------------------------------------------------------------------- */

void mcp__session_send_text(struct mcp_session *s, const char *text, size_t len,
                            const char *related_id, bool final)
{
    if (s->sink.send)
        s->sink.send(s->transport_data, text, len, related_id, final);
}

void mcp__session_send_owned(struct mcp_session *s, char *text, size_t len, const char *related_id,
                             bool final)
{
    if (s->sink.send_owned) {
        s->sink.send_owned(s->transport_data, text, len, related_id, final);
        return;
    }
    mcp__session_send_text(s, text, len, related_id, final);
    free(text);
}

void mcp__session_send(struct mcp_session *s, cJSON *msg, const char *related_id, bool final)
{
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (text)
        mcp__session_send_text(s, text, strlen(text), related_id, final);
    free(text);
}

static void send_result(struct mcp_session *s, const cJSON *id, cJSON *result)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    cJSON_AddItemToObject(o, "id", cJSON_Duplicate(id, true));
    cJSON_AddItemToObject(o, "result", result);
    _cleanup_free_ char *key = cJSON_PrintUnformatted(id);
    mcp__session_send(s, o, key, true);
}

static void send_error(struct mcp_session *s, const cJSON *id, int code, const char *message)
{
    _cleanup_free_ char *text = mcp_error_json(id, code, message);
    _cleanup_free_ char *key = id ? cJSON_PrintUnformatted(id) : NULL;
    mcp__session_send_text(s, text, strlen(text), key, true);
}

static int level_index(const char *level)
{
    for (int i = 0; log_levels[i]; i++)
        if (!strcmp(level, log_levels[i]))
            return i;
    return -1;
}

void mcp__session_log(struct mcp_session *s, const char *level, const char *text,
                      const char *related_id)
{
    int idx = level_index(level);
    if (!s->initialized || idx < 0 || idx < s->log_level)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    cJSON_AddStringToObject(o, "method", "notifications/message");
    cJSON *p = cJSON_AddObjectToObject(o, "params");
    cJSON_AddStringToObject(p, "level", level);
    cJSON_AddStringToObject(p, "logger", "warren");
    cJSON_AddStringToObject(p, "data", text);
    mcp__session_send(s, o, related_id, false);
}

/* ---- sessions ------------------------------------------------------------------ */

struct mcp_session *mcp_session_new(struct mcp_server *server, const struct mcp_sink *sink,
                                    void *transport_data)
{
    struct mcp_session *s = wr_calloc(1, sizeof(*s));
    s->server = server;
    s->sink = *sink;
    s->transport_data = transport_data;
    s->log_level = level_index("notice");
    s->next = server->sessions;
    server->sessions = s;
    return s;
}

void mcp_session_free(struct mcp_session *s)
{
    if (!s)
        return;
    s->sink.send = NULL;
    while (s->calls)
        mcp__call_detach(s->calls, true);
    for (struct mcp_session **p = &s->server->sessions; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    free(s->protocol_version);
    free(s);
}

bool mcp_session_initialized(const struct mcp_session *s)
{
    return s->initialized;
}

const char *mcp_session_protocol_version(const struct mcp_session *s)
{
    return s->protocol_version;
}

/* ---- methods ------------------------------------------------------------------- */

static const char instructions[] =
    "warren gives you isolated Linux sandboxes. Create one with sandbox_create (pass repo to "
    "get a copy-on-write view of a git repository at /workspace), run commands with "
    "sandbox_exec, move files with sandbox_read_file / sandbox_write_file, and destroy it "
    "with sandbox_destroy when done. Changes never touch the user's working tree.";

static void handle_initialize(struct mcp_session *s, const cJSON *id, const cJSON *params)
{
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(params, "protocolVersion");
    if (!cJSON_IsString(pv)) {
        send_error(s, id, MCP_ERR_INVALID_PARAMS,
                   "initialize: params.protocolVersion (string) is required");
        return;
    }
    const char *version =
        mcp_protocol_version_supported(pv->valuestring) ? pv->valuestring : MCP_PROTOCOL_LATEST;
    free(s->protocol_version);
    s->protocol_version = wr_strdup(version);
    s->initialized = true;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "protocolVersion", version);
    cJSON *caps = cJSON_AddObjectToObject(r, "capabilities");
    cJSON_AddBoolToObject(cJSON_AddObjectToObject(caps, "tools"), "listChanged", false);
    cJSON_AddObjectToObject(caps, "logging");
    cJSON *info = cJSON_AddObjectToObject(r, "serverInfo");
    cJSON_AddStringToObject(info, "name", "warren");
    cJSON_AddStringToObject(info, "title", "warren sandboxes");
    cJSON_AddStringToObject(info, "version", s->server->version);
    cJSON_AddStringToObject(r, "instructions", instructions);
    send_result(s, id, r);
}

static cJSON *tool_json(const struct mcp_tool *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "title", t->title);
    cJSON_AddStringToObject(o, "description", t->description);
    cJSON_AddItemToObject(o, "inputSchema", cJSON_Parse(t->input_schema));
    cJSON_AddItemToObject(o, "outputSchema", cJSON_Parse(t->output_schema));
    cJSON *a = cJSON_AddObjectToObject(o, "annotations");
    cJSON_AddStringToObject(a, "title", t->title);
    cJSON_AddBoolToObject(a, "readOnlyHint", t->read_only);
    cJSON_AddBoolToObject(a, "destructiveHint", t->destructive);
    cJSON_AddBoolToObject(a, "idempotentHint", t->idempotent);
    cJSON_AddBoolToObject(a, "openWorldHint", t->open_world);
    return o;
}

/* Cursors are opaque to clients: "o:<offset>" in base64. */
static int cursor_decode(const char *cursor, size_t *ret_offset)
{
    size_t n = strlen(cursor);
    if (n == 0 || n > 64)
        return -EINVAL;
    char buf[64];
    ssize_t len = wr_base64_decode(cursor, n, buf);
    if (len < 3 || len >= (ssize_t)sizeof(buf) - 1 || buf[0] != 'o' || buf[1] != ':')
        return -EINVAL;
    buf[len] = 0;
    char *end;
    unsigned long v = strtoul(buf + 2, &end, 10);
    if (*end || end == buf + 2)
        return -EINVAL;
    *ret_offset = v;
    return 0;
}

static void handle_tools_list(struct mcp_session *s, const cJSON *id, const cJSON *params)
{
    size_t offset = 0, total = 0;
    while (mcp_tools[total])
        total++;
    const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(params, "cursor");
    if (cursor && (!cJSON_IsString(cursor) || cursor_decode(cursor->valuestring, &offset) < 0 ||
                   offset >= total)) {
        send_error(s, id, MCP_ERR_INVALID_PARAMS, "tools/list: invalid cursor");
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(r, "tools");
    size_t end = WR_MIN(total, offset + s->server->tools_page_size);
    for (size_t i = offset; i < end; i++)
        cJSON_AddItemToArray(arr, tool_json(mcp_tools[i]));
    if (end < total) {
        char raw[32], enc[64];
        snprintf(raw, sizeof(raw), "o:%zu", end);
        wr_base64_encode(raw, strlen(raw), enc);
        cJSON_AddStringToObject(r, "nextCursor", enc);
    }
    send_result(s, id, r);
}

static void handle_set_level(struct mcp_session *s, const cJSON *id, const cJSON *params)
{
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(params, "level");
    int idx = cJSON_IsString(level) ? level_index(level->valuestring) : -1;
    if (idx < 0) {
        send_error(s, id, MCP_ERR_INVALID_PARAMS,
                   "logging/setLevel: level must be one of debug, info, notice, warning, "
                   "error, critical, alert, emergency");
        return;
    }
    s->log_level = idx;
    send_result(s, id, cJSON_CreateObject());
}

static void handle_cancelled(struct mcp_session *s, const cJSON *params)
{
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(params, "requestId");
    if (!id_valid(rid))
        return;
    _cleanup_free_ char *key = cJSON_PrintUnformatted(rid);
    for (struct mcp_call *c = s->calls; c; c = c->next) {
        if (!strcmp(c->id_key, key)) {
            mcp__call_detach(c, true);
            return;
        }
    }
}

/* Handles a request; tools/call takes msg over (its arguments may be megabytes: no copy)
 * and the pointer is cleared, anything else leaves it to the caller. */
static void handle_request(struct mcp_session *s, cJSON **msgp)
{
    cJSON *msg = *msgp;
    const char *method = cJSON_GetObjectItemCaseSensitive(msg, "method")->valuestring;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    if (params && !cJSON_IsObject(params)) {
        send_error(s, id, MCP_ERR_INVALID_PARAMS, "params must be an object");
        return;
    }
    if (!strcmp(method, "initialize"))
        handle_initialize(s, id, params);
    else if (!strcmp(method, "ping"))
        send_result(s, id, cJSON_CreateObject());
    else if (!s->initialized)
        send_error(s, id, MCP_ERR_INVALID_REQUEST,
                   "the session is not initialized: send initialize first");
    else if (!strcmp(method, "tools/list"))
        handle_tools_list(s, id, params);
    else if (!strcmp(method, "tools/call"))
        mcp__tools_call(s, TAKE_PTR(*msgp));
    else if (!strcmp(method, "logging/setLevel"))
        handle_set_level(s, id, params);
    else {
        _cleanup_free_ char *m = wr_asprintf("method not found: %.100s", method);
        send_error(s, id, MCP_ERR_METHOD_NOT_FOUND, m);
    }
}

void mcp_session_handle(struct mcp_session *s, cJSON *msg)
{
    switch (mcp_message_kind(msg)) {
    case MCP_MSG_REQUEST:
        handle_request(s, &msg);
        break;
    case MCP_MSG_NOTIFICATION: {
        const char *method = cJSON_GetObjectItemCaseSensitive(msg, "method")->valuestring;
        if (!strcmp(method, "notifications/cancelled"))
            handle_cancelled(s, cJSON_GetObjectItemCaseSensitive(msg, "params"));
        /* notifications/initialized and unknown notifications need no action. */
        break;
    }
    case MCP_MSG_RESPONSE:
        /* warren sends no requests to clients, so there is nothing to match. */
        break;
    case MCP_MSG_INVALID: {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
        send_error(s, id_valid(id) ? id : NULL, MCP_ERR_INVALID_REQUEST,
                   "invalid request: expected a JSON-RPC 2.0 request, notification or response");
        break;
    }
    }
    cJSON_Delete(msg);
}
