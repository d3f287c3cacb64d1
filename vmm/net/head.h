/* The egress proxy's side of a sandbox's request: the head of an HTTP proxy request,
 * read with http-parser. Two forms are served:
 *
 *   CONNECT host:port HTTP/1.1          a tunnel (HTTPS)
 *   GET http://host[:port]/path HTTP/1.1   plain HTTP, absolute-form
 *
 * For plain HTTP the proxy sends the origin server a head of its own making: origin-form
 * request line, Host from the URL, the client's end-to-end headers, "Connection: close"
 * (one request per upstream connection, so every request's host is checked). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define VMM_PROXY_MAX_HEAD (16u * 1024u)
#define VMM_PROXY_MAX_HEADERS 100

struct vmm_proxy_head {
    bool connect;
    /* The host as the client wrote it (at most VMM_NET_MAX_HOST bytes), and normalized
     * when it is a DNS name (host_is_name); an address or anything else is not a name. */
    char host_raw[VMM_NET_MAX_HOST + 1];
    char host[VMM_NET_MAX_HOST + 1];
    bool host_is_name;
    uint16_t port;
    size_t head_len; /* bytes of the input the head took; what follows is body or tunnel */
    char *forward;   /* plain HTTP: the head for the origin server (the caller frees) */
    size_t forward_len;
};

/* 1 with *ret filled once buf holds a whole head, 0 while it may still come, or an HTTP
 * status (400, 405, 414, 431) with *why naming the problem (a static string). */
int vmm_proxy_head_parse(const char *buf, size_t len, struct vmm_proxy_head *ret, const char **why);
void vmm_proxy_head_clear(struct vmm_proxy_head *h);
