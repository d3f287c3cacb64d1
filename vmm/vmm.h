/* vmm: the sandbox manager. It owns the state store, the workspace layers, the backend
 * that runs sandbox machines and the agent connection to each sandbox's guest-init. The
 * MCP tools call only this header. Everything runs on one libuv loop; blocking work
 * (libgit2 checkouts, killing and removing a sandbox) goes to the libuv thread pool. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent.h"
#include "store.h"
#include "util/util.h"
#include "vmm/git/diff.h"
#include "vmm/net/policy.h"

struct vmm;

#define VMM_DEFAULT_EXEC_TIMEOUT_S 120
#define VMM_MAX_FILE_BYTES (32u * 1024u * 1024u) /* largest read or write in one call */
/* A sandbox's disk (disk_mib): the least a create may ask for, the size it gets when it
 * asks for none, and the cap when --max-disk-mib is not given. */
#define VMM_DISK_MIB_MIN 64
#define VMM_DISK_MIB_DEFAULT 10240
#define VMM_DISK_MIB_MAX_DEFAULT 102400

struct vmm_options {
    uv_loop_t *loop;
    const char *state_dir;
    const char *backend;         /* "auto" (default), "jail" */
    const char *guest_init_path; /* NULL: next to the running binary */
    uint32_t max_exec_timeout_s; /* 0: 3600 */
    int32_t idle_reclaim_s;      /* VM memory reclaim after this idle time; 0: 30; <0: never */
    int64_t idle_pause_s;        /* pause a sandbox idle this long; 0: 900; <0: never */
    int64_t idle_stop_s;         /* stop (files kept) one idle this long; 0: 86400; <0: never */
    /* Registries ("host[:port]") images may be pulled from over plain HTTP; NULL-terminated
     * or NULL. Credentials come from $WARREN_REGISTRY_AUTH or containers' auth.json. */
    const char *const *insecure_registries;
    /* Warm pools, "IMAGE=N" (NULL-terminated or NULL): N sandboxes of IMAGE kept started on
     * this process's backend, each claimed by a create that asks for IMAGE with the default
     * cpus, memory and network (vmm/pool.c). */
    const char *const *pools;
    /* A hosts(5) file the egress proxy resolves names from before the host's resolver
     * (allow-list sandboxes), or NULL. */
    const char *egress_hosts;
    /* The largest disk_mib a create may ask for; 0: VMM_DISK_MIB_MAX_DEFAULT. */
    uint64_t max_disk_mib;
};

int vmm_open(const struct vmm_options *opts, struct vmm **ret, struct wr_error **err);
/* Closes agent connections and the store. Sandboxes keep running: the next warren finds
 * them again. Pending operations fail with ECANCELED. */
void vmm_close(struct vmm *vmm);
const char *vmm_backend_name(const struct vmm *vmm);
const char *vmm_state_dir(const struct vmm *vmm);
/* Whether key is an API key of the state directory that is not revoked (vmm/apikeys.h):
 * looked up in the store at each call, so `warren key revoke` takes effect at once. */
bool vmm_api_key_valid(struct vmm *vmm, const char *key);
uint32_t vmm_max_exec_timeout_s(const struct vmm *vmm);
/* The largest disk_mib a create may ask for, and the default one; 0 for both when this
 * warren cannot cap disks (not root): then why says so. */
uint64_t vmm_max_disk_mib(const struct vmm *vmm);
uint64_t vmm_default_disk_mib(const struct vmm *vmm);
const char *vmm_disk_unavailable_reason(const struct vmm *vmm);
/* When the idle policy pauses / stops a sandbox last used at last_used (0: never). */
int64_t vmm_idle_pause_at(const struct vmm *vmm, int64_t last_used);
int64_t vmm_idle_stop_at(const struct vmm *vmm, int64_t last_used);

/* ---- sandboxes -------------------------------------------------------------------- */

struct vmm_create_request {
    const char *name;    /* NULL: generated */
    const char *repo;    /* host path of a git repo or directory, or NULL */
    const char *ref;     /* NULL: HEAD */
    const char *image;   /* NULL: "host" */
    unsigned cpus;       /* 0: 1 */
    uint64_t memory_mib; /* 0: 512 */
    /* The sandbox's disk: what its root and /workspace may take beyond their read-only
     * layers (vmm/disk.h). 0: vmm_default_disk_mib. From VMM_DISK_MIB_MIN to
     * vmm_max_disk_mib; refused (ENOTSUP) where disks cannot be capped. */
    uint64_t disk_mib;
    struct vmm_net_policy network; /* zero: none */
    const char *const *env;        /* "K=V", or NULL */
    int64_t ttl_seconds;
    /* Kept with the sandbox and shown back (E2B's metadata): JSON object text, or NULL.
     * The caller validates and caps it. */
    const char *metadata;
};

/* A sandbox as tools show it: the store row plus live figures. */
struct vmm_sandbox_info {
    struct store_sandbox row;
    uint64_t memory_usage_bytes; /* host memory held now; 0 when not running */
    uint64_t balloon_bytes;      /* memory the balloon took back from the guest */
    uint64_t disk_used_bytes;    /* in use on its disk now (0 when it has none) */
};
void vmm_sandbox_info_clear(struct vmm_sandbox_info *info);

/* info (owned by the vmm, valid during the call) or err (owned by the callee). */
typedef void (*vmm_sandbox_cb)(void *data, const struct vmm_sandbox_info *info,
                               struct wr_error *err);

int vmm_sandbox_create(struct vmm *vmm, const struct vmm_create_request *req, vmm_sandbox_cb cb,
                       void *data, struct wr_error **err);
/* Every sandbox, liveness checked (a running sandbox whose processes died is marked
 * stopped). Free each entry with vmm_sandbox_info_clear and the array with free. */
int vmm_sandbox_list(struct vmm *vmm, struct vmm_sandbox_info **ret, size_t *ret_n,
                     struct wr_error **err);
/* One sandbox as vmm_sandbox_list shows it (a warm pool's is not found: ENOENT). Clear
 * *ret with vmm_sandbox_info_clear. */
int vmm_sandbox_get(struct vmm *vmm, const char *id_or_name, struct vmm_sandbox_info *ret,
                    struct wr_error **err);
/* Kills the sandbox's processes and removes its layers and row. */
int vmm_sandbox_destroy(struct vmm *vmm, const char *id_or_name, vmm_sandbox_cb cb, void *data,
                        struct wr_error **err);

/* Freezes a running sandbox: its processes stop, its memory is kept. */
int vmm_sandbox_pause(struct vmm *vmm, const char *id_or_name, vmm_sandbox_cb cb, void *data,
                      struct wr_error **err);
/* Thaws a paused sandbox, or boots a stopped or failed one again from its files. */
int vmm_sandbox_resume(struct vmm *vmm, const char *id_or_name, vmm_sandbox_cb cb, void *data,
                       struct wr_error **err);
/* Stops a running or paused sandbox's machine and boots it again on the same files (its
 * id, name, config, workspace and root changes are kept; its processes end); boots a
 * stopped or failed one. cb gets the row as it runs again. */
int vmm_sandbox_restart(struct vmm *vmm, const char *id_or_name, vmm_sandbox_cb cb, void *data,
                        struct wr_error **err);

/* A sandbox's events (the audit trail: created, exec, egress, ...; see store_event_list),
 * also after it was destroyed (by id then). */
int vmm_sandbox_events(struct vmm *vmm, const char *id_or_name, const char *kind, size_t limit,
                       struct store_event_row **ret, size_t *ret_n, struct wr_error **err);

/* A TCP connection, from the host, to port of a running sandbox (a paused one is resumed):
 * a server a process inside listens on at its loopback (the web UI's ports). cb gets a
 * connected socket (blocking; the callee owns it), or -1 and err (ECONNREFUSED: nothing
 * listens there). */
typedef void (*vmm_port_cb)(void *data, int fd, struct wr_error *err);
int vmm_port_connect(struct vmm *vmm, const char *id_or_name, uint16_t port, vmm_port_cb cb,
                     void *data, struct wr_error **err);

/* The activity log: a tool call on sandbox id_or_name (detail: JSON text), kept as its
 * event "tool". The events table keeps the newest 200,000 events in all. */
void vmm_record_activity(struct vmm *vmm, const char *id_or_name, const char *detail);

/* Every sandbox's events after after_id (a live feed: the web UI's event stream), and the
 * newest event's id. */
int vmm_events_since(struct vmm *vmm, int64_t after_id, size_t limit,
                     struct store_event_row **ret, size_t *ret_n, struct wr_error **err);
int64_t vmm_events_last_id(struct vmm *vmm);

/* Changes a sandbox's settings at once (sandbox_update). network: the new policy, applied
 * to a running or paused sandbox now (connections it no longer allows are cut: NAT's with
 * its slirp4netns, the proxy's by host) and to a stopped one at its next boot. ttl: the
 * sandbox ends ttl_seconds from now (0: never). */
struct vmm_update_request {
    const struct vmm_net_policy *network; /* NULL: unchanged */
    bool set_ttl;
    int64_t ttl_seconds;
};
int vmm_sandbox_update(struct vmm *vmm, const char *id_or_name,
                       const struct vmm_update_request *req, vmm_sandbox_cb cb, void *data,
                       struct wr_error **err);

/* A warm pool: how many sandboxes it keeps and how many are ready. Strings are the vmm's,
 * valid until the loop runs again. */
struct vmm_pool_info {
    const char *image, *backend;
    unsigned size, ready;
    bool filling;
    const char *error; /* the last refill's failure, or NULL */
};
/* Every pool; free the array with free. */
int vmm_pool_list(struct vmm *vmm, struct vmm_pool_info **ret, size_t *ret_n);

/* Metrics (vmm/metrics.c): every VMM_METRICS_INTERVAL_S this process samples each running
 * sandbox and keeps the last VMM_METRICS_SAMPLES (an hour) in memory; a restart loses
 * them, and a sandbox that is not running gets none. */
#define VMM_METRICS_INTERVAL_S 10
#define VMM_METRICS_SAMPLES 360
struct vmm_metrics_sample {
    int64_t at;                  /* unix time */
    uint64_t memory_usage_bytes; /* host memory held (sandbox_list's) */
    uint64_t balloon_bytes;      /* what the balloon took back */
    double cpu_seconds;          /* cumulative CPU of the sandbox (jail cgroup; VMM process) */
    uint64_t disk_used_bytes;    /* on its disk, or in its upper directories without one */
};
/* The samples taken at or after since (unix time), oldest first; the caller frees *ret. */
int vmm_sandbox_metrics(struct vmm *vmm, const char *id_or_name, int64_t since,
                        struct vmm_metrics_sample **ret, size_t *ret_n, struct wr_error **err);
/* The sampling interval (VMM_METRICS_INTERVAL_S, unless a test shortened it). */
uint32_t vmm_metrics_interval_ms(const struct vmm *vmm);

/* ---- snapshots ---------------------------------------------------------------------- */

struct vmm_snapshot_info {
    struct store_snapshot row;
    size_t layers;  /* layers in its workspace chain (the base checkout not counted) */
    char **used_by; /* sandboxes and snapshots built on it (NULL-terminated, may be empty) */
    char *parent_id; /* the snapshot it is built on (below it in its chain), or NULL */
    uint64_t size_bytes; /* its layer on the host's disk (vmm_snapshot_tree only) */
};
void vmm_snapshot_info_clear(struct vmm_snapshot_info *info);
typedef void (*vmm_snapshot_cb)(void *data, const struct vmm_snapshot_info *info,
                                struct wr_error *err);

/* The sandbox's upper layers become a read-only snapshot layer and it goes on with fresh
 * ones (vmm/snapshot.c). A running sandbox is synced, stopped and booted again around the
 * switch: its files carry on, its processes do not. memory: saving the machine's memory
 * too; refused with the reason on every backend this build can run. */
int vmm_sandbox_snapshot(struct vmm *vmm, const char *id_or_name, const char *name, bool memory,
                         vmm_snapshot_cb cb, void *data, struct wr_error **err);
/* A new sandbox started from a snapshot (a fork: call it again for more). */
int vmm_snapshot_restore(struct vmm *vmm, const char *snapshot, const char *name, vmm_sandbox_cb cb,
                         void *data, struct wr_error **err);
/* The family a sandbox belongs to (vmm/snapshot.c): every snapshot and sandbox linked to it
 * by "taken from", "built on" and "forked from", up to its first ancestor and down to every
 * descendant, with the snapshots' sizes (measured on the thread pool). */
struct vmm_tree_sandbox {
    struct store_sandbox row;
    char *from_snapshot; /* the snapshot it was forked from, or NULL */
};
struct vmm_snapshot_tree {
    struct vmm_snapshot_info *snapshots;
    size_t n_snapshots;
    struct vmm_tree_sandbox *sandboxes; /* the living ones (a destroyed one leaves no row) */
    size_t n_sandboxes;
};
void vmm_snapshot_tree_clear(struct vmm_snapshot_tree *tree);
/* tree (owned by the vmm, valid during the call) or err. */
typedef void (*vmm_snapshot_tree_cb)(void *data, const struct vmm_snapshot_tree *tree,
                                     struct wr_error *err);
int vmm_snapshot_tree(struct vmm *vmm, const char *sandbox, vmm_snapshot_tree_cb cb, void *data,
                      struct wr_error **err);
/* Snapshots, all or of one sandbox. Free entries with vmm_snapshot_info_clear. */
int vmm_snapshot_list(struct vmm *vmm, const char *sandbox, struct vmm_snapshot_info **ret,
                      size_t *ret_n, struct wr_error **err);
/* Deletes a snapshot and its layer; refused while a sandbox or snapshot is built on it. */
int vmm_snapshot_delete(struct vmm *vmm, const char *snapshot, vmm_snapshot_cb cb, void *data,
                        struct wr_error **err);

/* ---- images ------------------------------------------------------------------------- */

/* An OCI image pulled into the state directory, and what is built on it. */
struct vmm_image_info {
    struct store_image row;
    size_t layers;
    char **used_by; /* "sandbox 'x'", "snapshot 'y'" (NULL-terminated, may be empty) */
};
void vmm_image_info_clear(struct vmm_image_info *info);
/* info valid during the call, or err (owned by the callee). */
typedef void (*vmm_image_cb)(void *data, const struct vmm_image_info *info, struct wr_error *err);
typedef void (*vmm_progress_cb)(void *data, const char *message);

/* Pulls an image (vmm/images/oci.h) unless the state directory has it already, in which
 * case cb runs at once. progress gets skopeo's lines and one per unpacked layer. */
int vmm_image_pull(struct vmm *vmm, const char *ref, vmm_progress_cb progress, vmm_image_cb cb,
                   void *data, struct wr_error **err);
/* Every pulled image. Free entries with vmm_image_info_clear and the array with free. */
int vmm_image_list(struct vmm *vmm, struct vmm_image_info **ret, size_t *ret_n,
                   struct wr_error **err);
/* Forgets an image and frees the layers no other image uses; refused (EBUSY, naming them)
 * while a sandbox or snapshot is built on it. */
int vmm_image_delete(struct vmm *vmm, const char *ref, vmm_image_cb cb, void *data,
                     struct wr_error **err);

struct vmm_build_request {
    const char *name;          /* the template's name: 1-63 of [A-Za-z0-9_.-], not "host" */
    const char *from;          /* "host", an OCI image reference or a template */
    const char *const *run;    /* shell commands, in order (may be NULL with files) */
    const char *const *env;    /* "K=V" for the steps, kept in the template; may be NULL */
    const char *workdir;       /* the steps' and the template's working directory, or NULL */
    const struct cJSON *files; /* {path: text} written before the commands, or NULL */
};
struct vmm_build_result {
    const char *image, *digest;
    size_t steps, cached; /* steps in all; how many came from the cache */
};
typedef void (*vmm_build_cb)(void *data, const struct vmm_build_result *result,
                             struct wr_error *err);
/* Builds a template (vmm/images/build.c): a sandbox from `from` runs the steps, each
 * step's result kept as a snapshot (step-<key>) so a rebuild with the same first steps
 * runs only the rest. A failing step fails the call with its output and registers
 * nothing. progress gets each step and its latest output line. */
int vmm_image_build(struct vmm *vmm, const struct vmm_build_request *req, vmm_progress_cb progress,
                    vmm_build_cb cb, void *data, struct wr_error **err);

/* ---- work inside a sandbox ------------------------------------------------------- */

struct vmm_op; /* one exec or file operation in flight */

/* Runs a process in a running sandbox. The sandbox's env is applied under req->env.
 * handlers->done runs exactly once. */
int vmm_exec(struct vmm *vmm, const char *id_or_name, const struct agent_exec_request *req,
             const struct agent_exec_handlers *handlers, void *data, struct vmm_op **ret_op,
             struct wr_error **err);
/* Cancels: kills the exec's process group (or abandons a pending connect). done still runs. */
void vmm_op_cancel(struct vmm_op *op);

int vmm_read_file(struct vmm *vmm, const char *id_or_name, const char *path, uint64_t offset,
                  uint64_t length, agent_read_cb cb, void *data, struct wr_error **err);
/* buf stays owned by the caller and must live until cb. */
int vmm_write_file(struct vmm *vmm, const char *id_or_name, const char *path, const void *buf,
                   size_t len, uint32_t mode, uint32_t flags, agent_write_cb cb, void *data,
                   struct wr_error **err);

/* Directories and names inside a running sandbox (guest-init's LIST_DIR, MKDIR, RENAME,
 * REMOVE and STAT; paths as for files). Each cb runs exactly once, unless the call
 * returns <0 (then never). */
#define VMM_LIST_MAX_DEPTH 5u
#define VMM_LIST_MAX_ENTRIES 10000u
/* Lists path depth-first (depth 1..VMM_LIST_MAX_DEPTH; 1: its entries only), at most
 * max_entries (1..VMM_LIST_MAX_ENTRIES), symlinks reported and not followed. */
int vmm_list_dir(struct vmm *vmm, const char *id_or_name, const char *path, unsigned depth,
                 size_t max_entries, agent_list_dir_cb cb, void *data, struct wr_error **err);
/* mkdir (0755), or mkdir -p with parents. */
int vmm_make_dir(struct vmm *vmm, const char *id_or_name, const char *path, bool parents,
                 agent_simple_cb cb, void *data, struct wr_error **err);
/* rename(2) from to; without overwrite an existing `to` is EEXIST. */
int vmm_move(struct vmm *vmm, const char *id_or_name, const char *from, const char *to,
             bool overwrite, agent_simple_cb cb, void *data, struct wr_error **err);
/* Removes a file or symlink (never its target), or with recursive a directory and what it
 * holds. "/" and /workspace are refused (EPERM). */
int vmm_remove(struct vmm *vmm, const char *id_or_name, const char *path, bool recursive,
               agent_simple_cb cb, void *data, struct wr_error **err);
/* stat(2) (symlinks followed). */
int vmm_stat(struct vmm *vmm, const char *id_or_name, const char *path, agent_stat_cb cb,
             void *data, struct wr_error **err);

/* Watches a directory of a running sandbox (guest-init's WATCH: inotify inside it; with
 * recursive, the directories below it too). handlers->end runs exactly once (unless this
 * returns < 0): after vmm_watch_stop (err NULL, or ECANCELED when stopped before it began),
 * or when the watch fails, the directory goes, or the sandbox stops. *ret_watch is valid
 * until then. */
struct vmm_watch;
int vmm_watch_dir(struct vmm *vmm, const char *id_or_name, const char *path, bool recursive,
                  const struct agent_watch_handlers *handlers, void *data,
                  struct vmm_watch **ret_watch, struct wr_error **err);
void vmm_watch_stop(struct vmm_watch *watch);

/* Checks a path a client gave for a file inside the sandbox: non-empty, at most 4096
 * bytes, no NUL, no ".." component. Relative paths are relative to /workspace. */
int vmm_path_check(const char *path, struct wr_error **err);

/* ---- terminals ------------------------------------------------------------------------ */

/* Terminal sessions (vmm/pty.c) live in the sandbox's guest-init: they outlive the
 * attachment, the agent connection and this process, and keep their recent output, so a
 * client reattaches to the same shell. At most GI_PTY_MAX per sandbox. */
#define VMM_PTY_DIM_MAX 1000                   /* rows and cols are 1..VMM_PTY_DIM_MAX */
#define VMM_PTY_MAX_INPUT (64u * 1024u)        /* the largest vmm_pty_write */
#define VMM_PTY_WINDOW (256u * 1024u)          /* output sent ahead of vmm_pty_ack, at most */
#define VMM_PROCESS_TAG_MAX 256u               /* GI_PROC_TAG_MAX */
#define VMM_PROCESS_HOST_DATA_MAX (8u * 1024u) /* GI_PROC_HOST_DATA_MAX */

struct vmm_pty_request {
    const char *const *argv; /* NULL: the login shell of the sandbox's user */
    const char *const *env;  /* "K=V" over the sandbox's environment, or NULL */
    const char *cwd;         /* NULL: the image's working directory, else /workspace */
    unsigned rows, cols;
    /* Process sessions (E2B's commands): pipes instead of a terminal (stdout and stderr
     * apart, stdin a pipe when stdin_open, else /dev/null); a tag to find it by; host data
     * (at most VMM_PROCESS_HOST_DATA_MAX bytes) given back by vmm_pty_list; a user (NULL: the
     * image's). */
    bool pipes, stdin_open;
    const char *tag;
    const char *user;
    const void *host_data;
    size_t host_data_len;
};

struct vmm_pty_handlers {
    /* The terminal is attached to session pty_id (the id vmm_pty_attach takes later),
     * whose leader is pid (in the sandbox). Output and end follow. May be NULL. */
    void (*attached)(void *data, uint64_t pty_id, uint64_t pid);
    /* A pipe session's stderr (acknowledged like output). NULL: output takes it. */
    void (*stderr_output)(void *data, const char *buf, size_t len);
    /* Output: first the session's recent output (up to 64 KiB), then live. Each byte
     * must be acknowledged with vmm_pty_ack once passed on: the sandbox sends at most
     * VMM_PTY_WINDOW bytes ahead of the acknowledgements. */
    void (*output)(void *data, const char *buf, size_t len);
    /* Exactly once, last: end says why the attachment ended (the process exited, or it
     * was detached, taken over by another attach, or closed), or end is NULL and err
     * (owned by the callee) says what failed: the open or the attach (ENOENT: no such
     * session), or the connection to the sandbox (the session may still be there: attach
     * again). The handle is freed after it. */
    void (*end)(void *data, const struct agent_pty_end *end, struct wr_error *err);
};

struct vmm_pty; /* one attachment to a terminal session */
typedef void (*vmm_pty_close_cb)(void *data, struct wr_error *err);

/* Opens a session in a running (or paused: resumed) sandbox and attaches to it.
 * *ret_pty is valid until handlers->end has run. */
int vmm_pty_open(struct vmm *vmm, const char *id_or_name, const struct vmm_pty_request *req,
                 const struct vmm_pty_handlers *handlers, void *data, struct vmm_pty **ret_pty,
                 struct wr_error **err);
/* Attaches to an existing session (the one attached before, if any, ends REPLACED). */
int vmm_pty_attach(struct vmm *vmm, const char *id_or_name, uint64_t pty_id,
                   const struct vmm_pty_handlers *handlers, void *data, struct vmm_pty **ret_pty,
                   struct wr_error **err);
/* Attaches to a session named by id, pid or tag (struct agent_pty_selector); live: output
 * from now on rather than the session's recent output (a session's first attachment gets
 * everything since its start either way). */
int vmm_process_attach(struct vmm *vmm, const char *id_or_name,
                       const struct agent_pty_selector *sel, bool live,
                       const struct vmm_pty_handlers *handlers, void *data,
                       struct vmm_pty **ret_pty, struct wr_error **err);
/* Input (at most VMM_PTY_MAX_INPUT bytes, copied), closing stdin, a signal or a resize
 * for a session without attaching to it. cb (a vmm_pty_close_cb) gets ENOENT for no such
 * session, EPIPE for input to a closed stdin, ESRCH when it exited. */
int vmm_process_control(struct vmm *vmm, const char *id_or_name,
                        const struct agent_pty_selector *sel, const struct agent_pty_control *ctl,
                        vmm_pty_close_cb cb, void *data, struct wr_error **err);
/* Input for the terminal (copied; at most VMM_PTY_MAX_INPUT bytes). EAGAIN before the
 * attached handler ran. Counts as use of the sandbox for the idle policy. */
int vmm_pty_write(struct vmm_pty *pty, const void *buf, size_t len, struct wr_error **err);
/* Before attached, the size is kept and applied once attached. */
int vmm_pty_resize(struct vmm_pty *pty, unsigned rows, unsigned cols, struct wr_error **err);
/* bytes of output passed on since the last call. */
int vmm_pty_ack(struct vmm_pty *pty, uint64_t bytes, struct wr_error **err);
/* Signals the session's process group (e.g. SIGINT, SIGHUP). */
int vmm_pty_signal(struct vmm_pty *pty, int signum, struct wr_error **err);
/* Leaves the session running; end follows (AGENT_PTY_DETACHED, or ECANCELED when it
 * was not attached yet). */
void vmm_pty_detach(struct vmm_pty *pty);

/* Ends a session: every process of its terminal session is killed and it is forgotten
 * (ENOENT if unknown). */
int vmm_pty_close(struct vmm *vmm, const char *id_or_name, uint64_t pty_id, vmm_pty_close_cb cb,
                  void *data, struct wr_error **err);
/* list (n entries, valid during the call) or err (owned by the callee). */
typedef void (*vmm_pty_list_cb)(void *data, const struct agent_pty_info *list, size_t n,
                                struct wr_error *err);
/* The sandbox's sessions, running and exited. */
int vmm_pty_list(struct vmm *vmm, const char *id_or_name, vmm_pty_list_cb cb, void *data,
                 struct wr_error **err);

/* ---- git ---------------------------------------------------------------------------- */

struct vmm_git_commit_request {
    const char *message;
    const char *author_name; /* NULL: the repository's user.name, else "warren" */
    const char *author_email;
    const char *branch;       /* NULL: warren/<sandbox name> */
    const char *const *paths; /* NULL: every change */
};

struct vmm_git_commit_result {
    const char *commit, *parent, *branch;
    size_t files_changed, insertions, deletions;
};

/* result is valid during the call; err is owned by the callee. */
typedef void (*vmm_git_commit_cb)(void *data, const struct vmm_git_commit_result *result,
                                  struct wr_error *err);

/* Commits the sandbox's workspace changes to a branch of the repository it was created
 * from (vmm/git/commit.h): flushes the guest's writes first when it runs. */
int vmm_sandbox_git_commit(struct vmm *vmm, const char *id_or_name,
                           const struct vmm_git_commit_request *req, vmm_git_commit_cb cb,
                           void *data, struct wr_error **err);

/* sandbox_diff: the sandbox's workspace against its start commit: the agent's own commits
 * inside it and what is not committed yet, i.e. what sandbox_git_commit would bring onto
 * warren/<name> (vmm/git/diff.h). Nothing is written to the repository. */
#define VMM_DIFF_MAX_FILES 10000u
#define VMM_DIFF_MAX_BYTES (4u << 20)
struct vmm_diff_request {
    const char *const *paths; /* NULL: every change; else only under these paths */
    unsigned context_lines;
    size_t max_bytes; /* patch text in all, at most VMM_DIFF_MAX_BYTES */
};
/* result (vmm/git/diff.h) is valid during the call; err is owned by the callee. */
typedef void (*vmm_diff_cb)(void *data, const struct gitdiff_result *result, struct wr_error *err);
int vmm_sandbox_diff(struct vmm *vmm, const char *id_or_name, const struct vmm_diff_request *req,
                     vmm_diff_cb cb, void *data, struct wr_error **err);

struct vmm_git_push_request {
    const char *remote; /* NULL: "origin" */
    const char *branch; /* NULL: warren/<sandbox name> */
};

struct vmm_git_push_result {
    const char *remote, *url, *branch, *commit;
};

/* result is valid during the call; err is owned by the callee. */
typedef void (*vmm_git_push_cb)(void *data, const struct vmm_git_push_result *result,
                                struct wr_error *err);

/* Pushes a branch of the repository the sandbox was created from to one of its remotes
 * (vmm/git/push.h). cb runs exactly once, at the latest GITPUSH_TIMEOUT_SECONDS (plus a
 * little) after the call, even when the network stalls libgit2. */
int vmm_sandbox_git_push(struct vmm *vmm, const char *id_or_name,
                         const struct vmm_git_push_request *req, vmm_git_push_cb cb, void *data,
                         struct wr_error **err);
