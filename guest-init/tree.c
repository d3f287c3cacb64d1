/* Directory trees for the LIST_DIR, MKDIR, RENAME and REMOVE requests: plain file system
 * work on paths, without the connection (dirs.c speaks the protocol), so that the unit
 * tests can run it in a directory of their own. Symlinks are never followed: a listing
 * reports them, a removal removes the link. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tree.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir (an fd, not taken), sorted; at most GI_TREE_MAX_NAMES (*ret_cut then). */
static int read_names(int dirfd, char ***ret, size_t *ret_n, bool *ret_cut)
{
    int fd = dup(dirfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    rewinddir(d);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == GI_TREE_MAX_NAMES) {
            *ret_cut = true;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = wr_realloc(names, cap * sizeof(char *));
        }
        names[n++] = wr_strdup(de->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(char *), compare_names);
    *ret = names;
    *ret_n = n;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

struct lister {
    gi_tree_cb cb;
    void *data;
    unsigned depth;
    bool truncated;
    bool stopped;
};

static int list_dir(struct lister *l, int dirfd, const char *prefix, unsigned level);

/* One entry: reported, then listed itself when it is a directory and depth allows. */
static int list_entry(struct lister *l, int dirfd, const char *name, const char *prefix,
                      unsigned level)
{
    _cleanup_free_ char *path = prefix[0] ? wr_asprintf("%s/%s", prefix, name) : wr_strdup(name);
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno; /* gone since readdir: skip it */
    char target[PATH_MAX];
    struct gi_tree_entry e = {.path = path,
                              .type = (st.st_mode & S_IFMT) >> 12,
                              .size = (uint64_t)st.st_size,
                              .mode = st.st_mode,
                              .mtime = (int64_t)st.st_mtime,
                              .uid = st.st_uid,
                              .gid = st.st_gid};
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
        if (n >= 0) {
            target[n] = 0;
            e.link_target = target;
        }
    }
    if (l->cb(l->data, &e) < 0) {
        l->stopped = l->truncated = true;
        return 0;
    }
    if (!S_ISDIR(st.st_mode) || level + 1 >= l->depth)
        return 0;
    int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return 0; /* unreadable (permissions, gone): listed, not entered */
    int r = list_dir(l, sub, path, level + 1);
    close(sub);
    return r;
}

static int list_dir(struct lister *l, int dirfd, const char *prefix, unsigned level)
{
    char **names = NULL;
    size_t n = 0;
    int r = read_names(dirfd, &names, &n, &l->truncated);
    if (r < 0)
        return level == 0 ? r : 0;
    for (size_t i = 0; r == 0 && i < n && !l->stopped; i++)
        r = list_entry(l, dirfd, names[i], prefix, level);
    free_names(names, n);
    return r;
}

int gi_tree_list(const char *dir, unsigned depth, gi_tree_cb cb, void *data, bool *ret_truncated)
{
    struct lister l = {.cb = cb, .data = data, .depth = depth ? depth : 1};
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = list_dir(&l, fd, "", 0);
    *ret_truncated = l.truncated;
    return r;
}

/* The lexical form of an absolute path: no "." components, no repeated or trailing
 * slashes. NULL when it holds a ".." component. */
static char *normalize(const char *path)
{
    char *out = wr_malloc(strlen(path) + 2);
    size_t n = 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0)
            break;
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            free(out);
            return NULL;
        }
        if (!(len == 1 && p[0] == '.')) {
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = 0;
    return out;
}

int gi_tree_removable(const char *path, char **ret_normalized)
{
    if (path[0] != '/')
        return -EINVAL;
    _cleanup_free_ char *norm = normalize(path);
    if (!norm)
        return -EINVAL;
    if (!strcmp(norm, "/") || !strcmp(norm, GI_TREE_WORKSPACE))
        return -EPERM;
    /* Through symlinks of the directories above: the real place of the last name. */
    char *slash = strrchr(norm, '/');
    _cleanup_free_ char *parent = slash == norm ? wr_strdup("/") : wr_strndup(norm, (size_t)(slash - norm));
    _cleanup_free_ char *real = realpath(parent, NULL);
    if (!real)
        return -errno;
    _cleanup_free_ char *full = wr_path_join(real, slash + 1);
    if (!strcmp(full, "/") || !strcmp(full, GI_TREE_WORKSPACE))
        return -EPERM;
    if (ret_normalized)
        *ret_normalized = TAKE_PTR(norm);
    return 0;
}

int gi_tree_remove(const char *raw_path, bool recursive)
{
    /* The lexical form: "link/." would otherwise be the link's target. */
    _cleanup_free_ char *path = NULL;
    int r = gi_tree_removable(raw_path, &path);
    if (r < 0)
        return r;
    struct stat st;
    if (lstat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 ? -errno : 0;
    if (!recursive)
        return -EISDIR;
    return wr_rm_rf(path);
}

int gi_tree_make_dir(const char *path, mode_t mode, bool parents)
{
    if (parents) {
        int r = wr_mkdir_p(path, mode);
        struct stat st;
        if (r == -EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        return r;
    }
    return mkdir(path, mode) < 0 ? -errno : 0;
}

int gi_tree_rename(const char *from, const char *to, bool overwrite)
{
    if (overwrite)
        return rename(from, to) < 0 ? -errno : 0;
    if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* A file system without RENAME_NOREPLACE: check, then rename (not atomic). */
    struct stat st;
    if (lstat(to, &st) == 0)
        return -EEXIST;
    return rename(from, to) < 0 ? -errno : 0;
}
