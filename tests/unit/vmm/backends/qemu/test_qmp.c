/* QMP client against a real QEMU with no guest (-machine none): cheap, and it answers
 * every command the qemu backend uses except balloon (which needs a device). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "vmm/backends/qemu/qmp.h"

static uv_loop_t *loop;
static char dir[] = "/tmp/warren-test-qmp-XXXXXX";
static char *qmp_path;

struct result {
    bool done;
    struct qmp *qmp;
    char *ret; /* the reply's "return", printed */
    struct wr_error *err;
    char events[256]; /* event names, comma-separated; "DROP" for a dropped connection */
};

static void run_until(bool *done)
{
    uint64_t deadline = wr_now_ms() + 10000;
    while (!*done && wr_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    ASSERT(*done);
}

/* QEMU greets within a second on a quiet machine; a loaded CI machine has taken over 10. */
#define QEMU_START_TIMEOUT_MS 30000

static pid_t start_qemu(void)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        /* A failed assertion must not leave QEMU holding ctest's output pipe. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        _cleanup_free_ char *qmp_arg = wr_asprintf("unix:%s,server=on,wait=off", qmp_path);
        execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "none", "-nodefaults",
               "-display", "none", "-qmp", qmp_arg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void on_ready(void *data, struct qmp *qmp, struct wr_error *err)
{
    struct result *r = data;
    r->qmp = qmp;
    r->err = err;
    r->done = true;
}

static void on_reply(void *data, const cJSON *ret, struct wr_error *err)
{
    struct result *r = data;
    r->err = err;
    if (ret) {
        char *text = cJSON_PrintUnformatted(ret);
        r->ret = wr_strdup(text);
        cJSON_free(text);
    }
    r->done = true;
}

static void on_event(void *data, const char *event, const cJSON *message)
{
    struct result *r = data;
    (void)message;
    size_t n = strlen(r->events);
    snprintf(r->events + n, sizeof(r->events) - n, "%s%s", n ? "," : "", event ? event : "DROP");
}

static void result_clear(struct result *r)
{
    free(r->ret);
    wr_error_free(r->err);
    r->ret = NULL;
    r->err = NULL;
    r->done = false;
}

/* Runs command and returns its printed "return" (or NULL with *ret_err set). */
static void execute(struct qmp *qmp, const char *command, cJSON *args, struct result *r)
{
    result_clear(r);
    struct wr_error *err = NULL;
    ASSERT(qmp_execute(qmp, command, args, on_reply, r, &err) == 0);
    run_until(&r->done);
}

static struct qmp *connect_ok(uint32_t timeout_ms)
{
    struct result r = {0};
    struct wr_error *err = NULL;
    ASSERT(qmp_connect(loop, qmp_path, timeout_ms, on_ready, &r, NULL, &err) == 0);
    run_until(&r.done);
    if (r.err)
        fprintf(stderr, "%s\n", r.err->msg);
    ASSERT(r.err == NULL && r.qmp != NULL);
    return r.qmp;
}

static void test_connect_timeout(void)
{
    struct result r = {0};
    struct wr_error *err = NULL;
    _cleanup_free_ char *missing = wr_path_join(dir, "missing.sock");
    ASSERT(qmp_connect(loop, missing, 150, on_ready, &r, NULL, &err) == 0);
    run_until(&r.done);
    ASSERT(r.qmp == NULL && r.err && r.err->status == ETIMEDOUT);
    result_clear(&r);
}

/* Connecting before QEMU has created its socket retries until it is there. */
static void test_commands_and_events(void)
{
    pid_t pid = start_qemu();
    struct qmp *qmp = connect_ok(QEMU_START_TIMEOUT_MS);
    struct result r = {0}, events = {0};
    qmp_set_event_cb(qmp, on_event, &events);

    execute(qmp, "query-status", NULL, &r);
    ASSERT(r.err == NULL && strstr(r.ret, "\"status\":\"running\""));
    execute(qmp, "stop", NULL, &r);
    ASSERT(r.err == NULL);
    execute(qmp, "query-status", NULL, &r);
    ASSERT(strstr(r.ret, "\"status\":\"paused\""));
    execute(qmp, "cont", NULL, &r);
    ASSERT(r.err == NULL);
    ASSERT(strstr(events.events, "STOP") && strstr(events.events, "RESUME"));

    /* Errors carry QEMU's class and description. */
    execute(qmp, "no-such-command", NULL, &r);
    ASSERT(r.err && strstr(r.err->msg, "CommandNotFound"));
    cJSON *args = cJSON_CreateObject();
    cJSON_AddNumberToObject(args, "value", 64 << 20);
    execute(qmp, "balloon", args, &r);
    ASSERT(r.err && strstr(r.err->msg, "DeviceNotActive"));
    execute(qmp, "query-balloon", NULL, &r);
    ASSERT(r.err != NULL);

    /* quit: the reply, then SHUTDOWN, then the connection drops. */
    execute(qmp, "quit", NULL, &r);
    ASSERT(r.err == NULL);
    uint64_t deadline = wr_now_ms() + 5000;
    while (!strstr(events.events, "DROP") && wr_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    ASSERT(strstr(events.events, "DROP"));
    /* After the drop nothing can be sent. */
    struct wr_error *err = NULL;
    ASSERT(qmp_execute(qmp, "query-status", NULL, on_reply, &r, &err) < 0);
    wr_error_free(err);
    qmp_close(qmp);
    result_clear(&r);
    int status;
    ASSERT(waitpid(pid, &status, 0) == pid);
}

/* Closing with a command in flight fails it with ECANCELED, synchronously. */
static void test_close_cancels(void)
{
    pid_t pid = start_qemu();
    struct qmp *qmp = connect_ok(QEMU_START_TIMEOUT_MS);
    struct result r = {0};
    struct wr_error *err = NULL;
    ASSERT(qmp_execute(qmp, "query-status", NULL, on_reply, &r, &err) == 0);
    qmp_close(qmp);
    ASSERT(r.done && r.err && r.err->status == ECANCELED);
    result_clear(&r);
    /* One client at a time: a cancelled connect must also let go of the socket. */
    struct qmp *pending = NULL;
    ASSERT(qmp_connect(loop, qmp_path, 5000, on_ready, &r, &pending, &err) == 0);
    qmp_close(pending);
    uv_run(loop, UV_RUN_NOWAIT);
    ASSERT(!r.done);

    _cleanup_free_ char *json = NULL;
    ASSERT(qmp_execute_sync(qmp_path, "query-status", 5000, &json, &err) == 0);
    ASSERT(strstr(json, "\"running\""));
    ASSERT(qmp_execute_sync(qmp_path, "no-such-command", 5000, NULL, &err) < 0);
    ASSERT(strstr(err->msg, "no-such-command"));
    wr_error_free(err);
    err = NULL;
    ASSERT(qmp_execute_sync(qmp_path, "quit", 5000, NULL, &err) == 0);
    int status;
    ASSERT(waitpid(pid, &status, 0) == pid);
    ASSERT(qmp_execute_sync(qmp_path, "quit", 200, NULL, &err) < 0);
    wr_error_free(err);
}

int main(void)
{
    if (system("command -v qemu-system-x86_64 >/dev/null 2>&1") != 0)
        SKIP("qemu-system-x86_64 is not installed");
    signal(SIGPIPE, SIG_IGN);
    ASSERT(mkdtemp(dir) != NULL);
    qmp_path = wr_path_join(dir, "qmp.sock");
    loop = uv_default_loop();
    RUN(test_connect_timeout);
    RUN(test_commands_and_events);
    (void)unlink(qmp_path);
    RUN(test_close_cancels);
    uv_run(loop, UV_RUN_DEFAULT); /* the close callbacks */
    ASSERT(uv_loop_close(loop) == 0);
    (void)unlink(qmp_path);
    (void)rmdir(dir);
    free(qmp_path);
    return 0;
}
