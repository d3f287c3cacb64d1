/* File requests: READ, WRITE, STAT, and the small system ones (MEMSTATS, SYNC,
 * DROP_CACHES). Files are regular files on local or virtiofs storage, so their I/O is
 * done synchronously on the loop; a READ yields to the loop whenever the connection's
 * output queue is full. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "guest-init.h"

#define DEFAULT_FILE_MODE 0644

char *gi_resolve_path(struct gi_conn *c, uint32_t stream, const uint8_t *p, size_t n)
{
    if (n == 0 || n >= PATH_MAX || memchr(p, 0, n)) {
        gi_conn_send_error(c, stream, EINVAL, "path is empty, too long or holds a NUL byte");
        return NULL;
    }
    _cleanup_free_ char *s = wr_strndup((const char *)p, n);
    if (s[0] == '/')
        return TAKE_PTR(s);
    return wr_path_join(GI_WORKSPACE, s);
}

/* Fields of a file request's payload. */
struct file_args {
    const uint8_t *path;
    size_t path_len;
    uint64_t offset, length, mode, flags;
    bool has_length, has_mode;
};

static int parse_file_args(const uint8_t *payload, size_t len, struct file_args *a)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int r;
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        uint64_t *dst = t.tag == GI_T_OFFSET   ? &a->offset
                        : t.tag == GI_T_LENGTH ? &a->length
                        : t.tag == GI_T_MODE   ? &a->mode
                        : t.tag == GI_T_FLAGS  ? &a->flags
                                               : NULL;
        if (t.tag == GI_T_PATH) {
            a->path = t.value;
            a->path_len = t.len;
        } else if (dst && gi_tlv_u64(&t, dst) < 0) {
            return -EPROTO;
        }
        a->has_length |= t.tag == GI_T_LENGTH;
        a->has_mode |= t.tag == GI_T_MODE;
    }
    return r;
}

/* Parses the payload and resolves PATH; NULL when the request is already answered. */
static char *file_request(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len,
                          struct file_args *a, int *ret)
{
    *a = (struct file_args){0};
    *ret = parse_file_args(payload, len, a);
    if (*ret < 0)
        return NULL;
    if (!a->path) {
        gi_conn_send_error(c, stream, EINVAL, "PATH missing");
        return NULL;
    }
    return gi_resolve_path(c, stream, a->path, a->path_len);
}

static int send_errno(struct gi_conn *c, uint32_t stream, int e, const char *what, const char *path)
{
    return gi_conn_send_error(c, stream, e, "%s '%s': %s", what, path, strerror(e));
}

/* ---- READ --------------------------------------------------------------------------- */

struct read_req {
    struct gi_req req;
    int fd;
    uint64_t offset, left, size, bytes;
};

static void read_done(struct read_req *rr, int e)
{
    struct gi_conn *c = rr->req.conn;
    if (e) {
        gi_conn_send_error(c, rr->req.stream, e, "read: %s", strerror(e));
    } else {
        struct gi_writer *w = gi_conn_writer(c);
        gi_writer_start(w, GI_RESULT, rr->req.stream);
        gi_writer_u64(w, GI_T_SIZE, rr->size);
        gi_writer_u64(w, GI_T_BYTES, rr->bytes);
        gi_conn_send(c, w);
    }
    gi_req_remove(&rr->req);
    close(rr->fd);
    gi_defer_free(rr);
}

/* Sends DATA frames until done or until the connection is congested (on_drain then
 * calls again). pread goes straight into the output queue. */
static void read_pump(struct gi_req *req)
{
    struct read_req *rr = (struct read_req *)req;
    struct gi_conn *c = req->conn;
    while (rr->left > 0 && !gi_conn_congested(c)) {
        size_t want = (size_t)WR_MIN(rr->left, (uint64_t)GI_CHUNK_SIZE);
        uint8_t *p = gi_conn_reserve(c, want);
        ssize_t n = pread(rr->fd, p, want, (off_t)rr->offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            read_done(rr, errno);
            return;
        }
        if (n == 0)
            break;
        gi_conn_commit(c, GI_DATA, req->stream, (size_t)n);
        rr->offset += (uint64_t)n;
        rr->bytes += (uint64_t)n;
        rr->left -= (uint64_t)n;
    }
    if (rr->left == 0 || !gi_conn_congested(c))
        read_done(rr, 0);
}

static void read_abort(struct gi_req *req)
{
    close(((struct read_req *)req)->fd);
    gi_defer_free(req);
}

static int no_follow_up(struct gi_req *req, uint16_t type, const uint8_t *p, size_t n)
{
    return 0;
}

static int open_regular(struct gi_conn *c, uint32_t stream, const char *path, struct stat *st)
{
    /* O_NONBLOCK: opening a FIFO must not hang the loop before we can refuse it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return send_errno(c, stream, errno, "open", path), -1;
    if (fstat(fd, st) < 0) {
        send_errno(c, stream, errno, "stat", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        int e = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
        gi_conn_send_error(c, stream, e, "read '%s': not a regular file", path);
        close(fd);
        return -1;
    }
    return fd;
}

int gi_read_start(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct file_args a;
    int r;
    _cleanup_free_ char *path = file_request(c, stream, payload, len, &a, &r);
    if (!path)
        return r;
    struct stat st;
    int fd = open_regular(c, stream, path, &st);
    if (fd < 0)
        return 0;
    struct read_req *rr = wr_calloc(1, sizeof(*rr));
    rr->req = (struct gi_req){
        .stream = stream, .on_frame = no_follow_up, .on_drain = read_pump, .abort = read_abort};
    rr->fd = fd;
    rr->offset = a.offset;
    rr->size = (uint64_t)st.st_size;
    rr->left = a.has_length ? a.length : UINT64_MAX;
    gi_req_add(c, &rr->req);
    read_pump(&rr->req);
    return 0;
}

/* ---- WRITE -------------------------------------------------------------------------- */

struct write_req {
    struct gi_req req;
    int fd;
    uint64_t bytes;
    char *path;
};

static void write_free(struct write_req *wq)
{
    close(wq->fd);
    free(wq->path);
    gi_defer_free(wq);
}

static void write_abort(struct gi_req *req)
{
    write_free((struct write_req *)req);
}

static void write_finish(struct write_req *wq, int e)
{
    struct gi_conn *c = wq->req.conn;
    if (e) {
        send_errno(c, wq->req.stream, e, "write", wq->path);
    } else {
        struct gi_writer *w = gi_conn_writer(c);
        gi_writer_start(w, GI_RESULT, wq->req.stream);
        gi_writer_u64(w, GI_T_BYTES, wq->bytes);
        gi_conn_send(c, w);
    }
    gi_req_remove(&wq->req);
    write_free(wq);
}

static int write_frame(struct gi_req *req, uint16_t type, const uint8_t *payload, size_t len)
{
    struct write_req *wq = (struct write_req *)req;
    if (type == GI_DATA) {
        int r = wr_write_all(wq->fd, payload, len);
        if (r < 0)
            write_finish(wq, -r);
        else
            wq->bytes += len;
    } else if (type == GI_WRITE_END) {
        int fd = TAKE_FD(wq->fd);
        /* close reports delayed write errors of network filesystems (virtiofs). */
        write_finish(wq, close(fd) < 0 ? errno : 0);
    }
    return 0;
}

/* Opens for writing; mode is applied exactly (not through the umask) when the file is
 * created, and left alone when it exists. */
static int open_for_write(const char *path, const struct file_args *a)
{
    int flags = O_WRONLY | O_CLOEXEC | O_NOCTTY | (a->flags & GI_WRITE_APPEND ? O_APPEND : O_TRUNC);
    mode_t mode = a->has_mode ? (mode_t)(a->mode & 07777) : DEFAULT_FILE_MODE;
    int fd = open(path, flags | O_CREAT | O_EXCL, mode);
    if (fd >= 0) {
        fchmod(fd, mode);
        return fd;
    }
    if (errno != EEXIST)
        return -errno;
    fd = open(path, flags);
    return fd < 0 ? -errno : fd;
}

static int make_parents(const char *path)
{
    _cleanup_free_ char *dir = wr_strdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    return wr_mkdir_p(dir, 0755);
}

int gi_write_start(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct file_args a;
    int r;
    _cleanup_free_ char *path = file_request(c, stream, payload, len, &a, &r);
    if (!path)
        return r;
    if ((a.flags & GI_WRITE_CREATE_DIRS) && (r = make_parents(path)) < 0)
        return send_errno(c, stream, -r, "creating the parent directories of", path);
    int fd = open_for_write(path, &a);
    if (fd < 0)
        return send_errno(c, stream, -fd, "open", path);
    struct write_req *wq = wr_calloc(1, sizeof(*wq));
    wq->req = (struct gi_req){.stream = stream, .on_frame = write_frame, .abort = write_abort};
    wq->fd = fd;
    wq->path = TAKE_PTR(path);
    gi_req_add(c, &wq->req);
    return 0;
}

/* ---- STAT, MEMSTATS, SYNC, DROP_CACHES ---------------------------------------------- */

int gi_stat(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct file_args a;
    int r;
    _cleanup_free_ char *path = file_request(c, stream, payload, len, &a, &r);
    if (!path)
        return r;
    struct stat st;
    if (stat(path, &st) < 0)
        return send_errno(c, stream, errno, "stat", path);
    struct gi_writer *w = gi_conn_writer(c);
    gi_writer_start(w, GI_RESULT, stream);
    gi_writer_u64(w, GI_T_SIZE, (uint64_t)st.st_size);
    gi_writer_u64(w, GI_T_MODE, st.st_mode);
    gi_writer_u64(w, GI_T_MTIME, (uint64_t)(int64_t)st.st_mtime);
    gi_writer_u64(w, GI_T_FILE_TYPE, (st.st_mode & S_IFMT) >> 12);
    char name[64];
    gi_id_name(st.st_uid, false, name);
    gi_writer_str(w, GI_T_OWNER, name);
    gi_id_name(st.st_gid, true, name);
    gi_writer_str(w, GI_T_GROUP, name);
    gi_conn_send(c, w);
    return 0;
}

/* Value of a "Name:   123 kB" line of /proc/meminfo, in bytes; 0 when absent. */
static uint64_t meminfo_field(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = text; line;) {
        if (strncmp(line, name, n) == 0 && line[n] == ':')
            return strtoull(line + n + 1, NULL, 10) * 1024;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return 0;
}

int gi_memstats(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    _cleanup_free_ char *text = NULL;
    size_t n;
    int r = wr_read_file("/proc/meminfo", 64 * 1024, &text, &n);
    if (r < 0)
        return send_errno(c, stream, -r, "read", "/proc/meminfo");
    struct gi_writer *w = gi_conn_writer(c);
    gi_writer_start(w, GI_RESULT, stream);
    gi_writer_u64(w, GI_T_MEM_TOTAL, meminfo_field(text, "MemTotal"));
    gi_writer_u64(w, GI_T_MEM_FREE, meminfo_field(text, "MemFree"));
    gi_writer_u64(w, GI_T_MEM_AVAILABLE, meminfo_field(text, "MemAvailable"));
    gi_writer_u64(w, GI_T_MEM_CACHED, meminfo_field(text, "Cached"));
    gi_conn_send(c, w);
    return 0;
}

int gi_sync(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    sync();
    gi_conn_send_empty_result(c, stream);
    return 0;
}

int gi_drop_caches(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    static const char path[] = "/proc/sys/vm/drop_caches";
    sync();
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return send_errno(c, stream, errno, "open", path);
    int r = wr_write_all(fd, "3\n", 2);
    if (r < 0)
        return send_errno(c, stream, -r, "write", path);
    gi_conn_send_empty_result(c, stream);
    return 0;
}
