/* Attaching a workspace to a sandbox that is already running: how a warm pool's sandbox
 * (vmm/pool.c) gets the repository of the create that claims it. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "backend-internal.h"
#include "util/util.h"

/* Mounts spec's workspace (the overlay of spec->ws_lowers under ws_upper, and the user's
 * git objects read-only on its .git/repo-objects) on target in the mount namespace of
 * process ns_pid. under_share: target is a directory to create inside a VM's workspace
 * share, and an empty workspace (no lowers) is bound there too; else target is the jail's
 * /workspace, which already holds an empty workspace. With set_hostname, also sets
 * spec->hostname in ns_pid's UTS namespace. Blocking: forks a child that joins the
 * namespaces. Needs CAP_SYS_ADMIN in the host. */
int vmm_attach_workspace(const struct vmm_sandbox_spec *spec, pid_t ns_pid, const char *target,
                         bool under_share, bool set_hostname, struct wr_error **err);
