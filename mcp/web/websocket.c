/* WebSocket on libwslay (see websocket.h). wslay's recv callback reads from the bytes the
 * listener just handed over; its send callback queues on the listener's connection. */
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "websocket.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct ws {
    struct http_conn *conn;
    wslay_event_context_ptr ctx;
    struct ws_handlers h;
    void *data;
    const char *in; /* the bytes being fed to wslay_event_recv */
    size_t in_len;
    bool closing, gone, in_callback;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    struct ws *ws = user;
    if (ws->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)ctx;
    (void)flags;
    struct ws *ws = user;
    http_upgraded_write(ws->conn, data, len);
    return (ssize_t)len;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    (void)ctx;
    struct ws *ws = user;
    if (arg->opcode == WSLAY_TEXT_FRAME && ws->h.on_text)
        ws->h.on_text(ws->data, (const char *)arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_BINARY_FRAME && ws->h.on_binary)
        ws->h.on_binary(ws->data, arg->msg, arg->msg_length);
}

static void finish(struct ws *ws)
{
    if (ws->gone)
        return;
    ws->gone = true;
    http_conn_on_close(ws->conn, NULL, NULL);
    ws->h.on_close(ws->data);
    wslay_event_context_free(ws->ctx);
    free(ws);
}

static void conn_gone(void *data)
{
    finish(data);
}

/* After wslay has read or written: a close handshake done, or an error, ends it. */
static void settle(struct ws *ws)
{
    if (wslay_event_send(ws->ctx) != 0 ||
        (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))) {
        struct http_conn *c = ws->conn;
        finish(ws);
        http_conn_close(c);
    }
}

static void on_data(void *data, const char *buf, size_t len)
{
    struct ws *ws = data;
    ws->in = buf;
    ws->in_len = len;
    int r = wslay_event_recv(ws->ctx);
    ws->in_len = 0;
    if (r != 0) {
        struct http_conn *c = ws->conn;
        finish(ws);
        http_conn_close(c);
        return;
    }
    settle(ws);
}

static void on_drain(void *data)
{
    struct ws *ws = data;
    if (ws->h.on_drain)
        ws->h.on_drain(ws->data);
}

struct ws *ws_accept(struct http_conn *c, const struct http_request *req,
                     const struct ws_handlers *h, void *data)
{
    const char *upgrade = http_request_header(req, "upgrade");
    const char *key = http_request_header(req, "sec-websocket-key");
    const char *version = http_request_header(req, "sec-websocket-version");
    if (req->method != HTTP_GET || !upgrade || strcasecmp(upgrade, "websocket") || !key ||
        strlen(key) > 64) {
        http_respond_error(c, 400, "this path takes a WebSocket (Upgrade: websocket)");
        return NULL;
    }
    if (!version || strcmp(version, "13")) {
        http_respond(c, &(struct http_response){.status = 426,
                                                .extra_headers = "Sec-WebSocket-Version: 13\r\n",
                                                .close = true});
        return NULL;
    }
    char joined[160];
    snprintf(joined, sizeof(joined), "%s%s", key, WS_GUID);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)joined, strlen(joined), digest);
    char accept[64];
    wr_base64_encode(digest, sizeof(digest), accept);
    struct ws *ws = wr_calloc(1, sizeof(*ws));
    ws->conn = c;
    ws->h = *h;
    ws->data = data;
    static const struct wslay_event_callbacks callbacks = {
        .recv_callback = recv_cb, .send_callback = send_cb, .on_msg_recv_callback = msg_cb};
    if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0)
        abort();
    wslay_event_config_set_max_recv_msg_length(ws->ctx, WS_MAX_MESSAGE);
    _cleanup_free_ char *headers = wr_asprintf(
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", accept);
    http_conn_on_close(c, conn_gone, ws);
    http_upgrade(c, headers,
                 &(struct http_upgrade_handlers){.on_data = on_data, .on_drain = on_drain}, ws);
    return ws;
}

static int send_msg(struct ws *ws, uint8_t opcode, const uint8_t *bytes, size_t len)
{
    if (ws->closing)
        return -EPIPE;
    struct wslay_event_msg msg = {.opcode = opcode, .msg = bytes, .msg_length = len};
    if (wslay_event_queue_msg(ws->ctx, &msg) != 0)
        return -ENOMEM;
    /* wslay copies the message; the socket write queue holds what the peer has not read. */
    return wslay_event_send(ws->ctx) == 0 ? 0 : -EPIPE;
}

int ws_send_text(struct ws *ws, const char *text, size_t len)
{
    return send_msg(ws, WSLAY_TEXT_FRAME, (const uint8_t *)text, len);
}

int ws_send_binary(struct ws *ws, const uint8_t *bytes, size_t len)
{
    return send_msg(ws, WSLAY_BINARY_FRAME, bytes, len);
}

void ws_close(struct ws *ws, uint16_t code, const char *reason)
{
    if (ws->closing)
        return;
    ws->closing = true;
    wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
    (void)wslay_event_send(ws->ctx);
    /* The close frame goes out, then the connection ends (FIN after the queued bytes). */
    struct http_conn *c = ws->conn;
    finish(ws);
    http_upgraded_end(c);
}

size_t ws_queued(const struct ws *ws)
{
    return wslay_event_get_queued_msg_length(ws->ctx) + http_conn_write_queue(ws->conn);
}

void ws_pause(struct ws *ws, bool pause)
{
    http_upgraded_pause(ws->conn, pause);
}
