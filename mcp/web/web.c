/* The web UI's routes on the listener (see web.h): the page and its assets, served from
 * the binary; browser sign-in; the live event stream. The UI's API is MCP itself (/mcp,
 * with the session cookie), so nothing here acts on sandboxes. */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ports.h"
#include "terminal.h"
#include "web.h"

#define EVENTS_TICK_MS 1000
#define EVENTS_BATCH 200
#define LOGIN_BODY_MAX 4096
#define LOGIN_FAILURES_MAX 20     /* per minute, then 429 */
#define PORT_BODY_MAX (32u << 20) /* a request body relayed to a sandbox's port */

extern const struct wr_embedded_file mcp_web_assets[];
extern const struct wr_embedded_file mcp_web_assets_gz[];

struct asset {
    const struct wr_embedded_file *raw, *gz;
    char *url;        /* "/assets/app.3f2a9c01d4.mjs" */
    const char *type; /* media type */
};

struct sse_client {
    struct sse_client *prev, *next;
    struct mcp_web *web;
    struct http_conn *conn;
};

/* A link to a port inside a sandbox: /sandboxes/<id>/ports/<port>/<token>/... The token
 * is what lets a request through (the pages behind it run in an origin of their own and
 * carry no cookie, see ports.c); it is handed to signed-in clients only. */
struct port_grant {
    char token[33];
    char *sandbox; /* the id */
    uint16_t port;
    uint64_t expires_ms;
};
#define PORT_GRANTS_MAX 256
#define PORT_GRANT_TTL_MS (12ull * 3600 * 1000)

struct mcp_web {
    struct vmm *vmm;
    struct http_server *listener;
    uv_timer_t tick;
    struct asset *assets;
    size_t n_assets;
    char *index_html;
    int64_t last_event_id;
    struct sse_client *clients;
    uint64_t failures_window_ms;
    unsigned failures;
    struct port_grant grants[PORT_GRANTS_MAX];
    size_t next_grant;
};

static const char *media_type(const char *name)
{
    static const char *const types[][2] = {
        {".mjs", "text/javascript; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".html", "text/html; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < WR_ARRAY_SIZE(types); i++)
        if (!strcmp(dot, types[i][0]))
            return types[i][1];
    return "application/octet-stream";
}

/* "/assets/<stem>.<first 10 hex of sha256>.<ext>": a new build gets new names, so the
 * assets can be cached for ever and index.html never. */
static char *hashed_url(const struct wr_embedded_file *f)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(f->data, f->len, md, &len, EVP_sha256(), NULL);
    char hex[65];
    wr_hex_encode(md, 5, hex);
    const char *base = strrchr(f->name, '/') ? strrchr(f->name, '/') + 1 : f->name;
    const char *dot = strchr(base, '.');
    return wr_asprintf("/assets/%.*s.%s%s", (int)(dot ? dot - base : (long)strlen(base)), base, hex,
                       dot ? dot : "");
}

static const struct asset *asset_by_name(const struct mcp_web *w, const char *name)
{
    for (size_t i = 0; i < w->n_assets; i++)
        if (!strcmp(w->assets[i].raw->name, name))
            return &w->assets[i];
    return NULL;
}

/* index.html with {{name}} replaced by each asset's hashed URL, and {{importmap}} by the
 * import map that lets the modules import each other by bare names. */
static char *render_index(const struct mcp_web *w)
{
    const struct wr_embedded_file *tpl = wr_embedded_find(mcp_web_assets, "index.html");
    if (!tpl)
        abort();
    cJSON *map = cJSON_CreateObject(), *imports = cJSON_AddObjectToObject(map, "imports");
    for (size_t i = 0; i < w->n_assets; i++)
        if (strstr(w->assets[i].raw->name, ".mjs")) {
            _cleanup_free_ char *bare = wr_strdup(w->assets[i].raw->name);
            *strstr(bare, ".mjs") = 0;
            cJSON_AddStringToObject(imports, bare, w->assets[i].url);
        }
    _cleanup_free_ char *map_text = cJSON_PrintUnformatted(map);
    cJSON_Delete(map);
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    const char *p = (const char *)tpl->data;
    for (const char *open; (open = strstr(p, "{{"));) {
        const char *close = strstr(open, "}}");
        if (!close)
            break;
        wr_buf_append(&b, p, (size_t)(open - p));
        _cleanup_free_ char *key = wr_strndup(open + 2, (size_t)(close - open - 2));
        const struct asset *a = asset_by_name(w, key);
        if (!strcmp(key, "importmap"))
            wr_buf_append(&b, map_text, strlen(map_text));
        else if (a)
            wr_buf_append(&b, a->url, strlen(a->url));
        p = close + 2;
    }
    wr_buf_append(&b, p, strlen(p));
    return wr_buf_steal(&b, NULL);
}

static void respond_json(struct http_conn *c, int status, cJSON *o, const char *extra)
{
    _cleanup_free_ char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    http_respond(c, &(struct http_response){.status = status,
                                            .content_type = "application/json",
                                            .body = text,
                                            .body_len = strlen(text),
                                            .extra_headers = extra});
}

/* ---- the page and its assets ----------------------------------------------------------- */

static void handle_index(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_web *w = data;
    if (strcmp(req->path, "/") && strcmp(req->path, "/index.html")) {
        http_respond_error(c, 404, "not found");
        return;
    }
    http_respond(c, &(struct http_response){
                        .status = 200,
                        .content_type = "text/html; charset=utf-8",
                        .body = w->index_html,
                        .body_len = strlen(w->index_html),
                        .extra_headers = "Cache-Control: no-cache\r\n"
                                         "X-Content-Type-Options: nosniff\r\n"
                                         "X-Frame-Options: DENY\r\n"
                                         "Referrer-Policy: no-referrer\r\n"
                                         "Content-Security-Policy: default-src 'self'; "
                                         "script-src 'self' 'unsafe-inline'; style-src 'self' "
                                         "'unsafe-inline'; img-src 'self' data: blob:; "
                                         "connect-src 'self'; frame-ancestors 'none'\r\n"});
}

/* "gzip" (or "*") among the codings of an Accept-Encoding value, without q=0. */
static bool accepts_gzip(const char *accept)
{
    for (const char *p = accept; p && *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, ",");
        size_t coding = strcspn(p, " ;,");
        if ((coding == 4 && !strncasecmp(p, "gzip", 4)) || (coding == 1 && *p == '*')) {
            const char *q = strstr(p, "q=");
            return !(q && q < p + len && strtod(q + 2, NULL) == 0);
        }
        p += len;
    }
    return false;
}

static void handle_asset(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_web *w = data;
    for (size_t i = 0; i < w->n_assets; i++) {
        const struct asset *a = &w->assets[i];
        if (strcmp(req->path, a->url))
            continue;
        bool gzip = a->gz && accepts_gzip(http_request_header(req, "accept-encoding"));
        const struct wr_embedded_file *f = gzip ? a->gz : a->raw;
        http_respond(c, &(struct http_response){
                            .status = 200,
                            .content_type = a->type,
                            .body = (const char *)f->data,
                            .body_len = f->len,
                            .extra_headers = gzip ? "Content-Encoding: gzip\r\nVary: "
                                                    "Accept-Encoding\r\nCache-Control: public, "
                                                    "max-age=31536000, immutable\r\n"
                                                  : "Vary: Accept-Encoding\r\nCache-Control: "
                                                    "public, max-age=31536000, immutable\r\n"});
        return;
    }
    http_respond_error(c, 404, "no such asset (the page may be older than the server: reload)");
}

/* ---- sign-in ------------------------------------------------------------------------------ */

static void handle_session(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_web *w = data;
    cJSON *o = cJSON_CreateObject();
    bool needs = http_server_needs_signin(w->listener);
    const char *csrf = needs ? http_signin_csrf(w->listener, req) : "";
    cJSON_AddStringToObject(o, "auth", needs ? "token" : "none");
    cJSON_AddBoolToObject(o, "signed_in", csrf != NULL);
    if (csrf)
        cJSON_AddStringToObject(o, "csrf", csrf);
    respond_json(c, 200, o, "Cache-Control: no-store\r\n");
}

static void handle_login(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_web *w = data;
    uint64_t now = uv_now(http_server_loop(w->listener));
    if (now - w->failures_window_ms > 60000) {
        w->failures_window_ms = now;
        w->failures = 0;
    }
    if (w->failures >= LOGIN_FAILURES_MAX) {
        http_respond_error(c, 429, "too many failed sign-ins: wait a minute");
        return;
    }
    cJSON *body = cJSON_ParseWithLength(req->body.data ? req->body.data : "", req->body.len);
    const char *token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "token"));
    bool ok = !http_server_needs_signin(w->listener) || http_server_token_ok(w->listener, token);
    cJSON_Delete(body);
    if (!ok) {
        w->failures++;
        http_respond_error(c, 401, "wrong token");
        return;
    }
    if (!http_server_needs_signin(w->listener)) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "csrf", "");
        respond_json(c, 200, o, NULL);
        return;
    }
    _cleanup_free_ char *cookie = NULL, *csrf = NULL;
    if (http_signin_create(w->listener, &cookie, &csrf) < 0) {
        http_respond_error(c, 500, "could not create a session");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "csrf", csrf);
    _cleanup_free_ char *extra = wr_asprintf("%sCache-Control: no-store\r\n", cookie);
    respond_json(c, 200, o, extra);
}

static void handle_logout(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_web *w = data;
    const char *clear = http_signin_end(w->listener, req);
    http_respond(c, &(struct http_response){.status = 204, .extra_headers = clear});
}

/* ---- the event stream --------------------------------------------------------------------- */

static void client_closed(void *data)
{
    struct sse_client *cl = data;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        cl->web->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    free(cl);
}

static void handle_events(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_web *w = data;
    struct sse_client *cl = wr_calloc(1, sizeof(*cl));
    cl->web = w;
    cl->conn = c;
    cl->next = w->clients;
    if (cl->next)
        cl->next->prev = cl;
    w->clients = cl;
    http_conn_on_close(c, client_closed, cl);
    http_sse_begin(c, "Cache-Control: no-store\r\n");
    /* A first event at once: the client knows the stream is up. */
    char hello[64];
    int n = snprintf(hello, sizeof(hello), "{\"kind\":\"hello\",\"last_id\":%lld}",
                     (long long)w->last_event_id);
    http_sse_event(c, (uint64_t)w->last_event_id, hello, (size_t)n);
}

/* Every second: the events recorded since the last tick go to every stream. */
static void tick(uv_timer_t *t)
{
    struct mcp_web *w = t->data;
    struct store_event_row *ev = NULL;
    size_t n = 0;
    if (vmm_events_since(w->vmm, w->last_event_id, EVENTS_BATCH, &ev, &n, NULL) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)ev[i].id);
        cJSON_AddNumberToObject(o, "at", (double)ev[i].at);
        cJSON_AddStringToObject(o, "kind", ev[i].kind);
        if (ev[i].sandbox_id)
            cJSON_AddStringToObject(o, "sandbox_id", ev[i].sandbox_id);
        _cleanup_free_ char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        for (struct sse_client *cl = w->clients; cl; cl = cl->next)
            http_sse_event(cl->conn, (uint64_t)ev[i].id, text, strlen(text));
        w->last_event_id = ev[i].id;
        store_event_clear(&ev[i]);
    }
    free(ev);
}

/* ---- ports -------------------------------------------------------------------------------- */

static void handle_port_grant(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_web *w = data;
    cJSON *body = cJSON_ParseWithLength(req->body.data ? req->body.data : "", req->body.len);
    const char *sandbox = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "sandbox"));
    double port = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(body, "port"));
    _cleanup_free_ char *id = NULL;
    struct vmm_sandbox_info *list = NULL;
    size_t n = 0;
    if (sandbox && vmm_sandbox_list(w->vmm, &list, &n, NULL) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (!id && (!strcmp(list[i].row.id, sandbox) || !strcmp(list[i].row.name, sandbox)))
                id = wr_strdup(list[i].row.id);
            vmm_sandbox_info_clear(&list[i]);
        }
        free(list);
    }
    cJSON_Delete(body);
    if (!(port >= 1 && port <= 65535)) {
        http_respond_error(c, 400, "give {\"sandbox\": id or name, \"port\": 1-65535}");
        return;
    }
    if (!id) {
        http_respond_error(c, 404, "no such sandbox");
        return;
    }
    struct port_grant *g = &w->grants[w->next_grant++ % PORT_GRANTS_MAX];
    free(g->sandbox);
    unsigned char raw[16];
    if (wr_random_bytes(raw, sizeof(raw)) < 0) {
        http_respond_error(c, 500, "no randomness");
        return;
    }
    wr_hex_encode(raw, sizeof(raw), g->token);
    g->sandbox = wr_strdup(id);
    g->port = (uint16_t)port;
    g->expires_ms = uv_now(http_server_loop(w->listener)) + PORT_GRANT_TTL_MS;
    cJSON *o = cJSON_CreateObject();
    _cleanup_free_ char *url = wr_asprintf("/sandboxes/%s/ports/%u/%s/", id, g->port, g->token);
    cJSON_AddStringToObject(o, "url", url);
    respond_json(c, 200, o, "Cache-Control: no-store\r\n");
}

/* The grant a /sandboxes/<sandbox>/ports/<port>/<token>/ path names, or NULL. */
static const struct port_grant *grant_find(struct mcp_web *w, const char *sandbox, uint16_t port,
                                           const char *token)
{
    uint64_t now = uv_now(http_server_loop(w->listener));
    for (size_t i = 0; i < PORT_GRANTS_MAX; i++) {
        const struct port_grant *g = &w->grants[i];
        if (g->sandbox && g->port == port && g->expires_ms > now && !strcmp(g->sandbox, sandbox) &&
            strlen(token) == 32 && !memcmp(g->token, token, 32))
            return g;
    }
    return NULL;
}

/* ---- /sandboxes/<id>/... ---------------------------------------------------------------- */

static void handle_sandbox_path(void *data, struct http_conn *c, struct http_request *req)
{
    struct mcp_web *w = data;
    const char *rest = req->path + strlen("/sandboxes/");
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || (size_t)(slash - rest) > 63) {
        http_respond_error(c, 404, "not found");
        return;
    }
    _cleanup_free_ char *sandbox = wr_strndup(rest, (size_t)(slash - rest));
    if (!strncmp(slash, "/ports/", 7)) {
        /* <port>/<token>/<path> */
        char *end;
        unsigned long port = strtoul(slash + 7, &end, 10);
        char token[33] = "";
        if (*end == '/' && strlen(end + 1) >= 32 && (end[33] == '/' || end[33] == 0))
            memcpy(token, end + 1, 32);
        if (port < 1 || port > 65535 || !grant_find(w, sandbox, (uint16_t)port, token)) {
            http_respond_error(c, 403,
                               "this port link is not valid (any more): open the port again "
                               "from the sandbox's page");
            return;
        }
        mcp_web_port(w->vmm, c, req, sandbox, (uint16_t)port, end + 33);
    } else if (!strcmp(slash, "/terminal") && req->method == HTTP_GET) {
        if (!http_request_authenticated(w->listener, req)) {
            http_respond_error(c, 401, "sign in first");
            return;
        }
        mcp_web_terminal(w->vmm, c, req, sandbox);
    } else
        http_respond_error(c, 404,
                           "not found: /sandboxes/<id> serves /terminal and /ports/<port>/");
}

/* ---- start and stop ------------------------------------------------------------------------- */

static void web_free(uv_handle_t *h)
{
    struct mcp_web *w = h->data;
    for (size_t i = 0; i < PORT_GRANTS_MAX; i++)
        free(w->grants[i].sandbox);
    for (size_t i = 0; i < w->n_assets; i++)
        free(w->assets[i].url);
    free(w->assets);
    free(w->index_html);
    free(w);
}

int mcp_web_start(struct vmm *vmm, struct http_server *listener, struct mcp_web **ret,
                  struct wr_error **err)
{
    struct mcp_web *w = wr_calloc(1, sizeof(*w));
    w->vmm = vmm;
    w->listener = listener;
    for (const struct wr_embedded_file *f = mcp_web_assets; f->name; f++) {
        if (!strcmp(f->name, "index.html"))
            continue;
        w->assets = wr_realloc(w->assets, (w->n_assets + 1) * sizeof(*w->assets));
        _cleanup_free_ char *gz_name = wr_asprintf("%s.gz", f->name);
        w->assets[w->n_assets++] = (struct asset){
            .raw = f,
            .gz = wr_embedded_find(mcp_web_assets_gz, gz_name),
            .url = hashed_url(f),
            .type = media_type(f->name),
        };
    }
    w->index_html = render_index(w);
    w->last_event_id = vmm_events_last_id(vmm);
    uv_timer_init(http_server_loop(listener), &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, tick, EVENTS_TICK_MS, EVENTS_TICK_MS);

    const unsigned get = HTTP_METHOD_BIT(HTTP_GET) | HTTP_METHOD_BIT(HTTP_HEAD);
    const unsigned post = HTTP_METHOD_BIT(HTTP_POST);
    const struct http_route routes[] = {
        {.path = "/assets/", .methods = get, .handle = handle_asset, .data = w, .public = true},
        {.path = "/api/session",
         .methods = get,
         .handle = handle_session,
         .data = w,
         .public = true},
        {.path = "/api/login",
         .methods = post,
         .body_max = LOGIN_BODY_MAX,
         .handle = handle_login,
         .data = w,
         .public = true},
        {.path = "/api/logout", .methods = post, .handle = handle_logout, .data = w},
        {.path = "/api/events", .methods = get, .handle = handle_events, .data = w},
        {.path = "/api/ports",
         .methods = post,
         .body_max = LOGIN_BODY_MAX,
         .handle = handle_port_grant,
         .data = w},
        /* Public: a terminal checks the sign-in itself; a port link carries its token. */
        {.path = "/sandboxes/",
         .methods = ~0u,
         .body_max = PORT_BODY_MAX,
         .handle = handle_sandbox_path,
         .data = w,
         .public = true},
        /* Last: "/" is a prefix that matches every path the routes above do not. */
        {.path = "/", .methods = get, .handle = handle_index, .data = w, .public = true},
    };
    for (size_t i = 0; i < WR_ARRAY_SIZE(routes); i++)
        http_server_route(listener, &routes[i]);
    (void)err;
    *ret = w;
    return 0;
}

void mcp_web_drain(struct mcp_web *w)
{
    if (!w)
        return;
    while (w->clients) {
        struct sse_client *cl = w->clients;
        http_conn_on_close(cl->conn, NULL, NULL);
        http_sse_end(cl->conn);
        client_closed(cl);
    }
}

void mcp_web_stop(struct mcp_web *w)
{
    if (!w)
        return;
    mcp_web_drain(w);
    uv_timer_stop(&w->tick);
    /* The timer handle lives in w: w goes once libuv has closed it. */
    uv_close((uv_handle_t *)&w->tick, web_free);
}
