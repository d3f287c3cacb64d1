/* Outbound network for a sandbox (network: true): its own network namespace, joined to
 * the host's by slirp4netns (user-mode NAT: the sandbox's packets become the host's
 * sockets, no veth, no host configuration), with nftables rules inside the namespace that
 * refuse every address of the host and every private, link-local, multicast and reserved
 * range, by IP, so also by any name that resolves to one. The sandbox's own processes
 * have no CAP_NET_ADMIN there and cannot change the rules.
 *
 * Used by the jailer (the jail's namespace) and by the QEMU launcher (QEMU's, whose own
 * user network then sits behind it: the guest's 10.0.2.2 reaches only that namespace). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "util/util.h"

/* The gateway's DNS forwarder inside the namespace (slirp4netns' default 10.0.2.3). */
#define VMM_NET_DNS "10.0.2.3"

/* What must be captured in the host's network namespace before leaving it. */
struct vmm_net_host {
    int netns_fd; /* the host's network namespace */
    char **addrs; /* the host's own addresses ("192.0.2.2", "2001:db8::1") */
};

/* Opens the host's network namespace and lists its addresses. Call before unshare. */
int vmm_net_host_capture(struct vmm_net_host *h, struct wr_error **err);
void vmm_net_host_clear(struct vmm_net_host *h);

/* The nftables ruleset for a sandbox namespace (caller frees). */
char *vmm_net_rules(const char *const *host_addrs);

/* Starts slirp4netns (in h's network namespace, else the caller's) on a tap in the network
 * namespace of process target, waits until it is configured, and loads the rules there
 * with nft. The caller runs in the host's mount and pid namespaces (the binaries are the
 * host's, the helpers are not born in the sandbox's pid namespace); target's loopback is
 * brought up by its own setup. slirp4netns exits when exit_fd (a pipe's read end; -1:
 * none) reports hang-up, or when it is killed with the sandbox's cgroup. Output goes to
 * log_fd. */
int vmm_net_attach(const struct vmm_net_host *h, pid_t target, int log_fd, int exit_fd,
                   pid_t *ret_pid, struct wr_error **err);

/* Brings the loopback interface of the current network namespace up. */
int vmm_net_loopback_up(struct wr_error **err);

/* The same from a process about to leave the host's namespaces (the jailer, the QEMU
 * launcher): a helper forked now stays in them, waits for the sandbox's pid, runs
 * vmm_net_attach and answers. It closes every descriptor but its pipes, log_fd, exit_fd
 * and keep[]. */
struct vmm_net_helper {
    pid_t pid;
    int to, from;
};
int vmm_net_helper_start(struct vmm_net_helper *h, int log_fd, int exit_fd, const int *keep,
                         size_t n_keep, struct wr_error **err);
/* Hands target to the helper (-1: none, it just exits) and waits for its answer. */
int vmm_net_helper_finish(struct vmm_net_helper *h, pid_t target, struct wr_error **err);

/* `warren __netexec <sandbox dir> <log> <program> [args...]`: runs program (QEMU) in a
 * network namespace of its own with outbound network (vmm_net_attach; slirp4netns ends
 * when the program does) and a private mount namespace whose /etc/resolv.conf names the
 * namespace's DNS forwarder. The program keeps this process's pid. */
int vmm_netexec_main(int argc, char **argv);
