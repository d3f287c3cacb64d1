/* Internals shared by the MCP core's files. They are layered, each calling only the ones
 * below it:
 *
 *   stdio.c, streamable-http.c   the transports: bytes in, messages to a session
 *   server.c                     sessions, the lifecycle methods, tools/list
 *   call.c                       tools/call and the call handle tools work with
 *   session.c                    what a session sends (through its transport's sink)
 *   message.c, json.c            JSON-RPC messages; fast serialization of big results
 *
 * and tools/registry.c lists the tools (tools/<name>.c, tools/<name>.json). */
#pragma once

#include "mcp.h"
#include "tool.h"

enum {
    MCP_ERR_PARSE = -32700,
    MCP_ERR_INVALID_REQUEST = -32600,
    MCP_ERR_METHOD_NOT_FOUND = -32601,
    MCP_ERR_INVALID_PARAMS = -32602,
    MCP_ERR_INTERNAL = -32603,
    /* Implementation-defined server error (-32000..-32099): the request was refused or
     * its call cancelled because the server is shutting down. */
    MCP_ERR_SHUTTING_DOWN = -32000,
};

struct mcp_server {
    uv_loop_t *loop;
    struct vmm *vmm;
    char *version;
    size_t tools_page_size;
    const struct mcp_tool *const *tools; /* NULL-terminated, in tools/list order */
    cJSON *tool_list;                    /* their tools/list entries, in the same order */
    struct mcp_session *sessions;
    bool draining; /* shutting down: new requests are refused (mcp_server_drain) */
};

struct mcp_session {
    struct mcp_server *server;
    struct mcp_sink sink;
    void *transport_data;
    bool initialized;
    char *protocol_version;
    char *client_name;      /* clientInfo.name of initialize (64 bytes at most), or NULL */
    int log_level;          /* index into the syslog level names; messages below it are not sent */
    struct mcp_call *calls; /* in flight */
    struct mcp_session *next;
};

struct mcp_call {
    struct mcp_session *session; /* NULL once detached (cancelled or session gone) */
    const struct mcp_tool *tool;
    cJSON *request; /* the whole request; args point into it */
    char *id_key;
    cJSON *progress_token; /* borrowed from request, or NULL */
    double progress;
    uint64_t last_progress_ms;
    bool cancelled;
    bool ended;
    void (*cancel_cb)(void *data);
    void *cancel_data;
    uint64_t started_ms;
    uint64_t started_ns; /* uv_hrtime: the latency histogram's start */
    char *client_name; /* copied from the session: the call may outlive it */
    struct vmm *vmm;   /* for the activity log, also once the session is gone */
    uv_loop_t *loop;
    struct mcp_call *next;
};

/* message.c: a JSON-RPC id is a string or a number. */
bool mcp__id_valid(const cJSON *id);

/* session.c */
void mcp__session_send(struct mcp_session *s, cJSON *msg, const char *related_id, bool final);
void mcp__session_log(struct mcp_session *s, const char *level, const char *text,
                      const char *related_id);
/* The index of a syslog level name (debug = 0 ... emergency = 7), or -1. */
int mcp__log_level_index(const char *level);
/* mcp/json.c: fast serialization of (possibly huge) results. */
void mcp__json_print(struct wr_buf *b, const cJSON *j);
void mcp__json_append_string(struct wr_buf *b, const char *s, size_t n);
/* Bytes s takes as a JSON string literal, quotes included. */
size_t mcp__json_string_len(const char *s, size_t n);

/* call.c: handles tools/call; takes ownership of msg. */
void mcp__tools_call(struct mcp_session *s, cJSON *msg);
/* Sends a serialized message the session takes over (malloc'd, room for one more byte). */
void mcp__session_send_owned(struct mcp_session *s, char *text, size_t len, const char *related_id,
                             bool final);
/* Sends an already serialized message (len bytes, no newline). */
void mcp__session_send_text(struct mcp_session *s, const char *text, size_t len,
                            const char *related_id, bool final);
/* Unlinks a call from its session; with cancel, marks it cancelled and runs its cancel
 * hook. The call itself is freed when the tool ends it. */
void mcp__call_detach(struct mcp_call *call, bool cancel);
