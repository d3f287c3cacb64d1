/* The life of an envd call, the activity record, the control plane's errors and the
 * sandboxes' envd access tokens: what every part of the E2B front door shares. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "e2b-internal.h"

bool e2b_access_token(const struct mcp_e2b *e, const char *sandbox, char out[65])
{
    out[0] = 0;
    if (!e->token)
        return false;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    _cleanup_free_ char *what = wr_asprintf("envd:%s", sandbox);
    HMAC(EVP_sha256(), e->token, (int)strlen(e->token), (const unsigned char *)what,
         strlen(what), mac, &len);
    wr_hex_encode(mac, 32, out);
    return true;
}

char *e2b_error_json(int status, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "code", status);
    cJSON_AddStringToObject(o, "message", message ? message : http_reason(status));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

void e2b_respond_error(struct http_conn *c, int status, const char *message)
{
    _cleanup_free_ char *body = e2b_error_json(status, message);
    struct http_response r = {.status = status,
                              .content_type = "application/json",
                              .body = body,
                              .body_len = strlen(body)};
    http_respond(c, &r);
}

/* ---- activity ------------------------------------------------------------------------- */

void e2b_record(struct mcp_e2b *e, const char *sandbox, const char *what, cJSON *args,
                const char *error, uint64_t started_ms, cJSON *extra)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "client", "e2b");
    _cleanup_free_ char *tool = wr_asprintf("e2b %s", what);
    cJSON_AddStringToObject(d, "tool", tool);
    cJSON *summary = cJSON_AddObjectToObject(d, "args");
    const cJSON *a;
    cJSON_ArrayForEach(a, args)
    {
        char *text = cJSON_PrintUnformatted(a);
        size_t n = text ? strlen(text) : 0;
        _cleanup_free_ char *cut = wr_utf8_sanitize(text ? text : "", n > 80 ? 80 : n);
        cJSON_AddStringToObject(summary, a->string ? a->string : "", cut);
        free(text);
    }
    cJSON_Delete(args);
    cJSON_AddBoolToObject(d, "ok", error == NULL);
    if (error) {
        _cleanup_free_ char *cut = wr_utf8_sanitize(error, strnlen(error, 300));
        cJSON_AddStringToObject(d, "error", cut);
    }
    cJSON_AddNumberToObject(d, "duration_ms", (double)(wr_now_ms() - started_ms));
    cJSON *x;
    while (extra && (x = extra->child)) {
        cJSON_DetachItemViaPointer(extra, x);
        cJSON_AddItemToObject(d, x->string, x);
    }
    cJSON_Delete(extra);
    _cleanup_free_ char *detail = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    vmm_record_activity(e->vmm, sandbox, detail);
}

/* ---- calls ------------------------------------------------------------------------------ */

void e2b_call_free(struct e2b_call *call)
{
    struct mcp_e2b *e = call->e2b;
    if (call->conn)
        http_conn_on_close(call->conn, NULL, NULL);
    if (call->prev)
        call->prev->next = call->next;
    else if (e->calls == call)
        e->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    free(call->sandbox);
    free(call->user);
    cJSON_Delete(call->msg);
    cJSON_Delete(call->record_extra);
    free(call);
}

/* What a call's record shows of its request: the message without bulk data. */
static cJSON *call_args(const struct e2b_call *call)
{
    cJSON *args = cJSON_Duplicate(call->msg, true);
    cJSON_DeleteItemFromObjectCaseSensitive(args, "input");
    return args;
}

static void call_record(struct e2b_call *call, const char *error)
{
    e2b_record(call->e2b, call->sandbox, call->method, call_args(call), error, call->started_ms,
               TAKE_PTR(call->record_extra));
}

void e2b_call_reply(struct e2b_call *call, cJSON *reply)
{
    call_record(call, NULL);
    struct http_conn *c = TAKE_PTR(call->conn);
    if (c) {
        http_conn_on_close(c, NULL, NULL);
        if (call->stream)
            connect_stream_end(c, CONNECT_OK, NULL);
        else
            connect_unary_reply(c, reply ? reply : cJSON_CreateObject()), reply = NULL;
    }
    cJSON_Delete(reply);
    e2b_call_free(call);
}

void e2b_call_error(struct e2b_call *call, enum connect_code code, const char *message)
{
    call_record(call, message ? message : connect_code_name(code));
    struct http_conn *c = TAKE_PTR(call->conn);
    if (c) {
        http_conn_on_close(c, NULL, NULL);
        if (call->stream)
            connect_stream_end(c, code, message);
        else
            connect_unary_error(c, code, message);
    }
    e2b_call_free(call);
}

void e2b_call_fail(struct e2b_call *call, struct wr_error *err)
{
    e2b_call_error(call, connect_code_from_errno(err ? err->status : EIO),
                   err ? err->msg : "failed");
    wr_error_free(err);
}

void e2b_call_send(struct e2b_call *call, cJSON *msg)
{
    if (call->conn)
        connect_stream_send(call->conn, msg);
    else
        cJSON_Delete(msg);
}

