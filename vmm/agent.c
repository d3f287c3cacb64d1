/* The host side of the agent protocol (guest-init/PROTOCOL.md) on the libuv loop.
 *
 * One agent_conn is one uv_pipe_t to a guest-init; every request is an agent_req on
 * its own odd stream id, kept in a list until its final frame (EXIT, RESULT or ERROR)
 * arrives. Incoming frames are parsed in place in one growing input buffer; outgoing
 * frames are encoded into small allocations, except a file's data, which uv_write
 * sends straight from the caller's buffer.
 *
 * Lifetime: the caller owns the conn from the connect callback until it calls
 * agent_conn_close, also after the connection broke (on_close). The struct is freed
 * once the caller closed it and libuv closed both handles. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "agent-lists.h"
#include "agent.h"
#include "guest-init/proto.h"

#define CONNECT_RETRY_MS 5
#define IN_MIN_CAP (256u * 1024u)
#define IN_MAX_CAP (4u * (GI_FRAME_HEADER_SIZE + GI_FRAME_MAX_PAYLOAD))

enum conn_state { CONN_CONNECTING, CONN_HELLO, CONN_READY, CONN_BROKEN };

enum req_kind {
    REQ_EXEC,
    REQ_READ,
    REQ_WRITE,
    REQ_STAT,
    REQ_MEMSTATS,
    REQ_SIMPLE,
    REQ_PTY_OPEN,
    REQ_PTY_ATTACH,
    REQ_PTY_LIST,
    REQ_LIST,
    REQ_WATCH,
};

struct send;

struct agent_req {
    struct agent_req *prev, *next;
    struct agent_conn *conn;
    uint32_t stream;
    enum req_kind kind;
    void *data;
    union {
        struct agent_exec_handlers exec;
        agent_read_cb read;
        agent_write_cb write;
        agent_stat_cb stat;
        agent_memstats_cb memstats;
        agent_simple_cb simple;
        agent_pty_open_cb pty_open;
        struct agent_pty_handlers pty;
        agent_pty_list_cb pty_list;
        agent_list_dir_cb list;
        struct agent_watch_handlers watch;
    } cb;
    struct wr_buf read_buf; /* READ: the data so far, capped at the requested length */
    /* LIST_DIR: the entries so far, capped at the requested number and in bytes. */
    struct agent_dir_list list;
    /* WRITE: the uv_write still referencing the caller's buffer. The answer is held
     * back until it completes, so that the caller cannot free the buffer under it. */
    struct send *inflight;
    bool answered;
    uint64_t bytes;
    struct wr_error *error;
};

/* The public handles of an exec and of a terminal attachment are their requests. */
struct agent_exec {
    struct agent_req req;
};
struct agent_pty {
    struct agent_req req;
};
struct agent_watch {
    struct agent_req req;
};

struct agent_conn {
    uv_loop_t *loop;
    uv_pipe_t pipe;
    uv_timer_t timer;
    int open_handles;
    enum conn_state state;
    bool handed_out;   /* the connect callback gave conn to the caller */
    bool user_closed;  /* agent_conn_close was called */
    char *path;        /* the socket path, or "fd N" for agent_connect_fd (messages) */
    int fd;            /* agent_connect_fd: the stream to attach, -1 once attached */
    uint64_t deadline; /* uv_now() ms */
    uint32_t timeout_ms;
    agent_connect_cb connect_cb;
    void *connect_data;
    void (*on_close)(void *data);
    void *on_close_data;
    char *agent;
    uint64_t agent_pid;
    uint32_t next_stream;
    struct agent_req *reqs;
    uint8_t *in;
    size_t in_len, in_cap;
    struct gi_writer writer;
};

struct send {
    uv_write_t write;
    struct agent_req *owner; /* a WRITE request waiting for this send, or NULL */
    uv_buf_t *bufs;
    uint8_t frames[]; /* encoded frames (and DATA headers) this send owns */
};

static void conn_break(struct agent_conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- lifetime ----------------------------------------------------------------------- */

static void conn_free(struct agent_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->path);
    free(c->agent);
    free(c->in);
    gi_writer_free(&c->writer);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct agent_conn *c = h->data;
    if (--c->open_handles == 0 && (c->user_closed || !c->handed_out))
        conn_free(c);
}

static void close_handles(struct agent_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->pipe.data && !uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
}

static void req_unlink(struct agent_req *r)
{
    struct agent_conn *c = r->conn;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_free(struct agent_req *r)
{
    if (r->inflight)
        r->inflight->owner = NULL;
    wr_buf_free(&r->read_buf);
    agent_dir_list_clear(&r->list);
    wr_error_free(r->error);
    free(r);
}

/* Runs the request's final callback with err (taken) or its result, then frees it. The
 * request must already be unlinked. */
static void req_complete(struct agent_req *r, struct wr_error *err)
{
    switch (r->kind) {
    case REQ_EXEC:
        r->cb.exec.done(r->data, NULL, err);
        break;
    case REQ_READ:
        r->cb.read(r->data, r->read_buf.data ? r->read_buf.data : "", r->read_buf.len, r->bytes,
                   err);
        break;
    case REQ_WRITE:
        r->cb.write(r->data, r->bytes, err);
        break;
    case REQ_STAT:
        r->cb.stat(r->data, NULL, err);
        break;
    case REQ_MEMSTATS:
        r->cb.memstats(r->data, NULL, err);
        break;
    case REQ_SIMPLE:
        r->cb.simple(r->data, err);
        break;
    case REQ_PTY_OPEN:
        r->cb.pty_open(r->data, 0, 0, err);
        break;
    case REQ_PTY_ATTACH:
        r->cb.pty.end(r->data, NULL, err);
        break;
    case REQ_PTY_LIST:
        r->cb.pty_list(r->data, NULL, 0, err);
        break;
    case REQ_LIST:
        r->cb.list(r->data, err ? NULL : r->list.entries, err ? 0 : r->list.n, r->list.cut, err);
        break;
    case REQ_WATCH:
        r->cb.watch.end(r->data, err);
        break;
    }
    req_free(r);
}

static void fail_all(struct agent_conn *c, int status, const char *msg)
{
    while (c->reqs) {
        struct agent_req *r = c->reqs;
        req_unlink(r);
        struct wr_error *err = NULL;
        wr_error_set(&err, status, "%s", msg);
        req_complete(r, err);
    }
}

/* The connection is unusable: fail everything, then tell whoever is waiting. */
static void conn_break(struct agent_conn *c, int status, const char *fmt, ...)
{
    if (c->state == CONN_BROKEN)
        return;
    bool was_ready = c->state == CONN_READY;
    c->state = CONN_BROKEN;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    close_handles(c);
    fail_all(c, status, msg);
    if (!was_ready) {
        struct wr_error *err = NULL;
        wr_error_set(&err, status, "%s", msg);
        c->connect_cb(c->connect_data, NULL, err);
    } else if (c->on_close && !c->user_closed) {
        c->on_close(c->on_close_data);
    }
}

void agent_conn_on_close(struct agent_conn *conn, void (*cb)(void *data), void *data)
{
    conn->on_close = cb;
    conn->on_close_data = data;
}

void agent_conn_close(struct agent_conn *conn)
{
    if (!conn || conn->user_closed)
        return;
    conn->user_closed = true;
    if (conn->state != CONN_BROKEN) {
        conn->state = CONN_BROKEN;
        close_handles(conn);
        fail_all(conn, ECANCELED, "sandbox agent connection closed");
    } else if (conn->open_handles == 0) {
        conn_free(conn);
    }
}

const char *agent_conn_agent(const struct agent_conn *conn)
{
    return conn->agent;
}

/* ---- sending ------------------------------------------------------------------------ */

static void on_written(uv_write_t *w, int status)
{
    struct send *s = (struct send *)w;
    struct agent_conn *c = w->handle->data;
    struct agent_req *owner = s->owner;
    free(s->bufs);
    free(s);
    if (owner) {
        owner->inflight = NULL;
        if (owner->answered) {
            req_unlink(owner);
            req_complete(owner, TAKE_PTR(owner->error));
        }
    }
    if (status < 0 && status != UV_ECANCELED)
        conn_break(c, ECONNRESET, "sandbox agent connection lost: write: %s", uv_strerror(status));
}

/* Queues bufs (whose memory belongs to s or to the caller) in one uv_write. Takes s. */
static int send_bufs(struct agent_conn *c, struct send *s, uv_buf_t *bufs, unsigned n,
                     struct wr_error **err)
{
    s->bufs = bufs;
    int r = uv_write(&s->write, (uv_stream_t *)&c->pipe, bufs, n, on_written);
    if (r < 0) {
        free(bufs);
        free(s);
        return wr_error_set(err, ECONNRESET, "sending to the sandbox agent: %s", uv_strerror(r));
    }
    return 0;
}

/* Sends the frame finished in c->writer. */
static int send_writer(struct agent_conn *c, struct wr_error **err)
{
    if (gi_writer_finish(&c->writer) < 0)
        return wr_error_set(err, EMSGSIZE, "request too large for one agent frame (max %u bytes)",
                            GI_FRAME_MAX_PAYLOAD);
    struct send *s = wr_calloc(1, sizeof(*s) + c->writer.len);
    memcpy(s->frames, c->writer.data, c->writer.len);
    uv_buf_t *buf = wr_malloc(sizeof(*buf));
    *buf = uv_buf_init((char *)s->frames, (unsigned)c->writer.len);
    return send_bufs(c, s, buf, 1, err);
}

/* ---- requests ----------------------------------------------------------------------- */

static bool stream_in_use(struct agent_conn *c, uint32_t stream)
{
    for (struct agent_req *r = c->reqs; r; r = r->next)
        if (r->stream == stream)
            return true;
    return false;
}

static uint32_t next_stream(struct agent_conn *c)
{
    /* Odd ids, wrapping past 2^32 back to 1 (never 0, which is HELLO's). */
    do {
        c->next_stream += 2;
    } while (stream_in_use(c, c->next_stream));
    return c->next_stream;
}

static struct agent_req *req_new(struct agent_conn *c, enum req_kind kind, size_t size, void *data)
{
    struct agent_req *r = wr_calloc(1, size);
    r->conn = c;
    r->kind = kind;
    r->data = data;
    r->stream = next_stream(c);
    return r;
}

static void req_link(struct agent_req *r)
{
    struct agent_conn *c = r->conn;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
}

static int check_ready(struct agent_conn *c, struct wr_error **err)
{
    if (c->state != CONN_READY)
        return wr_error_set(err, ECONNRESET, "sandbox agent connection lost");
    return 0;
}

/* Sends a request whose whole payload is in c->writer and links r, or frees r. */
static int start_simple(struct agent_req *r, struct wr_error **err)
{
    int ret = send_writer(r->conn, err);
    if (ret < 0) {
        req_free(r);
        return ret;
    }
    req_link(r);
    return 0;
}

/* ---- exec --------------------------------------------------------------------------- */

static void encode_exec(struct gi_writer *w, uint32_t stream, const struct agent_exec_request *q)
{
    gi_writer_start(w, GI_EXEC, stream);
    for (const char *const *a = q->argv; *a; a++)
        gi_writer_str(w, GI_T_ARG, *a);
    for (const char *const *e = q->env; e && *e; e++)
        gi_writer_str(w, GI_T_ENV, *e);
    if (q->cwd)
        gi_writer_str(w, GI_T_CWD, q->cwd);
    if (q->user)
        gi_writer_str(w, GI_T_USER, q->user);
    if (q->timeout_ms)
        gi_writer_u64(w, GI_T_TIMEOUT_MS, q->timeout_ms);
    gi_writer_u64(w, GI_T_STDIN_OPEN, q->stdin_data || q->stdin_len);
}

/* The EXEC frame, then stdin in STDIN frames and the empty STDIN that closes it, all in
 * one send (stdin is copied, so the caller's buffer is free after agent_exec). */
static int send_exec(struct agent_conn *c, uint32_t stream, const struct agent_exec_request *q,
                     struct wr_error **err)
{
    bool has_stdin = q->stdin_data || q->stdin_len;
    if (!has_stdin)
        return send_writer(c, err);
    if (gi_writer_finish(&c->writer) < 0)
        return wr_error_set(err, EMSGSIZE, "exec request too large (max %u bytes)",
                            GI_FRAME_MAX_PAYLOAD);
    size_t chunks = (q->stdin_len + GI_CHUNK_SIZE - 1) / GI_CHUNK_SIZE;
    size_t total = c->writer.len + (chunks + 1) * GI_FRAME_HEADER_SIZE + q->stdin_len;
    struct send *s = wr_calloc(1, sizeof(*s) + total);
    uint8_t *p = s->frames;
    memcpy(p, c->writer.data, c->writer.len);
    p += c->writer.len;
    for (size_t off = 0; off <= q->stdin_len; off += GI_CHUNK_SIZE) {
        size_t n = WR_MIN(GI_CHUNK_SIZE, q->stdin_len - off);
        struct gi_frame_header h = {.length = (uint32_t)n, .type = GI_STDIN, .stream = stream};
        gi_header_encode(&h, p);
        if (n)
            memcpy(p + GI_FRAME_HEADER_SIZE, (const uint8_t *)q->stdin_data + off, n);
        p += GI_FRAME_HEADER_SIZE + n;
        if (n == 0)
            break;
        if (off + n == q->stdin_len) {
            h.length = 0;
            gi_header_encode(&h, p);
            p += GI_FRAME_HEADER_SIZE;
            break;
        }
    }
    uv_buf_t *buf = wr_malloc(sizeof(*buf));
    *buf = uv_buf_init((char *)s->frames, (unsigned)(p - s->frames));
    return send_bufs(c, s, buf, 1, err);
}

int agent_exec(struct agent_conn *conn, const struct agent_exec_request *req,
               const struct agent_exec_handlers *handlers, void *data, struct agent_exec **ret_exec,
               struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    if (!req->argv || !req->argv[0])
        return wr_error_set(err, EINVAL, "exec: empty command");
    struct agent_req *q = req_new(conn, REQ_EXEC, sizeof(struct agent_exec), data);
    q->cb.exec = *handlers;
    encode_exec(&conn->writer, q->stream, req);
    r = send_exec(conn, q->stream, req, err);
    if (r < 0) {
        req_free(q);
        return r;
    }
    req_link(q);
    if (ret_exec)
        *ret_exec = (struct agent_exec *)q;
    return 0;
}

int agent_exec_signal(struct agent_exec *exec, int signum)
{
    struct agent_conn *c = exec->req.conn;
    _cleanup_error_ struct wr_error *err = NULL;
    if (check_ready(c, &err) < 0)
        return -ECONNRESET;
    gi_writer_start(&c->writer, GI_SIGNAL, exec->req.stream);
    gi_writer_u64(&c->writer, GI_T_SIGNUM, (uint64_t)signum);
    return send_writer(c, &err);
}

/* ---- files -------------------------------------------------------------------------- */

int agent_read_file(struct agent_conn *conn, const char *path, uint64_t offset, uint64_t length,
                    agent_read_cb cb, void *data, struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    if (length > SIZE_MAX / 2)
        return wr_error_set(err, EINVAL, "read length too large");
    struct agent_req *q = req_new(conn, REQ_READ, sizeof(*q), data);
    q->cb.read = cb;
    wr_buf_init(&q->read_buf, (size_t)length);
    gi_writer_start(&conn->writer, GI_READ, q->stream);
    gi_writer_str(&conn->writer, GI_T_PATH, path);
    gi_writer_u64(&conn->writer, GI_T_OFFSET, offset);
    gi_writer_u64(&conn->writer, GI_T_LENGTH, length);
    return start_simple(q, err);
}

/* WRITE frame, DATA headers interleaved with the caller's buffer (not copied), and
 * WRITE_END: one uv_write. */
static struct send *build_write(struct agent_conn *c, uint32_t stream, const void *buf, size_t len,
                                uv_buf_t **ret_bufs, unsigned *ret_n)
{
    size_t chunks = (len + GI_CHUNK_SIZE - 1) / GI_CHUNK_SIZE;
    size_t head = c->writer.len;
    struct send *s = wr_calloc(1, sizeof(*s) + head + (chunks + 1) * GI_FRAME_HEADER_SIZE);
    uv_buf_t *bufs = wr_malloc((2 * chunks + 2) * sizeof(*bufs));
    uint8_t *p = s->frames;
    unsigned n = 0;
    memcpy(p, c->writer.data, head);
    bufs[n++] = uv_buf_init((char *)p, (unsigned)head);
    p += head;
    for (size_t off = 0; off < len; off += GI_CHUNK_SIZE) {
        size_t k = WR_MIN(GI_CHUNK_SIZE, len - off);
        struct gi_frame_header h = {.length = (uint32_t)k, .type = GI_DATA, .stream = stream};
        gi_header_encode(&h, p);
        bufs[n++] = uv_buf_init((char *)p, GI_FRAME_HEADER_SIZE);
        bufs[n++] = uv_buf_init((char *)buf + off, (unsigned)k);
        p += GI_FRAME_HEADER_SIZE;
    }
    struct gi_frame_header end = {.type = GI_WRITE_END, .stream = stream};
    gi_header_encode(&end, p);
    bufs[n++] = uv_buf_init((char *)p, GI_FRAME_HEADER_SIZE);
    *ret_bufs = bufs;
    *ret_n = n;
    return s;
}

int agent_write_file(struct agent_conn *conn, const char *path, const void *buf, size_t len,
                     uint32_t mode, uint32_t flags, agent_write_cb cb, void *data,
                     struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    if (len / GI_CHUNK_SIZE > UINT32_MAX / 4)
        return wr_error_set(err, EFBIG, "write of %zu bytes too large", len);
    struct agent_req *q = req_new(conn, REQ_WRITE, sizeof(*q), data);
    q->cb.write = cb;
    gi_writer_start(&conn->writer, GI_WRITE, q->stream);
    gi_writer_str(&conn->writer, GI_T_PATH, path);
    gi_writer_u64(&conn->writer, GI_T_MODE, mode);
    gi_writer_u64(&conn->writer, GI_T_FLAGS, flags);
    if ((r = gi_writer_finish(&conn->writer)) < 0) {
        req_free(q);
        return wr_error_set(err, EMSGSIZE, "write request too large");
    }
    uv_buf_t *bufs;
    unsigned n;
    struct send *s = build_write(conn, q->stream, buf, len, &bufs, &n);
    if ((r = send_bufs(conn, s, bufs, n, err)) < 0) {
        req_free(q);
        return r;
    }
    s->owner = q;
    q->inflight = s;
    req_link(q);
    return 0;
}

int agent_stat(struct agent_conn *conn, const char *path, agent_stat_cb cb, void *data,
               struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_STAT, sizeof(*q), data);
    q->cb.stat = cb;
    gi_writer_start(&conn->writer, GI_STAT, q->stream);
    gi_writer_str(&conn->writer, GI_T_PATH, path);
    return start_simple(q, err);
}

int agent_memstats(struct agent_conn *conn, agent_memstats_cb cb, void *data, struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_MEMSTATS, sizeof(*q), data);
    q->cb.memstats = cb;
    gi_writer_start(&conn->writer, GI_MEMSTATS, q->stream);
    return start_simple(q, err);
}

static int simple_request(struct agent_conn *conn, uint16_t type, agent_simple_cb cb, void *data,
                          struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_SIMPLE, sizeof(*q), data);
    q->cb.simple = cb;
    gi_writer_start(&conn->writer, type, q->stream);
    return start_simple(q, err);
}

int agent_sync(struct agent_conn *conn, agent_simple_cb cb, void *data, struct wr_error **err)
{
    return simple_request(conn, GI_SYNC, cb, data, err);
}

int agent_drop_caches(struct agent_conn *conn, agent_simple_cb cb, void *data,
                      struct wr_error **err)
{
    return simple_request(conn, GI_DROP_CACHES, cb, data, err);
}

int agent_attach(struct agent_conn *conn, const char *dir, const char *hostname, agent_simple_cb cb,
                 void *data, struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_SIMPLE, sizeof(*q), data);
    q->cb.simple = cb;
    gi_writer_start(&conn->writer, GI_ATTACH, q->stream);
    if (dir)
        gi_writer_str(&conn->writer, GI_T_PATH, dir);
    gi_writer_str(&conn->writer, GI_T_HOSTNAME, hostname);
    return start_simple(q, err);
}

int agent_shutdown(struct agent_conn *conn, agent_simple_cb cb, void *data, struct wr_error **err)
{
    return simple_request(conn, GI_SHUTDOWN, cb, data, err);
}

/* ---- terminals ---------------------------------------------------------------------- */

static void put_open(struct agent_conn *conn, struct agent_req *q,
                     const struct agent_pty_request *req, bool attach);

static int check_open(struct agent_conn *conn, const struct agent_pty_request *req,
                      struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    if (req->rows < 1 || req->rows > GI_PTY_DIM_MAX || req->cols < 1 || req->cols > GI_PTY_DIM_MAX)
        return wr_error_set(err, EINVAL, "terminal size %ux%u: rows and cols must be 1 to %d",
                            req->rows, req->cols, GI_PTY_DIM_MAX);
    return 0;
}

int agent_pty_open(struct agent_conn *conn, const struct agent_pty_request *req,
                   agent_pty_open_cb cb, void *data, struct wr_error **err)
{
    int r = check_open(conn, req, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_PTY_OPEN, sizeof(*q), data);
    q->cb.pty_open = cb;
    put_open(conn, q, req, false);
    return start_simple(q, err);
}

int agent_pty_open_attached(struct agent_conn *conn, const struct agent_pty_request *req,
                            const struct agent_pty_handlers *handlers, void *data,
                            struct agent_pty **ret_pty, struct wr_error **err)
{
    int r = check_open(conn, req, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_PTY_ATTACH, sizeof(struct agent_pty), data);
    q->cb.pty = *handlers;
    put_open(conn, q, req, true);
    if ((r = start_simple(q, err)) < 0)
        return r;
    *ret_pty = (struct agent_pty *)q;
    return 0;
}

static void put_open(struct agent_conn *conn, struct agent_req *q,
                     const struct agent_pty_request *req, bool attach)
{
    struct gi_writer *w = &conn->writer;
    gi_writer_start(w, GI_PTY_OPEN, q->stream);
    for (const char *const *a = req->argv; a && *a; a++)
        gi_writer_str(w, GI_T_ARG, *a);
    for (const char *const *e = req->env; e && *e; e++)
        gi_writer_str(w, GI_T_ENV, *e);
    if (req->cwd)
        gi_writer_str(w, GI_T_CWD, req->cwd);
    if (req->user)
        gi_writer_str(w, GI_T_USER, req->user);
    gi_writer_u64(w, GI_T_ROWS, req->rows);
    gi_writer_u64(w, GI_T_COLS, req->cols);
    if (req->pipes) {
        gi_writer_u64(w, GI_T_PIPES, 1);
        gi_writer_u64(w, GI_T_STDIN_OPEN, req->stdin_open);
    }
    if (req->tag)
        gi_writer_str(w, GI_T_TAG, req->tag);
    if (req->host_data_len)
        gi_writer_bytes(w, GI_T_HOST_DATA, req->host_data, req->host_data_len);
    if (attach)
        gi_writer_u64(w, GI_T_ATTACH, 1);
}

static int check_selector(const struct agent_pty_selector *sel, struct wr_error **err)
{
    if (!sel->id && !sel->pid && (!sel->tag || !*sel->tag))
        return wr_error_set(err, EINVAL, "no process named (an id, a pid or a tag)");
    if (sel->tag && strlen(sel->tag) > GI_PROC_TAG_MAX)
        return wr_error_set(err, EINVAL, "a tag is at most %u bytes", GI_PROC_TAG_MAX);
    return 0;
}

static void put_selector(struct gi_writer *w, const struct agent_pty_selector *sel)
{
    if (sel->id)
        gi_writer_u64(w, GI_T_PTY_ID, sel->id);
    else if (sel->pid)
        gi_writer_u64(w, GI_T_PID, sel->pid);
    else
        gi_writer_str(w, GI_T_TAG, sel->tag);
}

int agent_pty_attach_selected(struct agent_conn *conn, const struct agent_pty_selector *sel,
                              bool live, const struct agent_pty_handlers *handlers, void *data,
                              struct agent_pty **ret_pty, struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0 || (r = check_selector(sel, err)) < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_PTY_ATTACH, sizeof(struct agent_pty), data);
    q->cb.pty = *handlers;
    gi_writer_start(&conn->writer, GI_PTY_ATTACH, q->stream);
    put_selector(&conn->writer, sel);
    if (live)
        gi_writer_u64(&conn->writer, GI_T_LIVE, 1);
    if ((r = start_simple(q, err)) < 0)
        return r;
    *ret_pty = (struct agent_pty *)q;
    return 0;
}

int agent_pty_attach(struct agent_conn *conn, uint64_t pty_id,
                     const struct agent_pty_handlers *handlers, void *data,
                     struct agent_pty **ret_pty, struct wr_error **err)
{
    if (pty_id == 0)
        return wr_error_set(err, ENOENT, "no terminal session 0");
    struct agent_pty_selector sel = {.id = pty_id};
    return agent_pty_attach_selected(conn, &sel, false, handlers, data, ret_pty, err);
}

int agent_pty_control(struct agent_conn *conn, const struct agent_pty_selector *sel,
                      const struct agent_pty_control *ctl, agent_simple_cb cb, void *data,
                      struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0 || (r = check_selector(sel, err)) < 0)
        return r;
    if (ctl->input_len > GI_FRAME_MAX_PAYLOAD - 1024)
        return wr_error_set(err, EMSGSIZE, "process input of %zu bytes (at most %u at once)",
                            ctl->input_len, GI_FRAME_MAX_PAYLOAD - 1024);
    struct agent_req *q = req_new(conn, REQ_SIMPLE, sizeof(*q), data);
    q->cb.simple = cb;
    struct gi_writer *w = &conn->writer;
    gi_writer_start(w, GI_PROC_CONTROL, q->stream);
    put_selector(w, sel);
    if (ctl->input)
        gi_writer_bytes(w, GI_T_INPUT, ctl->input, ctl->input_len);
    if (ctl->close_stdin)
        gi_writer_u64(w, GI_T_CLOSE_STDIN, 1);
    if (ctl->signum)
        gi_writer_u64(w, GI_T_SIGNUM, (uint64_t)ctl->signum);
    if (ctl->rows || ctl->cols) {
        gi_writer_u64(w, GI_T_ROWS, ctl->rows);
        gi_writer_u64(w, GI_T_COLS, ctl->cols);
    }
    return start_simple(q, err);
}

/* Sends data in frames of type on stream (copied, at most GI_CHUNK_SIZE per frame); an
 * empty buffer is one empty frame. */
static int send_raw_frames(struct agent_conn *c, uint16_t type, uint32_t stream, const void *buf,
                           size_t len, struct wr_error **err)
{
    size_t chunks = len ? (len + GI_CHUNK_SIZE - 1) / GI_CHUNK_SIZE : 1;
    struct send *s = wr_calloc(1, sizeof(*s) + chunks * GI_FRAME_HEADER_SIZE + len);
    uint8_t *p = s->frames;
    size_t off = 0;
    for (size_t i = 0; i < chunks; i++) {
        size_t n = WR_MIN(GI_CHUNK_SIZE, len - off);
        struct gi_frame_header h = {.length = (uint32_t)n, .type = type, .stream = stream};
        gi_header_encode(&h, p);
        if (n)
            memcpy(p + GI_FRAME_HEADER_SIZE, (const uint8_t *)buf + off, n);
        p += GI_FRAME_HEADER_SIZE + n;
        off += n;
    }
    uv_buf_t *b = wr_malloc(sizeof(*b));
    *b = uv_buf_init((char *)s->frames, (unsigned)(p - s->frames));
    return send_bufs(c, s, b, 1, err);
}

int agent_pty_input(struct agent_pty *pty, const void *buf, size_t len, struct wr_error **err)
{
    struct agent_conn *c = pty->req.conn;
    int r = check_ready(c, err);
    if (r < 0 || len == 0) /* an empty frame would detach */
        return r;
    return send_raw_frames(c, GI_PTY_INPUT, pty->req.stream, buf, len, err);
}

int agent_pty_detach(struct agent_pty *pty, struct wr_error **err)
{
    struct agent_conn *c = pty->req.conn;
    int r = check_ready(c, err);
    return r < 0 ? r : send_raw_frames(c, GI_PTY_INPUT, pty->req.stream, NULL, 0, err);
}

int agent_pty_resize(struct agent_pty *pty, unsigned rows, unsigned cols, struct wr_error **err)
{
    struct agent_conn *c = pty->req.conn;
    int r = check_ready(c, err);
    if (r < 0)
        return r;
    if (rows < 1 || rows > GI_PTY_DIM_MAX || cols < 1 || cols > GI_PTY_DIM_MAX)
        return wr_error_set(err, EINVAL, "terminal size %ux%u: rows and cols must be 1 to %d", rows,
                            cols, GI_PTY_DIM_MAX);
    gi_writer_start(&c->writer, GI_PTY_RESIZE, pty->req.stream);
    gi_writer_u64(&c->writer, GI_T_ROWS, rows);
    gi_writer_u64(&c->writer, GI_T_COLS, cols);
    return send_writer(c, err);
}

int agent_pty_ack(struct agent_pty *pty, uint64_t bytes, struct wr_error **err)
{
    struct agent_conn *c = pty->req.conn;
    int r = check_ready(c, err);
    if (r < 0)
        return r;
    gi_writer_start(&c->writer, GI_PTY_ACK, pty->req.stream);
    gi_writer_u64(&c->writer, GI_T_BYTES, bytes);
    return send_writer(c, err);
}

int agent_pty_signal(struct agent_pty *pty, int signum, struct wr_error **err)
{
    struct agent_conn *c = pty->req.conn;
    int r = check_ready(c, err);
    if (r < 0)
        return r;
    gi_writer_start(&c->writer, GI_SIGNAL, pty->req.stream);
    gi_writer_u64(&c->writer, GI_T_SIGNUM, (uint64_t)signum);
    return send_writer(c, err);
}

int agent_pty_close(struct agent_conn *conn, uint64_t pty_id, agent_simple_cb cb, void *data,
                    struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_SIMPLE, sizeof(*q), data);
    q->cb.simple = cb;
    gi_writer_start(&conn->writer, GI_PTY_CLOSE, q->stream);
    gi_writer_u64(&conn->writer, GI_T_PTY_ID, pty_id);
    return start_simple(q, err);
}

int agent_pty_list(struct agent_conn *conn, agent_pty_list_cb cb, void *data, struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_PTY_LIST, sizeof(*q), data);
    q->cb.pty_list = cb;
    gi_writer_start(&conn->writer, GI_PTY_LIST, q->stream);
    return start_simple(q, err);
}

/* ---- directories ---------------------------------------------------------------------- */

int agent_list_dir(struct agent_conn *conn, const char *path, unsigned depth, size_t max_entries,
                   agent_list_dir_cb cb, void *data, struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_LIST, sizeof(*q), data);
    q->cb.list = cb;
    q->list.max = WR_MIN(max_entries, (size_t)GI_LIST_MAX_ENTRIES);
    gi_writer_start(&conn->writer, GI_LIST_DIR, q->stream);
    gi_writer_str(&conn->writer, GI_T_PATH, path);
    gi_writer_u64(&conn->writer, GI_T_DEPTH, depth);
    gi_writer_u64(&conn->writer, GI_T_MAX_ENTRIES, q->list.max);
    return start_simple(q, err);
}

/* A request on a path whose answer is an empty RESULT: MKDIR, RENAME, REMOVE. */
static int path_request(struct agent_conn *conn, uint16_t type, const char *path,
                        const char *new_path, uint32_t flags, const uint32_t *mode,
                        agent_simple_cb cb, void *data, struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_SIMPLE, sizeof(*q), data);
    q->cb.simple = cb;
    gi_writer_start(&conn->writer, type, q->stream);
    gi_writer_str(&conn->writer, GI_T_PATH, path);
    if (new_path)
        gi_writer_str(&conn->writer, GI_T_NEW_PATH, new_path);
    if (mode)
        gi_writer_u64(&conn->writer, GI_T_MODE, *mode);
    gi_writer_u64(&conn->writer, GI_T_FLAGS, flags);
    return start_simple(q, err);
}

int agent_mkdir(struct agent_conn *conn, const char *path, uint32_t mode, uint32_t flags,
                agent_simple_cb cb, void *data, struct wr_error **err)
{
    return path_request(conn, GI_MKDIR, path, NULL, flags, &mode, cb, data, err);
}

int agent_rename(struct agent_conn *conn, const char *from, const char *to, uint32_t flags,
                 agent_simple_cb cb, void *data, struct wr_error **err)
{
    return path_request(conn, GI_RENAME, from, to, flags, NULL, cb, data, err);
}

int agent_remove(struct agent_conn *conn, const char *path, uint32_t flags, agent_simple_cb cb,
                 void *data, struct wr_error **err)
{
    return path_request(conn, GI_REMOVE, path, NULL, flags, NULL, cb, data, err);
}

/* ---- watching a directory ------------------------------------------------------------- */

int agent_watch(struct agent_conn *conn, const char *path, bool recursive,
                const struct agent_watch_handlers *handlers, void *data,
                struct agent_watch **ret_watch, struct wr_error **err)
{
    int r = check_ready(conn, err);
    if (r < 0)
        return r;
    struct agent_req *q = req_new(conn, REQ_WATCH, sizeof(struct agent_watch), data);
    q->cb.watch = *handlers;
    gi_writer_start(&conn->writer, GI_WATCH, q->stream);
    gi_writer_str(&conn->writer, GI_T_PATH, path);
    gi_writer_u64(&conn->writer, GI_T_RECURSIVE, recursive);
    if ((r = start_simple(q, err)) < 0)
        return r;
    *ret_watch = (struct agent_watch *)q;
    return 0;
}

int agent_unwatch(struct agent_watch *watch, struct wr_error **err)
{
    struct agent_conn *c = watch->req.conn;
    int r = check_ready(c, err);
    return r < 0 ? r : send_raw_frames(c, GI_WATCH_STOP, watch->req.stream, NULL, 0, err);
}

/* WATCH_EVENTS: EVENT_NAME starts an event, EVENT_TYPE completes it. */
static int watch_events(struct agent_req *r, const uint8_t *p, size_t n)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int ret;
    char name[4097];
    bool have_name = false;
    gi_reader_init(&rd, p, n);
    while ((ret = gi_reader_next(&rd, &t)) > 0) {
        uint64_t type = 0;
        if (t.tag == GI_T_EVENT_NAME) {
            have_name = t.len < sizeof name && !memchr(t.value, 0, t.len);
            if (have_name) {
                memcpy(name, t.value, t.len);
                name[t.len] = 0;
            }
        } else if (t.tag == GI_T_EVENT_TYPE && have_name && gi_tlv_u64(&t, &type) == 0) {
            have_name = false;
            if (type >= GI_WATCH_CREATE && type <= GI_WATCH_CHMOD)
                r->cb.watch.event(r->data, name, (unsigned)type);
        }
    }
    return ret < 0 ? -EPROTO : 0;
}

/* ---- receiving ---------------------------------------------------------------------- */

/* Integer fields of a RESULT/EXIT/HELLO payload, indexed by tag (tags up to GI_T_LAST). */
#define FIELD_TAGS (GI_T_LAST + 1)
struct fields {
    uint64_t v[FIELD_TAGS];
    bool has[FIELD_TAGS];
    const uint8_t *str[FIELD_TAGS];
    uint32_t str_len[FIELD_TAGS];
};

static int parse_fields(const uint8_t *p, size_t n, struct fields *f)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int r;
    memset(f->has, 0, sizeof(f->has));
    gi_reader_init(&rd, p, n);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        if (t.tag >= FIELD_TAGS)
            continue;
        f->has[t.tag] = true;
        f->str[t.tag] = t.value;
        f->str_len[t.tag] = t.len;
        f->v[t.tag] = 0;
        if (t.len == 8)
            gi_tlv_u64(&t, &f->v[t.tag]);
    }
    return r;
}

static struct wr_error *error_from_frame(const struct fields *f)
{
    struct wr_error *err = NULL;
    int status = f->has[GI_T_ERRNO] && f->v[GI_T_ERRNO] > 0 && f->v[GI_T_ERRNO] < 4096
                     ? (int)f->v[GI_T_ERRNO]
                     : EIO;
    if (f->has[GI_T_MESSAGE])
        wr_error_set(&err, status, "%.*s", (int)f->str_len[GI_T_MESSAGE],
                     (const char *)f->str[GI_T_MESSAGE]);
    else
        wr_error_set(&err, status, "sandbox agent error: %s", strerror(status));
    return err;
}

/* Delivers the final answer of r (unlinking it), unless a WRITE's data is still being
 * sent: then on_written delivers it. */
static void finish(struct agent_req *r, struct wr_error *err)
{
    if (r->inflight) {
        r->answered = true;
        r->error = err;
        return;
    }
    req_unlink(r);
    req_complete(r, err);
}

static void finish_pty_end(struct agent_req *r, enum agent_pty_end_reason reason,
                           const struct fields *f)
{
    struct agent_pty_end end = {.reason = reason};
    if (reason == AGENT_PTY_EXITED)
        end.exit = (struct agent_exit){.exit_code = (int)(int64_t)f->v[GI_T_EXIT_CODE],
                                       .signal = (int)f->v[GI_T_SIGNAL]};
    req_unlink(r);
    r->cb.pty.end(r->data, &end, NULL);
    req_free(r);
}

/* A PTY_LIST RESULT: one PTY_ENTRY (itself a TLV list) per session. */
static int finish_pty_list(struct agent_req *r, const uint8_t *p, size_t n)
{
    struct agent_pty_info list[GI_PTY_MAX];
    size_t count = 0;
    int ret = agent_pty_list_decode(p, n, list, GI_PTY_MAX, &count);
    if (ret < 0)
        return ret;
    req_unlink(r);
    r->cb.pty_list(r->data, list, count, NULL);
    req_free(r);
    return 0;
}

/* A name field (OWNER, GROUP) into out[64]: "" when absent, too long or holding a NUL. */
static void copy_name(char out[64], const struct fields *f, unsigned tag)
{
    out[0] = 0;
    if (f->has[tag] && f->str_len[tag] < 64 && !memchr(f->str[tag], 0, f->str_len[tag])) {
        memcpy(out, f->str[tag], f->str_len[tag]);
        out[f->str_len[tag]] = 0;
    }
}

static void finish_result(struct agent_req *r, const struct fields *f)
{
    if (r->kind == REQ_STAT) {
        struct agent_stat st = {.size = f->v[GI_T_SIZE],
                                .mode = (uint32_t)f->v[GI_T_MODE],
                                .mtime = (int64_t)f->v[GI_T_MTIME]};
        copy_name(st.owner, f, GI_T_OWNER);
        copy_name(st.group, f, GI_T_GROUP);
        req_unlink(r);
        r->cb.stat(r->data, &st, NULL);
        req_free(r);
    } else if (r->kind == REQ_MEMSTATS) {
        struct agent_memstats m = {.total = f->v[GI_T_MEM_TOTAL],
                                   .free = f->v[GI_T_MEM_FREE],
                                   .available = f->v[GI_T_MEM_AVAILABLE],
                                   .cached = f->v[GI_T_MEM_CACHED]};
        req_unlink(r);
        r->cb.memstats(r->data, &m, NULL);
        req_free(r);
    } else if (r->kind == REQ_PTY_OPEN) {
        req_unlink(r);
        r->cb.pty_open(r->data, f->v[GI_T_PTY_ID], f->v[GI_T_PID], NULL);
        req_free(r);
    } else if (r->kind == REQ_PTY_ATTACH) {
        uint64_t why = f->has[GI_T_PTY_END] ? f->v[GI_T_PTY_END] : 0;
        finish_pty_end(
            r, why >= 1 && why <= 3 ? (enum agent_pty_end_reason)why : AGENT_PTY_DETACHED, f);
    } else {
        r->bytes = r->kind == REQ_READ ? f->v[GI_T_SIZE] : f->v[GI_T_BYTES];
        if (r->kind == REQ_LIST && f->v[GI_T_TRUNCATED])
            r->list.cut = true;
        finish(r, NULL);
    }
}

static void finish_exit(struct agent_req *r, const struct fields *f)
{
    struct agent_exit e = {.exit_code = (int)(int64_t)f->v[GI_T_EXIT_CODE],
                           .signal = (int)f->v[GI_T_SIGNAL],
                           .timed_out = f->v[GI_T_TIMED_OUT] != 0};
    req_unlink(r);
    r->cb.exec.done(r->data, &e, NULL);
    req_free(r);
}

/* Returns <0 on a protocol error. */
static int handle_frame(struct agent_conn *c, struct agent_req *r, uint16_t type, const uint8_t *p,
                        size_t n)
{
    struct fields f;
    if ((type == GI_STDOUT || type == GI_STDERR) && r->kind == REQ_EXEC) {
        if (r->cb.exec.output)
            r->cb.exec.output(r->data, type == GI_STDOUT ? 1 : 2, (const char *)p, n);
        return 0;
    }
    if (type == GI_DATA && r->kind == REQ_READ)
        return wr_buf_append(&r->read_buf, p, n) < 0 ? -EPROTO : 0;
    if (type == GI_DIR_ENTRIES && r->kind == REQ_LIST)
        return agent_dir_list_decode(&r->list, p, n);
    if ((type == GI_PTY_OUTPUT || type == GI_PROC_STDERR) && r->kind == REQ_PTY_ATTACH) {
        if (type == GI_PROC_STDERR && r->cb.pty.stderr_output)
            r->cb.pty.stderr_output(r->data, (const char *)p, n);
        else if (r->cb.pty.output)
            r->cb.pty.output(r->data, (const char *)p, n);
        return 0;
    }
    if (type == GI_PROC_ATTACHED && r->kind == REQ_PTY_ATTACH) {
        if (parse_fields(p, n, &f) < 0)
            return -EPROTO;
        if (r->cb.pty.attached)
            r->cb.pty.attached(r->data, f.v[GI_T_PTY_ID], f.v[GI_T_PID]);
        return 0;
    }
    if (type == GI_RESULT && r->kind == REQ_PTY_LIST)
        return finish_pty_list(r, p, n);
    if (r->kind == REQ_WATCH && type == GI_WATCH_EVENTS)
        return watch_events(r, p, n);
    if (r->kind == REQ_WATCH && type == GI_WATCH_STARTED) {
        r->cb.watch.started(r->data);
        return 0;
    }
    if (type != GI_ERROR && type != GI_RESULT && type != GI_EXIT)
        return 0; /* a frame this version does not know for this request */
    if (parse_fields(p, n, &f) < 0)
        return -EPROTO;
    if (type == GI_ERROR)
        finish(r, error_from_frame(&f));
    else if (type == GI_EXIT && r->kind == REQ_EXEC)
        finish_exit(r, &f);
    else if (type == GI_EXIT && r->kind == REQ_PTY_ATTACH)
        finish_pty_end(r, AGENT_PTY_EXITED, &f);
    else if (type == GI_RESULT && r->kind != REQ_EXEC)
        finish_result(r, &f);
    return 0;
}

static struct agent_req *find_req(struct agent_conn *c, uint32_t stream)
{
    for (struct agent_req *r = c->reqs; r; r = r->next)
        if (r->stream == stream && !r->answered)
            return r;
    return NULL;
}

static void handle_hello(struct agent_conn *c, const uint8_t *p, size_t n)
{
    struct fields f;
    if (parse_fields(p, n, &f) < 0) {
        conn_break(c, EPROTO, "sandbox agent at %s: malformed HELLO", c->path);
        return;
    }
    if (f.v[GI_T_VERSION] != GI_PROTO_VERSION) {
        conn_break(c, EPROTONOSUPPORT,
                   "sandbox agent at %s speaks protocol version %llu, warren speaks %d", c->path,
                   (unsigned long long)f.v[GI_T_VERSION], GI_PROTO_VERSION);
        return;
    }
    c->agent = f.has[GI_T_AGENT]
                   ? wr_strndup((const char *)f.str[GI_T_AGENT], f.str_len[GI_T_AGENT])
                   : wr_strdup("unknown");
    c->agent_pid = f.v[GI_T_PID];
    c->state = CONN_READY;
    c->handed_out = true;
    uv_timer_stop(&c->timer);
    c->connect_cb(c->connect_data, c, NULL);
}

/* Handles every complete frame in the input buffer; stops when the connection was
 * closed or broken by a callback. */
static void process_input(struct agent_conn *c)
{
    size_t pos = 0;
    while (c->state != CONN_BROKEN && c->in_len - pos >= GI_FRAME_HEADER_SIZE) {
        struct gi_frame_header h;
        if (gi_header_decode(c->in + pos, &h) < 0) {
            conn_break(c, EPROTO, "sandbox agent protocol error: frame of %u bytes", h.length);
            return;
        }
        if (c->in_len - pos < GI_FRAME_HEADER_SIZE + h.length)
            break;
        const uint8_t *payload = c->in + pos + GI_FRAME_HEADER_SIZE;
        pos += GI_FRAME_HEADER_SIZE + h.length;
        /* Before the agent's first HELLO, frames are the end of a previous host's
         * session on a serial channel that outlived it: skipped. After it, further
         * HELLOs (the answer to ours, a reopened port) carry nothing new. */
        if (c->state == CONN_HELLO && h.type == GI_HELLO)
            handle_hello(c, payload, h.length);
        if (c->state != CONN_READY || h.type == GI_HELLO)
            continue;
        struct agent_req *r = find_req(c, h.stream);
        if (r && handle_frame(c, r, h.type, payload, h.length) < 0) {
            conn_break(c, EPROTO, "sandbox agent protocol error on stream %u", h.stream);
            return;
        }
    }
    if (c->state != CONN_BROKEN && pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct agent_conn *c = h->data;
    size_t want = IN_MIN_CAP;
    if (c->in_len >= GI_FRAME_HEADER_SIZE) {
        struct gi_frame_header fh;
        gi_header_decode(c->in, &fh);
        want = WR_MIN(WR_MAX(want, 2 * (GI_FRAME_HEADER_SIZE + (size_t)fh.length)), IN_MAX_CAP);
    }
    if (c->in_cap < want || c->in_len == c->in_cap) {
        c->in_cap = WR_MAX(want, c->in_cap + GI_FRAME_HEADER_SIZE);
        c->in = wr_realloc(c->in, c->in_cap);
    }
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct agent_conn *c = stream->data;
    if (nread == 0 || c->state == CONN_BROKEN)
        return;
    if (nread < 0) {
        if (c->state == CONN_HELLO) {
            conn_break(c, ECONNRESET,
                       "sandbox agent at %s closed the connection before "
                       "HELLO",
                       c->path);
            return;
        }
        {
            conn_break(c, ECONNRESET, "sandbox agent connection lost: %s",
                       nread == UV_EOF ? "closed by the agent" : uv_strerror((int)nread));
            return;
        }
    }
    c->in_len += (size_t)nread;
    process_input(c);
}

/* ---- connecting --------------------------------------------------------------------- */

static int open_pipe(struct agent_conn *c, int fd)
{
    int r = uv_pipe_init(c->loop, &c->pipe, 0);
    if (r == 0) {
        c->pipe.data = c;
        c->open_handles++;
        r = uv_pipe_open(&c->pipe, fd);
    }
    if (r < 0) {
        close(fd); /* not libuv's yet: closing the handle would leave it open */
        return r;
    }
    return uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* One non-blocking connect(2): the connected fd, or -errno. A unix socket connects
 * at once or fails at once, so no EINPROGRESS handling is needed. */
static int try_connect(struct agent_conn *c)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, c->path, strlen(c->path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* The host's HELLO opens every session. On a socket it is a formality; on a serial
 * channel it tells a guest-init that may not have seen the previous host leave to drop
 * that host's requests and to say HELLO again (our first one may have been sent while
 * no host was connected, and lost). */
static int send_host_hello(struct agent_conn *c)
{
    _cleanup_error_ struct wr_error *err = NULL;
    gi_writer_start(&c->writer, GI_HELLO, 0);
    gi_writer_u64(&c->writer, GI_T_VERSION, GI_PROTO_VERSION);
    gi_writer_str(&c->writer, GI_T_AGENT, "warren");
    return send_writer(c, &err) < 0 ? -ECONNRESET : 0;
}

/* Attaches a connected fd (taken) to the libuv pipe and says HELLO. */
static int attach(struct agent_conn *c, int fd)
{
    int r = open_pipe(c, fd);
    return r < 0 ? r : send_host_hello(c);
}

static int connect_once(struct agent_conn *c)
{
    if (c->fd >= 0)
        return attach(c, TAKE_FD(c->fd));
    int fd = try_connect(c);
    return fd < 0 ? fd : attach(c, fd);
}

static void on_timer(uv_timer_t *t);

static void connect_attempt(struct agent_conn *c)
{
    int r = connect_once(c);
    uint64_t now = uv_now(c->loop);
    if (r == 0) {
        c->state = CONN_HELLO;
        uv_timer_start(&c->timer, on_timer, c->deadline > now ? c->deadline - now : 0, 0);
        /* Bytes that came with the stream (agent_connect_fd's initial) may hold HELLO. */
        if (c->in_len > 0)
            process_input(c);
        return;
    }
    bool retry = (r == -ENOENT || r == -ECONNREFUSED || r == -EAGAIN) && !c->pipe.data;
    if (retry && now < c->deadline) {
        uv_timer_start(&c->timer, on_timer, CONNECT_RETRY_MS, 0);
        return;
    }
    if (retry) {
        conn_break(c, ETIMEDOUT, "connecting to the sandbox agent at %s: %s (gave up after %u ms)",
                   c->path, strerror(-r), c->timeout_ms);
        return;
    }
    conn_break(c, -r, "connecting to the sandbox agent at %s: %s", c->path, strerror(-r));
}

static void on_timer(uv_timer_t *t)
{
    struct agent_conn *c = t->data;
    if (c->state == CONN_CONNECTING)
        connect_attempt(c);
    else if (c->state == CONN_HELLO)
        conn_break(c, ETIMEDOUT, "sandbox agent at %s did not say HELLO within %u ms", c->path,
                   c->timeout_ms);
}

static struct agent_conn *conn_new(uv_loop_t *loop, char *path, uint32_t timeout_ms,
                                   agent_connect_cb cb, void *data)
{
    struct agent_conn *c = wr_calloc(1, sizeof(*c));
    c->loop = loop;
    c->path = path;
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    c->deadline = uv_now(loop) + timeout_ms;
    c->connect_cb = cb;
    c->connect_data = data;
    c->next_stream = UINT32_MAX; /* the first id is then 1 */
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    /* The first attempt runs from the loop, so that cb never runs inside the call. */
    uv_timer_start(&c->timer, on_timer, 0, 0);
    return c;
}

int agent_connect_unix(uv_loop_t *loop, const char *path, uint32_t timeout_ms, agent_connect_cb cb,
                       void *data, struct wr_error **err)
{
    struct sockaddr_un addr;
    if (strlen(path) >= sizeof(addr.sun_path))
        return wr_error_set(err, ENAMETOOLONG, "agent socket path too long: %s", path);
    conn_new(loop, wr_strdup(path), timeout_ms, cb, data);
    return 0;
}

int agent_connect_fd(uv_loop_t *loop, int fd, const void *initial, size_t initial_len,
                     uint32_t timeout_ms, agent_connect_cb cb, void *data, struct wr_error **err)
{
    if (fd < 0)
        return wr_error_set(err, EBADF, "agent stream: bad fd %d", fd);
    if (initial_len > IN_MAX_CAP) {
        close(fd);
        return wr_error_set(err, EPROTO, "agent stream: %zu initial bytes, more than a frame",
                            initial_len);
    }
    struct agent_conn *c = conn_new(loop, wr_asprintf("fd %d", fd), timeout_ms, cb, data);
    c->fd = fd;
    if (initial_len > 0) {
        c->in_cap = WR_MAX(IN_MIN_CAP, initial_len);
        c->in = wr_malloc(c->in_cap);
        memcpy(c->in, initial, initial_len);
        c->in_len = initial_len;
    }
    return 0;
}
