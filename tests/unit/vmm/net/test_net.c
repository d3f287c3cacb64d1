/* The egress proxy's parsers and checks: network policies, host names, the addresses no
 * sandbox reaches, proxy request heads, TLS ClientHello server names (hand-built and one
 * captured from a real `openssl s_client`), the hosts table. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "vmm/net/addr.h"
#include "vmm/net/head.h"
#include "vmm/net/policy.h"
#include "vmm/net/proxy.h"
#include "vmm/net/sni.h"

static struct vmm_net_policy policy_of(const char *json, int want_status)
{
    struct vmm_net_policy p;
    struct wr_error *err = NULL;
    int r = vmm_net_policy_parse(json, strlen(json), &p, &err);
    if (want_status) {
        ASSERT(r < 0);
        ASSERT_EQ(err->status, want_status);
        wr_error_free(err);
    } else {
        if (r < 0)
            fprintf(stderr, "%s: %s\n", json, err->msg);
        ASSERT_EQ(r, 0);
    }
    return p;
}

static void test_policy(void)
{
    struct vmm_net_policy p = policy_of("false", 0);
    ASSERT_EQ(p.mode, VMM_NET_NONE);
    ASSERT(!vmm_net_policy_allows(&p, "example.org"));
    p = policy_of("true", 0);
    ASSERT_EQ(p.mode, VMM_NET_NAT);
    ASSERT(!vmm_net_policy_allows(&p, "example.org")); /* NAT needs no proxy */

    p = policy_of("{\"allow\": [\"PyPI.org.\", \"*.pythonhosted.org\", \"deb.debian.org\", "
                  "\"*.example.com\"], \"deny\": [\"evil.example.com\"]}",
                  0);
    ASSERT_EQ(p.mode, VMM_NET_ALLOW);
    ASSERT(vmm_net_policy_allows(&p, "pypi.org"));
    ASSERT(vmm_net_policy_allows(&p, "files.pythonhosted.org"));
    ASSERT(vmm_net_policy_allows(&p, "a.b.pythonhosted.org"));
    ASSERT(!vmm_net_policy_allows(&p, "pythonhosted.org")); /* *.x is below x only */
    ASSERT(!vmm_net_policy_allows(&p, "evilpythonhosted.org"));
    ASSERT(!vmm_net_policy_allows(&p, "pypi.org.evil.net"));
    ASSERT(vmm_net_policy_allows(&p, "ok.example.com"));
    ASSERT(!vmm_net_policy_allows(&p, "evil.example.com")); /* deny wins */
    char *text = vmm_net_policy_to_text(&p);
    ASSERT_STREQ(text, "{\"allow\":[\"pypi.org\",\"*.pythonhosted.org\",\"deb.debian.org\",\"*."
                       "example.com\"],\"deny\":[\"evil.example.com\"]}");
    /* The stored text reads back as the same policy. */
    struct vmm_net_policy q = policy_of(text, 0);
    char *again = vmm_net_policy_to_text(&q);
    ASSERT_STREQ(again, text);
    free(text);
    free(again);
    vmm_net_policy_clear(&q);
    vmm_net_policy_clear(&p);

    p = policy_of("{\"allow\": [\"*\"], \"deny\": [\"*.internal.test\"]}", 0);
    ASSERT(vmm_net_policy_allows(&p, "anything.org"));
    ASSERT(!vmm_net_policy_allows(&p, "db.internal.test"));
    vmm_net_policy_clear(&p);
    p = policy_of("{\"allow\": []}", 0);
    ASSERT(!vmm_net_policy_allows(&p, "example.org"));
    vmm_net_policy_clear(&p);

    /* Refused: addresses, bad names, unknown keys, wrong types, no allow. */
    const char *bad[] = {
        "{\"allow\": [\"127.0.0.1\"]}",
        "{\"allow\": [\"[::1]\"]}",
        "{\"allow\": [\"0x7f000001\"]}",
        "{\"allow\": [\"127.1\"]}",
        "{\"allow\": [\"a..b\"]}",
        "{\"allow\": [\"-a.org\"]}",
        "{\"allow\": [\"a b.org\"]}",
        "{\"allow\": [\"*.*.org\"]}",
        "{\"allow\": [\"a*.org\"]}",
        "{\"allow\": [\"\"]}",
        "{\"allow\": [1]}",
        "{\"allow\": \"x.org\"}",
        "{\"allow\": [\"x.org\"], \"x\": 1}",
        "{\"deny\": [\"x.org\"]}",
        "\"x.org\"",
        "1",
        "null",
        "{\"allow\": [\"a.org:443\"]}",
        "{\"allow\": [\"*.\"]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        policy_of(bad[i], EINVAL);
    /* The cap on names. */
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    wr_buf_printf(&b, "{\"allow\": [");
    for (int i = 0; i <= VMM_NET_MAX_NAMES; i++)
        wr_buf_printf(&b, "%s\"h%d.org\"", i ? "," : "", i);
    wr_buf_printf(&b, "]}");
    char *big = wr_buf_steal(&b, NULL);
    policy_of(big, EINVAL);
    free(big);
}

static void test_host_normalize(void)
{
    char out[VMM_NET_MAX_HOST + 1];
    ASSERT_EQ(vmm_net_host_normalize("Deb.Debian.ORG.", 15, out), 0);
    ASSERT_STREQ(out, "deb.debian.org");
    ASSERT_EQ(vmm_net_host_normalize("localhost", 9, out), 0);
    ASSERT(vmm_net_host_normalize("1.2.3.4", 7, out) < 0);
    ASSERT(vmm_net_host_normalize("2130706433", 10, out) < 0);
    ASSERT(vmm_net_host_normalize("a.b-", 4, out) < 0);
    ASSERT(vmm_net_host_normalize("a\0b", 3, out) < 0);
    char label[70];
    memset(label, 'a', 64);
    memcpy(label + 64, ".org", 5);
    ASSERT(vmm_net_host_normalize(label, 68, out) < 0); /* a 64-byte label */
    ASSERT_EQ(vmm_net_host_normalize(label + 1, 67, out), 0);
}

static bool denied(const char *text, const char *const *host)
{
    struct sockaddr_storage ss = {0};
    if (strchr(text, ':')) {
        ss.ss_family = AF_INET6;
        ASSERT_EQ(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
    } else {
        ss.ss_family = AF_INET;
        ASSERT_EQ(inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr), 1);
    }
    return vmm_net_addr_denied((struct sockaddr *)&ss, host);
}

static void test_addresses(void)
{
    const char *const host[] = {"192.0.2.7", "2001:db8::7", "fe80::1%eth0", NULL};
    const char *no[] = {"127.0.0.1",
                        "127.255.0.1",
                        "10.1.2.3",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "169.254.169.254",
                        "100.64.0.1",
                        "0.0.0.0",
                        "224.0.0.1",
                        "255.255.255.255",
                        "192.0.2.7",
                        "::1",
                        "::",
                        "fc00::1",
                        "fd12::1",
                        "fe80::1",
                        "ff02::1",
                        "::ffff:127.0.0.1",
                        "64:ff9b::a00:1",
                        "2001:db8::7"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (!denied(no[i], host))
            fprintf(stderr, "%s\n", no[i]);
        ASSERT(denied(no[i], host));
    }
    const char *yes[] = {"203.0.113.10", "198.51.100.2", "172.32.0.1", "192.0.2.8",
                         "8.8.8.8",      "2001:db8::8",  "2a00::1"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ASSERT(!denied(yes[i], host));
    struct sockaddr sa = {.sa_family = AF_UNIX};
    ASSERT(vmm_net_addr_denied(&sa, host));
    struct wr_error *err = NULL;
    char **mine = vmm_net_host_addresses(&err);
    ASSERT(mine && mine[0]); /* at least loopback */
    wr_strv_free(mine);
}

static int head_of(const char *text, struct vmm_proxy_head *h)
{
    const char *why = NULL;
    int r = vmm_proxy_head_parse(text, strlen(text), h, &why);
    if (r > 1)
        ASSERT(why != NULL);
    return r;
}

static void test_head(void)
{
    struct vmm_proxy_head h;
    ASSERT_EQ(head_of("CONNECT Files.PythonHosted.org:443 HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03", &h),
              1);
    ASSERT(h.connect);
    ASSERT(h.host_is_name);
    ASSERT_STREQ(h.host, "files.pythonhosted.org");
    ASSERT_STREQ(h.host_raw, "Files.PythonHosted.org");
    ASSERT_EQ(h.port, 443);
    ASSERT_EQ(h.head_len, strlen("CONNECT Files.PythonHosted.org:443 HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT(h.forward == NULL);

    const char *get =
        "GET http://deb.debian.org/debian/dists/bookworm/InRelease?x=1#frag HTTP/1.1\r\n"
        "Host: elsewhere.org\r\nUser-Agent: apt\r\nProxy-Connection: keep-alive\r\n"
        "Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nAccept: */*\r\n\r\nBODY";
    ASSERT_EQ(head_of(get, &h), 1);
    ASSERT(!h.connect);
    ASSERT_STREQ(h.host, "deb.debian.org");
    ASSERT_EQ(h.port, 80);
    ASSERT_EQ(h.head_len, strlen(get) - 4);
    ASSERT_STREQ(h.forward,
                 "GET /debian/dists/bookworm/InRelease?x=1 HTTP/1.1\r\nHost: deb.debian.org\r\n"
                 "User-Agent: apt\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    vmm_proxy_head_clear(&h);

    ASSERT_EQ(head_of("POST http://a.test:8080 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", &h), 1);
    ASSERT_EQ(h.port, 8080);
    ASSERT_STREQ(
        h.forward,
        "POST / HTTP/1.1\r\nHost: a.test:8080\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
    vmm_proxy_head_clear(&h);

    /* Addresses parse, but are not names. */
    ASSERT_EQ(head_of("CONNECT 203.0.113.10:443 HTTP/1.1\r\n\r\n", &h), 1);
    ASSERT(!h.host_is_name);
    ASSERT_EQ(head_of("CONNECT [::1]:443 HTTP/1.1\r\n\r\n", &h), 1);
    ASSERT(!h.host_is_name);
    ASSERT_EQ(head_of("GET http://127.0.0.1/ HTTP/1.1\r\n\r\n", &h), 1);
    ASSERT(!h.host_is_name);
    vmm_proxy_head_clear(&h);

    /* Not yet whole; refused. */
    ASSERT_EQ(head_of("CONNECT a.org:443 HTTP/1.1\r\n", &h), 0);
    ASSERT_EQ(head_of("GET /local HTTP/1.1\r\nHost: a.org\r\n\r\n", &h), 400);
    ASSERT_EQ(head_of("GET https://a.org/ HTTP/1.1\r\n\r\n", &h), 400);
    ASSERT_EQ(head_of("CONNECT a.org HTTP/1.1\r\n\r\n", &h), 400);
    ASSERT_EQ(head_of("hello\r\n\r\n", &h), 400);
    ASSERT_EQ(head_of("GET http://a.org/ HTTP/1.1\r\nBad Header\r\n\r\n", &h), 400);
    char *long_head = wr_calloc(1, VMM_PROXY_MAX_HEAD + 10);
    memset(long_head, 'a', VMM_PROXY_MAX_HEAD + 5);
    ASSERT_EQ(head_of(long_head, &h), 431);
    free(long_head);
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    wr_buf_printf(&b, "GET http://a.org/ HTTP/1.1\r\n");
    for (int i = 0; i <= VMM_PROXY_MAX_HEADERS; i++)
        wr_buf_printf(&b, "X-%d: y\r\n", i);
    wr_buf_printf(&b, "\r\n");
    char *many = wr_buf_steal(&b, NULL);
    ASSERT_EQ(head_of(many, &h), 431);
    free(many);
}

/* A ClientHello record carrying the server_name extension with host (NULL: none). */
static size_t build_hello(uint8_t *out, const char *host, size_t split)
{
    uint8_t body[512];
    size_t n = 0;
    body[n++] = 3, body[n++] = 3;
    memset(body + n, 7, 32), n += 32;
    body[n++] = 0;                                                 /* session id */
    body[n++] = 0, body[n++] = 2, body[n++] = 0x13, body[n++] = 1; /* one suite */
    body[n++] = 1, body[n++] = 0;                                  /* null compression */
    size_t ext_len_at = n;
    n += 2;
    /* An unrelated extension first (supported_versions). */
    body[n++] = 0, body[n++] = 43, body[n++] = 0, body[n++] = 3, body[n++] = 2, body[n++] = 3,
    body[n++] = 4;
    if (host) {
        size_t hl = strlen(host);
        body[n++] = 0, body[n++] = 0;
        body[n++] = (uint8_t)((hl + 5) >> 8), body[n++] = (uint8_t)(hl + 5);
        body[n++] = (uint8_t)((hl + 3) >> 8), body[n++] = (uint8_t)(hl + 3);
        body[n++] = 0;
        body[n++] = (uint8_t)(hl >> 8), body[n++] = (uint8_t)hl;
        memcpy(body + n, host, hl), n += hl;
    }
    size_t ext_len = n - ext_len_at - 2;
    body[ext_len_at] = (uint8_t)(ext_len >> 8), body[ext_len_at + 1] = (uint8_t)ext_len;
    uint8_t msg[520];
    msg[0] = 1, msg[1] = 0, msg[2] = (uint8_t)(n >> 8), msg[3] = (uint8_t)n;
    memcpy(msg + 4, body, n);
    size_t mlen = n + 4, o = 0;
    /* In one record, or split into two at `split`. */
    size_t cuts[2] = {split && split < mlen ? split : mlen, mlen};
    for (size_t i = 0, from = 0; i < 2 && from < mlen; i++) {
        size_t len = cuts[i] - from;
        out[o++] = 22, out[o++] = 3, out[o++] = 1, out[o++] = (uint8_t)(len >> 8),
        out[o++] = (uint8_t)len;
        memcpy(out + o, msg + from, len), o += len;
        from = cuts[i];
    }
    return o;
}

/* A real client's first flight, from `openssl s_client` (skipped without openssl). */
static size_t capture_openssl(uint8_t *out, size_t cap, const char *servername)
{
    if (access("/usr/bin/openssl", X_OK) != 0)
        return 0;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT(bind(ls, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(ls, 1) == 0);
    socklen_t sl = sizeof(sin);
    getsockname(ls, (struct sockaddr *)&sin, &sl);
    pid_t pid = fork();
    if (pid == 0) {
        char target[64];
        snprintf(target, sizeof(target), "127.0.0.1:%d", ntohs(sin.sin_port));
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0), dup2(null, 1), dup2(null, 2);
        execl("/usr/bin/openssl", "openssl", "s_client", "-connect", target, "-servername",
              servername, (char *)NULL);
        _exit(127);
    }
    int s = accept(ls, NULL, NULL);
    size_t n = 0;
    char name[300];
    while (n < cap) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        if (poll(&p, 1, 10000) != 1)
            break;
        ssize_t r = read(s, out + n, cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (vmm_sni_read(out, n, name, sizeof(name)) != VMM_SNI_MORE)
            break;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(s);
    close(ls);
    return n;
}

static void test_sni(void)
{
    uint8_t buf[2048];
    char name[300];
    size_t n = build_hello(buf, "files.pythonhosted.org", 0);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(vmm_sni_read(buf, i, name, sizeof(name)), VMM_SNI_MORE);
    ASSERT_EQ(vmm_sni_read(buf, n, name, sizeof(name)), VMM_SNI_FOUND);
    ASSERT_STREQ(name, "files.pythonhosted.org");
    /* Split across two records. */
    n = build_hello(buf, "a.example.org", 40);
    ASSERT_EQ(vmm_sni_read(buf, n - 1, name, sizeof(name)), VMM_SNI_MORE);
    ASSERT_EQ(vmm_sni_read(buf, n, name, sizeof(name)), VMM_SNI_FOUND);
    ASSERT_STREQ(name, "a.example.org");
    n = build_hello(buf, NULL, 0);
    ASSERT_EQ(vmm_sni_read(buf, n, name, sizeof(name)), VMM_SNI_NONE);
    /* A name longer than the room for it. */
    n = build_hello(buf, "abcdefghij.org", 0);
    ASSERT_EQ(vmm_sni_read(buf, n, name, 8), VMM_SNI_MALFORMED);
    /* Not TLS at all; a handshake that is not a ClientHello; a broken length. */
    ASSERT_EQ(vmm_sni_read((const uint8_t *)"GET / HTTP/1.1\r\n", 16, name, sizeof(name)),
              VMM_SNI_NOT_TLS);
    ASSERT_EQ(vmm_sni_read((const uint8_t *)"G", 1, name, sizeof(name)), VMM_SNI_NOT_TLS);
    n = build_hello(buf, "x.org", 0);
    buf[5] = 2;
    ASSERT_EQ(vmm_sni_read(buf, n, name, sizeof(name)), VMM_SNI_NOT_TLS);
    n = build_hello(buf, "x.org", 0);
    buf[5 + 4 + 34] = 33; /* session id longer than 32 */
    ASSERT_EQ(vmm_sni_read(buf, n, name, sizeof(name)), VMM_SNI_MALFORMED);
    /* Records that never end a ClientHello stop at the cap. */
    uint8_t *big = wr_calloc(1, VMM_SNI_MAX_HELLO + 64);
    big[0] = 22, big[1] = 3, big[2] = 1, big[3] = 0x40, big[4] = 0;
    big[5] = 1, big[6] = 0x01, big[7] = 0, big[8] = 0; /* a 64 KiB message */
    ASSERT_EQ(vmm_sni_read(big, VMM_SNI_MAX_HELLO + 64, name, sizeof(name)), VMM_SNI_TOO_BIG);
    free(big);

    uint8_t real[16384];
    size_t rn = capture_openssl(real, sizeof(real), "Forged.Example.ORG");
    if (rn) {
        ASSERT_EQ(vmm_sni_read(real, rn, name, sizeof(name)), VMM_SNI_FOUND);
        ASSERT_STREQ(name, "Forged.Example.ORG");
    } else
        fprintf(stderr, "   (no openssl: the captured ClientHello is not checked)\n");
}

static void test_hosts(void)
{
    const char *text =
        "# test internet\n203.0.113.10 allowed.test Other.Test. # comment\n"
        "\n  198.51.100.2\tsecond.test\n127.0.0.1 loop.test\n2001:db8::1 allowed.test\n";
    struct vmm_egress_hosts *h = NULL;
    struct wr_error *err = NULL;
    ASSERT_EQ(vmm_egress_hosts_parse(text, strlen(text), &h, &err), 0);
    const struct sockaddr_storage *a;
    ASSERT_EQ(vmm_egress_hosts_lookup(h, "allowed.test", &a), 2);
    ASSERT_EQ(a[0].ss_family, AF_INET);
    ASSERT_EQ(a[1].ss_family, AF_INET6);
    ASSERT_EQ(vmm_egress_hosts_lookup(h, "other.test", &a), 1);
    ASSERT_EQ(vmm_egress_hosts_lookup(h, "second.test", &a), 1);
    ASSERT_EQ(vmm_egress_hosts_lookup(h, "nothere.test", &a), 0);
    vmm_egress_hosts_free(h);
    const char *bad[] = {"notanaddress x.test\n", "203.0.113.1\n", "203.0.113.1 1.2.3.4\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT(vmm_egress_hosts_parse(bad[i], strlen(bad[i]), &h, &err) < 0);
        ASSERT(strstr(err->msg, "line 1"));
        wr_error_free(err);
        err = NULL;
    }
}

int main(void)
{
    RUN(test_policy);
    RUN(test_host_normalize);
    RUN(test_addresses);
    RUN(test_head);
    RUN(test_sni);
    RUN(test_hosts);
    return 0;
}
