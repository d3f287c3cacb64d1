/* MCP's Streamable HTTP transport: the /mcp route on the listener (mcp/http/). What a POST,
 * GET or DELETE on /mcp means, its sessions, and where the messages a session sends go. A
 * request's messages go back on the POST that carried it (one JSON body, or an SSE stream
 * when something comes before the response); messages tied to no request go on the
 * session's GET stream. */
#include <stdio.h>
#include <string.h>

#include "streamable-http-internal.h"
#include "util/metrics.h"

/* A session nobody has used for this long is ended; its client gets 404 and starts over. */
#define SESSION_IDLE_TIMEOUT_MS (60ull * 60ull * 1000ull)
/* Requests in flight per session, counting those whose client hung up. */
#define MAX_PENDING_PER_SESSION 1024u
#define SWEEP_INTERVAL_MS (60u * 1000u)

static void sink_send(void *data, const char *json, size_t len, const char *related_id, bool final);
static const struct mcp_sink http_sink = {.send = sink_send};

/* ---- responses -------------------------------------------------------------------------- */

/* A JSON-RPC-shaped error body {"jsonrpc":"2.0","id":null,"error":{code,message}}. */
static void respond_error(struct http_conn *c, int status, int code, const char *message)
{
    _cleanup_free_ char *body = mcp_error_json(NULL, code, message);
    struct http_response r = {.status = status,
                              .content_type = "application/json",
                              .body = body,
                              .body_len = strlen(body),
                              .extra_headers =
                                  status == 405 ? "Allow: GET, POST, DELETE\r\n" : NULL};
    http_respond(c, &r);
}

/* "Mcp-Session-Id: <id>\r\n" for the answer to initialize, else NULL. */
static char *session_header(const struct http_session *s, bool send)
{
    return send ? wr_asprintf("Mcp-Session-Id: %s\r\n", s->id) : NULL;
}

/* ---- pending requests --------------------------------------------------------------- */

static void pending_conn_closed(void *data)
{
    /* The record stays with its session until the final response comes (and is dropped),
     * so the request id stays reserved while the work runs. */
    struct http_pending *p = data;
    p->conn = NULL;
}

static void stream_conn_closed(void *data)
{
    struct http_session *s = data;
    s->stream = NULL;
}

static struct http_pending *pending_new(struct http_session *s, struct http_conn *c, char *id_key)
{
    struct http_pending *p = wr_calloc(1, sizeof(*p));
    p->session = s;
    p->conn = c;
    p->id_key = id_key;
    p->next = s->pending;
    if (p->next)
        p->next->prev = p;
    s->pending = p;
    s->pending_count++;
    http_conn_on_close(c, pending_conn_closed, p);
    return p;
}

static struct http_pending *pending_find(struct http_session *s, const char *id_key)
{
    for (struct http_pending *p = s->pending; p; p = p->next)
        if (strcmp(p->id_key, id_key) == 0)
            return p;
    return NULL;
}

static void pending_free(struct http_pending *p)
{
    struct http_session *s = p->session;
    if (p->prev)
        p->prev->next = p->next;
    else
        s->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    s->pending_count--;
    if (p->conn)
        http_conn_on_close(p->conn, NULL, NULL);
    free(p->id_key);
    free(p);
}

/* Ends a request that will get no response (cancelled, or its session ended): a stream is
 * closed properly; a client waiting for a plain response gets `status`, or a closed
 * connection when status is 0. */
static void pending_abandon(struct http_pending *p, int status)
{
    struct http_conn *c = p->conn;
    bool streaming = p->streaming;
    pending_free(p);
    if (!c)
        return;
    if (streaming)
        http_sse_end(c);
    else if (status)
        respond_error(c, status, MCP_HTTP_ERR_SESSION_NOT_FOUND, "the session ended");
    else
        http_conn_close(c);
}

/* ---- sessions ----------------------------------------------------------------------- */

static struct http_session *session_find(struct mcp_http *http, const char *id)
{
    if (!id || strlen(id) != 64)
        return NULL;
    for (struct http_session *s = http->sessions; s; s = s->next)
        if (!s->doomed && strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static struct http_session *session_new(struct mcp_http *http)
{
    unsigned char raw[32];
    if (wr_random_bytes(raw, sizeof(raw)) < 0)
        return NULL;
    struct http_session *s = wr_calloc(1, sizeof(*s));
    s->http = http;
    wr_hex_encode(raw, sizeof(raw), s->id);
    s->session = mcp_session_new(http->server, &http_sink, s);
    s->last_used_ms = wr_now_ms();
    s->next = http->sessions;
    if (s->next)
        s->next->prev = s;
    http->sessions = s;
    http->session_count++;
    wr_metric_set(&wr_metric_mcp_sessions, "http", NULL, (double)http->session_count);
    return s;
}

static void session_free(struct http_session *s)
{
    /* First the core, so nothing reaches the sink while the records go. */
    mcp_session_free(s->session);
    while (s->pending)
        pending_abandon(s->pending, 404);
    if (s->stream) {
        struct http_conn *c = TAKE_PTR(s->stream);
        http_conn_on_close(c, NULL, NULL);
        http_sse_end(c);
    }
    struct mcp_http *http = s->http;
    if (s->prev)
        s->prev->next = s->next;
    else
        http->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    http->session_count--;
    wr_metric_set(&wr_metric_mcp_sessions, "http", NULL, (double)http->session_count);
    free(s);
}

static void sweep_sessions(struct mcp_http *http, uint64_t now_ms)
{
    struct http_session *next;
    for (struct http_session *s = http->sessions; s; s = next) {
        next = s->next;
        bool idle = !s->pending && !s->stream && now_ms - s->last_used_ms > SESSION_IDLE_TIMEOUT_MS;
        if (idle)
            log_info("http: ending session %.8s… after %llu minutes without use", s->id,
                     (unsigned long long)(SESSION_IDLE_TIMEOUT_MS / 60000));
        if (s->doomed || idle)
            session_free(s);
    }
}

static void sweep_fired(uv_timer_t *t)
{
    sweep_sessions(t->data, wr_now_ms());
}

/* Runs the sweep from the loop soon (never from inside a session call). */
static void sweep_soon(struct mcp_http *http)
{
    if (!http->stopping)
        uv_timer_start(&http->sweep, sweep_fired, 0, SWEEP_INTERVAL_MS);
}

/* ---- the sink ----------------------------------------------------------------------- */

static void pending_message(struct http_pending *p, const char *json, size_t len)
{
    struct http_session *s = p->session;
    /* A client that accepts only JSON cannot receive anything before the response. */
    if (!p->conn || !p->sse_ok)
        return;
    if (!p->streaming) {
        _cleanup_free_ char *header = session_header(s, p->initialize);
        http_sse_begin(p->conn, header);
        p->streaming = true;
    }
    http_sse_event(p->conn, ++s->next_event_id, json, len);
}

static void pending_finish(struct http_pending *p, const char *json, size_t len)
{
    struct http_session *s = p->session;
    struct http_conn *c = p->conn;
    bool initialize = p->initialize, streaming = p->streaming, json_ok = p->json_ok;
    pending_free(p);
    if (initialize && !mcp_session_initialized(s->session)) {
        /* A failed initialize leaves no session behind. */
        s->doomed = true;
        sweep_soon(s->http);
    }
    if (!c)
        return;
    _cleanup_free_ char *header = session_header(s, initialize && !s->doomed);
    if (!streaming && !json_ok) {
        /* Accept: text/event-stream alone: the response goes as a one-event stream. */
        http_sse_begin(c, header);
        streaming = true;
    }
    if (streaming) {
        http_sse_event(c, ++s->next_event_id, json, len);
        http_sse_end(c);
        return;
    }
    struct http_response r = {.status = 200,
                              .content_type = "application/json",
                              .body = json,
                              .body_len = len,
                              .extra_headers = header};
    http_respond(c, &r);
}

static void sink_send(void *data, const char *json, size_t len, const char *related_id, bool final)
{
    struct http_session *s = data;
    s->last_used_ms = wr_now_ms();
    if (!related_id) {
        if (s->stream)
            http_sse_event(s->stream, ++s->next_event_id, json, len);
        return;
    }
    struct http_pending *p = pending_find(s, related_id);
    if (!p)
        return;
    if (final)
        pending_finish(p, json, len);
    else
        pending_message(p, json, len);
}

/* ---- requests ----------------------------------------------------------------------- */

/* The session a request names, or NULL after answering for it. */
static struct http_session *request_session(struct mcp_http *http, struct http_conn *c,
                                            const struct http_request *req)
{
    const char *session_id = http_request_header(req, "mcp-session-id");
    const char *protocol_version = http_request_header(req, "mcp-protocol-version");
    if (!session_id) {
        respond_error(c, 400, MCP_HTTP_ERR_TRANSPORT,
                      "missing Mcp-Session-Id header: send initialize first");
        return NULL;
    }
    struct http_session *s = session_find(http, session_id);
    if (!s) {
        respond_error(c, 404, MCP_HTTP_ERR_SESSION_NOT_FOUND,
                      "unknown or ended session: send initialize again");
        return NULL;
    }
    if (protocol_version && !mcp_protocol_version_supported(protocol_version)) {
        respond_error(c, 400, MCP_HTTP_ERR_TRANSPORT, "unsupported MCP-Protocol-Version header");
        return NULL;
    }
    s->last_used_ms = wr_now_ms();
    return s;
}

static struct http_session *initialize_session(struct mcp_http *http, struct http_conn *c)
{
    if (http->session_count >= http->max_sessions) {
        respond_error(c, 503, MCP_HTTP_ERR_TRANSPORT,
                      "too many sessions: end one (DELETE) or try later");
        return NULL;
    }
    struct http_session *s = session_new(http);
    if (!s)
        respond_error(c, 500, MCP_HTTP_ERR_TRANSPORT, "cannot create a session id");
    return s;
}

static bool is_method(const cJSON *msg, const char *method)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(msg, "method");
    return cJSON_IsString(m) && strcmp(m->valuestring, method) == 0;
}

/* For notifications/cancelled: the id key of the request it cancels, else NULL. */
static char *cancelled_key(const cJSON *msg)
{
    if (!is_method(msg, "notifications/cancelled"))
        return NULL;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(params, "requestId");
    return rid ? cJSON_PrintUnformatted(rid) : NULL;
}

static void post_notification(struct http_conn *c, struct http_session *s, cJSON *msg)
{
    _cleanup_free_ char *cancelled = cancelled_key(msg);
    mcp_session_handle(s->session, msg);
    /* The core sends nothing more for a cancelled request; end the POST waiting for it. */
    struct http_pending *p = cancelled ? pending_find(s, cancelled) : NULL;
    if (p)
        pending_abandon(p, 0);
    struct http_response r = {.status = 202};
    http_respond(c, &r);
}

static void post_request(struct http_conn *c, struct http_session *s, cJSON *msg, bool initialize,
                         const struct http_request *req)
{
    char *key = mcp_message_id_key(msg);
    const char *refusal = NULL;
    if (pending_find(s, key))
        refusal = "a request with this id is still in progress in this session";
    else if (s->pending_count >= MAX_PENDING_PER_SESSION)
        refusal = "too many requests in progress in this session";
    if (refusal) {
        free(key);
        cJSON_Delete(msg);
        respond_error(c, refusal[0] == 'a' ? 409 : 503, MCP_HTTP_ERR_TRANSPORT, refusal);
        return;
    }
    struct http_pending *p = pending_new(s, c, key);
    p->initialize = initialize;
    p->sse_ok = http_accepts(http_request_header(req, "accept"), "text/event-stream");
    p->json_ok = http_accepts(http_request_header(req, "accept"), "application/json") || !p->sse_ok;
    /* The answer may come before this returns, or much later from a tool's completion. */
    mcp_session_handle(s->session, msg);
}

static void dispatch_post(struct mcp_http *http, struct http_conn *c, struct http_request *req)
{
    cJSON *msg = NULL;
    _cleanup_free_ char *error_json = NULL;
    const char *body = req->body.data ? req->body.data : "";
    if (mcp_parse_message(body, req->body.len, &msg, &error_json) < 0) {
        struct http_response r = {.status = 400,
                                  .content_type = "application/json",
                                  .body = error_json,
                                  .body_len = error_json ? strlen(error_json) : 0};
        http_respond(c, &r);
        return;
    }
    enum mcp_message_kind kind = mcp_message_kind(msg);
    if (kind == MCP_MSG_INVALID) {
        cJSON_Delete(msg);
        respond_error(c, 400, MCP_ERR_INVALID_REQUEST,
                      "expected a JSON-RPC 2.0 request, notification or response");
        return;
    }
    bool initialize = kind == MCP_MSG_REQUEST && is_method(msg, "initialize") &&
                      !http_request_header(req, "mcp-session-id");
    struct http_session *s =
        initialize ? initialize_session(http, c) : request_session(http, c, req);
    if (!s) {
        cJSON_Delete(msg);
        return;
    }
    if (kind == MCP_MSG_REQUEST)
        post_request(c, s, msg, initialize, req);
    else
        post_notification(c, s, msg);
}

static void dispatch_get(struct mcp_http *http, struct http_conn *c, struct http_request *req)
{
    struct http_session *s = request_session(http, c, req);
    if (!s)
        return;
    if (!http_request_header(req, "accept") ||
        !http_accepts(http_request_header(req, "accept"), "text/event-stream")) {
        respond_error(c, 405, MCP_HTTP_ERR_TRANSPORT,
                      "GET opens an event stream: send Accept: text/event-stream");
        return;
    }
    if (s->stream) {
        respond_error(c, 409, MCP_HTTP_ERR_TRANSPORT, "this session already has a GET stream open");
        return;
    }
    s->stream = c;
    http_conn_on_close(c, stream_conn_closed, s);
    http_sse_begin(c, NULL);
}

static void dispatch_delete(struct mcp_http *http, struct http_conn *c, struct http_request *req)
{
    struct http_session *s = request_session(http, c, req);
    if (!s)
        return;
    session_free(s);
    struct http_response r = {.status = 200};
    http_respond(c, &r);
}

static void handle(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_http *http = data;
    switch (req->method) {
    case HTTP_POST:
        dispatch_post(http, c, req);
        break;
    case HTTP_GET:
        dispatch_get(http, c, req);
        break;
    default:
        dispatch_delete(http, c, req);
        break;
    }
}

/* Header checks of /mcp, before the body is read. */
static int check(void *data, const struct http_request *req, const char **ret_message)
{
    if (req->method != HTTP_POST)
        return 0;
    const char *accept = http_request_header(req, "accept");
    if (!http_media_type_is(http_request_header(req, "content-type"), "application/json")) {
        *ret_message = "Content-Type must be application/json";
        return 415;
    }
    if (!http_accepts(accept, "application/json") && !http_accepts(accept, "text/event-stream")) {
        *ret_message = "Accept must allow application/json or text/event-stream";
        return 406;
    }
    return 0;
}

static char *error_body(void *data, int status, const char *message, const char **ret_content_type)
{
    *ret_content_type = "application/json";
    return mcp_error_json(NULL, MCP_HTTP_ERR_TRANSPORT, message);
}

int mcp_http_start(struct mcp_server *server, struct http_server *listener,
                   const struct mcp_http_options *opts, struct mcp_http **ret,
                   struct wr_error **err)
{
    struct mcp_http *http = wr_calloc(1, sizeof(*http));
    http->server = server;
    http->max_sessions = opts && opts->max_sessions ? opts->max_sessions : 256;
    uv_timer_init(server->loop, &http->sweep);
    http->sweep.data = http;
    uv_timer_start(&http->sweep, sweep_fired, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    struct http_route route = {
        .path = "/mcp",
        .methods =
            HTTP_METHOD_BIT(HTTP_POST) | HTTP_METHOD_BIT(HTTP_GET) | HTTP_METHOD_BIT(HTTP_DELETE),
        .body_max = MCP_MAX_MESSAGE_BYTES,
        .check = check,
        .handle = handle,
        .error_body = error_body,
        .data = http,
    };
    http_server_route(listener, &route);
    /* Tests and scripts parse this line to find the port. */
    fprintf(stderr, "warren: listening on http://%s/mcp\n", http_server_authority(listener));
    *ret = http;
    return 0;
}

void mcp_http_drain(struct mcp_http *http)
{
    if (!http)
        return;
    for (struct http_session *s = http->sessions; s; s = s->next) {
        if (!s->stream)
            continue;
        struct http_conn *c = TAKE_PTR(s->stream);
        http_conn_on_close(c, NULL, NULL);
        http_sse_end(c);
    }
}

static void sweep_closed(uv_handle_t *h)
{
    free(h->data);
}

void mcp_http_stop(struct mcp_http *http)
{
    if (!http || http->stopping)
        return;
    http->stopping = true;
    while (http->sessions)
        session_free(http->sessions);
    uv_close((uv_handle_t *)&http->sweep, sweep_closed);
}
