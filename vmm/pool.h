/* vmm/pool.c: warm pools. vmm_sandbox_create (vmm.h) lives there: it serves a create from
 * a pool when one fits, else creates afresh (vmm/sandbox.c). */
#pragma once

#include "vmm-internal.h"

/* Reads the --pool options ("IMAGE=N"), adopts the pools' sandboxes left by an earlier
 * warren and starts filling. EINVAL for a malformed option; ENOTSUP/EPERM when the
 * backend cannot keep pools here. */
int vmm__pools_open(struct vmm *vmm, const char *const *specs, struct wr_error **err);
void vmm__pools_close(struct vmm *vmm);
/* The reaper's tick: liveness, memory reclaim and refill of every pool. */
void vmm__pools_tick(struct vmm *vmm);
