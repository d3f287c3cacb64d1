/* The egress proxy (see proxy.h). One connection goes through these states:
 *
 *   HEAD       reading the request head (head.h), at most VMM_PROXY_MAX_HEAD bytes
 *   RESOLVING  the host checked against the policy; its addresses being looked up
 *   CONNECTING to the first address that a sandbox may reach
 *   HELLO      CONNECT only: "200" sent, reading the ClientHello until its SNI is known
 *   TUNNEL     bytes both ways, each direction paused while the other side's writes
 *              hold more than TUNNEL_HIGH_WATER bytes
 *
 * The client is not read between HEAD and HELLO/TUNNEL; what it sent past the head waits
 * in `in` and goes upstream first. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "head.h"
#include "proxy.h"
#include "sni.h"

#define HEAD_TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 15000
#define IDLE_TIMEOUT_MS (15 * 60 * 1000)
#define TUNNEL_HIGH_WATER (1u << 20)
#define MAX_ADDRESSES 8

/* ---- the hosts table -------------------------------------------------------------------- */

struct hosts_entry {
    char *name;
    struct sockaddr_storage addrs[MAX_ADDRESSES];
    size_t n;
};
struct vmm_egress_hosts {
    struct hosts_entry *v;
    size_t n;
};

void vmm_egress_hosts_free(struct vmm_egress_hosts *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].name);
    free(h->v);
    free(h);
}

static bool parse_address(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

static void hosts_add(struct vmm_egress_hosts *h, const char *name,
                      const struct sockaddr_storage *ss)
{
    for (size_t i = 0; i < h->n; i++)
        if (!strcmp(h->v[i].name, name)) {
            if (h->v[i].n < MAX_ADDRESSES)
                h->v[i].addrs[h->v[i].n++] = *ss;
            return;
        }
    h->v = wr_realloc(h->v, (h->n + 1) * sizeof(*h->v));
    h->v[h->n] = (struct hosts_entry){.name = wr_strdup(name), .n = 1};
    h->v[h->n++].addrs[0] = *ss;
}

int vmm_egress_hosts_parse(const char *text, size_t len, struct vmm_egress_hosts **ret,
                           struct wr_error **err)
{
    if (len > VMM_EGRESS_HOSTS_MAX_BYTES)
        return wr_error_set(err, EFBIG, "the hosts table is larger than %u bytes",
                            VMM_EGRESS_HOSTS_MAX_BYTES);
    struct vmm_egress_hosts *h = wr_calloc(1, sizeof(*h));
    size_t line_no = 0;
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - text) : len;
        _cleanup_free_ char *line = wr_strndup(text + off, end - off);
        off = end + 1;
        line_no++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *save = NULL, *addr = strtok_r(line, " \t\r", &save);
        if (!addr)
            continue;
        struct sockaddr_storage ss;
        if (!parse_address(addr, &ss)) {
            vmm_egress_hosts_free(h);
            return wr_error_set(err, EINVAL, "hosts table line %zu: '%.60s' is not an address",
                                line_no, addr);
        }
        size_t names = 0;
        for (char *name; (name = strtok_r(NULL, " \t\r", &save));) {
            char norm[VMM_NET_MAX_HOST + 1];
            if (vmm_net_host_normalize(name, strlen(name), norm) < 0) {
                vmm_egress_hosts_free(h);
                return wr_error_set(err, EINVAL, "hosts table line %zu: '%.60s' is not a host name",
                                    line_no, name);
            }
            hosts_add(h, norm, &ss);
            names++;
        }
        if (names == 0) {
            vmm_egress_hosts_free(h);
            return wr_error_set(err, EINVAL, "hosts table line %zu: an address without a name",
                                line_no);
        }
    }
    *ret = h;
    return 0;
}

int vmm_egress_hosts_load(const char *path, struct vmm_egress_hosts **ret, struct wr_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = wr_read_file(path, VMM_EGRESS_HOSTS_MAX_BYTES, &text, &len);
    if (r < 0)
        return wr_error_set_errno(err, -r, "reading the egress hosts table %s", path);
    if (vmm_egress_hosts_parse(text, len, ret, err) < 0)
        return wr_error_wrap(err, "%s", path);
    return 0;
}

size_t vmm_egress_hosts_lookup(const struct vmm_egress_hosts *h, const char *name,
                               const struct sockaddr_storage **ret)
{
    for (size_t i = 0; h && i < h->n; i++)
        if (!strcmp(h->v[i].name, name)) {
            *ret = h->v[i].addrs;
            return h->v[i].n;
        }
    return 0;
}

/* ---- connections ------------------------------------------------------------------------- */

enum conn_state { HEAD, RESOLVING, CONNECTING, HELLO, TUNNEL, REFUSED, CLOSING };

struct conn {
    struct vmm_egress *eg;
    struct conn *prev, *next;
    enum conn_state state;
    uv_tcp_t client, upstream;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    bool upstream_init, resolving;
    int refs;         /* open handles and the lookup in flight */
    struct wr_buf in; /* client bytes not yet sent upstream */
    struct vmm_proxy_head head;
    char address[INET6_ADDRSTRLEN];
    struct sockaddr_storage addrs[MAX_ADDRESSES];
    size_t n_addrs;
    uint64_t up, down, started_ms;
    size_t up_pending, down_pending; /* bytes in writes not yet done */
    bool client_eof, upstream_eof;
    bool reported;
};

struct vmm_egress {
    uv_loop_t *loop;
    uv_tcp_t *listener;
    struct vmm_net_policy policy;
    const struct vmm_egress_hosts *hosts;
    vmm_egress_event_cb cb;
    void *data;
    struct conn *conns;
    size_t n_conns;
};

struct write_req {
    uv_write_t req;
    struct conn *c;
    bool to_upstream;
    size_t len;
    char data[];
};

static void conn_close(struct conn *c, const char *reason);
static void tunnel_read_start(struct conn *c);
static void idle_timeout(uv_timer_t *t);

static void report(struct conn *c, bool allowed, const char *reason)
{
    if (c->reported)
        return;
    c->reported = true;
    struct vmm_egress_event ev = {
        .kind = c->head.connect ? "connect" : "http",
        .host = c->head.host_raw,
        .port = c->head.port,
        .address = c->address[0] ? c->address : NULL,
        .allowed = allowed,
        .reason = reason,
        .bytes_up = c->up,
        .bytes_down = c->down,
        .duration_ms = uv_now(c->eg->loop) - c->started_ms,
    };
    if (c->eg->cb)
        c->eg->cb(c->eg->data, &ev);
}

static void conn_unref(struct conn *c)
{
    if (--c->refs > 0)
        return;
    wr_buf_free(&c->in);
    vmm_proxy_head_clear(&c->head);
    free(c);
}

static void handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void close_handle(struct conn *c, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        h->data = c;
        uv_close(h, handle_closed);
    }
}

/* Ends the connection: reason NULL for one that ran its course. A pending lookup or
 * connect finishes (libuv owns it) and finds the connection CLOSING. */
static void conn_close(struct conn *c, const char *reason)
{
    if (c->state == CLOSING)
        return;
    bool reached = c->state == TUNNEL;
    c->state = CLOSING;
    report(c, reached, reason);
    struct vmm_egress *eg = c->eg;
    if (c->prev)
        c->prev->next = c->next;
    else
        eg->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    eg->n_conns--;
    c->eg = NULL;
    close_handle(c, (uv_handle_t *)&c->client);
    close_handle(c, (uv_handle_t *)&c->timer);
    if (c->upstream_init)
        close_handle(c, (uv_handle_t *)&c->upstream);
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai);
}

static void write_done(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->c;
    size_t *pending = w->to_upstream ? &c->up_pending : &c->down_pending;
    *pending -= w->len;
    free(w);
    if (c->state == CLOSING || c->state == REFUSED)
        return;
    if (status < 0) {
        conn_close(c, NULL);
        return;
    }
    if (c->state == TUNNEL && *pending < TUNNEL_HIGH_WATER / 2)
        tunnel_read_start(c);
}

static int send_to(struct conn *c, bool to_upstream, const void *data, size_t len)
{
    struct write_req *w = wr_malloc(sizeof(*w) + len);
    w->c = c;
    w->to_upstream = to_upstream;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    uv_stream_t *s = (uv_stream_t *)(to_upstream ? &c->upstream : &c->client);
    int r = uv_write(&w->req, s, &buf, 1, write_done);
    if (r < 0) {
        free(w);
        return r;
    }
    *(to_upstream ? &c->up_pending : &c->down_pending) += len;
    return 0;
}

/* The client is told why (an HTTP error) and the connection ends when that is written. */
static void shutdown_done(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (c->eg)
        conn_close(c, NULL);
}

static void refuse(struct conn *c, int status, const char *why)
{
    if (c->state == REFUSED || c->state == CLOSING)
        return;
    report(c, false, why);
    const char *text = status == 403   ? "Forbidden"
                       : status == 502 ? "Bad Gateway"
                       : status == 504 ? "Gateway Timeout"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 414 ? "URI Too Long"
                       : status == 503 ? "Service Unavailable"
                                       : "Bad Request";
    _cleanup_free_ char *body = wr_asprintf("warren egress proxy: %s\n", why);
    _cleanup_free_ char *msg = wr_asprintf(
        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: "
        "close\r\n\r\n%s",
        status, text, strlen(body), body);
    uv_read_stop((uv_stream_t *)&c->client);
    c->state = REFUSED;
    /* A client that does not read its answer is not waited for long. */
    c->timer.data = c;
    uv_timer_start(&c->timer, idle_timeout, 5000, 0);
    if (send_to(c, false, msg, strlen(msg)) < 0) {
        conn_close(c, why);
        return;
    }
    uv_shutdown_t *sd = wr_calloc(1, sizeof(*sd));
    sd->data = c;
    if (uv_shutdown(sd, (uv_stream_t *)&c->client, shutdown_done) < 0) {
        free(sd);
        conn_close(c, why);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = wr_malloc(64 * 1024);
    buf->len = 64 * 1024;
}

static void idle_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    switch (c->state) {
    case HEAD:
        refuse(c, 400, "no complete request head within 30 s");
        break;
    case CONNECTING:
    case RESOLVING:
        refuse(c, 504, "the server did not answer in time");
        break;
    case HELLO:
        conn_close(c, "no TLS ClientHello within 30 s");
        break;
    case REFUSED:
        conn_close(c, NULL);
        break;
    default:
        conn_close(c, "idle for 15 minutes");
    }
}

static void arm_timer(struct conn *c, uint64_t ms)
{
    c->timer.data = c;
    uv_timer_start(&c->timer, idle_timeout, ms, 0);
}

/* ---- tunnel ----------------------------------------------------------------------------- */

static void half_closed(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static void tunnel_eof(struct conn *c, bool from_upstream)
{
    *(from_upstream ? &c->upstream_eof : &c->client_eof) = true;
    if (c->upstream_eof && c->client_eof) {
        conn_close(c, NULL);
        return;
    }
    uv_shutdown_t *sd = wr_calloc(1, sizeof(*sd));
    /* The other side learns of the end once what is queued for it is written. */
    if (uv_shutdown(sd, (uv_stream_t *)(from_upstream ? &c->client : &c->upstream), half_closed) <
        0)
        free(sd);
}

static void tunnel_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    bool from_upstream = s == (uv_stream_t *)&c->upstream;
    if (n > 0 && c->state == TUNNEL) {
        *(from_upstream ? &c->down : &c->up) += (uint64_t)n;
        if (send_to(c, !from_upstream, buf->base, (size_t)n) < 0)
            conn_close(c, NULL);
        else {
            arm_timer(c, IDLE_TIMEOUT_MS);
            if ((from_upstream ? c->down_pending : c->up_pending) >= TUNNEL_HIGH_WATER)
                uv_read_stop(s);
        }
    } else if (n == UV_EOF && c->state == TUNNEL) {
        uv_read_stop(s);
        tunnel_eof(c, from_upstream);
    } else if (n < 0 && c->state != CLOSING)
        conn_close(c, NULL);
    free(buf->base);
}

static void tunnel_read_start(struct conn *c)
{
    if (!c->client_eof && c->up_pending < TUNNEL_HIGH_WATER)
        uv_read_start((uv_stream_t *)&c->client, alloc_cb, tunnel_read);
    if (!c->upstream_eof && c->down_pending < TUNNEL_HIGH_WATER)
        uv_read_start((uv_stream_t *)&c->upstream, alloc_cb, tunnel_read);
}

static void start_tunnel(struct conn *c)
{
    c->state = TUNNEL;
    arm_timer(c, IDLE_TIMEOUT_MS);
    if (c->head.forward && send_to(c, true, c->head.forward, c->head.forward_len) < 0) {
        conn_close(c, NULL);
        return;
    }
    if (c->in.len > 0) {
        c->up += c->in.len;
        if (send_to(c, true, c->in.data, c->in.len) < 0) {
            conn_close(c, NULL);
            return;
        }
        wr_buf_reset(&c->in);
    }
    c->client.data = c;
    c->upstream.data = c;
    tunnel_read_start(c);
}

/* ---- HELLO: the ClientHello's name must be the CONNECT host ------------------------------ */

static void check_hello(struct conn *c)
{
    char name[VMM_NET_MAX_HOST + 2];
    enum vmm_sni_result r =
        vmm_sni_read((const uint8_t *)c->in.data, c->in.len, name, sizeof(name));
    if (r == VMM_SNI_MORE)
        return;
    uv_read_stop((uv_stream_t *)&c->client);
    char norm[VMM_NET_MAX_HOST + 1];
    if (r != VMM_SNI_FOUND) {
        conn_close(c, r == VMM_SNI_NONE ? "the TLS ClientHello names no server (SNI)"
                                        : "the tunnel does not start with a TLS ClientHello");
        return;
    }
    if (vmm_net_host_normalize(name, strlen(name), norm) < 0 || strcmp(norm, c->head.host)) {
        conn_close(c, "the TLS server name (SNI) is not the CONNECT host");
        return;
    }
    start_tunnel(c);
}

static void hello_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (n > 0 && c->state == HELLO) {
        if (wr_buf_append(&c->in, buf->base, (size_t)n) < 0)
            conn_close(c, "the TLS ClientHello is too long");
        else
            check_hello(c);
    } else if (n < 0 && c->state == HELLO)
        conn_close(c, "the client left before its TLS ClientHello");
    free(buf->base);
}

/* ---- CONNECTING ----------------------------------------------------------------------------- */

static void connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->state != CONNECTING)
        return;
    if (status < 0) {
        _cleanup_free_ char *why = wr_asprintf("connecting to %s (%s): %s", c->head.host_raw,
                                               c->address, uv_strerror(status));
        refuse(c, 502, why);
        return;
    }
    if (!c->head.connect) {
        start_tunnel(c);
        return;
    }
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (send_to(c, false, ok, sizeof(ok) - 1) < 0) {
        conn_close(c, NULL);
        return;
    }
    c->state = HELLO;
    arm_timer(c, HEAD_TIMEOUT_MS);
    uv_read_start((uv_stream_t *)&c->client, alloc_cb, hello_read);
    /* Bytes the client sent after the head already (an eager ClientHello). */
    if (c->in.len > 0)
        check_hello(c);
}

/* To the first address: IPv4 ones come first (the host's IPv6 may have no route). */
static void try_connect(struct conn *c)
{
    struct sockaddr_storage *ss = &c->addrs[0];
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(c->head.port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(c->head.port);
    const void *raw = ss->ss_family == AF_INET
                          ? (const void *)&((struct sockaddr_in *)ss)->sin_addr
                          : (const void *)&((struct sockaddr_in6 *)ss)->sin6_addr;
    inet_ntop(ss->ss_family, raw, c->address, sizeof(c->address));
    uv_tcp_init(c->eg->loop, &c->upstream);
    c->upstream.data = c;
    c->upstream_init = true;
    c->refs++;
    c->state = CONNECTING;
    c->connect.data = c;
    int r = uv_tcp_connect(&c->connect, &c->upstream, (const struct sockaddr *)ss, connected);
    if (r < 0) {
        _cleanup_free_ char *why = wr_asprintf("connecting to %s: %s", c->address, uv_strerror(r));
        refuse(c, 502, why);
    }
}

/* ---- RESOLVING ------------------------------------------------------------------------------ */

/* Keeps the addresses a sandbox may reach; refuses when none is left. */
static void use_addresses(struct conn *c, const struct sockaddr_storage *addrs, size_t n)
{
    struct wr_error *err = NULL;
    _cleanup_strv_ char **host = vmm_net_host_addresses(&err);
    wr_error_free(err);
    char denied[INET6_ADDRSTRLEN] = "";
    c->n_addrs = 0;
    for (size_t k = 0; k < 2 * n && c->n_addrs < MAX_ADDRESSES; k++) {
        size_t i = k % n;
        const struct sockaddr *sa = (const struct sockaddr *)&addrs[i];
        if ((k < n) != (sa->sa_family == AF_INET))
            continue;
        /* Without the host's addresses every address counts as the host's. */
        if (!host || vmm_net_addr_denied(sa, (const char *const *)host)) {
            const void *raw = sa->sa_family == AF_INET
                                  ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                                  : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
            if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
                inet_ntop(sa->sa_family, raw, denied, sizeof(denied));
            continue;
        }
        c->addrs[c->n_addrs++] = addrs[i];
    }
    if (c->n_addrs == 0) {
        _cleanup_free_ char *why =
            denied[0] ? wr_asprintf("%s resolves only to addresses no sandbox may reach (%s)",
                                    c->head.host, denied)
                      : wr_asprintf("%s has no address", c->head.host);
        refuse(c, 403, why);
        return;
    }
    try_connect(c);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct conn *c = req->data;
    c->resolving = false;
    if (c->state != RESOLVING) {
        uv_freeaddrinfo(res);
        conn_unref(c);
        return;
    }
    c->refs--; /* the handles hold the others */
    if (status < 0) {
        _cleanup_free_ char *why =
            wr_asprintf("resolving %s: %s", c->head.host, uv_strerror(status));
        uv_freeaddrinfo(res);
        refuse(c, 502, why);
        return;
    }
    struct sockaddr_storage addrs[MAX_ADDRESSES];
    size_t n = 0;
    for (struct addrinfo *a = res; a && n < MAX_ADDRESSES; a = a->ai_next)
        if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
            a->ai_addrlen <= sizeof(addrs[0])) {
            memset(&addrs[n], 0, sizeof(addrs[n]));
            memcpy(&addrs[n++], a->ai_addr, a->ai_addrlen);
        }
    uv_freeaddrinfo(res);
    use_addresses(c, addrs, n);
}

/* ---- HEAD -------------------------------------------------------------------------------- */

static void got_head(struct conn *c)
{
    uv_read_stop((uv_stream_t *)&c->client);
    const struct vmm_proxy_head *h = &c->head;
    if (h->connect ? h->port != 443 : h->port != 80) {
        refuse(c, 403,
               h->connect ? "CONNECT is served to port 443 only"
                          : "plain HTTP is served to port 80 only");
        return;
    }
    if (!h->host_is_name) {
        refuse(c, 403, "addresses are refused: the allow-list names hosts");
        return;
    }
    if (!vmm_net_policy_allows(&c->eg->policy, h->host)) {
        _cleanup_free_ char *why = wr_asprintf("%s is not on the sandbox's allow-list", h->host);
        refuse(c, 403, why);
        return;
    }
    /* What the client sent past the head: a request body, or an eager ClientHello. */
    wr_buf_consume(&c->in, h->head_len);
    c->state = RESOLVING;
    arm_timer(c, CONNECT_TIMEOUT_MS);
    const struct sockaddr_storage *table;
    size_t n = vmm_egress_hosts_lookup(c->eg->hosts, h->host, &table);
    if (n > 0) {
        use_addresses(c, table, n);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->gai.data = c;
    int r = uv_getaddrinfo(c->eg->loop, &c->gai, resolved, h->host, NULL, &hints);
    if (r < 0) {
        _cleanup_free_ char *why = wr_asprintf("resolving %s: %s", h->host, uv_strerror(r));
        refuse(c, 502, why);
        return;
    }
    c->resolving = true;
    c->refs++;
}

static void head_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (c->state != HEAD) {
        free(buf->base);
        return;
    }
    if (n < 0) {
        free(buf->base);
        conn_close(c, c->in.len ? "the client left before its request head ended" : NULL);
        return;
    }
    if (n > 0 && wr_buf_append(&c->in, buf->base, (size_t)n) < 0) {
        free(buf->base);
        refuse(c, 431, "the request head is too long");
        return;
    }
    free(buf->base);
    const char *why = NULL;
    int r = vmm_proxy_head_parse(c->in.data, c->in.len, &c->head, &why);
    if (r == 0)
        return;
    if (r != 1) {
        refuse(c, r, why);
        return;
    }
    got_head(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct vmm_egress *eg = server->data;
    if (status < 0)
        return;
    struct conn *c = wr_calloc(1, sizeof(*c));
    uv_tcp_init(eg->loop, &c->client);
    uv_timer_init(eg->loop, &c->timer);
    c->refs = 2;
    c->client.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->client) < 0 || eg->n_conns >= VMM_EGRESS_MAX_CONNS) {
        close_handle(c, (uv_handle_t *)&c->client);
        close_handle(c, (uv_handle_t *)&c->timer);
        return;
    }
    c->eg = eg;
    c->started_ms = uv_now(eg->loop);
    /* Room for a head and an eager ClientHello behind it. */
    wr_buf_init(&c->in, VMM_PROXY_MAX_HEAD + VMM_SNI_MAX_HELLO);
    c->next = eg->conns;
    if (eg->conns)
        eg->conns->prev = c;
    eg->conns = c;
    eg->n_conns++;
    arm_timer(c, HEAD_TIMEOUT_MS);
    uv_read_start((uv_stream_t *)&c->client, alloc_cb, head_read);
}

/* ---- the listener --------------------------------------------------------------------------- */

struct ns_listen {
    int ns_fd;
    int fd;
    int error;
    const char *step;
};

/* A thread of its own joins the namespace (setns changes only the calling thread) and
 * makes the socket there; the socket keeps that namespace once the thread is gone. */
static void *listen_in_ns(void *arg)
{
    struct ns_listen *l = arg;
    l->fd = -1;
    if (setns(l->ns_fd, CLONE_NEWNET) < 0) {
        l->error = errno, l->step = "joining the sandbox's network namespace";
        return NULL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        l->error = errno, l->step = "creating the proxy's socket";
        return NULL;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(VMM_EGRESS_PORT)};
    inet_pton(AF_INET, VMM_EGRESS_ADDR, &sin.sin_addr);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 128) < 0) {
        l->error = errno, l->step = "listening on " VMM_EGRESS_ADDR ":3128 in the sandbox";
        close(fd);
        return NULL;
    }
    l->fd = fd;
    return NULL;
}

int vmm_egress_open(uv_loop_t *loop, pid_t netns_pid, const struct vmm_net_policy *policy,
                    const struct vmm_egress_hosts *hosts, vmm_egress_event_cb cb, void *data,
                    struct vmm_egress **ret, struct wr_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)netns_pid);
    struct ns_listen l = {.ns_fd = open(path, O_RDONLY | O_CLOEXEC)};
    if (l.ns_fd < 0)
        return wr_error_set_errno(err, errno, "opening %s", path);
    pthread_t t;
    int r = pthread_create(&t, NULL, listen_in_ns, &l);
    if (r != 0) {
        close(l.ns_fd);
        return wr_error_set_errno(err, r, "starting a thread");
    }
    pthread_join(t, NULL);
    close(l.ns_fd);
    if (l.fd < 0)
        return wr_error_set_errno(err, l.error, "egress proxy: %s", l.step);
    struct vmm_egress *eg = wr_calloc(1, sizeof(*eg));
    eg->loop = loop;
    eg->hosts = hosts;
    eg->cb = cb;
    eg->data = data;
    vmm_net_policy_copy(&eg->policy, policy);
    eg->listener = wr_calloc(1, sizeof(*eg->listener));
    uv_tcp_init(loop, eg->listener);
    eg->listener->data = eg;
    if ((r = uv_tcp_open(eg->listener, l.fd)) < 0)
        close(l.fd);
    if (r < 0 || (r = uv_listen((uv_stream_t *)eg->listener, 128, on_connection)) < 0) {
        uv_close((uv_handle_t *)eg->listener, (uv_close_cb)free);
        vmm_net_policy_clear(&eg->policy);
        free(eg);
        return wr_error_set(err, EIO, "egress proxy: %s", uv_strerror(r));
    }
    *ret = eg;
    return 0;
}

void vmm_egress_set_policy(struct vmm_egress *eg, const struct vmm_net_policy *policy)
{
    vmm_net_policy_clear(&eg->policy);
    vmm_net_policy_copy(&eg->policy, policy);
    for (struct conn *c = eg->conns, *next; c; c = next) {
        next = c->next;
        if (c->state != HEAD && c->state != REFUSED &&
            !vmm_net_policy_allows(&eg->policy, c->head.host))
            conn_close(c, "cut: the sandbox's network policy no longer allows this host");
    }
}

void vmm_egress_close(struct vmm_egress *eg)
{
    while (eg->conns)
        conn_close(eg->conns, "cut: the sandbox's egress proxy closed");
    uv_close((uv_handle_t *)eg->listener, (uv_close_cb)free);
    vmm_net_policy_clear(&eg->policy);
    free(eg);
}

size_t vmm_egress_connections(const struct vmm_egress *eg)
{
    return eg->n_conns;
}
