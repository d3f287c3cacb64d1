/* vmm/sandbox.c: creating a sandbox from a row (sandbox_create, snapshot restore, warm
 * pools), list and destroy. */
#pragma once

#include "vmm-internal.h"

/* 16 random hex digits (sandbox and snapshot ids). */
int vmm__new_id(char out[17]);
/* Creates a sandbox from a filled-in row (state "creating"; taken over). */
int vmm__create_from_row(struct vmm *vmm, struct store_sandbox *row, vmm_sandbox_cb cb, void *data,
                         struct wr_error **err);
/* The row a create request asks for (state "creating", a new id, defaults filled in);
 * EINVAL for a bad name or repo path. Clear *row with store_sandbox_clear either way. */
int vmm__row_for_request(struct vmm *vmm, const struct vmm_create_request *req,
                         struct store_sandbox *row, struct wr_error **err);
/* /workspace/.git of a sandbox made from a repository (row->commit_id set): the user's
 * object directory written to <dir>/git-objects and loaded into spec, and, unless the
 * sandbox is a fork that inherits its parent's, its own HEAD (branch warren/<name>),
 * config and index seeded into spec->ws_upper. Blocking. */
int vmm__prepare_git(const struct store_sandbox *row, struct spec_storage *spec,
                     struct wr_error **err);
