#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* Splits chunk into lines for cb, keeping a partial last line in pending. */
static void feed_lines(struct wr_buf *pending, const char *chunk, size_t n,
                       void (*line)(void *data, const char *text), void *data)
{
    (void)wr_buf_append(pending, chunk, n);
    for (;;) {
        char *nl = pending->len ? memchr(pending->data, '\n', pending->len) : NULL;
        if (!nl)
            break;
        *nl = 0;
        if (line)
            line(data, pending->data);
        wr_buf_consume(pending, (size_t)(nl - pending->data) + 1);
    }
}

int wr_run(const char *const *argv, void (*line)(void *data, const char *text), void *data,
           struct wr_buf *output, int *ret_status)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
    pid_t pid;
    extern char **environ;
    int r = posix_spawnp(&pid, argv[0], &actions, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pipefd[1]);
    if (r != 0) {
        close(pipefd[0]);
        return -r;
    }
    struct wr_buf pending;
    wr_buf_init(&pending, 1 << 20);
    char chunk[4096];
    ssize_t n;
    while ((n = read(pipefd[0], chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (output)
            (void)wr_buf_append(output, chunk, (size_t)n);
        feed_lines(&pending, chunk, (size_t)n, line, data);
    }
    if (pending.len && line) {
        (void)wr_buf_append(&pending, "", 1);
        line(data, pending.data);
    }
    wr_buf_free(&pending);
    close(pipefd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    *ret_status = status;
    return 0;
}

int wr_child_setup_wait(int sync_fd, pid_t child, const char *what, struct wr_error **err)
{
    char msg[4096];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(sync_fd, msg + len, sizeof(msg) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (len += (size_t)n) == sizeof(msg) - 1)
            break;
    }
    msg[len] = 0;
    int status;
    if (len > 0) {
        (void)waitpid(child, &status, 0);
        return wr_error_set(err, EIO, "%s", msg);
    }
    /* EOF without a message also happens when the child dies before exec. */
    if (waitpid(child, &status, WNOHANG) == child)
        return wr_error_set(err, EIO, "%s exited during setup (status %d)", what, status);
    return 0;
}

int wr_process_cpu_usec(pid_t pid, uint64_t *ret_usec)
{
    char path[64];
    _cleanup_free_ char *text = NULL;
    size_t len;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int r = wr_read_file(path, 4096, &text, &len);
    if (r < 0)
        return r;
    /* Fields after the command (which may hold spaces and parentheses): state is field 3,
     * utime 14, stime 15. */
    const char *p = strrchr(text, ')');
    unsigned long long utime = 0, stime = 0;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                     &stime) != 2)
        return -EINVAL;
    long hz = sysconf(_SC_CLK_TCK);
    *ret_usec = (utime + stime) * 1000000ull / (uint64_t)(hz > 0 ? hz : 100);
    return 0;
}
