/* Sandbox workspace -> git commit (see gitcommit.h). */
#include <dirent.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/repository.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "commit.h"
#include "git-internal.h"

#define MAX_DEPTH 256

struct builder {
    git_repository *repo;
    git_index *index; /* in memory: never the user's index */
    const struct gitcommit_request *req;
    const char *upper; /* the layer being walked */
    git_oid *written;  /* objects created, to hand their files to the repository's owner */
    size_t n_written, cap_written;
};

static void note_written(struct builder *b, const git_oid *oid)
{
    if (b->n_written == b->cap_written) {
        b->cap_written = b->cap_written ? 2 * b->cap_written : 64;
        b->written = wr_realloc(b->written, b->cap_written * sizeof(git_oid));
    }
    b->written[b->n_written++] = *oid;
}

/* overlayfs marks a deleted file with a 0/0 character device ("whiteout"). */
static bool is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && major(st->st_rdev) == 0 && minor(st->st_rdev) == 0;
}

/* A directory that replaced a lower one hides everything below it ("opaque"). */
static bool is_opaque(int dirfd)
{
    char v[2];
    return fgetxattr(dirfd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

static bool path_selected(const struct gitcommit_request *req, const char *path)
{
    if (!req->paths || !req->paths[0])
        return true;
    for (size_t i = 0; req->paths[i]; i++) {
        const char *p = req->paths[i];
        while (*p == '/')
            p++;
        size_t n = strlen(p);
        while (n > 0 && p[n - 1] == '/')
            n--;
        if (n == 0 || (!strncmp(path, p, n) && (path[n] == 0 || path[n] == '/')))
            return true;
    }
    return false;
}

static int remove_path(struct builder *b, const char *path)
{
    /* A file, or everything below a directory of that name. */
    git_index_remove_bypath(b->index, path);
    git_index_remove_directory(b->index, path, 0);
    return 0;
}

static int add_blob(struct builder *b, int dirfd, const char *name, const char *path,
                    const struct stat *st, struct wr_error **err)
{
    git_oid oid;
    int code;
    uint32_t mode;
    if (S_ISLNK(st->st_mode)) {
        char target[4096];
        ssize_t n = readlinkat(dirfd, name, target, sizeof(target));
        if (n < 0)
            return wr_error_set_errno(err, errno, "reading link %s", path);
        code = git_blob_create_from_buffer(&oid, b->repo, target, (size_t)n);
        mode = GIT_FILEMODE_LINK;
    } else {
        _cleanup_free_ char *full = wr_asprintf("%s/%s", b->upper, path);
        code = git_blob_create_from_disk(&oid, b->repo, full);
        mode = (st->st_mode & 0111) ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
    }
    if (code < 0)
        return vmm__git_fail(code, err, "storing %s", path);
    note_written(b, &oid);
    git_index_entry e = {.mode = mode, .id = oid, .path = path};
    code = git_index_add(b->index, &e);
    return code < 0 ? vmm__git_fail(code, err, "adding %s", path) : 0;
}

/* A file the sandbox created that the repository's .gitignore rules ignore stays out. */
static bool ignored_new_file(struct builder *b, const char *path)
{
    if (git_index_get_bypath(b->index, path, 0))
        return false;
    int ignored = 0;
    return git_ignore_path_is_ignored(&ignored, b->repo, path) == 0 && ignored;
}

static int walk(struct builder *b, int fd, const char *prefix, int depth, struct wr_error **err);

static int visit(struct builder *b, int dirfd, const char *name, const char *prefix, int depth,
                 struct wr_error **err)
{
    _cleanup_free_ char *path = prefix[0] ? wr_asprintf("%s/%s", prefix, name) : wr_strdup(name);
    struct stat st;
    if (!strcmp(name, ".git") || !path_selected(b->req, path))
        return 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return wr_error_set_errno(err, errno, "reading %s", path);
    if (is_whiteout(&st))
        return remove_path(b, path);
    if (S_ISDIR(st.st_mode)) {
        int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            return wr_error_set_errno(err, errno, "opening %s", path);
        git_index_remove_bypath(b->index, path); /* a file replaced by a directory */
        if (is_opaque(sub))
            git_index_remove_directory(b->index, path, 0);
        return walk(b, sub, path, depth + 1, err);
    }
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return 0; /* sockets, fifos, devices: git has no place for them */
    if (ignored_new_file(b, path))
        return 0;
    remove_path(b, path); /* a directory replaced by a file */
    return add_blob(b, dirfd, name, path, &st, err);
}

/* Walks one directory of the upper; takes fd over. */
static int walk(struct builder *b, int fd, const char *prefix, int depth, struct wr_error **err)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return wr_error_set_errno(err, errno, "reading %s", prefix[0] ? prefix : "/workspace");
    }
    if (depth > MAX_DEPTH) {
        closedir(d);
        return wr_error_set(err, ELOOP, "%s: directories nested too deeply", prefix);
    }
    int r = 0;
    struct dirent *de;
    while (r == 0 && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            r = visit(b, dirfd(d), de->d_name, prefix, depth, err);
    closedir(d);
    return r;
}

static int signature(git_repository *repo, const struct gitcommit_request *req, git_signature **ret,
                     struct wr_error **err)
{
    git_signature *def = NULL;
    if (git_signature_default(&def, repo) < 0)
        git_error_clear();
    const char *name = req->author_name ? req->author_name : def ? def->name : "warren";
    const char *email = req->author_email ? req->author_email
                        : def             ? def->email
                                          : "warren@localhost";
    int code = git_signature_now(ret, name, email);
    git_signature_free(def);
    return code < 0 ? vmm__git_fail(code, err, "author '%s <%s>'", name, email) : 0;
}

/* The branch's current commit if it exists, else the sandbox's start commit. */
static int find_parent(git_repository *repo, const char *ref, const char *base, git_commit **ret,
                       struct wr_error **err)
{
    git_oid oid;
    int code = git_reference_name_to_id(&oid, repo, ref);
    if (code == GIT_ENOTFOUND) {
        git_error_clear();
        code = git_oid_fromstr(&oid, base);
    }
    if (code == 0)
        code = git_commit_lookup(ret, repo, &oid);
    return code < 0 ? vmm__git_fail(code, err, "finding the parent commit of %s", ref) : 0;
}

static int build_tree(struct builder *b, git_oid *ret_tree, struct wr_error **err)
{
    git_oid base;
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    int code = git_oid_fromstr(&base, b->req->base_commit);
    if (code == 0)
        code = git_commit_lookup(&commit, b->repo, &base);
    if (code == 0)
        code = git_commit_tree(&tree, commit);
    if (code == 0)
        code = git_index_new(&b->index);
    if (code == 0)
        code = git_index_read_tree(b->index, tree);
    git_tree_free(tree);
    git_commit_free(commit);
    if (code < 0)
        return vmm__git_fail(code, err, "reading the start commit %s", b->req->base_commit);
    for (size_t i = 0; b->req->uppers[i]; i++) {
        b->upper = b->req->uppers[i];
        int dirfd = open(b->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
            return wr_error_set_errno(err, errno, "opening %s", b->upper);
        if (walk(b, dirfd, "", 0, err) < 0)
            return -(*err)->status;
    }
    code = git_index_write_tree_to(ret_tree, b->index, b->repo);
    return code < 0 ? vmm__git_fail(code, err, "writing the tree") : 0;
}

static int diff_stats(git_repository *repo, git_tree *old, git_tree *new_tree,
                      struct gitcommit_result *ret)
{
    git_diff *diff = NULL;
    git_diff_stats *stats = NULL;
    int code = git_diff_tree_to_tree(&diff, repo, old, new_tree, NULL);
    if (code == 0)
        code = git_diff_find_similar(diff, NULL);
    if (code == 0)
        code = git_diff_get_stats(&stats, diff);
    if (code == 0) {
        ret->files_changed = git_diff_stats_files_changed(stats);
        ret->insertions = git_diff_stats_insertions(stats);
        ret->deletions = git_diff_stats_deletions(stats);
    }
    git_diff_stats_free(stats);
    git_diff_free(diff);
    return code;
}

/* warren runs as root; the user's repository is theirs. Objects and refs written here
 * are handed to the owner of .git so that their own git keeps working on them. */
static void give_to_owner(struct builder *b, const char *ref)
{
    const char *gitdir = git_repository_path(b->repo);
    struct stat st;
    if (geteuid() != 0 || stat(gitdir, &st) < 0 || st.st_uid == 0)
        return;
    for (size_t i = 0; i < b->n_written; i++) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof(hex), &b->written[i]);
        _cleanup_free_ char *dir = wr_asprintf("%sobjects/%.2s", gitdir, hex);
        _cleanup_free_ char *file = wr_asprintf("%s/%s", dir, hex + 2);
        (void)!lchown(dir, st.st_uid, st.st_gid);
        (void)!lchown(file, st.st_uid, st.st_gid);
    }
    /* refs/heads/warren/<name> and its reflog, directories included. */
    const char *roots[] = {"", "logs/"};
    for (size_t r = 0; r < WR_ARRAY_SIZE(roots); r++) {
        _cleanup_free_ char *path = wr_asprintf("%s%s%s", gitdir, roots[r], ref);
        for (char *slash; strlen(path) > strlen(gitdir) + strlen(roots[r]) + 5;) {
            (void)!lchown(path, st.st_uid, st.st_gid);
            if (!(slash = strrchr(path, '/')))
                break;
            *slash = 0;
        }
    }
}

static int commit_tree(struct builder *b, const git_oid *tree_oid, struct gitcommit_result *ret,
                       struct wr_error **err)
{
    _cleanup_free_ char *ref = wr_asprintf("refs/heads/%s", b->req->branch);
    git_commit *parent = NULL;
    git_tree *tree = NULL, *parent_tree = NULL;
    git_signature *sig = NULL;
    git_oid oid;
    int r = find_parent(b->repo, ref, b->req->base_commit, &parent, err);
    if (r == 0 && git_oid_equal(git_commit_tree_id(parent), tree_oid))
        r = wr_error_set(err, ENODATA, "nothing to commit: the workspace matches %s",
                         git_oid_tostr_s(git_commit_id(parent)));
    if (r == 0)
        r = signature(b->repo, b->req, &sig, err);
    int code = 0;
    if (r == 0 && (code = git_tree_lookup(&tree, b->repo, tree_oid)) == 0)
        code = git_commit_create(&oid, b->repo, ref, sig, sig, NULL, b->req->message, tree, 1,
                                 (const git_commit **)&parent);
    if (r == 0 && code < 0)
        r = vmm__git_fail(code, err, "committing to %s", ref);
    if (r == 0) {
        note_written(b, &oid);
        git_oid_tostr(ret->commit, sizeof(ret->commit), &oid);
        git_oid_tostr(ret->parent, sizeof(ret->parent), git_commit_id(parent));
        if (git_commit_tree(&parent_tree, parent) == 0)
            diff_stats(b->repo, parent_tree, tree, ret);
        give_to_owner(b, ref);
    }
    git_tree_free(parent_tree);
    git_tree_free(tree);
    git_signature_free(sig);
    git_commit_free(parent);
    return r;
}

int vmm__git_workspace_tree(git_repository *repo, const struct gitcommit_request *req,
                            git_oid *ret_tree, struct wr_error **err)
{
    struct builder b = {.repo = repo, .req = req};
    int r = build_tree(&b, ret_tree, err);
    git_index_free(b.index);
    free(b.written);
    return r < 0 ? r : 0;
}

int gitcommit_create(const struct gitcommit_request *req, struct gitcommit_result *ret,
                     struct wr_error **err)
{
    _cleanup_free_ char *ref = wr_asprintf("refs/heads/%s", req->branch);
    if (vmm__git_init(err) < 0)
        return -(*err)->status;
    if (!git_reference_is_valid_name(ref))
        return wr_error_set(err, EINVAL, "'%s' is not a valid branch name", req->branch);
    struct builder b = {.req = req};
    int r = vmm__git_open_existing(req->repo, &b.repo, err);
    memset(ret, 0, sizeof(*ret));
    git_oid tree;
    if (r >= 0)
        r = build_tree(&b, &tree, err);
    if (r >= 0)
        r = commit_tree(&b, &tree, ret, err);
    git_index_free(b.index);
    git_repository_free(b.repo);
    free(b.written);
    return r < 0 ? r : 0;
}

/* ---- exporting the sandbox's own history ---------------------------------------------- */

struct exporter {
    struct builder b;  /* repo: the user's; written: what was copied, for give_to_owner */
    git_odb *user_odb; /* the user's object database alone */
    git_odb *all;      /* the user's objects and the sandbox's */
};

static int copy_object(struct exporter *x, const git_oid *id, struct wr_error **err)
{
    if (git_odb_exists(x->user_odb, id))
        return 0;
    git_odb_object *obj = NULL;
    git_oid written;
    int code = git_odb_read(&obj, x->all, id);
    if (code == 0)
        code = git_odb_write(&written, x->user_odb, git_odb_object_data(obj),
                             git_odb_object_size(obj), git_odb_object_type(obj));
    git_odb_object_free(obj);
    if (code < 0)
        return vmm__git_fail(code, err, "copying object %s", git_oid_tostr_s(id));
    note_written(&x->b, id);
    return 1;
}

/* A tree and everything below it that the user's repository lacks. A tree it has comes
 * with its whole subtree (git never stores one without the other). */
static int copy_tree(struct exporter *x, const git_oid *id, int depth, struct wr_error **err)
{
    if (depth > MAX_DEPTH)
        return wr_error_set(err, ELOOP, "a tree nested too deeply");
    int r = copy_object(x, id, err);
    if (r <= 0)
        return r;
    git_tree *tree = NULL;
    int code = git_tree_lookup(&tree, x->b.repo, id);
    if (code < 0)
        return vmm__git_fail(code, err, "reading tree %s", git_oid_tostr_s(id));
    for (size_t i = 0; r >= 0 && i < git_tree_entrycount(tree); i++) {
        const git_tree_entry *e = git_tree_entry_byindex(tree, i);
        git_object_t type = git_tree_entry_type(e);
        if (type == GIT_OBJECT_TREE)
            r = copy_tree(x, git_tree_entry_id(e), depth + 1, err);
        else if (type == GIT_OBJECT_BLOB)
            r = copy_object(x, git_tree_entry_id(e), err);
    }
    git_tree_free(tree);
    return r < 0 ? r : 0;
}

/* Every commit reachable from head that the user's repository lacks, with its tree: a
 * commit it has brings its whole history. */
static int copy_history(struct exporter *x, const git_oid *head, struct wr_error **err)
{
    size_t n = 0, cap = 16;
    git_oid *pending = wr_malloc(cap * sizeof(git_oid));
    pending[n++] = *head;
    int r = 0;
    while (r >= 0 && n > 0) {
        git_oid id = pending[--n];
        if (git_odb_exists(x->user_odb, &id))
            continue;
        git_commit *c = NULL;
        int code = git_commit_lookup(&c, x->b.repo, &id);
        if (code < 0) {
            r = vmm__git_fail(code, err, "reading the sandbox's commit %s", git_oid_tostr_s(&id));
            break;
        }
        r = copy_tree(x, git_commit_tree_id(c), 0, err);
        if (r >= 0)
            r = copy_object(x, &id, err);
        for (unsigned i = 0; r >= 0 && i < git_commit_parentcount(c); i++) {
            if (n == cap)
                pending = wr_realloc(pending, (cap *= 2) * sizeof(git_oid));
            pending[n++] = *git_commit_parent_id(c, i);
        }
        git_commit_free(c);
    }
    free(pending);
    return r < 0 ? r : 0;
}

/* The user's branch moves to head only forward: commits it has that the sandbox lacks are
 * never dropped. */
static int check_fast_forward(git_repository *repo, const char *branch, const git_oid *current,
                              const git_oid *head, struct wr_error **err)
{
    if (git_oid_equal(current, head))
        return wr_error_set(err, ENODATA,
                            "nothing to commit: %s is already at the sandbox's HEAD %s", branch,
                            git_oid_tostr_s(head));
    int code = git_graph_descendant_of(repo, head, current);
    if (code == 1)
        return 0;
    if (code == 0)
        return wr_error_set(err, EEXIST,
                            "branch %s of the repository has commits the sandbox's history does "
                            "not (it is at %s); commit to another branch (branch: ...), or bring "
                            "them into the sandbox first",
                            branch, git_oid_tostr_s(current));
    return vmm__git_fail(code, err, "comparing %s with the sandbox's HEAD", branch);
}

static int open_exporter(struct exporter *x, const struct gitexport_request *req,
                         struct wr_error **err)
{
    int r = vmm__git_open_existing(req->repo, &x->b.repo, err);
    if (r < 0)
        return r;
    int code = git_repository_odb(&x->user_odb, x->b.repo);
    _cleanup_free_ char *objects = wr_asprintf("%sobjects", git_repository_commondir(x->b.repo));
    if (code == 0)
        code = git_odb_new(&x->all);
    if (code == 0)
        code = git_odb_add_disk_alternate(x->all, objects);
    for (size_t i = 0; code == 0 && req->object_dirs[i]; i++) {
        struct stat st;
        if (stat(req->object_dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
            code = git_odb_add_disk_alternate(x->all, req->object_dirs[i]);
    }
    /* Lookups below read through both stores; copies go to the user's alone. */
    if (code == 0)
        code = git_repository_set_odb(x->b.repo, x->all);
    return code < 0 ? vmm__git_fail(code, err, "opening the sandbox's objects") : 0;
}

static void fill_result(struct exporter *x, const git_oid *head, const git_oid *old,
                        struct gitcommit_result *ret)
{
    git_commit *c = NULL, *o = NULL;
    git_tree *t = NULL, *ot = NULL;
    git_oid_tostr(ret->commit, sizeof(ret->commit), head);
    if (git_commit_lookup(&c, x->b.repo, head) == 0 && git_commit_parentcount(c) > 0)
        git_oid_tostr(ret->parent, sizeof(ret->parent), git_commit_parent_id(c, 0));
    if (c && git_commit_tree(&t, c) == 0 && git_commit_lookup(&o, x->b.repo, old) == 0 &&
        git_commit_tree(&ot, o) == 0)
        diff_stats(x->b.repo, ot, t, ret);
    git_error_clear();
    git_tree_free(t);
    git_tree_free(ot);
    git_commit_free(c);
    git_commit_free(o);
}

int gitcommit_export(const struct gitexport_request *req, struct gitcommit_result *ret,
                     struct wr_error **err)
{
    _cleanup_free_ char *ref = wr_asprintf("refs/heads/%s", req->branch);
    memset(ret, 0, sizeof(*ret));
    if (vmm__git_init(err) < 0)
        return -(*err)->status;
    if (!git_reference_is_valid_name(ref))
        return wr_error_set(err, EINVAL, "'%s' is not a valid branch name", req->branch);
    struct exporter x = {0};
    git_oid head, base, current;
    int r = open_exporter(&x, req, err);
    if (r >= 0 && (git_oid_fromstr(&head, req->head) < 0 || git_oid_fromstr(&base, req->base) < 0))
        r = wr_error_set(err, EINVAL, "the sandbox's HEAD '%.64s' is not a commit id", req->head);
    bool exists = false;
    if (r >= 0) {
        int code = git_reference_name_to_id(&current, x.b.repo, ref);
        exists = code == 0;
        git_error_clear();
        if (!exists)
            current = base;
    }
    if (r >= 0)
        r = copy_history(&x, &head, err);
    if (r >= 0)
        r = check_fast_forward(x.b.repo, req->branch, &current, &head, err);
    git_reference *moved = NULL;
    int code = 0;
    if (r >= 0 && (code = git_reference_create(&moved, x.b.repo, ref, &head, 1,
                                               "warren: sandbox_git_commit")) < 0)
        r = vmm__git_fail(code, err, "moving %s", ref);
    if (r >= 0) {
        fill_result(&x, &head, &current, ret);
        give_to_owner(&x.b, ref);
    }
    git_reference_free(moved);
    git_odb_free(x.all);
    git_odb_free(x.user_odb);
    git_repository_free(x.b.repo);
    free(x.b.written);
    return r < 0 ? r : 0;
}
