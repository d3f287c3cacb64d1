/* The request layer of the Streamable HTTP transport: http_parser callbacks that assemble one
 * request at a time with caps on every part, and the header checks (Host, Origin, bearer
 * token, media types). No sockets here, so tests and the fuzzer drive it directly. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http-internal.h"

/* Header values we keep, by name. Every other header is read (and counted against the
 * caps) but dropped. */
struct known_header {
    const char *name;
    size_t offset;
};

static const struct known_header known_headers[] = {
    {"host", offsetof(struct mcp_http_request, host)},
    {"origin", offsetof(struct mcp_http_request, origin)},
    {"authorization", offsetof(struct mcp_http_request, authorization)},
    {"content-type", offsetof(struct mcp_http_request, content_type)},
    {"accept", offsetof(struct mcp_http_request, accept)},
    {"mcp-session-id", offsetof(struct mcp_http_request, session_id)},
    {"mcp-protocol-version", offsetof(struct mcp_http_request, protocol_version)},
    {"expect", offsetof(struct mcp_http_request, expect)},
};

static struct mcp_http_parser *parser_of(http_parser *hp)
{
    return (struct mcp_http_parser *)((char *)hp - offsetof(struct mcp_http_parser, parser));
}

static void request_clear(struct mcp_http_request *req)
{
    free(req->url);
    for (size_t i = 0; i < WR_ARRAY_SIZE(known_headers); i++)
        free(*(char **)((char *)req + known_headers[i].offset));
    wr_buf_free(&req->body);
    size_t body_max = req->body.max;
    memset(req, 0, sizeof(*req));
    wr_buf_init(&req->body, body_max);
}

/* Counts bytes against the header cap; a request over it is answered 431. */
static int count_header_bytes(struct mcp_http_parser *p, size_t n)
{
    p->header_bytes += n;
    if (p->header_bytes <= MCP_HTTP_MAX_HEADER_BYTES)
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
    struct mcp_http_parser *p = parser_of(hp);
    if (count_header_bytes(p, n) < 0)
        return -1;
    size_t old = p->req.url ? strlen(p->req.url) : 0;
    p->req.url = wr_realloc(p->req.url, old + n + 1);
    memcpy(p->req.url + old, at, n);
    p->req.url[old + n] = '\0';
    return 0;
}

/* Stores the header just received when it is one we act on. A repeated one is an error:
 * two Authorization or Mcp-Session-Id values leave no right answer. */
static int finish_header(struct mcp_http_parser *p)
{
    if (!p->in_value)
        return 0;
    p->in_value = false;
    if (++p->header_count > MCP_HTTP_MAX_HEADERS) {
        p->status = 431;
        return -1;
    }
    for (size_t i = 0; i < WR_ARRAY_SIZE(known_headers); i++) {
        if (strcasecmp(p->field.data ? p->field.data : "", known_headers[i].name) != 0)
            continue;
        char **slot = (char **)((char *)&p->req + known_headers[i].offset);
        if (*slot) {
            p->status = 400;
            return -1;
        }
        size_t len = p->value.len;
        while (len > 0 && (p->value.data[len - 1] == ' ' || p->value.data[len - 1] == '\t'))
            len--;
        *slot = wr_strndup(p->value.data ? p->value.data : "", len);
        break;
    }
    wr_buf_reset(&p->field);
    wr_buf_reset(&p->value);
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    struct mcp_http_parser *p = parser_of(hp);
    if (count_header_bytes(p, n) < 0 || finish_header(p) < 0)
        return -1;
    /* The buffers are capped at the header limit, which count_header_bytes already enforces. */
    (void)wr_buf_append(&p->field, at, n);
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    struct mcp_http_parser *p = parser_of(hp);
    if (count_header_bytes(p, n) < 0)
        return -1;
    p->in_value = true;
    (void)wr_buf_append(&p->value, at, n);
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct mcp_http_parser *p = parser_of(hp);
    if (finish_header(p) < 0)
        return -1;
    p->headers_done = true;
    p->req.method = (enum http_method)hp->method;
    p->req.http_major = hp->http_major;
    p->req.http_minor = hp->http_minor;
    p->req.keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
    /* A declared length over the cap is refused before a byte of the body is read. */
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > p->body_max) {
        p->status = 413;
        return -1;
    }
    int status = p->on_headers ? p->on_headers(p->data, &p->req) : 0;
    if (status != 0) {
        p->status = status;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct mcp_http_parser *p = parser_of(hp);
    if (wr_buf_append(&p->req.body, at, n) < 0) {
        p->status = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct mcp_http_parser *p = parser_of(hp);
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

void mcp__http_parser_init(struct mcp_http_parser *p, size_t body_max,
                           mcp_http_headers_cb on_headers, void *data)
{
    memset(p, 0, sizeof(*p));
    http_parser_init(&p->parser, HTTP_REQUEST);
    wr_buf_init(&p->field, MCP_HTTP_MAX_HEADER_BYTES);
    wr_buf_init(&p->value, MCP_HTTP_MAX_HEADER_BYTES);
    wr_buf_init(&p->req.body, body_max);
    p->body_max = body_max;
    p->on_headers = on_headers;
    p->data = data;
}

void mcp__http_parser_free(struct mcp_http_parser *p)
{
    request_clear(&p->req);
    wr_buf_free(&p->req.body);
    wr_buf_free(&p->field);
    wr_buf_free(&p->value);
}

ssize_t mcp__http_parser_feed(struct mcp_http_parser *p, const char *data, size_t len)
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

void mcp__http_parser_next(struct mcp_http_parser *p)
{
    request_clear(&p->req);
    wr_buf_reset(&p->field);
    wr_buf_reset(&p->value);
    p->in_value = false;
    p->header_bytes = 0;
    p->header_count = 0;
    p->started = false;
    p->headers_done = false;
    p->complete = false;
    http_parser_pause(&p->parser, 0);
}

/* ---- header checks -------------------------------------------------------------------- */

bool mcp__http_host_is_loopback(const char *host)
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

bool mcp__http_split_authority(const char *authority, char *host, size_t host_size, int *ret_port)
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
    return mcp__http_split_authority(authority, host, sizeof(host), &port) &&
           mcp__http_host_is_loopback(host);
}

bool mcp__http_host_allowed(const char *host_header, const char *listen_authority)
{
    if (listen_authority && strcasecmp(host_header, listen_authority) == 0)
        return true;
    return authority_is_loopback(host_header);
}

bool mcp__http_origin_allowed(const char *origin, const char *listen_authority)
{
    const char *authority;
    if (strncasecmp(origin, "http://", 7) == 0)
        authority = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        authority = origin + 8;
    else
        return false; /* "null", file:, extensions: never ours */
    return mcp__http_host_allowed(authority, listen_authority);
}

bool mcp__http_token_matches(const char *authorization, const char *token)
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

bool mcp__http_media_type_is(const char *content_type, const char *type)
{
    if (!content_type)
        return false;
    return token_equals(content_type, strcspn(content_type, ";"), type);
}

bool mcp__http_accepts(const char *accept, const char *type)
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

const char *mcp__http_reason(int status)
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
