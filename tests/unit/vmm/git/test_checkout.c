/* Unit tests for vmm/git/checkout.c: real repositories built with the git CLI in a temporary
 * directory, checked out with libgit2, compared against `git archive`. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test.h"
#include "vmm/git/checkout.h"

static char *root;    /* the temp directory holding everything below */
static char *repo;    /* root/repo: main at commit two, branch feature, tag v1 */
static char *commit1; /* 40 hex */
static char *commit2; /* HEAD of main */
static char *feature; /* the feature branch's commit */

static char *__attribute__((format(printf, 1, 0))) vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    ASSERT(vasprintf(&s, fmt, ap) >= 0);
    return s;
}

/* Runs a shell command built from fmt; it must succeed. */
static void __attribute__((format(printf, 1, 2))) sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *cmd = vformat(fmt, ap);
    va_end(ap);
    int status = system(cmd);
    if (status != 0)
        fprintf(stderr, "command failed (%d): %s\n", status, cmd);
    ASSERT_EQ(status, 0);
}

/* Runs a shell command and returns its stdout (trailing newline removed). */
static char *__attribute__((format(printf, 1, 2))) capture(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *cmd = vformat(fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    ASSERT(f);
    struct wr_buf b;
    wr_buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ASSERT_EQ(wr_buf_append(&b, chunk, n), 0);
    ASSERT_EQ(pclose(f), 0);
    char *s = wr_buf_steal(&b, &n);
    if (n > 0 && s[n - 1] == '\n')
        s[n - 1] = 0;
    return s;
}

static char *new_dir(const char *name)
{
    char *p = wr_asprintf("%s/%s", root, name);
    ASSERT_EQ(wr_mkdir_p(p, 0755), 0);
    return p;
}

static char *read_text(const char *dir, const char *file)
{
    _cleanup_free_ char *p = wr_path_join(dir, file);
    char *data = NULL;
    size_t n;
    ASSERT_EQ(wr_read_file(p, 1 << 20, &data, &n), 0);
    return data;
}

/* main: commit1 (files of every kind), commit2 (README changed, new.txt added).
 * feature: commit1 + feature-only.txt. tag v1: annotated, at commit1. */
static void build_repo(void)
{
    repo = new_dir("repo");
    sh("cd %s && git init -q -b main . && mkdir -p src/lib/deep bin && "
       "printf 'hello\\n' > README.md && printf 'int x;\\n' > src/lib/deep/file.c && "
       "printf '#!/bin/sh\\necho hi\\n' > bin/run.sh && chmod 755 bin/run.sh && "
       "ln -s README.md link && ln -s src/lib dirlink && "
       "printf 'bin\\000\\001\\002\\377ary\\000' > data.bin && "
       "printf 'crlf.txt text eol=crlf\\n' > .gitattributes && printf 'a\\r\\nb\\r\\n' > crlf.txt "
       "&& "
       "git add -A && git commit -q -m one && git tag -a -m v1 v1 && "
       "git checkout -q -b feature && printf 'feature\\n' > feature-only.txt && "
       "git add -A && git commit -q -m feat && git checkout -q main && "
       "printf 'hello v2\\n' > README.md && printf 'new\\n' > new.txt && "
       "git add -A && git commit -q -m two",
       repo);
    commit1 = capture("git -C %s rev-parse v1^{commit}", repo);
    commit2 = capture("git -C %s rev-parse HEAD", repo);
    feature = capture("git -C %s rev-parse feature", repo);
}

static char *layer_ok(const char *state, const char *path, const char *ref, char **ret_commit)
{
    _cleanup_error_ struct wr_error *err = NULL;
    char *lower = NULL, *commit = (char *)"unset";
    int r = layers_workspace_from_repo(state, path, ref, &lower, &commit, &err);
    if (r < 0)
        fprintf(stderr, "layers_workspace_from_repo(%s, %s): %s\n", path, ref ? ref : "NULL",
                err->msg);
    ASSERT_EQ(r, 0);
    *ret_commit = commit;
    return lower;
}

/* Returns the error (caller frees) of a call that must fail with status. */
static struct wr_error *layer_fails(const char *state, const char *path, const char *ref,
                                    int status)
{
    struct wr_error *err = NULL;
    char *lower = NULL, *commit = NULL;
    int r = layers_workspace_from_repo(state, path, ref, &lower, &commit, &err);
    ASSERT(r < 0);
    ASSERT(err);
    if (err->status != status)
        fprintf(stderr, "expected status %d, got %d: %s\n", status, err->status, err->msg);
    ASSERT_EQ(err->status, status);
    ASSERT_EQ(r, -status);
    ASSERT(lower == NULL && commit == NULL);
    return err;
}

/* The layer must hold exactly what `git archive` produces for the commit (git applies
 * the same .gitattributes conversions), symlinks compared as links. */
static void assert_matches_archive(const char *lower, const char *commit)
{
    _cleanup_free_ char *expected = wr_asprintf("%s/expected-%s", root, commit);
    ASSERT_EQ(wr_rm_rf(expected), 0);
    ASSERT_EQ(wr_mkdir_p(expected, 0755), 0);
    sh("git -C %s archive %s | tar -x -C %s", repo, commit, expected);
    sh("diff -r --no-dereference -x .git %s %s", expected, lower);
    ASSERT_EQ(wr_rm_rf(expected), 0);
}

static void test_head(void)
{
    _cleanup_free_ char *state = new_dir("state-head");
    _cleanup_free_ char *commit = NULL;
    _cleanup_free_ char *lower = layer_ok(state, repo, NULL, &commit);
    ASSERT_STREQ(commit, commit2);
    _cleanup_free_ char *expected = wr_asprintf("%s/layers/worktree/%s", state, commit2);
    ASSERT_STREQ(lower, expected);
    assert_matches_archive(lower, commit2);

    /* The shared part of a sandbox's .git: with a HEAD and the repository's objects, git
     * finds the checkout clean from the index's stat data alone. */
    _cleanup_free_ char *alternates = read_text(lower, ".git/objects/info/alternates");
    ASSERT_STREQ(alternates, "../repo-objects\n");
    _cleanup_free_ char *probe = new_dir("state-head-probe");
    sh("cp -a %s/.git %s/ && echo 'ref: refs/heads/main' > %s/.git/HEAD && "
       "echo %s > %s/.git/refs/heads/main",
       lower, probe, probe, commit2, probe);
    sh("test -z \"$(GIT_ALTERNATE_OBJECT_DIRECTORIES=%s/.git/objects git --git-dir=%s/.git "
       "--work-tree=%s status --porcelain)\"",
       repo, probe, lower);

    _cleanup_free_ char *run = wr_path_join(lower, "bin/run.sh");
    struct stat s;
    ASSERT_EQ(stat(run, &s), 0);
    ASSERT((s.st_mode & 0111) == 0111);
    _cleanup_free_ char *readme = wr_path_join(lower, "README.md");
    ASSERT_EQ(stat(readme, &s), 0);
    ASSERT((s.st_mode & 0111) == 0);

    _cleanup_free_ char *link = wr_path_join(lower, "link");
    char target[64] = {0};
    ASSERT_EQ(readlink(link, target, sizeof(target) - 1), 9);
    ASSERT_STREQ(target, "README.md");
    _cleanup_free_ char *dirlink = wr_path_join(lower, "dirlink");
    ASSERT_EQ(lstat(dirlink, &s), 0);
    ASSERT(S_ISLNK(s.st_mode));

    _cleanup_free_ char *data = wr_path_join(lower, "data.bin");
    _cleanup_free_ char *bytes = NULL;
    size_t n = 0;
    ASSERT_EQ(wr_read_file(data, 1024, &bytes, &n), 0);
    ASSERT_EQ(n, 11u);
    ASSERT_EQ(memcmp(bytes, "bin\0\1\2\377ary\0", 11), 0);
    _cleanup_free_ char *crlf = read_text(lower, "crlf.txt");
    ASSERT_STREQ(crlf, "a\r\nb\r\n");
    _cleanup_free_ char *deep = read_text(lower, "src/lib/deep/file.c");
    ASSERT_STREQ(deep, "int x;\n");
}

static void test_other_refs(void)
{
    _cleanup_free_ char *state = new_dir("state-refs");
    _cleanup_free_ char *short_sha = wr_strndup(commit1, 7);
    struct {
        const char *ref;
        const char *commit;
    } cases[] = {
        {"feature", feature}, {"refs/heads/feature", feature},
        {short_sha, commit1}, {"v1", commit1},
        {"HEAD~1", commit1},  {commit2, commit2},
        {"main", commit2},
    };
    for (size_t i = 0; i < WR_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *commit = NULL;
        _cleanup_free_ char *lower = layer_ok(state, repo, cases[i].ref, &commit);
        ASSERT_STREQ(commit, cases[i].commit);
        assert_matches_archive(lower, commit);
    }
    _cleanup_free_ char *commit = NULL;
    _cleanup_free_ char *lower = layer_ok(state, repo, "feature", &commit);
    _cleanup_free_ char *only = read_text(lower, "feature-only.txt");
    ASSERT_STREQ(only, "feature\n");
    _cleanup_free_ char *readme = read_text(lower, "README.md");
    ASSERT_STREQ(readme, "hello\n");
}

static void test_reuse(void)
{
    _cleanup_free_ char *state = new_dir("state-reuse");
    _cleanup_free_ char *c1 = NULL, *c2 = NULL;
    uint64_t t0 = wr_now_ns();
    _cleanup_free_ char *first = layer_ok(state, repo, NULL, &c1);
    uint64_t t1 = wr_now_ns();
    /* A file the checkout would never write proves the second call did not redo it. */
    _cleanup_free_ char *marker = wr_path_join(first, ".marker");
    ASSERT_EQ(wr_write_file_atomic(marker, "x", 1, 0644), 0);
    _cleanup_free_ char *second = layer_ok(state, repo, NULL, &c2);
    uint64_t t2 = wr_now_ns();
    ASSERT_STREQ(first, second);
    ASSERT_STREQ(c1, c2);
    ASSERT_EQ(access(marker, F_OK), 0);
    fprintf(stderr, "   checkout %.2f ms, reuse %.2f ms\n", (double)(t1 - t0) / 1e6,
            (double)(t2 - t1) / 1e6);
    ASSERT(t2 - t1 < 1000000000ull);
    _cleanup_free_ char *tmp = wr_asprintf("%s/layers/tmp", state);
    _cleanup_free_ char *left = capture("ls -A %s", tmp);
    ASSERT_STREQ(left, "");
}

/* The user's HEAD, index and working tree (dirty, staged and untracked files alike)
 * are exactly as they were after checkouts at several refs. */
static void test_user_repo_untouched(void)
{
    sh("cd %s && printf 'dirty\\n' > README.md && printf 'int y;\\n' > src/lib/deep/file.c && "
       "git add src/lib/deep/file.c && printf 'untracked\\n' > scratch.txt",
       repo);
    _cleanup_free_ char *status_before = capture("git -C %s status --porcelain -uall", repo);
    _cleanup_free_ char *index_before = capture("sha256sum < %s/.git/index", repo);
    _cleanup_free_ char *head_before = read_text(repo, ".git/HEAD");
    ASSERT(strstr(status_before, " M README.md"));
    ASSERT(strstr(status_before, "M  src/lib/deep/file.c"));

    _cleanup_free_ char *state = new_dir("state-untouched");
    const char *refs[] = {NULL, "feature", "v1"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(refs); i++) {
        _cleanup_free_ char *commit = NULL;
        _cleanup_free_ char *lower = layer_ok(state, repo, refs[i], &commit);
        assert_matches_archive(lower, commit);
        _cleanup_free_ char *scratch = wr_path_join(lower, "scratch.txt");
        ASSERT(access(scratch, F_OK) < 0); /* untracked files are not in a layer */
    }

    _cleanup_free_ char *status_after = capture("git -C %s status --porcelain -uall", repo);
    _cleanup_free_ char *index_after = capture("sha256sum < %s/.git/index", repo);
    _cleanup_free_ char *head_after = read_text(repo, ".git/HEAD");
    _cleanup_free_ char *readme = read_text(repo, "README.md");
    ASSERT_STREQ(status_after, status_before);
    ASSERT_STREQ(index_after, index_before);
    ASSERT_STREQ(head_after, head_before);
    ASSERT_STREQ(readme, "dirty\n");
    _cleanup_free_ char *lock = wr_path_join(repo, ".git/index.lock");
    ASSERT(access(lock, F_OK) < 0);
    sh("cd %s && git reset -q --hard && rm scratch.txt", repo);
}

/* A path inside the working tree, and a linked worktree, resolve to their repository. */
static void test_subdirectory_and_worktree(void)
{
    _cleanup_free_ char *state = new_dir("state-sub");
    _cleanup_free_ char *sub = wr_path_join(repo, "src/lib");
    _cleanup_free_ char *commit = NULL;
    _cleanup_free_ char *lower = layer_ok(state, sub, NULL, &commit);
    ASSERT_STREQ(commit, commit2);
    _cleanup_free_ char *expected = wr_asprintf("%s/layers/worktree/%s", state, commit2);
    ASSERT_STREQ(lower, expected);

    _cleanup_free_ char *wt = wr_asprintf("%s/worktree", root);
    sh("git -C %s worktree add -q %s feature", repo, wt);
    _cleanup_free_ char *wt_commit = NULL;
    _cleanup_free_ char *wt_lower = layer_ok(state, wt, NULL, &wt_commit);
    ASSERT_STREQ(wt_commit, feature);
    assert_matches_archive(wt_lower, feature);
    sh("git -C %s worktree remove --force %s", repo, wt);
}

static void test_plain_directory(void)
{
    _cleanup_free_ char *state = new_dir("state-plain");
    _cleanup_free_ char *plain = new_dir("plain");
    _cleanup_free_ char *alias = wr_asprintf("%s/plain-alias", root);
    ASSERT_EQ(symlink(plain, alias), 0);
    _cleanup_free_ char *commit = NULL;
    _cleanup_free_ char *lower = layer_ok(state, alias, NULL, &commit);
    _cleanup_free_ char *real = realpath(plain, NULL);
    ASSERT_STREQ(lower, real);
    ASSERT(commit == NULL);

    _cleanup_error_ struct wr_error *err = layer_fails(state, plain, "main", EINVAL);
    ASSERT(strstr(err->msg, "not a git repository"));
}

static void test_bad_input(void)
{
    _cleanup_free_ char *state = new_dir("state-bad");
    struct wr_error *err = layer_fails(state, repo, "no-such-branch", ENOENT);
    ASSERT(strstr(err->msg, "'no-such-branch'"));
    wr_error_free(err);
    err = layer_fails(state, repo, "HEAD:README.md", EINVAL);
    ASSERT(strstr(err->msg, "blob, not a commit"));
    wr_error_free(err);
    err = layer_fails(state, repo, "", EINVAL);
    wr_error_free(err);
    err = layer_fails(state, repo, "bad..spec^{", EINVAL);
    wr_error_free(err);

    _cleanup_free_ char *missing = wr_asprintf("%s/missing", root);
    err = layer_fails(state, missing, NULL, ENOENT);
    ASSERT(strstr(err->msg, "no such directory"));
    wr_error_free(err);
    _cleanup_free_ char *file = wr_path_join(repo, "README.md");
    err = layer_fails(state, file, NULL, EINVAL);
    ASSERT(strstr(err->msg, "is not a directory"));
    wr_error_free(err);
    err = layer_fails(state, "relative/path", NULL, EINVAL);
    ASSERT(strstr(err->msg, "absolute"));
    wr_error_free(err);
    err = layer_fails(state, NULL, NULL, EINVAL);
    wr_error_free(err);

    _cleanup_free_ char *comma = new_dir("a,b");
    err = layer_fails(state, comma, NULL, EINVAL);
    ASSERT(strstr(err->msg, "','"));
    wr_error_free(err);
    _cleanup_free_ char *colon_state = new_dir("state:colon");
    err = layer_fails(colon_state, repo, NULL, EINVAL);
    wr_error_free(err);
}

static void test_unborn_and_bare(void)
{
    _cleanup_free_ char *state = new_dir("state-unborn");
    _cleanup_free_ char *empty = new_dir("empty-repo");
    sh("git -C %s init -q", empty);
    struct wr_error *err = layer_fails(state, empty, NULL, EINVAL);
    ASSERT(strstr(err->msg, "no commits yet"));
    wr_error_free(err);

    _cleanup_free_ char *bare = wr_asprintf("%s/bare.git", root);
    sh("git clone -q --bare %s %s", repo, bare);
    err = layer_fails(state, bare, NULL, EINVAL);
    ASSERT(strstr(err->msg, "bare repository"));
    wr_error_free(err);
}

/* Several processes create the same new layer at once: all get the same directory, one
 * rename wins, the others clean up after themselves. */
static void test_concurrent_processes(void)
{
    _cleanup_free_ char *state = new_dir("state-concurrent");
    _cleanup_free_ char *expected = wr_asprintf("%s/layers/worktree/%s", state, commit2);
    enum { N = 4 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        ASSERT(pids[i] >= 0);
        if (pids[i] == 0) {
            struct wr_error *err = NULL;
            char *lower = NULL, *commit = NULL;
            int r = layers_workspace_from_repo(state, repo, NULL, &lower, &commit, &err);
            if (r < 0)
                fprintf(stderr, "child %d: %s\n", i, err->msg);
            _exit(r == 0 && !strcmp(lower, expected) ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int status;
        ASSERT_EQ(waitpid(pids[i], &status, 0), pids[i]);
        ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_matches_archive(expected, commit2);
    _cleanup_free_ char *left = capture("ls -A %s/layers/tmp", state);
    ASSERT_STREQ(left, "");
}

static void test_stale_tmp_swept(void)
{
    _cleanup_free_ char *state = new_dir("state-stale");
    _cleanup_free_ char *stale = wr_asprintf("%s/layers/tmp/deadbeefdeadbeef", state);
    _cleanup_free_ char *fresh = wr_asprintf("%s/layers/tmp/0123456789abcdef", state);
    ASSERT_EQ(wr_mkdir_p(stale, 0755), 0);
    ASSERT_EQ(wr_mkdir_p(fresh, 0755), 0);
    sh("touch -d '3 days ago' %s", stale);
    _cleanup_free_ char *commit = NULL;
    _cleanup_free_ char *lower = layer_ok(state, repo, NULL, &commit);
    ASSERT(lower);
    ASSERT(access(stale, F_OK) < 0);
    ASSERT_EQ(access(fresh, F_OK), 0); /* maybe another process's checkout in progress */
}

/* warren (root) serves repositories owned by its users: owner validation is off, so a
 * repository owned by someone else is checked out like any other, with no safe.directory
 * configuration. */
static void test_foreign_owner(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "   (skipped: needs root to chown)\n");
        return;
    }
    _cleanup_free_ char *state = new_dir("state-owner");
    _cleanup_free_ char *foreign = wr_asprintf("%s/foreign", root);
    sh("git clone -q %s %s && chown -R 65533:65533 %s", repo, foreign, foreign);
    _cleanup_free_ char *commit = NULL;
    _cleanup_free_ char *lower = layer_ok(state, foreign, NULL, &commit);
    ASSERT_STREQ(commit, commit2);
    assert_matches_archive(lower, commit2);
    _cleanup_free_ char *sub = wr_path_join(foreign, "src");
    _cleanup_free_ char *commit_sub = NULL;
    _cleanup_free_ char *lower_sub = layer_ok(state, sub, NULL, &commit_sub);
    ASSERT_STREQ(lower_sub, lower);
}

int main(void)
{
    char tmpl[] = "/tmp/warren-test-layers-XXXXXX";
    ASSERT(mkdtemp(tmpl));
    root = wr_strdup(tmpl);
    /* Neither the user's nor the system's git configuration may change the results. */
    setenv("HOME", root, 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_AUTHOR_NAME", "warren test", 1);
    setenv("GIT_AUTHOR_EMAIL", "test@warren.invalid", 1);
    setenv("GIT_COMMITTER_NAME", "warren test", 1);
    setenv("GIT_COMMITTER_EMAIL", "test@warren.invalid", 1);
    if (system("git --version > /dev/null 2>&1") != 0)
        SKIP("git is not installed");
    build_repo();

    RUN(test_head);
    RUN(test_other_refs);
    RUN(test_reuse);
    RUN(test_user_repo_untouched);
    RUN(test_subdirectory_and_worktree);
    RUN(test_plain_directory);
    RUN(test_bad_input);
    RUN(test_unborn_and_bare);
    RUN(test_concurrent_processes);
    RUN(test_stale_tmp_swept);
    RUN(test_foreign_owner);

    ASSERT_EQ(wr_rm_rf(root), 0);
    free(root), free(repo), free(commit1), free(commit2), free(feature);
    return 0;
}
