/* Internals of MCP's Streamable HTTP transport (streamable-http.c), shared with its unit
 * test. */
#pragma once

#include "mcp-internal.h"
#include "mcp/http/http.h"

/* JSON-RPC error codes for transport-level failures (the TypeScript SDK's choices). */
#define MCP_HTTP_ERR_TRANSPORT (-32000)
#define MCP_HTTP_ERR_SESSION_NOT_FOUND (-32001)

struct http_session;

/* A POST whose answer is pending. */
struct http_pending {
    struct http_pending *prev, *next;
    struct http_session *session;
    struct http_conn *conn; /* NULL once the client has gone away */
    char *id_key;           /* mcp_message_id_key of the request */
    bool initialize;        /* the answer carries the new Mcp-Session-Id */
    bool sse_ok;            /* the client accepts text/event-stream */
    bool json_ok;           /* the client accepts application/json */
    bool streaming;
};

struct http_session {
    struct http_session *prev, *next;
    struct mcp_http *http;
    struct mcp_session *session;
    char id[65];
    struct http_pending *pending;
    size_t pending_count;
    struct http_conn *stream; /* the standalone GET stream, if open */
    uint64_t next_event_id;
    uint64_t last_used_ms;
    bool doomed; /* initialize failed: freed by the next sweep */
};

struct mcp_http {
    struct mcp_server *server;
    uv_timer_t sweep;
    bool stopping;
    size_t max_sessions, session_count;
    struct http_session *sessions;
};
