/* The Connect protocol (connectrpc.com) with JSON, as envd speaks it over HTTP/1.1:
 * unary calls are a JSON body each way (application/json), errors a non-200 status with
 * {code, message}; server streams are envelopes (a flag byte, a 4-byte big-endian length,
 * the JSON) in both directions, application/connect+json, closed by an end-stream
 * envelope (flag 0x02) whose JSON is {} or {"error": {code, message}}. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcp/http/http.h"

/* The largest message warren takes in an envelope or a unary body. */
#define CONNECT_MESSAGE_MAX (4u << 20)

#define CONNECT_FLAG_COMPRESSED 0x01u
#define CONNECT_FLAG_END_STREAM 0x02u

enum connect_code {
    CONNECT_OK = 0,
    CONNECT_CANCELED,
    CONNECT_UNKNOWN,
    CONNECT_INVALID_ARGUMENT,
    CONNECT_DEADLINE_EXCEEDED,
    CONNECT_NOT_FOUND,
    CONNECT_ALREADY_EXISTS,
    CONNECT_PERMISSION_DENIED,
    CONNECT_RESOURCE_EXHAUSTED,
    CONNECT_FAILED_PRECONDITION,
    CONNECT_ABORTED,
    CONNECT_OUT_OF_RANGE,
    CONNECT_UNIMPLEMENTED,
    CONNECT_INTERNAL,
    CONNECT_UNAVAILABLE,
    CONNECT_DATA_LOSS,
    CONNECT_UNAUTHENTICATED,
};

/* "not_found", ... as Connect spells them. */
const char *connect_code_name(enum connect_code code);
/* The HTTP status a unary error goes out with (not_found 404, ...). */
int connect_code_http_status(enum connect_code code);
/* The code for an errno-style status from the vmm API (ENOENT not_found, EEXIST
 * already_exists, EINVAL invalid_argument, ...). */
enum connect_code connect_code_from_errno(int status);

struct connect_envelope {
    uint8_t flags;
    const char *data; /* points into the parsed buffer */
    size_t len;
};

/* Reads one envelope from buf: 1 with *env and *consumed, 0 when buf holds only part of one
 * (need more), or -EINVAL (unknown or compressed flags: *ret_message says which) or
 * -EMSGSIZE (longer than max). Pure; the fuzz target drives it. */
int connect_envelope_parse(const void *buf, size_t len, size_t max, struct connect_envelope *env,
                           size_t *consumed, const char **ret_message);
/* Appends an envelope to b. */
void connect_envelope_put(struct wr_buf *b, uint8_t flags, const char *json, size_t len);

/* The request message of a call: a unary call's JSON body, or a server stream's single
 * envelope (Content-Type application/connect+json). NULL with *ret_message when it is not
 * one well-formed JSON object. *ret_stream says which protocol the client spoke. */
cJSON *connect_request_message(const struct http_request *req, bool *ret_stream,
                               const char **ret_message);

/* Unary answers. msg is consumed (deleted). */
void connect_unary_reply(struct http_conn *c, cJSON *msg);
void connect_unary_error(struct http_conn *c, enum connect_code code, const char *message);

/* Server streams: begin (HTTP 200), messages (msg is consumed), then exactly one end
 * (code CONNECT_OK: a clean end). */
void connect_stream_begin(struct http_conn *c);
void connect_stream_send(struct http_conn *c, cJSON *msg);
void connect_stream_end(struct http_conn *c, enum connect_code code, const char *message);
