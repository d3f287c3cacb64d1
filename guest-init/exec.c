/* EXEC: runs a process in its own session and process group, streams its output, and
 * reports its exit. Exec failures look like a shell's: exit code 127 (not found) or 126
 * (not executable) with the reason on stderr. A missing working directory is an ERROR
 * frame, because it is a fault of the request rather than of the command. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include "guest-init.h"

#define MAX_ARGS 65536
#define PIPE_SIZE (256 * 1024)

static const char *const default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "LANG=C.UTF-8",
    NULL,
};

struct gi_exec {
    struct gi_req req;
    struct gi_exec *next_all; /* every running exec, for reaping and timers */
    pid_t pid;
    struct gi_watch out, err, in;
    struct wr_buf stdin_queue;
    size_t stdin_head; /* bytes of stdin_queue already written */
    bool blocks_input; /* the queue is over GI_STDIN_HIGH: the connection stopped reading */
    bool stdin_eof;    /* the host closed stdin: close the pipe once the queue is empty */
    bool exited;
    int status;
    bool timed_out;
    bool paused;            /* output reading stopped by connection backpressure */
    uint64_t deadline;      /* timeout, 0 for none */
    uint64_t killed_at;     /* when the timeout killed the group, 0 before */
    uint64_t last_activity; /* leader exit or last output, for the linger rule */
};

static struct gi_exec *all_execs;

/* Signals the exec's process group. Right after fork the child may not have called
 * setsid() yet, so the group does not exist; the child alone is then the target (and
 * has no descendants yet). Once the leader is reaped its pid may be reused, so there is
 * no fallback then. */
static void kill_group(struct gi_exec *e, int sig)
{
    if (kill(-e->pid, sig) < 0 && errno == ESRCH && !e->exited)
        kill(e->pid, sig);
}

/* ---- the child ---------------------------------------------------------------------- */

static void child_reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
}

static void child_stdio(int in_fd, int out_fd, int err_fd)
{
    if (in_fd < 0)
        in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd >= 0)
        dup2(in_fd, 0);
    else
        close(0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
}

/* What guest-init runs goes first when the sandbox runs out of memory: in a jail, the OOM
 * killer taking guest-init (its PID 1) would end the whole sandbox. Lowering guest-init's
 * own score needs a privilege hosts may withhold; raising a child's needs none. */
static void child_oom_score(void)
{
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!write(fd, "1000", 4);
        close(fd);
    }
}

void gi_child_prepare(void)
{
    child_oom_score();
    child_reset_signals();
}

void gi_child_exec(const struct gi_exec_spec *s, int cwd_fd)
{
    extern char **environ;
    if (s->user && gi_become_user(&s->as) < 0) {
        dprintf(2, "warren-guest-init: becoming user '%s': %s\n", s->user, strerror(errno));
        _exit(126);
    }
    if (fchdir(cwd_fd) < 0) {
        dprintf(2, "warren-guest-init: chdir '%s': %s\n", s->cwd, strerror(errno));
        _exit(126);
    }
    close_range(3, ~0u, 0);
    /* execvp searches the PATH of environ, which must be the command's own. */
    environ = s->env;
    execvp(s->argv[0], s->argv);
    int e = errno;
    dprintf(2, "warren-guest-init: %s: %s\n", s->argv[0], strerror(e));
    _exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
}

__attribute__((noreturn)) static void run_child(const struct gi_exec_spec *s, int cwd_fd, int in_fd,
                                                int out_fd, int err_fd)
{
    gi_child_prepare();
    setsid();
    child_stdio(in_fd, out_fd, err_fd);
    gi_child_exec(s, cwd_fd);
}

/* ---- parsing ------------------------------------------------------------------------ */

void gi_exec_spec_free(struct gi_exec_spec *s)
{
    wr_strv_free(s->argv);
    wr_strv_free(s->env);
    free(s->cwd);
    free(s->user);
}

static bool has_nul(const struct gi_tlv *t)
{
    return memchr(t->value, 0, t->len) != NULL;
}

static void strv_push(char ***v, size_t *n, const struct gi_tlv *t)
{
    *v = wr_realloc(*v, (*n + 2) * sizeof(char *));
    (*v)[(*n)++] = wr_strndup((const char *)t->value, t->len);
    (*v)[*n] = NULL;
}

/* Returns <0 for a malformed payload, 0 with *bad set for invalid contents. */
static int parse_tlv(struct gi_exec_spec *s, const struct gi_tlv *t, size_t *n_args, size_t *n_env,
                     const char **bad)
{
    uint64_t v;
    switch (t->tag) {
    case GI_T_USER:
        if (has_nul(t) || t->len == 0 || t->len > 128)
            *bad = "invalid user";
        else if (!s->user)
            s->user = wr_strndup((const char *)t->value, t->len);
        return 0;
    case GI_T_ARG:
    case GI_T_ENV:
    case GI_T_CWD:
        if (has_nul(t))
            *bad = "argument, environment entry or directory holds a NUL byte";
        else if (t->tag == GI_T_ARG)
            strv_push(&s->argv, n_args, t);
        else if (t->tag == GI_T_ENV)
            strv_push(&s->env, n_env, t);
        else if (!s->cwd)
            s->cwd = wr_strndup((const char *)t->value, t->len);
        return 0;
    case GI_T_TIMEOUT_MS:
    case GI_T_STDIN_OPEN:
        if (gi_tlv_u64(t, &v) < 0)
            return -EPROTO;
        if (t->tag == GI_T_TIMEOUT_MS)
            s->timeout_ms = v;
        else
            s->stdin_open = v != 0;
        return 0;
    default:
        return 0;
    }
}

int gi_exec_spec_parse(const uint8_t *payload, size_t len, bool need_argv, struct gi_exec_spec *s,
                       const char **bad)
{
    struct gi_reader rd;
    struct gi_tlv t;
    size_t n_args = 0, n_env = 0;
    int r;
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        if (parse_tlv(s, &t, &n_args, &n_env, bad) < 0)
            return -EPROTO;
        if (n_args > MAX_ARGS || n_env > MAX_ARGS)
            *bad = "too many arguments or environment entries";
    }
    if (r < 0)
        return r;
    if (n_args == 0 && need_argv && !*bad)
        *bad = "no command given (ARG missing)";
    if (!s->env)
        s->env = wr_strv_copy(default_env);
    return 0;
}

/* ---- output, exit, timers --------------------------------------------------------- */

static void maybe_finish(struct gi_exec *e);

static void send_exit(struct gi_exec *e)
{
    struct gi_writer *w = gi_conn_writer(e->req.conn);
    int code = WIFEXITED(e->status) ? WEXITSTATUS(e->status) : -1;
    int sig = WIFSIGNALED(e->status) ? WTERMSIG(e->status) : 0;
    gi_writer_start(w, GI_EXIT, e->req.stream);
    gi_writer_u64(w, GI_T_EXIT_CODE, (uint64_t)(int64_t)code);
    gi_writer_u64(w, GI_T_SIGNAL, (uint64_t)sig);
    gi_writer_u64(w, GI_T_TIMED_OUT, e->timed_out);
    gi_conn_send(e->req.conn, w);
}

static void unlink_all(struct gi_exec *e)
{
    for (struct gi_exec **p = &all_execs; *p; p = &(*p)->next_all) {
        if (*p == e) {
            *p = e->next_all;
            return;
        }
    }
}

/* Releases everything but the process itself (already reaped, or killed by abort). */
static void exec_free(struct gi_exec *e)
{
    unlink_all(e);
    gi_watch_close(&e->out);
    gi_watch_close(&e->err);
    gi_watch_close(&e->in);
    wr_buf_free(&e->stdin_queue);
    gi_defer_free(e);
}

static void pump_pipe(struct gi_exec *e, struct gi_watch *w, uint16_t type)
{
    struct gi_conn *c = e->req.conn;
    for (int i = 0; i < 4 && w->fd >= 0; i++) {
        if (gi_conn_congested(c)) {
            e->paused = true;
            gi_watch_set(w, 0);
            return;
        }
        uint8_t *p = gi_conn_reserve(c, GI_CHUNK_SIZE);
        ssize_t n = read(w->fd, p, GI_CHUNK_SIZE);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            gi_watch_close(w);
            maybe_finish(e);
            return;
        }
        e->last_activity = wr_now_ms();
        gi_conn_commit(c, type, e->req.stream, (size_t)n);
    }
}

static void on_stdout(struct gi_watch *w, uint32_t events)
{
    struct gi_exec *e = gi_container_of(w, struct gi_exec, out);
    pump_pipe(e, w, GI_STDOUT);
}

static void on_stderr(struct gi_watch *w, uint32_t events)
{
    struct gi_exec *e = gi_container_of(w, struct gi_exec, err);
    pump_pipe(e, w, GI_STDERR);
}

static void on_drain(struct gi_req *req)
{
    struct gi_exec *e = (struct gi_exec *)req;
    if (!e->paused)
        return;
    e->paused = false;
    e->last_activity = wr_now_ms();
    gi_watch_set(&e->out, EPOLLIN);
    gi_watch_set(&e->err, EPOLLIN);
}

static void finish(struct gi_exec *e)
{
    send_exit(e);
    gi_req_remove(&e->req);
    exec_free(e);
}

/* EXIT goes out once the leader is reaped and its pipes are at EOF. */
static void maybe_finish(struct gi_exec *e)
{
    if (e->exited && e->out.fd < 0 && e->err.fd < 0)
        finish(e);
}

bool gi_exec_reaped(pid_t pid, int status)
{
    for (struct gi_exec *e = all_execs; e; e = e->next_all) {
        if (e->pid != pid)
            continue;
        e->exited = true;
        e->status = status;
        e->last_activity = wr_now_ms();
        maybe_finish(e);
        return true;
    }
    return false;
}

#define KILL_REPEAT_MS 10

/* Returns the next deadline of e, after acting on the ones that passed. */
static uint64_t exec_timers(struct gi_exec *e, uint64_t now)
{
    if (e->deadline && now >= e->deadline) {
        e->deadline = 0;
        e->timed_out = true;
        e->killed_at = now;
    }
    if (e->killed_at) {
        /* Killed again until the group is empty: a process forking when the signal went out
         * (a fork bomb) leaves children the first kill missed. Once the group is gone, or
         * the leader is reaped and a linger has passed, the exec ends whatever still holds
         * its pipes or writes to them. */
        kill_group(e, SIGKILL);
        bool group_gone = kill(-e->pid, 0) < 0 && errno == ESRCH;
        if (e->exited && (group_gone || now >= e->killed_at + GI_LINGER_MS)) {
            gi_watch_close(&e->out);
            gi_watch_close(&e->err);
            finish(e);
            return 0;
        }
        return now + KILL_REPEAT_MS;
    }
    if (e->exited && !e->paused && now >= e->last_activity + GI_LINGER_MS) {
        /* A background process holds the pipes: report the exit and leave it running. */
        gi_watch_close(&e->out);
        gi_watch_close(&e->err);
        finish(e);
        return 0;
    }
    uint64_t next = e->deadline;
    if (e->exited && !e->paused && (!next || e->last_activity + GI_LINGER_MS < next))
        next = e->last_activity + GI_LINGER_MS;
    return next;
}

uint64_t gi_exec_timers(uint64_t now)
{
    uint64_t next = 0;
    for (struct gi_exec *e = all_execs, *n; e; e = n) {
        n = e->next_all;
        uint64_t t = exec_timers(e, now);
        if (t && (!next || t < next))
            next = t;
    }
    return next;
}

void gi_exec_kill_all(void)
{
    for (struct gi_exec *e = all_execs; e; e = e->next_all)
        kill_group(e, SIGKILL);
}

/* ---- stdin and signals -------------------------------------------------------------- */

static size_t stdin_pending(const struct gi_exec *e)
{
    return e->stdin_queue.len - e->stdin_head;
}

static void stdin_block_input(struct gi_exec *e, bool block)
{
    if (e->blocks_input == block)
        return;
    e->blocks_input = block;
    gi_conn_pause_input(e->req.conn, block);
}

static void stdin_flush(struct gi_exec *e)
{
    while (e->in.fd >= 0 && stdin_pending(e) > 0) {
        ssize_t n = write(e->in.fd, e->stdin_queue.data + e->stdin_head, stdin_pending(e));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            /* EPIPE: the process closed its stdin; what is left will never be read. */
            gi_watch_close(&e->in);
            break;
        }
        e->stdin_head += (size_t)n;
    }
    if (e->in.fd < 0 || stdin_pending(e) == 0) {
        wr_buf_reset(&e->stdin_queue);
        e->stdin_head = 0;
    }
    if (e->stdin_eof && stdin_pending(e) == 0)
        gi_watch_close(&e->in);
    gi_watch_set(&e->in, stdin_pending(e) > 0 ? EPOLLOUT : 0);
    stdin_block_input(e, stdin_pending(e) >= GI_STDIN_HIGH);
}

/* Queues stdin data; written-out bytes at the front are dropped first so that the
 * queue does not grow by what the process already consumed. */
static int stdin_queue(struct gi_exec *e, const uint8_t *p, size_t n)
{
    /* Drop what was written when half the queue is written, and always before an append
     * that would not fit: the cap is on bytes still waiting, not on bytes already gone. */
    if (e->stdin_head > 0 &&
        (e->stdin_head >= e->stdin_queue.len / 2 || e->stdin_queue.len + n > e->stdin_queue.max)) {
        wr_buf_consume(&e->stdin_queue, e->stdin_head);
        e->stdin_head = 0;
    }
    return wr_buf_append(&e->stdin_queue, p, n);
}

static void on_stdin_writable(struct gi_watch *w, uint32_t events)
{
    stdin_flush(gi_container_of(w, struct gi_exec, in));
}

static int on_frame(struct gi_req *req, uint16_t type, const uint8_t *payload, size_t len)
{
    struct gi_exec *e = (struct gi_exec *)req;
    if (type == GI_STDIN) {
        if (e->in.fd < 0 || e->stdin_eof)
            return 0;
        if (len == 0)
            e->stdin_eof = true;
        else if (stdin_queue(e, payload, len) < 0)
            return -EPROTO;
        stdin_flush(e);
        return 0;
    }
    if (type == GI_SIGNAL) {
        struct gi_reader rd;
        struct gi_tlv t;
        uint64_t signum = 0;
        int r;
        gi_reader_init(&rd, payload, len);
        while ((r = gi_reader_next(&rd, &t)) > 0)
            if (t.tag == GI_T_SIGNUM && gi_tlv_u64(&t, &signum) < 0)
                return -EPROTO;
        if (r < 0)
            return r;
        if (signum > 0 && signum < NSIG)
            kill_group(e, (int)signum);
        return 0;
    }
    return 0; /* DATA / WRITE_END on an exec stream: nothing to do */
}

static void abort_exec(struct gi_req *req)
{
    struct gi_exec *e = (struct gi_exec *)req;
    /* The host is gone: nobody would see the output, so the whole group goes. The
     * leader is reaped later by the SIGCHLD handler like any orphan. */
    kill_group(e, SIGKILL);
    exec_free(e);
}

/* ---- start -------------------------------------------------------------------------- */

static int make_pipe(int fds[2], int parent_end)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    /* Only our end is non-blocking: the process gets ordinary blocking pipes. */
    fcntl(fds[parent_end], F_SETFL, O_NONBLOCK);
    fcntl(fds[parent_end], F_SETPIPE_SZ, PIPE_SIZE);
    return 0;
}

static void close_pair(int fds[2])
{
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* A pipe that cannot be watched (epoll out of memory) is closed: the exec then ends
 * without that output rather than never. */
static void watch_or_close(struct gi_watch *w, int fd, uint32_t events, gi_watch_cb cb)
{
    int r = gi_watch_add(w, fd, events, cb);
    if (r < 0) {
        log_error("watching pipe %d: %s", fd, strerror(-r));
        close(fd);
    }
}

static struct gi_exec *exec_new(struct gi_conn *c, uint32_t stream)
{
    struct gi_exec *e = wr_calloc(1, sizeof(*e));
    e->req.stream = stream;
    e->req.on_frame = on_frame;
    e->req.on_drain = on_drain;
    e->req.abort = abort_exec;
    e->out.fd = e->err.fd = e->in.fd = -1;
    wr_buf_init(&e->stdin_queue, GI_STDIN_HIGH + GI_FRAME_MAX_PAYLOAD);
    return e;
}

/* Forks the child; on success e owns the parent ends of the pipes. */
static int spawn(struct gi_exec *e, const struct gi_exec_spec *s, int cwd_fd)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    int r = 0;
    if ((s->stdin_open && (r = make_pipe(in, 1)) < 0) || (r = make_pipe(out, 0)) < 0 ||
        (r = make_pipe(err, 0)) < 0)
        goto fail;
    e->pid = fork();
    if (e->pid < 0) {
        r = -errno;
        goto fail;
    }
    if (e->pid == 0)
        run_child(s, cwd_fd, in[0], out[1], err[1]);
    close(in[0]), close(out[1]), close(err[1]);
    in[0] = out[1] = err[1] = -1;
    watch_or_close(&e->out, out[0], EPOLLIN, on_stdout);
    watch_or_close(&e->err, err[0], EPOLLIN, on_stderr);
    if (in[1] >= 0)
        watch_or_close(&e->in, in[1], 0, on_stdin_writable);
    return 0;
fail:
    close_pair(in), close_pair(out), close_pair(err);
    return r;
}

static int open_cwd(struct gi_conn *c, uint32_t stream, struct gi_exec_spec *s)
{
    if (!s->cwd)
        s->cwd = wr_strdup(GI_WORKSPACE);
    _cleanup_free_ char *path = gi_resolve_path(c, stream, (const uint8_t *)s->cwd, strlen(s->cwd));
    if (!path)
        return -EINVAL;
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        gi_conn_send_error(c, stream, e, "working directory '%s': %s", path, strerror(e));
        return -e;
    }
    return fd;
}

/* A command run as another user gets that user's home in place of the default /root. */
static void home_for_user(struct gi_exec_spec *s)
{
    if (s->as.uid == 0 || !s->as.home[0])
        return;
    for (size_t i = 0; s->env && s->env[i]; i++) {
        if (!strcmp(s->env[i], "HOME=/root")) {
            free(s->env[i]);
            s->env[i] = wr_asprintf("HOME=%s", s->as.home);
        }
    }
}

int gi_exec_spec_prepare(struct gi_conn *c, uint32_t stream, struct gi_exec_spec *s,
                         const char *what)
{
    const char *why = NULL;
    if (s->user && gi_resolve_user(s->user, &s->as, &why) < 0) {
        gi_conn_send_error(c, stream, EINVAL, "%s: user '%s': %s", what, s->user, why);
        return -EINVAL;
    }
    if (s->user)
        home_for_user(s);
    return open_cwd(c, stream, s);
}

int gi_exec_start(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct gi_exec_spec s = {0};
    const char *bad = NULL;
    int r = gi_exec_spec_parse(payload, len, true, &s, &bad);
    if (r < 0 || bad) {
        gi_exec_spec_free(&s);
        return r < 0 ? r : gi_conn_send_error(c, stream, EINVAL, "exec: %s", bad);
    }
    _cleanup_close_ int cwd_fd = gi_exec_spec_prepare(c, stream, &s, "exec");
    if (cwd_fd < 0) {
        gi_exec_spec_free(&s);
        return 0;
    }
    struct gi_exec *e = exec_new(c, stream);
    r = spawn(e, &s, cwd_fd);
    if (r < 0) {
        gi_conn_send_error(c, stream, -r, "exec '%s': %s", s.argv[0], strerror(-r));
        gi_exec_spec_free(&s);
        wr_buf_free(&e->stdin_queue);
        free(e);
        return 0;
    }
    /* Timeouts past a year are no timeout (and cannot overflow the clock). */
    if (s.timeout_ms && s.timeout_ms < 366ull * 86400 * 1000)
        e->deadline = wr_now_ms() + s.timeout_ms;
    gi_exec_spec_free(&s);
    e->next_all = all_execs;
    all_execs = e;
    gi_req_add(c, &e->req);
    return 0;
}
