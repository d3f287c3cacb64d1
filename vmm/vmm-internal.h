/* Types shared by the vmm core's files. The core is layered, each file calling only the
 * ones below it (the functions are declared in one header per file):
 *
 *   vmm.c        open and close: the store, the backend, the reaper
 *   metrics.c    the metrics sampler: a ring of samples per running sandbox
 *   reaper.c     the housekeeping timer: ttl, idle pause and stop, memory reclaim
 *   pool.c       warm pools: sandbox_create served by a started sandbox, refills
 *   snapshot.c   snapshot, restore (a fork), list, delete
 *   sandbox.c    create, list, destroy
 *   pty.c        terminal sessions: open, attach, input, resize, list, close
 *   ops.c        exec and file operations; git/ builds on ready.c the same way
 *   ports.c      a connection to a port inside a sandbox (the web UI's ports)
 *   ready.c      a sandbox ready for work: resumed, balloon deflated, agent connected
 *   update.c     sandbox_update: network policy and ttl of a sandbox
 *   lifecycle.c  boot, pause and resume, restart, stopping an idle sandbox
 *   network.c    a sandbox's network mode at run time: the egress proxy, NAT attached and
 *                detached, the proxy settings inside
 *   reclaim.c    an idle VM's balloon inflated, deflated before work
 *   state.c      liveness: a sandbox whose processes died is marked stopped or failed
 *   conn.c       this process's record of each sandbox and its agent connection
 *   spec.c       the backend of a sandbox and the spec it is started from, its disk and
 *                the snapshot disks below it mounted
 *   store.c, agent.c, helper.c, disk.c   the state store, the agent client, helper
 *                processes, disk images on loop devices
 *
 * Nothing calls upward: a lower file that must wait for a higher one takes a callback. */
#pragma once

#include "vmm.h"
#include "vmm/backends/backend-internal.h"

/* One sandbox's runtime state in this process: its agent connection (shared by every
 * operation on the sandbox) and the operations waiting for it. */
struct conn_waiter;
struct sandbox_rt {
    struct vmm *vmm;
    char *id;
    struct agent_conn *conn;
    bool connecting;
    struct conn_waiter *waiters;
    uint64_t balloon_bytes; /* what this process inflated the balloon to; 0: deflated */
    bool reclaiming;        /* a reclaim (drop caches, memstats, inflate) is under way */
    bool deflating;
    bool touched;              /* used while a reclaim was under way: do not inflate */
    unsigned terminals;        /* terminals attached through this process (vmm/pty.c) */
    struct vmm_egress *egress; /* allow-list sandboxes: the proxy in its namespace */
    struct sandbox_rt *next;
};

struct vmm {
    uv_loop_t *loop;
    char *state_dir;
    char *guest_init_path;
    char *guest_kernel_dir;
    const struct vmm_backend_ops *backend;
    struct store *store;
    struct apikey_cache *api_keys; /* keys checked lately (vmm/apikeys.h) */
    uint32_t max_exec_timeout_s;
    struct sandbox_rt *rts;
    uv_timer_t *reaper;         /* destroys sandboxes whose ttl_seconds ran out */
    uint32_t idle_reclaim_s;    /* idle time after which a VM hands memory back; 0: never */
    int64_t idle_pause_s;       /* idle time after which a sandbox is paused; 0: never */
    int64_t idle_stop_s;        /* idle time after which it is stopped, files kept; 0: never */
    char **insecure_registries; /* "host[:port]" reached over plain HTTP */
    char *registry_auth;        /* containers auth.json ($WARREN_REGISTRY_AUTH); NULL: default */
    struct pool *pools;         /* --pool IMAGE=N (vmm/pool.c) */
    struct vmm_egress_hosts *egress_hosts; /* names the egress proxy resolves itself */
    uint64_t activity_records;             /* tool calls logged (vmm_record_activity) */
    uint64_t max_disk_mib;      /* --max-disk-mib; 0: disks cannot be made here */
    char *no_disk_reason;       /* why not (vmm_disk_available), or NULL */
    struct metrics_ring *metrics; /* samples per running sandbox (vmm/metrics.c) */
    uv_timer_t *metrics_timer;
    uint32_t metrics_interval_ms;
};

/* The strings behind a vmm_sandbox_spec, derived from the store row and state dir. */
struct spec_storage {
    struct vmm_sandbox_spec spec;
    const struct vmm_backend_ops *ops; /* the backend the sandbox was created on */
    char *dir, *root_upper, *root_work, *ws_upper, *ws_work, *agent_socket, *log_path;
    /* A sandbox with a disk (row->disk_mib): <dir>/disk.img, mounted on <dir>/disk, which
     * holds the uppers and work directories above; NULL for one without. */
    char *disk_image, *disk_dir;
    uint64_t disk_mib;
    char *image_base;      /* "host" or the OCI image the sandbox's image is built on */
    char *git_objects;     /* read from <dir>/git-objects, written at create */
    char *kernel, *initrd; /* VM backends, filled by vmm__spec_boot_files */
    char **root_lowers;    /* snapshot layers (top first), then the image */
    char **ws_lowers;      /* snapshot layers (top first), then the checkout or directory */
};

#define VMM_POOL_HOSTNAME "sandbox"

/* The disk a create gets when it asks for none: 0 where disks cannot be made. */
static inline uint64_t vmm__default_disk_mib(const struct vmm *vmm)
{
    return vmm->max_disk_mib < VMM_DISK_MIB_DEFAULT ? vmm->max_disk_mib : VMM_DISK_MIB_DEFAULT;
}

/* Completion of an internal step: err (owned by the callee) or NULL. */
typedef void (*vmm_done_cb)(void *data, struct wr_error *err);
/* An agent connection (owned by the core; valid until the sandbox is forgotten) or err. */
typedef void (*vmm_conn_cb)(void *data, struct agent_conn *conn, struct wr_error *err);
