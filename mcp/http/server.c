/* The listener: connections, their timers and the bytes on the wire, routing, the checks
 * every request passes (Host, Origin, the bearer token), responses and SSE streams.
 * Requests are assembled by request.c; what they mean is decided by the route's front
 * door (mcp/streamable-http.c for /mcp). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http-internal.h"

#define MAX_CONNECTIONS 1024u
#define IDLE_TIMEOUT_MS (60u * 1000u)
#define HEADERS_TIMEOUT_MS (10u * 1000u)
#define BODY_TIMEOUT_MS (30u * 1000u)
#define PING_INTERVAL_MS (20u * 1000u)
#define LINGER_TIMEOUT_MS (2u * 1000u)
/* Bytes read ahead of the request being answered (pipelining) before reading pauses. */
#define MAX_READ_AHEAD (64u * 1024u)
/* A client that stops reading its SSE stream is dropped rather than buffered for forever. */
#define MAX_WRITE_QUEUE (96u * 1024u * 1024u)

struct conn_write {
    uv_write_t req;
    struct http_conn *conn;
    bool close_after;
    char *data;
};

static void conn_process_input(struct http_conn *c);
static int conn_start_reading(struct http_conn *c);
static void account_incomplete(struct http_conn *c);
static void shed_incomplete(struct http_server *server);
static void conn_set_timer(struct http_conn *c, enum http_timer_mode mode);

static void server_handle_closed(struct http_server *server)
{
    if (--server->open_handles > 0 || !server->stopping)
        return;
    while (server->routes) {
        struct http_route_entry *next = server->routes->next;
        free(server->routes);
        server->routes = next;
    }
    free(server->not_found);
    free(server->token);
    http__signins_free(server);
    free(server->authority);
    free(server);
}

/* ---- closing ------------------------------------------------------------------------ */

static void conn_handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    struct http_server *server = c->server;
    http__parser_free(&c->parser);
    wr_buf_free(&c->input);
    free(c);
    server_handle_closed(server);
}

void http_conn_on_close(struct http_conn *c, void (*cb)(void *data), void *data)
{
    c->on_close = cb;
    c->on_close_data = data;
}

void http_conn_close(struct http_conn *c)
{
    if (c->state == HTTP_CONN_CLOSED)
        return;
    c->state = HTTP_CONN_CLOSED;
    void (*hook)(void *) = TAKE_PTR(c->on_close);
    if (hook) /* the front door lets go of c: whatever it was answering is dropped */
        hook(c->on_close_data);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->server->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->server->conn_count--;
    c->server->incomplete_bytes -= c->incomplete;
    c->incomplete = 0;
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void conn_shutdown_done(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    free(req);
    if (status < 0 && c->state != HTTP_CONN_CLOSED)
        http_conn_close(c);
}

/* Closing right after the last response would reset the connection if unread input is
 * pending, and the client could lose the response. So: FIN after the response, then drain
 * what the peer still sends for a moment (Apache's lingering close). */
static void conn_linger(struct http_conn *c)
{
    c->state = HTTP_CONN_LINGERING;
    conn_set_timer(c, HTTP_TIMER_LINGER);
    uv_shutdown_t *req = wr_malloc(sizeof(*req));
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_shutdown_done) < 0) {
        free(req);
        http_conn_close(c);
    }
}

/* ---- writing ------------------------------------------------------------------------ */

static void conn_write_done(uv_write_t *req, int status)
{
    struct conn_write *w = (struct conn_write *)req;
    struct http_conn *c = w->conn;
    bool close_after = w->close_after;
    free(w->data);
    free(w);
    if (c->state == HTTP_CONN_CLOSED || c->state == HTTP_CONN_LINGERING)
        return;
    if (status < 0) {
        http_conn_close(c);
        return;
    }
    if (c->state == HTTP_CONN_UPGRADED) {
        if (c->upgrade.on_drain && http_conn_write_queue(c) < HTTP_UPGRADE_LOW_WATER)
            c->upgrade.on_drain(c->upgrade_data);
        return;
    }
    if (close_after)
        conn_linger(c);
    else
        conn_process_input(c); /* pipelined requests held back while this one was answered */
}

/* Queues b's bytes (taking them: b is left empty) for the connection. */
static void conn_write(struct http_conn *c, struct wr_buf *b, bool close_after)
{
    if (c->state == HTTP_CONN_CLOSED || c->state == HTTP_CONN_LINGERING) {
        wr_buf_free(b);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > MAX_WRITE_QUEUE) {
        log_warning("http: dropping a connection that does not read its responses");
        wr_buf_free(b);
        http_conn_close(c);
        return;
    }
    struct conn_write *w = wr_malloc(sizeof(*w));
    size_t len;
    w->data = wr_buf_steal(b, &len);
    w->conn = c;
    w->close_after = close_after;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, conn_write_done) < 0) {
        free(w->data);
        free(w);
        http_conn_close(c);
    }
}

/* The request is answered: the connection waits for the next one, or closes. */
static void conn_request_done(struct http_conn *c, bool close)
{
    c->on_close = NULL;
    if (close) {
        c->state = HTTP_CONN_FINISHING; /* conn_write_done starts the linger */
        conn_set_timer(c, HTTP_TIMER_NONE);
        return;
    }
    c->state = HTTP_CONN_READING;
    c->chunked = false;
    c->route = NULL;
    c->reject_message = NULL;
    http__parser_next(&c->parser);
    conn_set_timer(c, HTTP_TIMER_IDLE);
}

static void put_status_line(struct wr_buf *b, int status, bool close)
{
    wr_buf_printf(b, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
    wr_buf_printf(b, "Connection: %s\r\n", close ? "close" : "keep-alive");
}

static bool conn_answering(const struct http_conn *c)
{
    return c->state != HTTP_CONN_CLOSED && c->state != HTTP_CONN_LINGERING &&
           c->state != HTTP_CONN_FINISHING;
}

void http_respond(struct http_conn *c, const struct http_response *r)
{
    if (!conn_answering(c))
        return;
    bool close = r->close || !c->keep_alive || c->server->stopping;
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    put_status_line(&b, r->status, close);
    if (r->content_type)
        wr_buf_printf(&b, "Content-Type: %s\r\n", r->content_type);
    if (r->extra_headers)
        wr_buf_printf(&b, "%s", r->extra_headers);
    wr_buf_printf(&b, "Content-Length: %zu\r\n\r\n", r->body ? r->body_len : 0);
    if (r->body)
        wr_buf_append(&b, r->body, r->body_len);
    /* Set the state before writing: a failed write closes the connection at once. */
    conn_request_done(c, close);
    conn_write(c, &b, close);
    wr_buf_free(&b);
}

void http_upgrade(struct http_conn *c, const char *extra_headers,
                  const struct http_upgrade_handlers *h, void *data)
{
    if (!conn_answering(c))
        return;
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    if (extra_headers)
        wr_buf_printf(&b, "HTTP/1.1 101 Switching Protocols\r\n%s\r\n", extra_headers);
    c->state = HTTP_CONN_UPGRADED;
    c->upgrade = *h;
    c->upgrade_data = data;
    c->server->incomplete_bytes -= c->incomplete;
    c->incomplete = 0;
    conn_set_timer(c, HTTP_TIMER_NONE);
    if (b.len)
        conn_write(c, &b, false);
    wr_buf_free(&b);
    /* Bytes the peer sent right behind its request are the new protocol's. */
    if (c->state == HTTP_CONN_UPGRADED && c->input.len > 0) {
        struct wr_buf rest = c->input;
        wr_buf_init(&c->input, SIZE_MAX);
        h->on_data(data, rest.data, rest.len);
        wr_buf_free(&rest);
    }
    if (c->state == HTTP_CONN_UPGRADED && !c->reading && !c->paused)
        c->reading = conn_start_reading(c) == 0;
}

void http_upgraded_write(struct http_conn *c, const void *buf, size_t len)
{
    if (c->state != HTTP_CONN_UPGRADED)
        return;
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    wr_buf_append(&b, buf, len);
    conn_write(c, &b, false);
    wr_buf_free(&b);
}

void http_upgraded_end(struct http_conn *c)
{
    if (c->state != HTTP_CONN_UPGRADED)
        return;
    c->on_close = NULL;
    conn_linger(c);
}

size_t http_conn_write_queue(const struct http_conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

void http_upgraded_pause(struct http_conn *c, bool pause)
{
    if (c->state != HTTP_CONN_UPGRADED || c->paused == pause)
        return;
    c->paused = pause;
    if (pause && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    } else if (!pause && !c->reading)
        c->reading = conn_start_reading(c) == 0;
}

/* "Allow: GET, POST\r\n" for a route's methods. */
static char *allow_header(const struct http_route *route)
{
    struct wr_buf b;
    wr_buf_init(&b, 512);
    wr_buf_printf(&b, "Allow: ");
    for (unsigned m = 0; m < 32; m++)
        if (route->methods & HTTP_METHOD_BIT(m))
            wr_buf_printf(&b, "%s%s", b.len > 7 ? ", " : "", http_method_str((enum http_method)m));
    wr_buf_printf(&b, "\r\n");
    return wr_buf_steal(&b, NULL);
}

/* The route of the request c is answering; for one refused or timed out before its
 * headers were complete, the route its URL names (so the error is in its format). */
static const struct http_route *conn_route(struct http_conn *c)
{
    if (c->route || !c->parser.req.url)
        return c->route;
    _cleanup_free_ char *path = http__url_path(c->parser.req.url);
    return http__route_find(c->server, path, NULL);
}

void http_respond_error(struct http_conn *c, int status, const char *message)
{
    const struct http_route *route = conn_route(c);
    const char *content_type = "application/json";
    _cleanup_free_ char *body = NULL;
    if (route && route->error_body) {
        body = route->error_body(route->data, status, message, &content_type);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", message);
        body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    _cleanup_free_ char *extra = NULL;
    if (status == 401)
        extra = wr_strdup("WWW-Authenticate: Bearer\r\n");
    else if (status == 405 && route)
        extra = allow_header(route);
    struct http_response r = {.status = status,
                              .content_type = content_type,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .extra_headers = extra,
                              .close = status == 413 || status == 431 || status == 408};
    http_respond(c, &r);
}

/* Starts a streamed response: chunked for HTTP/1.1 (the connection can carry further
 * requests after it), close-delimited for 1.0. */
static void stream_begin(struct http_conn *c, int status, const char *content_type,
                         const char *extra_headers, enum http_timer_mode timer)
{
    if (!conn_answering(c))
        return;
    c->chunked = c->parser.req.http_major == 1 && c->parser.req.http_minor >= 1;
    bool close = !c->chunked || !c->keep_alive;
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    put_status_line(&b, status, close);
    wr_buf_printf(&b, "Content-Type: %s\r\nCache-Control: no-store\r\n", content_type);
    if (extra_headers)
        wr_buf_printf(&b, "%s", extra_headers);
    wr_buf_printf(&b, "%s\r\n", c->chunked ? "Transfer-Encoding: chunked\r\n" : "");
    c->state = HTTP_CONN_STREAMING;
    conn_set_timer(c, timer);
    conn_write(c, &b, false);
    wr_buf_free(&b);
}

void http_sse_begin(struct http_conn *c, const char *extra_headers)
{
    stream_begin(c, 200, "text/event-stream", extra_headers, HTTP_TIMER_PING);
}

void http_stream_begin(struct http_conn *c, int status, const char *content_type,
                       const char *extra_headers)
{
    stream_begin(c, status, content_type, extra_headers, HTTP_TIMER_NONE);
}

/* Writes stream bytes, framed as one chunk when the response is chunked. */
static void sse_write(struct http_conn *c, struct wr_buf *text)
{
    if (!c->chunked) {
        conn_write(c, text, false);
        return;
    }
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    wr_buf_printf(&b, "%zx\r\n", text->len);
    wr_buf_append(&b, text->data, text->len);
    wr_buf_append(&b, "\r\n", 2);
    conn_write(c, &b, false);
    wr_buf_free(&b);
}

void http_sse_event(struct http_conn *c, uint64_t id, const char *json, size_t len)
{
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    wr_buf_printf(&b, "id: %llu\n", (unsigned long long)id);
    /* Serialized JSON has no raw newlines, but a line break would end the data field. */
    for (size_t start = 0; start <= len;) {
        size_t end = start;
        while (end < len && json[end] != '\n' && json[end] != '\r')
            end++;
        wr_buf_append(&b, "data: ", 6);
        wr_buf_append(&b, json + start, end - start);
        wr_buf_append(&b, "\n", 1);
        start = end + 1;
    }
    wr_buf_append(&b, "\n", 1);
    sse_write(c, &b);
    wr_buf_free(&b);
}

void http_stream_write(struct http_conn *c, const void *buf, size_t len)
{
    if (c->state != HTTP_CONN_STREAMING || len == 0)
        return;
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    wr_buf_append(&b, buf, len);
    sse_write(c, &b);
    wr_buf_free(&b);
}

void http_stream_end(struct http_conn *c)
{
    if (c->state != HTTP_CONN_STREAMING)
        return;
    bool close = !c->chunked || !c->keep_alive || c->server->stopping;
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    if (c->chunked)
        wr_buf_append(&b, "0\r\n\r\n", 5);
    conn_request_done(c, close);
    if (b.len > 0)
        conn_write(c, &b, close);
    else if (close)
        conn_linger(c);
    wr_buf_free(&b);
}

void http_sse_end(struct http_conn *c)
{
    http_stream_end(c);
}

/* ---- timers ------------------------------------------------------------------------- */

static void conn_timer_fired(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    switch (c->timer_mode) {
    case HTTP_TIMER_PING: {
        struct wr_buf b;
        wr_buf_init(&b, 64);
        wr_buf_append(&b, ": ping\n\n", 8);
        sse_write(c, &b);
        wr_buf_free(&b);
        break;
    }
    case HTTP_TIMER_HEADERS:
    case HTTP_TIMER_BODY:
        c->keep_alive = false;
        http_respond_error(c, 408, "request timed out");
        break;
    default:
        http_conn_close(c);
        break;
    }
}

static void conn_set_timer(struct http_conn *c, enum http_timer_mode mode)
{
    static const uint64_t timeouts[] = {
        [HTTP_TIMER_IDLE] = IDLE_TIMEOUT_MS,     [HTTP_TIMER_HEADERS] = HEADERS_TIMEOUT_MS,
        [HTTP_TIMER_BODY] = BODY_TIMEOUT_MS,     [HTTP_TIMER_PING] = PING_INTERVAL_MS,
        [HTTP_TIMER_LINGER] = LINGER_TIMEOUT_MS,
    };
    /* The header deadline is absolute; every other timer restarts on activity. */
    if (mode == c->timer_mode && mode == HTTP_TIMER_HEADERS)
        return;
    c->timer_mode = mode;
    if (mode == HTTP_TIMER_NONE) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t ms = timeouts[mode];
    uv_timer_start(&c->timer, conn_timer_fired, ms, mode == HTTP_TIMER_PING ? ms : 0);
}

/* ---- reading ------------------------------------------------------------------------ */

/* curl asks before sending a body over 1 KiB; without an answer it waits a second. */
static int expect_continue(struct http_conn *c, const struct http_request *req)
{
    if (strcasecmp(req->expect, "100-continue") != 0) {
        c->reject_message = "unsupported Expect header";
        return 417;
    }
    if (req->http_major == 1 && req->http_minor >= 1) {
        struct wr_buf b;
        wr_buf_init(&b, 64);
        wr_buf_printf(&b, "HTTP/1.1 100 Continue\r\n\r\n");
        conn_write(c, &b, false);
        wr_buf_free(&b);
    }
    return 0;
}

/* Header-time checks, before any body byte is stored: a request that fails them costs the
 * server nothing but its headers. */
static int reject(struct http_conn *c, int status, const char *message)
{
    c->reject_message = message;
    return status;
}

const struct http_route *http__route_find(const struct http_server *server, const char *path,
                                          const struct http_request *req)
{
    for (const struct http_route_entry *e = server->routes; path && e; e = e->next) {
        const char *p = e->route.path;
        size_t n = strlen(p);
        bool prefix = n > 0 && p[n - 1] == '/';
        if (!(prefix ? strncmp(path, p, n) == 0 : strcmp(path, p) == 0))
            continue;
        /* A route that also looks at the headers: without them (an error before they were
         * complete) it is not the request's. */
        if (e->route.match && !(req && e->route.match(e->route.data, req)))
            continue;
        return &e->route;
    }
    return NULL;
}

static int check_headers(void *data, struct http_request *req)
{
    struct http_conn *c = data;
    struct http_server *server = c->server;
    const struct http_route *route = http__route_find(server, req->path, req);
    c->route = route;
    http__parser_set_body_max(&c->parser, route ? route->body_max : 0);
    if (http__parser_declared_too_big(&c->parser))
        return reject(c, 413, "message too large");
    if (!req->host && req->http_major == 1 && req->http_minor >= 1)
        return reject(c, 400, "missing Host header");
    if (req->host && server->loopback && !http_host_allowed(req->host, server->authority))
        return reject(c, 403, "Host header is not this server");
    if (req->origin && !http_origin_allowed(req->origin, server->authority))
        return reject(c, 403, "Origin not allowed");
    const char *why = NULL;
    if (server->token && !(route && route->public) &&
        !http_server_bearer_ok(server, req->authorization) &&
        !http__signin_allows(server, req, &why))
        return reject(c, why && strstr(why, "CSRF") ? 403 : 401, why);
    if (!route)
        return reject(c, 404, server->not_found ? server->not_found : "not found");
    if (!(route->methods & HTTP_METHOD_BIT(req->method)))
        return reject(c, 405, "method not allowed");
    const char *message = NULL;
    int status = route->check ? route->check(route->data, req, &message) : 0;
    if (status != 0)
        return reject(c, status, message);
    return req->expect ? expect_continue(c, req) : 0;
}

static void conn_reject(struct http_conn *c)
{
    int status = c->parser.status;
    const char *message = c->reject_message;
    if (!message)
        message = status == 413 ? "message too large" : http_reason(status);
    c->keep_alive = false;
    c->state = HTTP_CONN_READING;
    http_respond_error(c, status, message);
}

static void conn_process_input(struct http_conn *c)
{
    while (c->state == HTTP_CONN_READING && c->input.len > 0) {
        ssize_t n = http__parser_feed(&c->parser, c->input.data, c->input.len);
        if (n < 0) {
            conn_reject(c);
            return;
        }
        wr_buf_consume(&c->input, (size_t)n);
        if (c->parser.complete) {
            c->served = true;
            c->keep_alive = c->parser.req.keep_alive;
            c->state = HTTP_CONN_WAITING;
            conn_set_timer(c, HTTP_TIMER_NONE);
            c->route->handle(c->route->data, c, &c->parser.req);
        } else {
            conn_set_timer(c, c->parser.headers_done ? HTTP_TIMER_BODY : HTTP_TIMER_HEADERS);
        }
    }
    /* Read ahead only a little while a request is being answered. */
    bool want_read = c->state != HTTP_CONN_CLOSED &&
                     (c->state == HTTP_CONN_READING || c->input.len < MAX_READ_AHEAD);
    if (want_read && !c->reading)
        c->reading = conn_start_reading(c) == 0;
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[64 * 1024];
    /* One loop, one thread: reads are copied out of the scratch buffer before the next. */
    *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0 || c->state == HTTP_CONN_LINGERING || c->state == HTTP_CONN_FINISHING) {
        /* EOF or error: a client that hangs up is not cancelling its requests (the MCP
         * spec); their answers are dropped when they come. */
        if (nread < 0)
            http_conn_close(c);
        return;
    }
    if (c->state == HTTP_CONN_UPGRADED) {
        c->upgrade.on_data(c->upgrade_data, buf->base, (size_t)nread);
        return;
    }
    wr_buf_append(&c->input, buf->base, (size_t)nread);
    if (c->state != HTTP_CONN_READING && c->input.len >= MAX_READ_AHEAD) {
        uv_read_stop(s);
        c->reading = false;
    }
    conn_process_input(c);
    struct http_server *server = c->server;
    if (c->state != HTTP_CONN_CLOSED)
        account_incomplete(c);
    shed_incomplete(server);
}

/* What c holds for a request still arriving (its buffers' allocations), kept in the
 * server's total. */
static void account_incomplete(struct http_conn *c)
{
    size_t now = c->state == HTTP_CONN_READING ? c->input.cap + c->parser.req.body.cap : 0;
    c->server->incomplete_bytes = c->server->incomplete_bytes - c->incomplete + now;
    c->incomplete = now;
}

/* Over HTTP_MAX_INCOMPLETE_BYTES: the connection holding the most for an incomplete
 * request is refused (503) and its buffers freed, until the total fits again. */
static void shed_incomplete(struct http_server *server)
{
    while (server->incomplete_bytes > HTTP_MAX_INCOMPLETE_BYTES) {
        struct http_conn *big = NULL;
        for (struct http_conn *c = server->conns; c; c = c->next)
            if (c->incomplete > 0 && (!big || c->incomplete > big->incomplete))
                big = c;
        if (!big)
            return;
        log_warning("http: %zu bytes held by requests still arriving: refusing the largest "
                    "(%zu bytes)",
                    server->incomplete_bytes, big->incomplete);
        wr_buf_free(&big->input);
        wr_buf_free(&big->parser.req.body);
        server->incomplete_bytes -= big->incomplete;
        big->incomplete = 0;
        big->parser.status = 503;
        big->reject_message = "the server holds too much unfinished request data; retry later";
        uv_read_stop((uv_stream_t *)&big->tcp);
        big->reading = false;
        conn_reject(big);
    }
}

/* uv_read_start wants an alloc callback; conn_process_input restarts reads with this. */
static int conn_start_reading(struct http_conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
}

/* At the connection cap, room for a new connection: the oldest connection that has not
 * delivered one whole request yet (an idle or a slow half-open one) is dropped, so that
 * such connections cannot keep real clients out. A client that got answers keeps its
 * connection. Returns false when every connection has been served. */
static bool shed_half_open(struct http_server *server, const struct http_conn *keep)
{
    struct http_conn *oldest = NULL;
    for (struct http_conn *c = server->conns; c; c = c->next)
        if (c != keep && !c->served && c->state == HTTP_CONN_READING)
            oldest = c; /* new connections are pushed at the head: the last one is oldest */
    if (!oldest)
        return false;
    http_conn_close(oldest);
    return true;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *server = listener->data;
    if (status < 0)
        return;
    struct http_conn *c = wr_calloc(1, sizeof(*c));
    c->server = server;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    server->open_handles++;
    wr_buf_init(&c->input, SIZE_MAX);
    http__parser_init(&c->parser, 0, check_headers, c);
    c->next = server->conns;
    if (c->next)
        c->next->prev = c;
    server->conns = c;
    server->conn_count++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0 ||
        (server->conn_count > MAX_CONNECTIONS && !shed_half_open(server, c))) {
        http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_set_timer(c, HTTP_TIMER_IDLE);
    c->reading = conn_start_reading(c) == 0;
    if (!c->reading)
        http_conn_close(c);
}

/* ---- listener ----------------------------------------------------------------------- */

/* Parses "a.b.c.d:port", "[v6]:port" or "localhost:port". */
static int parse_listen(const char *listen, struct sockaddr_storage *ret_addr,
                        struct wr_error **err)
{
    char host[INET6_ADDRSTRLEN + 1];
    int port;
    if (!listen || !http_split_authority(listen, host, sizeof(host), &port) || port < 0)
        return wr_error_set(err, EINVAL,
                            "invalid listen address '%s': expected HOST:PORT or "
                            "[IPV6]:PORT",
                            listen ? listen : "");
    memset(ret_addr, 0, sizeof(*ret_addr));
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    if (listen[0] == '[') {
        if (uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ret_addr) == 0)
            return 0;
    } else if (uv_ip4_addr(ip, port, (struct sockaddr_in *)ret_addr) == 0) {
        return 0;
    }
    return wr_error_set(err, EINVAL,
                        "invalid listen address '%s': the host must be an IP "
                        "address or localhost",
                        listen);
}

static bool addr_is_loopback(const struct sockaddr_storage *addr)
{
    char ip[INET6_ADDRSTRLEN];
    if (addr->ss_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)addr, ip, sizeof(ip));
    else
        uv_ip6_name((const struct sockaddr_in6 *)addr, ip, sizeof(ip));
    return http_host_is_loopback(ip);
}

/* "127.0.0.1:8080" or "[::1]:8080" for the address actually bound (port 0 resolved). */
static char *bound_authority(uv_tcp_t *tcp)
{
    struct sockaddr_storage addr;
    int len = sizeof(addr);
    char ip[INET6_ADDRSTRLEN];
    if (uv_tcp_getsockname(tcp, (struct sockaddr *)&addr, &len) < 0)
        return NULL;
    if (addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&addr;
        uv_ip6_name(a6, ip, sizeof(ip));
        return wr_asprintf("[%s]:%d", ip, ntohs(a6->sin6_port));
    }
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&addr;
    uv_ip4_name(a4, ip, sizeof(ip));
    return wr_asprintf("%s:%d", ip, ntohs(a4->sin_port));
}

static void listener_closed(uv_handle_t *h)
{
    server_handle_closed(h->data);
}

static int server_bind(struct http_server *server, const struct sockaddr_storage *addr,
                       const char *listen, struct wr_error **err)
{
    uv_tcp_init(server->loop, &server->listener);
    server->listener.data = server;
    server->open_handles++;
    int r = uv_tcp_bind(&server->listener, (const struct sockaddr *)addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&server->listener, 128, on_connection);
    if (r == 0)
        server->authority = bound_authority(&server->listener);
    if (r < 0 || !server->authority)
        return wr_error_set(err, r < 0 ? -r : EIO, "listening on %s: %s", listen,
                            r < 0 ? uv_strerror(r) : "cannot read the bound address");
    return 0;
}

int http_server_start(const struct http_server_options *opts, struct http_server **ret,
                      struct wr_error **err)
{
    struct sockaddr_storage addr;
    if (parse_listen(opts->listen, &addr, err) < 0)
        return -EINVAL;
    bool loopback = addr_is_loopback(&addr);
    if (!opts->token && !loopback)
        return wr_error_set(err, EINVAL,
                            "refusing to serve %s without a bearer token: anyone who can "
                            "reach it could run code in sandboxes; set a token or listen on a "
                            "loopback address",
                            opts->listen);
    struct http_server *server = wr_calloc(1, sizeof(*server));
    server->loop = opts->loop;
    server->token = opts->token ? wr_strdup(opts->token) : NULL;
    server->credential_ok = opts->credential_ok;
    server->credential_data = opts->credential_data;
    server->loopback = loopback;
    server->routes_tail = &server->routes;
    /* The server's own reference, dropped by http_server_stop. */
    server->open_handles = 1;
    int r = server_bind(server, &addr, opts->listen, err);
    if (r < 0) {
        http_server_stop(server);
        return r;
    }
    *ret = server;
    return 0;
}

void http_server_route(struct http_server *server, const struct http_route *route)
{
    struct http_route_entry *e = wr_calloc(1, sizeof(*e));
    e->route = *route;
    *server->routes_tail = e;
    server->routes_tail = &e->next;
    char *was = server->not_found;
    server->not_found = was ? wr_asprintf("%s, %s", was, route->path)
                            : wr_asprintf("not found: this server answers %s", route->path);
    free(was);
}

uv_loop_t *http_conn_loop(const struct http_conn *c)
{
    return c->server->loop;
}

uv_loop_t *http_server_loop(const struct http_server *server)
{
    return server->loop;
}

const char *http_server_authority(const struct http_server *server)
{
    return server->authority;
}

void http_server_stop(struct http_server *server)
{
    if (!server || server->stopping)
        return;
    server->stopping = true;
    while (server->conns)
        http_conn_close(server->conns);
    if (server->listener.loop)
        uv_close((uv_handle_t *)&server->listener, listener_closed);
    server_handle_closed(server);
}
