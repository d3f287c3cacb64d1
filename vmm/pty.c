/* Terminal sessions in a sandbox (the web UI's terminals): the vmm side of guest-init's
 * PTY sessions. A struct vmm_pty is one attachment; the session itself lives in the
 * sandbox and is found again by its id. An attached terminal counts as use of its
 * sandbox: the reaper neither pauses nor stops a sandbox with one (rt->terminals), and
 * input touches last_used so the idle clock starts from the last keystroke. */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "guest-init/proto.h"
#include "ops.h"
#include "ready.h"
#include "state.h"
#include "vmm/images/images.h"

/* Input touches the store at most this often per terminal. */
#define TOUCH_INTERVAL_S 10
#define MAX_ARGS 4096

struct vmm_pty {
    struct vmm *vmm;
    char *sandbox_id;
    uint64_t id;  /* the session; 0 until opened (or attached by pid or tag) */
    uint64_t pid; /* a pid or tag to attach to, when id is 0 */
    char *tag;
    bool live; /* attach without the ring's replay */
    struct vmm_pty_handlers handlers;
    void *data;
    struct agent_pty *pty; /* while attached */
    bool detach_requested; /* before the attachment existed */
    bool counted;          /* in rt->terminals */
    unsigned rows, cols;   /* a resize asked for before the attachment existed */
    int64_t last_touch;
    /* PTY_OPEN: the request, owned. */
    char **argv, **env;
    char *cwd, *user;
    bool pipes, stdin_open;
    char *open_tag;
    void *host_data;
    size_t host_data_len;
};

static void pty_free(struct vmm_pty *p)
{
    free(p->sandbox_id);
    wr_strv_free(p->argv);
    wr_strv_free(p->env);
    free(p->cwd);
    free(p->user);
    free(p->tag);
    free(p->open_tag);
    free(p->host_data);
    free(p);
}

static void touch(struct vmm_pty *p)
{
    int64_t now = wr_unix_time();
    if (now - p->last_touch < TOUCH_INTERVAL_S)
        return;
    p->last_touch = now;
    store_sandbox_touch(p->vmm->store, p->sandbox_id, now, NULL);
}

static void count_terminal(struct vmm_pty *p, bool attached)
{
    struct sandbox_rt *rt = vmm__rt_get(p->vmm, p->sandbox_id, attached);
    if (attached && !p->counted) {
        rt->terminals++;
        p->counted = true;
    } else if (!attached && p->counted) {
        p->counted = false;
        if (rt && rt->terminals > 0) /* rt is gone once the sandbox was forgotten */
            rt->terminals--;
    }
}

/* The last callback: the handle goes with it. */
static void pty_end(struct vmm_pty *p, const struct agent_pty_end *end, struct wr_error *err)
{
    count_terminal(p, false);
    if (end && end->reason == AGENT_PTY_EXITED && !p->pipes) {
        _cleanup_free_ char *detail =
            wr_asprintf("terminal %llu exited (code %d, signal %d)", (unsigned long long)p->id,
                        end->exit.exit_code, end->exit.signal);
        store_event(p->vmm->store, p->sandbox_id, "terminal-closed", detail, NULL);
    }
    if (!p->pipes && (end || (err && err->status != ECANCELED))) {
        p->last_touch = 0;
        touch(p); /* the idle clock starts when the terminal was left */
    }
    p->handlers.end(p->data, end, err);
    pty_free(p);
}

static void fail(struct vmm_pty *p, struct wr_error *err)
{
    pty_end(p, NULL, err);
}

/* ---- the attachment ----------------------------------------------------------------- */

static void on_output(void *data, const char *buf, size_t len)
{
    struct vmm_pty *p = data;
    p->handlers.output(p->data, buf, len);
}

static void on_stderr_output(void *data, const char *buf, size_t len)
{
    struct vmm_pty *p = data;
    (p->handlers.stderr_output ? p->handlers.stderr_output : p->handlers.output)(p->data, buf, len);
}

static void on_attached(void *data, uint64_t pty_id, uint64_t pid)
{
    struct vmm_pty *p = data;
    p->id = pty_id;
    p->pid = pid;
    if (p->handlers.attached)
        p->handlers.attached(p->data, pty_id, pid);
}

static void on_end(void *data, const struct agent_pty_end *end, struct wr_error *err)
{
    struct vmm_pty *p = data;
    p->pty = NULL;
    if (err && err->status == ECONNRESET)
        wr_error_wrap(&err, "the connection to the sandbox was lost (the terminal may still be "
                            "there: attach again)");
    pty_end(p, end, err);
}

static const struct agent_pty_handlers agent_handlers = {
    .attached = on_attached, .stderr_output = on_stderr_output, .output = on_output, .end = on_end};

static void attach_now(struct vmm_pty *p, struct agent_conn *conn)
{
    struct wr_error *err = NULL;
    struct agent_pty_selector sel = {.id = p->id, .pid = p->pid, .tag = p->tag};
    if (agent_pty_attach_selected(conn, &sel, p->live, &agent_handlers, p, &p->pty, &err) < 0) {
        fail(p, err);
        return;
    }
    count_terminal(p, true);
    if (p->rows && agent_pty_resize(p->pty, p->rows, p->cols, &err) < 0)
        wr_error_free(TAKE_PTR(err)); /* a broken connection ends the attachment anyway */
    if (p->detach_requested)
        vmm_pty_detach(p);
}

struct opening {
    struct vmm_pty *p;
    struct agent_conn *conn;
};

static void on_opened(void *data, uint64_t id, uint64_t pid, struct wr_error *err)
{
    struct opening *o = data;
    struct vmm_pty *p = o->p;
    struct agent_conn *conn = o->conn;
    free(o);
    if (err) {
        fail(p, err);
        return;
    }
    p->id = id;
    /* Terminals are events of their own; a process session is recorded by its caller
     * (E2B records its calls as activity). */
    if (!p->pipes) {
        _cleanup_free_ char *detail =
            wr_asprintf("terminal %llu: %.200s (pid %llu)", (unsigned long long)id,
                        p->argv ? p->argv[0] : "login shell", (unsigned long long)pid);
        store_event(p->vmm->store, p->sandbox_id, "terminal-opened", detail, NULL);
    }
    /* The answer came on conn, which is therefore still open. */
    attach_now(p, conn);
}

static void on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct vmm_pty *p = data;
    if (conn && p->detach_requested)
        wr_error_set(&err, ECANCELED, "the terminal was detached before it was attached");
    if (!conn || err) {
        fail(p, err);
        return;
    }
    if (p->id || p->pid || p->tag) {
        attach_now(p, conn);
        return;
    }
    struct agent_pty_request req = {.argv = (const char *const *)p->argv,
                                    .env = (const char *const *)p->env,
                                    .cwd = p->cwd,
                                    .user = p->user,
                                    .rows = p->rows,
                                    .cols = p->cols,
                                    .pipes = p->pipes,
                                    .stdin_open = p->stdin_open,
                                    .tag = p->open_tag,
                                    .host_data = p->host_data,
                                    .host_data_len = p->host_data_len};
    if (p->pipes) {
        /* A process session: opened and attached in one request. */
        if (agent_pty_open_attached(conn, &req, &agent_handlers, p, &p->pty, &err) < 0) {
            fail(p, err);
            return;
        }
        count_terminal(p, true);
        if (p->detach_requested)
            vmm_pty_detach(p);
        return;
    }
    struct opening *o = wr_calloc(1, sizeof(*o));
    *o = (struct opening){.p = p, .conn = conn};
    p->rows = p->cols = 0; /* the size is in the request */
    if (agent_pty_open(conn, &req, on_opened, o, &err) < 0) {
        free(o);
        fail(p, err);
    }
}

/* ---- the API ------------------------------------------------------------------------ */

static int check_size(unsigned rows, unsigned cols, struct wr_error **err)
{
    if (rows < 1 || rows > VMM_PTY_DIM_MAX || cols < 1 || cols > VMM_PTY_DIM_MAX)
        return wr_error_set(err, EINVAL, "terminal size %ux%u: rows and cols must be 1 to %d", rows,
                            cols, VMM_PTY_DIM_MAX);
    return 0;
}

static int check_strv(const char *const *v, const char *what, struct wr_error **err)
{
    size_t n = 0;
    for (; v && v[n]; n++)
        if (n >= MAX_ARGS)
            return wr_error_set(err, E2BIG, "terminal: more than %d %s", MAX_ARGS, what);
    if (v && n == 0 && !strcmp(what, "arguments"))
        return wr_error_set(err, EINVAL, "terminal: argv is empty (give NULL for the shell)");
    return 0;
}

static int check_process(const struct vmm_pty_request *req, struct wr_error **err)
{
    if (req->tag && (!*req->tag || strlen(req->tag) > GI_PROC_TAG_MAX))
        return wr_error_set(err, EINVAL, "a process tag is 1 to %u bytes", GI_PROC_TAG_MAX);
    if (req->host_data_len > GI_PROC_HOST_DATA_MAX)
        return wr_error_set(err, EMSGSIZE, "process host data of %zu bytes (at most %u)",
                            req->host_data_len, GI_PROC_HOST_DATA_MAX);
    if (req->user && (!*req->user || strlen(req->user) > 128))
        return wr_error_set(err, EINVAL, "a user is 1 to 128 bytes");
    return 0;
}

static struct vmm_pty *pty_new(struct vmm *vmm, const struct store_sandbox *row,
                               const struct vmm_pty_handlers *handlers, void *data)
{
    struct vmm_pty *p = wr_calloc(1, sizeof(*p));
    p->vmm = vmm;
    p->sandbox_id = wr_strdup(row->id);
    p->handlers = *handlers;
    p->data = data;
    touch(p);
    return p;
}

int vmm_pty_open(struct vmm *vmm, const char *id_or_name, const struct vmm_pty_request *req,
                 const struct vmm_pty_handlers *handlers, void *data, struct vmm_pty **ret_pty,
                 struct wr_error **err)
{
    struct store_sandbox row;
    if (check_size(req->rows, req->cols, err) < 0 || check_strv(req->argv, "arguments", err) < 0 ||
        check_strv(req->env, "environment entries", err) < 0 || check_process(req, err) < 0 ||
        vmm__sandbox_running(vmm, id_or_name, &row, err) < 0)
        return -(*err)->status;
    struct vmm_pty *p = pty_new(vmm, &row, handlers, data);
    _cleanup_strv_ char **image_env = NULL;
    _cleanup_free_ char *workdir = NULL;
    vmm__image_exec_config(vmm, row.image, &image_env, &workdir, &p->user);
    if (req->user) {
        free(p->user);
        p->user = wr_strdup(req->user);
    }
    p->pipes = req->pipes;
    p->stdin_open = req->stdin_open;
    p->open_tag = req->tag ? wr_strdup(req->tag) : NULL;
    if (req->host_data_len) {
        p->host_data = memcpy(wr_malloc(req->host_data_len), req->host_data, req->host_data_len);
        p->host_data_len = req->host_data_len;
    }
    p->argv = req->argv ? wr_strv_copy(req->argv) : NULL;
    p->env = vmm__exec_env(&row, (const char *const *)image_env, req->env);
    p->cwd = wr_strdup(req->cwd ? req->cwd : workdir ? workdir : "/workspace");
    p->rows = req->rows;
    p->cols = req->cols;
    *ret_pty = p;
    vmm__with_conn(vmm, &row, 0, on_conn, p);
    store_sandbox_clear(&row);
    return 0;
}

int vmm_process_attach(struct vmm *vmm, const char *id_or_name,
                       const struct agent_pty_selector *sel, bool live,
                       const struct vmm_pty_handlers *handlers, void *data,
                       struct vmm_pty **ret_pty, struct wr_error **err)
{
    struct store_sandbox row;
    if (!sel->id && !sel->pid && (!sel->tag || !*sel->tag))
        return wr_error_set(err, ENOENT, "no process session named");
    if (sel->tag && strlen(sel->tag) > GI_PROC_TAG_MAX)
        return wr_error_set(err, EINVAL, "a process tag is at most %u bytes", GI_PROC_TAG_MAX);
    if (vmm__sandbox_running(vmm, id_or_name, &row, err) < 0)
        return -(*err)->status;
    struct vmm_pty *p = pty_new(vmm, &row, handlers, data);
    p->id = sel->id;
    p->pid = sel->id ? 0 : sel->pid;
    p->tag = !sel->id && !sel->pid ? wr_strdup(sel->tag) : NULL;
    p->live = live;
    *ret_pty = p;
    vmm__with_conn(vmm, &row, 0, on_conn, p);
    store_sandbox_clear(&row);
    return 0;
}

int vmm_pty_attach(struct vmm *vmm, const char *id_or_name, uint64_t pty_id,
                   const struct vmm_pty_handlers *handlers, void *data, struct vmm_pty **ret_pty,
                   struct wr_error **err)
{
    if (pty_id == 0)
        return wr_error_set(err, ENOENT, "no terminal session 0");
    struct agent_pty_selector sel = {.id = pty_id};
    return vmm_process_attach(vmm, id_or_name, &sel, false, handlers, data, ret_pty, err);
}

static int check_attached(const struct vmm_pty *p, struct wr_error **err)
{
    if (!p->pty)
        return wr_error_set(err, EAGAIN, "the terminal is not attached yet");
    return 0;
}

int vmm_pty_write(struct vmm_pty *p, const void *buf, size_t len, struct wr_error **err)
{
    if (len > VMM_PTY_MAX_INPUT)
        return wr_error_set(err, EMSGSIZE, "terminal input of %zu bytes (at most %u at once)", len,
                            VMM_PTY_MAX_INPUT);
    if (check_attached(p, err) < 0)
        return -EAGAIN;
    touch(p);
    return agent_pty_input(p->pty, buf, len, err);
}

int vmm_pty_resize(struct vmm_pty *p, unsigned rows, unsigned cols, struct wr_error **err)
{
    if (check_size(rows, cols, err) < 0)
        return -EINVAL;
    if (!p->pty) {
        p->rows = rows;
        p->cols = cols;
        return 0;
    }
    return agent_pty_resize(p->pty, rows, cols, err);
}

int vmm_pty_ack(struct vmm_pty *p, uint64_t bytes, struct wr_error **err)
{
    if (check_attached(p, err) < 0)
        return -EAGAIN;
    return bytes ? agent_pty_ack(p->pty, bytes, err) : 0;
}

int vmm_pty_signal(struct vmm_pty *p, int signum, struct wr_error **err)
{
    if (signum < 1 || signum > 64)
        return wr_error_set(err, EINVAL, "signal %d: not a signal number", signum);
    if (check_attached(p, err) < 0)
        return -EAGAIN;
    return agent_pty_signal(p->pty, signum, err);
}

void vmm_pty_detach(struct vmm_pty *p)
{
    _cleanup_error_ struct wr_error *err = NULL;
    if (!p->pty)
        p->detach_requested = true;
    else if (agent_pty_detach(p->pty, &err) < 0)
        log_debug("detaching terminal %llu: %s", (unsigned long long)p->id, err->msg);
}

/* ---- close and list ----------------------------------------------------------------- */

struct pty_call {
    struct vmm *vmm;
    char *sandbox_id;
    uint64_t id;
    vmm_pty_close_cb close_cb;
    vmm_pty_list_cb list_cb;
    vmm_pty_close_cb control_cb;
    struct agent_pty_selector sel; /* control: its tag owned */
    struct agent_pty_control ctl;  /* control: its input owned */
    void *data;
};

static void call_free(struct pty_call *c)
{
    free(c->sandbox_id);
    free((char *)c->sel.tag);
    free((void *)c->ctl.input);
    free(c);
}

static void on_controlled(void *data, struct wr_error *err)
{
    struct pty_call *c = data;
    if (!err && c->ctl.input_len)
        store_sandbox_touch(c->vmm->store, c->sandbox_id, wr_unix_time(), NULL);
    c->control_cb(c->data, err);
    call_free(c);
}

static void on_closed(void *data, struct wr_error *err)
{
    struct pty_call *c = data;
    if (!err) {
        _cleanup_free_ char *detail =
            wr_asprintf("terminal %llu closed", (unsigned long long)c->id);
        store_event(c->vmm->store, c->sandbox_id, "terminal-closed", detail, NULL);
    }
    c->close_cb(c->data, err);
    call_free(c);
}

static void on_listed(void *data, const struct agent_pty_info *list, size_t n, struct wr_error *err)
{
    struct pty_call *c = data;
    c->list_cb(c->data, list, n, err);
    call_free(c);
}

static void call_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct pty_call *c = data;
    if (conn && c->control_cb)
        agent_pty_control(conn, &c->sel, &c->ctl, on_controlled, c, &err);
    else if (conn && c->close_cb)
        agent_pty_close(conn, c->id, on_closed, c, &err);
    else if (conn)
        agent_pty_list(conn, on_listed, c, &err);
    if (!err)
        return;
    if (c->control_cb)
        c->control_cb(c->data, err);
    else if (c->close_cb)
        c->close_cb(c->data, err);
    else
        c->list_cb(c->data, NULL, 0, err);
    call_free(c);
}

static int call_start(struct vmm *vmm, const char *id_or_name, struct pty_call *c,
                      struct wr_error **err)
{
    struct store_sandbox row;
    if (vmm__sandbox_running(vmm, id_or_name, &row, err) < 0) {
        call_free(c);
        return -(*err)->status;
    }
    c->vmm = vmm;
    c->sandbox_id = wr_strdup(row.id);
    vmm__with_conn(vmm, &row, 0, call_on_conn, c);
    store_sandbox_clear(&row);
    return 0;
}

int vmm_pty_close(struct vmm *vmm, const char *id_or_name, uint64_t pty_id, vmm_pty_close_cb cb,
                  void *data, struct wr_error **err)
{
    struct pty_call *c = wr_calloc(1, sizeof(*c));
    *c = (struct pty_call){.id = pty_id, .close_cb = cb, .data = data};
    return call_start(vmm, id_or_name, c, err);
}

int vmm_pty_list(struct vmm *vmm, const char *id_or_name, vmm_pty_list_cb cb, void *data,
                 struct wr_error **err)
{
    struct pty_call *c = wr_calloc(1, sizeof(*c));
    *c = (struct pty_call){.list_cb = cb, .data = data};
    return call_start(vmm, id_or_name, c, err);
}

int vmm_process_control(struct vmm *vmm, const char *id_or_name,
                        const struct agent_pty_selector *sel, const struct agent_pty_control *ctl,
                        vmm_pty_close_cb cb, void *data, struct wr_error **err)
{
    if (!sel->id && !sel->pid && (!sel->tag || !*sel->tag))
        return wr_error_set(err, ENOENT, "no process session named");
    if (sel->tag && strlen(sel->tag) > GI_PROC_TAG_MAX)
        return wr_error_set(err, EINVAL, "a process tag is at most %u bytes", GI_PROC_TAG_MAX);
    if (ctl->input_len > VMM_PTY_MAX_INPUT)
        return wr_error_set(err, EMSGSIZE, "process input of %zu bytes (at most %u at once)",
                            ctl->input_len, VMM_PTY_MAX_INPUT);
    if (ctl->signum < 0 || ctl->signum > 64)
        return wr_error_set(err, EINVAL, "signal %d: not a signal number", ctl->signum);
    if ((ctl->rows || ctl->cols) && check_size(ctl->rows, ctl->cols, err) < 0)
        return -EINVAL;
    struct pty_call *c = wr_calloc(1, sizeof(*c));
    *c = (struct pty_call){.control_cb = cb, .data = data, .sel = *sel, .ctl = *ctl};
    c->sel.tag = sel->tag ? wr_strdup(sel->tag) : NULL;
    c->ctl.input = NULL;
    if (ctl->input) /* an empty input is kept: it checks that stdin is open */
        c->ctl.input = memcpy(wr_malloc(ctl->input_len + 1), ctl->input, ctl->input_len);
    return call_start(vmm, id_or_name, c, err);
}

_Static_assert(VMM_PROCESS_TAG_MAX == GI_PROC_TAG_MAX, "the tag caps agree");
_Static_assert(VMM_PROCESS_HOST_DATA_MAX == GI_PROC_HOST_DATA_MAX, "the host data caps agree");
