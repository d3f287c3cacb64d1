/* Proxy request heads (see head.h). The head is parsed once it is whole (the blank line
 * seen), so http-parser's callbacks get each piece in one call. */
#include <http_parser.h>
#include <string.h>
#include <strings.h>

#include "head.h"

struct header {
    const char *name, *value;
    size_t name_len, value_len;
};

struct parse {
    http_parser parser;
    const char *url;
    size_t url_len;
    struct header headers[VMM_PROXY_MAX_HEADERS];
    size_t n_headers;
    bool too_many, in_value;
    bool done;
};

static struct parse *parse_of(http_parser *hp)
{
    return (struct parse *)((char *)hp - offsetof(struct parse, parser));
}

static int on_url(http_parser *hp, const char *at, size_t n)
{
    struct parse *p = parse_of(hp);
    if (!p->url)
        p->url = at;
    p->url_len = (size_t)(at + n - p->url);
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    struct parse *p = parse_of(hp);
    if (p->in_value || p->n_headers == 0) {
        if (p->n_headers == VMM_PROXY_MAX_HEADERS) {
            p->too_many = true;
            return 1;
        }
        p->headers[p->n_headers++] = (struct header){.name = at, .name_len = n};
        p->in_value = false;
        return 0;
    }
    struct header *h = &p->headers[p->n_headers - 1];
    h->name_len = (size_t)(at + n - h->name);
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    struct parse *p = parse_of(hp);
    struct header *h = &p->headers[p->n_headers - 1];
    if (!p->in_value) {
        h->value = at;
        p->in_value = true;
    }
    h->value_len = (size_t)(at + n - h->value);
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    parse_of(hp)->done = true;
    return 1; /* the body, if any, is the proxy's to pass on as it is */
}

/* Hop-by-hop headers (RFC 9110 7.6.1) and the proxy's own: never sent upstream. */
static bool hop_by_hop(const struct header *h)
{
    static const char *const names[] = {"connection",
                                        "proxy-connection",
                                        "keep-alive",
                                        "proxy-authorization",
                                        "proxy-authenticate",
                                        "te",
                                        "trailer",
                                        "upgrade",
                                        "host"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (h->name_len == strlen(names[i]) && !strncasecmp(h->name, names[i], h->name_len))
            return true;
    return false;
}

static void set_host(struct vmm_proxy_head *ret, const char *host, size_t len)
{
    memcpy(ret->host_raw, host, len);
    ret->host_raw[len] = 0;
    ret->host_is_name = vmm_net_host_normalize(host, len, ret->host) == 0;
    if (!ret->host_is_name)
        ret->host[0] = 0;
}

int vmm_proxy_head_parse(const char *buf, size_t len, struct vmm_proxy_head *ret, const char **why)
{
    *ret = (struct vmm_proxy_head){0};
    size_t scan = len < VMM_PROXY_MAX_HEAD ? len : VMM_PROXY_MAX_HEAD;
    const char *end = memmem(buf, scan, "\r\n\r\n", 4);
    if (!end) {
        if (len < VMM_PROXY_MAX_HEAD)
            return 0;
        *why = "the request head is too long";
        return 431;
    }
    size_t head_len = (size_t)(end - buf) + 4;

    static const http_parser_settings settings = {
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
    };
    struct parse *p = wr_calloc(1, sizeof(*p));
    http_parser_init(&p->parser, HTTP_REQUEST);
    http_parser_execute(&p->parser, &settings, buf, head_len);
    int status = 0;
    if (p->too_many) {
        *why = "too many request headers";
        status = 431;
    } else if (!p->done || !p->url) {
        *why = "not an HTTP request";
        status = 400;
    }
    if (status) {
        free(p);
        return status;
    }

    bool connect = p->parser.method == HTTP_CONNECT;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(p->url, p->url_len, connect, &u) != 0 ||
        !(u.field_set & (1 << UF_HOST))) {
        *why =
            connect ? "CONNECT needs host:port" : "a proxy request needs an absolute http:// URL";
        free(p);
        return 400;
    }
    if (!connect) {
        const char *schema = p->url + u.field_data[UF_SCHEMA].off;
        if (!(u.field_set & (1 << UF_SCHEMA)) || u.field_data[UF_SCHEMA].len != 4 ||
            strncasecmp(schema, "http", 4)) {
            *why = "plain requests take http:// URLs; HTTPS goes through CONNECT";
            free(p);
            return 400;
        }
    }
    size_t host_len = u.field_data[UF_HOST].len;
    if (host_len > VMM_NET_MAX_HOST) {
        *why = "the host name is too long";
        free(p);
        return 414;
    }
    ret->connect = connect;
    ret->head_len = head_len;
    ret->port = (u.field_set & (1 << UF_PORT)) ? u.port : 80;
    set_host(ret, p->url + u.field_data[UF_HOST].off, host_len);

    if (!connect) {
        struct wr_buf b;
        wr_buf_init(&b, SIZE_MAX);
        const char *path = "/";
        size_t path_len = 1;
        if (u.field_set & (1 << UF_PATH)) {
            path = p->url + u.field_data[UF_PATH].off;
            /* The path runs to the end of the query, without the fragment. */
            size_t stop = (u.field_set & (1 << UF_QUERY))
                              ? u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len
                              : u.field_data[UF_PATH].off + u.field_data[UF_PATH].len;
            path_len = stop - u.field_data[UF_PATH].off;
        }
        wr_buf_printf(&b, "%s %.*s HTTP/1.1\r\nHost: %s", http_method_str(p->parser.method),
                      (int)path_len, path, ret->host_raw);
        if (ret->port != 80)
            wr_buf_printf(&b, ":%u", ret->port);
        wr_buf_printf(&b, "\r\n");
        for (size_t i = 0; i < p->n_headers; i++) {
            const struct header *h = &p->headers[i];
            if (hop_by_hop(h))
                continue;
            wr_buf_printf(&b, "%.*s: %.*s\r\n", (int)h->name_len, h->name, (int)h->value_len,
                          h->value ? h->value : "");
        }
        wr_buf_printf(&b, "Connection: close\r\n\r\n");
        ret->forward = wr_buf_steal(&b, &ret->forward_len);
    }
    free(p);
    return 1;
}

void vmm_proxy_head_clear(struct vmm_proxy_head *h)
{
    free(h->forward);
    h->forward = NULL;
}
