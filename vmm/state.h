/* vmm/state.c: liveness of the sandboxes the store lists as running. */
#pragma once

#include "vmm-internal.h"

/* A row that says running but whose process is gone becomes stopped (or failed, for a
 * VM), in the store too. Returns 1 when it changed the row. */
int vmm__refresh_state(struct vmm *vmm, struct store_sandbox *row);

/* Looks a sandbox up and checks that it is running or paused (a paused one is resumed by
 * vmm__with_conn), marking it stopped when its processes are gone. On success *ret is
 * filled (clear it with store_sandbox_clear). */
int vmm__sandbox_running(struct vmm *vmm, const char *id_or_name, struct store_sandbox *ret,
                         struct wr_error **err);
