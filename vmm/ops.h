/* vmm/ops.c: exec and file operations inside a running sandbox (vmm_exec, vmm_read_file,
 * vmm_write_file), and the environment every process started in a sandbox gets. */
#pragma once

#include "vmm-internal.h"

/* The environment of one process started in the sandbox of row: the base, then the
 * image's, the network mode's (the proxy), the sandbox's, then the call's (each may be
 * NULL). A new NULL-terminated array for the caller to free. */
char **vmm__exec_env(const struct store_sandbox *row, const char *const *image_env,
                     const char *const *call_env);
