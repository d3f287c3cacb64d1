/* WATCH: inotify on a directory (and, recursive, every directory below it), reported as
 * envd's events (PROTOCOL.md, "Watching directories"). Each watch has its own inotify
 * instance on the loop; the names it reports are relative to the watched directory. The
 * sandbox's own changes are what inotify sees, in the jail and in a VM alike. */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "guest-init.h"

#define WATCH_MASK                                                                            \
    (IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |              \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)
/* A WATCH_EVENTS frame is sent when it passes this size. */
#define EVENTS_FRAME_BYTES (64u * 1024u)

struct watched_dir {
    int wd;
    char *rel; /* relative to the root: "" for the root itself */
};

struct watch_req {
    struct gi_req req;
    struct gi_watch watch; /* the inotify fd */
    bool recursive;
    struct watched_dir *dirs;
    size_t n_dirs;
    char *root;
};

static unsigned n_watches;

static void watch_free(struct watch_req *w)
{
    gi_watch_close(&w->watch);
    for (size_t i = 0; i < w->n_dirs; i++)
        free(w->dirs[i].rel);
    free(w->dirs);
    free(w->root);
    n_watches--;
    gi_defer_free(w);
}

/* Ends the watch: RESULT (errnum 0) or ERROR. */
static void watch_end(struct watch_req *w, int errnum, const char *message)
{
    if (errnum)
        gi_conn_send_error(w->req.conn, w->req.stream, errnum, "%s", message);
    else
        gi_conn_send_empty_result(w->req.conn, w->req.stream);
    gi_req_remove(&w->req);
    watch_free(w);
}

static struct watched_dir *find_dir(struct watch_req *w, int wd)
{
    for (size_t i = 0; i < w->n_dirs; i++)
        if (w->dirs[i].wd == wd)
            return &w->dirs[i];
    return NULL;
}

/* Watches dir (rel below the root) and, when recursive, the directories below it. Stops
 * at GI_WATCH_DIRS_MAX (-ENOSPC). */
static int add_dir(struct watch_req *w, const char *rel, unsigned depth)
{
    _cleanup_free_ char *path = rel[0] ? wr_path_join(w->root, rel) : wr_strdup(w->root);
    if (w->n_dirs >= GI_WATCH_DIRS_MAX)
        return -ENOSPC;
    int wd = inotify_add_watch(w->watch.fd, path, WATCH_MASK);
    if (wd < 0)
        return -errno;
    if (!find_dir(w, wd)) {
        w->dirs = wr_realloc(w->dirs, (w->n_dirs + 1) * sizeof(*w->dirs));
        w->dirs[w->n_dirs++] = (struct watched_dir){.wd = wd, .rel = wr_strdup(rel)};
    }
    if (!w->recursive || depth >= 64)
        return 0;
    DIR *d = opendir(path);
    if (!d)
        return 0; /* gone again, or not readable: its own events still come */
    struct dirent *de;
    int r = 0;
    while (r == 0 && (de = readdir(d))) {
        if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        _cleanup_free_ char *sub = rel[0] ? wr_path_join(rel, de->d_name) : wr_strdup(de->d_name);
        r = add_dir(w, sub, depth + 1);
        if (r == -ENOENT || r == -ENOTDIR || r == -EACCES)
            r = 0;
    }
    closedir(d);
    return r;
}

static unsigned event_type(uint32_t mask)
{
    if (mask & (IN_CREATE | IN_MOVED_TO))
        return GI_WATCH_CREATE;
    if (mask & IN_MODIFY)
        return GI_WATCH_WRITE;
    if (mask & (IN_DELETE | IN_DELETE_SELF))
        return GI_WATCH_REMOVE;
    if (mask & (IN_MOVED_FROM | IN_MOVE_SELF))
        return GI_WATCH_RENAME;
    if (mask & IN_ATTRIB)
        return GI_WATCH_CHMOD;
    return 0;
}

struct batch {
    struct gi_writer w;
    bool open;
};

static void batch_flush(struct watch_req *wr, struct batch *b)
{
    if (!b->open)
        return;
    if (gi_writer_finish(&b->w) == 0)
        gi_conn_send(wr->req.conn, &b->w);
    b->open = false;
}

static void batch_add(struct watch_req *wr, struct batch *b, const char *name, unsigned type)
{
    if (!b->open) {
        gi_writer_start(&b->w, GI_WATCH_EVENTS, wr->req.stream);
        b->open = true;
    }
    gi_writer_str(&b->w, GI_T_EVENT_NAME, name);
    gi_writer_u64(&b->w, GI_T_EVENT_TYPE, type);
    if (b->w.len >= EVENTS_FRAME_BYTES)
        batch_flush(wr, b);
}

/* One inotify event. Returns <0 (errno) when the watch must end. */
static int handle_event(struct watch_req *w, struct batch *b, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW)
        return -EOVERFLOW;
    struct watched_dir *dir = find_dir(w, ev->wd);
    if (!dir)
        return 0;
    if (ev->mask & IN_IGNORED) {
        /* The directory is gone (or unmounted): the root ends the watch. */
        if (!dir->rel[0])
            return -ENOENT;
        free(dir->rel);
        *dir = w->dirs[--w->n_dirs];
        return 0;
    }
    bool self = ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF);
    if (self && dir->rel[0])
        return 0; /* a subdirectory's own removal is reported by its parent */
    _cleanup_free_ char *name = self || !ev->len ? wr_strdup(dir->rel)
                                : dir->rel[0]    ? wr_path_join(dir->rel, ev->name)
                                                 : wr_strdup(ev->name);
    unsigned type = event_type(ev->mask);
    if (type)
        batch_add(w, b, name, type);
    if (w->recursive && (ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        int r = add_dir(w, name, 0);
        if (r == -ENOSPC)
            return -ENOSPC;
    }
    if (self)
        return -ENOENT;
    return 0;
}

static void on_inotify(struct gi_watch *watch, uint32_t events)
{
    struct watch_req *w = gi_container_of(watch, struct watch_req, watch);
    (void)events;
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct batch b = {0};
    int r = 0;
    for (;;) {
        ssize_t n = read(w->watch.fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; r == 0 && p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            r = handle_event(w, &b, ev);
            p += sizeof(*ev) + ev->len;
        }
        if (r < 0)
            break;
    }
    if (gi_conn_congested(w->req.conn) && r == 0)
        r = -EOVERFLOW; /* the host is not taking the events: stop rather than pile up */
    batch_flush(w, &b);
    gi_writer_free(&b.w);
    if (r == -EOVERFLOW)
        watch_end(w, EOVERFLOW, "too many events: the watch was stopped");
    else if (r == -ENOSPC)
        watch_end(w, ENOSPC, "too many directories to watch");
    else if (r < 0)
        watch_end(w, ENOENT, "the watched directory was removed");
}

static int watch_frame(struct gi_req *req, uint16_t type, const uint8_t *payload, size_t len)
{
    (void)payload;
    (void)len;
    if (type == GI_WATCH_STOP)
        watch_end((struct watch_req *)req, 0, NULL);
    return 0;
}

static void watch_abort(struct gi_req *req)
{
    watch_free((struct watch_req *)req);
}

int gi_watch_start(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct gi_reader rd;
    struct gi_tlv t;
    const uint8_t *path_value = NULL;
    size_t path_len = 0;
    uint64_t recursive = 0;
    int r;
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        if (t.tag == GI_T_PATH) {
            path_value = t.value;
            path_len = t.len;
        } else if (t.tag == GI_T_RECURSIVE && gi_tlv_u64(&t, &recursive) < 0) {
            return -EPROTO;
        }
    }
    if (r < 0)
        return r;
    if (!path_value)
        return gi_conn_send_error(c, stream, EINVAL, "PATH missing");
    _cleanup_free_ char *path = gi_resolve_path(c, stream, path_value, path_len);
    if (!path)
        return 0;
    if (n_watches >= GI_WATCH_MAX)
        return gi_conn_send_error(c, stream, EMFILE, "too many watches (at most %u)",
                                  GI_WATCH_MAX);
    struct stat st;
    if (stat(path, &st) < 0)
        return gi_conn_send_error(c, stream, errno, "watch '%s': %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return gi_conn_send_error(c, stream, ENOTDIR, "watch '%s': not a directory", path);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return gi_conn_send_error(c, stream, errno, "inotify_init1: %s", strerror(errno));
    struct watch_req *w = wr_calloc(1, sizeof *w);
    n_watches++;
    w->req = (struct gi_req){.stream = stream, .on_frame = watch_frame, .abort = watch_abort};
    w->recursive = recursive != 0;
    w->root = TAKE_PTR(path);
    if (gi_watch_add(&w->watch, fd, EPOLLIN, on_inotify) < 0) {
        close(fd);
        w->watch.fd = -1;
        r = -errno;
    } else {
        r = add_dir(w, "", 0);
    }
    if (r < 0) {
        gi_conn_send_error(c, stream, -r, "watch '%s': %s", w->root,
                           r == -ENOSPC ? "too many directories to watch" : strerror(-r));
        watch_free(w);
        return 0;
    }
    gi_req_add(c, &w->req);
    struct gi_writer *wr = gi_conn_writer(c);
    gi_writer_start(wr, GI_WATCH_STARTED, stream);
    gi_conn_send(c, wr);
    return 0;
}
