/* QMP client (see qmp.h). One struct qmp per connection: a pipe, a retry/timeout timer, a
 * capped line buffer and the list of commands waiting for their reply. Replies are matched
 * by "id" (QEMU answers in order, but ids make a stray or late reply harmless). */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "qmp.h"

#define RETRY_MS 20
#define READ_CHUNK 4096

enum qmp_state { QMP_CONNECTING, QMP_GREETING, QMP_NEGOTIATING, QMP_READY, QMP_CLOSED };

struct qmp_pending {
    uint64_t id;
    qmp_reply_cb cb;
    void *data;
    struct qmp_pending *next;
};

struct qmp {
    uv_loop_t *loop;
    uv_pipe_t pipe;
    uv_connect_t connect_req;
    uv_timer_t timer; /* the connect + negotiate deadline */
    uv_timer_t retry; /* the pause between connect attempts */
    char *path;
    enum qmp_state state;
    uint32_t timeout_ms;
    struct wr_buf line;
    char scratch[READ_CHUNK];
    struct qmp_pending *pending; /* oldest first */
    uint64_t next_id;
    qmp_ready_cb ready_cb;
    void *ready_data;
    qmp_event_cb event_cb;
    void *event_data;
    int open_handles;
    bool pipe_open;
    /* The caller got the connection (ready_cb) and has not called qmp_close yet: the struct
     * outlives a dropped connection until then. */
    bool held;
};

struct qmp_write {
    uv_write_t req;
    char *text;
};

static void cjson_deletep(cJSON **json)
{
    cJSON_Delete(*json);
}
#define _cleanup_json_ _cleanup_(cjson_deletep)

/* ---- lifetime ------------------------------------------------------------------------ */

static void qmp_free(struct qmp *qmp)
{
    wr_buf_free(&qmp->line);
    free(qmp->path);
    free(qmp);
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct qmp *qmp = handle->data;
    if (handle == (uv_handle_t *)&qmp->pipe)
        qmp->pipe_open = false;
    if (--qmp->open_handles > 0 || qmp->held)
        return;
    qmp_free(qmp);
}

static void close_handle(struct qmp *qmp, uv_handle_t *handle)
{
    (void)qmp;
    if (!uv_is_closing(handle))
        uv_close(handle, on_handle_closed);
}

static void fail_pending(struct qmp *qmp, int status, const char *why)
{
    while (qmp->pending) {
        struct qmp_pending *p = qmp->pending;
        qmp->pending = p->next;
        struct wr_error *err = NULL;
        wr_error_set(&err, status, "QMP %s: %s", qmp->path, why);
        p->cb(p->data, NULL, err);
        free(p);
    }
}

static void drop_pending(struct qmp *qmp)
{
    while (qmp->pending) {
        struct qmp_pending *p = qmp->pending;
        qmp->pending = p->next;
        free(p);
    }
}

/* Ends the connection: before READY the ready callback learns why, after it the pending
 * commands and the event callback do. */
static void qmp_fail(struct qmp *qmp, struct wr_error *err)
{
    enum qmp_state state = qmp->state;
    if (state == QMP_CLOSED) {
        wr_error_free(err);
        return;
    }
    qmp->state = QMP_CLOSED;
    close_handle(qmp, (uv_handle_t *)&qmp->timer);
    close_handle(qmp, (uv_handle_t *)&qmp->retry);
    if (qmp->pipe_open)
        close_handle(qmp, (uv_handle_t *)&qmp->pipe);
    if (state != QMP_READY) {
        drop_pending(qmp); /* only the internal qmp_capabilities entry */
        qmp->ready_cb(qmp->ready_data, NULL, err);
        return;
    }
    fail_pending(qmp, err->status, err->msg);
    wr_error_free(err);
    if (qmp->event_cb)
        qmp->event_cb(qmp->event_data, NULL, NULL);
}

void qmp_close(struct qmp *qmp)
{
    if (!qmp)
        return;
    qmp->held = false;
    if (qmp->state == QMP_CLOSED) {
        /* The connection dropped earlier: free once its handles are closed too. */
        if (qmp->open_handles == 0)
            qmp_free(qmp);
        return;
    }
    enum qmp_state state = qmp->state;
    qmp->state = QMP_CLOSED;
    close_handle(qmp, (uv_handle_t *)&qmp->timer);
    close_handle(qmp, (uv_handle_t *)&qmp->retry);
    if (qmp->pipe_open)
        close_handle(qmp, (uv_handle_t *)&qmp->pipe);
    if (state == QMP_READY)
        fail_pending(qmp, ECANCELED, "connection closed");
    else
        drop_pending(qmp); /* a cancelled connect: only the internal qmp_capabilities */
}

void qmp_set_event_cb(struct qmp *qmp, qmp_event_cb cb, void *data)
{
    qmp->event_cb = cb;
    qmp->event_data = data;
}

/* ---- writing ------------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    struct qmp_write *w = (struct qmp_write *)req;
    struct qmp *qmp = req->data;
    free(w->text);
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        struct wr_error *err = NULL;
        wr_error_set(&err, -status, "QMP %s: write: %s", qmp->path, uv_strerror(status));
        qmp_fail(qmp, err);
    }
}

/* Queues one command line; the reply goes to cb. */
static int send_command(struct qmp *qmp, const char *command, cJSON *arguments, qmp_reply_cb cb,
                        void *data, struct wr_error **err)
{
    _cleanup_json_ cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "execute", command);
    if (arguments)
        cJSON_AddItemToObject(msg, "arguments", arguments);
    uint64_t id = qmp->next_id++;
    cJSON_AddNumberToObject(msg, "id", (double)id);
    char *text = cJSON_PrintUnformatted(msg);
    struct qmp_write *w = wr_calloc(1, sizeof(*w));
    w->text = wr_asprintf("%s\n", text);
    cJSON_free(text);
    w->req.data = qmp;
    uv_buf_t buf = uv_buf_init(w->text, (unsigned)strlen(w->text));
    int r = uv_write(&w->req, (uv_stream_t *)&qmp->pipe, &buf, 1, on_written);
    if (r < 0) {
        free(w->text);
        free(w);
        return wr_error_set(err, -r, "QMP %s: write: %s", qmp->path, uv_strerror(r));
    }
    struct qmp_pending *p = wr_calloc(1, sizeof(*p));
    *p = (struct qmp_pending){.id = id, .cb = cb, .data = data};
    struct qmp_pending **tail = &qmp->pending;
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
    return 0;
}

int qmp_execute(struct qmp *qmp, const char *command, cJSON *arguments, qmp_reply_cb cb, void *data,
                struct wr_error **err)
{
    if (qmp->state != QMP_READY) {
        cJSON_Delete(arguments);
        return wr_error_set(err, ENOTCONN, "QMP %s: not connected", qmp->path);
    }
    return send_command(qmp, command, arguments, cb, data, err);
}

/* ---- reading ------------------------------------------------------------------------- */

static struct qmp_pending *take_pending(struct qmp *qmp, const cJSON *id)
{
    if (!cJSON_IsNumber(id))
        return NULL;
    for (struct qmp_pending **p = &qmp->pending; *p; p = &(*p)->next) {
        if ((double)(*p)->id == id->valuedouble) {
            struct qmp_pending *found = *p;
            *p = found->next;
            return found;
        }
    }
    return NULL;
}

static struct wr_error *reply_error(struct qmp *qmp, const cJSON *error)
{
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(error, "class");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(error, "desc");
    struct wr_error *err = NULL;
    wr_error_set(&err, EIO, "QMP %s: %s: %s", qmp->path,
                 cJSON_IsString(cls) ? cls->valuestring : "Error",
                 cJSON_IsString(desc) ? desc->valuestring : "(no description)");
    return err;
}

static void handle_reply(struct qmp *qmp, const cJSON *msg)
{
    struct qmp_pending *p = take_pending(qmp, cJSON_GetObjectItemCaseSensitive(msg, "id"));
    if (!p)
        return; /* a reply nobody waits for (its command was cancelled) */
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(msg, "error");
    if (error)
        p->cb(p->data, NULL, reply_error(qmp, error));
    else
        p->cb(p->data, cJSON_GetObjectItemCaseSensitive(msg, "return"), NULL);
    free(p);
}

static void on_capabilities(void *data, const cJSON *ret, struct wr_error *err)
{
    struct qmp *qmp = data;
    (void)ret;
    if (err) {
        qmp_fail(qmp, err);
        return;
    }
    qmp->state = QMP_READY;
    qmp->held = true;
    (void)uv_timer_stop(&qmp->timer);
    qmp->ready_cb(qmp->ready_data, qmp, NULL);
}

static void handle_greeting(struct qmp *qmp, const cJSON *msg)
{
    struct wr_error *err = NULL;
    if (!cJSON_GetObjectItemCaseSensitive(msg, "QMP")) {
        wr_error_set(&err, EPROTO, "QMP %s: no greeting", qmp->path);
        qmp_fail(qmp, err);
        return;
    }
    qmp->state = QMP_NEGOTIATING;
    if (send_command(qmp, "qmp_capabilities", NULL, on_capabilities, qmp, &err) < 0)
        qmp_fail(qmp, err);
}

static void handle_line(struct qmp *qmp, const char *text, size_t len)
{
    _cleanup_json_ cJSON *msg = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(msg)) {
        struct wr_error *err = NULL;
        wr_error_set(&err, EPROTO, "QMP %s: a line that is not a JSON object", qmp->path);
        qmp_fail(qmp, err);
        return;
    }
    const cJSON *event = cJSON_GetObjectItemCaseSensitive(msg, "event");
    if (qmp->state == QMP_GREETING)
        handle_greeting(qmp, msg);
    else if (cJSON_IsString(event) && qmp->event_cb)
        qmp->event_cb(qmp->event_data, event->valuestring, msg);
    else if (!event)
        handle_reply(qmp, msg);
}

/* Hands every complete line to handle_line; stops when a callback closed the connection. */
static void drain_lines(struct qmp *qmp)
{
    char *nl;
    while (qmp->state != QMP_CLOSED && qmp->line.data &&
           (nl = memchr(qmp->line.data, '\n', qmp->line.len))) {
        size_t len = (size_t)(nl - qmp->line.data);
        if (len > 0)
            handle_line(qmp, qmp->line.data, len);
        if (qmp->state != QMP_CLOSED)
            wr_buf_consume(&qmp->line, len + 1);
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct qmp *qmp = handle->data;
    (void)suggested;
    *buf = uv_buf_init(qmp->scratch, sizeof(qmp->scratch));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct qmp *qmp = stream->data;
    struct wr_error *err = NULL;
    if (nread < 0) {
        wr_error_set(&err, ECONNRESET, "QMP %s: connection closed%s%s", qmp->path,
                     nread == UV_EOF ? "" : ": ", nread == UV_EOF ? "" : uv_strerror((int)nread));
        qmp_fail(qmp, err);
        return;
    }
    if (wr_buf_append(&qmp->line, buf->base, (size_t)nread) < 0) {
        wr_error_set(&err, EMSGSIZE, "QMP %s: a line longer than %u bytes", qmp->path,
                     QMP_LINE_MAX);
        qmp_fail(qmp, err);
        return;
    }
    drain_lines(qmp);
}

/* ---- connecting ---------------------------------------------------------------------- */

static void start_connect(struct qmp *qmp);

static void on_retry_timer(uv_timer_t *timer)
{
    struct qmp *qmp = timer->data;
    start_connect(qmp);
}

static void on_pipe_closed_for_retry(uv_handle_t *handle)
{
    struct qmp *qmp = handle->data;
    qmp->pipe_open = false;
    if (qmp->state != QMP_CONNECTING) {
        /* Closed (qmp_close or a failure) while this pipe was closing: it may be the last
         * handle, and then the struct goes as with any other close. */
        on_handle_closed(handle);
        return;
    }
    qmp->open_handles--;
    int r = uv_timer_start(&qmp->retry, on_retry_timer, RETRY_MS, 0);
    if (r < 0) {
        struct wr_error *err = NULL;
        wr_error_set(&err, -r, "QMP %s: timer: %s", qmp->path, uv_strerror(r));
        qmp_fail(qmp, err);
    }
}

static void on_connected(uv_connect_t *req, int status)
{
    struct qmp *qmp = req->data;
    if (qmp->state != QMP_CONNECTING)
        return;
    bool retry = status == UV_ENOENT || status == UV_ECONNREFUSED || status == UV_EAGAIN;
    struct wr_error *err = NULL;
    if (status < 0 && retry) { /* the deadline timer ends the retries */
        uv_close((uv_handle_t *)&qmp->pipe, on_pipe_closed_for_retry);
        return;
    }
    if (status < 0) {
        wr_error_set(&err, -status, "QMP %s: connect: %s", qmp->path, uv_strerror(status));
        qmp_fail(qmp, err);
        return;
    }
    qmp->state = QMP_GREETING;
    int r = uv_read_start((uv_stream_t *)&qmp->pipe, on_alloc, on_read);
    if (r < 0) {
        wr_error_set(&err, -r, "QMP %s: read: %s", qmp->path, uv_strerror(r));
        qmp_fail(qmp, err);
    }
}

static void start_connect(struct qmp *qmp)
{
    uv_pipe_init(qmp->loop, &qmp->pipe, 0);
    qmp->pipe.data = qmp;
    qmp->pipe_open = true;
    qmp->open_handles++;
    qmp->connect_req.data = qmp;
    uv_pipe_connect(&qmp->connect_req, &qmp->pipe, qmp->path, on_connected);
}

static void on_deadline(uv_timer_t *timer)
{
    struct qmp *qmp = timer->data;
    struct wr_error *err = NULL;
    wr_error_set(&err, ETIMEDOUT, "QMP %s: no answer within %u ms", qmp->path, qmp->timeout_ms);
    qmp_fail(qmp, err);
}

int qmp_connect(uv_loop_t *loop, const char *socket_path, uint32_t timeout_ms, qmp_ready_cb cb,
                void *data, struct qmp **ret_qmp, struct wr_error **err)
{
    if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return wr_error_set(err, ENAMETOOLONG, "QMP socket path %s is too long", socket_path);
    struct qmp *qmp = wr_calloc(1, sizeof(*qmp));
    qmp->loop = loop;
    qmp->path = wr_strdup(socket_path);
    qmp->timeout_ms = timeout_ms;
    qmp->ready_cb = cb;
    qmp->ready_data = data;
    qmp->next_id = 1;
    wr_buf_init(&qmp->line, QMP_LINE_MAX);
    uv_timer_init(loop, &qmp->timer);
    uv_timer_init(loop, &qmp->retry);
    qmp->timer.data = qmp->retry.data = qmp;
    qmp->open_handles = 2;
    int r = uv_timer_start(&qmp->timer, on_deadline, timeout_ms, 0);
    if (r < 0) {
        qmp->state = QMP_CLOSED;
        close_handle(qmp, (uv_handle_t *)&qmp->timer);
        close_handle(qmp, (uv_handle_t *)&qmp->retry);
        return wr_error_set(err, -r, "QMP %s: timer: %s", socket_path, uv_strerror(r));
    }
    start_connect(qmp);
    if (ret_qmp)
        *ret_qmp = qmp;
    return 0;
}

/* ---- blocking one-shot --------------------------------------------------------------- */

struct sync_conn {
    int fd;
    uint64_t deadline_ms;
    struct wr_buf in;
    const char *path;
};

/* Reads the next line (without its '\n') into a new cJSON object. */
static int sync_read_message(struct sync_conn *c, cJSON **ret, struct wr_error **err)
{
    for (;;) {
        char *nl = c->in.data ? memchr(c->in.data, '\n', c->in.len) : NULL;
        if (nl) {
            *ret = cJSON_ParseWithLength(c->in.data, (size_t)(nl - c->in.data));
            wr_buf_consume(&c->in, (size_t)(nl - c->in.data) + 1);
            if (!cJSON_IsObject(*ret))
                return wr_error_set(err, EPROTO, "QMP %s: a line that is not JSON", c->path);
            return 0;
        }
        uint64_t now = wr_now_ms();
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int n = now < c->deadline_ms ? poll(&pfd, 1, (int)(c->deadline_ms - now)) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return wr_error_set(err, ETIMEDOUT, "QMP %s: no answer in time", c->path);
        char chunk[READ_CHUNK];
        ssize_t got = read(c->fd, chunk, sizeof(chunk));
        if (got <= 0)
            return wr_error_set(err, ECONNRESET, "QMP %s: connection closed", c->path);
        if (wr_buf_append(&c->in, chunk, (size_t)got) < 0)
            return wr_error_set(err, EMSGSIZE, "QMP %s: line too long", c->path);
    }
}

/* Sends a command and reads up to its reply, skipping events. */
static int sync_call(struct sync_conn *c, const char *command, const cJSON *arguments,
                     cJSON **ret_reply, struct wr_error **err)
{
    cJSON *msg_out = cJSON_CreateObject();
    cJSON_AddStringToObject(msg_out, "execute", command);
    if (arguments)
        cJSON_AddItemToObject(msg_out, "arguments", cJSON_Duplicate(arguments, true));
    _cleanup_free_ char *text = cJSON_PrintUnformatted(msg_out);
    cJSON_Delete(msg_out);
    _cleanup_free_ char *line = wr_asprintf("%s\n", text);
    if (wr_write_all(c->fd, line, strlen(line)) < 0)
        return wr_error_set_errno(err, errno, "QMP %s: write", c->path);
    for (;;) {
        cJSON *msg = NULL;
        int r = sync_read_message(c, &msg, err);
        if (r < 0) {
            cJSON_Delete(msg);
            return r;
        }
        if (!cJSON_GetObjectItemCaseSensitive(msg, "event")) {
            *ret_reply = msg;
            return 0;
        }
        cJSON_Delete(msg);
    }
}

static int sync_connect(struct sync_conn *c, struct wr_error **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(c->path) >= sizeof(addr.sun_path))
        return wr_error_set(err, ENAMETOOLONG, "QMP socket path %s is too long", c->path);
    strcpy(addr.sun_path, c->path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return wr_error_set_errno(err, errno, "QMP %s: connect", c->path);
    _cleanup_json_ cJSON *greeting = NULL;
    int r = sync_read_message(c, &greeting, err);
    if (r < 0)
        return r;
    _cleanup_json_ cJSON *reply = NULL;
    r = sync_call(c, "qmp_capabilities", NULL, &reply, err);
    if (r >= 0 && !cJSON_GetObjectItemCaseSensitive(reply, "return"))
        r = wr_error_set(err, EPROTO, "QMP %s: capabilities refused", c->path);
    return r;
}

static int sync_reply_to(const char *socket_path, const char *command, const cJSON *reply,
                         char **ret_json, struct wr_error **err)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
    if (error) {
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(error, "desc");
        return wr_error_set(err, EIO, "QMP %s: %s: %s", socket_path, command,
                            cJSON_IsString(desc) ? desc->valuestring : "error");
    }
    if (ret_json) {
        char *text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(reply, "return"));
        *ret_json = text ? wr_strdup(text) : NULL;
        cJSON_free(text);
    }
    return 0;
}

int qmp_execute_sync(const char *socket_path, const char *command, uint32_t timeout_ms,
                     char **ret_json, struct wr_error **err)
{
    return qmp_execute_sync_args(socket_path, command, NULL, timeout_ms, ret_json, err);
}

int qmp_execute_sync_args(const char *socket_path, const char *command, const cJSON *arguments,
                          uint32_t timeout_ms, char **ret_json, struct wr_error **err)
{
    struct sync_conn c = {.fd = -1, .deadline_ms = wr_now_ms() + timeout_ms, .path = socket_path};
    wr_buf_init(&c.in, QMP_LINE_MAX);
    _cleanup_json_ cJSON *reply = NULL;
    _cleanup_error_ struct wr_error *call_err = NULL;
    int r = sync_connect(&c, err);
    if (r >= 0) {
        r = sync_call(&c, command, arguments, &reply, &call_err);
        /* QEMU may close the connection on quit before its reply reaches us. */
        if (r == -ECONNRESET && !strcmp(command, "quit"))
            r = 0;
        else if (r < 0)
            wr_error_move(err, &call_err);
    }
    if (r >= 0 && reply)
        r = sync_reply_to(socket_path, command, reply, ret_json, err);
    wr_buf_free(&c.in);
    if (c.fd >= 0)
        close(c.fd);
    return r;
}
