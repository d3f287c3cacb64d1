#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

char *wr_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (*b == '/')
        b++;
    if (la > 0 && a[la - 1] == '/')
        return wr_asprintf("%s%s", a, b);
    return wr_asprintf("%s/%s", a, b);
}

int wr_mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = wr_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Removes the contents of the directory open at dfd; dev is the device of the top
 * directory so that mounts below it are left alone. */
static int rm_contents(int dfd, dev_t dev)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    int ret = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT)
                ret = -errno;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev) {
                ret = -EBUSY;
                continue;
            }
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                /* Overlay work dirs are mode 000; root can still open them, others chmod. */
                if (fchmodat(dirfd(d), de->d_name, 0700, 0) == 0)
                    sub = openat(dirfd(d), de->d_name,
                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0) {
                    ret = -errno;
                    continue;
                }
            }
            int r = rm_contents(sub, dev);
            if (r < 0)
                ret = r;
            if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                ret = -errno;
        } else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
            ret = -errno;
        }
    }
    closedir(d);
    return ret;
}

int wr_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = rm_contents(fd, st.st_dev);
    if (r < 0)
        return r;
    if (rmdir(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int wr_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct wr_buf b;
    wr_buf_init(&b, max);
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int r = -errno;
            wr_buf_free(&b);
            return r;
        }
        if (n == 0)
            break;
        if (wr_buf_append(&b, chunk, (size_t)n) < 0) {
            wr_buf_free(&b);
            return -EFBIG;
        }
    }
    *ret = wr_buf_steal(&b, ret_len);
    return 0;
}

int wr_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_renamed(const char *path, const void *data, size_t n, mode_t mode, bool sync)
{
    /* The directory may be one a sandbox writes (its upper, between boots): whatever it
     * left at the temporary name, a symlink to a host file included, is removed and the
     * file made afresh, never opened through. */
    _cleanup_free_ char *tmp = wr_asprintf("%s.tmp.%d", path, (int)getpid());
    (void)unlink(tmp);
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int r = wr_write_all(fd, data, n);
    if (r == 0 && sync && fsync(fd) < 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

int wr_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
    return write_renamed(path, data, n, mode, true);
}

int wr_write_file_replace(const char *path, const void *data, size_t n, mode_t mode)
{
    return write_renamed(path, data, n, mode, false);
}

uint64_t wr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t wr_now_ms(void)
{
    return wr_now_ns() / 1000000ull;
}

int64_t wr_unix_time(void)
{
    return (int64_t)time(NULL);
}

void wr_format_time(int64_t t, char out[static 32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

uint64_t wr_process_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    /* After ')' come fields 3..; the start time is field 22, so skip 19 fields. */
    if (p[0] == ' ' && p[1] == 'Z')
        return 0; /* a zombie is as good as gone */
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

const struct wr_embedded_file *wr_embedded_find(const struct wr_embedded_file *table,
                                                const char *name)
{
    for (const struct wr_embedded_file *f = table; f && f->name; f++)
        if (!strcmp(f->name, name))
            return f;
    return NULL;
}

static uint64_t du_total;

static int du_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (type == FTW_F || type == FTW_SL || type == FTW_D || type == FTW_DP)
        du_total += (uint64_t)st->st_blocks * 512u;
    return 0;
}

static pthread_mutex_t du_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t wr_disk_usage(const char *path)
{
    /* nftw takes no user data: one walk at a time. */
    pthread_mutex_lock(&du_lock);
    du_total = 0;
    (void)nftw(path, du_visit, 32, FTW_PHYS | FTW_MOUNT);
    uint64_t total = du_total;
    pthread_mutex_unlock(&du_lock);
    return total;
}
