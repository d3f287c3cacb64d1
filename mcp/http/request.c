/* The listener's request layer: http_parser callbacks that assemble one request at a time
 * with caps on every part, and the pure checks of header values (Host, Origin, bearer
 * token, media types). No sockets here, so tests and the fuzzer drive it directly. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http-internal.h"

/* Headers HTTP defines as comma-separated lists: a repeat is joined to the first value
 * (RFC 9110, 5.3). Any other header sent twice leaves no right answer (two Authorization
 * or Host values) and the request is refused. */
static const char *const list_headers[] = {
    "accept", "accept-encoding", "accept-language", "cache-control", "forwarded", "pragma", "te",
    "via",    "warning",         "x-forwarded-for",
};

static struct http_parser_state *parser_of(http_parser *hp)
{
    return (struct http_parser_state *)((char *)hp - offsetof(struct http_parser_state, parser));
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (!strcasecmp(req->headers[i].name, name))
            return req->headers[i].value;
    return NULL;
}

static void request_clear(struct http_request *req)
{
    free(req->url);
    free(req->path);
    for (size_t i = 0; i < req->header_count; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    wr_buf_free(&req->body);
    size_t body_max = req->body.max;
    memset(req, 0, sizeof(*req));
    wr_buf_init(&req->body, body_max);
}

/* Counts bytes against the header cap; a request over it is answered 431. */
static int count_header_bytes(struct http_parser_state *p, size_t n)
{
    p->header_bytes += n;
    if (p->header_bytes <= HTTP_MAX_HEADER_BYTES)
        return 0;
    p->status = 431;
    return -1;
}

static int on_message_begin(http_parser *hp)
{
    parser_of(hp)->started = true;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t n)
{
    struct http_parser_state *p = parser_of(hp);
    if (count_header_bytes(p, n) < 0)
        return -1;
    size_t old = p->req.url ? strlen(p->req.url) : 0;
    p->req.url = wr_realloc(p->req.url, old + n + 1);
    memcpy(p->req.url + old, at, n);
    p->req.url[old + n] = '\0';
    return 0;
}

static bool is_list_header(const char *name)
{
    for (size_t i = 0; i < WR_ARRAY_SIZE(list_headers); i++)
        if (!strcmp(name, list_headers[i]))
            return true;
    return false;
}

/* The headers the listener itself reads, pointing into req->headers. */
static void note_known_header(struct http_request *req, const struct http_header *h)
{
    if (!strcmp(h->name, "host"))
        req->host = h->value;
    else if (!strcmp(h->name, "origin"))
        req->origin = h->value;
    else if (!strcmp(h->name, "authorization"))
        req->authorization = h->value;
    else if (!strcmp(h->name, "expect"))
        req->expect = h->value;
}

/* Stores the header just received (name lowercased, trailing blanks trimmed). */
static int finish_header(struct http_parser_state *p)
{
    if (!p->in_value)
        return 0;
    p->in_value = false;
    struct http_request *req = &p->req;
    size_t len = p->value.len;
    while (len > 0 && (p->value.data[len - 1] == ' ' || p->value.data[len - 1] == '\t'))
        len--;
    _cleanup_free_ char *name = wr_strndup(p->field.data ? p->field.data : "", p->field.len);
    for (char *c = name; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    wr_buf_reset(&p->field);
    struct http_header *seen = NULL;
    for (size_t i = 0; i < req->header_count && !seen; i++)
        if (!strcmp(req->headers[i].name, name))
            seen = &req->headers[i];
    if (seen && !is_list_header(name)) {
        p->status = 400;
        return -1;
    }
    if (seen) {
        char *joined = wr_asprintf("%s, %.*s", seen->value, (int)len, p->value.data);
        free(seen->value);
        seen->value = joined;
    } else if (req->header_count == HTTP_MAX_HEADERS) {
        p->status = 431;
        return -1;
    } else {
        struct http_header *h = &req->headers[req->header_count++];
        h->name = TAKE_PTR(name);
        h->value = wr_strndup(p->value.data ? p->value.data : "", len);
        note_known_header(req, h);
    }
    wr_buf_reset(&p->value);
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    struct http_parser_state *p = parser_of(hp);
    if (count_header_bytes(p, n) < 0 || finish_header(p) < 0)
        return -1;
    /* The buffers are capped at the header limit, which count_header_bytes already enforces. */
    (void)wr_buf_append(&p->field, at, n);
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    struct http_parser_state *p = parser_of(hp);
    if (count_header_bytes(p, n) < 0)
        return -1;
    p->in_value = true;
    (void)wr_buf_append(&p->value, at, n);
    return 0;
}

char *http__url_path(const char *url)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (!url || http_parser_parse_url(url, strlen(url), 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
        return wr_strdup("");
    return wr_strndup(url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
}

static int on_headers_complete(http_parser *hp)
{
    struct http_parser_state *p = parser_of(hp);
    if (finish_header(p) < 0)
        return -1;
    p->headers_done = true;
    p->req.method = (enum http_method)hp->method;
    p->req.http_major = hp->http_major;
    p->req.http_minor = hp->http_minor;
    p->req.keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
    p->req.path = http__url_path(p->req.url);
    int status = p->on_headers ? p->on_headers(p->data, &p->req) : 0;
    /* A declared length over the cap is refused before a byte of the body is read. */
    if (status == 0 && http__parser_declared_too_big(p))
        status = 413;
    /* A declared length is allocated once (no doubling: an upload near the cap would
     * otherwise hold twice its size while it arrives). */
    if (status == 0 && (hp->flags & F_CONTENTLENGTH) && hp->content_length > 0)
        wr_buf_reserve(&p->req.body, (size_t)hp->content_length);
    if (status != 0) {
        p->status = status;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct http_parser_state *p = parser_of(hp);
    if (wr_buf_append(&p->req.body, at, n) < 0) {
        p->status = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct http_parser_state *p = parser_of(hp);
    p->complete = true;
    /* One request at a time: the caller answers it before the next pipelined one is parsed. */
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http__parser_init(struct http_parser_state *p, size_t body_max, http_headers_cb on_headers,
                       void *data)
{
    memset(p, 0, sizeof(*p));
    http_parser_init(&p->parser, HTTP_REQUEST);
    wr_buf_init(&p->field, HTTP_MAX_HEADER_BYTES);
    wr_buf_init(&p->value, HTTP_MAX_HEADER_BYTES);
    wr_buf_init(&p->req.body, body_max);
    p->body_max = body_max;
    p->on_headers = on_headers;
    p->data = data;
}

void http__parser_free(struct http_parser_state *p)
{
    request_clear(&p->req);
    wr_buf_free(&p->req.body);
    wr_buf_free(&p->field);
    wr_buf_free(&p->value);
}

void http__parser_set_body_max(struct http_parser_state *p, size_t body_max)
{
    p->body_max = body_max;
    p->req.body.max = body_max;
}

bool http__parser_declared_too_big(const struct http_parser_state *p)
{
    return (p->parser.flags & F_CONTENTLENGTH) && p->parser.content_length > p->body_max;
}

ssize_t http__parser_feed(struct http_parser_state *p, const char *data, size_t len)
{
    if (p->complete || p->status != 0)
        return p->status != 0 ? -1 : 0;
    if (len == 0)
        return 0;
    size_t n = http_parser_execute(&p->parser, &parser_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
    if (e == HPE_OK || (e == HPE_PAUSED && p->complete))
        return (ssize_t)n;
    if (p->status == 0)
        p->status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    return -1;
}

void http__parser_next(struct http_parser_state *p)
{
    request_clear(&p->req);
    wr_buf_reset(&p->field);
    wr_buf_reset(&p->value);
    p->in_value = false;
    p->header_bytes = 0;
    p->started = false;
    p->headers_done = false;
    p->complete = false;
    http_parser_pause(&p->parser, 0);
}

/* ---- header checks -------------------------------------------------------------------- */

bool http_host_is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
    return false;
}

static bool parse_port(const char *s, int *ret_port)
{
    if (*s == '\0' || strlen(s) > 5)
        return false;
    int port = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
        port = port * 10 + (*s - '0');
    }
    *ret_port = port;
    return port <= 65535;
}

bool http_split_authority(const char *authority, char *host, size_t host_size, int *ret_port)
{
    const char *host_start = authority, *host_end;
    if (*authority == '[') {
        host_start = authority + 1;
        host_end = strchr(host_start, ']');
        if (!host_end || (host_end[1] != '\0' && host_end[1] != ':'))
            return false;
    } else {
        host_end = strchr(authority, ':');
        if (!host_end)
            host_end = authority + strlen(authority);
    }
    size_t n = (size_t)(host_end - host_start);
    if (n == 0 || n >= host_size)
        return false;
    memcpy(host, host_start, n);
    host[n] = '\0';
    const char *port = host_end + (*authority == '[' ? 1 : 0);
    *ret_port = -1;
    if (*port == '\0')
        return true;
    return *port == ':' && parse_port(port + 1, ret_port);
}

static bool authority_is_loopback(const char *authority)
{
    char host[256];
    int port;
    return http_split_authority(authority, host, sizeof(host), &port) &&
           http_host_is_loopback(host);
}

bool http_host_allowed(const char *host_header, const char *listen_authority)
{
    if (listen_authority && strcasecmp(host_header, listen_authority) == 0)
        return true;
    return authority_is_loopback(host_header);
}

bool http_origin_allowed(const char *origin, const char *listen_authority)
{
    const char *authority;
    if (strncasecmp(origin, "http://", 7) == 0)
        authority = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        authority = origin + 8;
    else
        return false; /* "null", file:, extensions: never ours */
    return http_host_allowed(authority, listen_authority);
}

bool http_token_matches(const char *authorization, const char *token)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    /* Constant time in the length of the secret: every byte of it is compared whatever the
     * input, and a length mismatch only flips the result. */
    size_t given_len = strlen(given), token_len = strlen(token);
    unsigned char diff = given_len != token_len;
    for (size_t i = 0; i < token_len; i++)
        diff |= (unsigned char)(token[i] ^ (given_len ? given[i % given_len] : 0));
    return diff == 0;
}

/* Compares s (up to a ';', ',' or the end, surrounding spaces ignored) with word. */
static bool token_equals(const char *s, size_t n, const char *word)
{
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

bool http_media_type_is(const char *content_type, const char *type)
{
    if (!content_type)
        return false;
    return token_equals(content_type, strcspn(content_type, ";"), type);
}

bool http_accepts(const char *accept, const char *type)
{
    if (!accept || accept[strspn(accept, " \t")] == '\0')
        return true;
    char wildcard[128];
    size_t major = strcspn(type, "/");
    snprintf(wildcard, sizeof(wildcard), "%.*s/*", (int)major, type);
    for (const char *s = accept; *s;) {
        size_t item = strcspn(s, ",");
        size_t media = strcspn(s, ";,");
        if (token_equals(s, media, type) || token_equals(s, media, wildcard) ||
            token_equals(s, media, "*/*"))
            return true;
        s += item;
        if (*s == ',')
            s++;
    }
    return false;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}
