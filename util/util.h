/* util: the dependency-free helpers compiled into every warren target (the server, the
 * unit tests and the static guest-init): errors with context, cleanup macros, capped
 * buffers, logging, base64, random ids, and a few filesystem helpers. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- errors (crun's libcrun_error_t shape) ---------------------------------------- */

/* An error travelling up the stack. `status` is a positive errno value (EINVAL for bad
 * input, ENOENT for something missing, ETIMEDOUT, ...); `msg` is what a human reads,
 * outermost context first ("starting sandbox 'x': connect: No such file"). */
struct wr_error {
    int status;
    char *msg;
};

/* Sets *err (when err is not NULL and *err is still NULL) and returns -status (or -1
 * when status is 0). The message is printf-formatted. */
int wr_error_set(struct wr_error **err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like wr_error_set but appends ": strerror(status)". */
int wr_error_set_errno(struct wr_error **err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "context: " to an existing error and returns -status. */
int wr_error_wrap(struct wr_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* NULL-safe. */
void wr_error_free(struct wr_error *err);
/* Moves *src into *dst when *dst is empty; frees it otherwise. */
void wr_error_move(struct wr_error **dst, struct wr_error **src);

/* ---- ownership --------------------------------------------------------------------- */

static inline void wr_freep(void *p)
{
    free(*(void **)p);
}
static inline void wr_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
static inline void wr_error_freep(struct wr_error **e)
{
    wr_error_free(*e);
}
void wr_strv_free(char **v);
static inline void wr_strv_freep(char ***v)
{
    wr_strv_free(*v);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(wr_freep)
#define _cleanup_close_ _cleanup_(wr_closep)
#define _cleanup_error_ _cleanup_(wr_error_freep)
#define _cleanup_strv_ _cleanup_(wr_strv_freep)

#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _tmp_ = (p);                                                                 \
        (p) = NULL;                                                                                \
        _tmp_;                                                                                     \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _tmp_ = (fd);                                                                          \
        (fd) = -1;                                                                                 \
        _tmp_;                                                                                     \
    })

#define WR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define WR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define WR_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Abort on allocation failure: warren cannot do anything useful without memory, and
 * checking every small allocation obscures the code (redis and systemd do the same). */
void *wr_malloc(size_t n);
void *wr_calloc(size_t n, size_t size);
void *wr_realloc(void *p, size_t n);
char *wr_strdup(const char *s);
char *wr_strndup(const char *s, size_t n);
char *wr_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char **wr_strv_copy(const char *const *v);
size_t wr_strv_len(const char *const *v);
/* Appends s (taken over) to the NULL-terminated *v of *n entries (*v may be NULL). */
void wr_strv_push(char ***v, size_t *n, char *s);
/* The entries of v joined with sep (v may be NULL: ""). Caller frees. */
char *wr_strv_join(const char *const *v, const char *sep);

/* ---- capped buffers (curl's dynbuf) ------------------------------------------------ */

struct wr_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /* appends past max fail with -ENOSPC and leave the buffer unchanged */
};

void wr_buf_init(struct wr_buf *b, size_t max);
int wr_buf_append(struct wr_buf *b, const void *data, size_t n);
/* Makes room for n more bytes at once (one allocation instead of repeated doubling). */
int wr_buf_reserve(struct wr_buf *b, size_t n);
int wr_buf_printf(struct wr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void wr_buf_consume(struct wr_buf *b, size_t n);
void wr_buf_reset(struct wr_buf *b);
/* Returns the data (caller owns it) and resets the buffer. Never NULL. */
char *wr_buf_steal(struct wr_buf *b, size_t *ret_len);
void wr_buf_free(struct wr_buf *b);

/* ---- logging (stderr only: stdout belongs to JSON-RPC in stdio mode) ---------------- */

enum wr_log_level {
    WR_LOG_ERROR = 3,
    WR_LOG_WARNING = 4,
    WR_LOG_NOTICE = 5,
    WR_LOG_INFO = 6,
    WR_LOG_DEBUG = 7,
};

void wr_log_set_level(int level);
void wr_log_set_json(bool json);
int wr_log_get_level(void);
void wr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) wr_log(WR_LOG_ERROR, __VA_ARGS__)
#define log_warning(...) wr_log(WR_LOG_WARNING, __VA_ARGS__)
#define log_info(...) wr_log(WR_LOG_INFO, __VA_ARGS__)
#define log_debug(...) wr_log(WR_LOG_DEBUG, __VA_ARGS__)
/* Logs with ": strerror(-r)" appended and returns r. */
#define log_error_errno(r, fmt, ...)                                                               \
    ({                                                                                             \
        int _r_ = (r);                                                                             \
        wr_log(WR_LOG_ERROR, fmt ": %s", ##__VA_ARGS__, strerror(_r_ < 0 ? -_r_ : _r_));           \
        _r_;                                                                                       \
    })

/* ---- encodings and randomness ----------------------------------------------------- */

size_t wr_base64_encoded_len(size_t n);
/* Writes wr_base64_encoded_len(n) bytes plus a NUL into out. */
void wr_base64_encode(const void *in, size_t n, char *out);
/* Decodes standard base64 (padding optional, no whitespace). Returns the decoded length
 * or -EINVAL. out must hold 3 * (n / 4) + 3 bytes. */
ssize_t wr_base64_decode(const char *in, size_t n, void *out);
/* Fills buf from getrandom(2). Returns 0 or -errno. */
int wr_random_bytes(void *buf, size_t n);
/* Writes 2n lowercase hex digits plus NUL. */
void wr_hex_encode(const void *in, size_t n, char *out);

/* ---- names, paths, files ---------------------------------------------------------- */

/* A 16-digit lowercase hex id (sandboxes, snapshots). */
bool wr_id_valid(const char *s);
/* A sandbox/snapshot name: 1-63 chars of [A-Za-z0-9_.-], not starting with '.' or '-'. */
bool wr_name_valid(const char *s);
/* Valid UTF-8 without NUL bytes. */
bool wr_utf8_valid(const char *s, size_t n);
char *wr_path_join(const char *a, const char *b);
/* mkdir -p with the given mode for every created component. Returns 0 or -errno. */
int wr_mkdir_p(const char *path, mode_t mode);
/* rm -rf that never follows symlinks and never crosses into another mount.
 * Returns 0 (also when path is missing) or -errno. */
int wr_rm_rf(const char *path);
/* Reads a whole (small) file, capped at max bytes. Returns 0 or -errno (-EFBIG past max). */
int wr_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* Writes data to path atomically (temp file + rename) with the given mode. */
int wr_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode);
/* The same without fsync: readers never see a half-written file, but a power cut may
 * lose it. For files made again whenever they are needed (a sandbox's own .git, its
 * identity files). */
int wr_write_file_replace(const char *path, const void *data, size_t n, mode_t mode);
/* write(2) until done, retrying EINTR. Returns 0 or -errno. */
int wr_write_all(int fd, const void *data, size_t n);
uint64_t wr_now_ms(void);   /* CLOCK_MONOTONIC */
uint64_t wr_now_ns(void);   /* CLOCK_MONOTONIC */
int64_t wr_unix_time(void); /* CLOCK_REALTIME seconds */
/* ISO 8601 UTC, "2026-11-23T18:31:40Z"; out must hold 21 bytes. */
void wr_format_time(int64_t t, char out[static 32]);
/* Waits until pid has exited (a zombie counts: whoever reaps it may not be us). True when
 * it did within timeout_ms. */
bool wr_wait_exit(pid_t pid, int timeout_ms);
/* The parent's half of a setup handshake: child writes why its setup failed to a pipe
 * whose write end closes on exec (or at exit), and nothing when it succeeds. Reads
 * sync_fd to EOF: 0 when nothing came and child still runs; else an EIO error with the
 * child's message, or "<what> exited during setup", and a failed child is reaped. */
int wr_child_setup_wait(int sync_fd, pid_t child, const char *what, struct wr_error **err);
/* Resident memory of a process, shared pages (a VM's memfd RAM) included. 0 or -errno. */
int wr_process_rss(pid_t pid, uint64_t *ret_bytes);
/* CPU time a process used (utime + stime of /proc/PID/stat), in microseconds. 0 or -errno. */
int wr_process_cpu_usec(pid_t pid, uint64_t *ret_usec);
/* The last `max` bytes of a file (a log), from a line start, as valid UTF-8; NULL when
 * empty or missing. The caller frees it. */
char *wr_file_tail(const char *path, size_t max);
/* Runs argv (argv[0] looked up in PATH) with stdin from /dev/null and waits for it. Its
 * stdout and stderr, merged, go line by line to line (may be NULL) and, when output is
 * not NULL, into output (up to its cap). *ret_status is the wait status. Blocking: call it
 * from a worker thread. 0, or -errno when the program could not be started. */
int wr_run(const char *const *argv, void (*line)(void *data, const char *text), void *data,
           struct wr_buf *output, int *ret_status);
/* Start time of a process (field 22 of /proc/PID/stat), 0 when the process is gone.
 * Together with the pid it names one process across pid reuse. */
uint64_t wr_process_start_time(pid_t pid);

/* Copies s (n bytes) replacing invalid UTF-8 sequences and NUL bytes with U+FFFD, so the
 * result can go into a JSON string. Caller frees. */
char *wr_utf8_sanitize(const char *s, size_t n);

/* Bytes of disk that the files below path take (allocated blocks, symlinks not followed,
 * other filesystems not entered). Blocking. */
uint64_t wr_disk_usage(const char *path);

/* A file compiled into the binary by tools/embed.cmake: tables of these end with an entry
 * whose name is NULL. data has a NUL after its len bytes. */
struct wr_embedded_file {
    const char *name; /* path relative to the folder it was embedded from */
    const unsigned char *data;
    size_t len;
};
/* The entry named name in table, or NULL. */
const struct wr_embedded_file *wr_embedded_find(const struct wr_embedded_file *table,
                                                const char *name);
