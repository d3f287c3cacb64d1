/* vmm/reclaim.c: idle VMs inflate their balloon toward the guest's real use; the next
 * operation deflates it first. */
#pragma once

#include "vmm-internal.h"

/* Called from the reaper's timer for each running sandbox. */
void vmm__reclaim_idle(struct vmm *vmm, const struct store_sandbox *row);
/* Deflates the balloon if this process inflated it, then runs cb. */
void vmm__deflate_then(struct vmm *vmm, struct sandbox_rt *rt, const struct store_sandbox *row,
                       void (*cb)(void *data), void *data);
