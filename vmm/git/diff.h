/* A sandbox's changes as a diff (sandbox_diff): the tree its workspace would commit (the
 * start commit's tree with its layers applied, vmm/git/commit.c) against the start
 * commit, with libgit2, renames found. Nothing is written to the user's repository: the
 * workspace's blobs and trees go to an in-memory object store. Blocking (libgit2): call
 * from the thread pool. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

struct gitdiff_request {
    const char *repo;          /* the user's repository (host path) */
    const char *base_commit;   /* 40-hex commit the sandbox started from */
    const char *const *uppers; /* the workspace's layers over the checkout, bottom first */
    const char *const *paths;  /* NULL: everything; else only changes under these paths */
    unsigned context_lines;
    size_t max_bytes; /* patch text in all; a patch past what is left is cut at a line */
    size_t max_files; /* files listed at most */
};

struct gitdiff_file {
    char *path, *old_path; /* old_path: a rename's source, else NULL */
    const char *status;    /* "added", "modified", "deleted", "renamed", "typechange" */
    bool binary, truncated;
    size_t insertions, deletions;
    char *patch; /* unified diff text (git's "Binary files ... differ" for binary files) */
};

struct gitdiff_result {
    char base[41];
    struct gitdiff_file *files;
    size_t n_files;
    bool truncated; /* files left out, or a patch cut */
};

int gitdiff_create(const struct gitdiff_request *req, struct gitdiff_result *ret,
                   struct wr_error **err);
void gitdiff_result_clear(struct gitdiff_result *r);
