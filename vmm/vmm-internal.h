/* Internals shared by the vmm core's files. */
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
    bool touched; /* used while a reclaim was under way: do not inflate */
    struct sandbox_rt *next;
};

struct vmm {
    uv_loop_t *loop;
    char *state_dir;
    char *guest_init_path;
    char *guest_kernel_dir;
    const struct vmm_backend_ops *backend;
    struct store *store;
    uint32_t max_exec_timeout_s;
    struct sandbox_rt *rts;
    uv_timer_t *reaper;      /* destroys sandboxes whose ttl_seconds ran out */
    uint32_t idle_reclaim_s; /* idle time after which a VM hands memory back; 0: never */
    int64_t idle_pause_s;    /* idle time after which a sandbox is paused; 0: never */
    int64_t idle_stop_s;     /* idle time after which it is stopped, files kept; 0: never */
};

/* Stops a sandbox's machine (files kept), marking it stopped with reason. */
void vmm__stop_idle(struct vmm *vmm, const struct store_sandbox *row, const char *reason);

/* vmm/reclaim.c: idle VMs inflate their balloon toward the guest's real use; the next
 * operation deflates it first. Called from the reaper's timer. */
void vmm__reclaim_idle(struct vmm *vmm, const struct store_sandbox *row);
/* Deflates the balloon if this process inflated it, then runs cb. */
void vmm__deflate_then(struct vmm *vmm, struct sandbox_rt *rt, const struct store_sandbox *row,
                       void (*cb)(void *data), void *data);
struct sandbox_rt *vmm__rt_get(struct vmm *vmm, const char *id, bool create);

/* Starts and stops the ttl reaper (vmm/reaper.c). */
void vmm__reaper_start(struct vmm *vmm);
void vmm__reaper_stop(struct vmm *vmm);

/* The strings behind a vmm_sandbox_spec, derived from the store row and state dir. */
struct spec_storage {
    struct vmm_sandbox_spec spec;
    const struct vmm_backend_ops *ops; /* the backend the sandbox was created on */
    char *dir, *root_upper, *root_work, *ws_upper, *ws_work, *agent_socket, *log_path;
    char *image_root;
    char *kernel, *initrd; /* VM backends, filled by vmm__spec_boot_files */
    char **root_lowers;    /* snapshot layers (top first), then the image */
    char **ws_lowers;      /* snapshot layers (top first), then the checkout or directory */
};

/* The backend named name (a sandbox's row->backend); the process's own one when the
 * name is unknown. A sandbox keeps the backend it was created on, whatever --backend a
 * later warren runs with. */
const struct vmm_backend_ops *vmm__backend_for(const struct vmm *vmm, const char *name);

/* The lowers of an overlay: the layers of a JSON array (top first, may be NULL), then base
 * (may be NULL). NULL-terminated; the caller frees it with wr_strv_free. */
char **vmm__layer_chain(const char *layers_json, const char *base);

int vmm__spec_build(struct vmm *vmm, const struct store_sandbox *row, struct spec_storage *ret,
                    struct wr_error **err);
void vmm__spec_clear(struct spec_storage *s);
/* VM backends: finds the guest kernel and builds (or reuses) the initramfs. Blocking:
 * call from the thread pool. */
int vmm__spec_boot_files(struct vmm *vmm, struct spec_storage *s, struct wr_error **err);

/* A row that says running but whose process is gone becomes stopped (or failed, for a
 * VM), in the store too. Returns 1 when it changed the row. */
int vmm__refresh_state(struct vmm *vmm, struct store_sandbox *row);

/* 16 random hex digits (sandbox and snapshot ids). */
int vmm__new_id(char out[17]);
/* Creates a sandbox from a filled-in row (state "creating"; taken over). */
int vmm__create_from_row(struct vmm *vmm, struct store_sandbox *row, vmm_sandbox_cb cb, void *data,
                         struct wr_error **err);

/* Starts row's machine (spec prepared: directories made, boot files found), waits for its
 * agent and marks the row running (row->pid and row->state updated). On failure the
 * machine is stopped and the row marked failed, kept with its files; cb gets the error.
 * row and spec must stay alive until cb. */
typedef void (*vmm_done_cb)(void *data, struct wr_error *err);
void vmm__boot(struct vmm *vmm, struct store_sandbox *row, struct spec_storage *spec,
               vmm_done_cb cb, void *data);
/* Thaws a paused sandbox (row->state "paused") and marks it running, then runs cb. */
void vmm__resume_then(struct vmm *vmm, const struct store_sandbox *row, vmm_done_cb cb, void *data);

/* Looks a sandbox up and checks that it is running or paused (a paused one is resumed by
 * vmm__with_conn), marking it stopped when its processes are gone. On success *ret is
 * filled (clear it with store_sandbox_clear). */
int vmm__sandbox_running(struct vmm *vmm, const char *id_or_name, struct store_sandbox *ret,
                         struct wr_error **err);

typedef void (*vmm_conn_cb)(void *data, struct agent_conn *conn, struct wr_error *err);
/* Hands cb the sandbox's agent connection, connecting first when needed. cb may run
 * before this returns. */
void vmm__with_conn(struct vmm *vmm, const struct store_sandbox *row, uint32_t timeout_ms,
                    vmm_conn_cb cb, void *data);
/* Drops this process's connection to the sandbox (on destroy). */
void vmm__rt_forget(struct vmm *vmm, const char *id);
