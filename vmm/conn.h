/* vmm/conn.c: this process's record of each sandbox (struct sandbox_rt) and its agent
 * connection. */
#pragma once

#include "vmm-internal.h"

struct sandbox_rt *vmm__rt_get(struct vmm *vmm, const char *id, bool create);
/* Drops this process's record of the sandbox and its connection (on stop and destroy). */
void vmm__rt_forget(struct vmm *vmm, const char *id);
/* Hands cb rt's agent connection, connecting first when needed (timeout_ms 0: the
 * default). cb may run before this returns. Operations go through vmm__with_conn
 * (ready.h), which first makes the sandbox ready for work. */
void vmm__conn_get(struct vmm *vmm, struct sandbox_rt *rt, uint32_t timeout_ms, vmm_conn_cb cb,
                   void *data);
