/* Mount helpers for assembling a sandbox's root: see hostview.c. Every function runs in
 * the private mount namespace of a jailer or vmfs process and returns 0 or a negative
 * value with err set. */
#pragma once

#include <stdbool.h>

#include "backend-internal.h"
#include "util/util.h"

int vmm_mount(const char *source, const char *target, const char *fstype, unsigned long flags,
              const char *data, struct wr_error **err);
/* Flags a remount must keep: in a user namespace the kernel refuses to clear flags that
 * the original mount had (they are locked). */
unsigned long vmm_mount_locked_flags(const char *path);
/* Binds source on target (not recursively) read-only, with `extra` flags. */
int vmm_bind_readonly(const char *source, const char *target, unsigned long extra,
                      struct wr_error **err);
/* Hides a file: a read-only, nodev bind of /dev/null over it. */
int vmm_mask_file(const char *target, struct wr_error **err);
/* *ret = rootfs/name, created when missing; anything but a real directory is refused so a
 * symlink planted in a writable upper cannot redirect a mount. */
int vmm_root_dir(const char *rootfs, const char *name, char **ret, struct wr_error **err);
/* overlay of lowers (top first) under upper; userxattr in a user namespace. */
int vmm_mount_overlay(const char *const *lowers, const char *upper, const char *work, bool userns,
                      const char *target, struct wr_error **err);
/* The user's git objects, read-only, on <workspace>/.git/repo-objects (the workspace
 * overlay mounted there) when spec->git_objects is set, that directory exists and the
 * path to it holds no symlink. */
int vmm_mount_git_objects(const struct vmm_sandbox_spec *spec, const char *workspace,
                          struct wr_error **err);
/* The sandbox's root on rootfs: an overlay of spec->root_lowers (its snapshot layers, then
 * the image) under its upper. For the host image, the host's /usr, /etc, real top-level
 * library directories and dpkg's and apt's state under /var are each an overlay too, with
 * the host's directory as the lowest layer and the sandbox's upper (and snapshot layers)
 * above: every write lands in the sandbox, the host is never written. /etc's secrets
 * (shadow files, SSH host keys, ssl/private) are masked, and the sandbox gets its own
 * /etc/hostname and /etc/hosts. userns: mounting in a user namespace (overlayfs'
 * userxattr). */
int vmm_mount_root(const struct vmm_sandbox_spec *spec, const char *rootfs, bool userns,
                   struct wr_error **err);
/* A sandbox taken from a warm pool gets its name: /etc/hostname, and the 127.0.1.1 line of
 * /etc/hosts (its other lines kept), rewritten through the running sandbox's root at root
 * (for example /proc/<pid>/root), symlinks resolved inside it. Host image only, like
 * vmm_mount_root's identity files. */
int vmm_rename_identity(const struct vmm_sandbox_spec *spec, const char *root,
                        struct wr_error **err);
