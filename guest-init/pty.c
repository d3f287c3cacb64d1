/* Process sessions: processes that outlive the connection that started them, for the web
 * UI's terminals and E2B's commands. A session is either a terminal (a pty pair and a child
 * in its own session with the slave as its controlling terminal) or pipes (stdin, stdout
 * and stderr apart). A terminal's output always goes into a ring of recent output; while a
 * host stream is attached output goes there too, at most GI_PTY_WINDOW bytes ahead of the
 * host's acknowledgements: past that the master (or the pipes) is not read, so the child
 * blocks rather than guest-init or warren growing. Detached, a terminal's master is read
 * into the ring alone, so a child never blocks for lack of a reader; a pipe session's
 * output is not read at all until its first attachment (so nothing is lost between its
 * start and the stream the host attaches next), and read and dropped when detached later.
 * A pipe session that exited is forgotten once its EXIT went to an attachment. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#include "guest-init.h"

/* Input queued for a terminal past which the connection stops reading. */
#define INPUT_HIGH (1u << 20)
#define DEFAULT_ROWS 24
#define DEFAULT_COLS 80
#define PIPE_SIZE (256 * 1024)

struct pty_attach;

struct pty_session {
    uint64_t id;
    pid_t pid;
    bool pipes; /* stdin/stdout/stderr pipes instead of a terminal */
    /* The pty master, or the stdout pipe: closed once the output ended (EIO, EOF) or the
     * session finished. */
    struct gi_watch master;
    struct gi_watch errp; /* pipes: stderr */
    struct gi_watch in;   /* pipes: stdin; -1 when it was not opened or was closed */
    bool stdin_eof;       /* pipes: close stdin once the queued input is written */
    bool attached_once;   /* an attachment existed: a later LIVE one replays nothing */
    uint8_t *ring;        /* terminals: GI_PTY_RING_SIZE bytes of recent output */
    size_t ring_head;     /* where the next byte goes */
    size_t ring_len;
    char *argv0;
    char *tag;          /* NULL when none */
    uint8_t *host_data; /* HOST_DATA as given, NULL when none */
    size_t host_data_len;
    unsigned rows, cols;
    int64_t created;
    bool exited; /* the leader was reaped (status) */
    bool done;   /* exited and its output ended: EXIT was reported */
    int status;
    uint64_t last_activity; /* leader exit or last output, for the linger rule */
    struct wr_buf input;
    size_t input_head;
    struct pty_attach *att; /* the attachments, newest first (NULL: detached) */
};

struct pty_attach {
    struct gi_req req;
    struct pty_attach *next; /* the session's next attachment */
    struct pty_session *s;
    uint64_t unacked;  /* output sent on this stream the host has not acknowledged */
    bool blocks_input; /* the session's input queue stopped the connection's reading */
};

static struct pty_session *sessions[GI_PTY_MAX];

/* Live attachments (E2B's Connect) share a session, several streams following one
 * process; a replaying attachment (the web terminal's) takes the session over alone. */
#define ATTACH_MAX 8
static uint64_t next_id = 1;

static void kill_group(struct pty_session *s, int sig)
{
    if (s->exited)
        return;
    if (kill(-s->pid, sig) < 0 && errno == ESRCH)
        kill(s->pid, sig);
}

/* SIGKILLs every process of the terminal's session (its leader's pid is the session id):
 * a job-control shell puts each job in a process group of its own. Processes that left
 * the session (setsid) are not found. */
static void kill_session(struct pty_session *s)
{
    kill_group(s, SIGKILL);
    DIR *d = opendir("/proc");
    for (struct dirent *de; d && (de = readdir(d));) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 1)
            continue;
        char path[64], stat[512];
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, stat, sizeof(stat) - 1);
        if (n <= 0)
            continue;
        stat[n] = '\0';
        /* pid (comm) state ppid pgrp session ...: comm may hold anything, even ')'. */
        const char *p = strrchr(stat, ')');
        int sid = 0;
        if (p && sscanf(p + 1, " %*c %*d %*d %d", &sid) == 1 && sid == s->pid)
            kill((pid_t)pid, SIGKILL);
    }
    if (d)
        closedir(d);
}

static struct pty_session *find(uint64_t id)
{
    for (int i = 0; i < GI_PTY_MAX; i++)
        if (sessions[i] && sessions[i]->id == id)
            return sessions[i];
    return NULL;
}

/* ---- attachments -------------------------------------------------------------------- */

static void update_watch(struct pty_session *s);
static void session_free(struct pty_session *s);

static void set_blocks_input(struct pty_attach *a, bool block)
{
    if (a->blocks_input == block)
        return;
    a->blocks_input = block;
    gi_conn_pause_input(a->req.conn, block);
}

static void attach_unlink(struct pty_attach *a)
{
    for (struct pty_attach **p = &a->s->att; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            return;
        }
}

static size_t attach_count(const struct pty_session *s)
{
    size_t n = 0;
    for (const struct pty_attach *a = s->att; a; a = a->next)
        n++;
    return n;
}

/* Ends the attachment after its final frame went out; the session carries on (detached
 * when it was the last). */
static void attach_end(struct pty_attach *a)
{
    struct pty_session *s = a->s;
    set_blocks_input(a, false);
    gi_req_remove(&a->req);
    attach_unlink(a);
    gi_defer_free(a);
    update_watch(s);
}

static void attach_end_result(struct pty_attach *a, uint64_t why)
{
    struct gi_writer *w = gi_conn_writer(a->req.conn);
    gi_writer_start(w, GI_RESULT, a->req.stream);
    gi_writer_u64(w, GI_T_PTY_END, why);
    gi_conn_send(a->req.conn, w);
    attach_end(a);
}

static void attach_end_exit(struct pty_attach *a)
{
    struct pty_session *s = a->s;
    struct gi_writer *w = gi_conn_writer(a->req.conn);
    int code = WIFEXITED(s->status) ? WEXITSTATUS(s->status) : -1;
    int sig = WIFSIGNALED(s->status) ? WTERMSIG(s->status) : 0;
    gi_writer_start(w, GI_EXIT, a->req.stream);
    gi_writer_u64(w, GI_T_EXIT_CODE, (uint64_t)(int64_t)code);
    gi_writer_u64(w, GI_T_SIGNAL, (uint64_t)sig);
    gi_writer_u64(w, GI_T_TIMED_OUT, 0);
    gi_conn_send(a->req.conn, w);
    attach_end(a);
}

/* Every attachment gets the EXIT; a pipe session whose end was delivered is forgotten. */
static void attach_end_exit_all(struct pty_session *s)
{
    if (!s->att)
        return;
    while (s->att)
        attach_end_exit(s->att);
    if (s->pipes)
        session_free(s);
}

/* ---- output ------------------------------------------------------------------------- */

static void ring_put(struct pty_session *s, const uint8_t *p, size_t n)
{
    if (!s->ring)
        return;
    if (n >= GI_PTY_RING_SIZE) {
        p += n - GI_PTY_RING_SIZE;
        n = GI_PTY_RING_SIZE;
    }
    size_t first = WR_MIN(n, GI_PTY_RING_SIZE - s->ring_head);
    memcpy(s->ring + s->ring_head, p, first);
    memcpy(s->ring, p + first, n - first);
    s->ring_head = (s->ring_head + n) % GI_PTY_RING_SIZE;
    s->ring_len = WR_MIN(s->ring_len + n, (size_t)GI_PTY_RING_SIZE);
}

static void send_output(struct pty_attach *a, uint16_t type, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    uint8_t *dst = gi_conn_reserve(a->req.conn, n);
    memcpy(dst, p, n);
    gi_conn_commit(a->req.conn, type, a->req.stream, n);
    a->unacked += n;
}

/* A new attachment starts with the ring, oldest byte first. */
static void send_ring(struct pty_attach *a)
{
    struct pty_session *s = a->s;
    if (!s->ring)
        return;
    size_t start = (s->ring_head + GI_PTY_RING_SIZE - s->ring_len) % GI_PTY_RING_SIZE;
    size_t first = WR_MIN(s->ring_len, GI_PTY_RING_SIZE - start);
    send_output(a, GI_PTY_OUTPUT, s->ring + start, first);
    send_output(a, GI_PTY_OUTPUT, s->ring, s->ring_len - first);
}

static size_t read_budget(const struct pty_session *s)
{
    if (s->master.fd < 0 && s->errp.fd < 0)
        return 0;
    if (!s->att && s->pipes && !s->attached_once)
        return 0; /* kept in the pipes for the first attachment */
    if (!s->att)
        return GI_PTY_RING_SIZE;
    /* A terminal reads what its ring holds at once; pipes as much as a chunk; never more
     * than the slowest attachment may take. */
    uint64_t budget = s->pipes ? GI_CHUNK_SIZE : GI_PTY_RING_SIZE;
    for (const struct pty_attach *a = s->att; a; a = a->next) {
        if (gi_conn_congested(a->req.conn) || a->unacked >= GI_PTY_WINDOW)
            return 0;
        budget = WR_MIN(budget, GI_PTY_WINDOW - a->unacked);
    }
    return (size_t)budget;
}

static size_t input_pending(const struct pty_session *s)
{
    return s->input.len - s->input_head;
}

static void update_watch(struct pty_session *s)
{
    uint32_t rd = read_budget(s) > 0 ? EPOLLIN : 0;
    uint32_t wr = input_pending(s) > 0 ? EPOLLOUT : 0;
    if (!s->pipes) {
        gi_watch_set(&s->master, rd | wr);
        return;
    }
    gi_watch_set(&s->master, rd);
    gi_watch_set(&s->errp, rd);
    gi_watch_set(&s->in, wr);
}

static void maybe_finish(struct pty_session *s)
{
    if (!s->exited || s->done || s->master.fd >= 0 || s->errp.fd >= 0)
        return;
    s->done = true;
    gi_watch_close(&s->in);
    wr_buf_free(&s->input);
    s->input_head = 0;
    attach_end_exit_all(s);
}

/* The output ended (EIO once every slave fd is closed) or the session gave up on it. */
static void output_ended(struct pty_session *s)
{
    gi_watch_close(&s->master);
    gi_watch_close(&s->errp);
    maybe_finish(s);
}

/* Reads one output (the master or stdout as PTY_OUTPUT, stderr as PROC_STDERR). */
static void pump(struct pty_session *s, struct gi_watch *w, uint16_t type)
{
    static uint8_t buf[GI_CHUNK_SIZE];
    for (int i = 0; i < 8 && w->fd >= 0; i++) {
        size_t budget = read_budget(s);
        if (budget == 0)
            break;
        /* One attachment: read straight into its connection's queue; several: copy. */
        struct pty_attach *a = s->att;
        bool direct = a && !a->next;
        uint8_t *p = direct ? gi_conn_reserve(a->req.conn, budget) : buf;
        ssize_t n = read(w->fd, p, budget);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            /* A terminal's output ends with its master (EIO); pipes one at a time. */
            if (s->pipes)
                gi_watch_close(w);
            else
                gi_watch_close(&s->master);
            maybe_finish(s);
            return;
        }
        s->last_activity = wr_now_ms();
        ring_put(s, p, (size_t)n);
        if (direct) {
            gi_conn_commit(a->req.conn, type, a->req.stream, (size_t)n);
            a->unacked += (size_t)n;
        }
        for (a = direct ? NULL : s->att; a; a = a->next)
            send_output(a, type, p, (size_t)n);
    }
    update_watch(s);
}

/* ---- input -------------------------------------------------------------------------- */

/* Where input goes: the terminal, or the stdin pipe (-1 when closed or never opened). */
static struct gi_watch *input_watch(struct pty_session *s)
{
    return s->pipes ? &s->in : &s->master;
}

static void flush_input(struct pty_session *s)
{
    struct gi_watch *w = input_watch(s);
    while (w->fd >= 0 && input_pending(s) > 0) {
        ssize_t n = write(w->fd, s->input.data + s->input_head, input_pending(s));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0 && s->pipes) {
            gi_watch_close(w); /* EPIPE: nobody reads stdin any more */
            break;
        }
        if (n < 0) {
            output_ended(s);
            break;
        }
        s->input_head += (size_t)n;
    }
    if (w->fd < 0 || input_pending(s) == 0) {
        wr_buf_reset(&s->input);
        s->input_head = 0;
        if (s->pipes && s->stdin_eof)
            gi_watch_close(w);
    }
    for (struct pty_attach *a = s->att; a; a = a->next)
        set_blocks_input(a, input_pending(s) >= INPUT_HIGH);
    update_watch(s);
}

static int queue_input(struct pty_session *s, const uint8_t *p, size_t n)
{
    if (s->input_head > 0 &&
        (s->input_head >= s->input.len / 2 || s->input.len + n > s->input.max)) {
        wr_buf_consume(&s->input, s->input_head);
        s->input_head = 0;
    }
    return wr_buf_append(&s->input, p, n);
}

static void on_master(struct gi_watch *w, uint32_t events)
{
    struct pty_session *s = gi_container_of(w, struct pty_session, master);
    if ((events & EPOLLOUT) && !s->pipes)
        flush_input(s);
    if (s->master.fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && read_budget(s) > 0)
        pump(s, &s->master, GI_PTY_OUTPUT);
}

static void on_stderr(struct gi_watch *w, uint32_t events)
{
    struct pty_session *s = gi_container_of(w, struct pty_session, errp);
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && read_budget(s) > 0)
        pump(s, &s->errp, GI_PROC_STDERR);
}

static void on_stdin(struct gi_watch *w, uint32_t events)
{
    struct pty_session *s = gi_container_of(w, struct pty_session, in);
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        flush_input(s);
}

/* ---- follow-up frames on an attach stream ------------------------------------------- */

static int read_u64_tags(const uint8_t *payload, size_t len, uint16_t tag_a, uint64_t *a,
                         uint16_t tag_b, uint64_t *b)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int r;
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        if (t.tag == tag_a && gi_tlv_u64(&t, a) < 0)
            return -EPROTO;
        if (b && t.tag == tag_b && gi_tlv_u64(&t, b) < 0)
            return -EPROTO;
    }
    return r;
}

static bool valid_dim(uint64_t v)
{
    return v >= 1 && v <= GI_PTY_DIM_MAX;
}

static void resize(struct pty_session *s, uint64_t rows, uint64_t cols)
{
    if (!valid_dim(rows) || !valid_dim(cols) || s->master.fd < 0 || s->pipes)
        return;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    /* The kernel sends SIGWINCH to the terminal's foreground process group. */
    if (ioctl(s->master.fd, TIOCSWINSZ, &ws) == 0) {
        s->rows = (unsigned)rows;
        s->cols = (unsigned)cols;
    }
}

static int on_frame(struct gi_req *req, uint16_t type, const uint8_t *payload, size_t len)
{
    struct pty_attach *a = (struct pty_attach *)req;
    struct pty_session *s = a->s;
    uint64_t x = 0, y = 0;
    int r = 0;
    switch (type) {
    case GI_PTY_INPUT:
        if (len == 0) {
            attach_end_result(a, GI_PTY_END_DETACHED);
            return 0;
        }
        if (input_watch(s)->fd < 0 || s->done || s->stdin_eof)
            return 0;
        if (queue_input(s, payload, len) < 0)
            return -EPROTO;
        flush_input(s);
        return 0;
    case GI_PTY_ACK:
        if ((r = read_u64_tags(payload, len, GI_T_BYTES, &x, 0, NULL)) < 0)
            return r;
        a->unacked -= WR_MIN(x, a->unacked);
        s->last_activity = wr_now_ms();
        update_watch(s);
        return 0;
    case GI_PTY_RESIZE:
        if ((r = read_u64_tags(payload, len, GI_T_ROWS, &x, GI_T_COLS, &y)) < 0)
            return r;
        resize(s, x, y);
        return 0;
    case GI_SIGNAL:
        if ((r = read_u64_tags(payload, len, GI_T_SIGNUM, &x, 0, NULL)) < 0)
            return r;
        if (x > 0 && x < NSIG)
            kill_group(s, (int)x);
        return 0;
    default:
        return 0;
    }
}

static void on_drain(struct gi_req *req)
{
    struct pty_attach *a = (struct pty_attach *)req;
    a->s->last_activity = wr_now_ms();
    update_watch(a->s);
}

/* The connection went away: the session stays, detached. */
static void abort_attach(struct gi_req *req)
{
    struct pty_attach *a = (struct pty_attach *)req;
    struct pty_session *s = a->s;
    attach_unlink(a);
    gi_defer_free(a);
    update_watch(s);
}

/* ---- requests ----------------------------------------------------------------------- */

/* Which session a request names: PTY_ID, else PID (its leader), else TAG (a running one
 * first). */
struct selector {
    uint64_t id, pid;
    const uint8_t *tag;
    size_t tag_len;
};

static int read_selector(const uint8_t *payload, size_t len, struct selector *sel)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int r;
    *sel = (struct selector){0};
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        if (t.tag == GI_T_PTY_ID && gi_tlv_u64(&t, &sel->id) < 0)
            return -EPROTO;
        if (t.tag == GI_T_PID && gi_tlv_u64(&t, &sel->pid) < 0)
            return -EPROTO;
        if (t.tag == GI_T_TAG) {
            sel->tag = t.value;
            sel->tag_len = t.len;
        }
    }
    return r;
}

static struct pty_session *find_selected(const struct selector *sel)
{
    if (sel->id)
        return find(sel->id);
    struct pty_session *found = NULL;
    for (int i = 0; i < GI_PTY_MAX; i++) {
        struct pty_session *s = sessions[i];
        if (!s)
            continue;
        bool match = sel->pid ? (uint64_t)s->pid == sel->pid
                              : sel->tag && s->tag && strlen(s->tag) == sel->tag_len &&
                                    !memcmp(s->tag, sel->tag, sel->tag_len);
        if (match && (!found || (found->done && !s->done)))
            found = s;
    }
    return found;
}

static int send_not_found(struct gi_conn *c, uint32_t stream, const struct selector *sel)
{
    if (sel->id || (!sel->pid && !sel->tag))
        return gi_conn_send_error(c, stream, ENOENT, "no terminal session %llu",
                                  (unsigned long long)sel->id);
    if (sel->pid)
        return gi_conn_send_error(c, stream, ENOENT, "no process session with pid %llu",
                                  (unsigned long long)sel->pid);
    return gi_conn_send_error(c, stream, ENOENT, "no process session tagged '%.*s'",
                              (int)WR_MIN(sel->tag_len, (size_t)GI_PROC_TAG_MAX), sel->tag);
}

/* Makes stream the session's attachment (ending the one before): PROC_ATTACHED, the ring
 * unless live (a session's first attachment gets it anyway), then live output. */
static void attach_session(struct gi_conn *c, uint32_t stream, struct pty_session *s, bool live)
{
    /* A replaying attachment takes the session over; a live one joins, the oldest live
     * one making room past ATTACH_MAX. */
    while (s->att && (!live || attach_count(s) >= ATTACH_MAX)) {
        struct pty_attach *oldest = s->att;
        while (oldest->next)
            oldest = oldest->next;
        attach_end_result(live ? oldest : s->att, GI_PTY_END_REPLACED);
    }
    struct pty_attach *a = wr_calloc(1, sizeof(*a));
    a->req.stream = stream;
    a->req.on_frame = on_frame;
    a->req.on_drain = on_drain;
    a->req.abort = abort_attach;
    a->s = s;
    gi_req_add(c, &a->req);
    a->next = s->att;
    s->att = a;
    struct gi_writer *w = gi_conn_writer(c);
    gi_writer_start(w, GI_PROC_ATTACHED, stream);
    gi_writer_u64(w, GI_T_PTY_ID, s->id);
    gi_writer_u64(w, GI_T_PID, (uint64_t)s->pid);
    gi_conn_send(c, w);
    if (!live || !s->attached_once)
        send_ring(a);
    s->attached_once = true;
    /* The linger rule counts from here: a pipe session's output waited for this. */
    s->last_activity = wr_now_ms();
    if (s->done)
        attach_end_exit_all(s);
    else
        update_watch(s);
}

int gi_pty_attach(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct selector sel;
    uint64_t live = 0;
    int r = read_selector(payload, len, &sel);
    if (r == 0)
        r = read_u64_tags(payload, len, GI_T_LIVE, &live, 0, NULL);
    if (r < 0)
        return r;
    struct pty_session *s = find_selected(&sel);
    if (!s)
        return send_not_found(c, stream, &sel);
    attach_session(c, stream, s, live != 0);
    return 0;
}

/* PROC_CONTROL's fields besides the selector. */
struct control {
    const uint8_t *input;
    size_t input_len;
    bool has_input;
    uint64_t close_stdin, signum, rows, cols;
};

static int read_control(const uint8_t *payload, size_t len, struct control *ctl)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int r;
    *ctl = (struct control){0};
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        uint64_t *v = t.tag == GI_T_CLOSE_STDIN ? &ctl->close_stdin
                      : t.tag == GI_T_SIGNUM    ? &ctl->signum
                      : t.tag == GI_T_ROWS      ? &ctl->rows
                      : t.tag == GI_T_COLS      ? &ctl->cols
                                                : NULL;
        if (v && gi_tlv_u64(&t, v) < 0)
            return -EPROTO;
        if (t.tag == GI_T_INPUT) {
            ctl->input = t.value;
            ctl->input_len = t.len;
            ctl->has_input = true;
        }
    }
    return r;
}

/* Checks a control against the session: 0, or the errno with *why. */
static int control_check(const struct pty_session *s, const struct control *ctl, const char **why)
{
    if (ctl->signum >= NSIG)
        return *why = "not a signal number", EINVAL;
    if ((ctl->rows || ctl->cols) && (!valid_dim(ctl->rows) || !valid_dim(ctl->cols)))
        return *why = "rows and cols must be from 1 to 1000", EINVAL;
    if ((ctl->rows || ctl->cols) && s->pipes)
        return *why = "the process has no terminal to resize", EINVAL;
    if (ctl->close_stdin && !s->pipes)
        return *why = "a terminal has no stdin pipe to close", EINVAL;
    if ((ctl->has_input || ctl->close_stdin) && s->done)
        return *why = "the process has exited", ESRCH;
    if (ctl->has_input && (input_watch((struct pty_session *)s)->fd < 0 || s->stdin_eof))
        return *why = s->pipes ? "the process's stdin is not open (or was closed)"
                               : "the terminal is closed",
               EPIPE;
    if (ctl->has_input && input_pending(s) + ctl->input_len > INPUT_HIGH)
        return *why = "the process is not reading its input: 1 MiB is queued already", EAGAIN;
    return 0;
}

int gi_proc_control(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct selector sel;
    struct control ctl;
    int r = read_selector(payload, len, &sel);
    if (r == 0)
        r = read_control(payload, len, &ctl);
    if (r < 0)
        return r;
    struct pty_session *s = find_selected(&sel);
    if (!s)
        return send_not_found(c, stream, &sel);
    const char *why = NULL;
    int e = control_check(s, &ctl, &why);
    if (e)
        return gi_conn_send_error(c, stream, e, "process %d: %s", (int)s->pid, why);
    if (ctl.has_input && ctl.input_len) {
        if (queue_input(s, ctl.input, ctl.input_len) < 0)
            return gi_conn_send_error(c, stream, EAGAIN, "process %d: input queue full",
                                      (int)s->pid);
        flush_input(s);
    }
    if (ctl.close_stdin) {
        s->stdin_eof = true;
        flush_input(s); /* closes stdin once nothing is queued */
    }
    if (ctl.rows)
        resize(s, ctl.rows, ctl.cols);
    if (ctl.signum)
        kill_group(s, (int)ctl.signum);
    gi_conn_send_empty_result(c, stream);
    return 0;
}

static void session_free(struct pty_session *s)
{
    for (int i = 0; i < GI_PTY_MAX; i++)
        if (sessions[i] == s)
            sessions[i] = NULL;
    gi_watch_close(&s->master);
    gi_watch_close(&s->errp);
    gi_watch_close(&s->in);
    wr_buf_free(&s->input);
    free(s->argv0);
    free(s->tag);
    free(s->host_data);
    free(s->ring);
    gi_defer_free(s);
}

int gi_pty_close(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct selector sel;
    int r = read_selector(payload, len, &sel);
    if (r < 0)
        return r;
    struct pty_session *s = find_selected(&sel);
    if (!s)
        return send_not_found(c, stream, &sel);
    while (s->att)
        attach_end_result(s->att, GI_PTY_END_CLOSED);
    /* The leader is reaped later like any orphan. */
    kill_session(s);
    session_free(s);
    gi_conn_send_empty_result(c, stream);
    return 0;
}

int gi_pty_list(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct gi_writer e = {0};
    struct gi_writer *w = gi_conn_writer(c);
    gi_writer_start(w, GI_RESULT, stream);
    for (int i = 0; i < GI_PTY_MAX; i++) {
        struct pty_session *s = sessions[i];
        if (!s)
            continue;
        /* An entry is a TLV list of its own, built after a dummy header and copied in. */
        gi_writer_start(&e, 0, 0);
        gi_writer_u64(&e, GI_T_PTY_ID, s->id);
        gi_writer_u64(&e, GI_T_PID, (uint64_t)s->pid);
        gi_writer_bytes(&e, GI_T_ARG, s->argv0, strnlen(s->argv0, 1024));
        gi_writer_u64(&e, GI_T_PIPES, s->pipes);
        if (s->tag)
            gi_writer_str(&e, GI_T_TAG, s->tag);
        if (s->host_data)
            gi_writer_bytes(&e, GI_T_HOST_DATA, s->host_data, s->host_data_len);
        gi_writer_u64(&e, GI_T_ROWS, s->rows);
        gi_writer_u64(&e, GI_T_COLS, s->cols);
        gi_writer_u64(&e, GI_T_PTY_RUNNING, !s->done);
        gi_writer_u64(&e, GI_T_CREATED, (uint64_t)s->created);
        if (s->done) {
            gi_writer_u64(&e, GI_T_EXIT_CODE,
                          (uint64_t)(int64_t)(WIFEXITED(s->status) ? WEXITSTATUS(s->status) : -1));
            gi_writer_u64(&e, GI_T_SIGNAL, WIFSIGNALED(s->status) ? WTERMSIG(s->status) : 0);
        }
        gi_writer_bytes(w, GI_T_PTY_ENTRY, e.data + GI_FRAME_HEADER_SIZE,
                        e.len - GI_FRAME_HEADER_SIZE);
    }
    gi_writer_free(&e);
    gi_conn_send(c, w);
    return 0;
}

/* ---- open --------------------------------------------------------------------------- */

/* A free slot, made by dropping the session that finished first when all are taken. */
static int free_slot(void)
{
    int oldest = -1;
    for (int i = 0; i < GI_PTY_MAX; i++) {
        if (!sessions[i])
            return i;
        if (sessions[i]->done && (oldest < 0 || sessions[i]->id < sessions[oldest]->id))
            oldest = i;
    }
    if (oldest >= 0)
        session_free(sessions[oldest]);
    return oldest;
}

static bool usable_shell(const char *path)
{
    return path[0] == '/' && !strstr(path, "nologin") && !strstr(path, "/false") &&
           access(path, X_OK) == 0;
}

/* No ARG: the user's login shell from the sandbox's /etc/passwd, else bash, else sh. */
static void default_argv(struct gi_exec_spec *spec)
{
    struct gi_user u;
    const char *why;
    const char *shell = "/bin/sh";
    if (gi_resolve_user(spec->user ? spec->user : "0", &u, &why) == 0 && usable_shell(u.shell))
        shell = u.shell;
    else if (access("/bin/bash", X_OK) == 0)
        shell = "/bin/bash";
    const char *argv[] = {shell, "-l", NULL};
    spec->argv = wr_strv_copy(argv);
}

/* TERM=xterm-256color, replacing a TERM the environment had. */
static void set_term(struct gi_exec_spec *spec)
{
    size_t n = 0;
    for (; spec->env[n]; n++) {
        if (!strncmp(spec->env[n], "TERM=", 5)) {
            free(spec->env[n]);
            spec->env[n] = wr_strdup("TERM=xterm-256color");
            return;
        }
    }
    spec->env = wr_realloc(spec->env, (n + 2) * sizeof(char *));
    spec->env[n] = wr_strdup("TERM=xterm-256color");
    spec->env[n + 1] = NULL;
}

__attribute__((noreturn)) static void run_child(const struct gi_exec_spec *spec, int cwd_fd,
                                                int slave)
{
    gi_child_prepare();
    setsid();
    if (ioctl(slave, TIOCSCTTY, 0) < 0)
        dprintf(slave, "warren-guest-init: no controlling terminal: %s\r\n", strerror(errno));
    for (int fd = 0; fd < 3; fd++)
        dup2(slave, fd);
    gi_child_exec(spec, cwd_fd);
}

/* The master (returned) and the slave (*ret_slave), sized rows x cols. The parent holds
 * the slave until the child has it, so that the master never sees a hangup before. */
static int open_pair(unsigned rows, unsigned cols, int *ret_slave)
{
    _cleanup_close_ int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    char name[128];
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
        ptsname_r(master, name, sizeof(name)) != 0)
        return -errno;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (ioctl(master, TIOCSWINSZ, &ws) < 0)
        return -errno;
    int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        return -errno;
    *ret_slave = slave;
    return TAKE_FD(master);
}

/* A pipe pair whose parent end (non-blocking) is *ret_parent; the child's is returned. */
static int pipe_pair(bool parent_reads, int *ret_parent)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    int parent = parent_reads ? fds[0] : fds[1];
    fcntl(parent, F_SETFL, O_NONBLOCK);
    fcntl(parent, F_SETPIPE_SZ, PIPE_SIZE); /* fewer, larger reads (as EXEC's pipes) */
    *ret_parent = parent;
    return parent_reads ? fds[1] : fds[0];
}

__attribute__((noreturn)) static void run_pipe_child(const struct gi_exec_spec *spec, int cwd_fd,
                                                     const int child[3])
{
    gi_child_prepare();
    setsid();
    int in = child[0] >= 0 ? child[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup2(in, 0);
    dup2(child[1], 1);
    dup2(child[2], 2);
    gi_child_exec(spec, cwd_fd);
}

static int spawn_pipes(struct pty_session *s, const struct gi_exec_spec *spec, int cwd_fd)
{
    int parent[3] = {-1, -1, -1}, child[3] = {-1, -1, -1};
    int r = 0;
    if (spec->stdin_open && (child[0] = pipe_pair(false, &parent[0])) < 0)
        r = child[0];
    if (r == 0 && (child[1] = pipe_pair(true, &parent[1])) < 0)
        r = child[1];
    if (r == 0 && (child[2] = pipe_pair(true, &parent[2])) < 0)
        r = child[2];
    if (r == 0) {
        s->pid = fork();
        if (s->pid == 0)
            run_pipe_child(spec, cwd_fd, child);
        if (s->pid < 0)
            r = -errno;
    }
    for (int i = 0; i < 3; i++)
        if (child[i] >= 0)
            close(child[i]);
    if (r < 0) {
        for (int i = 0; i < 3; i++)
            if (parent[i] >= 0)
                close(parent[i]);
        return r;
    }
    /* Registered paused: nothing is read before the first attachment. */
    gi_watch_add(&s->master, parent[1], 0, on_master);
    gi_watch_add(&s->errp, parent[2], 0, on_stderr);
    if (parent[0] >= 0)
        gi_watch_add(&s->in, parent[0], 0, on_stdin);
    return 0;
}

static int spawn(struct pty_session *s, const struct gi_exec_spec *spec, int cwd_fd)
{
    if (s->pipes)
        return spawn_pipes(s, spec, cwd_fd);
    int slave = -1;
    int master = open_pair(s->rows, s->cols, &slave);
    if (master < 0)
        return master;
    /* A user other than root gets its terminal, as login does. */
    if (spec->user)
        (void)!fchown(slave, spec->as.uid, (gid_t)-1);
    s->pid = fork();
    if (s->pid == 0)
        run_child(spec, cwd_fd, slave);
    int e = errno;
    close(slave);
    if (s->pid < 0) {
        close(master);
        return -e;
    }
    int r = gi_watch_add(&s->master, master, EPOLLIN, on_master);
    if (r < 0) {
        close(master);
        kill(s->pid, SIGKILL);
        return r;
    }
    return 0;
}

/* PIPES, TAG and HOST_DATA of an open request. */
static int parse_session(const uint8_t *payload, size_t len, struct pty_session *s,
                         const char **bad)
{
    struct gi_reader rd;
    struct gi_tlv t;
    uint64_t pipes = 0;
    int r;
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        if (t.tag == GI_T_PIPES && gi_tlv_u64(&t, &pipes) < 0)
            return -EPROTO;
        if (t.tag == GI_T_TAG && !s->tag) {
            if (t.len == 0 || t.len > GI_PROC_TAG_MAX || memchr(t.value, 0, t.len))
                *bad = "a tag is 1 to 256 bytes without NUL";
            else
                s->tag = wr_strndup((const char *)t.value, t.len);
        }
        if (t.tag == GI_T_HOST_DATA && !s->host_data) {
            if (t.len > GI_PROC_HOST_DATA_MAX)
                *bad = "HOST_DATA is at most 8 KiB";
            else if (t.len > 0)
                s->host_data = memcpy(wr_malloc(t.len), t.value, t.len);
            s->host_data_len = s->host_data ? t.len : 0;
        }
    }
    s->pipes = pipes != 0;
    return r;
}

/* ROWS and COLS of an open request: defaults, or 0 with *bad set. */
static int parse_size(const uint8_t *payload, size_t len, struct pty_session *s, const char **bad)
{
    uint64_t rows = DEFAULT_ROWS, cols = DEFAULT_COLS;
    int r = parse_session(payload, len, s, bad);
    if (r == 0)
        r = read_u64_tags(payload, len, GI_T_ROWS, &rows, GI_T_COLS, &cols);
    if (r < 0)
        return r;
    if (!valid_dim(rows) || !valid_dim(cols))
        *bad = "rows and cols must be from 1 to 1000";
    s->rows = (unsigned)rows;
    s->cols = (unsigned)cols;
    return 0;
}

static int open_session(struct gi_conn *c, uint32_t stream, struct gi_exec_spec *spec,
                        struct pty_session *s, bool attach)
{
    int slot = free_slot();
    if (slot < 0)
        return gi_conn_send_error(c, stream, EMFILE,
                                  "%d process sessions are running already (end one first)",
                                  GI_PTY_MAX);
    const char *what = s->pipes ? "process" : "terminal";
    _cleanup_close_ int cwd_fd = gi_exec_spec_prepare(c, stream, spec, what);
    if (cwd_fd < 0)
        return 0;
    if (!spec->argv)
        default_argv(spec);
    if (!s->pipes) {
        set_term(spec);
        s->ring = wr_malloc(GI_PTY_RING_SIZE);
    }
    int r = spawn(s, spec, cwd_fd);
    if (r < 0)
        return gi_conn_send_error(c, stream, -r, "%s '%s': %s", what, spec->argv[0], strerror(-r));
    s->id = next_id++;
    s->argv0 = wr_strdup(spec->argv[0]);
    s->created = wr_unix_time();
    s->last_activity = wr_now_ms();
    wr_buf_init(&s->input, INPUT_HIGH + GI_FRAME_MAX_PAYLOAD);
    sessions[slot] = s;
    if (attach) {
        attach_session(c, stream, s, true);
        return 1;
    }
    struct gi_writer *w = gi_conn_writer(c);
    gi_writer_start(w, GI_RESULT, stream);
    gi_writer_u64(w, GI_T_PTY_ID, s->id);
    gi_writer_u64(w, GI_T_PID, (uint64_t)s->pid);
    gi_conn_send(c, w);
    return 1;
}

int gi_pty_open(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct gi_exec_spec spec = {0};
    struct pty_session *s = wr_calloc(1, sizeof(*s));
    s->master.fd = s->errp.fd = s->in.fd = -1;
    const char *bad = NULL;
    uint64_t attach = 0;
    int r = gi_exec_spec_parse(payload, len, false, &spec, &bad);
    if (r == 0)
        r = parse_size(payload, len, s, &bad);
    if (r == 0)
        r = read_u64_tags(payload, len, GI_T_ATTACH, &attach, 0, NULL);
    if (r == 0 && bad)
        r = gi_conn_send_error(c, stream, EINVAL, "terminal: %s", bad);
    else if (r == 0)
        r = open_session(c, stream, &spec, s, attach != 0);
    gi_exec_spec_free(&spec);
    if (r <= 0) {
        free(s->tag);
        free(s->host_data);
        free(s->ring);
        free(s);
    }
    return r < 0 ? r : 0;
}

/* ---- exits and timers --------------------------------------------------------------- */

bool gi_pty_reaped(pid_t pid, int status)
{
    for (int i = 0; i < GI_PTY_MAX; i++) {
        struct pty_session *s = sessions[i];
        if (!s || s->pid != pid || s->exited)
            continue;
        s->exited = true;
        s->status = status;
        s->last_activity = wr_now_ms();
        maybe_finish(s);
        return true;
    }
    return false;
}

/* The leader exited but something (a background job) holds the terminal: once it has
 * been quiet for GI_LINGER_MS, and the host is not behind on acknowledgements, the exit
 * is reported and the master closed (which hangs the terminal up). */
uint64_t gi_pty_timers(uint64_t now)
{
    uint64_t next = 0;
    for (int i = 0; i < GI_PTY_MAX; i++) {
        struct pty_session *s = sessions[i];
        if (!s || !s->exited || s->done || read_budget(s) == 0)
            continue;
        uint64_t at = s->last_activity + GI_LINGER_MS;
        if (now >= at) {
            /* Quiet by the clock, but the host may have been behind (no budget) until
             * now: what the terminal holds already is read first, and only a terminal
             * that stays quiet is hung up. */
            uint64_t before = s->last_activity;
            if (s->master.fd >= 0)
                pump(s, &s->master, GI_PTY_OUTPUT);
            if (sessions[i] != s || s->done) /* a pipe session is freed once done */
                continue;
            if (s->errp.fd >= 0)
                pump(s, &s->errp, GI_PROC_STDERR);
            if (sessions[i] != s || s->done)
                continue;
            if (s->last_activity == before) {
                output_ended(s);
                continue;
            }
            at = s->last_activity + GI_LINGER_MS;
        }
        if (!next || at < next)
            next = at;
    }
    return next;
}

void gi_pty_kill_all(void)
{
    for (int i = 0; i < GI_PTY_MAX; i++)
        if (sessions[i])
            kill_group(sessions[i], SIGKILL);
}
