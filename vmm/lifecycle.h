/* vmm/lifecycle.c: booting a sandbox's machine, pausing and resuming it, stopping it. */
#pragma once

#include "vmm-internal.h"

/* Starts row's machine (spec prepared: directories made, boot files found), waits for its
 * agent and marks the row running (row->pid and row->state updated). On failure the
 * machine is stopped and the row marked failed, kept with its files; cb gets the error.
 * row and spec must stay alive until cb. */
void vmm__boot(struct vmm *vmm, struct store_sandbox *row, struct spec_storage *spec,
               vmm_done_cb cb, void *data);
/* Thaws a paused sandbox (row->state "paused") and marks it running, then runs cb. */
void vmm__resume_then(struct vmm *vmm, const struct store_sandbox *row, vmm_done_cb cb, void *data);
/* Stops a sandbox's machine (files kept), marking it stopped with reason. */
void vmm__stop_idle(struct vmm *vmm, const struct store_sandbox *row, const char *reason);
