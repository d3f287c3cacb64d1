/* vmm/images/images.c: images for the rest of the vmm core (the public calls are in
 * vmm.h). */
#pragma once

#include "vmm/vmm-internal.h"

/* The name an image is stored and shown under: "host", or the reference normalized
 * (oci_normalize_ref). Caller frees. */
int vmm__image_name(struct vmm *vmm, const char *image, char **ret, struct wr_error **err);
/* "sandbox 'x'" and "snapshot 'y'" for everything built on image name (NULL-terminated,
 * maybe empty; the caller frees it). */
int vmm__image_users(struct vmm *vmm, const char *name, char ***ret, struct wr_error **err);
/* Appends "template 'x'" to *users for every template whose config has key = value
 * ("from": built on an image; "template": made of a snapshot). */
int vmm__templates_with(struct vmm *vmm, const char *key, const char *value, char ***users,
                        size_t *n, struct wr_error **err);
/* The read-only lowers of a sandbox's root that image contributes, top first: a
 * template's layers, then (recursively) what it was built on, down to the host skeleton,
 * or an OCI image's mount-point skeleton and layers. *ret_base is that last image ("host"
 * or an OCI reference), which decides how the backends mount the root. Both for the
 * caller to free. */
int vmm__image_lowers(struct vmm *vmm, const char *image, char ***ret, char **ret_base,
                      struct wr_error **err);
/* Pulls name unless the state directory has it ("host" always has). Blocking: thread pool.
 * progress (may be NULL) runs on the worker thread. */
int vmm__image_ensure(struct vmm *vmm, const char *name, void (*progress)(void *, const char *),
                      void *data, struct wr_error **err);
/* What an image's config asks of execs: its Env ("K=V", NULL-terminated, maybe empty),
 * its WorkingDir (NULL when unset or not absolute) and its User (NULL when unset or
 * root). All for the caller to free; nothing for "host". */
void vmm__image_exec_config(struct vmm *vmm, const char *name, char ***ret_env, char **ret_workdir,
                            char **ret_user);
/* The unpacked layer directories of a pulled image, top first (NULL-terminated). */
int vmm__image_layers(struct vmm *vmm, const char *name, char ***ret, struct wr_error **err);
