/* Turning a sandbox's workspace into a git commit in the user's repository. The
 * workspace is the checkout of the sandbox's start commit (a read-only layer) under its
 * snapshot layers and its own overlay upper, so the commit is built from those alone: the
 * start commit's tree, then for each layer bottom up every file it holds added and every
 * overlayfs whiteout removed. The cost grows with the changes, not with the repository. The user's
 * HEAD, index and working tree are never touched: objects go into the object database and only
 * refs/heads/<branch> moves. Blocking (libgit2): call from the thread pool. */
#pragma once

#include <stddef.h>

#include "util/util.h"

struct gitcommit_request {
    const char *repo;        /* the user's repository (host path) */
    const char *base_commit; /* 40-hex commit the sandbox started from */
    /* The layers over the start commit's checkout, bottom first: the sandbox's snapshot
     * layers, then its own workspace upper. */
    const char *const *uppers;
    const char *branch; /* branch name without refs/heads/ */
    const char *message;
    const char *author_name;  /* NULL: the repository's user.name, else "warren" */
    const char *author_email; /* NULL: the repository's user.email, else warren@localhost */
    const char *const *paths; /* NULL: everything; else only changes under these paths */
};

struct gitcommit_result {
    char commit[41];
    char parent[41];
    size_t files_changed, insertions, deletions;
};

int gitcommit_create(const struct gitcommit_request *req, struct gitcommit_result *ret,
                     struct wr_error **err);

/* A sandbox whose /workspace is a git working tree commits inside (vmm/git/commit-op.c);
 * its history then goes to the user's repository: every commit and object reachable from
 * the sandbox's HEAD that the repository lacks is copied from the sandbox's object
 * directories, and refs/heads/<branch> moves to HEAD, forward only (ENODATA when it is
 * there already, EEXIST when the branch has commits the sandbox lacks). HEAD, index and
 * working tree of the user's repository are untouched. */
struct gitexport_request {
    const char *repo;               /* the user's repository (host path) */
    const char *base;               /* 40-hex commit the sandbox started from */
    const char *head;               /* 40-hex: the sandbox's HEAD after its commit */
    const char *const *object_dirs; /* the sandbox's .git/objects in each workspace layer */
    const char *branch;             /* without refs/heads/ */
};

int gitcommit_export(const struct gitexport_request *req, struct gitcommit_result *ret,
                     struct wr_error **err);
