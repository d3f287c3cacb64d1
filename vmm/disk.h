/* vmm/disk.c: a sandbox's disk, the cap on what it may write. A disk is a sparse file
 * holding an ext4 filesystem (made once per size as a template and copied sparsely),
 * mounted through a loop device in warren's mount namespace. The sandbox's uppers and
 * overlay work directories live on it, so its writes stop with ENOSPC at the disk's size
 * while the host only pays for the blocks written. A snapshot keeps the image file itself
 * as its layer, mounted read-only. Needs root (loop devices); no quota support. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

/* The name of a disk's mount point, beside its image (<dir>/disk.img on <dir>/disk). */
#define VMM_DISK_IMAGE "disk.img"
#define VMM_DISK_MOUNT "disk"

/* True when disks can be made here: root, /dev/loop-control, mkfs.ext4 and ext4 in the
 * kernel. Else false and why in err (may be NULL). */
bool vmm_disk_available(struct wr_error **err);

/* Creates image (a new file; EEXIST when it is there) as an empty ext4 filesystem of mib
 * MiB, a sparse copy of <templates_dir>/ext4-<mib>.img, which is made first when missing.
 * Blocking. */
int vmm_disk_create(const char *templates_dir, const char *image, uint64_t mib,
                    struct wr_error **err);

/* Mounts image on mountpoint (made when missing) through a loop device that goes away
 * with the mount. Nothing happens when something is mounted there already. Serialized
 * against other mounts of the same image by a lock on the image file. Blocking. */
int vmm_disk_mount(const char *image, const char *mountpoint, bool readonly, struct wr_error **err);

/* Unmounts mountpoint (0 when nothing is mounted there). strict: the filesystem must be
 * gone everywhere, its loop device released (the image is about to become a snapshot
 * layer): EBUSY otherwise, with the disk mounted again. Not strict: a copy another
 * mount namespace still holds keeps it until that namespace ends. Blocking. */
int vmm_disk_unmount(const char *mountpoint, bool strict, struct wr_error **err);

/* True when a filesystem other than its parent's is mounted on path. */
bool vmm_disk_is_mounted(const char *path);

/* Bytes in use on the disk mounted on mountpoint, as df counts them. -errno when nothing
 * is mounted there. */
int vmm_disk_used(const char *mountpoint, uint64_t *ret_bytes);

/* In a private mount namespace (a VM's file supervisor, a VMM's network namespace):
 * detaches this namespace's copies of every sandbox and snapshot disk mount, so that a
 * long-lived process of one sandbox does not keep the disks of the others alive. */
void vmm_disk_detach_all(void);

/* One line of /proc/self/mountinfo: true when it is a disk as this module mounts them (ext4
 * from a loop device on a directory named "disk"), with its mount point (unescaped) in
 * *ret_mountpoint (the caller frees it). Exposed for the tests. */
bool vmm_disk_mountinfo_line(const char *line, char **ret_mountpoint);
