/* The Connect protocol with JSON (see connect.h). */
#include <errno.h>
#include <string.h>

#include "connect.h"

static const struct {
    const char *name;
    int status;
} codes[] = {
    [CONNECT_OK] = {"ok", 200},
    [CONNECT_CANCELED] = {"canceled", 499},
    [CONNECT_UNKNOWN] = {"unknown", 500},
    [CONNECT_INVALID_ARGUMENT] = {"invalid_argument", 400},
    [CONNECT_DEADLINE_EXCEEDED] = {"deadline_exceeded", 504},
    [CONNECT_NOT_FOUND] = {"not_found", 404},
    [CONNECT_ALREADY_EXISTS] = {"already_exists", 409},
    [CONNECT_PERMISSION_DENIED] = {"permission_denied", 403},
    [CONNECT_RESOURCE_EXHAUSTED] = {"resource_exhausted", 429},
    [CONNECT_FAILED_PRECONDITION] = {"failed_precondition", 400},
    [CONNECT_ABORTED] = {"aborted", 409},
    [CONNECT_OUT_OF_RANGE] = {"out_of_range", 400},
    [CONNECT_UNIMPLEMENTED] = {"unimplemented", 501},
    [CONNECT_INTERNAL] = {"internal", 500},
    [CONNECT_UNAVAILABLE] = {"unavailable", 503},
    [CONNECT_DATA_LOSS] = {"data_loss", 500},
    [CONNECT_UNAUTHENTICATED] = {"unauthenticated", 401},
};

const char *connect_code_name(enum connect_code code)
{
    return (size_t)code < WR_ARRAY_SIZE(codes) ? codes[code].name : "unknown";
}

int connect_code_http_status(enum connect_code code)
{
    return (size_t)code < WR_ARRAY_SIZE(codes) ? codes[code].status : 500;
}

enum connect_code connect_code_from_errno(int status)
{
    switch (status < 0 ? -status : status) {
    case ENOENT:
    case ESRCH:
        return CONNECT_NOT_FOUND;
    case EEXIST:
    case ENOTEMPTY:
        return CONNECT_ALREADY_EXISTS;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
        return CONNECT_INVALID_ARGUMENT;
    case EACCES:
    case EPERM:
    case EROFS:
        return CONNECT_PERMISSION_DENIED;
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case EFBIG:
    case E2BIG:
    case EMSGSIZE:
        return CONNECT_RESOURCE_EXHAUSTED;
    case ETIMEDOUT:
        return CONNECT_DEADLINE_EXCEEDED;
    case ECANCELED:
        return CONNECT_CANCELED;
    case EBUSY:
    case EAGAIN:
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
        return CONNECT_UNAVAILABLE;
    case EXDEV:
    case ENOTSUP:
        return CONNECT_FAILED_PRECONDITION;
    default:
        return CONNECT_INTERNAL;
    }
}

int connect_envelope_parse(const void *buf, size_t len, size_t max, struct connect_envelope *env,
                           size_t *consumed, const char **ret_message)
{
    const uint8_t *p = buf;
    if (len < 5)
        return 0;
    uint8_t flags = p[0];
    if (flags & CONNECT_FLAG_COMPRESSED) {
        *ret_message = "compressed envelopes are not accepted";
        return -EINVAL;
    }
    if (flags & ~(uint8_t)CONNECT_FLAG_END_STREAM) {
        *ret_message = "unknown envelope flags";
        return -EINVAL;
    }
    uint32_t n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (n > max) {
        *ret_message = "envelope too large";
        return -EMSGSIZE;
    }
    if (len - 5 < n)
        return 0;
    env->flags = flags;
    env->data = (const char *)p + 5;
    env->len = n;
    *consumed = 5 + (size_t)n;
    return 1;
}

void connect_envelope_put(struct wr_buf *b, uint8_t flags, const char *json, size_t len)
{
    uint8_t head[5] = {flags, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                       (uint8_t)len};
    wr_buf_append(b, head, sizeof head);
    wr_buf_append(b, json, len);
}

static cJSON *parse_object(const char *data, size_t len, const char **ret_message)
{
    if (len == 0)
        return cJSON_CreateObject(); /* an empty body is the empty message */
    cJSON *msg = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(msg)) {
        cJSON_Delete(msg);
        *ret_message = "the message is not a JSON object";
        return NULL;
    }
    return msg;
}

cJSON *connect_request_message(const struct http_request *req, bool *ret_stream,
                               const char **ret_message)
{
    const char *type = http_request_header(req, "content-type");
    *ret_stream = type && http_media_type_is(type, "application/connect+json");
    if (!*ret_stream) {
        if (type && !http_media_type_is(type, "application/json")) {
            *ret_message = "Content-Type must be application/json or application/connect+json";
            return NULL;
        }
        return parse_object(req->body.data, req->body.len, ret_message);
    }
    struct connect_envelope env;
    size_t used = 0;
    int r = connect_envelope_parse(req->body.data, req->body.len, CONNECT_MESSAGE_MAX, &env,
                                   &used, ret_message);
    if (r == 0) {
        *ret_message = "the request envelope is incomplete";
        return NULL;
    }
    if (r < 0)
        return NULL;
    if (used != req->body.len) {
        *ret_message = "a server-streaming request carries exactly one envelope";
        return NULL;
    }
    if (env.flags & CONNECT_FLAG_END_STREAM) {
        *ret_message = "the request envelope is marked end-stream";
        return NULL;
    }
    return parse_object(env.data, env.len, ret_message);
}

void connect_unary_reply(struct http_conn *c, cJSON *msg)
{
    _cleanup_free_ char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    struct http_response r = {.status = 200,
                              .content_type = "application/json",
                              .body = text,
                              .body_len = text ? strlen(text) : 0};
    http_respond(c, &r);
}

static cJSON *error_object(enum connect_code code, const char *message)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "code", connect_code_name(code));
    cJSON_AddStringToObject(e, "message", message ? message : "");
    return e;
}

void connect_unary_error(struct http_conn *c, enum connect_code code, const char *message)
{
    cJSON *e = error_object(code, message);
    _cleanup_free_ char *text = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    struct http_response r = {.status = connect_code_http_status(code),
                              .content_type = "application/json",
                              .body = text,
                              .body_len = strlen(text)};
    http_respond(c, &r);
}

void connect_stream_begin(struct http_conn *c)
{
    http_stream_begin(c, 200, "application/connect+json", NULL);
}

void connect_stream_send(struct http_conn *c, cJSON *msg)
{
    _cleanup_free_ char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    connect_envelope_put(&b, 0, text, strlen(text));
    http_stream_write(c, b.data, b.len);
    wr_buf_free(&b);
}

void connect_stream_end(struct http_conn *c, enum connect_code code, const char *message)
{
    cJSON *end = cJSON_CreateObject();
    if (code != CONNECT_OK)
        cJSON_AddItemToObject(end, "error", error_object(code, message));
    _cleanup_free_ char *text = cJSON_PrintUnformatted(end);
    cJSON_Delete(end);
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    connect_envelope_put(&b, CONNECT_FLAG_END_STREAM, text, strlen(text));
    http_stream_write(c, b.data, b.len);
    wr_buf_free(&b);
    http_stream_end(c);
}
