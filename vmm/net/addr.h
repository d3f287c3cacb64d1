/* The addresses no sandbox reaches, whatever its network mode: the host's loopback and
 * its own addresses, private and carrier-grade NAT ranges, link-local (cloud metadata),
 * multicast, reserved and "this network"; IPv6 loopback, unique-local, link-local,
 * multicast, IPv4-mapped and NAT64. The NAT mode enforces them with nftables rules in the
 * sandbox's namespace (vmm/backends/net.c), the egress proxy by checking every address it
 * is about to connect to. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util/util.h"

extern const char *const vmm_net_denied4[];
extern const size_t vmm_net_denied4_n;
extern const char *const vmm_net_denied6[];
extern const size_t vmm_net_denied6_n;

/* The host's own addresses ("192.0.2.2", "2001:db8::1"), read in the caller's network
 * namespace; NULL-terminated, or NULL with err. */
char **vmm_net_host_addresses(struct wr_error **err);

/* True when a sandbox must not reach sa (AF_INET or AF_INET6; any other family is
 * denied): a denied range, or one of host_addrs. */
bool vmm_net_addr_denied(const struct sockaddr *sa, const char *const *host_addrs);
