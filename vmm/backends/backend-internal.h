/* The backend ops table: what a sandbox machine (jail, QEMU VM, Cloud Hypervisor VM) must
 * do for the vmm core. The core owns names, state, layers and the agent connection; a
 * backend only starts, stops and measures the machine. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "util/util.h"

struct agent_conn;

/* Everything a backend needs to start one sandbox. The core prepares every directory
 * named here before start; the backend must not write outside spec->dir. */
struct vmm_sandbox_spec {
    const char *id;    /* 16 lowercase hex digits */
    const char *dir;   /* <state>/sandboxes/<id>: private to this sandbox */
    const char *image; /* "host" */
    /* The root filesystem: overlay of root_lowers (top first) under root_upper. For the
     * host image the backend also mounts the host's /usr, /etc, ... as copy-on-write
     * overlays with secrets hidden (vmm_mount_root, vmm/backends/hostview.h). */
    const char *const *root_lowers;
    const char *root_upper;
    const char *root_work;
    /* /workspace: overlay of ws_lowers (top first; may be empty: an empty workspace)
     * under ws_upper. */
    const char *const *ws_lowers;
    const char *ws_upper;
    const char *ws_work;
    /* The user's git object directory (a sandbox made from a repository), bound read-only
     * on /workspace/.git/repo-objects, the alternate of the sandbox's own object store
     * (vmm/git/checkout.h); NULL: none. */
    const char *git_objects;
    const char *agent_socket;    /* where guest-init accepts the host's connections */
    const char *guest_init_path; /* the static guest-init binary on the host */
    const char *log_path;        /* the sandbox's own log (jailer/VMM stderr, console) */
    unsigned cpus;
    uint64_t memory_bytes;
    bool network;         /* false: an empty network namespace / no NIC */
    const char *hostname; /* the sandbox name */
    /* Started for a warm pool: the workspace and the name come later, from attach (a VM's
     * workspace share is then an empty tmpfs that attach mounts the workspace under). */
    bool pooled;
    /* VM backends only (NULL/0 for the jail): the guest's boot files, built by
     * vmm/backends/guest-image.c, and the sandbox's vsock context id (>= 3, unique among running
     * sandboxes of this state directory). */
    const char *kernel_path;
    const char *initrd_path;
    uint32_t vsock_cid;
};

/* start's completion: pid of the process whose life is the sandbox's life (the jail's
 * PID 1, the VMM), or err (owned by the callee). */
typedef void (*vmm_backend_start_cb)(void *data, pid_t pid, struct wr_error *err);

struct vmm_backend_ops {
    const char *name;
    /* A VM backend: the core gives it the guest's boot files (vmm/backends/guest-image.c), and a
     * sandbox whose VMM died is shown failed rather than stopped. */
    bool vm;
    /* True when this backend can run on this machine; else false and why in err. */
    bool (*available)(struct wr_error **err);
    /* Starts the machine without blocking the loop. When cb reports success the agent
     * socket is accepting connections (or will be shortly; the core retries). */
    int (*start)(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, vmm_backend_start_cb cb,
                 void *data, struct wr_error **err);
    /* Kills every process of the sandbox and waits (bounded) until they are gone;
     * removes cgroups, mounts and sockets it made. Safe on an already-dead sandbox. */
    int (*stop)(const struct vmm_sandbox_spec *spec, pid_t pid, struct wr_error **err);
    /* Host memory the sandbox holds now (cgroup usage, VMM RSS). */
    int (*memory_usage)(const struct vmm_sandbox_spec *spec, pid_t pid, uint64_t *ret_bytes);
    /* CPU time the sandbox used, in microseconds (the jail's cgroup). NULL: the utime and
     * stime of pid (a VM's VMM process). */
    int (*cpu_usage)(const struct vmm_sandbox_spec *spec, pid_t pid, uint64_t *ret_usec);
    /* Optional (VMs): makes guest_port of the guest reachable at 127.0.0.1:*ret_port in the
     * network namespace of process pid (the VMM's). Blocking: the thread pool. Without
     * it, a port inside the sandbox is the sandbox namespace's own 127.0.0.1:port. */
    int (*port_forward)(const struct vmm_sandbox_spec *spec, pid_t pid, uint16_t guest_port,
                        uint16_t *ret_port, struct wr_error **err);
    /* Connects to the sandbox's guest-init. NULL means: a unix socket at
     * spec->agent_socket where guest-init accepts connections (agent_connect_unix). */
    int (*agent_connect)(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, uint32_t timeout_ms,
                         void (*cb)(void *data, struct agent_conn *conn, struct wr_error *err),
                         void *data, struct wr_error **err);
    /* Memory reclaim: sets the balloon to `bytes` (0 deflates it fully). NULL when the
     * backend has no balloon. cb reports when the VMM accepted the target (inflation itself
     * is asynchronous in the guest). */
    int (*balloon_set)(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                       uint64_t bytes, void (*cb)(void *data, struct wr_error *err), void *data,
                       struct wr_error **err);
    /* Freezes every process of the sandbox, keeping its memory (cgroup freezer, QMP stop,
     * vm.pause), and thaws it again. cb runs once the machine is frozen / running. */
    int (*pause)(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                 void (*cb)(void *data, struct wr_error *err), void *data, struct wr_error **err);
    int (*resume)(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                  void (*cb)(void *data, struct wr_error *err), void *data, struct wr_error **err);
    /* A pooled sandbox, running, is claimed: mounts spec's workspace (ws_lowers under
     * ws_upper, the git objects) into the machine and gives it spec->hostname. Blocking
     * (the thread pool runs it). For a VM, *ret_guest_dir names the directory inside the
     * guest that guest-init must bind on /workspace (agent_attach); the jail does
     * everything itself and leaves it NULL. NULL op: the backend keeps no pools. */
    int (*attach)(const struct vmm_sandbox_spec *spec, pid_t pid, char **ret_guest_dir,
                  struct wr_error **err);
};

extern const struct vmm_backend_ops vmm_backend_jail;
extern const struct vmm_backend_ops vmm_backend_qemu;
extern const struct vmm_backend_ops vmm_backend_cloud_hypervisor;

/* True when KVM can run full VMs here (vmm/backends/kvm.c): /dev/kvm answers and creates a VM,
 * the CPU shows vmx/svm, and WARREN_QEMU_ACCEL is not "tcg". Else false, and why in err
 * (may be NULL). */
bool vmm_kvm_usable(struct wr_error **err);
/* True when /proc/cpuinfo's flags show vmx or svm (kvm.c). */
bool vmm_cpu_has_virtualization(void);
/* The absolute path of qemu-system-x86_64 on $PATH, or NULL (qemu.c). Caller frees. */
char *vmm_qemu_binary(void);
/* $WARREN_CLOUD_HYPERVISOR, else `cloud-hypervisor` in PATH, or NULL and why (ch.c).
 * Caller frees. */
char *vmm_ch_binary(struct wr_error **err);
/* overlayfs in /proc/filesystems; unprivileged user namespaces allowed (jail.c). */
bool vmm_overlay_available(struct wr_error **err);
bool vmm_userns_usable(struct wr_error **err);
