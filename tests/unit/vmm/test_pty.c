/* The vmm's terminal API (vmm/pty.c) on a real sandbox: open, type, resize, detach and
 * reattach, reattach from a second vmm on the same state directory (a restarted warren),
 * the idle policy around an attached terminal, events, close and list. A jail sandbox
 * (needs root, skipped otherwise); WARREN_TEST_PTY_BACKEND=qemu runs the same on a VM
 * (the virtio-serial channel; slow under TCG). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "test.h"
#include "vmm/backends/confine.h"
#include "vmm/backends/jail/jailer.h"
#include "vmm/backends/net.h"
#include "vmm/backends/vmfs.h"
#include "vmm/vmm.h"

static uv_loop_t *loop;
static char state_dir[] = "/tmp/warren-test-pty-vmm-XXXXXX";
static char guest_init[4096];
static struct vmm *vmm;
static char sandbox[64];
static const char *backend = "jail";

static void run_until(const bool *flag)
{
    uint64_t deadline = uv_hrtime() / 1000000 + 60000;
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

static struct vmm *open_vmm(void)
{
    struct vmm *v = NULL;
    struct wr_error *err = NULL;
    struct vmm_options o = {.loop = loop,
                            .state_dir = state_dir,
                            .backend = backend,
                            .guest_init_path = guest_init,
                            .idle_reclaim_s = -1,
                            .idle_pause_s = 1,
                            .idle_stop_s = -1};
    if (vmm_open(&o, &v, &err) < 0) {
        fprintf(stderr, "vmm_open: %s\n", err->msg);
        ASSERT(0);
    }
    return v;
}

struct sandbox_result {
    bool done;
    char state[32];
    struct wr_error *err;
};

static void on_sandbox(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct sandbox_result *r = data;
    r->done = true;
    r->err = err;
    if (info) {
        snprintf(sandbox, sizeof(sandbox), "%s", info->row.name);
        snprintf(r->state, sizeof(r->state), "%s", info->row.state);
    }
}

static const char *sandbox_state(void)
{
    static char state[32];
    struct vmm_sandbox_info *list;
    size_t n;
    struct wr_error *err = NULL;
    ASSERT_EQ(vmm_sandbox_list(vmm, &list, &n, &err), 0);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(list[i].row.name, sandbox))
            snprintf(state, sizeof(state), "%s", list[i].row.state);
        vmm_sandbox_info_clear(&list[i]);
    }
    free(list);
    return state;
}

/* ---- a terminal --------------------------------------------------------------------- */

struct term {
    struct vmm_pty *pty;
    bool attached, ended;
    uint64_t id;
    struct wr_buf out;
    struct agent_pty_end end;
    struct wr_error *err;
};

static void t_attached(void *data, uint64_t id, uint64_t pid)
{
    struct term *t = data;
    (void)pid;
    t->attached = true;
    t->id = id;
}

static void t_output(void *data, const char *buf, size_t len)
{
    struct term *t = data;
    struct wr_error *err = NULL;
    ASSERT_EQ(wr_buf_append(&t->out, buf, len), 0);
    ASSERT_EQ(vmm_pty_ack(t->pty, len, &err), 0);
}

static void t_end(void *data, const struct agent_pty_end *end, struct wr_error *err)
{
    struct term *t = data;
    ASSERT(!t->ended);
    t->ended = true;
    t->pty = NULL;
    if (end)
        t->end = *end;
    t->err = err;
}

static const struct vmm_pty_handlers handlers = {
    .attached = t_attached, .output = t_output, .end = t_end};

static void term_init(struct term *t)
{
    memset(t, 0, sizeof(*t));
    wr_buf_init(&t->out, 1u << 20);
}

static void term_free(struct term *t)
{
    wr_buf_free(&t->out);
    wr_error_free(t->err);
}

static void wait_output(struct term *t, const char *needle)
{
    uint64_t deadline = uv_hrtime() / 1000000 + 20000;
    while (!t->out.data || !memmem(t->out.data, t->out.len, needle, strlen(needle))) {
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
    ASSERT_EQ(vmm_pty_write(t->pty, s, strlen(s), &err), 0);
}

static void attach(struct term *t, uint64_t id)
{
    struct wr_error *err = NULL;
    term_init(t);
    ASSERT_EQ(vmm_pty_attach(vmm, sandbox, id, &handlers, t, &t->pty, &err), 0);
    run_until(&t->attached);
}

static void detach(struct term *t)
{
    vmm_pty_detach(t->pty);
    run_until(&t->ended);
    ASSERT(!t->err);
    ASSERT_EQ(t->end.reason, AGENT_PTY_DETACHED);
}

struct listed {
    bool done;
    size_t n;
    struct agent_pty_info first;
    struct wr_error *err;
};

static void on_listed(void *data, const struct agent_pty_info *list, size_t n, struct wr_error *err)
{
    struct listed *l = data;
    l->done = true;
    l->n = n;
    l->err = err;
    if (n)
        l->first = list[0];
}

static void on_closed(void *data, struct wr_error *err)
{
    struct listed *l = data;
    l->done = true;
    l->err = err;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_create(void)
{
    struct sandbox_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(vmm_sandbox_create(vmm, &(struct vmm_create_request){.name = "pty-test"}, on_sandbox,
                                 &r, &err),
              0);
    run_until(&r.done);
    if (r.err)
        fprintf(stderr, "create: %s\n", r.err->msg);
    ASSERT(!r.err);
}

static uint64_t shell_id;

static void test_open_type_resize(void)
{
    struct term t;
    struct wr_error *err = NULL;
    term_init(&t);
    ASSERT_EQ(vmm_pty_open(vmm, sandbox, &(struct vmm_pty_request){.rows = 24, .cols = 80},
                           &handlers, &t, &t.pty, &err),
              0);
    /* Input before the attachment is refused; a size is kept for it. */
    ASSERT(vmm_pty_write(t.pty, "x", 1, &err) < 0 && err->status == EAGAIN);
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(vmm_pty_resize(t.pty, 33, 99, &err), 0);
    run_until(&t.attached);
    shell_id = t.id;
    type(&t, "echo hel''lo; stty size; echo TERM=$TERM\n");
    wait_output(&t, "hello");
    wait_output(&t, "33 99");
    wait_output(&t, "TERM=xterm-256color");
    ASSERT(vmm_pty_resize(t.pty, 0, 80, &err) < 0 && err->status == EINVAL);
    wr_error_free(TAKE_PTR(err));
    ASSERT(vmm_pty_resize(t.pty, 10, 1001, &err) < 0 && err->status == EINVAL);
    wr_error_free(TAKE_PTR(err));
    char big[VMM_PTY_MAX_INPUT + 1];
    memset(big, 'a', sizeof(big));
    ASSERT(vmm_pty_write(t.pty, big, sizeof(big), &err) < 0 && err->status == EMSGSIZE);
    wr_error_free(TAKE_PTR(err));
    /* Attached, the sandbox is in use: the idle policy (pause after 1 s) leaves it. */
    run_for(6000);
    ASSERT_STREQ(sandbox_state(), "running");
    type(&t, "export KEEP=me; echo before-deta''ch\n");
    wait_output(&t, "before-detach");
    detach(&t);
    term_free(&t);
}

static void test_idle_pause_and_reattach(void)
{
    /* Detached, the sandbox is idle and gets paused; attaching resumes it. */
    for (int i = 0; i < 200 && strcmp(sandbox_state(), "paused") != 0; i++)
        run_for(100);
    ASSERT_STREQ(sandbox_state(), "paused");
    struct term t;
    attach(&t, shell_id);
    ASSERT_STREQ(sandbox_state(), "running");
    wait_output(&t, "before-detach"); /* the scrollback */
    type(&t, "echo keep=$KEEP\n");
    wait_output(&t, "keep=me");
    detach(&t);
    term_free(&t);
}

static void test_restart(void)
{
    /* A new vmm on the same state directory (a restarted warren) finds the shell. */
    struct term t;
    term_init(&t);
    struct wr_error *err = NULL;
    ASSERT_EQ(vmm_pty_attach(vmm, sandbox, shell_id, &handlers, &t, &t.pty, &err), 0);
    run_until(&t.attached);
    vmm_close(vmm);
    ASSERT(t.ended && t.err && t.err->status == ECANCELED);
    term_free(&t);
    uv_run(loop, UV_RUN_NOWAIT);
    vmm = open_vmm();
    attach(&t, shell_id);
    wait_output(&t, "keep=me");
    type(&t, "echo again=$KEEP\n");
    wait_output(&t, "again=me");
    type(&t, "exit 5\n");
    run_until(&t.ended);
    ASSERT(!t.err);
    ASSERT_EQ(t.end.reason, AGENT_PTY_EXITED);
    ASSERT_EQ(t.end.exit.exit_code, 5);
    term_free(&t);
}

static void test_list_close_events(void)
{
    struct listed l = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(vmm_pty_list(vmm, sandbox, on_listed, &l, &err), 0);
    run_until(&l.done);
    ASSERT(!l.err && l.n == 1);
    ASSERT(l.first.id == shell_id && !l.first.running && l.first.exit_code == 5);
    memset(&l, 0, sizeof(l));
    ASSERT_EQ(vmm_pty_close(vmm, sandbox, shell_id, on_closed, &l, &err), 0);
    run_until(&l.done);
    ASSERT(!l.err);
    memset(&l, 0, sizeof(l));
    ASSERT_EQ(vmm_pty_close(vmm, sandbox, shell_id, on_closed, &l, &err), 0);
    run_until(&l.done);
    ASSERT(l.err && l.err->status == ENOENT);
    wr_error_free(l.err);
    /* Unknown sessions and sandboxes. */
    struct term t;
    term_init(&t);
    ASSERT_EQ(vmm_pty_attach(vmm, sandbox, 4242, &handlers, &t, &t.pty, &err), 0);
    run_until(&t.ended);
    ASSERT(t.err && t.err->status == ENOENT);
    term_free(&t);
    term_init(&t);
    ASSERT(vmm_pty_attach(vmm, "no-such-sandbox", 1, &handlers, &t, &t.pty, &err) < 0);
    wr_error_free(TAKE_PTR(err));
    ASSERT(vmm_pty_open(vmm, sandbox, &(struct vmm_pty_request){.rows = 0, .cols = 80}, &handlers,
                        &t, &t.pty, &err) < 0);
    ASSERT_EQ(err->status, EINVAL);
    wr_error_free(TAKE_PTR(err));
    term_free(&t);
    struct store_event_row *ev;
    size_t n;
    int opened = 0, closed = 0;
    ASSERT_EQ(vmm_sandbox_events(vmm, sandbox, NULL, 100, &ev, &n, &err), 0);
    for (size_t i = 0; i < n; i++) {
        opened += !strcmp(ev[i].kind, "terminal-opened");
        closed += !strcmp(ev[i].kind, "terminal-closed");
        store_event_clear(&ev[i]);
    }
    free(ev);
    ASSERT_EQ(opened, 1);
    ASSERT_EQ(closed, 2); /* the exit, then the close */
}

static void test_destroy(void)
{
    struct sandbox_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(vmm_sandbox_destroy(vmm, sandbox, on_sandbox, &r, &err), 0);
    run_until(&r.done);
    ASSERT(!r.err);
}

int main(int argc, char **argv)
{
    /* The backends run their helpers from /proc/self/exe: this binary, here, which must
     * dispatch them as warren's main() does (and never run the tests again). */
    if (argc >= 2 && !strcmp(argv[1], "__jail"))
        return vmm_jailer_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "__confine"))
        return vmm_confine_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "__netattach"))
        return vmm_netattach_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "__vmfs"))
        return vmm_vmfs_main(argc, argv);
    if (argc >= 2)
        return 2;
    if (getenv("WARREN_TEST_PTY_BACKEND"))
        backend = getenv("WARREN_TEST_PTY_BACKEND");
    const char *dir = getenv("WARREN_BUILD_DIR");
    snprintf(guest_init, sizeof(guest_init), "%s/guest-init", dir ? dir : ".");
    if (access(guest_init, X_OK) != 0)
        SKIP("guest-init binary not built (set WARREN_BUILD_DIR)");
    if (geteuid() != 0)
        SKIP("the sandbox backends need root here");
    if (dir && !getenv("WARREN_GUEST_DIR")) {
        char guest[4096];
        snprintf(guest, sizeof(guest), "%s/guest", dir);
        setenv("WARREN_GUEST_DIR", guest, 0); /* VM backends: the kernel next to warren */
    }
    signal(SIGPIPE, SIG_IGN);
    ASSERT(mkdtemp(state_dir));
    loop = uv_default_loop();
    vmm = open_vmm();
    RUN(test_create);
    RUN(test_open_type_resize);
    RUN(test_idle_pause_and_reattach);
    RUN(test_restart);
    RUN(test_list_close_events);
    RUN(test_destroy);
    vmm_close(vmm);
    uv_run(loop, UV_RUN_DEFAULT);
    wr_rm_rf(state_dir);
    fprintf(stderr, "all vmm pty tests passed\n");
    return 0;
}
