/* End-to-end tests of vmm/agent.c against the real guest-init binary, run as an
 * ordinary child process in --jail mode on a listening unix socket in a temp dir. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <uv.h>

#include "guest-init/proto.h"
#include "test.h"
#include "vmm/agent.h"

static uv_loop_t *loop;
static char tmpdir[] = "/tmp/warren-test-agent-XXXXXX";
static char sock_path[108];
static pid_t agent_pid;
static struct agent_conn *conn;

/* Runs the loop until *flag is set, failing the test after 20 s. */
static void run_until(const bool *flag)
{
    uint64_t deadline = uv_hrtime() / 1000000 + 20000;
    while (!*flag) {
        ASSERT(uv_hrtime() / 1000000 < deadline);
        uv_run(loop, UV_RUN_ONCE);
    }
}

static char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

/* ---- connect ------------------------------------------------------------------------ */

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
    if (r.err)
        fprintf(stderr, "connect: %s\n", r.err->msg);
    ASSERT(r.conn);
    return r.conn;
}

static void start_agent(const char *binary)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0); /* inherited: no CLOEXEC */
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    ASSERT(fd >= 0);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ASSERT_EQ(listen(fd, 16), 0);
    agent_pid = fork();
    ASSERT(agent_pid >= 0);
    if (agent_pid == 0) {
        char fdarg[16];
        snprintf(fdarg, sizeof(fdarg), "%d", fd);
        execl(binary, "guest-init", "--jail", "--listen-fd", fdarg, (char *)NULL);
        _exit(127);
    }
    close(fd);
}

/* ---- exec helpers ------------------------------------------------------------------- */

struct exec_result {
    bool done;
    struct wr_buf out, err;
    struct agent_exit exit;
    struct wr_error *error;
};

static void on_output(void *data, int fd, const char *buf, size_t len)
{
    struct exec_result *r = data;
    ASSERT_EQ(wr_buf_append(fd == 1 ? &r->out : &r->err, buf, len), 0);
}

static void on_done(void *data, const struct agent_exit *ex, struct wr_error *err)
{
    struct exec_result *r = data;
    ASSERT(!r->done);
    r->done = true;
    if (ex)
        r->exit = *ex;
    r->error = err;
}

static const struct agent_exec_handlers handlers = {.output = on_output, .done = on_done};

static struct agent_exec *start_exec(struct agent_conn *c, struct exec_result *r,
                                     struct agent_exec_request *q)
{
    struct agent_exec *e = NULL;
    struct wr_error *err = NULL;
    memset(r, 0, sizeof(*r));
    wr_buf_init(&r->out, 64u << 20);
    wr_buf_init(&r->err, 1u << 20);
    if (!q->cwd)
        q->cwd = tmpdir;
    ASSERT_EQ(agent_exec(c, q, &handlers, r, &e, &err), 0);
    return e;
}

static void run_exec(struct exec_result *r, struct agent_exec_request *q)
{
    start_exec(conn, r, q);
    run_until(&r->done);
}

static void exec_result_free(struct exec_result *r)
{
    wr_buf_free(&r->out);
    wr_buf_free(&r->err);
    wr_error_free(r->error);
}

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- exec tests --------------------------------------------------------------------- */

static void test_exec_stdout(void)
{
    struct exec_result r;
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("echo", "hi")});
    ASSERT(!r.error);
    ASSERT_STREQ(r.out.data, "hi\n");
    ASSERT_EQ(r.exit.exit_code, 0);
    ASSERT_EQ(r.exit.signal, 0);
    ASSERT(!r.exit.timed_out);
    exec_result_free(&r);
}

static void test_exec_stderr_and_code(void)
{
    struct exec_result r;
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("sh", "-c", "echo oops >&2; exit 3")});
    ASSERT(!r.error);
    ASSERT_STREQ(r.err.data, "oops\n");
    ASSERT_EQ(r.out.len, 0);
    ASSERT_EQ(r.exit.exit_code, 3);
    exec_result_free(&r);
}

static void test_exec_env_and_cwd(void)
{
    struct exec_result r;
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("sh", "-c", "echo $FOO:$HOME; pwd"),
                                              .env = ARGV("FOO=bar", "PATH=/usr/bin:/bin"),
                                              .cwd = "/"});
    ASSERT_STREQ(r.out.data, "bar:\n/\n");
    exec_result_free(&r);
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("sh", "-c", "echo $PATH")});
    ASSERT(strstr(r.out.data, "/usr/bin"));
    exec_result_free(&r);
}

static void test_exec_signal_death(void)
{
    struct exec_result r;
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("sh", "-c", "kill -9 $$")});
    ASSERT(!r.error);
    ASSERT_EQ(r.exit.exit_code, -1);
    ASSERT_EQ(r.exit.signal, SIGKILL);
    exec_result_free(&r);
}

static void test_exec_not_found(void)
{
    struct exec_result r;
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("no-such-command-xyz")});
    ASSERT(!r.error);
    ASSERT_EQ(r.exit.exit_code, 127);
    ASSERT(strstr(r.err.data, "no-such-command-xyz"));
    exec_result_free(&r);
}

static void test_exec_missing_cwd(void)
{
    struct exec_result r;
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("true"), .cwd = "/nonexistent/dir"});
    ASSERT(r.error);
    ASSERT_EQ(r.error->status, ENOENT);
    ASSERT(strstr(r.error->msg, "/nonexistent/dir"));
    exec_result_free(&r);
}

static void test_exec_stdin(void)
{
    static const char input[] = "hello\nstdin\n";
    struct exec_result r;
    run_exec(&r, &(struct agent_exec_request){
                     .argv = ARGV("cat"), .stdin_data = input, .stdin_len = strlen(input)});
    ASSERT_STREQ(r.out.data, input);
    exec_result_free(&r);
    /* Without stdin data, stdin is /dev/null: cat ends at once. */
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("cat")});
    ASSERT_EQ(r.out.len, 0);
    ASSERT_EQ(r.exit.exit_code, 0);
    exec_result_free(&r);
}

static void test_exec_big_stdin(void)
{
    size_t n = 3u << 20;
    char *input = malloc(n);
    for (size_t i = 0; i < n; i++)
        input[i] = (char)(i * 7);
    struct exec_result r;
    run_exec(
        &r, &(struct agent_exec_request){.argv = ARGV("cat"), .stdin_data = input, .stdin_len = n});
    ASSERT_EQ(r.out.len, n);
    ASSERT(memcmp(r.out.data, input, n) == 0);
    exec_result_free(&r);
    free(input);
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

static void test_exec_timeout(void)
{
    struct exec_result r;
    uint64_t start = uv_hrtime();
    run_exec(&r, &(struct agent_exec_request){
                     .argv = ARGV("sh", "-c", "sleep 10 & echo $!; sleep 10"), .timeout_ms = 200});
    uint64_t ms = (uv_hrtime() - start) / 1000000;
    ASSERT(!r.error);
    ASSERT(r.exit.timed_out);
    ASSERT_EQ(r.exit.signal, SIGKILL);
    ASSERT(ms >= 190 && ms < 2000);
    pid_t bg = (pid_t)atoi(r.out.data);
    ASSERT(bg > 0);
    ASSERT(process_gone(bg)); /* the background child was in the group: killed too */
    exec_result_free(&r);
}

static void test_exec_background_linger(void)
{
    /* The leader exits at once but leaves a child holding stdout: EXIT still comes. */
    struct exec_result r;
    uint64_t start = uv_hrtime();
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("sh", "-c", "sleep 3 & echo started")});
    uint64_t ms = (uv_hrtime() - start) / 1000000;
    ASSERT_STREQ(r.out.data, "started\n");
    ASSERT_EQ(r.exit.exit_code, 0);
    ASSERT(ms < 1500);
    exec_result_free(&r);
}

static void test_exec_signal(void)
{
    struct exec_result r;
    struct agent_exec *e =
        start_exec(conn, &r, &(struct agent_exec_request){.argv = ARGV("sleep", "10")});
    ASSERT_EQ(agent_exec_signal(e, SIGTERM), 0);
    run_until(&r.done);
    ASSERT(!r.error);
    ASSERT_EQ(r.exit.signal, SIGTERM);
    exec_result_free(&r);
}

static void test_exec_large_output(void)
{
    struct exec_result r;
    run_exec(&r, &(struct agent_exec_request){.argv = ARGV("head", "-c", "8388608", "/dev/zero")});
    ASSERT(!r.error);
    ASSERT_EQ(r.out.len, 8u << 20);
    ASSERT_EQ(r.exit.exit_code, 0);
    exec_result_free(&r);
}

static void test_exec_concurrent(void)
{
    struct exec_result a, b;
    start_exec(conn, &a,
               &(struct agent_exec_request){.argv = ARGV("sh", "-c", "sleep 0.3; echo a")});
    start_exec(conn, &b, &(struct agent_exec_request){.argv = ARGV("echo", "b")});
    run_until(&b.done);
    ASSERT(!a.done); /* b did not wait for a */
    run_until(&a.done);
    ASSERT_STREQ(a.out.data, "a\n");
    ASSERT_STREQ(b.out.data, "b\n");
    exec_result_free(&a);
    exec_result_free(&b);
}

/* ---- files -------------------------------------------------------------------------- */

struct file_result {
    bool done;
    struct wr_buf data;
    uint64_t n;
    struct agent_stat st;
    struct agent_memstats mem;
    struct wr_error *err;
};

static void on_read_done(void *data, const char *buf, size_t len, uint64_t size,
                         struct wr_error *err)
{
    struct file_result *r = data;
    r->done = true;
    r->err = err;
    r->n = size;
    wr_buf_init(&r->data, 1u << 30);
    wr_buf_append(&r->data, buf, len);
}

static void on_write_done(void *data, uint64_t n, struct wr_error *err)
{
    struct file_result *r = data;
    r->done = true;
    r->n = n;
    r->err = err;
}

static void on_stat_done(void *data, const struct agent_stat *st, struct wr_error *err)
{
    struct file_result *r = data;
    r->done = true;
    r->err = err;
    if (st)
        r->st = *st;
}

static void on_mem_done(void *data, const struct agent_memstats *m, struct wr_error *err)
{
    struct file_result *r = data;
    r->done = true;
    r->err = err;
    if (m)
        r->mem = *m;
}

static void on_simple_done(void *data, struct wr_error *err)
{
    struct file_result *r = data;
    r->done = true;
    r->err = err;
}

static void write_file(const char *path, const void *buf, size_t len, uint32_t mode, uint32_t flags,
                       struct file_result *r)
{
    struct wr_error *err = NULL;
    memset(r, 0, sizeof(*r));
    ASSERT_EQ(agent_write_file(conn, path, buf, len, mode, flags, on_write_done, r, &err), 0);
    run_until(&r->done);
}

static void read_file(const char *path, uint64_t off, uint64_t len, struct file_result *r)
{
    struct wr_error *err = NULL;
    memset(r, 0, sizeof(*r));
    ASSERT_EQ(agent_read_file(conn, path, off, len, on_read_done, r, &err), 0);
    run_until(&r->done);
}

static void file_result_free(struct file_result *r)
{
    wr_buf_free(&r->data);
    wr_error_free(r->err);
}

static void test_file_round_trip(void)
{
    size_t n = (5u << 20) + 12345;
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)((i * 2654435761u) >> 13);
    struct file_result w, r;
    write_file(tmp_path("big.bin"), buf, n, 0600, 0, &w);
    ASSERT(!w.err);
    ASSERT_EQ(w.n, n);
    struct stat st;
    ASSERT_EQ(stat(tmp_path("big.bin"), &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    read_file(tmp_path("big.bin"), 0, 64u << 20, &r);
    ASSERT(!r.err);
    ASSERT_EQ(r.n, n);
    ASSERT_EQ(r.data.len, n);
    ASSERT(memcmp(r.data.data, buf, n) == 0);
    file_result_free(&r);
    read_file(tmp_path("big.bin"), 1000, 300000, &r);
    ASSERT_EQ(r.data.len, 300000);
    ASSERT_EQ(r.n, n);
    ASSERT(memcmp(r.data.data, buf + 1000, 300000) == 0);
    file_result_free(&r);
    read_file(tmp_path("big.bin"), n - 10, 1000, &r); /* a read past the end is short */
    ASSERT_EQ(r.data.len, 10);
    file_result_free(&r);
    free(buf);
}

static void test_file_append_and_dirs(void)
{
    struct file_result w, r;
    write_file(tmp_path("a.txt"), "abc", 3, 0644, 0, &w);
    ASSERT(!w.err);
    write_file(tmp_path("a.txt"), "def", 3, 0644, GI_WRITE_APPEND, &w);
    ASSERT(!w.err);
    read_file(tmp_path("a.txt"), 0, 100, &r);
    ASSERT_STREQ(r.data.data, "abcdef");
    file_result_free(&r);
    write_file(tmp_path("a.txt"), "x", 1, 0644, 0, &w); /* truncates */
    read_file(tmp_path("a.txt"), 0, 100, &r);
    ASSERT_STREQ(r.data.data, "x");
    file_result_free(&r);
    write_file(tmp_path("d1/d2/f.txt"), "z", 1, 0644, 0, &w);
    ASSERT(w.err);
    ASSERT_EQ(w.err->status, ENOENT);
    wr_error_free(w.err);
    write_file(tmp_path("d1/d2/f.txt"), "z", 1, 0644, GI_WRITE_CREATE_DIRS, &w);
    ASSERT(!w.err);
    write_file(tmp_path("empty"), NULL, 0, 0644, 0, &w);
    ASSERT(!w.err);
    ASSERT_EQ(w.n, 0);
}

static void test_file_errors(void)
{
    struct file_result r;
    read_file(tmp_path("missing"), 0, 100, &r);
    ASSERT(r.err);
    ASSERT_EQ(r.err->status, ENOENT);
    ASSERT(strstr(r.err->msg, "missing"));
    file_result_free(&r);
    read_file(tmpdir, 0, 100, &r);
    ASSERT(r.err);
    ASSERT_EQ(r.err->status, EISDIR);
    file_result_free(&r);
}

static void test_stat_memstats_sync(void)
{
    struct file_result r = {0};
    struct wr_error *err = NULL;
    struct file_result w;
    write_file(tmp_path("s.txt"), "12345", 5, 0640, 0, &w);
    ASSERT_EQ(agent_stat(conn, tmp_path("s.txt"), on_stat_done, &r, &err), 0);
    run_until(&r.done);
    ASSERT(!r.err);
    ASSERT_EQ(r.st.size, 5);
    ASSERT(S_ISREG(r.st.mode));
    ASSERT_EQ(r.st.mode & 0777, 0640);
    ASSERT(r.st.mtime > 1600000000);
    memset(&r, 0, sizeof(r));
    ASSERT_EQ(agent_stat(conn, tmp_path("nope"), on_stat_done, &r, &err), 0);
    run_until(&r.done);
    ASSERT(r.err && r.err->status == ENOENT);
    wr_error_free(r.err);
    memset(&r, 0, sizeof(r));
    ASSERT_EQ(agent_memstats(conn, on_mem_done, &r, &err), 0);
    run_until(&r.done);
    ASSERT(!r.err);
    ASSERT(r.mem.total > (64u << 20) && r.mem.available <= r.mem.total && r.mem.free > 0);
    memset(&r, 0, sizeof(r));
    ASSERT_EQ(agent_sync(conn, on_simple_done, &r, &err), 0);
    run_until(&r.done);
    ASSERT(!r.err);
}

/* ---- connections -------------------------------------------------------------------- */

static void test_second_connection(void)
{
    struct agent_conn *c2 = connect_agent();
    ASSERT(strstr(agent_conn_agent(c2), "warren-guest-init"));
    struct exec_result a, b;
    start_exec(conn, &a,
               &(struct agent_exec_request){.argv = ARGV("sh", "-c", "sleep 0.2; echo 1")});
    start_exec(c2, &b, &(struct agent_exec_request){.argv = ARGV("echo", "2")});
    run_until(&b.done);
    run_until(&a.done);
    ASSERT_STREQ(a.out.data, "1\n");
    ASSERT_STREQ(b.out.data, "2\n");
    exec_result_free(&a);
    exec_result_free(&b);
    /* Closing cancels pending requests synchronously. */
    start_exec(c2, &b, &(struct agent_exec_request){.argv = ARGV("sleep", "10")});
    agent_conn_close(c2);
    ASSERT(b.done);
    ASSERT(b.error && b.error->status == ECANCELED);
    exec_result_free(&b);
}

static void test_malformed_frame(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    uint8_t hello[256];
    ASSERT(read(fd, hello, sizeof(hello)) > GI_FRAME_HEADER_SIZE);
    struct gi_frame_header h = {.length = 0xffffffffu, .type = GI_EXEC, .stream = 1};
    uint8_t bad[GI_FRAME_HEADER_SIZE];
    gi_header_encode(&h, bad);
    ASSERT_EQ(write(fd, bad, sizeof(bad)), (ssize_t)sizeof(bad));
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ASSERT_EQ(read(fd, hello, sizeof(hello)), 0); /* closed by the agent */
    close(fd);
    /* A bad TLV inside a well-framed EXEC also closes only that connection. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ASSERT(read(fd, hello, sizeof(hello)) > 0);
    uint8_t frame[GI_FRAME_HEADER_SIZE + 4] = {0};
    h = (struct gi_frame_header){.length = 4, .type = GI_EXEC, .stream = 1};
    gi_header_encode(&h, frame);
    ASSERT_EQ(write(fd, frame, sizeof(frame)), (ssize_t)sizeof(frame));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ASSERT_EQ(read(fd, hello, sizeof(hello)), 0);
    close(fd);
    /* The agent still serves the existing and new connections. */
    test_exec_stdout();
    struct agent_conn *c3 = connect_agent();
    agent_conn_close(c3);
}

/* ---- performance -------------------------------------------------------------------- */

static void test_performance(void)
{
    size_t n = 16u << 20;
    char *buf = malloc(n);
    memset(buf, 'x', n);
    struct file_result w, r;
    uint64_t t0 = uv_hrtime();
    write_file(tmp_path("perf.bin"), buf, n, 0644, 0, &w);
    uint64_t t1 = uv_hrtime();
    read_file(tmp_path("perf.bin"), 0, n, &r);
    uint64_t t2 = uv_hrtime();
    ASSERT(!w.err && !r.err && r.data.len == n);
    file_result_free(&r);
    fprintf(stderr, "   16 MiB write %.0f MB/s, read %.0f MB/s\n", n / ((t1 - t0) / 1e3),
            n / ((t2 - t1) / 1e3));
    int rounds = 200;
    uint64_t t3 = uv_hrtime();
    for (int i = 0; i < rounds; i++) {
        struct exec_result e;
        run_exec(&e, &(struct agent_exec_request){.argv = ARGV("/bin/true")});
        ASSERT_EQ(e.exit.exit_code, 0);
        exec_result_free(&e);
    }
    fprintf(stderr, "   exec /bin/true round trip %.0f us\n", (uv_hrtime() - t3) / 1e3 / rounds);
    free(buf);
}

/* ---- connection loss ---------------------------------------------------------------- */

static void on_conn_closed(void *data)
{
    *(bool *)data = true;
}

static void test_shutdown_and_loss(void)
{
    struct agent_conn *c2 = connect_agent();
    bool closed = false;
    agent_conn_on_close(conn, on_conn_closed, &closed);
    struct exec_result a;
    start_exec(conn, &a, &(struct agent_exec_request){.argv = ARGV("sleep", "30")});
    struct file_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_shutdown(c2, on_simple_done, &r, &err), 0);
    run_until(&r.done);
    ASSERT(!r.err);
    run_until(&a.done);
    ASSERT(a.error && a.error->status == ECONNRESET);
    run_until(&closed);
    exec_result_free(&a);
    int status;
    ASSERT_EQ(waitpid(agent_pid, &status, 0), agent_pid);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    agent_pid = 0;
    /* A request on a lost connection fails at once. */
    ASSERT(agent_sync(conn, on_simple_done, &r, &err) < 0);
    ASSERT_EQ(err->status, ECONNRESET);
    wr_error_free(err);
    agent_conn_close(conn);
    agent_conn_close(c2);
    conn = NULL;
}

static void test_connect_timeout(void)
{
    struct connect_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_connect_unix(loop, tmp_path("nobody.sock"), 50, on_connect, &r, &err), 0);
    run_until(&r.done);
    ASSERT(!r.conn && r.err && r.err->status == ETIMEDOUT);
    wr_error_free(r.err);
}

/* ---- channel transport and the host HELLO ----------------------------------------- */

static struct agent_conn *connect_fd(int fd, const void *initial, size_t n, uint32_t timeout_ms,
                                     struct wr_error **ret_err)
{
    struct connect_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_connect_fd(loop, fd, initial, n, timeout_ms, on_connect, &r, &err), 0);
    run_until(&r.done);
    *ret_err = r.err;
    return r.conn;
}

/* guest-init serving one end of a socketpair as a channel, the way it serves a
 * virtio-serial port (no accept: host sessions are told apart by the host's HELLO). */
static pid_t start_channel_agent(const char *binary, int guest_end)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        char fdarg[16];
        snprintf(fdarg, sizeof(fdarg), "%d", guest_end);
        execl(binary, "guest-init", "--jail", "--channel-fd", fdarg, (char *)NULL);
        _exit(127);
    }
    close(guest_end);
    return pid;
}

static void test_channel_sessions(const char *binary)
{
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); /* sv[1] inherited */
    fcntl(sv[0], F_SETFD, FD_CLOEXEC);
    pid_t pid = start_channel_agent(binary, sv[1]);
    struct wr_error *err = NULL;
    /* First session: a long exec, then the host goes away without the channel closing
     * (a restarted server reconnecting to the same virtio-serial port). */
    struct agent_conn *c1 = connect_fd(dup(sv[0]), NULL, 0, 5000, &err);
    ASSERT(c1 && !err);
    struct exec_result a;
    start_exec(c1, &a, &(struct agent_exec_request){.argv = ARGV("sh", "-c", "echo $$; sleep 30")});
    while (a.out.len == 0)
        uv_run(loop, UV_RUN_ONCE);
    pid_t sleeper = (pid_t)atoi(a.out.data);
    ASSERT(sleeper > 0);
    agent_conn_close(c1);
    ASSERT(a.done && a.error && a.error->status == ECANCELED);
    exec_result_free(&a);
    /* Second session on the same stream: its HELLO ends the first one's exec. */
    struct agent_conn *c2 = connect_fd(dup(sv[0]), NULL, 0, 5000, &err);
    ASSERT(c2 && !err);
    ASSERT(process_gone(sleeper));
    struct exec_result b;
    start_exec(c2, &b, &(struct agent_exec_request){.argv = ARGV("echo", "again")});
    run_until(&b.done);
    ASSERT_STREQ(b.out.data, "again\n");
    exec_result_free(&b);
    agent_conn_close(c2);
    /* The host end closing for good ends a --channel-fd guest-init. */
    close(sv[0]);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void put_frame(uint8_t **p, uint16_t type, uint32_t stream, const void *payload, size_t n)
{
    struct gi_frame_header h = {.length = (uint32_t)n, .type = type, .stream = stream};
    gi_header_encode(&h, *p);
    memcpy(*p + GI_FRAME_HEADER_SIZE, payload, n);
    *p += GI_FRAME_HEADER_SIZE + n;
}

/* A guest HELLO frame (VERSION 1) followed by nothing else. */
static size_t encode_guest_hello(struct gi_writer *w)
{
    gi_writer_start(w, GI_HELLO, 0);
    gi_writer_u64(w, GI_T_VERSION, GI_PROTO_VERSION);
    gi_writer_str(w, GI_T_AGENT, "fake-agent");
    ASSERT_EQ(gi_writer_finish(w), 0);
    return w->len;
}

/* Against a fake guest: the host says HELLO first; bytes handed over with the stream
 * (hybrid vsock's leftovers after "OK") are read first; frames before the guest's
 * HELLO are skipped. */
static void test_connect_fd_initial(void)
{
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct gi_writer w = {0};
    size_t hello_len = encode_guest_hello(&w);
    uint8_t initial[256], *p = initial;
    put_frame(&p, GI_STDOUT, 7, "stale", 5); /* left from an earlier session */
    memcpy(p, w.data, hello_len);
    p += hello_len;
    struct wr_error *err = NULL;
    struct agent_conn *c = connect_fd(sv[0], initial, (size_t)(p - initial), 5000, &err);
    ASSERT(c && !err);
    ASSERT_STREQ(agent_conn_agent(c), "fake-agent");
    uint8_t buf[256];
    ASSERT(read(sv[1], buf, sizeof(buf)) >= GI_FRAME_HEADER_SIZE);
    struct gi_frame_header h;
    ASSERT_EQ(gi_header_decode(buf, &h), 0);
    ASSERT(h.type == GI_HELLO && h.stream == 0);
    struct gi_reader rd;
    struct gi_tlv t;
    uint64_t version = 0;
    gi_reader_init(&rd, buf + GI_FRAME_HEADER_SIZE, h.length);
    while (gi_reader_next(&rd, &t) > 0)
        if (t.tag == GI_T_VERSION)
            gi_tlv_u64(&t, &version);
    ASSERT_EQ(version, GI_PROTO_VERSION);
    /* A HELLO in the middle of a session (a reopened port) changes nothing. */
    ASSERT_EQ(write(sv[1], w.data, hello_len), (ssize_t)hello_len);
    struct file_result r = {0};
    ASSERT_EQ(agent_sync(c, on_simple_done, &r, &err), 0);
    uint8_t result[GI_FRAME_HEADER_SIZE];
    ASSERT(read(sv[1], buf, sizeof(buf)) >= GI_FRAME_HEADER_SIZE); /* the SYNC */
    gi_header_decode(buf, &h);
    ASSERT_EQ(h.type, GI_SYNC);
    p = result;
    put_frame(&p, GI_RESULT, h.stream, NULL, 0);
    ASSERT_EQ(write(sv[1], result, sizeof(result)), (ssize_t)sizeof(result));
    run_until(&r.done);
    ASSERT(!r.err);
    agent_conn_close(c);
    gi_writer_free(&w);
    close(sv[1]);
}

static void test_connect_fd_errors(void)
{
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct wr_error *err = NULL;
    /* Nobody says HELLO: the timeout ends it. */
    ASSERT(!connect_fd(sv[0], NULL, 0, 100, &err));
    ASSERT(err && err->status == ETIMEDOUT);
    wr_error_free(err);
    close(sv[1]);
    /* A guest of another protocol version is refused. */
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct gi_writer w = {0};
    gi_writer_start(&w, GI_HELLO, 0);
    gi_writer_u64(&w, GI_T_VERSION, 99);
    ASSERT_EQ(gi_writer_finish(&w), 0);
    ASSERT(!connect_fd(sv[0], w.data, w.len, 5000, &err));
    ASSERT(err && err->status == EPROTONOSUPPORT);
    wr_error_free(err);
    err = NULL;
    gi_writer_free(&w);
    close(sv[1]);
    ASSERT(agent_connect_fd(loop, -1, NULL, 0, 100, on_connect, NULL, &err) < 0);
    wr_error_free(err);
}

int main(void)
{
    const char *dir = getenv("WARREN_BUILD_DIR");
    char binary[4096];
    snprintf(binary, sizeof(binary), "%s/guest-init", dir ? dir : ".");
    if (access(binary, X_OK) != 0)
        SKIP("guest-init binary not built (set WARREN_BUILD_DIR)");
    signal(SIGPIPE, SIG_IGN);
    ASSERT(mkdtemp(tmpdir));
    snprintf(sock_path, sizeof(sock_path), "%s/agent.sock", tmpdir);
    loop = uv_default_loop();
    start_agent(binary);
    conn = connect_agent();
    ASSERT(strstr(agent_conn_agent(conn), "warren-guest-init"));
    RUN(test_exec_stdout);
    RUN(test_exec_stderr_and_code);
    RUN(test_exec_env_and_cwd);
    RUN(test_exec_signal_death);
    RUN(test_exec_not_found);
    RUN(test_exec_missing_cwd);
    RUN(test_exec_stdin);
    RUN(test_exec_big_stdin);
    RUN(test_exec_timeout);
    RUN(test_exec_background_linger);
    RUN(test_exec_signal);
    RUN(test_exec_large_output);
    RUN(test_exec_concurrent);
    RUN(test_file_round_trip);
    RUN(test_file_append_and_dirs);
    RUN(test_file_errors);
    RUN(test_stat_memstats_sync);
    RUN(test_second_connection);
    RUN(test_malformed_frame);
    RUN(test_performance);
    RUN(test_shutdown_and_loss);
    RUN(test_connect_timeout);
    fprintf(stderr, "-- test_channel_sessions\n");
    test_channel_sessions(binary);
    RUN(test_connect_fd_initial);
    RUN(test_connect_fd_errors);
    if (agent_pid > 0)
        kill(agent_pid, SIGKILL);
    uv_run(loop, UV_RUN_DEFAULT);
    wr_rm_rf(tmpdir);
    fprintf(stderr, "all agent tests passed\n");
    return 0;
}
