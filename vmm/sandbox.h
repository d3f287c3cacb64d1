/* vmm/sandbox.c: what snapshot restore shares with sandbox_create. */
#pragma once

#include "vmm-internal.h"

/* 16 random hex digits (sandbox and snapshot ids). */
int vmm__new_id(char out[17]);
/* Creates a sandbox from a filled-in row (state "creating"; taken over). */
int vmm__create_from_row(struct vmm *vmm, struct store_sandbox *row, vmm_sandbox_cb cb, void *data,
                         struct wr_error **err);
