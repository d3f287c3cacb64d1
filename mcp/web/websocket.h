/* WebSocket connections on the listener: the handshake (RFC 6455) answered with
 * http_upgrade, frames read and written by libwslay (framing only; the bytes move on the
 * listener's own connection), messages capped in size. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "mcp/http/http.h"

#define WS_MAX_MESSAGE (1u << 20)

struct ws;
struct ws_handlers {
    void (*on_text)(void *data, const char *text, size_t len);
    void (*on_binary)(void *data, const uint8_t *bytes, size_t len);
    /* The connection is gone (closed by the peer, by ws_close, or dropped); ws is freed
     * right after this returns. */
    void (*on_close)(void *data);
    /* Optional: what was queued for the peer fell below HTTP_UPGRADE_LOW_WATER. */
    void (*on_drain)(void *data);
};

/* For a request that asks for a WebSocket (GET, Upgrade: websocket, Sec-WebSocket-Key,
 * version 13): answers 101 and returns the connection. Anything else is answered 400 (or
 * 426) and NULL is returned. */
struct ws *ws_accept(struct http_conn *c, const struct http_request *req,
                     const struct ws_handlers *h, void *data);
int ws_send_text(struct ws *ws, const char *text, size_t len);
int ws_send_binary(struct ws *ws, const uint8_t *bytes, size_t len);
/* Sends a close frame with code and reason, then closes the connection. */
void ws_close(struct ws *ws, uint16_t code, const char *reason);
/* Bytes queued for the peer (wslay's and the socket's). */
size_t ws_queued(const struct ws *ws);
/* Stops or resumes reading the peer's messages (flow control toward the peer). */
void ws_pause(struct ws *ws, bool pause);
