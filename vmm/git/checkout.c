/* Workspace layers: a repository's tree at one commit, checked out once (libgit2) into
 * <state>/layers/worktree/<commit-id> and shared read-only by every sandbox that starts there.
 *
 * A layer directory only ever appears by rename(2) of a finished checkout, so its
 * existence is the "complete" marker: a crash leaves at most a stray directory under
 * layers/tmp (swept after a day), never a half-written layer. Two processes checking out
 * the same commit both do the work; the first rename wins and the loser discards its
 * copy.
 *
 * The user's repository is only read: checkout writes to target_directory, never updates
 * or writes the index, and never moves HEAD. */
#include <dirent.h>
#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "checkout.h"
#include "git-internal.h"

#define MAX_REF_LENGTH 256
/* A temp checkout untouched for this long belongs to a process that died. */
#define STALE_TMP_SECONDS (24 * 3600)

static void repository_freep(git_repository **repo)
{
    git_repository_free(*repo);
}
static void object_freep(git_object **obj)
{
    git_object_free(*obj);
}
#define _cleanup_repository_ _cleanup_(repository_freep)
#define _cleanup_object_ _cleanup_(object_freep)

/* ---- libgit2 boundary ------------------------------------------------------------------- */

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static int git_init_result;

/* Owner validation (git's safe.directory) is off: warren runs as root and serves
 * repositories owned by its users, and it only reads them through libgit2, which runs no
 * hooks, no external filters and no commands from the repository's config. That is the
 * risk safe.directory guards against in git itself. */
static void git_init(void)
{
    git_init_result = git_libgit2_init();
    if (git_init_result >= 0)
        git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
}

/* Initialises libgit2 once per process. It is never shut down: the server uses it until
 * exit, and a shutdown racing another thread's use would be worse than the leak. */
int vmm__git_init(struct wr_error **err)
{
    pthread_once(&git_once, git_init);
    if (git_init_result < 0)
        return wr_error_set(err, EIO, "layers: initialising libgit2 failed");
    return 0;
}

static int status_from_git(int code)
{
    switch (code) {
    case GIT_ENOTFOUND:
    case GIT_EUNBORNBRANCH:
        return ENOENT;
    case GIT_EAMBIGUOUS:
    case GIT_EINVALIDSPEC:
    case GIT_EPEEL:
    case GIT_EINVALID:
    case GIT_EBAREREPO:
        return EINVAL;
    case GIT_ELOCKED:
        return EBUSY;
    case GIT_EEXISTS:
        return EEXIST;
    case GIT_EOWNER:
        return EACCES;
    default:
        return EIO;
    }
}

/* Fills err with "<context>: <libgit2's message>" for the libgit2 error code. */
int vmm__git_fail(int code, struct wr_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *context = NULL;
    if (vasprintf(&context, fmt, ap) < 0)
        abort();
    va_end(ap);
    const git_error *e = git_error_last();
    return wr_error_set(err, status_from_git(code), "%s: %s", context,
                        e && e->message ? e->message : "unknown libgit2 error");
}

/* ---- validation ----------------------------------------------------------------------- */

static int validate_directory(const char *path, struct wr_error **err)
{
    if (!path || !*path)
        return wr_error_set(err, EINVAL, "'path' is required");
    if (strlen(path) >= PATH_MAX)
        return wr_error_set(err, ENAMETOOLONG, "'path' is longer than %d bytes", PATH_MAX - 1);
    if (path[0] != '/')
        return wr_error_set(err, EINVAL, "'path' must be absolute, got '%s'", path);
    struct stat s;
    if (stat(path, &s) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return wr_error_set(err, ENOENT, "no such directory '%s'", path);
        return wr_error_set_errno(err, errno, "cannot use '%s'", path);
    }
    if (!S_ISDIR(s.st_mode))
        return wr_error_set(err, EINVAL, "'%s' is not a directory", path);
    return 0;
}

static int validate_ref(const char *ref, struct wr_error **err)
{
    if (!ref)
        return 0;
    if (!*ref)
        return wr_error_set(err, EINVAL, "'ref' must not be empty");
    if (strlen(ref) > MAX_REF_LENGTH)
        return wr_error_set(err, EINVAL, "'ref' is longer than %d bytes", MAX_REF_LENGTH);
    return 0;
}

/* overlayfs splits lowerdir= on ':' and the mount options on ',', so a directory whose
 * path holds either can never be a lower layer. */
static int validate_lower(const char *lower, struct wr_error **err)
{
    if (strpbrk(lower, ",:"))
        return wr_error_set(err, EINVAL,
                            "'%s' cannot be a workspace layer: its path contains ',' or ':', "
                            "which overlayfs cannot take",
                            lower);
    return 0;
}

/* ---- plain directories --------------------------------------------------------------- */

static int plain_directory(const char *path, const char *ref, char **ret_lower,
                           struct wr_error **err)
{
    if (ref)
        return wr_error_set(err, EINVAL,
                            "ref '%s' given but '%s' is not a git repository; omit 'ref' to use "
                            "the directory as it is",
                            ref, path);
    _cleanup_free_ char *real = realpath(path, NULL);
    if (!real)
        return wr_error_set_errno(err, errno, "resolving '%s'", path);
    int r = validate_lower(real, err);
    if (r < 0)
        return r;
    *ret_lower = TAKE_PTR(real);
    return 0;
}

/* ---- repositories ------------------------------------------------------------------------ */

/* Opens the repository that holds path (path may be anywhere inside a working tree).
 * Returns 1 and *ret when there is one, 0 when path is not inside a repository. */
int vmm__git_open_repository(const char *path, git_repository **ret, struct wr_error **err)
{
    _cleanup_repository_ git_repository *repo = NULL;
    int code = git_repository_open_ext(&repo, path, 0, NULL);
    if (code == GIT_ENOTFOUND) {
        git_error_clear();
        return 0;
    }
    if (code < 0)
        return vmm__git_fail(code, err, "opening repository '%s'", path);
    if (git_repository_is_bare(repo))
        return wr_error_set(err, EINVAL,
                            "'%s' is a bare repository; give the path of a working tree", path);
    *ret = TAKE_PTR(repo);
    return 1;
}

int vmm__git_open_existing(const char *path, git_repository **ret, struct wr_error **err)
{
    int r = vmm__git_init(err);
    if (r >= 0)
        r = vmm__git_open_repository(path, ret, err);
    if (r == 0)
        r = wr_error_set(err, ENOENT, "'%s' is no longer a git repository", path);
    return r < 0 ? r : 0;
}

/* Resolves ref (NULL: HEAD) to a commit. *ret is a git_commit, owned by the caller. */
static int resolve_commit(git_repository *repo, const char *path, const char *ref, git_object **ret,
                          struct wr_error **err)
{
    const char *spec = ref ? ref : "HEAD";
    if (!strcmp(spec, "HEAD") && git_repository_head_unborn(repo) == 1)
        return wr_error_set(err, EINVAL,
                            "'%s' has no commits yet (HEAD is an unborn branch); commit "
                            "something first",
                            path);
    _cleanup_object_ git_object *obj = NULL;
    int code = git_revparse_single(&obj, repo, spec);
    if (code == GIT_ENOTFOUND)
        return wr_error_set(err, ENOENT, "no commit or ref '%s' in '%s'", spec, path);
    if (code == GIT_EAMBIGUOUS)
        return wr_error_set(err, EINVAL, "'%s' is ambiguous in '%s'; give more digits", spec, path);
    if (code < 0)
        return vmm__git_fail(code, err, "resolving '%s' in '%s'", spec, path);
    code = git_object_peel(ret, obj, GIT_OBJECT_COMMIT);
    if (code < 0)
        return wr_error_set(err, EINVAL, "'%s' in '%s' names a %s, not a commit", spec, path,
                            git_object_type2string(git_object_type(obj)));
    return 0;
}

/* ---- checkout into a layer ----------------------------------------------------------- */

/* Removes temp checkouts left behind by processes that died mid-checkout. Best effort:
 * a failure here costs disk space, not correctness. */
static void sweep_stale_tmp(const char *tmp_root)
{
    DIR *d = opendir(tmp_root);
    if (!d)
        return;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        struct stat s;
        if (fstatat(dirfd(d), de->d_name, &s, AT_SYMLINK_NOFOLLOW) < 0 ||
            now - s.st_mtime < STALE_TMP_SECONDS)
            continue;
        _cleanup_free_ char *p = wr_path_join(tmp_root, de->d_name);
        (void)wr_rm_rf(p);
    }
    closedir(d);
}

static int make_tmp_dir(const char *tmp_root, char **ret, struct wr_error **err)
{
    unsigned char rnd[8];
    char hex[2 * sizeof(rnd) + 1];
    int r = wr_random_bytes(rnd, sizeof(rnd));
    if (r < 0)
        return wr_error_set_errno(err, -r, "layers: getrandom");
    wr_hex_encode(rnd, sizeof(rnd), hex);
    _cleanup_free_ char *tmp = wr_path_join(tmp_root, hex);
    if (mkdir(tmp, 0755) < 0)
        return wr_error_set_errno(err, errno, "layers: creating %s", tmp);
    *ret = TAKE_PTR(tmp);
    return 0;
}

/* Writes commit's tree into dir. FORCE + RECREATE_MISSING write every file even where
 * the tree matches HEAD (checkout is driven by a diff against HEAD); DONT_UPDATE_INDEX
 * and DONT_WRITE_INDEX keep the user's index as it is. Filters (CRLF, ident) and
 * .gitattributes apply as in git; exec bits and symlinks are kept. */
static int checkout_into(git_repository *repo, git_object *commit, const char *dir,
                         struct wr_error **err)
{
    git_checkout_options opts;
    /* The function rather than GIT_CHECKOUT_OPTIONS_INIT, which leaves fields to the
     * compiler's implicit zeroing and trips -Wmissing-field-initializers. */
    git_checkout_options_init(&opts, GIT_CHECKOUT_OPTIONS_VERSION);
    opts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_RECREATE_MISSING |
                             GIT_CHECKOUT_DONT_UPDATE_INDEX | GIT_CHECKOUT_DONT_WRITE_INDEX;
    opts.target_directory = dir;
    int code = git_checkout_tree(repo, commit, &opts);
    if (code < 0)
        return vmm__git_fail(code, err, "checking out %s into %s",
                             git_oid_tostr_s(git_object_id(commit)), dir);
    return 0;
}

/* ---- the sandbox's side of .git ------------------------------------------------------- */

static int write_text_file(const char *path, const char *text, struct wr_error **err)
{
    int r = wr_write_file_replace(path, text, strlen(text), 0644);
    return r < 0 ? wr_error_set_errno(err, -r, "layers: writing %s", path) : 0;
}

/* The index of the checkout in dir: the commit's tree with the stat data of the files just
 * written, so that `git status` in a new sandbox trusts them instead of hashing every
 * file. The files are dated a few seconds back first: git compares whole seconds, and an
 * edit made in the second the layer was written must still show as a change, without
 * making every entry "racily clean" (newer than the index) and so re-read. */
static int write_index(git_object *commit, const char *dir, struct wr_error **err)
{
    _cleanup_free_ char *path = wr_path_join(dir, ".git/index");
    const struct timespec back[2] = {{.tv_sec = time(NULL) - 2}, {.tv_sec = time(NULL) - 2}};
    git_index *index = NULL;
    git_tree *tree = NULL;
    int code = git_commit_tree(&tree, (git_commit *)commit);
    if (code == 0)
        code = git_index_open(&index, path);
    if (code == 0)
        code = git_index_read_tree(index, tree);
    for (size_t i = 0; code == 0 && i < git_index_entrycount(index); i++) {
        git_index_entry e = *git_index_get_byindex(index, i);
        _cleanup_free_ char *file = wr_path_join(dir, e.path);
        struct stat st;
        if (e.mode == GIT_FILEMODE_COMMIT ||
            utimensat(AT_FDCWD, file, back, AT_SYMLINK_NOFOLLOW) < 0 || lstat(file, &st) < 0)
            continue; /* a submodule's empty directory has no stat data to keep */
        e.ctime = (git_index_time){(int32_t)st.st_ctim.tv_sec, (uint32_t)st.st_ctim.tv_nsec};
        e.mtime = (git_index_time){(int32_t)st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec};
        e.dev = (uint32_t)st.st_dev;
        e.ino = (uint32_t)st.st_ino;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        e.file_size = (uint32_t)st.st_size;
        code = git_index_add(index, &e);
    }
    if (code == 0)
        code = git_index_write(index);
    git_index_free(index);
    git_tree_free(tree);
    return code < 0 ? vmm__git_fail(code, err, "layers: writing the index of %s", dir) : 0;
}

/* The part of a working tree's .git that every sandbox starting at this commit shares:
 * the index, an empty object store whose alternate is .git/repo-objects (where the
 * backends bind the user's object directory, read-only), and empty refs. HEAD, the
 * branch and the config are each sandbox's own (layers_git_seed). */
static int write_git_dir(git_object *commit, const char *dir, struct wr_error **err)
{
    static const char *const dirs[] = {".git/objects/info", ".git/objects/pack", ".git/refs/heads",
                                       ".git/refs/tags",    ".git/repo-objects", ".git/info"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(dirs); i++) {
        _cleanup_free_ char *path = wr_path_join(dir, dirs[i]);
        int r = wr_mkdir_p(path, 0755);
        if (r < 0)
            return wr_error_set_errno(err, -r, "layers: creating %s", path);
    }
    _cleanup_free_ char *alternates = wr_path_join(dir, ".git/objects/info/alternates");
    if (write_text_file(alternates, "../repo-objects\n", err) < 0)
        return -(*err)->status;
    return write_index(commit, dir, err);
}

/* Flushes the checkout before it becomes visible: after a power cut a layer directory
 * must not exist with empty files in it. */
static int sync_dir(const char *dir, struct wr_error **err)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0)
        return wr_error_set_errno(err, errno, "layers: syncing %s", dir);
    return 0;
}

/* Moves the finished checkout tmp to final. Losing the race to another process is
 * success: its layer is the same tree. */
static int publish(const char *tmp, const char *final, struct wr_error **err)
{
    if (rename(tmp, final) == 0)
        return 0;
    int saved = errno;
    (void)wr_rm_rf(tmp);
    if (saved == EEXIST || saved == ENOTEMPTY)
        return 0;
    return wr_error_set_errno(err, saved, "layers: renaming %s to %s", tmp, final);
}

/* Returns 1 when the layer exists, 0 when it does not. */
static int layer_exists(const char *final, struct wr_error **err)
{
    struct stat s;
    if (lstat(final, &s) == 0) {
        if (!S_ISDIR(s.st_mode))
            return wr_error_set(err, EIO, "layers: %s exists but is not a directory", final);
        return 1;
    }
    if (errno != ENOENT)
        return wr_error_set_errno(err, errno, "layers: checking %s", final);
    return 0;
}

static int build_layer(git_repository *repo, git_object *commit, const char *layers_dir,
                       const char *final, struct wr_error **err)
{
    _cleanup_free_ char *tmp_root = wr_path_join(layers_dir, "tmp");
    _cleanup_free_ char *git_root = wr_path_join(layers_dir, "worktree");
    int r = wr_mkdir_p(tmp_root, 0700);
    if (r >= 0)
        r = wr_mkdir_p(git_root, 0700);
    if (r < 0)
        return wr_error_set_errno(err, -r, "layers: creating %s", layers_dir);
    sweep_stale_tmp(tmp_root);
    _cleanup_free_ char *tmp = NULL;
    r = make_tmp_dir(tmp_root, &tmp, err);
    if (r < 0)
        return r;
    r = checkout_into(repo, commit, tmp, err);
    if (r >= 0)
        r = write_git_dir(commit, tmp, err);
    if (r >= 0)
        r = sync_dir(tmp, err);
    if (r < 0) {
        (void)wr_rm_rf(tmp);
        return r;
    }
    return publish(tmp, final, err);
}

/* Returns the layer directory for commit, checking it out unless it is already there. */
static int commit_layer(const char *state_dir, git_repository *repo, git_object *commit,
                        const char *hex, char **ret_lower, struct wr_error **err)
{
    int r = wr_mkdir_p(state_dir, 0700);
    if (r < 0)
        return wr_error_set_errno(err, -r, "layers: creating %s", state_dir);
    _cleanup_free_ char *real_state = realpath(state_dir, NULL);
    if (!real_state)
        return wr_error_set_errno(err, errno, "layers: resolving state directory %s", state_dir);
    _cleanup_free_ char *layers_dir = wr_path_join(real_state, "layers");
    _cleanup_free_ char *final = wr_asprintf("%s/worktree/%s", layers_dir, hex);
    r = validate_lower(final, err);
    if (r < 0)
        return r;
    r = layer_exists(final, err);
    if (r == 0)
        r = build_layer(repo, commit, layers_dir, final, err);
    if (r < 0)
        return r;
    *ret_lower = TAKE_PTR(final);
    return 0;
}

static int git_workspace(const char *state_dir, git_repository *repo, const char *path,
                         const char *ref, char **ret_lower, char **ret_commit,
                         struct wr_error **err)
{
    _cleanup_object_ git_object *commit = NULL;
    int r = resolve_commit(repo, path, ref, &commit, err);
    if (r < 0)
        return r;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof(hex), git_object_id(commit));
    _cleanup_free_ char *lower = NULL;
    r = commit_layer(state_dir, repo, commit, hex, &lower, err);
    if (r < 0)
        return r;
    *ret_lower = TAKE_PTR(lower);
    *ret_commit = wr_strdup(hex);
    return 0;
}

/* On success the caller owns and frees *ret_lower and *ret_commit (NULL for a plain
 * directory); on failure neither is touched. */
int layers_workspace_from_repo(const char *state_dir, const char *repo, const char *ref,
                               char **ret_lower, char **ret_commit, struct wr_error **err)
{
    int r = validate_directory(repo, err);
    if (r >= 0)
        r = validate_ref(ref, err);
    if (r >= 0)
        r = vmm__git_init(err);
    if (r < 0)
        return r;
    _cleanup_repository_ git_repository *git_repo = NULL;
    r = vmm__git_open_repository(repo, &git_repo, err);
    if (r < 0)
        return r;
    if (r == 0) {
        r = plain_directory(repo, ref, ret_lower, err);
        if (r >= 0)
            *ret_commit = NULL;
        return r;
    }
    return git_workspace(state_dir, git_repo, repo, ref, ret_lower, ret_commit, err);
}

/* ---- a sandbox's own .git ------------------------------------------------------------ */

/* Copies the user's <commondir>/<name> (info/exclude, shallow) into gitdir when it exists. */
static int copy_git_file(const char *commondir, const char *name, const char *gitdir,
                         struct wr_error **err)
{
    _cleanup_free_ char *from = wr_asprintf("%s%s", commondir, name);
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = wr_read_file(from, 4u << 20, &text, &len);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return wr_error_set_errno(err, -r, "reading %s", from);
    _cleanup_free_ char *to = wr_path_join(gitdir, name);
    r = wr_write_file_replace(to, text, len, 0644);
    return r < 0 ? wr_error_set_errno(err, -r, "writing %s", to) : 0;
}

static char *git_config_text(git_repository *repo)
{
    git_signature *who = NULL;
    if (git_signature_default(&who, repo) < 0)
        git_error_clear();
    char *text = wr_asprintf("[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n"
                             "\tbare = false\n\tlogallrefupdates = true\n"
                             "[user]\n\tname = %s\n\temail = %s\n",
                             who ? who->name : "warren", who ? who->email : "warren@localhost");
    git_signature_free(who);
    return text;
}

/* HEAD, the branch, config, info/exclude and shallow of a new sandbox, in its upper. */
static int seed_git_dir(git_repository *repo, const char *commit, const char *branch,
                        const char *ws_upper, struct wr_error **err)
{
    int r;
    _cleanup_free_ char *gitdir = wr_path_join(ws_upper, ".git");
    _cleanup_free_ char *ref = wr_asprintf("%s/refs/heads/%s", gitdir, branch);
    _cleanup_free_ char *ref_dir = wr_strdup(ref);
    *strrchr(ref_dir, '/') = 0;
    _cleanup_free_ char *info = wr_path_join(gitdir, "info");
    if ((r = wr_mkdir_p(ref_dir, 0755)) < 0 || (r = wr_mkdir_p(info, 0755)) < 0)
        return wr_error_set_errno(err, -r, "creating %s", gitdir);
    _cleanup_free_ char *head_path = wr_path_join(gitdir, "HEAD");
    _cleanup_free_ char *head = wr_asprintf("ref: refs/heads/%s\n", branch);
    _cleanup_free_ char *tip = wr_asprintf("%s\n", commit);
    _cleanup_free_ char *config_path = wr_path_join(gitdir, "config");
    _cleanup_free_ char *config = git_config_text(repo);
    const char *commondir = git_repository_commondir(repo);
    if (write_text_file(head_path, head, err) < 0 || write_text_file(ref, tip, err) < 0 ||
        write_text_file(config_path, config, err) < 0 ||
        copy_git_file(commondir, "info/exclude", gitdir, err) < 0 ||
        copy_git_file(commondir, "shallow", gitdir, err) < 0)
        return -(*err)->status;
    return 0;
}

int layers_git_prepare(const char *repo_path, const char *commit, const char *branch,
                       const char *ws_upper, char **ret_objects, struct wr_error **err)
{
    _cleanup_repository_ git_repository *repo = NULL;
    int r = vmm__git_open_existing(repo_path, &repo, err);
    if (r >= 0 && ws_upper)
        r = seed_git_dir(repo, commit, branch, ws_upper, err);
    if (r < 0)
        return r;
    *ret_objects = wr_asprintf("%sobjects", git_repository_commondir(repo));
    return 0;
}
