/* Cloud Hypervisor's REST API over its unix socket, and its hybrid vsock handshake.
 *
 * The wire facts this file relies on (shared/spec/README.md, shared/CH-NOTES.md, and CH's
 * vmm/src/api/http/mod.rs with the micro_http crate behind it):
 *   - every endpoint is PUT except GET vmm.ping and vm.info; the action endpoints answer
 *     400 to a body, so they get `Content-Length: 0` and nothing else;
 *   - replies start `HTTP/1.1 204 \r\n` (no reason phrase); 204 carries no Content-Length,
 *     everything else does (vmm.shutdown: 200 with Content-Length 0);
 *   - errors are a JSON array of strings, outermost first; 404 for "no VM", 500 for the
 *     rest, newer servers also 400/409/429; never 405;
 *   - the connection is kept alive; chunked request bodies are not read. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ch-api.h"
#include "vmm/backends/vmfs.h"

/* ---- the calls ------------------------------------------------------------------------ */

struct op_info {
    const char *name;
    const char *method;
    bool has_body;
};

static const struct op_info ops[CH_API_OP_COUNT] = {
    [CH_VMM_PING] = {"vmm.ping", "GET", false},
    [CH_VM_CREATE] = {"vm.create", "PUT", true},
    [CH_VM_BOOT] = {"vm.boot", "PUT", false},
    [CH_VM_INFO] = {"vm.info", "GET", false},
    [CH_VM_PAUSE] = {"vm.pause", "PUT", false},
    [CH_VM_RESUME] = {"vm.resume", "PUT", false},
    [CH_VM_RESIZE] = {"vm.resize", "PUT", true},
    [CH_VM_SNAPSHOT] = {"vm.snapshot", "PUT", true},
    [CH_VM_RESTORE] = {"vm.restore", "PUT", true},
    [CH_VM_SHUTDOWN] = {"vm.shutdown", "PUT", false},
    [CH_VMM_SHUTDOWN] = {"vmm.shutdown", "PUT", false},
};

static bool op_valid(enum ch_api_op op)
{
    return (unsigned)op < CH_API_OP_COUNT;
}

const char *ch_api_op_name(enum ch_api_op op)
{
    return op_valid(op) ? ops[op].name : "?";
}
const char *ch_api_op_method(enum ch_api_op op)
{
    return op_valid(op) ? ops[op].method : "?";
}
bool ch_api_op_has_body(enum ch_api_op op)
{
    return op_valid(op) && ops[op].has_body;
}

/* ---- request bodies ------------------------------------------------------------------- */

static void cjson_deletep(cJSON **json)
{
    cJSON_Delete(*json);
}
#define _cleanup_json_ _cleanup_(cjson_deletep)

char *ch_api_path(const struct vmm_sandbox_spec *spec, const char *name)
{
    return wr_path_join(spec->dir, name);
}

char *ch_api_vmm_path(const struct vmm_sandbox_spec *spec, const char *name)
{
    return wr_asprintf("%s/" CH_VMM_DIR "/%s", spec->dir, name);
}

char *ch_api_cmdline(const struct vmm_sandbox_spec *spec)
{
    /* panic=-1 reboots at once on a guest panic, and a guest reboot or power-off ends the
     * VMM: a crashed guest shows up as a dead sandbox instead of a hung one. */
    return wr_asprintf("console=ttyS0 panic=-1 quiet warren.vsock=%d warren.hostname=%s "
                       "warren.root=%s warren.workspace=%s",
                       CH_VSOCK_AGENT_PORT, spec->hostname ? spec->hostname : spec->id,
                       VMM_VMFS_TAG_ROOT, VMM_VMFS_TAG_WORKSPACE);
}

/* The guest's vsock context id: 0 means "not assigned", and 0-2 and 0xFFFFFFFF are
 * reserved (CH refuses them). */
static uint32_t vsock_cid(const struct vmm_sandbox_spec *spec)
{
    return spec->vsock_cid == 0 ? 3 : spec->vsock_cid;
}

static int spec_check(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    if (!spec || !spec->dir || !spec->id)
        return wr_error_set(err, EINVAL, "cloud-hypervisor: vm.create needs a sandbox spec");
    if (!spec->kernel_path || !spec->initrd_path)
        return wr_error_set(err, EINVAL, "cloud-hypervisor: no guest kernel/initramfs given");
    if (spec->memory_bytes == 0)
        return wr_error_set(err, EINVAL, "cloud-hypervisor: guest memory size is 0");
    uint32_t cid = vsock_cid(spec);
    if (cid < 3 || cid == UINT32_MAX)
        return wr_error_set(err, EINVAL, "cloud-hypervisor: vsock cid %u is reserved", cid);
    return 0;
}

static cJSON *fs_share(const struct vmm_sandbox_spec *spec, const char *tag)
{
    _cleanup_free_ char *socket = vmm_vmfs_socket(spec, tag);
    cJSON *fs = cJSON_CreateObject();
    cJSON_AddStringToObject(fs, "tag", tag);
    cJSON_AddStringToObject(fs, "socket", socket);
    /* Debian's C virtiofsd offers 2 request queues; CH wants exactly what it gets. */
    cJSON_AddNumberToObject(fs, "num_queues", 1);
    cJSON_AddNumberToObject(fs, "queue_size", 1024);
    return fs;
}

static cJSON *object_with(cJSON *parent, const char *name)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(parent, name, o);
    return o;
}

static void add_machine(cJSON *config, const struct vmm_sandbox_spec *spec)
{
    unsigned cpus = spec->cpus ? spec->cpus : 1;
    cJSON *c = object_with(config, "cpus");
    cJSON_AddNumberToObject(c, "boot_vcpus", cpus);
    cJSON_AddNumberToObject(c, "max_vcpus", cpus);
    cJSON *m = object_with(config, "memory");
    cJSON_AddNumberToObject(m, "size", (double)spec->memory_bytes);
    /* virtiofs needs shared memory, and with it an inflated balloon or a reported free
     * page becomes a hole punched in the memfd: memory really goes back to the host. */
    cJSON_AddTrueToObject(m, "shared");
    cJSON *p = object_with(config, "payload");
    _cleanup_free_ char *cmdline = ch_api_cmdline(spec);
    cJSON_AddStringToObject(p, "kernel", spec->kernel_path);
    cJSON_AddStringToObject(p, "initramfs", spec->initrd_path);
    cJSON_AddStringToObject(p, "cmdline", cmdline);
}

static void add_devices(cJSON *config, const struct vmm_sandbox_spec *spec)
{
    cJSON *fs = cJSON_CreateArray();
    cJSON_AddItemToArray(fs, fs_share(spec, VMM_VMFS_TAG_ROOT));
    cJSON_AddItemToArray(fs, fs_share(spec, VMM_VMFS_TAG_WORKSPACE));
    cJSON_AddItemToObject(config, "fs", fs);
    /* Size 0: nothing taken at boot; free page reporting hands back what the guest frees,
     * and vm.resize inflates it when the sandbox idles. */
    cJSON *b = object_with(config, "balloon");
    cJSON_AddNumberToObject(b, "size", 0);
    cJSON_AddTrueToObject(b, "deflate_on_oom");
    cJSON_AddTrueToObject(b, "free_page_reporting");
    _cleanup_free_ char *vsock = ch_api_vmm_path(spec, "vsock.sock");
    cJSON *v = object_with(config, "vsock");
    cJSON_AddNumberToObject(v, "cid", vsock_cid(spec));
    cJSON_AddStringToObject(v, "socket", vsock);
    /* CH's defaults would put the console on the VMM's tty and drop the serial port: the
     * serial port goes to a file (the boot log start errors quote) and the console off. */
    _cleanup_free_ char *serial_log = ch_api_vmm_path(spec, "serial.log");
    cJSON *s = object_with(config, "serial");
    cJSON_AddStringToObject(s, "mode", "File");
    cJSON_AddStringToObject(s, "file", serial_log);
    cJSON_AddStringToObject(object_with(config, "console"), "mode", "Off");
}

static char *vm_config_json(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    if (spec_check(spec, err) < 0)
        return NULL;
    _cleanup_json_ cJSON *config = cJSON_CreateObject();
    add_machine(config, spec);
    add_devices(config, spec);
    return cJSON_PrintUnformatted(config);
}

static char *url_json(const char *field, const char *url, struct wr_error **err)
{
    if (!url || strncmp(url, "file://", 7) != 0) {
        wr_error_set(err, EINVAL, "cloud-hypervisor: %s must be a file:// URL", field);
        return NULL;
    }
    _cleanup_json_ cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, field, url);
    return cJSON_PrintUnformatted(o);
}

char *ch_api_body(enum ch_api_op op, const struct ch_api_args *args, struct wr_error **err)
{
    static const struct ch_api_args none = {0};
    if (!args)
        args = &none;
    switch (op) {
    case CH_VM_CREATE:
        return vm_config_json(args->spec, err);
    case CH_VM_RESIZE:
        /* Printed by hand: cJSON's double would round sizes past 2^53. */
        return wr_asprintf("{\"desired_balloon\":%llu}", (unsigned long long)args->desired_balloon);
    case CH_VM_SNAPSHOT:
        return url_json("destination_url", args->url, err);
    case CH_VM_RESTORE:
        return url_json("source_url", args->url, err);
    default:
        return NULL;
    }
}

/* ---- the response parser ---------------------------------------------------------------- */

static struct ch_response_parser *parser_of(http_parser *hp)
{
    return (struct ch_response_parser *)((char *)hp - offsetof(struct ch_response_parser, parser));
}

static int count_header(struct ch_response_parser *p, size_t n)
{
    p->header_bytes += n;
    return p->header_bytes > CH_API_HEADER_MAX ? -1 : 0;
}

static int on_status(http_parser *hp, const char *at, size_t n)
{
    return count_header(parser_of(hp), n);
}

static int on_header_data(http_parser *hp, const char *at, size_t n)
{
    return count_header(parser_of(hp), n);
}

static int on_headers_complete(http_parser *hp)
{
    struct ch_response_parser *p = parser_of(hp);
    p->status = hp->status_code;
    /* Refuse a declared oversize body before reading it. http_parser sets content_length
     * to ULLONG_MAX when there is none. */
    if (hp->content_length != ULLONG_MAX && hp->content_length > CH_API_RESPONSE_MAX)
        return -1;
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    return wr_buf_append(&parser_of(hp)->body, at, n) < 0 ? -1 : 0;
}

static int on_message_complete(http_parser *hp)
{
    parser_of(hp)->complete = true;
    /* One reply per call: bytes after it belong to the next one, parsed after next(). */
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_status = on_status,
    .on_header_field = on_header_data,
    .on_header_value = on_header_data,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void ch_response_parser_init(struct ch_response_parser *p)
{
    memset(p, 0, sizeof(*p));
    http_parser_init(&p->parser, HTTP_RESPONSE);
    wr_buf_init(&p->body, CH_API_RESPONSE_MAX);
}

void ch_response_parser_free(struct ch_response_parser *p)
{
    wr_buf_free(&p->body);
}

ssize_t ch_response_parser_feed(struct ch_response_parser *p, const char *data, size_t len)
{
    if (p->failed)
        return -1;
    if (p->complete || len == 0)
        return 0;
    size_t n = http_parser_execute(&p->parser, &parser_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
    if (e == HPE_OK || (e == HPE_PAUSED && p->complete))
        return (ssize_t)n;
    p->failed = true;
    return -1;
}

void ch_response_parser_next(struct ch_response_parser *p)
{
    wr_buf_reset(&p->body);
    p->header_bytes = 0;
    p->status = 0;
    p->complete = false;
    http_parser_pause(&p->parser, 0);
}

/* ---- errors and vm.info ---------------------------------------------------------------- */

static int status_errno(int http_status)
{
    switch (http_status) {
    case 400:
        return EINVAL;
    case 404:
        return ENOENT; /* no VM created, or no such endpoint */
    case 405:
        return EPERM;
    case 409:
        return EEXIST;
    case 429:
        return EBUSY; /* a vCPU removal is still pending */
    case 500:
        return EIO;
    default:
        return EPROTO;
    }
}

/* "a: b: c" from a JSON array of strings, or NULL when the body is something else. */
static char *join_messages(const char *body, size_t len)
{
    _cleanup_json_ cJSON *json = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsArray(json) || cJSON_GetArraySize(json) == 0)
        return NULL;
    struct wr_buf out;
    wr_buf_init(&out, 4096);
    const cJSON *item;
    cJSON_ArrayForEach(item, json)
    {
        if (!cJSON_IsString(item)) {
            wr_buf_free(&out);
            return NULL;
        }
        /* Past the cap the rest is dropped: the outermost messages matter most. */
        (void)wr_buf_printf(&out, "%s%s", out.len ? ": " : "", item->valuestring);
    }
    return wr_buf_steal(&out, NULL);
}

int ch_api_status_error(enum ch_api_op op, int http_status, const char *body, size_t len,
                        struct wr_error **err)
{
    _cleanup_free_ char *msg = body && len ? join_messages(body, len) : NULL;
    if (!msg && body && len)
        msg = wr_utf8_sanitize(body, WR_MIN(len, (size_t)512));
    return wr_error_set(err, status_errno(http_status), "cloud-hypervisor: %s: %d%s%s",
                        ch_api_op_name(op), http_status, msg ? ": " : "", msg ? msg : "");
}

int ch_api_parse_vm_info(const char *body, size_t len, struct ch_vm_info *ret,
                         struct wr_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_json_ cJSON *json = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(json, "state");
    if (!cJSON_IsString(state) || strlen(state->valuestring) >= sizeof(ret->state))
        return wr_error_set(err, EPROTO, "cloud-hypervisor: vm.info: no VM state in the reply");
    strcpy(ret->state, state->valuestring);
    const cJSON *actual = cJSON_GetObjectItemCaseSensitive(json, "memory_actual_size");
    if (cJSON_IsNumber(actual) && actual->valuedouble > 0)
        ret->memory_actual_size = (uint64_t)actual->valuedouble;
    return 0;
}

/* ---- the connection --------------------------------------------------------------------- */

struct ch_call {
    struct ch_call *next;
    enum ch_api_op op;
    char *wire;
    size_t wire_len;
    uint32_t timeout_ms;
    ch_api_cb cb;
    void *data;
};

/* One connection to the API socket. Replaced when it breaks; the old one is freed by its
 * close callback, and its late callbacks see api == NULL and do nothing. */
struct ch_conn {
    uv_pipe_t pipe;
    uv_connect_t connect;
    struct ch_api *api; /* NULL once dropped */
    struct ch_api *owner;
    bool connected;
};

struct ch_write {
    uv_write_t req;
    char data[];
};

struct ch_api {
    uv_loop_t *loop;
    char *socket_path;
    struct ch_conn *conn;
    struct ch_call *head; /* the call in flight (when in_flight) and the queue behind it */
    struct ch_call **tail;
    bool in_flight;
    bool closed;
    /* Kicks the next call off from the loop, then bounds the one in flight. */
    uv_timer_t timer;
    struct ch_response_parser parser;
    char read_buf[16384];
    int open_handles;
};

static void api_maybe_free(struct ch_api *api)
{
    if (!api->closed || api->open_handles > 0)
        return;
    ch_response_parser_free(&api->parser);
    free(api->socket_path);
    free(api);
}

static void on_conn_closed(uv_handle_t *handle)
{
    struct ch_conn *conn = handle->data;
    struct ch_api *api = conn->owner;
    free(conn);
    api->open_handles--;
    api_maybe_free(api);
}

static void on_timer_closed(uv_handle_t *handle)
{
    struct ch_api *api = handle->data;
    api->open_handles--;
    api_maybe_free(api);
}

/* Drops the connection and with it any half-read reply. */
static void drop_conn(struct ch_api *api)
{
    struct ch_conn *conn = api->conn;
    if (!conn)
        return;
    api->conn = NULL;
    conn->api = NULL;
    uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
    ch_response_parser_free(&api->parser);
    ch_response_parser_init(&api->parser);
}

static void on_timer(uv_timer_t *timer);

static void kick(struct ch_api *api)
{
    if (!api->closed && !api->in_flight && api->head)
        uv_timer_start(&api->timer, on_timer, 0, 0);
}

static struct ch_call *pop_head(struct ch_api *api)
{
    struct ch_call *call = api->head;
    api->head = call->next;
    if (!api->head)
        api->tail = &api->head;
    api->in_flight = false;
    uv_timer_stop(&api->timer);
    return call;
}

static void call_free(struct ch_call *call)
{
    free(call->wire);
    free(call);
}

static void fail_head(struct ch_api *api, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_head(struct ch_api *api, int status, const char *fmt, ...)
{
    struct ch_call *call = pop_head(api);
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    struct wr_error *err = NULL;
    wr_error_set(&err, status, "cloud-hypervisor: %s: %s", ch_api_op_name(call->op), msg);
    call->cb(call->data, 0, NULL, 0, err);
    call_free(call);
}

/* The reply to the call in flight is in: hand it over and move on. */
static void complete_head(struct ch_api *api)
{
    struct ch_call *call = pop_head(api);
    int status = api->parser.status;
    size_t len;
    _cleanup_free_ char *body = wr_buf_steal(&api->parser.body, &len);
    ch_response_parser_next(&api->parser);
    struct wr_error *err = NULL;
    if (status < 200 || status > 299)
        ch_api_status_error(call->op, status, body, len, &err);
    call->cb(call->data, err ? 0 : status, err ? NULL : body, err ? 0 : len, err);
    call_free(call);
    kick(api);
}

static void conn_broke(struct ch_api *api, int status, const char *what)
{
    drop_conn(api);
    if (api->in_flight)
        fail_head(api, status, "%s", what);
    kick(api);
}

static void on_write(uv_write_t *req, int status)
{
    struct ch_conn *conn = req->handle->data;
    free(req);
    if (status < 0 && conn->api)
        conn_broke(conn->api, -status, uv_strerror(status));
}

static void send_head(struct ch_api *api)
{
    struct ch_call *call = api->head;
    struct ch_write *w = wr_malloc(sizeof(*w) + call->wire_len);
    memcpy(w->data, call->wire, call->wire_len);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)call->wire_len);
    int r = uv_write(&w->req, (uv_stream_t *)&api->conn->pipe, &buf, 1, on_write);
    if (r < 0) {
        free(w);
        conn_broke(api, -r, uv_strerror(r));
    }
}

static void feed_reply(struct ch_api *api, const char *data, size_t len)
{
    if (!api->in_flight) {
        /* Nothing was asked: the server is confused. Start over on a fresh connection. */
        drop_conn(api);
        return;
    }
    ssize_t n = ch_response_parser_feed(&api->parser, data, len);
    if (n < 0) {
        conn_broke(api, EPROTO, "malformed or oversized reply");
        return;
    }
    if (!api->parser.complete)
        return;
    bool trailing = (size_t)n < len;
    complete_head(api);
    /* Bytes past the reply answer nothing we sent: the stream is out of step. */
    if (trailing && !api->closed)
        drop_conn(api);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct ch_conn *conn = handle->data;
    *buf = uv_buf_init(conn->owner->read_buf, sizeof(conn->owner->read_buf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct ch_conn *conn = stream->data;
    struct ch_api *api = conn->api;
    if (!api || nread == 0)
        return;
    if (nread > 0) {
        feed_reply(api, buf->base, (size_t)nread);
        return;
    }
    conn_broke(api, nread == UV_EOF ? ECONNRESET : (int)-nread,
               nread == UV_EOF ? "the VMM closed the connection before replying"
                               : uv_strerror((int)nread));
}

static void on_connect(uv_connect_t *req, int status)
{
    struct ch_conn *conn = req->data;
    struct ch_api *api = conn->api;
    if (!api)
        return;
    if (status < 0) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof(what), "connecting to %s: %s", api->socket_path, uv_strerror(status));
        conn_broke(api, -status, what);
        return;
    }
    conn->connected = true;
    int r = uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read);
    if (r < 0)
        conn_broke(api, -r, uv_strerror(r));
    else if (api->in_flight)
        send_head(api);
}

static void open_conn(struct ch_api *api)
{
    struct ch_conn *conn = wr_calloc(1, sizeof(*conn));
    conn->api = conn->owner = api;
    uv_pipe_init(api->loop, &conn->pipe, 0);
    conn->pipe.data = conn->connect.data = conn;
    api->open_handles++;
    api->conn = conn;
    uv_pipe_connect(&conn->connect, &conn->pipe, api->socket_path, on_connect);
}

static void on_timer(uv_timer_t *timer)
{
    struct ch_api *api = timer->data;
    if (api->in_flight) {
        /* A late reply would be taken for the next call's: drop the connection too. */
        uint32_t ms = api->head->timeout_ms;
        drop_conn(api);
        fail_head(api, ETIMEDOUT, "no reply within %u ms", ms);
        kick(api);
        return;
    }
    if (!api->head)
        return;
    api->in_flight = true;
    uv_timer_start(&api->timer, on_timer, api->head->timeout_ms, 0);
    if (!api->conn)
        open_conn(api);
    else if (api->conn->connected)
        send_head(api);
}

struct ch_api *ch_api_new(uv_loop_t *loop, const char *socket_path)
{
    struct ch_api *api = wr_calloc(1, sizeof(*api));
    api->loop = loop;
    api->socket_path = wr_strdup(socket_path);
    api->tail = &api->head;
    ch_response_parser_init(&api->parser);
    uv_timer_init(loop, &api->timer);
    api->timer.data = api;
    api->open_handles = 1;
    return api;
}

void ch_api_close(struct ch_api *api)
{
    if (!api || api->closed)
        return;
    api->closed = true;
    drop_conn(api);
    while (api->head)
        fail_head(api, ECANCELED, "cancelled");
    uv_close((uv_handle_t *)&api->timer, on_timer_closed);
}

static char *request_wire(enum ch_api_op op, const char *body, size_t *ret_len)
{
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    (void)wr_buf_printf(&b,
                        "%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\n"
                        "Accept: application/json\r\n",
                        ch_api_op_method(op), ch_api_op_name(op));
    /* A PUT always says how long its body is, 0 included (RFC 9110 8.6): CH reads exactly
     * Content-Length bytes and knows nothing of chunked bodies. */
    if (body)
        (void)wr_buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                            strlen(body), body);
    else if (strcmp(ch_api_op_method(op), "PUT") == 0)
        (void)wr_buf_printf(&b, "Content-Length: 0\r\n\r\n");
    else
        (void)wr_buf_printf(&b, "\r\n");
    return wr_buf_steal(&b, ret_len);
}

int ch_api_call(struct ch_api *api, enum ch_api_op op, const char *body, uint32_t timeout_ms,
                ch_api_cb cb, void *data, struct wr_error **err)
{
    if (!op_valid(op))
        return wr_error_set(err, EINVAL, "cloud-hypervisor: unknown API call %d", (int)op);
    if (api->closed)
        return wr_error_set(err, ECANCELED, "cloud-hypervisor: %s: client closed",
                            ch_api_op_name(op));
    if ((body != NULL) != ch_api_op_has_body(op))
        return wr_error_set(err, EINVAL, "cloud-hypervisor: %s %s a body", ch_api_op_name(op),
                            body ? "takes no" : "needs");
    struct ch_call *call = wr_calloc(1, sizeof(*call));
    call->op = op;
    call->wire = request_wire(op, body, &call->wire_len);
    call->timeout_ms = timeout_ms;
    call->cb = cb;
    call->data = data;
    *api->tail = call;
    api->tail = &call->next;
    kick(api);
    return 0;
}

/* ---- hybrid vsock ------------------------------------------------------------------------ */

#define VSOCK_RETRY_MS 20
/* CH gives up on the guest after 2 s and closes; this only guards against a stuck peer. */
#define VSOCK_ATTEMPT_MS 2500
#define VSOCK_REPLY_MAX 4096

int ch_vsock_parse_reply(const char *buf, size_t len, size_t *ret_consumed)
{
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return len > 32 ? -1 : 0; /* CH's OK line is short; anything longer is not one */
    size_t line = (size_t)(nl - buf);
    if (line < 4 || memcmp(buf, "OK ", 3) != 0)
        return -1;
    for (size_t i = 3; i < line; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
    *ret_consumed = line + 1;
    return 1;
}

/* One connection attempt. Its own allocation because a closing poll handle cannot be
 * reused for the next attempt before its close callback. */
struct vsock_attempt {
    uv_poll_t poll;
    int fd;
    struct ch_vsock *owner;
};

struct ch_vsock {
    uv_loop_t *loop;
    char *path;
    uint32_t port;
    uint32_t timeout_ms;
    uint64_t deadline;
    uv_timer_t timer; /* the next attempt, or the current attempt's reply deadline */
    struct vsock_attempt *attempt;
    char buf[VSOCK_REPLY_MAX];
    size_t len;
    char last_error[256];
    ch_vsock_cb cb;
    void *data;
    int open_handles;
    bool done;
};

static void vsock_maybe_free(struct ch_vsock *v)
{
    if (v->open_handles > 0)
        return;
    free(v->path);
    free(v);
}

static void on_attempt_closed(uv_handle_t *handle)
{
    struct vsock_attempt *a = handle->data;
    struct ch_vsock *v = a->owner;
    if (a->fd >= 0)
        close(a->fd);
    free(a);
    v->open_handles--;
    vsock_maybe_free(v);
}

static void on_vsock_timer_closed(uv_handle_t *handle)
{
    struct ch_vsock *v = handle->data;
    v->open_handles--;
    vsock_maybe_free(v);
}

static void end_attempt(struct ch_vsock *v)
{
    if (!v->attempt)
        return;
    uv_close((uv_handle_t *)&v->attempt->poll, on_attempt_closed);
    v->attempt = NULL;
    v->len = 0;
}

static void vsock_finish(struct ch_vsock *v, int fd, struct wr_error *err)
{
    v->done = true;
    uv_close((uv_handle_t *)&v->timer, on_vsock_timer_closed);
    v->cb(v->data, fd, err ? NULL : v->buf, err ? 0 : v->len, err);
}

static void on_vsock_timer(uv_timer_t *timer);

static void attempt_failed(struct ch_vsock *v, const char *why)
{
    snprintf(v->last_error, sizeof(v->last_error), "%s", why);
    end_attempt(v);
    if (uv_now(v->loop) < v->deadline) {
        uv_timer_start(&v->timer, on_vsock_timer, VSOCK_RETRY_MS, 0);
        return;
    }
    struct wr_error *err = NULL;
    wr_error_set(&err, ETIMEDOUT,
                 "cloud-hypervisor: connecting to guest port %u over %s: %s (gave up after %u ms)",
                 v->port, v->path, v->last_error, v->timeout_ms);
    vsock_finish(v, -1, err);
}

/* The OK line is in: the stream is the guest's from here on. The fd is handed over as a
 * duplicate so that the poll handle's fd, closed with it, is never one libuv sees again. */
static void attempt_succeeded(struct ch_vsock *v, size_t consumed)
{
    int fd = fcntl(v->attempt->fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
        struct wr_error *err = NULL;
        wr_error_set_errno(&err, errno, "cloud-hypervisor: vsock: dup");
        end_attempt(v);
        vsock_finish(v, -1, err);
        return;
    }
    memmove(v->buf, v->buf + consumed, v->len - consumed);
    size_t extra = v->len - consumed;
    end_attempt(v);
    v->len = extra;
    vsock_finish(v, fd, NULL);
}

static void on_vsock_readable(uv_poll_t *poll, int status, int events)
{
    struct vsock_attempt *a = poll->data;
    struct ch_vsock *v = a->owner;
    if (status < 0) {
        attempt_failed(v, uv_strerror(status));
        return;
    }
    ssize_t n = read(a->fd, v->buf + v->len, sizeof(v->buf) - v->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        attempt_failed(v, n == 0 ? "closed without OK (nothing listens on that port yet)"
                                 : strerror(errno));
        return;
    }
    v->len += (size_t)n;
    size_t consumed = 0;
    int r = ch_vsock_parse_reply(v->buf, v->len, &consumed);
    if (r > 0)
        attempt_succeeded(v, consumed);
    else if (r < 0)
        attempt_failed(v, "the VMM answered something other than OK");
}

/* connect + CONNECT line on a non-blocking socket. A unix socket connects (or fails) at
 * once, and 13 bytes always fit an empty socket buffer, so neither needs polling. */
static int open_attempt_fd(struct ch_vsock *v)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, v->path, strlen(v->path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    char line[32];
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", v->port);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
        int e = errno ? errno : EIO;
        close(fd);
        return -e;
    }
    return fd;
}

static void start_attempt(struct ch_vsock *v)
{
    int fd = open_attempt_fd(v);
    if (fd < 0) {
        attempt_failed(v, strerror(-fd));
        return;
    }
    struct vsock_attempt *a = wr_calloc(1, sizeof(*a));
    a->fd = fd;
    a->owner = v;
    uv_poll_init(v->loop, &a->poll, fd);
    a->poll.data = a;
    v->open_handles++;
    v->attempt = a;
    int r = uv_poll_start(&a->poll, UV_READABLE, on_vsock_readable);
    if (r < 0) {
        attempt_failed(v, uv_strerror(r));
        return;
    }
    uint64_t now = uv_now(v->loop);
    uint64_t left = v->deadline > now ? v->deadline - now : 0;
    uv_timer_start(&v->timer, on_vsock_timer, WR_MIN(left, (uint64_t)VSOCK_ATTEMPT_MS), 0);
}

static void on_vsock_timer(uv_timer_t *timer)
{
    struct ch_vsock *v = timer->data;
    if (v->attempt)
        attempt_failed(v, "no OK from the VMM");
    else
        start_attempt(v);
}

int ch_vsock_connect(uv_loop_t *loop, const char *socket_path, uint32_t port, uint32_t timeout_ms,
                     ch_vsock_cb cb, void *data, struct wr_error **err)
{
    struct sockaddr_un addr;
    if (strlen(socket_path) >= sizeof(addr.sun_path))
        return wr_error_set(err, ENAMETOOLONG, "vsock socket path too long: %s", socket_path);
    struct ch_vsock *v = wr_calloc(1, sizeof(*v));
    v->loop = loop;
    v->path = wr_strdup(socket_path);
    v->port = port;
    v->timeout_ms = timeout_ms;
    v->deadline = uv_now(loop) + timeout_ms;
    v->cb = cb;
    v->data = data;
    uv_timer_init(loop, &v->timer);
    v->timer.data = v;
    v->open_handles = 1;
    /* The first attempt runs from the loop, so that cb never runs inside this call. */
    uv_timer_start(&v->timer, on_vsock_timer, 0, 0);
    return 0;
}

/* ---- blocking calls (stop) ------------------------------------------------------------- */

static int sync_connect(const char *path, struct wr_error **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path))
        return wr_error_set(err, ENAMETOOLONG, "API socket path too long: %s", path);
    memcpy(addr.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int e = errno;
        close(fd);
        return wr_error_set_errno(err, e, "connecting to %s", path);
    }
    return fd;
}

/* send(2) with MSG_NOSIGNAL: a VMM that just died must not take the server with it. */
static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until one whole reply is parsed or the deadline passes. */
static int sync_read_reply(int fd, struct ch_response_parser *p, uint64_t deadline,
                           struct wr_error **err)
{
    char buf[4096];
    while (!p->complete) {
        uint64_t now = wr_now_ms();
        if (now >= deadline)
            return wr_error_set(err, ETIMEDOUT, "no reply in time");
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return wr_error_set(err, ECONNRESET, "the VMM closed the connection before replying");
        if (ch_response_parser_feed(p, buf, (size_t)n) < 0)
            return wr_error_set(err, EPROTO, "malformed or oversized reply");
    }
    return 0;
}

int ch_api_call_sync(const char *socket_path, enum ch_api_op op, const char *body,
                     uint32_t timeout_ms, struct wr_error **err)
{
    if (!op_valid(op) || (body != NULL) != ch_api_op_has_body(op))
        return wr_error_set(err, EINVAL, "cloud-hypervisor: bad call %d", (int)op);
    uint64_t deadline = wr_now_ms() + timeout_ms;
    _cleanup_close_ int fd = sync_connect(socket_path, err);
    if (fd < 0)
        return wr_error_wrap(err, "cloud-hypervisor: %s", ch_api_op_name(op));
    size_t len;
    _cleanup_free_ char *wire = request_wire(op, body, &len);
    int r = send_all(fd, wire, len);
    if (r < 0)
        return wr_error_set_errno(err, -r, "cloud-hypervisor: %s: sending", ch_api_op_name(op));
    struct ch_response_parser p;
    ch_response_parser_init(&p);
    r = sync_read_reply(fd, &p, deadline, err);
    if (r < 0)
        wr_error_wrap(err, "cloud-hypervisor: %s", ch_api_op_name(op));
    else if (p.status < 200 || p.status > 299)
        r = ch_api_status_error(op, p.status, p.body.data, p.body.len, err);
    else
        r = p.status;
    ch_response_parser_free(&p);
    return r;
}
