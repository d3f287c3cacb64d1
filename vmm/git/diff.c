/* Sandbox workspace -> diff against its start commit (see diff.h). */
#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include <stdio.h>
#include <string.h>

#include "commit.h"
#include "diff.h"
#include "git-internal.h"

/* Above the repository's own backends (loose 1, packed 2): new objects go here. */
#define MEMPACK_PRIORITY 1000

void gitdiff_result_clear(struct gitdiff_result *r)
{
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].path);
        free(r->files[i].old_path);
        free(r->files[i].patch);
    }
    free(r->files);
    memset(r, 0, sizeof(*r));
}

static const char *status_name(git_delta_t s)
{
    switch (s) {
    case GIT_DELTA_ADDED:
    case GIT_DELTA_COPIED:
        return "added";
    case GIT_DELTA_DELETED:
        return "deleted";
    case GIT_DELTA_RENAMED:
        return "renamed";
    case GIT_DELTA_TYPECHANGE:
        return "typechange";
    default:
        return "modified";
    }
}

/* The patch text of one file, cut at a line end to fit *budget (which it uses up). */
static void fill_patch(struct gitdiff_file *f, git_patch *patch, size_t *budget)
{
    git_buf buf = {0};
    if (git_patch_to_buf(&buf, patch) < 0) {
        git_error_clear();
        f->patch = wr_strdup("");
        return;
    }
    size_t n = buf.size;
    if (n > *budget) {
        n = *budget;
        while (n > 0 && buf.ptr[n - 1] != '\n')
            n--;
        f->truncated = true;
    }
    f->patch = wr_strndup(buf.ptr, n);
    *budget -= n;
    git_buf_dispose(&buf);
}

static int describe(git_diff *diff, size_t i, struct gitdiff_file *f, size_t *budget,
                    struct wr_error **err)
{
    git_patch *patch = NULL;
    int code = git_patch_from_diff(&patch, diff, i);
    if (code < 0)
        return vmm__git_fail(code, err, "diffing");
    const git_diff_delta *d = git_patch_get_delta(patch);
    f->status = status_name(d->status);
    const char *path = d->new_file.path ? d->new_file.path : d->old_file.path;
    f->path = wr_strdup(path);
    if (d->status == GIT_DELTA_RENAMED && d->old_file.path)
        f->old_path = wr_strdup(d->old_file.path);
    f->binary = (d->flags & GIT_DIFF_FLAG_BINARY) != 0;
    git_patch_line_stats(NULL, &f->insertions, &f->deletions, patch);
    fill_patch(f, patch, budget);
    git_patch_free(patch);
    return 0;
}

static int diff_trees(git_repository *repo, const struct gitdiff_request *req, const git_oid *tree_id,
                      struct gitdiff_result *ret, struct wr_error **err)
{
    git_oid base;
    git_commit *commit = NULL;
    git_tree *old = NULL, *new_tree = NULL;
    git_diff *diff = NULL;
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    opts.context_lines = req->context_lines;
    int code = git_oid_fromstr(&base, req->base_commit);
    if (code == 0)
        code = git_commit_lookup(&commit, repo, &base);
    if (code == 0)
        code = git_commit_tree(&old, commit);
    if (code == 0)
        code = git_tree_lookup(&new_tree, repo, tree_id);
    if (code == 0)
        code = git_diff_tree_to_tree(&diff, repo, old, new_tree, &opts);
    if (code == 0)
        code = git_diff_find_similar(diff, NULL);
    int r = code < 0 ? vmm__git_fail(code, err, "comparing with %s", req->base_commit) : 0;
    size_t n = r == 0 ? git_diff_num_deltas(diff) : 0;
    ret->truncated = n > req->max_files;
    n = WR_MIN(n, req->max_files);
    ret->files = n ? wr_calloc(n, sizeof(*ret->files)) : NULL;
    size_t budget = req->max_bytes;
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = describe(diff, i, &ret->files[i], &budget, err);
        if (r == 0) {
            ret->n_files++;
            ret->truncated |= ret->files[i].truncated;
        }
    }
    git_diff_free(diff);
    git_tree_free(new_tree);
    git_tree_free(old);
    git_commit_free(commit);
    return r;
}

int gitdiff_create(const struct gitdiff_request *req, struct gitdiff_result *ret,
                   struct wr_error **err)
{
    memset(ret, 0, sizeof(*ret));
    git_repository *repo = NULL;
    git_odb *odb = NULL;
    git_odb_backend *mempack = NULL;
    int r = vmm__git_open_existing(req->repo, &repo, err);
    int code = 0;
    if (r == 0 && (code = git_repository_odb(&odb, repo)) == 0 &&
        (code = git_mempack_new(&mempack)) == 0 &&
        (code = git_odb_add_backend(odb, mempack, MEMPACK_PRIORITY)) < 0) {
        mempack->free(mempack); /* not added: still ours */
    }
    if (r == 0 && code < 0)
        r = vmm__git_fail(code, err, "opening %s", req->repo);
    struct gitcommit_request tree_req = {
        .base_commit = req->base_commit, .uppers = req->uppers, .paths = req->paths};
    git_oid tree;
    if (r == 0)
        r = vmm__git_workspace_tree(repo, &tree_req, &tree, err);
    if (r == 0)
        r = diff_trees(repo, req, &tree, ret, err);
    if (r == 0)
        snprintf(ret->base, sizeof(ret->base), "%s", req->base_commit);
    else
        gitdiff_result_clear(ret);
    git_odb_free(odb); /* the mempack goes with the last reference to the odb */
    git_repository_free(repo);
    return r;
}
