/* The confined VMM: how QEMU and Cloud Hypervisor are started (Firecracker's jailer is the
 * model). warren never runs a VMM as root with the host's view; `warren __confine
 * <dir>/vmm.json` builds the VMM's process state and execs it:
 *
 *   - identity: a uid and gid of its own, VMM_CONFINE_UID_BASE + the sandbox id's first 24
 *     bits (no /etc/passwd entry: nothing needs one), no supplementary groups, every
 *     capability set empty (effective, permitted, inheritable, ambient, bounding),
 *     no_new_privs, RLIMIT_NOFILE VMM_CONFINE_NOFILE, RLIMIT_CORE 0, RLIMIT_NPROC (per uid,
 *     so per sandbox) VMM_CONFINE_PIDS_MAX;
 *   - namespaces: its own mount, PID (the VMM is PID 1 there), IPC, UTS, cgroup and network
 *     namespace; the network namespace has its loopback up, and with network it is joined to
 *     the host's by slirp4netns behind the sandbox's firewall rules (vmm/backends/net.h);
 *   - files: pivot_root into a tmpfs (<dir>/vmm-root, read-only once built) that holds only
 *     /usr, /bin, /sbin, /lib* of the host read-only (the VMM binary and its libraries),
 *     /etc/resolv.conf (`nameserver 10.0.2.3`, whatever the network mode) and
 *     /etc/ld.so.cache, /dev with null, zero, full, random, urandom and kvm (the last owned
 *     by the VMM's uid), /proc of its PID namespace, and at their host paths: the boot files
 *     read-only, the unix sockets it connects to (virtiofsd's, made connectable by its uid)
 *     and the directories it writes (owned by its uid). Never the state directory, other
 *     sandboxes, /etc or /home;
 *   - descriptors: the unix sockets it serves (QMP, the agent port, CH's API) are bound by
 *     the launcher as root, mode 0600 (only warren, root in the host, connects to them), and
 *     handed over listening as fds 3, 4, ...; files it writes (the serial log) are opened by
 *     the launcher and handed over after them. The VMM never needs to create a host path;
 *   - a cgroup: warren/<id>, the jail's tree (vmm/backends/jail/cgroup.h), shared with the
 *     sandbox's vmfs supervisor and virtiofsds (vmm/backends/vmfs.c): memory.max = guest RAM
 *     + VMM_CONFINE_OVERHEAD_BYTES, pids.max VMM_CONFINE_PIDS_MAX, cpu.max = cpus + 1 CPUs
 *     (the +1 for the VMM's own threads: main loop, I/O, virtiofsd). Stopping the sandbox
 *     destroys the cgroup, which kills whatever of it is left.
 *
 * The launcher prints the VMM's host pid and exits; the VMM lives on (reparented to init),
 * and the sandbox row records that pid: its death is the sandbox's death, and the network
 * namespace another part of warren may join is /proc/<pid>/ns/net. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "vmm/helper.h"

#define VMM_CONFINE_UID_BASE 0x70000000u
#define VMM_CONFINE_UID_SLOTS 0x01000000u /* 0x70000000 .. 0x70ffffff */
/* The VMM's own memory beyond guest RAM: QEMU's (TCG's 32 MiB translation cache included,
 * about 90 MiB measured), two virtiofsds and their page cache, the supervisor. */
#define VMM_CONFINE_OVERHEAD_BYTES (256ull << 20)
/* Threads count: QEMU's vCPU, main, RCU and I/O worker threads, the virtiofsds' pools. */
#define VMM_CONFINE_PIDS_MAX 512
#define VMM_CONFINE_NOFILE 4096
/* The first descriptor the VMM is handed (listen sockets, then output files). */
#define VMM_CONFINE_FIRST_FD 3

/* The uid (= gid) the VMMs of sandbox id run as. Two sandboxes may share one (a 2^-24
 * chance per pair); they still share nothing else: each sees its own PID namespace only. */
uid_t vmm_confine_uid(const char *id);

/* Creates the sandbox's cgroup (or rewrites its limits) with the VMM's limits for a guest
 * of guest_memory bytes and cpus vCPUs, and moves the calling process into it. */
int vmm_confine_join_cgroup(const char *id, uint64_t guest_memory, unsigned cpus,
                            struct wr_error **err);

/* What to confine. Arrays are NULL-terminated; NULL means empty. */
struct vmm_confine_spec {
    const char *id;        /* 16 hex digits */
    const char *dir;       /* the sandbox directory: vmm.json and vmm-root are made there */
    const char *log_path;  /* the VMM's stdout and stderr, appended */
    uint64_t memory_bytes; /* guest RAM */
    unsigned cpus;
    bool network;               /* outbound network through slirp4netns (else loopback only) */
    const char *const *files;   /* host files shown read-only at their path (boot files) */
    const char *const *sockets; /* host unix sockets it connects to, shown at their path */
    const char *const *dirs;    /* host directories it writes, shown at their path */
    const char *const *listen;  /* sockets bound for it: fds 3, 4, ... */
    const char *const *outputs; /* files opened (truncated) for it: the fds after listen */
    const char *const *argv;    /* argv[0]: the absolute path of the VMM */
};

/* Writes <dir>/vmm.json and runs the launcher (vmm/helper.h: detached, bounded in time).
 * cb gets the VMM's host pid once it has exec'd, or an error; on failure nothing of it is
 * left running (its cgroup is the caller's to destroy). Returns < 0 without calling cb when
 * nothing could be started. */
int vmm_confine_start(uv_loop_t *loop, const struct vmm_confine_spec *spec, vmm_helper_cb cb,
                      void *data, struct wr_error **err);

/* Entry point of the hidden `__confine` subcommand (argv[2]: the spec file). Ends the
 * process itself: 0 after printing "<pid>\n", 1 after printing one line of error text. */
int vmm_confine_main(int argc, char **argv);
