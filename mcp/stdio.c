/* The stdio transport: one client, newline-delimited JSON-RPC on fds 0 and 1. stdout
 * carries nothing else; logs go to stderr. */
#include <fcntl.h>
#include <string.h>

#include "mcp-internal.h"

struct stdio_transport {
    struct mcp_server *server;
    struct mcp_session *session;
    uv_pipe_t in;
    uv_pipe_t out;
    bool out_is_pipe;
    struct wr_buf line; /* bytes of the current, unfinished line */
    bool skipping;      /* discarding the rest of an oversized line */
    void (*on_close)(void *data);
    void *on_close_data;
};

struct write_req {
    uv_write_t req;
    char *data;
};

static void write_done(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    if (status < 0)
        log_error("writing to stdout: %s", uv_strerror(status));
    free(w->data);
    free(w);
}

/* Writes line (malloc'd, len bytes plus room for the newline) and frees it. */
static void sink_send_owned(void *data, char *copy, size_t len, const char *related_id, bool final)
{
    struct stdio_transport *t = data;
    copy[len] = '\n';
    if (!t->out_is_pipe) {
        wr_write_all(STDOUT_FILENO, copy, len + 1);
        free(copy);
        return;
    }
    struct write_req *w = wr_calloc(1, sizeof(*w));
    w->data = copy;
    uv_buf_t buf = uv_buf_init(copy, (unsigned)(len + 1));
    int r = uv_write(&w->req, (uv_stream_t *)&t->out, &buf, 1, write_done);
    if (r < 0) {
        log_error("writing to stdout: %s", uv_strerror(r));
        free(copy);
        free(w);
    }
}

static void sink_send(void *data, const char *json, size_t len, const char *related_id, bool final)
{
    char *copy = wr_malloc(len + 1);
    memcpy(copy, json, len);
    sink_send_owned(data, copy, len, related_id, final);
}

static const struct mcp_sink stdio_sink = {.send = sink_send, .send_owned = sink_send_owned};

static void handle_line(struct stdio_transport *t, const char *text, size_t len)
{
    while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len == 0)
        return;
    cJSON *msg;
    _cleanup_free_ char *error = NULL;
    if (mcp_parse_message(text, len, &msg, &error) < 0) {
        sink_send(t, error, strlen(error), NULL, true);
        return;
    }
    mcp_session_handle(t->session, msg);
}

static void oversized(struct stdio_transport *t)
{
    _cleanup_free_ char *error = mcp_error_json(
        NULL, MCP_ERR_INVALID_REQUEST, "message too large (the limit is 48 MiB per message)");
    sink_send(t, error, strlen(error), NULL, true);
    wr_buf_reset(&t->line);
    t->skipping = true;
}

static void feed(struct stdio_transport *t, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t chunk = nl ? (size_t)(nl - p) : n;
        if (!t->skipping && wr_buf_append(&t->line, p, chunk) < 0)
            oversized(t);
        if (nl) {
            if (!t->skipping)
                handle_line(t, t->line.data ? t->line.data : "", t->line.len);
            wr_buf_reset(&t->line);
            t->skipping = false;
            chunk++;
        }
        p += chunk;
        n -= chunk;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[256 * 1024];
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void in_closed(uv_handle_t *h)
{
    struct stdio_transport *t = h->data;
    if (t->out_is_pipe)
        uv_close((uv_handle_t *)&t->out, NULL);
    wr_buf_free(&t->line);
    if (t->on_close)
        t->on_close(t->on_close_data);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct stdio_transport *t = s->data;
    if (n > 0) {
        feed(t, buf->base, (size_t)n);
        return;
    }
    if (n == 0)
        return;
    if (n != UV_EOF)
        log_error("reading stdin: %s", uv_strerror((int)n));
    if (t->line.len > 0 && !t->skipping)
        handle_line(t, t->line.data, t->line.len);
    /* The client is gone: cancel what it started, then let main shut down. */
    mcp_session_free(TAKE_PTR(t->session));
    uv_read_stop(s);
    uv_close((uv_handle_t *)s, in_closed);
}

int mcp_stdio_start(struct mcp_server *server, void (*on_close)(void *data), void *data,
                    struct wr_error **err)
{
    static struct stdio_transport t; /* one per process: there is one stdin */
    memset(&t, 0, sizeof(t));
    t.server = server;
    t.on_close = on_close;
    t.on_close_data = data;
    wr_buf_init(&t.line, MCP_MAX_MESSAGE_BYTES);
    uv_handle_type in_type = uv_guess_handle(STDIN_FILENO);
    if (in_type != UV_NAMED_PIPE && in_type != UV_TTY && in_type != UV_TCP)
        return wr_error_set(err, EINVAL, "stdin must be a pipe or terminal for `warren mcp`");
    int r = uv_pipe_init(server->loop, &t.in, 0);
    if (r == 0)
        r = uv_pipe_open(&t.in, STDIN_FILENO);
    if (r < 0)
        return wr_error_set(err, -r, "opening stdin: %s", uv_strerror(r));
    t.in.data = &t;
    if (uv_guess_handle(STDOUT_FILENO) == UV_NAMED_PIPE) {
        uv_pipe_init(server->loop, &t.out, 0);
        if (uv_pipe_open(&t.out, STDOUT_FILENO) == 0)
            t.out_is_pipe = true;
    }
    /* Bigger pipes mean fewer wake-ups per megabyte of file content (best effort: the
     * kernel caps it at /proc/sys/fs/pipe-max-size for unprivileged users). */
    fcntl(STDIN_FILENO, F_SETPIPE_SZ, 1 << 20);
    fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);
    t.session = mcp_session_new(server, &stdio_sink, &t);
    r = uv_read_start((uv_stream_t *)&t.in, alloc_cb, read_cb);
    if (r < 0)
        return wr_error_set(err, -r, "reading stdin: %s", uv_strerror(r));
    return 0;
}
