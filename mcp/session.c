/* What a session sends: messages through its transport's sink, and log notifications
 * above the level the client set. */
#include <string.h>

#include "mcp-internal.h"

static const char *const log_levels[] = {"debug",    "info",  "notice",    "warning", "error",
                                         "critical", "alert", "emergency", NULL};

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

int mcp__log_level_index(const char *level)
{
    for (int i = 0; log_levels[i]; i++)
        if (!strcmp(level, log_levels[i]))
            return i;
    return -1;
}

void mcp__session_log(struct mcp_session *s, const char *level, const char *text,
                      const char *related_id)
{
    int idx = mcp__log_level_index(level);
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
