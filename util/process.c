#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "util.h"

bool wr_wait_exit(pid_t pid, int timeout_ms)
{
    _cleanup_close_ int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r;
        while ((r = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
            ;
        return r > 0;
    }
    if (errno == ESRCH)
        return true;
    /* Kernels before 5.3 lack pidfd: poll the start time. */
    uint64_t deadline = wr_now_ms() + (uint64_t)timeout_ms;
    while (wr_process_start_time(pid) != 0) {
        if (wr_now_ms() >= deadline)
            return false;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* The kB value after `key` in a /proc file's text, in bytes. */
static int proc_value(const char *text, const char *key, uint64_t *ret_bytes)
{
    const char *line = strstr(text, key);
    if (!line)
        return -ENOENT;
    *ret_bytes = strtoull(line + strlen(key), NULL, 10) * 1024;
    return 0;
}

int wr_process_rss(pid_t pid, uint64_t *ret_bytes)
{
    char path[64];
    _cleanup_free_ char *text = NULL;
    size_t len;
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    if (wr_read_file(path, 65536, &text, &len) == 0)
        return proc_value(text, "\nRss:", ret_bytes);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    int r = wr_read_file(path, 65536, &text, &len);
    return r < 0 ? r : proc_value(text, "\nVmRSS:", ret_bytes);
}

char *wr_file_tail(const char *path, size_t max)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
        return NULL;
    off_t start = (size_t)st.st_size > max ? st.st_size - (off_t)max : 0;
    _cleanup_free_ char *text = wr_malloc(max);
    ssize_t n = pread(fd, text, max, start);
    if (n <= 0)
        return NULL;
    const char *from = text;
    const char *nl = start > 0 ? memchr(text, '\n', (size_t)n) : NULL;
    if (nl)
        from = nl + 1;
    return wr_utf8_sanitize(from, (size_t)(n - (from - text)));
}
