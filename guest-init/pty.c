/* PTY sessions: terminals whose shells outlive the connection that opened them, for the
 * web UI. A session is a pty pair and a child in its own session with the slave as its
 * controlling terminal. Its output always goes into a ring of recent output; while a host
 * stream is attached it goes there too, at most GI_PTY_WINDOW bytes ahead of the host's
 * acknowledgements: past that the master is not read, so the child blocks on a full pty
 * rather than guest-init or warren growing. Detached, the master is read into the ring
 * alone, so a child never blocks for lack of a reader. */
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

struct pty_attach;

struct pty_session {
    uint64_t id;
    pid_t pid;
    struct gi_watch master; /* closed once the output ended (EIO) or the session finished */
    uint8_t ring[GI_PTY_RING_SIZE];
    size_t ring_head; /* where the next byte goes */
    size_t ring_len;
    char *argv0;
    unsigned rows, cols;
    int64_t created;
    bool exited; /* the leader was reaped (status) */
    bool done;   /* exited and its output ended: EXIT was reported */
    int status;
    uint64_t last_activity; /* leader exit or last output, for the linger rule */
    struct wr_buf input;
    size_t input_head;
    struct pty_attach *att;
};

struct pty_attach {
    struct gi_req req;
    struct pty_session *s;
    uint64_t unacked;  /* output sent on this stream the host has not acknowledged */
    bool blocks_input; /* the session's input queue stopped the connection's reading */
};

static struct pty_session *sessions[GI_PTY_MAX];
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

static void set_blocks_input(struct pty_attach *a, bool block)
{
    if (a->blocks_input == block)
        return;
    a->blocks_input = block;
    gi_conn_pause_input(a->req.conn, block);
}

/* Ends the attachment after its final frame went out; the session carries on detached. */
static void attach_end(struct pty_attach *a)
{
    struct pty_session *s = a->s;
    set_blocks_input(a, false);
    gi_req_remove(&a->req);
    s->att = NULL;
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

/* ---- output ------------------------------------------------------------------------- */

static void ring_put(struct pty_session *s, const uint8_t *p, size_t n)
{
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

static void send_output(struct pty_attach *a, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    uint8_t *dst = gi_conn_reserve(a->req.conn, n);
    memcpy(dst, p, n);
    gi_conn_commit(a->req.conn, GI_PTY_OUTPUT, a->req.stream, n);
    a->unacked += n;
}

/* A new attachment starts with the ring, oldest byte first. */
static void send_ring(struct pty_attach *a)
{
    struct pty_session *s = a->s;
    size_t start = (s->ring_head + GI_PTY_RING_SIZE - s->ring_len) % GI_PTY_RING_SIZE;
    size_t first = WR_MIN(s->ring_len, GI_PTY_RING_SIZE - start);
    send_output(a, s->ring + start, first);
    send_output(a, s->ring, s->ring_len - first);
}

static size_t read_budget(const struct pty_session *s)
{
    if (s->master.fd < 0)
        return 0;
    if (!s->att)
        return GI_PTY_RING_SIZE;
    if (gi_conn_congested(s->att->req.conn) || s->att->unacked >= GI_PTY_WINDOW)
        return 0;
    return WR_MIN(GI_PTY_WINDOW - s->att->unacked, (uint64_t)GI_PTY_RING_SIZE);
}

static size_t input_pending(const struct pty_session *s)
{
    return s->input.len - s->input_head;
}

static void update_watch(struct pty_session *s)
{
    uint32_t ev = 0;
    if (read_budget(s) > 0)
        ev |= EPOLLIN;
    if (input_pending(s) > 0)
        ev |= EPOLLOUT;
    gi_watch_set(&s->master, ev);
}

static void maybe_finish(struct pty_session *s)
{
    if (!s->exited || s->done || s->master.fd >= 0)
        return;
    s->done = true;
    wr_buf_free(&s->input);
    s->input_head = 0;
    if (s->att)
        attach_end_exit(s->att);
}

/* The output ended (EIO once every slave fd is closed) or the session gave up on it. */
static void output_ended(struct pty_session *s)
{
    gi_watch_close(&s->master);
    maybe_finish(s);
}

static void pump(struct pty_session *s)
{
    static uint8_t buf[GI_PTY_RING_SIZE];
    for (int i = 0; i < 8; i++) {
        size_t budget = read_budget(s);
        if (budget == 0)
            break;
        struct pty_attach *a = s->att;
        uint8_t *p = a ? gi_conn_reserve(a->req.conn, budget) : buf;
        ssize_t n = read(s->master.fd, p, budget);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            output_ended(s);
            return;
        }
        s->last_activity = wr_now_ms();
        ring_put(s, p, (size_t)n);
        if (a) {
            gi_conn_commit(a->req.conn, GI_PTY_OUTPUT, a->req.stream, (size_t)n);
            a->unacked += (size_t)n;
        }
    }
    update_watch(s);
}

/* ---- input -------------------------------------------------------------------------- */

static void flush_input(struct pty_session *s)
{
    while (s->master.fd >= 0 && input_pending(s) > 0) {
        ssize_t n = write(s->master.fd, s->input.data + s->input_head, input_pending(s));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            output_ended(s);
            break;
        }
        s->input_head += (size_t)n;
    }
    if (s->master.fd < 0 || input_pending(s) == 0) {
        wr_buf_reset(&s->input);
        s->input_head = 0;
    }
    if (s->att)
        set_blocks_input(s->att, input_pending(s) >= INPUT_HIGH);
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
    if (events & EPOLLOUT)
        flush_input(s);
    if (s->master.fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && read_budget(s) > 0)
        pump(s);
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
    if (!valid_dim(rows) || !valid_dim(cols) || s->master.fd < 0)
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
        if (s->master.fd < 0 || s->done)
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
    s->att = NULL;
    gi_defer_free(a);
    update_watch(s);
}

/* ---- requests ----------------------------------------------------------------------- */

static uint64_t request_id(const uint8_t *payload, size_t len, int *ret)
{
    uint64_t id = 0;
    *ret = read_u64_tags(payload, len, GI_T_PTY_ID, &id, 0, NULL);
    return id;
}

int gi_pty_attach(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    int r;
    uint64_t id = request_id(payload, len, &r);
    if (r < 0)
        return r;
    struct pty_session *s = find(id);
    if (!s)
        return gi_conn_send_error(c, stream, ENOENT, "no terminal session %llu",
                                  (unsigned long long)id);
    if (s->att)
        attach_end_result(s->att, GI_PTY_END_REPLACED);
    struct pty_attach *a = wr_calloc(1, sizeof(*a));
    a->req.stream = stream;
    a->req.on_frame = on_frame;
    a->req.on_drain = on_drain;
    a->req.abort = abort_attach;
    a->s = s;
    gi_req_add(c, &a->req);
    s->att = a;
    send_ring(a);
    if (s->done)
        attach_end_exit(a);
    else
        update_watch(s);
    return 0;
}

static void session_free(struct pty_session *s)
{
    for (int i = 0; i < GI_PTY_MAX; i++)
        if (sessions[i] == s)
            sessions[i] = NULL;
    gi_watch_close(&s->master);
    wr_buf_free(&s->input);
    free(s->argv0);
    gi_defer_free(s);
}

int gi_pty_close(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    int r;
    uint64_t id = request_id(payload, len, &r);
    if (r < 0)
        return r;
    struct pty_session *s = find(id);
    if (!s)
        return gi_conn_send_error(c, stream, ENOENT, "no terminal session %llu",
                                  (unsigned long long)id);
    if (s->att)
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
        gi_writer_str(&e, GI_T_ARG, s->argv0);
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

static int spawn(struct pty_session *s, const struct gi_exec_spec *spec, int cwd_fd)
{
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

/* ROWS and COLS of an open request: defaults, or 0 with *bad set. */
static int parse_size(const uint8_t *payload, size_t len, struct pty_session *s, const char **bad)
{
    uint64_t rows = DEFAULT_ROWS, cols = DEFAULT_COLS;
    int r = read_u64_tags(payload, len, GI_T_ROWS, &rows, GI_T_COLS, &cols);
    if (r < 0)
        return r;
    if (!valid_dim(rows) || !valid_dim(cols))
        *bad = "rows and cols must be from 1 to 1000";
    s->rows = (unsigned)rows;
    s->cols = (unsigned)cols;
    return 0;
}

static int open_session(struct gi_conn *c, uint32_t stream, struct gi_exec_spec *spec,
                        struct pty_session *s)
{
    int slot = free_slot();
    if (slot < 0)
        return gi_conn_send_error(c, stream, EMFILE,
                                  "terminal: %d sessions are running already (close one first)",
                                  GI_PTY_MAX);
    _cleanup_close_ int cwd_fd = gi_exec_spec_prepare(c, stream, spec, "terminal");
    if (cwd_fd < 0)
        return 0;
    if (!spec->argv)
        default_argv(spec);
    set_term(spec);
    int r = spawn(s, spec, cwd_fd);
    if (r < 0)
        return gi_conn_send_error(c, stream, -r, "terminal '%s': %s", spec->argv[0], strerror(-r));
    s->id = next_id++;
    s->argv0 = wr_strdup(spec->argv[0]);
    s->created = wr_unix_time();
    s->last_activity = wr_now_ms();
    wr_buf_init(&s->input, INPUT_HIGH + GI_FRAME_MAX_PAYLOAD);
    sessions[slot] = s;
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
    s->master.fd = -1;
    const char *bad = NULL;
    int r = gi_exec_spec_parse(payload, len, false, &spec, &bad);
    if (r == 0)
        r = parse_size(payload, len, s, &bad);
    if (r == 0 && bad)
        r = gi_conn_send_error(c, stream, EINVAL, "terminal: %s", bad);
    else if (r == 0)
        r = open_session(c, stream, &spec, s);
    gi_exec_spec_free(&spec);
    if (r <= 0)
        free(s);
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
        if (now >= at)
            output_ended(s);
        else if (!next || at < next)
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
