/* libgit2 helpers shared by the checkout layers (checkout.c) and sandbox commits
 * (commit.c). Blocking: thread pool only. */
#pragma once

#include <git2.h>

#include "util/util.h"

/* Initialises libgit2 once per process (owner validation off: see checkout.c). */
int vmm__git_init(struct wr_error **err);
/* Fills err with "<context>: <libgit2's last message>" for a libgit2 error code and
 * returns the negative errno-style status. */
int vmm__git_fail(int code, struct wr_error **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Initialises libgit2 and opens the repository a sandbox was made from: 0, or ENOENT when
 * path is no longer a repository. */
int vmm__git_open_existing(const char *path, git_repository **ret, struct wr_error **err);
/* Opens the non-bare repository holding path. Returns 1 and *ret (caller frees), 0 when
 * path is in no repository, or a negative value with err set. */
int vmm__git_open_repository(const char *path, git_repository **ret, struct wr_error **err);

struct gitcommit_request;
/* The tree of a sandbox's workspace (vmm/git/commit.c): the start commit's tree
 * (req->base_commit) with req->uppers applied bottom up, limited to req->paths; only
 * req->base_commit, uppers and paths are read. Its blobs and trees are written to repo's
 * object database: give it an in-memory backend first to leave the repository alone. */
int vmm__git_workspace_tree(git_repository *repo, const struct gitcommit_request *req,
                            git_oid *ret_tree, struct wr_error **err);
