/* The E2B front door's routes (see e2b.h): which requests are E2B's, their credentials,
 * envd's dispatch to the Connect services, and the life of a call. */
#include <openssl/crypto.h>
#include <string.h>
#include <strings.h>

#include "e2b-internal.h"

/* /files uploads: the whole body is held before it is written (see files.c). */
#define E2B_FILES_BODY_MAX (256u << 20)
#define E2B_CONTROL_BODY_MAX (64u << 10)

/* ---- credentials ------------------------------------------------------------------- */

static bool const_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* The control plane's key: X-API-Key (what the SDK sends), or a bearer token. */
static bool api_key_ok(struct mcp_e2b *e, const struct http_request *req)
{
    if (!e->token)
        return true;
    const char *key = http_request_header(req, "x-api-key");
    if (key)
        return http_server_token_ok(e->listener, key);
    return http_server_bearer_ok(e->listener, req->authorization);
}

/* envd's: the sandbox's access token in X-Access-Token. Signed /files URLs carry a
 * signature instead (files.c checks it). */
static bool access_token_ok(struct mcp_e2b *e, const struct http_request *req,
                            const char *sandbox)
{
    char want[65];
    if (!e2b_access_token(e, sandbox, want))
        return true;
    const char *got = http_request_header(req, "x-access-token");
    return got && const_equal(got, want);
}

/* ---- which requests are E2B's -------------------------------------------------------- */

static bool is_envd(void *data, const struct http_request *req)
{
    (void)data;
    return http_request_header(req, "e2b-sandbox-id") != NULL;
}

/* A signed /files URL (sandbox.uploadUrl / downloadUrl) fetched as it is, without envd's
 * headers: the signature names the sandbox (files.c finds the one whose token signs it). */
static bool is_signed_files(void *data, const struct http_request *req)
{
    (void)data;
    return !http_request_header(req, "e2b-sandbox-id") && strstr(req->url, "signature=");
}

static void handle_signed_files(void *data, struct http_conn *c, struct http_request *req)
{
    e2b_files_handle(data, c, req, NULL);
}

static bool is_control(void *data, const struct http_request *req)
{
    (void)data;
    return http_request_header(req, "x-api-key") != NULL;
}

static int check_control(void *data, const struct http_request *req, const char **ret_message)
{
    if (!api_key_ok(data, req)) {
        *ret_message = "invalid API key";
        return 401;
    }
    return 0;
}

static int check_envd(void *data, const struct http_request *req, const char **ret_message)
{
    struct mcp_e2b *e = data;
    const char *sandbox = http_request_header(req, "e2b-sandbox-id");
    if (!wr_id_valid(sandbox) && !wr_name_valid(sandbox)) {
        *ret_message = "bad E2b-Sandbox-Id";
        return 400;
    }
    /* /health says nothing; /files with a signature is checked against the signature by
     * files.c. */
    if (!strcmp(req->path, "/health") ||
        (!strcmp(req->path, "/files") && strstr(req->url, "signature=")))
        return 0;
    if (!access_token_ok(e, req, sandbox)) {
        *ret_message = "invalid access token";
        return 401;
    }
    return 0;
}

/* ---- errors in each plane's format ---------------------------------------------------- */

static char *control_error_body(void *data, int status, const char *message,
                                const char **ret_content_type)
{
    (void)data;
    *ret_content_type = "application/json";
    return e2b_error_json(status, message);
}

/* The listener's own refusals (401, 413, ...) on envd's paths, as Connect errors. */
static char *envd_error_body(void *data, int status, const char *message,
                             const char **ret_content_type)
{
    (void)data;
    enum connect_code code = status == 401   ? CONNECT_UNAUTHENTICATED
                             : status == 403 ? CONNECT_PERMISSION_DENIED
                             : status == 404 ? CONNECT_NOT_FOUND
                             : status == 413 ? CONNECT_RESOURCE_EXHAUSTED
                             : status == 408 ? CONNECT_DEADLINE_EXCEEDED
                             : status < 500  ? CONNECT_INVALID_ARGUMENT
                                             : CONNECT_INTERNAL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "code", connect_code_name(code));
    cJSON_AddStringToObject(o, "message", message ? message : http_reason(status));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    *ret_content_type = "application/json";
    return text;
}

static void call_gone(void *data)
{
    struct e2b_call *call = data;
    call->conn = NULL;
    if (call->on_gone)
        call->on_gone(call);
    else
        e2b_call_free(call);
}

/* "Authorization: Basic base64(user:)": the user the SDK asks to act as. */
static char *basic_user(const struct http_request *req)
{
    const char *a = req->authorization;
    if (!a || strncasecmp(a, "Basic ", 6))
        return NULL;
    size_t n = strlen(a + 6);
    if (n > 1024)
        return NULL;
    _cleanup_free_ char *raw = wr_malloc(n + 1);
    ssize_t len = wr_base64_decode(a + 6, n, raw);
    if (len <= 0)
        return NULL;
    raw[len] = 0;
    char *colon = strchr(raw, ':');
    if (colon)
        *colon = 0;
    return *raw ? wr_strdup(raw) : NULL;
}

static const struct {
    const char *name;
    const struct e2b_method *methods;
} services[] = {
    {"process.Process", e2b_process_methods},
    {"filesystem.Filesystem", e2b_filesystem_methods},
};

static void envd_rpc(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                     const char *sandbox)
{
    const char *slash = strrchr(req->path, '/');
    const struct e2b_method *m = NULL;
    for (size_t i = 0; i < WR_ARRAY_SIZE(services) && slash; i++) {
        size_t n = strlen(services[i].name);
        if ((size_t)(slash - req->path) != n + 1 || strncmp(req->path + 1, services[i].name, n))
            continue;
        for (const struct e2b_method *x = services[i].methods; x->name; x++)
            if (!strcmp(x->name, slash + 1))
                m = x;
    }
    if (!m) {
        connect_unary_error(c, CONNECT_UNIMPLEMENTED, "no such method");
        return;
    }
    if (req->method != HTTP_POST) {
        connect_unary_error(c, CONNECT_INVALID_ARGUMENT, "Connect calls are POST requests");
        return;
    }
    const char *why = NULL;
    bool stream = false;
    cJSON *msg = connect_request_message(req, &stream, &why);
    if (stream != m->server_stream) {
        cJSON_Delete(msg);
        msg = NULL;
        why = m->server_stream ? "this method is a server stream: send application/connect+json"
                               : "this method is unary: send application/json";
    }
    if (!msg) {
        if (stream) {
            connect_stream_begin(c);
            connect_stream_end(c, CONNECT_INVALID_ARGUMENT, why);
        } else {
            connect_unary_error(c, CONNECT_INVALID_ARGUMENT, why);
        }
        return;
    }
    struct e2b_call *call = wr_calloc(1, sizeof *call);
    call->e2b = e;
    call->conn = c;
    call->req = req;
    call->sandbox = wr_strdup(sandbox);
    call->user = basic_user(req);
    call->msg = msg;
    call->stream = stream;
    call->method = req->path + 1;
    call->started_ms = wr_now_ms();
    call->next = e->calls;
    if (e->calls)
        e->calls->prev = call;
    e->calls = call;
    http_conn_on_close(c, call_gone, call);
    m->handle(call);
}

static void handle_envd(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_e2b *e = data;
    const char *sandbox = http_request_header(req, "e2b-sandbox-id");
    if (!strcmp(req->path, "/health")) {
        struct http_response r = {.status = 204};
        http_respond(c, &r);
    } else if (!strcmp(req->path, "/files")) {
        e2b_files_handle(e, c, req, sandbox);
    } else {
        envd_rpc(e, c, req, sandbox);
    }
}

static void handle_control(void *data, struct http_conn *c, struct http_request *req)
{
    e2b_control_handle(data, c, req);
}

int mcp_e2b_start(const struct mcp_e2b_options *opts, struct mcp_e2b **ret, struct wr_error **err)
{
    (void)err;
    struct mcp_e2b *e = wr_calloc(1, sizeof *e);
    e->vmm = opts->vmm;
    e->listener = opts->listener;
    e->token = opts->token ? wr_strdup(opts->token) : NULL;
    e->base_image = wr_strdup(opts->base_image ? opts->base_image : "host");
    const unsigned any = ~0u;
    const struct http_route routes[] = {
        /* envd: any path, named by E2b-Sandbox-Id. Its own credentials (the access token). */
        {.path = "/",
         .match = is_envd,
         .methods = any,
         .body_max = E2B_FILES_BODY_MAX,
         .check = check_envd,
         .handle = handle_envd,
         .error_body = envd_error_body,
         .data = e,
         .public = true},
        {.path = "/files",
         .match = is_signed_files,
         .methods = HTTP_METHOD_BIT(HTTP_GET) | HTTP_METHOD_BIT(HTTP_POST),
         .body_max = E2B_FILES_BODY_MAX,
         .handle = handle_signed_files,
         .error_body = envd_error_body,
         .data = e,
         .public = true},
    };
    for (size_t i = 0; i < WR_ARRAY_SIZE(routes); i++)
        http_server_route(opts->listener, &routes[i]);
    /* The control plane: the SDK's X-API-Key (the UI's /sandboxes/<id>/... paths carry a
     * cookie, never a key); /v2/sandboxes itself is the API's alone. */
    static const char *const control_paths[] = {"/sandboxes", "/sandboxes/", "/v2/sandboxes",
                                                "/v2/sandboxes/"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(control_paths); i++) {
        struct http_route control = {.path = control_paths[i],
                                     .match = strcmp(control_paths[i], "/v2/sandboxes")
                                                  ? is_control
                                                  : NULL,
                                     .methods = any,
                                     .body_max = E2B_CONTROL_BODY_MAX,
                                     .check = check_control,
                                     .handle = handle_control,
                                     .error_body = control_error_body,
                                     .data = e,
                                     .public = true};
        http_server_route(opts->listener, &control);
    }
    *ret = e;
    return 0;
}

void mcp_e2b_stop(struct mcp_e2b *e)
{
    if (!e)
        return;
    e->stopping = true;
    /* Streams in flight end with "unavailable": the SDK sees a clean end. */
    for (struct e2b_call *call = e->calls; call; call = call->next)
        if (call->conn && call->stream) {
            struct http_conn *c = TAKE_PTR(call->conn);
            http_conn_on_close(c, NULL, NULL);
            connect_stream_end(c, CONNECT_UNAVAILABLE, "the server is stopping");
        }
}

void mcp_e2b_free(struct mcp_e2b *e)
{
    if (!e)
        return;
    /* By now the listener has closed every connection (each call's conn is NULL) and the
     * vmm is gone: what is left of the calls is memory. */
    while (e->calls)
        e2b_call_free(e->calls);
    free(e->token);
    free(e->base_image);
    free(e);
}
