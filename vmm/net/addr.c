/* The addresses no sandbox reaches (see addr.h). */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

const char *const vmm_net_denied4[] = {
    "0.0.0.0/8",     "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8",   "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "192.0.0.0/24",  "198.18.0.0/15", "224.0.0.0/3",
};
const size_t vmm_net_denied4_n = WR_ARRAY_SIZE(vmm_net_denied4);
const char *const vmm_net_denied6[] = {
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8",
};
const size_t vmm_net_denied6_n = WR_ARRAY_SIZE(vmm_net_denied6);

char **vmm_net_host_addresses(struct wr_error **err)
{
    struct ifaddrs *list;
    if (getifaddrs(&list) < 0) {
        wr_error_set_errno(err, errno, "listing the host's addresses");
        return NULL;
    }
    size_t n = 0;
    char **addrs = wr_calloc(1, sizeof(char *));
    for (struct ifaddrs *a = list; a; a = a->ifa_next) {
        if (!a->ifa_addr ||
            (a->ifa_addr->sa_family != AF_INET && a->ifa_addr->sa_family != AF_INET6))
            continue;
        char text[INET6_ADDRSTRLEN];
        const void *raw = a->ifa_addr->sa_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)a->ifa_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr;
        if (inet_ntop(a->ifa_addr->sa_family, raw, text, sizeof(text)))
            wr_strv_push(&addrs, &n, wr_strdup(text));
    }
    freeifaddrs(list);
    return addrs;
}

/* True when the first bits of a and b (len bytes each) agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    for (unsigned i = 0; bits > 0; i++) {
        unsigned take = bits < 8 ? bits : 8;
        uint8_t mask = (uint8_t)(0xff << (8 - take));
        if ((a[i] & mask) != (b[i] & mask))
            return false;
        bits -= take;
    }
    return true;
}

/* addr (family's raw bytes) within "net/len"? */
static bool in_range(int family, const uint8_t *addr, const char *cidr)
{
    char net[INET6_ADDRSTRLEN];
    const char *slash = strchr(cidr, '/');
    size_t n = slash ? (size_t)(slash - cidr) : strlen(cidr);
    if (n >= sizeof(net))
        return false;
    memcpy(net, cidr, n);
    net[n] = 0;
    uint8_t raw[16];
    if (inet_pton(family, net, raw) != 1)
        return false;
    unsigned max = family == AF_INET ? 32 : 128;
    unsigned bits = slash ? (unsigned)strtoul(slash + 1, NULL, 10) : max;
    return prefix_equal(addr, raw, bits < max ? bits : max);
}

bool vmm_net_addr_denied(const struct sockaddr *sa, const char *const *host_addrs)
{
    int family = sa->sa_family;
    const uint8_t *addr;
    const char *const *ranges;
    size_t n_ranges;
    if (family == AF_INET) {
        addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        ranges = vmm_net_denied4, n_ranges = vmm_net_denied4_n;
    } else if (family == AF_INET6) {
        addr = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        ranges = vmm_net_denied6, n_ranges = vmm_net_denied6_n;
    } else
        return true;
    for (size_t i = 0; i < n_ranges; i++)
        if (in_range(family, addr, ranges[i]))
            return true;
    for (size_t i = 0; host_addrs && host_addrs[i]; i++)
        if (strchr(host_addrs[i], ':') == NULL ? family == AF_INET : family == AF_INET6) {
            char plain[INET6_ADDRSTRLEN];
            snprintf(plain, sizeof(plain), "%s", host_addrs[i]);
            char *pct = strchr(plain, '%');
            if (pct)
                *pct = 0;
            if (in_range(family, addr, plain))
                return true;
        }
    return false;
}
