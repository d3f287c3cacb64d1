/* The web UI's ports: /sandboxes/<id>/ports/<port>/<path> reaches a server that a process
 * inside the sandbox listens on (vmm_port_connect). The request goes on with its path
 * below the prefix, Host localhost:<port>, warren's own credentials (the bearer token, the
 * session cookie) taken out, and "Connection: close" (one request per connection; a
 * WebSocket upgrade keeps its Connection and Upgrade); then the bytes are relayed both
 * ways, each direction paused while the other side has 1 MiB queued. The server's answer
 * gets "Content-Security-Policy: sandbox ...": its pages run in an origin of their own, so
 * a page served from a sandbox cannot use the browser's sign-in to drive warren (its
 * requests carry no cookie and an Origin the listener refuses). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ports.h"

#define RELAY_HIGH_WATER (1u << 20)

struct relay {
    struct http_conn *conn; /* the browser's, taken over; NULL once gone */
    uv_tcp_t up;
    bool up_open, up_eof, reading_up;
    size_t up_queued;
    struct wr_buf head;   /* the request for the server, until connected */
    struct wr_buf answer; /* the server's response head, until it is whole */
    bool head_seen;       /* the response head went on (or this is a WebSocket) */
    uint16_t port;
};

#define ANSWER_HEAD_MAX (64u * 1024u)
#define SANDBOX_CSP                                                                                \
    "Content-Security-Policy: sandbox allow-scripts allow-forms allow-popups allow-modals "        \
    "allow-downloads\r\n"

struct up_write {
    uv_write_t req;
    struct relay *r;
    size_t len;
    char data[];
};

static void relay_up_closed(uv_handle_t *h)
{
    struct relay *r = h->data;
    wr_buf_free(&r->head);
    wr_buf_free(&r->answer);
    free(r);
}

static void relay_end(struct relay *r)
{
    if (r->conn) {
        struct http_conn *c = r->conn;
        r->conn = NULL;
        http_conn_on_close(c, NULL, NULL);
        http_upgraded_end(c);
    }
    if (r->up_open) {
        r->up_open = false;
        uv_close((uv_handle_t *)&r->up, relay_up_closed);
    }
}

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char scratch[64 * 1024];
    *buf = uv_buf_init(scratch, sizeof(scratch));
}

/* The connection ended before a whole response head came back. On a VM this is how "no
 * server listens" looks: QEMU's user network accepts the forward's connection, then
 * closes it when the guest refuses. The browser gets an answer that says so. */
static void answer_nothing(struct relay *r)
{
    char body[160], head[192];
    int body_len = snprintf(body, sizeof(body),
                            "nothing answered on port %u in the sandbox: no server listens "
                            "there, or it closed the connection without a response\n",
                            r->port);
    int head_len = snprintf(head, sizeof(head),
                            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; "
                            "charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
                            body_len);
    http_upgraded_write(r->conn, head, (size_t)head_len);
    http_upgraded_write(r->conn, body, (size_t)body_len);
}

static void up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct relay *r = s->data;
    if (n > 0 && r->conn && !r->head_seen) {
        /* The response head, held until whole, goes on with the sandbox policy added
         * after its status line. */
        wr_buf_append(&r->answer, buf->base, (size_t)n);
        const char *end = memmem(r->answer.data, r->answer.len, "\r\n\r\n", 4);
        const char *eol = memchr(r->answer.data, '\n', r->answer.len);
        if (!end && r->answer.len < ANSWER_HEAD_MAX)
            return;
        if (!end || !eol) {
            relay_end(r);
            return;
        }
        size_t status_len = (size_t)(eol - r->answer.data) + 1;
        http_upgraded_write(r->conn, r->answer.data, status_len);
        http_upgraded_write(r->conn, SANDBOX_CSP, strlen(SANDBOX_CSP));
        http_upgraded_write(r->conn, r->answer.data + status_len, r->answer.len - status_len);
        wr_buf_free(&r->answer);
        r->head_seen = true;
    } else if (n > 0 && r->conn) {
        http_upgraded_write(r->conn, buf->base, (size_t)n);
        if (http_conn_write_queue(r->conn) > RELAY_HIGH_WATER) {
            uv_read_stop(s);
            r->reading_up = false;
        }
    } else if (n < 0) {
        /* The server is done (Connection: close) or gone: the browser gets the rest. */
        if (r->conn && !r->head_seen)
            answer_nothing(r);
        relay_end(r);
    }
}

static void up_written(uv_write_t *req, int status)
{
    struct up_write *w = (struct up_write *)req;
    struct relay *r = w->r;
    r->up_queued -= w->len;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED)
            relay_end(r);
        return;
    }
    if (r->conn && r->up_queued < RELAY_HIGH_WATER / 2)
        http_upgraded_pause(r->conn, false);
}

static void to_up(struct relay *r, const char *buf, size_t len)
{
    if (!r->up_open || len == 0)
        return;
    struct up_write *w = wr_malloc(sizeof(*w) + len);
    w->r = r;
    w->len = len;
    memcpy(w->data, buf, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&r->up, &b, 1, up_written) < 0) {
        free(w);
        relay_end(r);
        return;
    }
    r->up_queued += len;
    if (r->conn && r->up_queued > RELAY_HIGH_WATER)
        http_upgraded_pause(r->conn, true);
}

static void browser_data(void *data, const char *buf, size_t len)
{
    to_up(data, buf, len);
}

static void browser_drain(void *data)
{
    struct relay *r = data;
    if (r->up_open && !r->reading_up)
        r->reading_up = uv_read_start((uv_stream_t *)&r->up, up_alloc, up_read) == 0;
}

static void browser_gone(void *data)
{
    struct relay *r = data;
    r->conn = NULL;
    relay_end(r);
}

static void connected(void *data, int fd, struct wr_error *err)
{
    struct relay *r = data;
    if (!r->conn) { /* the browser left while connecting */
        if (fd >= 0)
            close(fd);
        wr_error_free(err);
        wr_buf_free(&r->head);
        free(r);
        return;
    }
    if (fd < 0 || uv_tcp_init(http_conn_loop(r->conn), &r->up) < 0 || uv_tcp_open(&r->up, fd) < 0) {
        struct http_conn *c = r->conn;
        http_conn_on_close(c, NULL, NULL);
        http_respond_error(c, err && err->status == ECONNREFUSED ? 502 : 503,
                           err ? err->msg : "could not reach the port");
        wr_error_free(err);
        if (fd >= 0)
            close(fd);
        wr_buf_free(&r->head);
        free(r);
        return;
    }
    r->up.data = r;
    r->up_open = true;
    http_upgrade(
        r->conn, NULL,
        &(struct http_upgrade_handlers){.on_data = browser_data, .on_drain = browser_drain}, r);
    to_up(r, r->head.data, r->head.len);
    r->reading_up = uv_read_start((uv_stream_t *)&r->up, up_alloc, up_read) == 0;
}

/* Headers never sent on: hop-by-hop ones and warren's own credentials. */
static bool dropped(const char *name, bool upgrade)
{
    static const char *const names[] = {"host",    "authorization",    "keep-alive",  "te",
                                        "trailer", "proxy-connection", "x-csrf-token"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(names); i++)
        if (!strcasecmp(name, names[i]))
            return true;
    return !upgrade && (!strcasecmp(name, "connection") || !strcasecmp(name, "upgrade"));
}

/* A Cookie header without warren's session cookie (NULL when nothing is left). */
static char *cookies_without_signin(const char *value)
{
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    for (const char *p = value; p && *p;) {
        p += strspn(p, " ;");
        size_t len = strcspn(p, ";");
        if (len && strncmp(p, HTTP_SIGNIN_COOKIE "=", strlen(HTTP_SIGNIN_COOKIE) + 1))
            wr_buf_printf(&b, "%s%.*s", b.len ? "; " : "", (int)len, p);
        p += len;
    }
    if (!b.len) {
        wr_buf_free(&b);
        return NULL;
    }
    return wr_buf_steal(&b, NULL);
}

void mcp_web_port(struct vmm *vmm, struct http_conn *c, struct http_request *req,
                  const char *sandbox, uint16_t port, const char *end)
{
    const char *upgrade = http_request_header(req, "upgrade");
    bool is_upgrade = upgrade != NULL;
    /* The path below the prefix, with the query. */
    const char *query = strchr(req->url, '?');
    struct relay *r = wr_calloc(1, sizeof(*r));
    r->conn = c;
    r->port = port;
    wr_buf_init(&r->head, SIZE_MAX);
    wr_buf_init(&r->answer, ANSWER_HEAD_MAX + 64 * 1024);
    /* end: "" or "/<path>" (the query is cut off the path already, kept in the URL). */
    size_t path_len = strcspn(end, "?");
    wr_buf_printf(&r->head, "%s %s%.*s%s HTTP/1.1\r\nHost: localhost:%u\r\n",
                  http_method_str(req->method), path_len ? "" : "/", (int)path_len, end,
                  query ? query : "", port);
    for (size_t i = 0; i < req->header_count; i++) {
        const struct http_header *h = &req->headers[i];
        if (dropped(h->name, is_upgrade))
            continue;
        if (!strcasecmp(h->name, "cookie")) {
            _cleanup_free_ char *kept = cookies_without_signin(h->value);
            if (kept)
                wr_buf_printf(&r->head, "Cookie: %s\r\n", kept);
            continue;
        }
        wr_buf_printf(&r->head, "%s: %s\r\n", h->name, h->value);
    }
    wr_buf_printf(&r->head, "%s\r\n", is_upgrade ? "" : "Connection: close\r\n");
    if (req->body.len)
        wr_buf_append(&r->head, req->body.data, req->body.len);
    http_conn_on_close(c, browser_gone, r);
    struct wr_error *err = NULL;
    if (vmm_port_connect(vmm, sandbox, port, connected, r, &err) < 0) {
        http_conn_on_close(c, NULL, NULL);
        http_respond_error(c, err->status == ENOENT ? 404 : 409, err->msg);
        wr_error_free(err);
        wr_buf_free(&r->head);
        free(r);
    }
}
