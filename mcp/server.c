/* The MCP session core: JSON-RPC 2.0 framing rules, the lifecycle (initialize, ping,
 * logging/setLevel, cancellation) and tools/list + tools/call dispatch. Transports own
 * the bytes; this file owns the meaning. */
#include <stdio.h>
#include <string.h>

#include "mcp-internal.h"

static const char *const supported_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", NULL};

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
    cJSON *tool_list;
    if (mcp_tool_definitions_load(mcp_tools, &tool_list, err) < 0)
        return wr_error_wrap(err, "loading the tool definitions");
    struct mcp_server *s = wr_calloc(1, sizeof(*s));
    s->tools = mcp_tools;
    s->tool_list = tool_list;
    s->loop = opts->loop;
    s->vmm = opts->vmm;
    s->version = wr_strdup(opts->server_version ? opts->server_version : "0.1.0");
    const char *page = getenv("WARREN_TOOLS_PAGE_SIZE");
    s->tools_page_size = page && atoi(page) > 0 ? (size_t)atoi(page) : 100;
    *ret = s;
    return 0;
}

void mcp_server_drain(struct mcp_server *server)
{
    server->draining = true;
}

size_t mcp_server_calls_in_flight(const struct mcp_server *server)
{
    size_t n = 0;
    for (const struct mcp_session *s = server->sessions; s; s = s->next)
        for (const struct mcp_call *c = s->calls; c; c = c->next)
            n++;
    return n;
}

size_t mcp_server_cancel_calls(struct mcp_server *server, const char *message)
{
    size_t n = 0;
    for (struct mcp_session *s = server->sessions; s; s = s->next) {
        while (s->calls) {
            struct mcp_call *call = s->calls;
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(call->request, "id");
            _cleanup_free_ char *text = mcp_error_json(id, MCP_ERR_SHUTTING_DOWN, message);
            mcp__session_send_text(s, text, strlen(text), call->id_key, true);
            /* Detached and cancelled: the tool stops its work (an exec's process is
             * killed) and ends the call without answering again. */
            mcp__call_detach(call, true);
            n++;
        }
    }
    return n;
}

void mcp_server_free(struct mcp_server *server)
{
    if (!server)
        return;
    cJSON_Delete(server->tool_list);
    free(server->version);
    free(server);
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

/* ---- sessions ------------------------------------------------------------------ */

struct mcp_session *mcp_session_new(struct mcp_server *server, const struct mcp_sink *sink,
                                    void *transport_data)
{
    struct mcp_session *s = wr_calloc(1, sizeof(*s));
    s->server = server;
    s->sink = *sink;
    s->transport_data = transport_data;
    s->log_level = mcp__log_level_index("notice");
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
    free(s->client_name);
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
    const char *client = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(params, "clientInfo"), "name"));
    free(s->client_name);
    s->client_name = client ? wr_utf8_sanitize(client, strnlen(client, 64)) : NULL;
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
    size_t offset = 0, total = (size_t)cJSON_GetArraySize(s->server->tool_list);
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
        cJSON_AddItemToArray(
            arr, cJSON_Duplicate(cJSON_GetArrayItem(s->server->tool_list, (int)i), true));
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
    int idx = cJSON_IsString(level) ? mcp__log_level_index(level->valuestring) : -1;
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
    if (!mcp__id_valid(rid))
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
    if (s->server->draining && strcmp(method, "ping") != 0)
        send_error(s, id, MCP_ERR_SHUTTING_DOWN,
                   "the server is shutting down: send this request again once it is back "
                   "(sandboxes keep running)");
    else if (!strcmp(method, "initialize"))
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
        send_error(s, mcp__id_valid(id) ? id : NULL, MCP_ERR_INVALID_REQUEST,
                   "invalid request: expected a JSON-RPC 2.0 request, notification or response");
        break;
    }
    }
    cJSON_Delete(msg);
}
