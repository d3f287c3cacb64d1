/* vmm/spec.c: which backend runs a sandbox, and the spec it is started from. */
#pragma once

#include "vmm-internal.h"

/* The backend --backend auto picks (DESIGN.md: Cloud Hypervisor, then QEMU with KVM, then
 * the jail; QEMU under TCG only when asked for by name), with why in *ret_reason (the
 * caller frees it), or NULL with why none can run. `warren doctor` reports the same. */
const struct vmm_backend_ops *vmm__backend_auto(char **ret_reason);
/* Every backend, in auto's order of preference, NULL-terminated. */
const struct vmm_backend_ops *const *vmm__backends(void);
/* The backend --backend names ("auto" or NULL: the best one that runs here). */
int vmm__backend_choose(const char *name, const struct vmm_backend_ops **ret,
                        struct wr_error **err);
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
/* Reads <dir>/git-objects (the user's object directory, written when the sandbox was
 * created) into s->git_objects and the spec; NULL when there is none. */
void vmm__spec_load_git_objects(struct spec_storage *s);
/* VM backends: finds the guest kernel and builds (or reuses) the initramfs. Blocking:
 * call from the thread pool. */
int vmm__spec_boot_files(struct vmm *vmm, struct spec_storage *s, struct wr_error **err);

/* The mount point of a snapshot's disk (<state>/layers/snap/<id>/disk, its image beside it
 * as disk.img); the caller frees it. */
char *vmm__snapshot_disk_dir(const struct vmm *vmm, const char *snapshot_id);
/* Mounts what the sandbox's spec stands on: its own disk (made first when create) and,
 * read-only, the disks of the snapshot layers in its chains. Mounts already there stay;
 * after a host reboot this sets them up again. Blocking: call from the thread pool. */
int vmm__spec_disks_ready(struct vmm *vmm, struct spec_storage *s, bool create,
                          struct wr_error **err);
/* Bytes in use on a sandbox's disk (0 without one). Cheap: no spec is built. */
uint64_t vmm__disk_used(const struct vmm *vmm, const struct store_sandbox *row);
/* Creates the sandbox's upper and work directories (on its disk, mounted, when it has one). */
int vmm__spec_make_dirs(const struct spec_storage *s, struct wr_error **err);
