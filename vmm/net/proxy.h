/* The egress proxy of a sandbox with an allow-list (policy.h): a listener inside the
 * sandbox's own network namespace (its only way out: that namespace has nothing else),
 * served on the server's libuv loop. It serves CONNECT to port 443 and plain HTTP to port
 * 80 (head.h), refuses any host the policy does not allow and any address, resolves the
 * name itself (the hosts table first, then the host's resolver), refuses it when every
 * address is one no sandbox may reach (addr.h), and connects to the very address it
 * checked: no second lookup, so DNS rebinding has nothing to race. Through CONNECT, the
 * TLS ClientHello must name the CONNECT host (sni.h) before a byte reaches the server.
 * Every connection, allowed or refused, ends as an event. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "policy.h"

/* The proxy's address inside the sandbox's network namespace, and how the sandbox names
 * it: the jail reaches it on its own loopback; a VM through QEMU's user network, whose
 * gateway 10.0.2.2 is the loopback of QEMU's namespace. */
#define VMM_EGRESS_ADDR "127.0.0.1"
#define VMM_EGRESS_PORT 3128
#define VMM_EGRESS_URL_JAIL "http://127.0.0.1:3128"
#define VMM_EGRESS_URL_VM "http://10.0.2.2:3128"
#define VMM_EGRESS_MAX_CONNS 256 /* open at once, per sandbox */

/* Names the proxy resolves from a table instead of the host's resolver (hosts(5)
 * format: "address name [names...]", # comments). */
struct vmm_egress_hosts;
#define VMM_EGRESS_HOSTS_MAX_BYTES (1u << 20)
int vmm_egress_hosts_parse(const char *text, size_t len, struct vmm_egress_hosts **ret,
                           struct wr_error **err);
int vmm_egress_hosts_load(const char *path, struct vmm_egress_hosts **ret, struct wr_error **err);
void vmm_egress_hosts_free(struct vmm_egress_hosts *h);
/* The addresses of name (normalized) in the table: *ret_n entries, or 0. */
size_t vmm_egress_hosts_lookup(const struct vmm_egress_hosts *h, const char *name,
                               const struct sockaddr_storage **ret);

struct vmm_egress_event {
    const char *kind; /* "connect" (HTTPS tunnel) or "http" */
    const char *host; /* as the client asked ("" when the request did not parse) */
    uint16_t port;
    const char *address; /* the address connected to, or NULL */
    bool allowed;        /* reached the server */
    const char *reason;  /* why it was refused or cut, or NULL */
    uint64_t bytes_up, bytes_down, duration_ms;
};
typedef void (*vmm_egress_event_cb)(void *data, const struct vmm_egress_event *ev);

struct vmm_egress;
/* Listens on VMM_EGRESS_ADDR:VMM_EGRESS_PORT in the network namespace of process
 * netns_pid. hosts (may be NULL) must outlive the proxy. */
int vmm_egress_open(uv_loop_t *loop, pid_t netns_pid, const struct vmm_net_policy *policy,
                    const struct vmm_egress_hosts *hosts, vmm_egress_event_cb cb, void *data,
                    struct vmm_egress **ret, struct wr_error **err);
/* A new allow-list: connections to hosts it no longer allows are cut now. */
void vmm_egress_set_policy(struct vmm_egress *e, const struct vmm_net_policy *policy);
/* Stops listening and cuts every connection (their events are reported first). */
void vmm_egress_close(struct vmm_egress *e);
size_t vmm_egress_connections(const struct vmm_egress *e);
