/* Read-only layers under <state>/layers. A repository's tree at a commit is checked out
 * once into layers/git/<commit-id> (libgit2) and shared by every sandbox that starts
 * from that commit. Blocking: call from the libuv thread pool. */
#pragma once

#include "util/util.h"

/* Resolves repo (a host path) and ref for a new sandbox's workspace:
 *  - a git repository (or a worktree inside one): ref (NULL = HEAD) is resolved to a
 *    commit, whose tree is checked out into layers/git/<commit> unless already there;
 *    *ret_lower is that directory and *ret_commit the 40-hex commit id.
 *  - a plain directory (ref must be NULL): *ret_lower is its real path, *ret_commit NULL.
 * Safe against concurrent callers and other warren processes (checkout into a temp dir,
 * then rename). */
int layers_workspace_from_repo(const char *state_dir, const char *repo, const char *ref,
                               char **ret_lower, char **ret_commit, struct wr_error **err);
