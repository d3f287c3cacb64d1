/* Root filesystem images for sandboxes. */
#pragma once

#include "util/util.h"

/* Returns in *ret_root_lower (caller frees) the read-only bottom layer of image's root
 * filesystem, creating it under <state_dir>/images on first use.
 *
 * "host" is the only image so far: a skeleton of empty directories (proc, sys, dev, tmp,
 * run, var and the places dpkg and apt keep their state, root, home, workspace, mnt, opt,
 * srv, etc, usr) plus, for /bin, /sbin, /lib, /lib32, /lib64 and /libx32, the host's
 * symlink when the host has one (merged /usr) or an empty directory when it has a real
 * one. The backends mount the host's /usr, /etc, those real directories and dpkg's and
 * apt's state as copy-on-write overlays on top (vmm/backends/hostview.c), masking
 * secrets; /home, /root and the rest of /var start as the skeleton's empty directories.
 *
 * The skeleton is built in a temporary directory and renamed into place, so concurrent
 * callers (two servers) both end up with the same complete directory.
 *
 * Any other image (an OCI image, vmm/images/oci.h) gets the skeleton of the mount points
 * warren needs (proc, sys, dev, tmp, run, workspace), to go on top of its layers. */
int vmm_image_root(const char *state_dir, const char *image, char **ret_root_lower,
                   struct wr_error **err);
