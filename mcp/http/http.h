/* The HTTP listener of `warren serve`: one socket serves every front door. It owns the
 * connections, request parsing (http_parser, with caps on every part), routing by path
 * and method, authentication (the bearer token), the Host and Origin checks against DNS
 * rebinding, responses, server-sent events, and the timeouts that keep slow or silent
 * clients from holding a connection. A front door (MCP's Streamable HTTP transport at
 * /mcp, and later the web UI and the E2B-compatible API) registers routes and answers the
 * requests they are given; it never sees a socket. Everything runs on one libuv loop. */
#pragma once

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "util/util.h"

/* Request line plus all headers, counted as received. */
#define HTTP_MAX_HEADER_BYTES (16u * 1024u)
/* Memory all connections together may hold for requests that have not fully arrived; past
 * it, the connection holding the most is answered 503 and closed. Room for two requests of
 * the largest body a route takes (E2B's uploads, 256 MiB), so that one of them is refused
 * by its own cap (413), never shed. */
#define HTTP_MAX_INCOMPLETE_BYTES (512u * 1024u * 1024u)
#define HTTP_MAX_HEADERS 64u

struct http_server;
struct http_conn;

struct http_header {
    char *name; /* lowercase */
    char *value;
};

/* One HTTP request. Everything is owned by the request and valid until it is answered.
 * A header sent twice is refused (400), except the list-valued ones HTTP allows to repeat
 * (Accept, Cache-Control, Via, ...), whose values are joined with ", ". */
struct http_request {
    enum http_method method;
    unsigned short http_major, http_minor;
    bool keep_alive; /* the client allows another request on this connection */
    char *url;
    char *path; /* the path part of url (not decoded), "" when url has none */
    /* The headers the listener acts on (NULL when absent)... */
    char *host;
    char *origin;
    char *authorization;
    char *expect;
    /* ...and every header, in the order received. */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t header_count;
    struct wr_buf body; /* capped at the route's body_max */
};

/* The value of header name (case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);

/* The bit of method in http_route.methods. */
#define HTTP_METHOD_BIT(m) (1u << (m))

struct http_route {
    const char *path; /* exact path ("/mcp"), or a prefix when it ends in '/' */
    /* Optional: the route serves a request on its path only when this says so, from the
     * request line and headers (the E2B API is told from the UI by its headers). */
    bool (*match)(void *data, const struct http_request *req);
    unsigned methods; /* HTTP_METHOD_BITs it serves; other methods get 405 with Allow */
    size_t body_max;  /* larger bodies get 413 before a byte of them is read */
    /* Optional: checks once the headers are in (after routing, Host, Origin and the token),
     * before any body byte is stored. Returns 0 to go on, or the status that refuses the
     * request, with *ret_message saying why. */
    int (*check)(void *data, const struct http_request *req, const char **ret_message);
    /* Answers a complete request: with http_respond, or a stream (http_sse_begin ...
     * http_sse_end), now or later. req stays valid until then. */
    void (*handle)(void *data, struct http_conn *c, struct http_request *req);
    /* Optional: the body of an error the listener answers on this route's path (401, 403,
     * 405, 408, 413, ...), in the front door's own format. Returns a string the listener
     * frees, and its media type in *ret_content_type. Without it: {"error": message}. */
    char *(*error_body)(void *data, int status, const char *message, const char **ret_content_type);
    void *data;
    /* Served without the token or a sign-in: the web UI's page, its assets and the
     * sign-in itself. Host and Origin are still checked. */
    bool public;
};

struct http_server_options {
    uv_loop_t *loop;
    const char *listen; /* "127.0.0.1:8080", "[::1]:8080", "localhost:0" */
    const char *token;  /* bearer token required on every request; NULL = --auth none */
    /* Optional: other credentials accepted wherever the token is (the bearer token, the
     * sign-in, the E2B API's key): API keys. Called on the loop for each credential that
     * is not the token; with --auth none it is never called. */
    bool (*credential_ok)(void *data, const char *credential);
    void *credential_data;
};

/* Binds and listens. Refuses token == NULL unless the address is loopback. */
int http_server_start(const struct http_server_options *opts, struct http_server **ret,
                      struct wr_error **err);
/* Adds a route (copied; its path and data must outlive the server). Routes are matched in the
 * order added; the first whose path matches wins. */
void http_server_route(struct http_server *server, const struct http_route *route);
uv_loop_t *http_server_loop(const struct http_server *server);
uv_loop_t *http_conn_loop(const struct http_conn *c);
/* "127.0.0.1:8080" with the port actually bound. */
const char *http_server_authority(const struct http_server *server);
/* Graceful shutdown: from now on every new request is answered 503 (after the Host,
 * Origin and token checks) and its connection closed; requests already handed to a front
 * door are answered as usual. */
void http_server_drain(struct http_server *server);
/* Closes every connection (their close hooks run) and the listener; the server is freed
 * once libuv has closed its handles. */
void http_server_stop(struct http_server *server);

/* ---- answering -------------------------------------------------------------------- */

struct http_response {
    int status;
    const char *content_type;
    const char *body; /* may be NULL: no body, Content-Length: 0 */
    size_t body_len;
    const char *extra_headers; /* complete "Name: value\r\n" lines */
    bool close;                /* close the connection after this response */
};

/* Writes a complete response to the request c is answering and gets c ready for the next
 * request (or closes it when asked to, when the client did not ask for keep-alive, or when
 * the server is stopping). */
void http_respond(struct http_conn *c, const struct http_response *r);
/* An error response, its body written by the route's error_body. */
void http_respond_error(struct http_conn *c, int status, const char *message);
/* Starts an SSE response (chunked for HTTP/1.1, close-delimited for 1.0), with
 * extra_headers (may be NULL). Keep-alive comments go out while it is silent. */
void http_sse_begin(struct http_conn *c, const char *extra_headers);
/* Writes one SSE event with the given id; data's line breaks become separate data lines. */
void http_sse_event(struct http_conn *c, uint64_t id, const char *data, size_t len);
/* Ends the SSE response; the connection is ready for the next request or closes. */
void http_sse_end(struct http_conn *c);
/* A streamed response of any media type (a Connect server stream), chunked like SSE but
 * without the listener's keep-alive comments: the front door keeps it alive itself. */
void http_stream_begin(struct http_conn *c, int status, const char *content_type,
                       const char *extra_headers);
void http_stream_write(struct http_conn *c, const void *buf, size_t len);
void http_stream_end(struct http_conn *c);
/* Closes the connection now. */
void http_conn_close(struct http_conn *c);
/* cb(data) runs once if the connection closes while the front door still holds it (the
 * client went away, a timeout, the server stopping). Set it when keeping c past the
 * handle callback; clear it (cb NULL) when letting go of c. Answering (http_respond,
 * http_sse_end) clears it too. */
void http_conn_on_close(struct http_conn *c, void (*cb)(void *data), void *data);

/* ---- upgraded connections (WebSocket) ------------------------------------------------ */

/* Below this many queued bytes an upgraded connection's writer is told to go on. */
#define HTTP_UPGRADE_LOW_WATER (256u * 1024u)

struct http_upgrade_handlers {
    void (*on_data)(void *data, const char *buf, size_t len); /* bytes from the peer */
    void (*on_drain)(void *data); /* optional: the write queue fell below the low water */
};
/* Answers 101 Switching Protocols (with extra_headers, e.g. "Upgrade: websocket\r\n...";
 * NULL: answers nothing, the front door relays another server's answer) and from then on
 * hands the connection's bytes to h, with no timeouts. The close hook
 * (http_conn_on_close) still says when the peer goes; http_conn_close ends it. */
void http_upgrade(struct http_conn *c, const char *extra_headers,
                  const struct http_upgrade_handlers *h, void *data);
/* Queues raw bytes on an upgraded connection. */
void http_upgraded_write(struct http_conn *c, const void *buf, size_t len);
/* Ends an upgraded connection once what is queued for the peer is written. */
void http_upgraded_end(struct http_conn *c);
/* Bytes queued for the peer and not yet written. */
size_t http_conn_write_queue(const struct http_conn *c);
/* Stops (pause true) or resumes reading an upgraded connection (flow control). */
void http_upgraded_pause(struct http_conn *c, bool pause);

/* ---- browser sign-in (signin.c) ---------------------------------------------------- */

/* A browser that signed in with the server's token gets a session cookie (HttpOnly,
 * SameSite=Strict) that stands for the bearer token on every route; its requests that
 * change state (not GET or HEAD) must also carry the session's CSRF token in an
 * X-CSRF-Token header and an Origin of this server. */
#define HTTP_SIGNIN_COOKIE "warren_session"

/* True when token is the server's (constant time) or a credential the server's
 * credential_ok accepts; false with --auth none. */
bool http_server_token_ok(const struct http_server *s, const char *token);
/* The same for an Authorization header ("Bearer <token>"). */
bool http_server_bearer_ok(const struct http_server *s, const char *authorization);
/* False with --auth none: every request is allowed, nobody needs to sign in. */
bool http_server_needs_signin(const struct http_server *s);
/* A new session: its "Set-Cookie: ...\r\n" header line and its CSRF token (the caller
 * frees both). 0 or -errno. */
int http_signin_create(struct http_server *s, char **ret_set_cookie, char **ret_csrf);
/* The CSRF token of the session req's cookie names, or NULL when it names none. */
const char *http_signin_csrf(struct http_server *s, const struct http_request *req);
/* What the listener checks on routes that are not public, for a public route that serves
 * some paths to signed-in clients only: the bearer token, or a signed-in browser's
 * cookie (with the CSRF token and Origin when the method changes state). True with
 * --auth none. */
bool http_request_authenticated(struct http_server *s, const struct http_request *req);
/* Ends the session of req's cookie (if any); returns the Set-Cookie line that clears it. */
const char *http_signin_end(struct http_server *s, const struct http_request *req);

/* ---- header values (pure functions) ------------------------------------------------ */

/* True for "localhost", an IPv4 address in 127.0.0.0/8 and "::1" (without brackets). */
bool http_host_is_loopback(const char *host);
/* Splits "host[:port]" or "[v6][:port]" into a host (brackets removed, at most
 * host_size - 1 bytes) and a port (-1 when absent). Returns false when malformed. */
bool http_split_authority(const char *authority, char *host, size_t host_size, int *ret_port);
/* The Host header guards a loopback listener against DNS rebinding: it must name a loopback
 * host, or be exactly the listen authority ("127.0.0.1:8080"). */
bool http_host_allowed(const char *host_header, const char *listen_authority);
/* Origin: "http(s)://" plus a loopback host (any port) or exactly the listen authority. */
bool http_origin_allowed(const char *origin, const char *listen_authority);
/* "Bearer <token>" (scheme case-insensitive) compared in constant time. */
bool http_token_matches(const char *authorization, const char *token);
/* True when the media type of a Content-Type value is `type` (parameters ignored). */
bool http_media_type_is(const char *content_type, const char *type);
/* True when an Accept list admits `type` ("a/b", "a/ *" or "* / *", without the spaces).
 * A missing header admits everything. */
bool http_accepts(const char *accept, const char *type);
/* The value of cookie name in a Cookie header value ("a=1; b=2"), copied into out (at
 * most size - 1 bytes); false when absent or longer. */
bool http_cookie_value(const char *header, const char *name, char *out, size_t size);
/* The standard reason phrase for a status code. */
const char *http_reason(int status);
