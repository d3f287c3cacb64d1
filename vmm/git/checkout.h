/* Read-only layers under <state>/layers. A repository's tree at a commit is checked out
 * once into layers/worktree/<commit-id> (libgit2) and shared by every sandbox that starts
 * from that commit, with the shared part of a .git: an index matching the checkout, an
 * object store whose alternate is .git/repo-objects (where the backends bind the user's
 * objects read-only) and empty refs. Blocking: call from the libuv thread pool. */
#pragma once

#include "util/util.h"

/* Resolves repo (a host path) and ref for a new sandbox's workspace:
 *  - a git repository (or a worktree inside one): ref (NULL = HEAD) is resolved to a
 *    commit, whose tree is checked out into layers/worktree/<commit> unless already there;
 *    *ret_lower is that directory and *ret_commit the 40-hex commit id.
 *  - a plain directory (ref must be NULL): *ret_lower is its real path, *ret_commit NULL.
 * Safe against concurrent callers and other warren processes (checkout into a temp dir,
 * then rename). */
int layers_workspace_from_repo(const char *state_dir, const char *repo, const char *ref,
                               char **ret_lower, char **ret_commit, struct wr_error **err);

/* For a sandbox made from repo: *ret_objects is the repository's object directory (of its
 * main repository for a worktree; the backends bind it read-only into /workspace/.git).
 * With ws_upper, a new sandbox also gets its own part of /workspace/.git there: HEAD on
 * refs/heads/<branch> at commit, a config with the repository's user identity (else
 * "warren"), and copies of the repository's info/exclude and shallow files. */
int layers_git_prepare(const char *repo, const char *commit, const char *branch,
                       const char *ws_upper, char **ret_objects, struct wr_error **err);
