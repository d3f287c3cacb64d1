/* JSON-RPC 2.0 messages: parsing with the size, depth and NUL checks, what kind a message
 * is, and error responses. */
#include <string.h>

#include "mcp-internal.h"

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

bool mcp__id_valid(const cJSON *id)
{
    return id && (cJSON_IsString(id) || (cJSON_IsNumber(id)));
}

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
        *ret_error_json = mcp_error_json(mcp__id_valid(id) ? id : NULL, MCP_ERR_INVALID_PARAMS,
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
        return mcp__id_valid(id) ? MCP_MSG_REQUEST : MCP_MSG_INVALID;
    }
    if (mcp__id_valid(id) && (cJSON_GetObjectItemCaseSensitive(msg, "result") ||
                              cJSON_GetObjectItemCaseSensitive(msg, "error")))
        return MCP_MSG_RESPONSE;
    return MCP_MSG_INVALID;
}

char *mcp_message_id_key(const cJSON *msg)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    return id ? cJSON_PrintUnformatted(id) : NULL;
}
