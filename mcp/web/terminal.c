/* The terminal WebSocket (docs/terminal.md): /sandboxes/<id>/terminal bridges a WebSocket
 * and a PTY session in the sandbox (vmm_pty_*). Output goes to the browser as binary
 * messages and is acknowledged to the sandbox when the browser says it drew it, so the
 * window of unacknowledged output bounds every buffer on the way. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "terminal-control.h"
#include "terminal.h"
#include "websocket.h"

#define CLOSE_REPLACED 4000

struct term {
    struct vmm *vmm;
    struct ws *ws;
    struct vmm_pty *pty; /* NULL once its end ran */
    char *sandbox;
    uint64_t pty_id;
    bool reattach, attached;
    bool starting; /* inside vmm_pty_open/attach: callbacks may run before it returns */
    bool ended;    /* the pty's end ran */
};

static void term_free(struct term *t)
{
    free(t->sandbox);
    free(t);
}

static void send_json(struct term *t, cJSON *o)
{
    _cleanup_free_ char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (t->ws)
        ws_send_text(t->ws, text, strlen(text));
}

static void send_error(struct term *t, const char *message, bool gone)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "error");
    cJSON_AddStringToObject(o, "message", message);
    cJSON_AddBoolToObject(o, "gone", gone);
    send_json(t, o);
}

/* ---- from the sandbox ---------------------------------------------------------------- */

static void pty_attached(void *data, uint64_t pty_id, uint64_t pid)
{
    (void)pid;
    struct term *t = data;
    t->pty_id = pty_id;
    t->attached = true;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ready");
    cJSON_AddNumberToObject(o, "pty", (double)pty_id);
    cJSON_AddBoolToObject(o, "reattached", t->reattach);
    send_json(t, o);
}

static void pty_output(void *data, const char *buf, size_t len)
{
    struct term *t = data;
    if (t->ws)
        ws_send_binary(t->ws, (const uint8_t *)buf, len);
}

static void pty_end(void *data, const struct agent_pty_end *end, struct wr_error *err)
{
    struct term *t = data;
    t->pty = NULL;
    t->ended = true;
    if (!t->ws) { /* the browser went first: nothing more to tell */
        wr_error_free(err);
        if (!t->starting)
            term_free(t);
        return;
    }
    struct ws *ws = t->ws;
    if (err) {
        send_error(t, err->msg, err->status == ENOENT);
        wr_error_free(err);
        ws_close(ws, 1011, "the terminal ended");
    } else if (end->reason == AGENT_PTY_EXITED) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "exit");
        cJSON_AddNumberToObject(o, "code", end->exit.exit_code);
        if (end->exit.signal)
            cJSON_AddNumberToObject(o, "signal", end->exit.signal);
        else
            cJSON_AddNullToObject(o, "signal");
        send_json(t, o);
        ws_close(ws, 1000, "the shell exited");
    } else if (end->reason == AGENT_PTY_REPLACED) {
        ws_close(ws, CLOSE_REPLACED, "attached elsewhere");
    } else {
        ws_close(ws, 1000, end->reason == AGENT_PTY_CLOSED ? "closed" : "detached");
    }
    /* ws_close ran on_close, which freed t (its pty was already gone). */
}

/* ---- from the browser ------------------------------------------------------------------ */

static void ws_binary(void *data, const uint8_t *bytes, size_t len)
{
    struct term *t = data;
    struct wr_error *err = NULL;
    if (t->pty && len && vmm_pty_write(t->pty, bytes, len, &err) < 0) {
        send_error(t, err->msg, false);
        wr_error_free(err);
    }
}

static void closed_session(void *data, struct wr_error *err)
{
    (void)data;
    wr_error_free(err);
}

static void ws_text(void *data, const char *text, size_t len)
{
    struct term *t = data;
    struct term_control c;
    struct wr_error *err = NULL;
    int r = mcp_term_control_parse(text, len, &c, &err);
    if (r == 0 && t->pty) {
        if (c.type == TERM_CONTROL_RESIZE)
            r = vmm_pty_resize(t->pty, c.rows, c.cols, &err);
        else if (c.type == TERM_CONTROL_ACK)
            r = vmm_pty_ack(t->pty, c.bytes, &err);
        else if (c.type == TERM_CONTROL_CLOSE && t->attached)
            r = vmm_pty_close(t->vmm, t->sandbox, t->pty_id, closed_session, NULL, &err);
    }
    if (r < 0) {
        send_error(t, err->msg, false);
        wr_error_free(err);
    }
}

static void ws_closed(void *data)
{
    struct term *t = data;
    t->ws = NULL;
    if (t->pty)
        vmm_pty_detach(t->pty); /* the session runs on; pty_end frees t */
    else if (!t->starting)
        term_free(t);
}

/* ---- the route ------------------------------------------------------------------------- */

/* The value of key in url's query, or NULL. */
static const char *query_value(const char *url, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = strchr(url, '?'); p && *p; p = strchr(p + 1, '&'))
        if (!strncmp(p + 1, key, klen) && p[1 + klen] == '=')
            return p + 2 + klen;
    return NULL;
}

static unsigned query_uint(const char *url, const char *key, unsigned fallback)
{
    const char *v = query_value(url, key);
    return v ? (unsigned)strtoul(v, NULL, 10) : fallback;
}

void mcp_web_terminal(struct vmm *vmm, struct http_conn *c, struct http_request *req,
                      const char *sandbox)
{
    /* A browser's WebSocket always names its page: one from another site is refused by
     * the listener's Origin check, and one without an Origin is not a browser's. */
    if (!req->origin && !req->authorization) {
        http_respond_error(c, 403, "a terminal needs an Origin");
        return;
    }
    struct term *t = wr_calloc(1, sizeof(*t));
    t->vmm = vmm;
    t->sandbox = wr_strdup(sandbox);
    unsigned rows = query_uint(req->url, "rows", 24), cols = query_uint(req->url, "cols", 80);
    rows = rows < 1 ? 1 : rows > VMM_PTY_DIM_MAX ? VMM_PTY_DIM_MAX : rows;
    cols = cols < 1 ? 1 : cols > VMM_PTY_DIM_MAX ? VMM_PTY_DIM_MAX : cols;
    const char *pty = query_value(req->url, "pty");
    /* The WebSocket first: the session's first messages may come at once. */
    static const struct ws_handlers ws_handlers = {
        .on_text = ws_text, .on_binary = ws_binary, .on_close = ws_closed};
    t->ws = ws_accept(c, req, &ws_handlers, t);
    if (!t->ws) {
        term_free(t);
        return;
    }
    static const struct vmm_pty_handlers handlers = {
        .attached = pty_attached, .output = pty_output, .end = pty_end};
    struct wr_error *err = NULL;
    int r;
    struct vmm_pty *p = NULL;
    t->starting = true;
    if (pty) {
        t->reattach = true;
        r = vmm_pty_attach(vmm, sandbox, strtoull(pty, NULL, 10), &handlers, t, &p, &err);
        if (r == 0 && !t->ended)
            (void)vmm_pty_resize(p, rows, cols, NULL);
    } else {
        struct vmm_pty_request pr = {.rows = rows, .cols = cols};
        r = vmm_pty_open(vmm, sandbox, &pr, &handlers, t, &p, &err);
    }
    t->starting = false;
    if (r < 0) {
        send_error(t, err->msg, err->status == ENOENT);
        wr_error_free(err);
        ws_close(t->ws, 4404, "no terminal"); /* ws_closed frees t */
        return;
    }
    if (t->ended) { /* it ended already: the socket is closed or closing */
        if (!t->ws)
            term_free(t);
        return;
    }
    t->pty = p;
}
