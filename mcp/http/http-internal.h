/* Internals of the Streamable HTTP transport, shared by mcp/http*.c, its unit test and its
 * fuzz target. The request layer (http-request.c) turns bytes into requests with the
 * http_parser library and checks header values; it touches no socket, so a fuzzer can drive
 * it directly. */
#pragma once

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/util.h"

/* Request line plus all headers, counted as received. */
#define MCP_HTTP_MAX_HEADER_BYTES (16u * 1024u)
#define MCP_HTTP_MAX_HEADERS 64u

/* One HTTP request: the headers the transport acts on, and the body. Strings are NULL when
 * the header is absent; everything is owned by the request. */
struct mcp_http_request {
    enum http_method method;
    unsigned short http_major, http_minor;
    bool keep_alive; /* the client allows another request on this connection */
    char *url;
    char *host;
    char *origin;
    char *authorization;
    char *content_type;
    char *accept;
    char *session_id;       /* Mcp-Session-Id */
    char *protocol_version; /* MCP-Protocol-Version */
    char *expect;
    struct wr_buf body; /* capped at the parser's body_max */
};

struct mcp_http_parser;

/* Called once the headers are in, before any body byte is stored. Returns 0 to go on, or an
 * HTTP status (401, 403, 413, ...) that rejects the request without reading its body. */
typedef int (*mcp_http_headers_cb)(void *data, struct mcp_http_request *req);

struct mcp_http_parser {
    http_parser parser;
    struct mcp_http_request req;
    struct wr_buf field; /* header name being received */
    struct wr_buf value; /* header value being received */
    bool in_value;
    size_t header_bytes;
    unsigned header_count;
    size_t body_max;
    bool started; /* a request's first byte has arrived */
    bool headers_done;
    bool complete; /* req holds a whole request; parsing is paused */
    int status;    /* the HTTP status to answer a malformed or rejected request with */
    mcp_http_headers_cb on_headers;
    void *data;
};

/* Sets up p for the first request on a connection. on_headers may be NULL. */
void mcp__http_parser_init(struct mcp_http_parser *p, size_t body_max,
                           mcp_http_headers_cb on_headers, void *data);
/* Frees the request being assembled. */
void mcp__http_parser_free(struct mcp_http_parser *p);
/* Feeds received bytes. Returns how many were consumed: parsing stops right after a complete
 * request (p->complete, the rest is for the next request) and stays paused until
 * mcp__http_parser_next. Returns -1 when the request is malformed, too big or rejected by
 * on_headers; p->status then says how to answer and the connection must close. */
ssize_t mcp__http_parser_feed(struct mcp_http_parser *p, const char *data, size_t len);
/* Drops the finished request and resumes parsing for the next one. */
void mcp__http_parser_next(struct mcp_http_parser *p);

/* ---- header checks (pure functions) ---------------------------------------------------- */

/* True for "localhost", an IPv4 address in 127.0.0.0/8 and "::1" (without brackets). */
bool mcp__http_host_is_loopback(const char *host);
/* Splits "host[:port]" or "[v6][:port]" into a host (brackets removed, at most
 * host_size - 1 bytes) and a port (-1 when absent). Returns false when malformed. */
bool mcp__http_split_authority(const char *authority, char *host, size_t host_size, int *ret_port);
/* The Host header guards a loopback listener against DNS rebinding: it must name a loopback
 * host, or be exactly the listen authority ("127.0.0.1:8080"). */
bool mcp__http_host_allowed(const char *host_header, const char *listen_authority);
/* Origin: "http(s)://" plus a loopback host (any port) or exactly the listen authority. */
bool mcp__http_origin_allowed(const char *origin, const char *listen_authority);
/* "Bearer <token>" (scheme case-insensitive) compared in constant time. */
bool mcp__http_token_matches(const char *authorization, const char *token);
/* True when the media type of a Content-Type value is `type` (parameters ignored). */
bool mcp__http_media_type_is(const char *content_type, const char *type);
/* True when an Accept list admits `type` ("a/b", "a/ *" or "* / *", without the spaces).
 * A missing header admits everything. */
bool mcp__http_accepts(const char *accept, const char *type);
/* The standard reason phrase for a status code. */
const char *mcp__http_reason(int status);

/* ---- the transport (http.c: listener and connections; http-session.c: sessions) -------- */

#include <uv.h>

struct mcp_server;
struct mcp_session;
struct http_session;
struct http_pending;

enum http_conn_state {
    HTTP_CONN_READING,   /* between requests or receiving one */
    HTTP_CONN_WAITING,   /* a POST was handed to its session; its answer is pending */
    HTTP_CONN_STREAMING, /* an SSE response (a POST's or the session's GET stream) */
    HTTP_CONN_FINISHING, /* the last response is being written; input is ignored */
    HTTP_CONN_LINGERING, /* the last response is out; draining input until the peer closes */
    HTTP_CONN_CLOSED,
};

enum http_timer_mode {
    HTTP_TIMER_NONE,
    HTTP_TIMER_IDLE,    /* keep-alive connection with no request */
    HTTP_TIMER_HEADERS, /* absolute deadline for the request line and headers */
    HTTP_TIMER_BODY,    /* the body must keep arriving */
    HTTP_TIMER_PING,    /* SSE keep-alive comments */
    HTTP_TIMER_LINGER,
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct mcp_http *http;
    struct http_conn *prev, *next;
    struct mcp_http_parser parser;
    struct wr_buf input; /* received bytes not parsed yet (pipelined requests) */
    enum http_conn_state state;
    enum http_timer_mode timer_mode;
    bool keep_alive;                /* of the request being answered */
    bool chunked;                   /* the SSE response in progress uses chunked framing */
    bool reading;                   /* uv_read_start is in effect */
    int open_handles;               /* freed when both handles are closed */
    const char *reject_message;     /* why on_headers refused the request */
    struct http_pending *pending;   /* the POST this connection answers */
    struct http_session *stream_of; /* the session whose GET stream this is */
};

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
    uv_loop_t *loop;
    struct mcp_server *server;
    uv_tcp_t listener;
    uv_timer_t sweep;
    char *token;
    char *authority; /* "127.0.0.1:8080" with the bound port */
    bool loopback;
    bool stopping;
    int open_handles;
    size_t max_sessions, session_count, conn_count;
    struct http_conn *conns;
    struct http_session *sessions;
};

/* JSON-RPC error codes for transport-level failures (the TypeScript SDK's choices). */
#define MCP_HTTP_ERR_TRANSPORT (-32000)
#define MCP_HTTP_ERR_SESSION_NOT_FOUND (-32001)

/* What mcp__http_respond writes. body may be NULL (no body, Content-Length: 0). */
struct http_response {
    int status;
    const char *content_type;
    const char *body;
    size_t body_len;
    const char *session_id;    /* Mcp-Session-Id to send */
    const char *extra_headers; /* complete "Name: value\r\n" lines */
    bool close;                /* close the connection after this response */
};

/* http.c */
/* Writes a complete response to the request c is answering and gets c ready for the next
 * request (or closes it when asked to or when the client did not ask for keep-alive). */
void mcp__http_respond(struct http_conn *c, const struct http_response *r);
/* A JSON-RPC-shaped error body {"jsonrpc":"2.0","id":null,"error":{code,message}}. */
void mcp__http_respond_error(struct http_conn *c, int status, int code, const char *message);
/* Starts an SSE response on c (chunked for HTTP/1.1, close-delimited for 1.0). */
void mcp__http_sse_begin(struct http_conn *c, const char *session_id);
/* Writes one SSE event with the given id. */
void mcp__http_sse_event(struct http_conn *c, uint64_t id, const char *json, size_t len);
/* Ends the SSE response; the connection is ready for the next request or closes. */
void mcp__http_sse_end(struct http_conn *c);
/* Closes the connection now (pending answers are dropped). */
void mcp__http_conn_close(struct http_conn *c);
/* Runs mcp__http_sweep_sessions from the loop soon (never from inside a session call). */
void mcp__http_sweep_soon(struct mcp_http *http);

/* http-session.c */
/* Answers a complete request whose headers have passed the checks in http.c. */
void mcp__http_dispatch(struct http_conn *c, struct mcp_http_request *req);
/* The connection is going away: whatever it was waiting for is dropped quietly. */
void mcp__http_conn_detach(struct http_conn *c);
/* Frees expired and failed sessions. */
void mcp__http_sweep_sessions(struct mcp_http *http, uint64_t now_ms);
/* Ends every session (on stop). */
void mcp__http_free_sessions(struct mcp_http *http);
