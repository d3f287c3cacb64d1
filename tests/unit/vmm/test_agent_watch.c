/* Watching directories (WATCH, PROTOCOL.md "Watching directories") and the owner and group
 * names of STAT and LIST_DIR, through vmm/agent.c against the real guest-init binary, run
 * as an ordinary child process in --jail mode on a listening unix socket. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <uv.h>

#include "guest-init/proto.h"
#include "test.h"
#include "vmm/agent.h"

static uv_loop_t *loop;
static char tmpdir[] = "/tmp/warren-test-watch-XXXXXX";
static char sock_path[108];
static pid_t agent_pid;
static struct agent_conn *conn;

static void run_until(const bool *flag)
{
    uint64_t deadline = uv_hrtime() / 1000000 + 20000;
    while (!*flag) {
        ASSERT(uv_hrtime() / 1000000 < deadline);
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void on_timer(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

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

static char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

struct connect_result {
    bool done;
    struct agent_conn *conn;
};

static void on_connect(void *data, struct agent_conn *c, struct wr_error *err)
{
    struct connect_result *r = data;
    r->done = true;
    r->conn = c;
    wr_error_free(err);
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
    struct connect_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_connect_unix(loop, sock_path, 5000, on_connect, &r, &err), 0);
    run_until(&r.done);
    ASSERT(r.conn);
    conn = r.conn;
}

/* ---- a watch and what it saw ------------------------------------------------------------ */

struct watch {
    bool started, ended;
    struct wr_error *err;
    char seen[8192]; /* "type:name\n" lines */
    struct agent_watch *handle;
};

static void w_started(void *data)
{
    ((struct watch *)data)->started = true;
}

static void w_event(void *data, const char *name, unsigned type)
{
    struct watch *w = data;
    size_t n = strlen(w->seen);
    snprintf(w->seen + n, sizeof(w->seen) - n, "%u:%s\n", type, name);
}

static void w_end(void *data, struct wr_error *err)
{
    struct watch *w = data;
    w->ended = true;
    w->err = err;
}

static const struct agent_watch_handlers handlers = {
    .started = w_started, .event = w_event, .end = w_end};

static void watch_start(struct watch *w, const char *path, bool recursive)
{
    memset(w, 0, sizeof(*w));
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_watch(conn, path, recursive, &handlers, w, &w->handle, &err), 0);
    bool either = false;
    uint64_t deadline = uv_hrtime() / 1000000 + 20000;
    while (!either) {
        ASSERT(uv_hrtime() / 1000000 < deadline);
        uv_run(loop, UV_RUN_ONCE);
        either = w->started || w->ended;
    }
}

static bool saw(const struct watch *w, const char *line)
{
    char want[600];
    snprintf(want, sizeof want, "%s\n", line);
    return strstr(w->seen, want) != NULL;
}

/* Waits until line was seen (or 5 s). */
static void expect(struct watch *w, const char *line)
{
    for (int i = 0; i < 100 && !saw(w, line); i++)
        run_for(50);
    if (!saw(w, line))
        fprintf(stderr, "missing '%s' in:\n%s", line, w->seen);
    ASSERT(saw(w, line));
}

static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_watch_events(void)
{
    ASSERT_EQ(mkdir(tmp_path("w"), 0755), 0);
    struct watch w;
    watch_start(&w, tmp_path("w"), false);
    ASSERT(w.started && !w.ended);
    write_text(tmp_path("w/a.txt"), "x");
    expect(&w, "1:a.txt");
    expect(&w, "2:a.txt");
    ASSERT_EQ(chmod(tmp_path("w/a.txt"), 0600), 0);
    expect(&w, "5:a.txt");
    ASSERT_EQ(rename(tmp_path("w/a.txt"), tmp_path("w/b.txt")), 0);
    expect(&w, "4:a.txt");
    expect(&w, "1:b.txt");
    ASSERT_EQ(unlink(tmp_path("w/b.txt")), 0);
    expect(&w, "3:b.txt");
    /* Not recursive: a subdirectory's files are not reported. */
    ASSERT_EQ(mkdir(tmp_path("w/sub"), 0755), 0);
    expect(&w, "1:sub");
    write_text(tmp_path("w/sub/deep.txt"), "y");
    run_for(200);
    ASSERT(!strstr(w.seen, "deep.txt"));
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_unwatch(w.handle, &err), 0);
    run_until(&w.ended);
    ASSERT(!w.err);
}

static void test_watch_recursive(void)
{
    ASSERT_EQ(mkdir(tmp_path("r"), 0755), 0);
    ASSERT_EQ(mkdir(tmp_path("r/old"), 0755), 0);
    struct watch w;
    watch_start(&w, tmp_path("r"), true);
    ASSERT(w.started);
    write_text(tmp_path("r/old/f.txt"), "1"); /* a directory there before the watch */
    expect(&w, "1:old/f.txt");
    ASSERT_EQ(mkdir(tmp_path("r/new"), 0755), 0);
    expect(&w, "1:new");
    write_text(tmp_path("r/new/g.txt"), "2"); /* one made after it began */
    expect(&w, "2:new/g.txt");
    /* The watched directory itself going ends the watch with ENOENT. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_path("r"));
    ASSERT_EQ(system(cmd), 0);
    run_until(&w.ended);
    ASSERT(w.err && w.err->status == ENOENT);
    wr_error_free(w.err);
}

static void test_watch_errors_and_limit(void)
{
    struct watch w;
    watch_start(&w, tmp_path("missing"), false);
    ASSERT(w.ended && !w.started && w.err && w.err->status == ENOENT);
    wr_error_free(w.err);
    write_text(tmp_path("plain"), "");
    watch_start(&w, tmp_path("plain"), false);
    ASSERT(w.ended && w.err && w.err->status == ENOTDIR);
    wr_error_free(w.err);
    /* At most GI_WATCH_MAX at once; one more is EMFILE, and a stopped one frees a place. */
    static struct watch many[GI_WATCH_MAX + 1];
    ASSERT_EQ(mkdir(tmp_path("m"), 0755), 0);
    for (unsigned i = 0; i < GI_WATCH_MAX; i++) {
        watch_start(&many[i], tmp_path("m"), false);
        ASSERT(many[i].started);
    }
    watch_start(&many[GI_WATCH_MAX], tmp_path("m"), false);
    ASSERT(many[GI_WATCH_MAX].ended && many[GI_WATCH_MAX].err &&
           many[GI_WATCH_MAX].err->status == EMFILE);
    wr_error_free(many[GI_WATCH_MAX].err);
    struct wr_error *err = NULL;
    ASSERT_EQ(agent_unwatch(many[0].handle, &err), 0);
    run_until(&many[0].ended);
    watch_start(&many[0], tmp_path("m"), false);
    ASSERT(many[0].started);
    for (unsigned i = 0; i < GI_WATCH_MAX; i++) {
        ASSERT_EQ(agent_unwatch(many[i].handle, &err), 0);
        run_until(&many[i].ended);
        ASSERT(!many[i].err);
    }
}

/* ---- owner and group names ----------------------------------------------------------------- */

struct stat_result {
    bool done;
    struct agent_stat st;
    struct agent_dir_entry first;
    char first_owner[160];
    struct wr_error *err;
};

static void on_stat(void *data, const struct agent_stat *st, struct wr_error *err)
{
    struct stat_result *r = data;
    r->done = true;
    r->err = err;
    if (st)
        r->st = *st;
}

static void on_list(void *data, const struct agent_dir_entry *entries, size_t n, bool truncated,
                    struct wr_error *err)
{
    struct stat_result *r = data;
    (void)truncated;
    r->done = true;
    r->err = err;
    if (n) {
        snprintf(r->first_owner, sizeof r->first_owner, "%s:%s", entries[0].owner,
                 entries[0].group);
    }
}

static void test_owner_group(void)
{
    /* guest-init runs as the test's user here: its names come from the host's files. */
    struct stat_result r = {0};
    struct wr_error *err = NULL;
    write_text(tmp_path("owned.txt"), "o");
    ASSERT_EQ(agent_stat(conn, tmp_path("owned.txt"), on_stat, &r, &err), 0);
    run_until(&r.done);
    ASSERT(!r.err);
    if (getuid() == 0) {
        ASSERT_STREQ(r.st.owner, "root");
        ASSERT_STREQ(r.st.group, "root");
    } else {
        ASSERT(r.st.owner[0] && r.st.group[0]);
    }
    ASSERT_EQ(mkdir(tmp_path("o"), 0755), 0);
    write_text(tmp_path("o/x"), "x");
    ASSERT(chown(tmp_path("o/x"), 4242, 4343) == 0 || getuid() != 0);
    memset(&r, 0, sizeof r);
    ASSERT_EQ(agent_list_dir(conn, tmp_path("o"), 1, 10, on_list, &r, &err), 0);
    run_until(&r.done);
    ASSERT(!r.err);
    if (getuid() == 0)
        ASSERT_STREQ(r.first_owner, "4242:4343"); /* no names: the numbers */
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
    RUN(test_watch_events);
    RUN(test_watch_recursive);
    RUN(test_watch_errors_and_limit);
    RUN(test_owner_group);
    agent_conn_close(conn);
    kill(agent_pid, SIGKILL);
    waitpid(agent_pid, NULL, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    wr_rm_rf(tmpdir);
    fprintf(stderr, "all watch tests passed\n");
    return 0;
}
