/* vmm/ready.c: the door every operation inside a sandbox goes through. */
#pragma once

#include "vmm-internal.h"

/* Hands cb the sandbox's agent connection once the sandbox is ready for work: a paused
 * sandbox is resumed, a balloon inflated while it was idle is deflated, and the agent is
 * connected when needed. Marks the sandbox as used for a reclaim under way. cb may run
 * before this returns. */
void vmm__with_conn(struct vmm *vmm, const struct store_sandbox *row, uint32_t timeout_ms,
                    vmm_conn_cb cb, void *data);
