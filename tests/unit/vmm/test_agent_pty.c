/* Terminal sessions (PTY_* requests) of vmm/agent.c against the real guest-init binary,
 * run as an ordinary child process in --jail mode on a listening unix socket, and on a
 * channel (the virtio-serial code path). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <uv.h>

#include "guest-init/proto.h"
#include "test.h"
#include "vmm/agent.h"

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static uv_loop_t *loop;
static char tmpdir[] = "/tmp/warren-test-pty-XXXXXX";
static char sock_path[108];
static pid_t agent_pid;
static struct agent_conn *conn;

static void run_until(const bool *flag)
{
    uint64_t deadline = uv_hrtime() / 1000000 + 30000;
    while (!*flag) {
        ASSERT(uv_hrtime() / 1000000 < deadline);
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void on_timer(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop for ms milliseconds. */
static void run_for(uint64_t ms)
{
    uv_timer_t t;
    bool done = false;
    uv_timer_init(loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_timer, ms, 0);
    run_until(&done);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* ---- connecting --------------------------------------------------------------------- */

struct connect_result {
    bool done;
    struct agent_conn *conn;
    struct wr_error *err;
};

static void on_connect(void *data, struct agent_conn *c, struct wr_error *err)
{
    struct connect_result *r = data;
    r->done = true;
    r->conn = c;
    r->err = err;
}

static struct agent_conn *connect_agent(void)
{
    struct connect_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_connect_unix(loop, sock_path, 5000, on_connect, &r, &err), 0);
    run_until(&r.done);
    ASSERT(r.conn);
    return r.conn;
}

static struct agent_conn *connect_fd(int fd)
{
    struct connect_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_connect_fd(loop, fd, NULL, 0, 5000, on_connect, &r, &err), 0);
    run_until(&r.done);
    ASSERT(r.conn);
    return r.conn;
}

static pid_t start_agent(const char *binary, const char *mode, int fd)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        char fdarg[16];
        snprintf(fdarg, sizeof(fdarg), "%d", fd);
        execl(binary, "guest-init", "--jail", mode, fdarg, (char *)NULL);
        _exit(127);
    }
    close(fd);
    return pid;
}

static int listen_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0); /* inherited: no CLOEXEC */
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    ASSERT(fd >= 0);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ASSERT_EQ(listen(fd, 16), 0);
    return fd;
}

/* ---- requests ----------------------------------------------------------------------- */

struct opened {
    bool done;
    uint64_t id, pid;
    struct wr_error *err;
};

static void on_opened(void *data, uint64_t id, uint64_t pid, struct wr_error *err)
{
    struct opened *o = data;
    o->done = true;
    o->id = id;
    o->pid = pid;
    o->err = err;
}

/* Opens a session; returns its id, or 0 with *ret_err. */
static uint64_t open_pty_on(struct agent_conn *c, const struct agent_pty_request *req,
                            struct wr_error **ret_err)
{
    struct opened o = {0};
    struct wr_error *err = NULL;
    if (agent_pty_open(c, req, on_opened, &o, &err) < 0) {
        *ret_err = err;
        return 0;
    }
    run_until(&o.done);
    if (o.err) {
        ASSERT(ret_err);
        *ret_err = o.err;
        return 0;
    }
    ASSERT(o.id > 0 && o.pid > 0);
    return o.id;
}

static uint64_t open_pty(const char *const *argv)
{
    struct wr_error *err = NULL;
    uint64_t id = open_pty_on(
        conn, &(struct agent_pty_request){.argv = argv, .cwd = tmpdir, .rows = 24, .cols = 80},
        &err);
    if (err)
        fprintf(stderr, "open: %s\n", err->msg);
    ASSERT(id > 0);
    return id;
}

struct term {
    struct agent_pty *pty;
    struct wr_buf out; /* the latest output (reset when it would pass its cap) */
    bool auto_ack;
    uint64_t total, unacked;
    bool ended;
    struct agent_pty_end end;
    struct wr_error *err;
};

static void term_output(void *data, const char *buf, size_t len)
{
    struct term *t = data;
    ASSERT(!t->ended);
    t->total += len;
    if (wr_buf_append(&t->out, buf, len) < 0) {
        wr_buf_reset(&t->out);
        ASSERT_EQ(wr_buf_append(&t->out, buf, len), 0);
    }
    if (t->auto_ack) {
        struct wr_error *err = NULL;
        ASSERT_EQ(agent_pty_ack(t->pty, len, &err), 0);
    } else {
        t->unacked += len;
    }
}

static void term_end(void *data, const struct agent_pty_end *end, struct wr_error *err)
{
    struct term *t = data;
    ASSERT(!t->ended);
    t->ended = true;
    if (end)
        t->end = *end;
    t->err = err;
}

static const struct agent_pty_handlers term_handlers = {.output = term_output, .end = term_end};

static void attach_on(struct agent_conn *c, struct term *t, uint64_t id, bool auto_ack)
{
    struct wr_error *err = NULL;
    memset(t, 0, sizeof(*t));
    wr_buf_init(&t->out, 4u << 20);
    t->auto_ack = auto_ack;
    ASSERT_EQ(agent_pty_attach(c, id, &term_handlers, t, &t->pty, &err), 0);
}

static void term_free(struct term *t)
{
    wr_buf_free(&t->out);
    wr_error_free(t->err);
}

static bool has_output(const struct term *t, const char *needle)
{
    return t->out.data && memmem(t->out.data, t->out.len, needle, strlen(needle));
}

static void wait_output(struct term *t, const char *needle)
{
    uint64_t deadline = uv_hrtime() / 1000000 + 20000;
    while (!has_output(t, needle)) {
        if (uv_hrtime() / 1000000 > deadline || t->ended) {
            fprintf(stderr, "waiting for \"%s\", got: %.*s\n", needle, (int)t->out.len,
                    t->out.data ? t->out.data : "");
            ASSERT(0);
        }
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void type(struct term *t, const char *s)
{
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_pty_input(t->pty, s, strlen(s), &err), 0);
}

static void detach(struct term *t)
{
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_pty_detach(t->pty, &err), 0);
    run_until(&t->ended);
    ASSERT(!t->err);
    ASSERT_EQ(t->end.reason, AGENT_PTY_DETACHED);
}

struct listed {
    bool done;
    struct agent_pty_info list[GI_PTY_MAX];
    size_t n;
    struct wr_error *err;
};

static void on_listed(void *data, const struct agent_pty_info *list, size_t n, struct wr_error *err)
{
    struct listed *l = data;
    l->done = true;
    l->err = err;
    l->n = n;
    if (n)
        memcpy(l->list, list, n * sizeof(*list));
}

static void list_on(struct agent_conn *c, struct listed *l)
{
    struct wr_error *err = NULL;
    memset(l, 0, sizeof(*l));
    ASSERT_EQ(agent_pty_list(c, on_listed, l, &err), 0);
    run_until(&l->done);
    ASSERT(!l->err);
}

static const struct agent_pty_info *find_info(const struct listed *l, uint64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->list[i].id == id)
            return &l->list[i];
    return NULL;
}

struct closed {
    bool done;
    struct wr_error *err;
};

static void on_closed(void *data, struct wr_error *err)
{
    struct closed *c = data;
    c->done = true;
    c->err = err;
}

static struct wr_error *close_pty(uint64_t id)
{
    struct closed c = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_pty_close(conn, id, on_closed, &c, &err), 0);
    run_until(&c.done);
    return c.err;
}

static void close_all(void)
{
    struct listed l;
    list_on(conn, &l);
    for (size_t i = 0; i < l.n; i++)
        ASSERT(!close_pty(l.list[i].id));
}

/* Waits until the session is listed as exited. */
static const struct agent_pty_info *wait_exited(uint64_t id, struct listed *l)
{
    for (int i = 0; i < 400; i++) {
        list_on(conn, l);
        const struct agent_pty_info *info = find_info(l, id);
        ASSERT(info);
        if (!info->running)
            return info;
        run_for(25);
    }
    ASSERT(0);
    return NULL;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_echo(void)
{
    uint64_t id = open_pty(ARGV("sh"));
    struct term t;
    attach_on(conn, &t, id, true);
    type(&t, "echo he''llo; tty\n");
    wait_output(&t, "hello\r\n/dev/pts/");
    type(&t, "echo $TERM\n");
    wait_output(&t, "xterm-256color");
    type(&t, "exit 0\n");
    run_until(&t.ended);
    ASSERT(!t.err);
    ASSERT_EQ(t.end.reason, AGENT_PTY_EXITED);
    ASSERT_EQ(t.end.exit.exit_code, 0);
    term_free(&t);
}

static void test_resize(void)
{
    uint64_t id = open_pty(ARGV("sh"));
    struct term t;
    struct wr_error *err = NULL;
    attach_on(conn, &t, id, true);
    type(&t, "stty size\n");
    wait_output(&t, "24 80");
    ASSERT_EQ(agent_pty_resize(t.pty, 30, 100, &err), 0);
    /* A foreground process sees SIGWINCH and the new size. */
    type(&t, "trap 'echo got-winch' WINCH; stty size\n");
    wait_output(&t, "30 100");
    ASSERT_EQ(agent_pty_resize(t.pty, 31, 101, &err), 0);
    type(&t, "sleep 0.5; stty size\n");
    wait_output(&t, "31 101");
    struct listed l;
    list_on(conn, &l);
    ASSERT_EQ(find_info(&l, id)->rows, 31);
    ASSERT_EQ(find_info(&l, id)->cols, 101);
    ASSERT(agent_pty_resize(t.pty, 0, 80, &err) < 0);
    ASSERT_EQ(err->status, EINVAL);
    wr_error_free(err);
    err = NULL;
    ASSERT(agent_pty_resize(t.pty, 24, 1001, &err) < 0);
    wr_error_free(err);
    detach(&t);
    term_free(&t);
    ASSERT(!close_pty(id));
    /* The foreground process group gets SIGWINCH. */
    id = open_pty(
        ARGV("sh", "-c", "trap 'echo got-winch' WINCH; echo armed; while :; do sleep 0.05; done"));
    attach_on(conn, &t, id, true);
    wait_output(&t, "armed");
    ASSERT_EQ(agent_pty_resize(t.pty, 40, 120, &err), 0);
    wait_output(&t, "got-winch");
    term_free(&t);
    ASSERT(!close_pty(id));
}

static bool process_gone(pid_t pid)
{
    for (int i = 0; i < 200; i++) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
        usleep(10000);
    }
    return false;
}

/* Closing kills every process of the terminal's session, also jobs in process groups of
 * their own. */
static void test_close_kills_session(void)
{
    uint64_t id = open_pty(ARGV("sh", "-c", "set -m; sleep 100 & echo bg=$!; wait"));
    struct term t;
    attach_on(conn, &t, id, true);
    wait_output(&t, "\r\n");
    pid_t bg = (pid_t)atoi(strstr(t.out.data, "bg=") + 3);
    ASSERT(bg > 0);
    ASSERT(getpgid(bg) == bg); /* a group of its own */
    ASSERT(!close_pty(id));
    ASSERT(process_gone(bg));
    term_free(&t);
}

static void test_detach_reattach(void)
{
    uint64_t id = open_pty(ARGV("sh"));
    struct term t;
    attach_on(conn, &t, id, true);
    type(&t, "echo first-li''ne\n");
    wait_output(&t, "first-line");
    type(&t, "sleep 0.3; echo while-deta''ched\n");
    detach(&t);
    term_free(&t);
    run_for(800);
    /* Reattached: the ring brings back what came before and while detached. */
    attach_on(conn, &t, id, true);
    wait_output(&t, "while-detached");
    ASSERT(has_output(&t, "first-line"));
    type(&t, "echo after-reatta''ch\n");
    wait_output(&t, "after-reattach");
    /* A second attachment takes over; the first one hears why. */
    struct term t2;
    attach_on(conn, &t2, id, true);
    run_until(&t.ended);
    ASSERT_EQ(t.end.reason, AGENT_PTY_REPLACED);
    wait_output(&t2, "after-reattach");
    /* Closing ends the attachment and the session. */
    ASSERT(!close_pty(id));
    run_until(&t2.ended);
    ASSERT_EQ(t2.end.reason, AGENT_PTY_CLOSED);
    struct listed l;
    list_on(conn, &l);
    ASSERT(!find_info(&l, id));
    term_free(&t);
    term_free(&t2);
}

static void test_survives_connection(void)
{
    struct agent_conn *c2 = connect_agent();
    struct wr_error *err = NULL;
    uint64_t id = open_pty_on(
        c2, &(struct agent_pty_request){.argv = ARGV("sh"), .cwd = tmpdir, .rows = 5, .cols = 40},
        &err);
    ASSERT(id && !err);
    struct term t;
    attach_on(c2, &t, id, true);
    type(&t, "export MARK=kept; echo re''ady\n");
    wait_output(&t, "ready");
    agent_conn_close(c2);
    ASSERT(t.ended && t.err && t.err->status == ECANCELED);
    term_free(&t);
    run_for(200);
    /* Another connection finds it running, with its shell's state. */
    struct listed l;
    list_on(conn, &l);
    const struct agent_pty_info *info = find_info(&l, id);
    ASSERT(info && info->running);
    ASSERT_STREQ(info->argv0, "sh");
    ASSERT(info->rows == 5 && info->cols == 40);
    ASSERT(info->created > 1600000000);
    attach_on(conn, &t, id, true);
    type(&t, "echo mark=$MARK\n");
    wait_output(&t, "mark=kept");
    detach(&t);
    term_free(&t);
    ASSERT(!close_pty(id));
}

static void test_flow_control(void)
{
    uint64_t id = open_pty(ARGV("sh", "-c", "yes | head -c 50000000; echo; echo flood-done"));
    struct term t;
    attach_on(conn, &t, id, false);
    /* Without acknowledgements the output stops at the window. */
    run_for(1000);
    ASSERT(t.total <= GI_PTY_WINDOW);
    ASSERT(t.total >= GI_PTY_WINDOW / 2);
    uint64_t stalled = t.total;
    run_for(300);
    ASSERT_EQ(t.total, stalled);
    /* Acknowledging lets it go on, never more than a window ahead. */
    struct wr_error *err = NULL;
    uint64_t start = uv_hrtime();
    while (!t.ended) {
        if (t.unacked > 0) {
            ASSERT(t.unacked <= GI_PTY_WINDOW);
            ASSERT_EQ(agent_pty_ack(t.pty, t.unacked, &err), 0);
            t.unacked = 0;
        }
        uv_run(loop, UV_RUN_ONCE);
    }
    ASSERT_EQ(t.end.reason, AGENT_PTY_EXITED);
    ASSERT_EQ(t.end.exit.exit_code, 0);
    ASSERT(has_output(&t, "flood-done"));
    ASSERT(t.total > 50000000); /* "y\n" became "y\r\n" */
    fprintf(stderr, "   flood: %.1f MB in %.2f s\n", t.total / 1e6, (uv_hrtime() - start) / 1e9);
    term_free(&t);
}

static void test_detached_never_blocks(void)
{
    /* Nobody attached: the output goes to the ring and the process finishes. */
    uint64_t id = open_pty(
        ARGV("sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo tail-end; exit 7"));
    struct listed l;
    const struct agent_pty_info *info = wait_exited(id, &l);
    ASSERT_EQ(info->exit_code, 7);
    /* Attaching to an exited session: its scrollback, then the exit. */
    struct term t;
    attach_on(conn, &t, id, true);
    run_until(&t.ended);
    ASSERT_EQ(t.end.reason, AGENT_PTY_EXITED);
    ASSERT_EQ(t.end.exit.exit_code, 7);
    ASSERT(has_output(&t, "tail-end"));
    ASSERT(t.total <= GI_PTY_RING_SIZE);
    ASSERT(t.total >= GI_PTY_RING_SIZE - 64);
    term_free(&t);
    ASSERT(!close_pty(id));
}

static void test_exit_and_signal(void)
{
    uint64_t id = open_pty(ARGV("sh", "-c", "echo started; exit 3"));
    struct term t;
    attach_on(conn, &t, id, true);
    run_until(&t.ended);
    ASSERT_EQ(t.end.reason, AGENT_PTY_EXITED);
    ASSERT_EQ(t.end.exit.exit_code, 3);
    ASSERT(has_output(&t, "started"));
    term_free(&t);
    struct listed l;
    list_on(conn, &l);
    ASSERT(!find_info(&l, id)->running);
    ASSERT_EQ(find_info(&l, id)->exit_code, 3);
    ASSERT(!close_pty(id));
    id = open_pty(ARGV("sleep", "30"));
    attach_on(conn, &t, id, true);
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_pty_signal(t.pty, SIGTERM, &err), 0);
    run_until(&t.ended);
    ASSERT_EQ(t.end.exit.exit_code, -1);
    ASSERT_EQ(t.end.exit.signal, SIGTERM);
    term_free(&t);
    ASSERT(!close_pty(id));
    /* A command that is not there exits 127 with the reason on the terminal. */
    id = open_pty(ARGV("no-such-command-xyz"));
    attach_on(conn, &t, id, true);
    run_until(&t.ended);
    ASSERT_EQ(t.end.exit.exit_code, 127);
    ASSERT(has_output(&t, "no-such-command-xyz"));
    term_free(&t);
    ASSERT(!close_pty(id));
}

static void test_default_shell(void)
{
    struct wr_error *err = NULL;
    uint64_t id =
        open_pty_on(conn, &(struct agent_pty_request){.cwd = tmpdir, .rows = 24, .cols = 80}, &err);
    ASSERT(id && !err);
    struct term t;
    attach_on(conn, &t, id, true);
    type(&t, "echo shell=$0\n");
    wait_output(&t, "shell=");
    ASSERT(has_output(&t, "sh"));
    detach(&t);
    term_free(&t);
    ASSERT(!close_pty(id));
}

static void test_limits(void)
{
    close_all();
    uint64_t ids[GI_PTY_MAX];
    for (int i = 0; i < GI_PTY_MAX; i++)
        ids[i] = open_pty(ARGV("sleep", "60"));
    struct wr_error *err = NULL;
    struct agent_pty_request req = {
        .argv = ARGV("sleep", "60"), .cwd = tmpdir, .rows = 24, .cols = 80};
    ASSERT_EQ(open_pty_on(conn, &req, &err), 0);
    ASSERT(err && err->status == EMFILE);
    fprintf(stderr, "   17th: %s\n", err->msg);
    wr_error_free(err);
    err = NULL;
    /* A session that exited makes room: the one that exited first goes. */
    ASSERT(!close_pty(ids[3]));
    ids[3] = open_pty(ARGV("true"));
    struct listed l;
    wait_exited(ids[3], &l);
    uint64_t extra = open_pty(ARGV("sleep", "60"));
    list_on(conn, &l);
    ASSERT_EQ(l.n, GI_PTY_MAX);
    ASSERT(!find_info(&l, ids[3]) && find_info(&l, extra));
    close_all();
}

static void test_bad_requests(void)
{
    struct wr_error *err = NULL;
    struct term t;
    attach_on(conn, &t, 999999, true);
    run_until(&t.ended);
    ASSERT(t.err && t.err->status == ENOENT);
    ASSERT(strstr(t.err->msg, "999999"));
    term_free(&t);
    err = close_pty(999999);
    ASSERT(err && err->status == ENOENT);
    wr_error_free(err);
    err = NULL;
    struct agent_pty_request req = {.argv = ARGV("sh"), .cwd = tmpdir, .rows = 0, .cols = 80};
    ASSERT_EQ(open_pty_on(conn, &req, &err), 0);
    ASSERT(err && err->status == EINVAL);
    wr_error_free(err);
    err = NULL;
    req =
        (struct agent_pty_request){.argv = ARGV("sh"), .cwd = "/no/such/dir", .rows = 5, .cols = 5};
    ASSERT_EQ(open_pty_on(conn, &req, &err), 0);
    ASSERT(err && err->status == ENOENT && strstr(err->msg, "/no/such/dir"));
    wr_error_free(err);
    err = NULL;
    /* guest-init checks the size itself too (a raw PTY_OPEN with ROWS 0). */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    uint8_t buf[512];
    ASSERT(read(fd, buf, sizeof(buf)) > GI_FRAME_HEADER_SIZE); /* HELLO */
    struct gi_writer w = {0};
    gi_writer_start(&w, GI_PTY_OPEN, 1);
    gi_writer_str(&w, GI_T_ARG, "sh");
    gi_writer_u64(&w, GI_T_ROWS, 0);
    ASSERT_EQ(gi_writer_finish(&w), 0);
    ASSERT_EQ(write(fd, w.data, w.len), (ssize_t)w.len);
    ssize_t n = read(fd, buf, sizeof(buf));
    struct gi_frame_header h;
    ASSERT(n > GI_FRAME_HEADER_SIZE);
    gi_header_decode(buf, &h);
    ASSERT(h.type == GI_ERROR && h.stream == 1);
    ASSERT(memmem(buf, (size_t)n, "rows and cols", 13));
    gi_writer_free(&w);
    close(fd);
}

/* On a channel (virtio-serial), a new host's HELLO ends the old host's execs but not its
 * terminals. */

/* ---- process sessions (pipes, tags, live attach, PROC_CONTROL) ------------------------ */

struct proc {
    struct term t; /* stdout in t.out */
    struct wr_buf err;
    uint64_t id, pid;
    bool attached;
};

static void proc_attached(void *data, uint64_t id, uint64_t pid)
{
    struct proc *p = data;
    p->attached = true;
    p->id = id;
    p->pid = pid;
}

static void proc_stderr(void *data, const char *buf, size_t len)
{
    struct proc *p = data;
    ASSERT_EQ(wr_buf_append(&p->err, buf, len), 0);
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_pty_ack(p->t.pty, len, &err), 0);
}

static void proc_stdout(void *data, const char *buf, size_t len)
{
    term_output(&((struct proc *)data)->t, buf, len);
}

static void proc_end(void *data, const struct agent_pty_end *end, struct wr_error *err)
{
    term_end(&((struct proc *)data)->t, end, err);
}

static const struct agent_pty_handlers proc_handlers = {.attached = proc_attached,
                                                        .stderr_output = proc_stderr,
                                                        .output = proc_stdout,
                                                        .end = proc_end};

static void proc_init(struct proc *p)
{
    memset(p, 0, sizeof(*p));
    wr_buf_init(&p->t.out, 4u << 20);
    wr_buf_init(&p->err, 1u << 20);
    p->t.auto_ack = true;
}

static void proc_free(struct proc *p)
{
    term_free(&p->t);
    wr_buf_free(&p->err);
}

static void proc_start(struct proc *p, const struct agent_pty_request *req)
{
    struct wr_error *err = NULL;
    proc_init(p);
    ASSERT_EQ(agent_pty_open_attached(conn, req, &proc_handlers, p, &p->t.pty, &err), 0);
    run_until(&p->attached);
    ASSERT(p->id > 0 && p->pid > 1);
}

static void proc_attach(struct proc *p, const struct agent_pty_selector *sel, bool live)
{
    struct wr_error *err = NULL;
    proc_init(p);
    ASSERT_EQ(agent_pty_attach_selected(conn, sel, live, &proc_handlers, p, &p->t.pty, &err), 0);
}

static struct wr_error *control(const struct agent_pty_selector *sel,
                                const struct agent_pty_control *ctl)
{
    struct closed c = {0};
    struct wr_error *err = NULL;
    if (agent_pty_control(conn, sel, ctl, on_closed, &c, &err) < 0)
        return err;
    run_until(&c.done);
    return c.err;
}

static void test_pipes_output(void)
{
    struct proc p;
    proc_start(&p, &(struct agent_pty_request){
                       .argv = ARGV("/bin/sh", "-c", "echo out; echo err >&2; exit 7"),
                       .cwd = tmpdir,
                       .rows = 24,
                       .cols = 80,
                       .pipes = true});
    run_until(&p.t.ended);
    ASSERT(!p.t.err);
    ASSERT_EQ(p.t.end.reason, AGENT_PTY_EXITED);
    ASSERT_EQ(p.t.end.exit.exit_code, 7);
    ASSERT_EQ(p.t.out.len, 4u);
    ASSERT(!memcmp(p.t.out.data, "out\n", 4));
    ASSERT_EQ(p.err.len, 4u);
    ASSERT(!memcmp(p.err.data, "err\n", 4));
    /* Its end was delivered: the session is forgotten. */
    struct listed l;
    list_on(conn, &l);
    ASSERT(!find_info(&l, p.id));
    proc_free(&p);
}

/* Output written before the first attachment is not lost, nor is a quick exit. */
static void test_pipes_output_before_attach(void)
{
    struct wr_error *err = NULL;
    uint64_t id = open_pty_on(conn,
                              &(struct agent_pty_request){.argv = ARGV("/bin/echo", "early"),
                                                          .cwd = tmpdir,
                                                          .rows = 24,
                                                          .cols = 80,
                                                          .pipes = true,
                                                          .tag = "early"},
                              &err);
    ASSERT(id > 0);
    run_for(200);
    struct proc p;
    proc_attach(&p, &(struct agent_pty_selector){.tag = "early"}, true);
    run_until(&p.t.ended);
    ASSERT_EQ(p.id, id);
    ASSERT_EQ(p.t.end.reason, AGENT_PTY_EXITED);
    ASSERT(has_output(&p.t, "early\n"));
    proc_free(&p);
}

static void test_pipes_stdin_control(void)
{
    struct proc p;
    const char host_data[] = "{\"cmd\":\"cat\"}";
    proc_start(&p, &(struct agent_pty_request){.argv = ARGV("cat"),
                                               .cwd = tmpdir,
                                               .rows = 24,
                                               .cols = 80,
                                               .pipes = true,
                                               .stdin_open = true,
                                               .tag = "cat-tag",
                                               .host_data = host_data,
                                               .host_data_len = strlen(host_data)});
    struct listed l;
    list_on(conn, &l);
    const struct agent_pty_info *info = find_info(&l, p.id);
    ASSERT(info && info->pipes && info->running);
    ASSERT_EQ(info->pid, p.pid);
    ASSERT(!strcmp(info->tag, "cat-tag"));
    ASSERT_EQ(info->host_data_len, strlen(host_data));
    /* Input by pid, then by tag, while attached. */
    struct agent_pty_selector by_pid = {.pid = p.pid}, by_tag = {.tag = "cat-tag"};
    ASSERT(!control(&by_pid, &(struct agent_pty_control){.input = "one\n", .input_len = 4}));
    wait_output(&p.t, "one\n");
    /* Detached, the process runs on; a live attach sees new output only. */
    detach(&p.t);
    proc_free(&p);
    ASSERT(!control(&by_tag, &(struct agent_pty_control){.input = "two\n", .input_len = 4}));
    run_for(100);
    struct proc q, r;
    proc_attach(&q, &by_tag, true);
    run_until(&q.attached);
    /* A second live attachment joins the first: both get the output. */
    proc_attach(&r, &by_pid, true);
    run_until(&r.attached);
    ASSERT(!control(&by_tag, &(struct agent_pty_control){.input = "three\n", .input_len = 6}));
    wait_output(&q.t, "three\n");
    wait_output(&r.t, "three\n");
    ASSERT(!has_output(&q.t, "one") && !has_output(&q.t, "two"));
    /* One detaches; the other carries on. */
    detach(&r.t);
    proc_free(&r);
    ASSERT(!control(&by_tag, &(struct agent_pty_control){.input = "four\n", .input_len = 5}));
    wait_output(&q.t, "four\n");
    /* A resize does not fit a pipe session; closing stdin ends cat. */
    struct wr_error *err = control(&by_pid, &(struct agent_pty_control){.rows = 10, .cols = 10});
    ASSERT(err && err->status == EINVAL);
    wr_error_free(err);
    ASSERT(!control(&by_pid, &(struct agent_pty_control){.close_stdin = true}));
    run_until(&q.t.ended);
    ASSERT_EQ(q.t.end.reason, AGENT_PTY_EXITED);
    ASSERT_EQ(q.t.end.exit.exit_code, 0);
    proc_free(&q);
    err = control(&by_pid, &(struct agent_pty_control){.signum = SIGKILL});
    ASSERT(err && err->status == ENOENT);
    wr_error_free(err);
}

static void test_pipes_no_stdin_and_signal(void)
{
    struct proc p;
    proc_start(
        &p,
        &(struct agent_pty_request){
            .argv = ARGV("sleep", "600"), .cwd = tmpdir, .rows = 24, .cols = 80, .pipes = true});
    struct agent_pty_selector sel = {.pid = p.pid};
    struct wr_error *err = control(&sel, &(struct agent_pty_control){.input = "x", .input_len = 1});
    ASSERT(err && err->status == EPIPE);
    wr_error_free(err);
    ASSERT(!control(&sel, &(struct agent_pty_control){.signum = SIGTERM}));
    run_until(&p.t.ended);
    ASSERT_EQ(p.t.end.exit.signal, SIGTERM);
    proc_free(&p);
    /* A terminal takes resizes and input through PROC_CONTROL too, not CLOSE_STDIN. */
    uint64_t id = open_pty(ARGV("/bin/sh"));
    struct agent_pty_selector t = {.id = id};
    err = control(&t, &(struct agent_pty_control){.close_stdin = true});
    ASSERT(err && err->status == EINVAL);
    wr_error_free(err);
    ASSERT(!control(&t, &(struct agent_pty_control){.rows = 33, .cols = 99}));
    struct listed l;
    list_on(conn, &l);
    ASSERT_EQ(find_info(&l, id)->rows, 33u);
    ASSERT(!find_info(&l, id)->pipes);
    ASSERT(!close_pty(id));
    err = control(&(struct agent_pty_selector){.tag = "nobody"},
                  &(struct agent_pty_control){.signum = SIGKILL});
    ASSERT(err && err->status == ENOENT);
    wr_error_free(err);
}

static void test_channel_hello(const char *binary)
{
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); /* sv[1] inherited */
    fcntl(sv[0], F_SETFD, FD_CLOEXEC);
    pid_t pid = start_agent(binary, "--channel-fd", sv[1]);
    struct agent_conn *c1 = connect_fd(dup(sv[0]));
    struct wr_error *err = NULL;
    uint64_t id = open_pty_on(
        c1, &(struct agent_pty_request){.argv = ARGV("sh"), .cwd = tmpdir, .rows = 24, .cols = 80},
        &err);
    ASSERT(id && !err);
    struct term t;
    attach_on(c1, &t, id, true);
    type(&t, "echo on-chan''nel\n");
    wait_output(&t, "on-channel");
    agent_conn_close(c1);
    term_free(&t);
    struct agent_conn *c2 = connect_fd(dup(sv[0]));
    struct listed l;
    list_on(c2, &l);
    ASSERT(find_info(&l, id) && find_info(&l, id)->running);
    attach_on(c2, &t, id, true);
    wait_output(&t, "on-channel");
    type(&t, "echo still-th''ere\n");
    wait_output(&t, "still-there");
    term_free(&t);
    agent_conn_close(c2);
    close(sv[0]);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
}

int main(void)
{
    const char *dir = getenv("WARREN_BUILD_DIR");
    char binary[4096];
    snprintf(binary, sizeof(binary), "%s/guest-init", dir ? dir : ".");
    if (access(binary, X_OK) != 0)
        SKIP("guest-init binary not built (set WARREN_BUILD_DIR)");
    if (access("/dev/ptmx", R_OK | W_OK) != 0)
        SKIP("no /dev/ptmx");
    signal(SIGPIPE, SIG_IGN);
    ASSERT(mkdtemp(tmpdir));
    snprintf(sock_path, sizeof(sock_path), "%s/agent.sock", tmpdir);
    loop = uv_default_loop();
    agent_pid = start_agent(binary, "--listen-fd", listen_socket());
    conn = connect_agent();
    RUN(test_echo);
    RUN(test_resize);
    RUN(test_close_kills_session);
    RUN(test_detach_reattach);
    RUN(test_survives_connection);
    RUN(test_flow_control);
    RUN(test_detached_never_blocks);
    RUN(test_exit_and_signal);
    RUN(test_default_shell);
    RUN(test_limits);
    RUN(test_bad_requests);
    RUN(test_pipes_output);
    RUN(test_pipes_output_before_attach);
    RUN(test_pipes_stdin_control);
    RUN(test_pipes_no_stdin_and_signal);
    fprintf(stderr, "-- test_channel_hello\n");
    test_channel_hello(binary);
    agent_conn_close(conn);
    kill(agent_pid, SIGKILL);
    waitpid(agent_pid, NULL, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    wr_rm_rf(tmpdir);
    fprintf(stderr, "all pty tests passed\n");
    return 0;
}
