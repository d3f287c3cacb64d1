/* envd's process.Process service on warren's process sessions (vmm_pty_* and
 * vmm_process_*: guest-init sessions that outlive the connection; see docs/e2b.md).
 *
 * Start opens a session (pipes, or a terminal with pty) and streams it: `start {pid}`,
 * `data {stdout|stderr|pty}`, `end {exitCode, exited, status}`, with `keepalive {}` on
 * silences. Connect attaches to a running one by pid or tag, from now on. A client that
 * goes away detaches: the process runs on. The sandbox sends at most a window of output
 * ahead of the acknowledgements, and a stream acknowledges output once the listener has
 * written it out (its write queue is short again), so a slow reader holds the process back
 * instead of the server's memory growing. */
#include <signal.h>
#include <string.h>

#include "e2b-internal.h"

/* Output acknowledged to the sandbox while the connection's write queue is under this: a
 * stream holds at most this plus the sandbox's window (VMM_PTY_WINDOW) of a process's
 * output, whatever the client's pace. */
#define ACK_QUEUE_MAX (1024u * 1024u)
/* How often a stream whose client is behind looks at its write queue again. */
#define ACK_POLL_MS 5
/* Keepalive-Ping-Interval (seconds) when the request has none, and its bounds. */
#define KEEPALIVE_DEFAULT_S 50
#define KEEPALIVE_MAX_S 3600
/* Output kept for the activity record of a Start. */
#define RECORD_OUTPUT_MAX 200

struct proc_stream {
    struct e2b_call *call; /* NULL once answered */
    struct vmm_pty *pty;   /* until its end handler ran */
    uv_timer_t timer;      /* keepalives, and acknowledgements while the client is behind */
    uint64_t keepalive_ms;
    uint64_t last_sent_ms;
    uint64_t unacked; /* output passed on but not yet acknowledged to the sandbox */
    bool pty_output;  /* a terminal: output is data.pty */
    bool record_output;
    char output[RECORD_OUTPUT_MAX]; /* the first output, for the activity record */
    size_t output_len;
};

static void stream_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void stream_free(struct proc_stream *ps)
{
    uv_timer_stop(&ps->timer);
    uv_close((uv_handle_t *)&ps->timer, stream_close_cb);
}

static cJSON *event(const char *kind, cJSON *body)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON *ev = cJSON_AddObjectToObject(msg, "event");
    cJSON_AddItemToObject(ev, kind, body);
    return msg;
}

static void send_event(struct proc_stream *ps, const char *kind, cJSON *body)
{
    ps->last_sent_ms = wr_now_ms();
    e2b_call_send(ps->call, event(kind, body));
}

/* ---- flow control and keepalives ------------------------------------------------------- */

static void schedule(struct proc_stream *ps);

/* Acknowledges what was passed on once the listener wrote most of it out. */
static void try_ack(struct proc_stream *ps)
{
    if (!ps->unacked || !ps->pty)
        return;
    struct http_conn *c = ps->call ? ps->call->conn : NULL;
    if (c && http_conn_write_queue(c) > ACK_QUEUE_MAX)
        return;
    struct wr_error *err = NULL;
    if (vmm_pty_ack(ps->pty, ps->unacked, &err) < 0)
        wr_error_free(err); /* not attached yet, or the attachment broke: its end follows */
    else
        ps->unacked = 0;
}

static void on_timer(uv_timer_t *t)
{
    struct proc_stream *ps = t->data;
    try_ack(ps);
    if (ps->call && ps->call->conn && wr_now_ms() - ps->last_sent_ms >= ps->keepalive_ms)
        send_event(ps, "keepalive", cJSON_CreateObject());
    schedule(ps);
}

static void schedule(struct proc_stream *ps)
{
    if (!ps->call)
        return;
    uint64_t since = wr_now_ms() - ps->last_sent_ms;
    uint64_t due = since >= ps->keepalive_ms ? 1 : ps->keepalive_ms - since;
    if (ps->unacked)
        due = WR_MIN(due, (uint64_t)ACK_POLL_MS);
    uv_timer_start(&ps->timer, on_timer, due, 0);
}

static uint64_t keepalive_ms(const struct http_request *req)
{
    const char *v = http_request_header(req, "keepalive-ping-interval");
    unsigned long s = v ? strtoul(v, NULL, 10) : 0;
    if (s == 0)
        s = KEEPALIVE_DEFAULT_S;
    return (uint64_t)WR_MIN(s, (unsigned long)KEEPALIVE_MAX_S) * 1000;
}

/* ---- the stream's events ---------------------------------------------------------------- */

static void on_attached(void *data, uint64_t pty_id, uint64_t pid)
{
    (void)pty_id;
    struct proc_stream *ps = data;
    cJSON *start = cJSON_CreateObject();
    cJSON_AddNumberToObject(start, "pid", (double)pid);
    send_event(ps, "start", start);
    schedule(ps);
}

static void output(struct proc_stream *ps, const char *which, const char *buf, size_t len)
{
    if (ps->record_output && ps->output_len < sizeof(ps->output)) {
        size_t n = WR_MIN(len, sizeof(ps->output) - ps->output_len);
        memcpy(ps->output + ps->output_len, buf, n);
        ps->output_len += n;
    }
    if (ps->call && ps->call->conn) {
        _cleanup_free_ char *b64 = wr_malloc(wr_base64_encoded_len(len) + 1);
        wr_base64_encode(buf, len, b64);
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, which, b64);
        send_event(ps, "data", data);
    }
    ps->unacked += len;
    try_ack(ps);
    schedule(ps);
}

static void on_stdout(void *data, const char *buf, size_t len)
{
    struct proc_stream *ps = data;
    output(ps, ps->pty_output ? "pty" : "stdout", buf, len);
}

static void on_stderr(void *data, const char *buf, size_t len)
{
    output(data, "stderr", buf, len);
}

/* Go's os.ProcessState.String(), which envd reports as the status. */
static char *exit_status(const struct agent_exit *x)
{
    if (x->signal)
        return wr_asprintf("signal: %s", x->signal == SIGKILL ? "killed" : strsignal(x->signal));
    return wr_asprintf("exit status %d", x->exit_code);
}

static void record_exit(struct proc_stream *ps, const struct agent_exit *x)
{
    cJSON *extra = ps->call->record_extra;
    if (!extra)
        extra = ps->call->record_extra = cJSON_CreateObject();
    cJSON_AddNumberToObject(extra, "exit_code", x->signal ? -1 : x->exit_code);
    if (x->signal)
        cJSON_AddNumberToObject(extra, "signal", x->signal);
    if (ps->record_output && ps->output_len) {
        _cleanup_free_ char *text = wr_utf8_sanitize(ps->output, ps->output_len);
        cJSON_AddStringToObject(extra, "output", text);
    }
}

static void on_end(void *data, const struct agent_pty_end *end, struct wr_error *err)
{
    struct proc_stream *ps = data;
    struct e2b_call *call = TAKE_PTR(ps->call);
    ps->pty = NULL;
    if (!end) {
        if (call->conn || !err || err->status != ECANCELED)
            e2b_call_fail(call, err);
        else
            wr_error_free(err), e2b_call_reply(call, NULL); /* detached before attached */
    } else if (end->reason == AGENT_PTY_EXITED) {
        ps->call = call;
        record_exit(ps, &end->exit);
        cJSON *body = cJSON_CreateObject();
        cJSON_AddNumberToObject(body, "exitCode", end->exit.signal ? -1 : end->exit.exit_code);
        cJSON_AddBoolToObject(body, "exited", end->exit.signal == 0);
        _cleanup_free_ char *status = exit_status(&end->exit);
        cJSON_AddStringToObject(body, "status", status);
        send_event(ps, "end", body);
        ps->call = NULL;
        e2b_call_reply(call, NULL);
    } else if (end->reason == AGENT_PTY_REPLACED) {
        e2b_call_error(call, CONNECT_ABORTED,
                       "this process's output was taken over (a terminal attached, or more "
                       "than 8 streams follow it)");
    } else if (end->reason == AGENT_PTY_CLOSED) {
        e2b_call_error(call, CONNECT_ABORTED, "the process session was closed");
    } else {
        e2b_call_reply(call, NULL); /* detached: the client went away */
    }
    stream_free(ps);
}

static const struct vmm_pty_handlers stream_handlers = {
    .attached = on_attached, .output = on_stdout, .stderr_output = on_stderr, .end = on_end};

/* The client went away: the process runs on, detached; end follows. */
static void stream_gone(struct e2b_call *call)
{
    struct proc_stream *ps = call->data;
    uv_timer_stop(&ps->timer);
    vmm_pty_detach(ps->pty);
}

static struct proc_stream *stream_new(struct e2b_call *call)
{
    struct proc_stream *ps = wr_calloc(1, sizeof(*ps));
    ps->call = call;
    ps->keepalive_ms = keepalive_ms(call->req);
    ps->last_sent_ms = wr_now_ms();
    uv_timer_init(http_conn_loop(call->conn), &ps->timer);
    ps->timer.data = ps;
    call->data = ps;
    call->on_gone = stream_gone;
    connect_stream_begin(call->conn);
    return ps;
}

/* ---- Start and Connect ------------------------------------------------------------------ */

/* E2B's users: "root" is root; "user", E2B's default account, is the sandbox's default user
 * (the image's, root for the host image; docs/departures.md); any other name is resolved
 * in the sandbox. */
static const char *sandbox_user(const char *e2b_user)
{
    return e2b_user && strcmp(e2b_user, "user") ? e2b_user : NULL;
}

/* The config List answers, kept with the session (cut down when it does not fit). */
static char *host_data(const struct e2b_start_request *r)
{
    char *text = cJSON_PrintUnformatted(r->config);
    if (text && strlen(text) <= E2B_PROCESS_HOST_DATA_MAX)
        return text;
    free(text);
    cJSON *small = cJSON_CreateObject();
    cJSON_AddStringToObject(small, "cmd", r->argv[0]);
    text = cJSON_PrintUnformatted(small);
    cJSON_Delete(small);
    return text;
}

static void start(struct e2b_call *call)
{
    struct e2b_start_request r;
    const char *why = NULL;
    if (e2b_start_request_parse(call->msg, &r, &why) < 0) {
        connect_stream_begin(call->conn);
        e2b_call_error(call, CONNECT_INVALID_ARGUMENT, why);
        return;
    }
    struct proc_stream *ps = stream_new(call);
    ps->pty_output = r.pty;
    ps->record_output = true;
    _cleanup_free_ char *config = host_data(&r);
    struct vmm_pty_request req = {.argv = (const char *const *)r.argv,
                                  .env = (const char *const *)r.env,
                                  .cwd = r.cwd,
                                  .rows = r.pty ? r.rows : 24,
                                  .cols = r.pty ? r.cols : 80,
                                  .pipes = !r.pty,
                                  .stdin_open = r.stdin_open,
                                  .tag = r.tag,
                                  .user = sandbox_user(call->user),
                                  .host_data = config,
                                  .host_data_len = strlen(config)};
    struct wr_error *err = NULL;
    if (vmm_pty_open(call->e2b->vmm, call->sandbox, &req, &stream_handlers, ps, &ps->pty, &err) <
        0) {
        ps->call = NULL;
        stream_free(ps);
        e2b_call_fail(call, err);
    }
    e2b_start_request_clear(&r);
}

static void connect_process(struct e2b_call *call)
{
    struct e2b_selector sel;
    const char *why = NULL;
    if (e2b_selector_parse(call->msg, &sel, &why) < 0) {
        connect_stream_begin(call->conn);
        e2b_call_error(call, CONNECT_INVALID_ARGUMENT, why);
        return;
    }
    struct proc_stream *ps = stream_new(call);
    struct agent_pty_selector s = {.pid = sel.pid, .tag = sel.tag};
    struct wr_error *err = NULL;
    if (vmm_process_attach(call->e2b->vmm, call->sandbox, &s, true, &stream_handlers, ps, &ps->pty,
                           &err) < 0) {
        ps->call = NULL;
        stream_free(ps);
        e2b_call_fail(call, err);
    }
}

/* ---- unary calls ------------------------------------------------------------------------ */

static void listed(void *data, const struct agent_pty_info *list, size_t n, struct wr_error *err)
{
    struct e2b_call *call = data;
    if (err) {
        e2b_call_fail(call, err);
        return;
    }
    cJSON *reply = cJSON_CreateObject();
    cJSON *procs = cJSON_AddArrayToObject(reply, "processes");
    for (size_t i = 0; i < n; i++) {
        if (!list[i].running)
            continue; /* envd lists running processes only */
        cJSON *p = cJSON_CreateObject();
        cJSON *config = list[i].host_data ? cJSON_ParseWithLength((const char *)list[i].host_data,
                                                                  list[i].host_data_len)
                                          : NULL;
        if (!cJSON_IsObject(config)) {
            /* A terminal of the web UI, or a session another client opened. */
            cJSON_Delete(config);
            config = cJSON_CreateObject();
            cJSON_AddStringToObject(config, "cmd", list[i].argv0);
            cJSON_AddItemToObject(config, "args", cJSON_CreateArray());
            cJSON_AddItemToObject(config, "envs", cJSON_CreateObject());
        }
        cJSON_AddItemToObject(p, "config", config);
        cJSON_AddNumberToObject(p, "pid", (double)list[i].pid);
        if (*list[i].tag)
            cJSON_AddStringToObject(p, "tag", list[i].tag);
        cJSON_AddItemToArray(procs, p);
    }
    e2b_call_reply(call, reply);
}

static void list(struct e2b_call *call)
{
    struct wr_error *err = NULL;
    if (vmm_pty_list(call->e2b->vmm, call->sandbox, listed, call, &err) < 0)
        e2b_call_fail(call, err);
}

static void controlled(void *data, struct wr_error *err)
{
    struct e2b_call *call = data;
    if (!err) {
        e2b_call_reply(call, NULL);
    } else if (err->status == EPIPE || err->status == EAGAIN) {
        /* No stdin to write to, or 1 MiB already waiting: the process's state, not a fault
         * of the service. */
        e2b_call_error(
            call, err->status == EPIPE ? CONNECT_FAILED_PRECONDITION : CONNECT_RESOURCE_EXHAUSTED,
            err->msg);
        wr_error_free(err);
    } else {
        e2b_call_fail(call, err);
    }
}

/* Runs a control on the process the request selects; consumes nothing of ctl. */
static void control(struct e2b_call *call, const struct agent_pty_control *ctl)
{
    struct e2b_selector sel;
    const char *why = NULL;
    if (e2b_selector_parse(call->msg, &sel, &why) < 0) {
        e2b_call_error(call, CONNECT_INVALID_ARGUMENT, why);
        return;
    }
    struct agent_pty_selector s = {.pid = sel.pid, .tag = sel.tag};
    struct wr_error *err = NULL;
    if (vmm_process_control(call->e2b->vmm, call->sandbox, &s, ctl, controlled, call, &err) < 0)
        e2b_call_fail(call, err);
}

static void send_input(struct e2b_call *call)
{
    struct e2b_input in;
    const char *why = NULL;
    int r = e2b_input_parse(call->msg, &in, &why);
    if (r < 0) {
        e2b_call_error(call, r == -EMSGSIZE ? CONNECT_RESOURCE_EXHAUSTED : CONNECT_INVALID_ARGUMENT,
                       why);
        return;
    }
    struct agent_pty_control ctl = {.input = in.data, .input_len = in.len};
    control(call, &ctl);
    free(in.data);
}

static void send_signal(struct e2b_call *call)
{
    int sig = 0;
    const char *why = NULL;
    if (e2b_signal_parse(call->msg, &sig, &why) < 0) {
        e2b_call_error(call, CONNECT_INVALID_ARGUMENT, why);
        return;
    }
    struct agent_pty_control ctl = {.signum = sig};
    control(call, &ctl);
}

static void close_stdin(struct e2b_call *call)
{
    struct agent_pty_control ctl = {.close_stdin = true};
    control(call, &ctl);
}

static void update(struct e2b_call *call)
{
    const cJSON *pty = cJSON_GetObjectItemCaseSensitive(call->msg, "pty");
    struct agent_pty_control ctl = {0};
    const char *why = NULL;
    if (pty && !cJSON_IsNull(pty) && e2b_pty_size_parse(pty, &ctl.rows, &ctl.cols, &why) < 0) {
        e2b_call_error(call, CONNECT_INVALID_ARGUMENT, why);
        return;
    }
    if ((ctl.rows == 0) != (ctl.cols == 0)) {
        e2b_call_error(call, CONNECT_INVALID_ARGUMENT, "pty.size needs both cols and rows");
        return;
    }
    /* Without a size there is nothing to change, but the process must exist: the control
     * with no field checks that. */
    control(call, &ctl);
}

const struct e2b_method e2b_process_methods[] = {
    {"Start", true, start},
    {"Connect", true, connect_process},
    {"List", false, list},
    {"SendInput", false, send_input},
    {"SendSignal", false, send_signal},
    {"CloseStdin", false, close_stdin},
    {"Update", false, update},
    {NULL, false, NULL},
};
