/* libFuzzer target for the HTTP request layer (mcp/http/request.c): arbitrary bytes, cut into
 * reads of fuzzer-chosen sizes, go through the http_parser-driven request assembly the way a
 * connection feeds it, including pipelined requests, and every header check runs on what
 * comes out. */
#include <stdint.h>
#include <string.h>

#include "mcp/http/http-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the transport's header-time check does, minus the connection. */
static int check_headers(void *data, struct http_request *req)
{
    struct http_parser_state *parser = data;
    const char *listen = "127.0.0.1:8080";
    int status = 0;
    if (req->host && !http_host_allowed(req->host, listen))
        status = 403;
    if (req->origin && !http_origin_allowed(req->origin, listen))
        status = 403;
    if (!http_token_matches(req->authorization, "token"))
        status = status ? status : 0; /* a fuzzer rarely guesses it: keep going either way */
    (void)http_media_type_is(http_request_header(req, "content-type"), "application/json");
    (void)http_accepts(http_request_header(req, "Accept"), "text/event-stream");
    /* The sign-in cookie, as every request without the bearer token is checked. */
    const char *cookie = http_request_header(req, "cookie");
    char value[80];
    if (cookie && http_cookie_value(cookie, "warren_session", value, sizeof(value)) &&
        (strlen(value) >= sizeof(value) || strchr(value, ';')))
        __builtin_trap();
    /* Routing: the listener picks the body cap by path once the headers are in. */
    if (req->path && strncmp(req->path, "/small", 6) == 0)
        http__parser_set_body_max(parser, 16);
    if (http__parser_declared_too_big(parser))
        status = status ? status : 413;
    if (req->url) {
        struct http_parser_url u;
        http_parser_url_init(&u);
        (void)http_parser_parse_url(req->url, strlen(req->url), 0, &u);
    }
    return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the read size, so split tokens get exercised. */
    size_t chunk = (size_t)data[0] % 64 + 1;
    const char *in = (const char *)data + 1;
    size_t left = size - 1;
    struct http_parser_state p;
    /* A small body cap reaches the 413 path without huge inputs. */
    http__parser_init(&p, 4096, check_headers, &p);
    while (left > 0) {
        size_t n = left < chunk ? left : chunk;
        ssize_t used = http__parser_feed(&p, in, n);
        if (used < 0)
            break;
        in += used;
        left -= (size_t)used;
        if (p.complete) {
            (void)strlen(p.req.body.data ? p.req.body.data : "");
            http__parser_next(&p);
        } else if (used == 0) {
            break;
        }
    }
    http__parser_free(&p);
    char host[256];
    int port;
    char *text = wr_strndup((const char *)data, size);
    (void)http_split_authority(text, host, sizeof(host), &port);
    (void)http_host_is_loopback(text);
    free(text);
    return 0;
}
