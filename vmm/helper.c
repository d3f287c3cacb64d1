/* See helper.h. */
#include <signal.h>
#include <string.h>

#include "helper.h"

#define OUTPUT_MAX 4096

/* One run. Freed when its last libuv handle is through its close callback. */
struct helper_run {
    uv_process_t process;
    uv_pipe_t out, err;
    uv_timer_t timer;
    struct wr_buf out_buf, err_buf;
    char scratch[OUTPUT_MAX];       /* read buffer; each read is copied out at once */
    vmm_helper_cb cb;               /* a pid helper ... */
    vmm_helper_output_cb output_cb; /* ... or one that answers with text */
    void *data;
    char *what;
    uint32_t timeout_ms;
    int pending;      /* exit + EOF on stdout + EOF on stderr still to come */
    int open_handles; /* handles not yet through their close callback */
    int64_t exit_status;
    int term_signal;
    bool timed_out;
};

static void on_handle_closed(uv_handle_t *handle)
{
    struct helper_run *run = handle->data;
    if (--run->open_handles > 0)
        return;
    wr_buf_free(&run->out_buf);
    wr_buf_free(&run->err_buf);
    free(run->what);
    free(run);
}

static void close_all(struct helper_run *run)
{
    uv_handle_t *handles[] = {(uv_handle_t *)&run->timer, (uv_handle_t *)&run->process,
                              (uv_handle_t *)&run->out, (uv_handle_t *)&run->err};
    for (size_t i = 0; i < WR_ARRAY_SIZE(handles); i++)
        if (!uv_is_closing(handles[i]))
            uv_close(handles[i], on_handle_closed);
}

/* Parses "<pid>\n". */
static pid_t parse_pid(const char *text)
{
    if (!text)
        return 0;
    char *end;
    long pid = strtol(text, &end, 10);
    if (end == text || (*end != '\n' && *end != 0) || pid <= 1 || pid > INT32_MAX)
        return 0;
    return (pid_t)pid;
}

static struct wr_error *run_error(struct helper_run *run)
{
    struct wr_error *err = NULL;
    char *msg = run->err_buf.data;
    size_t n = msg ? strlen(msg) : 0;
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    if (run->timed_out)
        wr_error_set(&err, ETIMEDOUT, "%s did not finish within %u ms", run->what, run->timeout_ms);
    else if (n > 0)
        wr_error_set(&err, EIO, "%s", msg);
    else
        wr_error_set(&err, EIO, "%s exited (status %lld, signal %d) without a pid", run->what,
                     (long long)run->exit_status, run->term_signal);
    return err;
}

static void settle(struct helper_run *run)
{
    if (--run->pending > 0)
        return;
    bool exited_ok = !run->timed_out && run->exit_status == 0 && run->term_signal == 0;
    if (run->output_cb) {
        struct wr_error *err = exited_ok ? NULL : run_error(run);
        run->output_cb(run->data, run->out_buf.data ? run->out_buf.data : "", run->out_buf.len,
                       err);
        close_all(run);
        return;
    }
    pid_t pid = exited_ok ? parse_pid(run->out_buf.data) : 0;
    struct wr_error *err = pid ? NULL : run_error(run);
    close_all(run);
    run->cb(run->data, pid, err);
}

static void on_exit_cb(uv_process_t *process, int64_t exit_status, int term_signal)
{
    struct helper_run *run = process->data;
    run->exit_status = exit_status;
    run->term_signal = term_signal;
    settle(run);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct helper_run *run = handle->data;
    *buf = uv_buf_init(run->scratch, sizeof(run->scratch));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct helper_run *run = stream->data;
    struct wr_buf *out = stream == (uv_stream_t *)&run->out ? &run->out_buf : &run->err_buf;
    if (nread > 0) {
        /* Past the cap the helper is misbehaving; the rest is dropped, not an error. */
        (void)wr_buf_append(out, buf->base, (size_t)nread);
        return;
    }
    if (nread < 0) {
        uv_read_stop(stream);
        settle(run);
    }
}

static void on_timeout(uv_timer_t *timer)
{
    struct helper_run *run = timer->data;
    run->timed_out = true;
    (void)uv_process_kill(&run->process, SIGKILL);
}

static struct helper_run *run_new(uv_loop_t *loop, const char *what, uint32_t timeout_ms,
                                  vmm_helper_cb cb, void *data)
{
    struct helper_run *run = wr_calloc(1, sizeof(*run));
    run->cb = cb;
    run->data = data;
    run->what = wr_strdup(what);
    run->timeout_ms = timeout_ms;
    run->pending = 3;
    wr_buf_init(&run->out_buf, OUTPUT_MAX);
    wr_buf_init(&run->err_buf, OUTPUT_MAX);
    uv_pipe_init(loop, &run->out, 0);
    uv_pipe_init(loop, &run->err, 0);
    uv_timer_init(loop, &run->timer);
    run->out.data = run->err.data = run->timer.data = run->process.data = run;
    /* uv_spawn initializes the process handle even when it fails: it is closed either way. */
    run->open_handles = 4;
    return run;
}

static int spawn(uv_loop_t *loop, struct helper_run *run, const char *subcommand, const char *arg,
                 struct wr_error **err)
{
    const char *what = run->what;
    uint32_t timeout_ms = run->timeout_ms;
    char *args[] = {"warren", (char *)subcommand, (char *)arg, NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->err},
    };
    uv_process_options_t options = {.exit_cb = on_exit_cb,
                                    .file = "/proc/self/exe",
                                    .args = args,
                                    .flags = UV_PROCESS_DETACHED,
                                    .stdio_count = 3,
                                    .stdio = stdio};
    int r = uv_spawn(loop, &run->process, &options);
    if (r < 0) {
        close_all(run);
        return wr_error_set(err, -r, "spawning %s: %s", what, uv_strerror(r));
    }
    r = uv_read_start((uv_stream_t *)&run->out, on_alloc, on_read);
    if (r >= 0)
        r = uv_read_start((uv_stream_t *)&run->err, on_alloc, on_read);
    if (r >= 0)
        r = uv_timer_start(&run->timer, on_timeout, timeout_ms, 0);
    if (r < 0) {
        (void)uv_process_kill(&run->process, SIGKILL);
        close_all(run);
        return wr_error_set(err, -r, "watching %s: %s", what, uv_strerror(r));
    }
    return 0;
}

int vmm_helper_run(uv_loop_t *loop, const char *subcommand, const char *arg, uint32_t timeout_ms,
                   const char *what, vmm_helper_cb cb, void *data, struct wr_error **err)
{
    return spawn(loop, run_new(loop, what, timeout_ms, cb, data), subcommand, arg, err);
}

int vmm_helper_run_output(uv_loop_t *loop, const char *subcommand, const char *arg,
                          uint32_t timeout_ms, const char *what, vmm_helper_output_cb cb,
                          void *data, struct wr_error **err)
{
    struct helper_run *run = run_new(loop, what, timeout_ms, NULL, data);
    run->output_cb = cb;
    return spawn(loop, run, subcommand, arg, err);
}
