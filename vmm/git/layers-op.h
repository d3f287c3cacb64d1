/* What the git operations on a sandbox (commit-op.c, diff-op.c) share: where its
 * workspace layers are. */
#pragma once

#include "vmm/vmm-internal.h"

/* The sandbox's workspace layers above its checkout, bottom first (the caller frees the
 * vector). */
char **vmm__git_layers_bottom_up(struct vmm *vmm, const struct store_sandbox *row);
/* A stopped sandbox's disks are unmounted after a host reboot until it boots: mount them
 * so that its layers can be read. Blocks the loop for a mount or two, only then (a disk
 * that is mounted costs a stat). */
void vmm__git_disks_ready(struct vmm *vmm, const struct store_sandbox *row);
