/* sandbox_exec: run a command in a sandbox, with progress while it runs. */
#include <string.h>

#include "common.h"

#define DEFAULT_MAX_OUTPUT (1u << 20)
#define MAX_OUTPUT (16u << 20)
#define MAX_STDIN (16u << 20)
#define HEARTBEAT_MS 5000
#define PROGRESS_TAIL 240

struct exec_call {
    struct mcp_call *call;
    struct vmm_op *op;
    struct wr_buf out, err;
    bool truncated;
    bool explicit_cap; /* the client set max_output_bytes */
    uint64_t started_ns;
    uv_timer_t heartbeat;
    bool has_timer;
    char tail[PROGRESS_TAIL + 1]; /* last output line(s), for progress messages */
};

static void timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void exec_call_free(struct exec_call *ec)
{
    wr_buf_free(&ec->out);
    wr_buf_free(&ec->err);
    if (ec->has_timer) {
        uv_timer_stop(&ec->heartbeat);
        ec->heartbeat.data = ec;
        uv_close((uv_handle_t *)&ec->heartbeat, timer_closed);
    } else {
        free(ec);
    }
}

static void send_progress(struct exec_call *ec)
{
    double secs = (double)(wr_now_ns() - ec->started_ns) / 1e9;
    _cleanup_free_ char *clean = wr_utf8_sanitize(ec->tail, strlen(ec->tail));
    _cleanup_free_ char *msg = wr_asprintf("running %.1fs, %zu bytes of output%s%s", secs,
                                           ec->out.len + ec->err.len, clean[0] ? ": " : "", clean);
    mcp_call_progress(ec->call, msg);
}

static void remember_tail(struct exec_call *ec, const char *buf, size_t len)
{
    if (len >= PROGRESS_TAIL) {
        memcpy(ec->tail, buf + len - PROGRESS_TAIL, PROGRESS_TAIL);
        ec->tail[PROGRESS_TAIL] = 0;
    } else {
        size_t keep = WR_MIN(strlen(ec->tail), PROGRESS_TAIL - len);
        memmove(ec->tail, ec->tail + strlen(ec->tail) - keep, keep);
        memcpy(ec->tail + keep, buf, len);
        ec->tail[keep + len] = 0;
    }
    for (char *p = ec->tail; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
}

static void on_output(void *data, int fd, const char *buf, size_t len)
{
    struct exec_call *ec = data;
    struct wr_buf *b = fd == 2 ? &ec->err : &ec->out;
    size_t room = b->max - b->len;
    if (len > room)
        ec->truncated = true;
    wr_buf_append(b, buf, WR_MIN(len, room));
    remember_tail(ec, buf, len);
    send_progress(ec);
}

static void on_heartbeat(uv_timer_t *t)
{
    send_progress(t->data);
}

static void on_done(void *data, const struct agent_exit *exit, struct wr_error *err)
{
    struct exec_call *ec = data;
    if (!exit) {
        mcp_call_fail_error(ec->call, err);
        exec_call_free(ec);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "exit_code", exit->exit_code);
    if (exit->signal)
        cJSON_AddNumberToObject(r, "signal", exit->signal);
    else
        cJSON_AddNullToObject(r, "signal");
    char *out = wr_utf8_sanitize(ec->out.data ? ec->out.data : "", ec->out.len);
    char *errs = wr_utf8_sanitize(ec->err.data ? ec->err.data : "", ec->err.len);
    if (!ec->explicit_cap) {
        /* Without an explicit max_output_bytes the result must fit MCP_RESULT_BUDGET. */
        size_t out_len = strlen(out), err_len = strlen(errs);
        size_t out_fit = mcp_fit_text(out, out_len, MCP_RESULT_BUDGET / 2);
        size_t err_fit = mcp_fit_text(errs, err_len, MCP_RESULT_BUDGET / 2);
        ec->truncated = ec->truncated || out_fit < out_len || err_fit < err_len;
        out[out_fit] = 0;
        errs[err_fit] = 0;
    }
    cJSON_AddItemToObject(r, "stdout", cJSON_CreateString(out));
    cJSON_AddItemToObject(r, "stderr", cJSON_CreateString(errs));
    free(out);
    free(errs);
    cJSON_AddBoolToObject(r, "truncated", ec->truncated);
    cJSON_AddBoolToObject(r, "timed_out", exit->timed_out);
    cJSON_AddNumberToObject(r, "duration_ms", (double)((wr_now_ns() - ec->started_ns) / 1000000));
    mcp_call_succeed(ec->call, r);
    exec_call_free(ec);
}

static void on_cancel(void *data)
{
    struct exec_call *ec = data;
    if (ec->op)
        vmm_op_cancel(ec->op);
}

static const char *const known[] = {
    "id", "command", "argv", "cwd", "env", "stdin", "timeout_seconds", "max_output_bytes", NULL};

struct exec_args {
    const char *id, *command, *cwd, *stdin_text;
    char **argv, **env;
    int64_t timeout, max_output;
};

static int parse_args(struct mcp_call *call, const cJSON *args, struct exec_args *a,
                      struct wr_error **err)
{
    uint32_t max_timeout = vmm_max_exec_timeout_s(mcp_call_vmm(call));
    a->timeout = WR_MIN(VMM_DEFAULT_EXEC_TIMEOUT_S, max_timeout);
    a->max_output = DEFAULT_MAX_OUTPUT;
    if (mcp_args_check_known(args, known, err) < 0 || mcp_arg_sandbox(args, &a->id, err) < 0 ||
        mcp_arg_string(args, "command", false, 256 * 1024, &a->command, err) < 0 ||
        mcp_arg_string_array(args, "argv", false, 4096, 128 * 1024, &a->argv, err) < 0 ||
        mcp_arg_string(args, "cwd", false, 4096, &a->cwd, err) < 0 ||
        mcp_arg_env(args, "env", &a->env, err) < 0 ||
        mcp_arg_string(args, "stdin", false, MAX_STDIN, &a->stdin_text, err) < 0 ||
        mcp_arg_int(args, "timeout_seconds", false, 1, max_timeout, &a->timeout, err) < 0 ||
        mcp_arg_int(args, "max_output_bytes", false, 0, MAX_OUTPUT, &a->max_output, err) < 0)
        return -EINVAL;
    if (!!a->command == !!a->argv)
        return wr_error_set(err, EINVAL,
                            "give exactly one of command (a shell string) or argv "
                            "(an array: program and arguments)");
    if (a->argv && !a->argv[0])
        return wr_error_set(err, EINVAL, "argv must not be empty");
    if (a->cwd && vmm_path_check(a->cwd, err) < 0)
        return wr_error_wrap(err, "cwd");
    return 0;
}

static void call(struct mcp_call *call, const cJSON *args)
{
    struct exec_args a = {0};
    struct wr_error *err = NULL;
    if (parse_args(call, args, &a, &err) < 0) {
        wr_strv_free(a.argv);
        wr_strv_free(a.env);
        mcp_call_fail_error(call, err);
        return;
    }
    const char *shell[] = {"/bin/sh", "-c", a.command, NULL};
    struct agent_exec_request req = {
        .argv = a.argv ? (const char *const *)a.argv : shell,
        .env = (const char *const *)a.env,
        .cwd = a.cwd,
        .stdin_data = a.stdin_text,
        .stdin_len = a.stdin_text ? strlen(a.stdin_text) : 0,
        .timeout_ms = (uint32_t)a.timeout * 1000,
    };
    struct exec_call *ec = wr_calloc(1, sizeof(*ec));
    ec->call = call;
    ec->explicit_cap = cJSON_GetObjectItemCaseSensitive(args, "max_output_bytes") != NULL;
    ec->started_ns = wr_now_ns();
    wr_buf_init(&ec->out, (size_t)a.max_output);
    wr_buf_init(&ec->err, (size_t)a.max_output);
    static const struct agent_exec_handlers handlers = {.output = on_output, .done = on_done};
    int r = vmm_exec(mcp_call_vmm(call), a.id, &req, &handlers, ec, &ec->op, &err);
    wr_strv_free(a.argv);
    wr_strv_free(a.env);
    if (r < 0) {
        mcp_call_fail_error(call, err);
        exec_call_free(ec);
        return;
    }
    mcp_call_on_cancel(call, on_cancel, ec);
    if (mcp_call_wants_progress(call)) {
        uv_timer_init(mcp_call_loop(call), &ec->heartbeat);
        ec->heartbeat.data = ec;
        ec->has_timer = true;
        uv_timer_start(&ec->heartbeat, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);
    }
}

const struct mcp_tool mcp_tool_sandbox_exec = {
    .name = "sandbox_exec",
    .call = call,
};
