/* One host connection: reads frames, dispatches requests, and queues output. The
 * output queue is one flat buffer that producers write frames into directly (exec
 * pipes and file reads read() straight into it), so data is copied once on its way
 * from a pipe or file to the socket. */
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "guest-init.h"

#define IN_MIN_CAP (64u * 1024u)
#define IN_MAX_CAP (2u * (GI_FRAME_HEADER_SIZE + GI_FRAME_MAX_PAYLOAD))
/* Output queued before a producer flushes on its own, not waiting for the loop. */
#define OUT_EAGER_FLUSH (1u << 20)

struct gi_conn {
    struct gi_watch watch;
    struct gi_transport *transport;
    struct gi_conn *next;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_head, out_len, out_cap;
    struct gi_writer writer;
    struct gi_req *reqs;
    unsigned n_reqs;
    bool input_paused;
    bool congested;    /* went over GI_OUT_HIGH; on_drain runs when under GI_OUT_LOW */
    bool write_failed; /* the loop closes the connection at its next flush */
    bool closed;
    bool heard; /* something was read: a host is (or was) there */
};

static struct gi_conn *conns;

static size_t out_pending(const struct gi_conn *c)
{
    return c->out_len - c->out_head;
}

bool gi_conn_congested(const struct gi_conn *c)
{
    return c->closed || c->congested;
}

static void update_events(struct gi_conn *c)
{
    uint32_t ev = 0;
    if (!c->input_paused && !c->congested)
        ev |= EPOLLIN;
    if (out_pending(c) > 0)
        ev |= EPOLLOUT;
    gi_watch_set(&c->watch, ev);
}

void gi_conn_pause_input(struct gi_conn *c, bool pause)
{
    c->input_paused = pause;
    update_events(c);
}

struct gi_writer *gi_conn_writer(struct gi_conn *c)
{
    return &c->writer;
}

/* ---- output ------------------------------------------------------------------------- */

static void out_make_room(struct gi_conn *c, size_t n)
{
    if (c->out_cap - c->out_len >= n)
        return;
    if (c->out_head > 0) {
        memmove(c->out, c->out + c->out_head, out_pending(c));
        c->out_len -= c->out_head;
        c->out_head = 0;
    }
    if (c->out_cap - c->out_len >= n)
        return;
    size_t cap = c->out_cap ? c->out_cap : 64 * 1024;
    while (cap - c->out_len < n)
        cap *= 2;
    c->out = wr_realloc(c->out, cap);
    c->out_cap = cap;
}

static void check_congestion(struct gi_conn *c)
{
    if (!c->congested && out_pending(c) >= GI_OUT_HIGH) {
        c->congested = true;
        update_events(c);
    }
}

static void write_out(struct gi_conn *c);

/* A producer queued data. Writing it out early keeps the queue short, but only
 * write_out: flush() would run on_drain callbacks (or close the connection) under
 * the producer's feet. */
static void queued(struct gi_conn *c)
{
    check_congestion(c);
    if (out_pending(c) >= OUT_EAGER_FLUSH)
        write_out(c);
}

void gi_conn_send(struct gi_conn *c, struct gi_writer *w)
{
    if (c->closed || gi_writer_finish(w) < 0)
        return;
    out_make_room(c, w->len);
    memcpy(c->out + c->out_len, w->data, w->len);
    c->out_len += w->len;
    queued(c);
}

uint8_t *gi_conn_reserve(struct gi_conn *c, size_t max)
{
    out_make_room(c, GI_FRAME_HEADER_SIZE + max);
    return c->out + c->out_len + GI_FRAME_HEADER_SIZE;
}

void gi_conn_commit(struct gi_conn *c, uint16_t type, uint32_t stream, size_t len)
{
    struct gi_frame_header h = {.length = (uint32_t)len, .type = type, .stream = stream};
    if (c->closed)
        return;
    gi_header_encode(&h, c->out + c->out_len);
    c->out_len += GI_FRAME_HEADER_SIZE + len;
    queued(c);
}

int gi_conn_send_error(struct gi_conn *c, uint32_t stream, int errnum, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gi_writer_start(&c->writer, GI_ERROR, stream);
    gi_writer_u64(&c->writer, GI_T_ERRNO, (uint64_t)errnum);
    gi_writer_str(&c->writer, GI_T_MESSAGE, msg);
    gi_conn_send(c, &c->writer);
    return 0;
}

void gi_conn_send_empty_result(struct gi_conn *c, uint32_t stream)
{
    gi_writer_start(&c->writer, GI_RESULT, stream);
    gi_conn_send(c, &c->writer);
}

/* Releases big buffers of a connection with nothing in flight, so that idle
 * connections cost little memory. */
static void trim(struct gi_conn *c)
{
    if (c->reqs || out_pending(c) > 0)
        return;
    if (c->out_cap > 256 * 1024) {
        free(c->out);
        c->out = NULL;
        c->out_cap = c->out_head = c->out_len = 0;
    }
    if (c->in_len == 0 && c->in_cap > IN_MIN_CAP) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

static void drained(struct gi_conn *c)
{
    c->congested = false;
    update_events(c);
    /* on_drain may finish (and unlink) its own request: walk a snapshot of next. */
    for (struct gi_req *r = c->reqs, *next; r && !c->closed; r = next) {
        next = r->next;
        if (r->on_drain)
            r->on_drain(r);
        if (c->congested)
            break;
    }
}

/* Writes queued output until the socket is full. Never closes the connection nor calls
 * back, so producers may call it. */
static void write_out(struct gi_conn *c)
{
    while (!c->closed && !c->write_failed && out_pending(c) > 0) {
        ssize_t n = write(c->watch.fd, c->out + c->out_head, out_pending(c));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            log_info("connection %d: write: %s", c->watch.fd, n < 0 ? strerror(errno) : "EOF");
            c->write_failed = true;
            return;
        }
        c->out_head += (size_t)n;
    }
    if (out_pending(c) == 0)
        c->out_head = c->out_len = 0;
}

/* Writes output and then acts on the outcome: closes a failed connection, resumes
 * producers once the queue drained. Called from the loop only. */
static void flush(struct gi_conn *c)
{
    write_out(c);
    if (c->write_failed) {
        gi_conn_close(c);
        return;
    }
    if (c->congested && out_pending(c) < GI_OUT_LOW)
        drained(c);
    if (!c->closed)
        update_events(c);
}

void gi_conn_flush_all(void)
{
    for (struct gi_conn *c = conns, *next; c; c = next) {
        next = c->next;
        flush(c);
        if (!c->closed)
            trim(c);
    }
}

void gi_conn_flush_sync(struct gi_conn *c, int timeout_ms)
{
    uint64_t deadline = wr_now_ms() + (uint64_t)timeout_ms;
    while (!c->closed && out_pending(c) > 0 && wr_now_ms() < deadline) {
        flush(c);
        if (!c->closed && out_pending(c) > 0)
            usleep(1000);
    }
}

/* ---- requests ----------------------------------------------------------------------- */

void gi_req_add(struct gi_conn *c, struct gi_req *req)
{
    req->conn = c;
    req->next = c->reqs;
    c->reqs = req;
    c->n_reqs++;
}

void gi_req_remove(struct gi_req *req)
{
    struct gi_conn *c = req->conn;
    for (struct gi_req **p = &c->reqs; *p; p = &(*p)->next) {
        if (*p == req) {
            *p = req->next;
            c->n_reqs--;
            return;
        }
    }
}

static struct gi_req *find_req(struct gi_conn *c, uint32_t stream)
{
    for (struct gi_req *r = c->reqs; r; r = r->next)
        if (r->stream == stream)
            return r;
    return NULL;
}

typedef int (*start_fn)(struct gi_conn *c, uint32_t stream, const uint8_t *p, size_t n);

static start_fn request_handler(uint16_t type)
{
    switch (type) {
    case GI_EXEC:
        return gi_exec_start;
    case GI_READ:
        return gi_read_start;
    case GI_WRITE:
        return gi_write_start;
    case GI_STAT:
        return gi_stat;
    case GI_MEMSTATS:
        return gi_memstats;
    case GI_SYNC:
        return gi_sync;
    case GI_DROP_CACHES:
        return gi_drop_caches;
    case GI_SHUTDOWN:
        return gi_shutdown_request;
    case GI_ATTACH:
        return gi_attach;
    case GI_PTY_OPEN:
        return gi_pty_open;
    case GI_PTY_ATTACH:
        return gi_pty_attach;
    case GI_PTY_CLOSE:
        return gi_pty_close;
    case GI_PTY_LIST:
        return gi_pty_list;
    case GI_PROC_CONTROL:
        return gi_proc_control;
    case GI_LIST_DIR:
        return gi_list_dir;
    case GI_MKDIR:
        return gi_mkdir;
    case GI_RENAME:
        return gi_rename;
    case GI_REMOVE:
        return gi_remove;
    case GI_WATCH:
        return gi_watch_start;
    default:
        return NULL;
    }
}

static bool is_follow_up(uint16_t type)
{
    return type == GI_STDIN || type == GI_SIGNAL || type == GI_DATA || type == GI_WRITE_END ||
           type == GI_PTY_INPUT || type == GI_PTY_RESIZE || type == GI_PTY_ACK ||
           type == GI_WATCH_STOP;
}

static void send_hello(struct gi_conn *c);

static void abort_requests(struct gi_conn *c)
{
    while (c->reqs) {
        struct gi_req *r = c->reqs;
        c->reqs = r->next;
        c->n_reqs--;
        r->abort(r);
    }
}

/* A new host session on a channel that stayed open (virtio-serial has no accept(): a
 * host that restarted reconnects to the same port, possibly before we saw it leave).
 * The old session's requests and unsent output belong to a host that is gone; output
 * is dropped whole, including the tail of a half-written frame, so that the new host's
 * stream starts on a frame boundary with our HELLO. */
static void reset_session(struct gi_conn *c)
{
    log_info("connection %d: new host session", c->watch.fd);
    abort_requests(c);
    c->out_head = c->out_len = 0;
    c->congested = false;
    c->input_paused = false;
    update_events(c);
}

/* The host's HELLO (optional, first frame of its session): answered with ours. Its
 * fields (VERSION, AGENT) are only checked for well-formedness: the host is the side
 * that refuses a version it does not speak. */
static int host_hello(struct gi_conn *c, const uint8_t *payload, size_t len)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int r;
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0)
        ;
    if (r < 0)
        return r;
    if (c->transport->ops->channel)
        reset_session(c);
    send_hello(c);
    return 0;
}

/* Returns <0 on a protocol error (the caller closes the connection). */
static int dispatch(struct gi_conn *c, const struct gi_frame_header *h, const uint8_t *payload)
{
    if (h->type == GI_HELLO)
        return host_hello(c, payload, h->length);
    if (is_follow_up(h->type)) {
        /* Frames for finished or failed requests are expected (stdin racing an exit,
         * DATA after a failed WRITE) and are dropped. */
        struct gi_req *r = find_req(c, h->stream);
        return r ? r->on_frame(r, h->type, payload, h->length) : 0;
    }
    start_fn start = request_handler(h->type);
    if (!start) {
        log_error("connection %d: unknown frame type %u", c->watch.fd, h->type);
        return -EPROTO;
    }
    if (h->stream == 0 || find_req(c, h->stream)) {
        log_error("connection %d: stream %u is 0 or already in use", c->watch.fd, h->stream);
        return -EPROTO;
    }
    if (c->n_reqs >= GI_MAX_REQUESTS)
        return gi_conn_send_error(c, h->stream, EAGAIN, "too many requests in flight (max %d)",
                                  GI_MAX_REQUESTS);
    return start(c, h->stream, payload, h->length);
}

/* ---- input -------------------------------------------------------------------------- */

/* Handles every complete frame in the input buffer. Returns <0 on a protocol error. */
static int process_input(struct gi_conn *c)
{
    size_t pos = 0;
    while (!c->closed && !c->input_paused && c->in_len - pos >= GI_FRAME_HEADER_SIZE) {
        struct gi_frame_header h;
        if (gi_header_decode(c->in + pos, &h) < 0) {
            log_error("connection %d: frame length %u over the maximum", c->watch.fd, h.length);
            return -EPROTO;
        }
        if (h.flags != 0)
            log_debug("connection %d: ignoring frame flags %#x", c->watch.fd, h.flags);
        if (c->in_len - pos < GI_FRAME_HEADER_SIZE + h.length)
            break;
        int r = dispatch(c, &h, c->in + pos + GI_FRAME_HEADER_SIZE);
        if (r < 0)
            return r;
        pos += GI_FRAME_HEADER_SIZE + h.length;
    }
    if (pos > 0 && !c->closed) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    return 0;
}

/* Room for the rest of the frame being received: a big frame gets a buffer of twice its
 * size so that one read can bring in more than one frame. */
static void in_make_room(struct gi_conn *c)
{
    size_t want = IN_MIN_CAP;
    if (c->in_len >= GI_FRAME_HEADER_SIZE) {
        struct gi_frame_header h;
        gi_header_decode(c->in, &h);
        want = WR_MIN(WR_MAX(want, 2 * (GI_FRAME_HEADER_SIZE + (size_t)h.length)), IN_MAX_CAP);
    }
    if (c->in_cap >= want && c->in_len < c->in_cap)
        return;
    if (c->in_cap < want) {
        c->in = wr_realloc(c->in, want);
        c->in_cap = want;
    }
}

static void on_readable(struct gi_conn *c)
{
    in_make_room(c);
    ssize_t n = read(c->watch.fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (n < 0)
            log_info("connection %d: read: %s", c->watch.fd, strerror(errno));
        gi_conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    c->heard = true;
    if (process_input(c) < 0) {
        log_error("connection %d: protocol error, closing it", c->watch.fd);
        gi_conn_close(c);
    }
}

static void on_event(struct gi_watch *w, uint32_t events)
{
    struct gi_conn *c = (struct gi_conn *)w;
    if (events & EPOLLOUT)
        flush(c);
    if (!c->closed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        on_readable(c);
}

/* Resumes parsing frames that were left in the buffer when input was paused. */
static void resume_input(struct gi_conn *c)
{
    if (!c->closed && !c->input_paused && !c->congested && process_input(c) < 0)
        gi_conn_close(c);
}

static void send_hello(struct gi_conn *c)
{
    gi_writer_start(&c->writer, GI_HELLO, 0);
    gi_writer_u64(&c->writer, GI_T_VERSION, GI_PROTO_VERSION);
    gi_writer_str(&c->writer, GI_T_AGENT, GI_AGENT_NAME);
    gi_writer_u64(&c->writer, GI_T_PID, (uint64_t)getpid());
    gi_conn_send(c, &c->writer);
}

struct gi_conn *gi_conn_new(int fd, struct gi_transport *transport)
{
    struct gi_conn *c = wr_calloc(1, sizeof(*c));
    c->transport = transport;
    int r = gi_watch_add(&c->watch, fd, EPOLLIN, on_event);
    if (r < 0) {
        log_error("watching connection %d: %s", fd, strerror(-r));
        close(fd);
        free(c);
        return NULL;
    }
    c->next = conns;
    conns = c;
    transport->n_conns++;
    send_hello(c);
    /* A serial port is reopened every 100 ms while no host is connected (the driver
     * reports EOF then): only connections a host talked on are worth the console. */
    wr_log(transport->ops->channel ? WR_LOG_DEBUG : WR_LOG_INFO, "connection %d: open (%s)", fd,
           transport->ops->name);
    return c;
}

static void unlink_conn(struct gi_conn *c)
{
    for (struct gi_conn **p = &conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            return;
        }
    }
}

void gi_conn_close(struct gi_conn *c)
{
    if (c->closed)
        return;
    wr_log(c->heard || !c->transport->ops->channel ? WR_LOG_INFO : WR_LOG_DEBUG,
           "connection %d: closed", c->watch.fd);
    c->closed = true;
    abort_requests(c);
    gi_watch_close(&c->watch);
    unlink_conn(c);
    free(c->in);
    free(c->out);
    gi_writer_free(&c->writer);
    c->transport->n_conns--;
    c->transport->ops->conn_closed(c->transport);
    gi_defer_free(c);
}

void gi_conn_close_all(void)
{
    while (conns)
        gi_conn_close(conns);
}

/* Input paused by stdin backpressure or congestion restarts here each iteration. */
uint64_t gi_timers_run(uint64_t now)
{
    uint64_t next = gi_exec_timers(now);
    uint64_t timers[] = {gi_pty_timers(now), gi_transport_timers(now)};
    for (size_t i = 0; i < WR_ARRAY_SIZE(timers); i++)
        if (timers[i] && (!next || timers[i] < next))
            next = timers[i];
    for (struct gi_conn *c = conns, *n; c; c = n) {
        n = c->next;
        if (c->in_len >= GI_FRAME_HEADER_SIZE)
            resume_input(c);
    }
    return next;
}
