/* The MCP server core shared by the stdio and Streamable HTTP transports: JSON-RPC 2.0
 * message handling, the MCP lifecycle (initialize, ping, logging, cancellation, progress)
 * and tool dispatch. A transport parses bytes into messages and hands them to a session;
 * the session answers through the transport's sink. Everything runs on one libuv loop. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "util/util.h"

struct vmm;
struct mcp_server;
struct mcp_session;

#define MCP_PROTOCOL_LATEST "2025-11-25"
/* Largest JSON-RPC message a client may send (a 16 MiB file travels as ~22 MiB base64). */
#define MCP_MAX_MESSAGE_BYTES (48u * 1024u * 1024u)
/* Deepest JSON nesting accepted in a message. */
#define MCP_MAX_JSON_DEPTH 64

struct mcp_server_options {
    uv_loop_t *loop;
    struct vmm *vmm;            /* the sandbox manager the tools drive */
    const char *server_version; /* "0.1.0" */
};

int mcp_server_new(const struct mcp_server_options *opts, struct mcp_server **ret,
                   struct wr_error **err);
/* Graceful shutdown. After mcp_server_drain every new request of every session is
 * answered with a JSON-RPC error (-32000, "shutting down"; ping still works) while the
 * calls in flight go on. mcp_server_calls_in_flight counts them;
 * mcp_server_cancel_calls answers each with that error carrying message, cancels its
 * work, and returns how many there were. */
void mcp_server_drain(struct mcp_server *server);
size_t mcp_server_calls_in_flight(const struct mcp_server *server);
size_t mcp_server_cancel_calls(struct mcp_server *server, const char *message);
/* Frees the server; every session must be freed first. */
void mcp_server_free(struct mcp_server *server);

/* How a session sends. `json` is one serialized JSON-RPC message (no trailing newline),
 * valid only during the call. `related_id` is the serialized JSON-RPC id of the client
 * request this message belongs to (its response, or a progress/log notification sent
 * while it runs), or NULL for a message tied to no request. `final` is true for the
 * response that ends that request. */
struct mcp_sink {
    void (*send)(void *transport_data, const char *json, size_t len, const char *related_id,
                 bool final);
    /* Optional: the same, but the sink takes over json (malloc'd, with room for at least
     * one byte past len) and frees it. Big results go this way without a copy. */
    void (*send_owned)(void *transport_data, char *json, size_t len, const char *related_id,
                       bool final);
};

struct mcp_session *mcp_session_new(struct mcp_server *server, const struct mcp_sink *sink,
                                    void *transport_data);
/* Cancels the session's in-flight tool calls (nothing more is sent through the sink) and
 * frees it. NULL-safe. */
void mcp_session_free(struct mcp_session *session);

/* Parses one message with the size and depth caps. On failure returns a negative value
 * and *ret_error_json holds the serialized JSON-RPC error to send back (-32700 parse
 * error, -32600 for a batch or a non-object). */
int mcp_parse_message(const char *text, size_t len, cJSON **ret, char **ret_error_json);

enum mcp_message_kind {
    MCP_MSG_REQUEST,      /* has method and id */
    MCP_MSG_NOTIFICATION, /* has method, no id */
    MCP_MSG_RESPONSE,     /* has result or error, and id */
    MCP_MSG_INVALID,
};
enum mcp_message_kind mcp_message_kind(const cJSON *msg);
/* For a request: its id serialized (as used for related_id); caller frees. */
char *mcp_message_id_key(const cJSON *msg);

/* Handles one parsed message (the session takes ownership of msg). Responses and
 * notifications go out through the sink, now or later. */
void mcp_session_handle(struct mcp_session *session, cJSON *msg);

/* True once initialize has been answered. */
bool mcp_session_initialized(const struct mcp_session *session);
/* The negotiated protocol version, or NULL before initialize. */
const char *mcp_session_protocol_version(const struct mcp_session *session);
/* True when v is a protocol version this server speaks. */
bool mcp_protocol_version_supported(const char *v);

/* Serialized JSON-RPC error response for id (NULL id -> null). Caller frees. */
char *mcp_error_json(const cJSON *id, int code, const char *message);

/* Transports. Both run until the loop stops. */
/* stdio: reads newline-delimited messages from fd 0, writes to fd 1. When stdin closes,
 * in-flight calls are cancelled and on_close runs. */
int mcp_stdio_start(struct mcp_server *server, void (*on_close)(void *data), void *data,
                    struct wr_error **err);

struct http_server;
struct mcp_http_options {
    size_t max_sessions; /* 0: 256 */
};
struct mcp_http;
/* MCP Streamable HTTP at /mcp on listener (mcp/http/http.h); opts may be NULL. Logs the
 * endpoint's URL ("warren: listening on http://HOST:PORT/mcp"). */
int mcp_http_start(struct mcp_server *server, struct http_server *listener,
                   const struct mcp_http_options *opts, struct mcp_http **ret,
                   struct wr_error **err);
/* Ends every session (their calls are cancelled). Stop the listener first, so that no
 * request reaches /mcp afterwards. NULL-safe. */
void mcp_http_stop(struct mcp_http *http);
/* Graceful shutdown: ends every session's GET event stream (the client sees the stream
 * end); requests in flight keep their connections until answered. NULL-safe. */
void mcp_http_drain(struct mcp_http *http);
