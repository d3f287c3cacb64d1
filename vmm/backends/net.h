/* Outbound network for a sandbox (network: true): its own network namespace, joined to
 * the host's by slirp4netns (user-mode NAT: the sandbox's packets become the host's
 * sockets, no veth, no host configuration), with nftables rules inside the namespace that
 * refuse every address of the host and every private, link-local, multicast and reserved
 * range, by IP, so also by any name that resolves to one. The sandbox's own processes
 * have no CAP_NET_ADMIN there and cannot change the rules.
 *
 * Used by the jailer (the jail's namespace) and by the VMM launcher (confine.h: QEMU's,
 * whose own user network then sits behind it: the guest's 10.0.2.2 reaches only that
 * namespace). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "util/util.h"

/* The gateway's DNS forwarder inside the namespace (slirp4netns' default 10.0.2.3). */
#define VMM_NET_DNS "10.0.2.3"

/* slirp4netns' pid, in the sandbox's directory (what vmm_net_detach stops). */
#define VMM_NET_SLIRP_PID_FILE "slirp.pid"

/* True when the programs of network: true and allow-list sandboxes are installed
 * (slirp4netns and nft at the paths warren runs them from); else why in err. */
bool vmm_net_available(struct wr_error **err);

/* Brings the loopback interface of the current network namespace up. */
int vmm_net_loopback_up(struct wr_error **err);

/* For a process about to leave the host's namespaces (the jailer, the VMM launcher): a
 * helper forked now stays in them (and in the caller's cgroup), waits for the sandbox's
 * pid, then starts slirp4netns on a tap in that process's network namespace and loads the
 * rules there with nft (in parallel; both done before it answers), using the host's own
 * binaries, never the sandbox's. slirp4netns exits when exit_fd (a pipe's read end; -1:
 * none) reports hang-up, or when it is killed with the sandbox's cgroup; output goes to
 * log_fd; its pid goes to dir/VMM_NET_SLIRP_PID_FILE. The helper closes every descriptor
 * but its pipes, log_fd, exit_fd and keep[]. */
struct vmm_net_helper {
    pid_t pid;
    int to, from;
};
int vmm_net_helper_start(struct vmm_net_helper *h, int log_fd, int exit_fd, const char *dir,
                         const int *keep, size_t n_keep, struct wr_error **err);
/* Hands target to the helper (-1: none, it just exits) and waits for its answer: 0 once
 * the network and its rules are in place, or the helper's error. */
int vmm_net_helper_finish(struct vmm_net_helper *h, pid_t target, struct wr_error **err);

/* `warren __netattach '{"pid": N, "dir": D, "id": ID}'`: the same NAT attached to the
 * network namespace of a running sandbox's process N (sandbox_update), from a fresh
 * process in the host's namespaces that joins the sandbox's cgroup first. Prints
 * slirp4netns' pid. Logs to D/sandbox.log. */
int vmm_netattach_main(int argc, char **argv);
/* Stops the slirp4netns of sandbox directory dir (the one serving target's namespace),
 * the tap goes with it, and cuts the connections that went through it (vmm_net_cut).
 * Nothing running is not an error. Blocking (briefly). */
int vmm_net_detach(const char *dir, pid_t target, struct wr_error **err);
/* Ends every TCP connection of target's network namespace but those on its loopback. */
int vmm_net_cut(pid_t target, struct wr_error **err);
