/* Internals of the HTTP listener, shared by its files (request.c: bytes into requests;
 * server.c: the listener, connections, routing and writing), its unit test and its fuzz
 * target. The request layer touches no socket, so a fuzzer can drive it directly. */
#pragma once

#include "http.h"

/* Called once the headers are in, before any body byte is stored. Returns 0 to go on, or an
 * HTTP status (401, 403, 413, ...) that rejects the request without reading its body. It
 * may lower or raise the body cap (http__parser_set_body_max). */
typedef int (*http_headers_cb)(void *data, struct http_request *req);

struct http_parser_state {
    http_parser parser;
    struct http_request req;
    struct wr_buf field; /* header name being received */
    struct wr_buf value; /* header value being received */
    bool in_value;
    size_t header_bytes;
    size_t body_max;
    bool started; /* a request's first byte has arrived */
    bool headers_done;
    bool complete; /* req holds a whole request; parsing is paused */
    int status;    /* the HTTP status to answer a malformed or rejected request with */
    http_headers_cb on_headers;
    void *data;
};

/* Sets up p for the first request on a connection. on_headers may be NULL. */
void http__parser_init(struct http_parser_state *p, size_t body_max, http_headers_cb on_headers,
                       void *data);
/* Frees the request being assembled. */
void http__parser_free(struct http_parser_state *p);
/* Feeds received bytes. Returns how many were consumed: parsing stops right after a complete
 * request (p->complete, the rest is for the next request) and stays paused until
 * http__parser_next. Returns -1 when the request is malformed, too big or rejected by
 * on_headers; p->status then says how to answer and the connection must close. */
ssize_t http__parser_feed(struct http_parser_state *p, const char *data, size_t len);
/* Drops the finished request and resumes parsing for the next one. */
void http__parser_next(struct http_parser_state *p);
/* The path part of url (not decoded), "" when it has none. The caller frees it. */
char *http__url_path(const char *url);
/* From on_headers: the body cap of this request. */
void http__parser_set_body_max(struct http_parser_state *p, size_t body_max);
/* From on_headers: true when the request declared a Content-Length over the body cap. */
bool http__parser_declared_too_big(const struct http_parser_state *p);

/* ---- connections (server.c) ----------------------------------------------------------- */

enum http_conn_state {
    HTTP_CONN_READING,   /* between requests or receiving one */
    HTTP_CONN_WAITING,   /* a request was handed to its route; its answer is pending */
    HTTP_CONN_STREAMING, /* an SSE response */
    HTTP_CONN_FINISHING, /* the last response is being written; input is ignored */
    HTTP_CONN_LINGERING, /* the last response is out; draining input until the peer closes */
    HTTP_CONN_UPGRADED,  /* switched protocols: bytes go to the front door's handlers */
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
    struct http_server *server;
    struct http_conn *prev, *next;
    struct http_parser_state parser;
    struct wr_buf input; /* received bytes not parsed yet (pipelined requests) */
    enum http_conn_state state;
    enum http_timer_mode timer_mode;
    bool keep_alive;                /* of the request being answered */
    bool chunked;                   /* the SSE response in progress uses chunked framing */
    bool reading;                   /* uv_read_start is in effect */
    bool served;                    /* a whole request arrived: a client, not a half-open */
    size_t incomplete;              /* bytes held for a request not whole yet (its share of
                                     * the server's incomplete_bytes) */
    int open_handles;               /* freed when both handles are closed */
    const struct http_route *route; /* of the request being received or answered */
    const char *reject_message;     /* why the request was refused at its headers */
    void (*on_close)(void *data);   /* the front door's hook (http_conn_on_close) */
    void *on_close_data;
    struct http_upgrade_handlers upgrade; /* HTTP_CONN_UPGRADED */
    void *upgrade_data;
    bool paused; /* upgraded: the front door stopped reading */
};

struct http_route_entry {
    struct http_route route;
    struct http_route_entry *next;
};

struct http_server {
    uv_loop_t *loop;
    size_t incomplete_bytes; /* memory held by requests still arriving, all connections */
    uv_tcp_t listener;
    char *token;
    bool (*credential_ok)(void *data, const char *credential);
    void *credential_data;
    char *authority; /* "127.0.0.1:8080" with the bound port */
    bool loopback;
    bool stopping;
    int open_handles;
    size_t conn_count;
    struct http_conn *conns;
    struct http_route_entry *routes, **routes_tail;
    char *not_found; /* "not found: this server answers /mcp, ..." */
    struct http_signin *signins; /* signed-in browsers (signin.c) */
    size_t signin_count;
};

/* signin.c: whether a request without the bearer token is a signed-in browser's (and,
 * when it changes state, carries the session's CSRF token and an Origin). */
bool http__signin_allows(struct http_server *s, const struct http_request *req,
                         const char **ret_message);
void http__signins_free(struct http_server *s);

/* The route serving path (and req, when routes match on headers; NULL: before the headers
 * are in), or NULL. */
const struct http_route *http__route_find(const struct http_server *server, const char *path,
                                          const struct http_request *req);
