/* The Streamable HTTP transport: the listener, connections, their timers and the bytes on
 * the wire. Requests are assembled by http-request.c; what they mean (sessions, JSON-RPC,
 * SSE streams per request) is decided in http-session.c. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http-internal.h"
#include "mcp/mcp-internal.h"

#define MAX_CONNECTIONS 1024u
#define IDLE_TIMEOUT_MS (60u * 1000u)
#define HEADERS_TIMEOUT_MS (10u * 1000u)
#define BODY_TIMEOUT_MS (30u * 1000u)
#define PING_INTERVAL_MS (20u * 1000u)
#define LINGER_TIMEOUT_MS (2u * 1000u)
#define SWEEP_INTERVAL_MS (60u * 1000u)
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
static void conn_set_timer(struct http_conn *c, enum http_timer_mode mode);

static void http_handle_closed(struct mcp_http *http)
{
    if (--http->open_handles == 0 && http->stopping) {
        free(http->token);
        free(http->authority);
        free(http);
    }
}

/* ---- closing ------------------------------------------------------------------------ */

static void conn_handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    struct mcp_http *http = c->http;
    mcp__http_parser_free(&c->parser);
    wr_buf_free(&c->input);
    free(c);
    http_handle_closed(http);
}

void mcp__http_conn_close(struct http_conn *c)
{
    if (c->state == HTTP_CONN_CLOSED)
        return;
    c->state = HTTP_CONN_CLOSED;
    mcp__http_conn_detach(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->http->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->http->conn_count--;
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void conn_shutdown_done(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    free(req);
    if (status < 0 && c->state != HTTP_CONN_CLOSED)
        mcp__http_conn_close(c);
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
        mcp__http_conn_close(c);
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
        mcp__http_conn_close(c);
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
        mcp__http_conn_close(c);
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
        mcp__http_conn_close(c);
    }
}

/* The request is answered: the connection waits for the next one, or closes. */
static void conn_request_done(struct http_conn *c, bool close)
{
    if (close) {
        c->state = HTTP_CONN_FINISHING; /* conn_write_done starts the linger */
        conn_set_timer(c, HTTP_TIMER_NONE);
        return;
    }
    c->state = HTTP_CONN_READING;
    c->chunked = false;
    mcp__http_parser_next(&c->parser);
    conn_set_timer(c, HTTP_TIMER_IDLE);
}

static void put_status_line(struct wr_buf *b, int status, bool close)
{
    wr_buf_printf(b, "HTTP/1.1 %d %s\r\n", status, mcp__http_reason(status));
    wr_buf_printf(b, "Connection: %s\r\n", close ? "close" : "keep-alive");
}

static bool conn_answering(const struct http_conn *c)
{
    return c->state != HTTP_CONN_CLOSED && c->state != HTTP_CONN_LINGERING &&
           c->state != HTTP_CONN_FINISHING;
}

void mcp__http_respond(struct http_conn *c, const struct http_response *r)
{
    if (!conn_answering(c))
        return;
    bool close = r->close || !c->keep_alive || c->http->stopping;
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    put_status_line(&b, r->status, close);
    if (r->content_type)
        wr_buf_printf(&b, "Content-Type: %s\r\n", r->content_type);
    if (r->session_id)
        wr_buf_printf(&b, "Mcp-Session-Id: %s\r\n", r->session_id);
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

void mcp__http_respond_error(struct http_conn *c, int status, int code, const char *message)
{
    cJSON *id = cJSON_CreateNull();
    _cleanup_free_ char *body = mcp_error_json(id, code, message);
    cJSON_Delete(id);
    const char *extra = NULL;
    if (status == 401)
        extra = "WWW-Authenticate: Bearer\r\n";
    else if (status == 405)
        extra = "Allow: GET, POST, DELETE\r\n";
    struct http_response r = {.status = status,
                              .content_type = "application/json",
                              .body = body,
                              .body_len = strlen(body),
                              .extra_headers = extra,
                              .close = status == 413 || status == 431 || status == 408};
    mcp__http_respond(c, &r);
}

void mcp__http_sse_begin(struct http_conn *c, const char *session_id)
{
    if (!conn_answering(c))
        return;
    /* Chunked framing lets the connection carry further requests after the stream; an
     * HTTP/1.0 client gets a stream that ends with the connection. */
    c->chunked = c->parser.req.http_major == 1 && c->parser.req.http_minor >= 1;
    bool close = !c->chunked || !c->keep_alive;
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    put_status_line(&b, 200, close);
    wr_buf_printf(&b, "Content-Type: text/event-stream\r\nCache-Control: no-store\r\n");
    if (session_id)
        wr_buf_printf(&b, "Mcp-Session-Id: %s\r\n", session_id);
    wr_buf_printf(&b, "%s\r\n", c->chunked ? "Transfer-Encoding: chunked\r\n" : "");
    c->state = HTTP_CONN_STREAMING;
    conn_set_timer(c, HTTP_TIMER_PING);
    conn_write(c, &b, false);
    wr_buf_free(&b);
}

/* Writes SSE text, framed as one chunk when the response is chunked. */
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

void mcp__http_sse_event(struct http_conn *c, uint64_t id, const char *json, size_t len)
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

void mcp__http_sse_end(struct http_conn *c)
{
    if (c->state != HTTP_CONN_STREAMING)
        return;
    bool close = !c->chunked || !c->keep_alive || c->http->stopping;
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
        mcp__http_respond_error(c, 408, MCP_HTTP_ERR_TRANSPORT, "request timed out");
        break;
    default:
        mcp__http_conn_close(c);
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
static int expect_continue(struct http_conn *c, const struct mcp_http_request *req)
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

static bool url_is_mcp(const char *url)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (!url || http_parser_parse_url(url, strlen(url), 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
        return false;
    return u.field_data[UF_PATH].len == 4 &&
           memcmp(url + u.field_data[UF_PATH].off, "/mcp", 4) == 0;
}

static int check_headers(void *data, struct mcp_http_request *req)
{
    struct http_conn *c = data;
    struct mcp_http *http = c->http;
    bool post = req->method == HTTP_POST;
    if (!req->host && req->http_major == 1 && req->http_minor >= 1)
        return reject(c, 400, "missing Host header");
    if (req->host && http->loopback && !mcp__http_host_allowed(req->host, http->authority))
        return reject(c, 403, "Host header is not this server");
    if (req->origin && !mcp__http_origin_allowed(req->origin, http->authority))
        return reject(c, 403, "Origin not allowed");
    if (http->token && !mcp__http_token_matches(req->authorization, http->token))
        return reject(c, 401, "missing or wrong bearer token");
    if (!url_is_mcp(req->url))
        return reject(c, 404, "not found: the MCP endpoint is /mcp");
    if (!post && req->method != HTTP_GET && req->method != HTTP_DELETE)
        return reject(c, 405, "method not allowed");
    if (post && !mcp__http_media_type_is(req->content_type, "application/json"))
        return reject(c, 415, "Content-Type must be application/json");
    if (post && !mcp__http_accepts(req->accept, "application/json") &&
        !mcp__http_accepts(req->accept, "text/event-stream"))
        return reject(c, 406, "Accept must allow application/json or text/event-stream");
    return req->expect ? expect_continue(c, req) : 0;
}

static void conn_reject(struct http_conn *c)
{
    int status = c->parser.status;
    const char *message = c->reject_message;
    if (!message)
        message = status == 413 ? "message too large" : mcp__http_reason(status);
    c->keep_alive = false;
    c->state = HTTP_CONN_READING;
    mcp__http_respond_error(c, status, MCP_HTTP_ERR_TRANSPORT, message);
}

static void conn_process_input(struct http_conn *c)
{
    while (c->state == HTTP_CONN_READING && c->input.len > 0) {
        ssize_t n = mcp__http_parser_feed(&c->parser, c->input.data, c->input.len);
        if (n < 0) {
            conn_reject(c);
            return;
        }
        wr_buf_consume(&c->input, (size_t)n);
        if (c->parser.complete) {
            c->keep_alive = c->parser.req.keep_alive;
            c->state = HTTP_CONN_WAITING;
            conn_set_timer(c, HTTP_TIMER_NONE);
            mcp__http_dispatch(c, &c->parser.req);
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
            mcp__http_conn_close(c);
        return;
    }
    wr_buf_append(&c->input, buf->base, (size_t)nread);
    if (c->state != HTTP_CONN_READING && c->input.len >= MAX_READ_AHEAD) {
        uv_read_stop(s);
        c->reading = false;
    }
    conn_process_input(c);
}

/* uv_read_start wants an alloc callback; conn_process_input restarts reads with this. */
static int conn_start_reading(struct http_conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mcp_http *http = server->data;
    if (status < 0)
        return;
    struct http_conn *c = wr_calloc(1, sizeof(*c));
    c->http = http;
    uv_tcp_init(http->loop, &c->tcp);
    uv_timer_init(http->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    http->open_handles++;
    wr_buf_init(&c->input, SIZE_MAX);
    mcp__http_parser_init(&c->parser, MCP_MAX_MESSAGE_BYTES, check_headers, c);
    c->next = http->conns;
    if (c->next)
        c->next->prev = c;
    http->conns = c;
    http->conn_count++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || http->conn_count > MAX_CONNECTIONS) {
        mcp__http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_set_timer(c, HTTP_TIMER_IDLE);
    c->reading = conn_start_reading(c) == 0;
    if (!c->reading)
        mcp__http_conn_close(c);
}

/* ---- listener ----------------------------------------------------------------------- */

/* Parses "a.b.c.d:port", "[v6]:port" or "localhost:port". */
static int parse_listen(const char *listen, struct sockaddr_storage *ret_addr,
                        struct wr_error **err)
{
    char host[INET6_ADDRSTRLEN + 1];
    int port;
    if (!listen || !mcp__http_split_authority(listen, host, sizeof(host), &port) || port < 0)
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
    return mcp__http_host_is_loopback(ip);
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

static void sweep_fired(uv_timer_t *t)
{
    struct mcp_http *http = t->data;
    mcp__http_sweep_sessions(http, wr_now_ms());
}

void mcp__http_sweep_soon(struct mcp_http *http)
{
    if (!http->stopping)
        uv_timer_start(&http->sweep, sweep_fired, 0, SWEEP_INTERVAL_MS);
}

static void listener_closed(uv_handle_t *h)
{
    http_handle_closed(h->data);
}

static int http_bind(struct mcp_http *http, const struct sockaddr_storage *addr, const char *listen,
                     struct wr_error **err)
{
    uv_tcp_init(http->loop, &http->listener);
    http->listener.data = http;
    http->open_handles++;
    int r = uv_tcp_bind(&http->listener, (const struct sockaddr *)addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&http->listener, 128, on_connection);
    if (r == 0)
        http->authority = bound_authority(&http->listener);
    if (r < 0 || !http->authority)
        return wr_error_set(err, r < 0 ? -r : EIO, "listening on %s: %s", listen,
                            r < 0 ? uv_strerror(r) : "cannot read the bound address");
    return 0;
}

int mcp_http_start(struct mcp_server *server, const struct mcp_http_options *opts,
                   struct mcp_http **ret, struct wr_error **err)
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
    struct mcp_http *http = wr_calloc(1, sizeof(*http));
    http->loop = server->loop;
    http->server = server;
    http->token = opts->token ? wr_strdup(opts->token) : NULL;
    http->loopback = loopback;
    http->max_sessions = opts->max_sessions ? opts->max_sessions : 256;
    uv_timer_init(http->loop, &http->sweep);
    http->sweep.data = http;
    http->open_handles = 1;
    int r = http_bind(http, &addr, opts->listen, err);
    if (r < 0) {
        mcp_http_stop(http);
        return r;
    }
    uv_timer_start(&http->sweep, sweep_fired, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    /* Tests and scripts parse this line to find the port. */
    fprintf(stderr, "warren: listening on http://%s/mcp\n", http->authority);
    *ret = http;
    return 0;
}

void mcp_http_stop(struct mcp_http *http)
{
    if (!http || http->stopping)
        return;
    http->stopping = true;
    mcp__http_free_sessions(http);
    while (http->conns)
        mcp__http_conn_close(http->conns);
    uv_close((uv_handle_t *)&http->sweep, listener_closed);
    if (http->listener.loop)
        uv_close((uv_handle_t *)&http->listener, listener_closed);
}
