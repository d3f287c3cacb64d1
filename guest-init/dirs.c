/* Directory requests: LIST_DIR, MKDIR, RENAME, REMOVE (PROTOCOL.md, "Directories"). The
 * file system work is tree.c's; this file parses the requests and answers them. They run
 * synchronously on the loop: a listing is bounded (GI_LIST_MAX_ENTRIES entries,
 * GI_LIST_MAX_BYTES of frames) and a removal is what `rm -r` would do. */
#include <string.h>
#include <sys/stat.h>

#include "guest-init.h"
#include "tree.h"

#define DEFAULT_DIR_MODE 0755
/* DIR_ENTRIES frames are sent when they pass this size (an entry adds at most ~8 KiB). */
#define ENTRIES_FRAME_BYTES (64u * 1024u)

struct dir_args {
    const uint8_t *path, *new_path;
    size_t path_len, new_path_len;
    uint64_t depth, max_entries, mode, flags;
    bool has_mode;
};

static int parse_dir_args(const uint8_t *payload, size_t len, struct dir_args *a)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int r;
    *a = (struct dir_args){.depth = 1, .max_entries = GI_LIST_MAX_ENTRIES};
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        uint64_t *dst = t.tag == GI_T_DEPTH         ? &a->depth
                        : t.tag == GI_T_MAX_ENTRIES ? &a->max_entries
                        : t.tag == GI_T_MODE        ? &a->mode
                        : t.tag == GI_T_FLAGS       ? &a->flags
                                                    : NULL;
        if (t.tag == GI_T_PATH) {
            a->path = t.value;
            a->path_len = t.len;
        } else if (t.tag == GI_T_NEW_PATH) {
            a->new_path = t.value;
            a->new_path_len = t.len;
        } else if (dst && gi_tlv_u64(&t, dst) < 0) {
            return -EPROTO;
        }
        a->has_mode |= t.tag == GI_T_MODE;
    }
    return r;
}

/* Parses the payload and resolves PATH; NULL when the request is already answered (or
 * *ret < 0: malformed). */
static char *dir_request(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len,
                         struct dir_args *a, int *ret)
{
    *ret = parse_dir_args(payload, len, a);
    if (*ret < 0)
        return NULL;
    if (!a->path) {
        gi_conn_send_error(c, stream, EINVAL, "PATH missing");
        return NULL;
    }
    return gi_resolve_path(c, stream, a->path, a->path_len);
}

static int answer(struct gi_conn *c, uint32_t stream, int r, const char *what, const char *path)
{
    if (r < 0)
        return gi_conn_send_error(c, stream, -r, "%s '%s': %s", what, path, strerror(-r));
    gi_conn_send_empty_result(c, stream);
    return 0;
}

/* ---- LIST_DIR ------------------------------------------------------------------------- */

struct listing {
    struct gi_conn *conn;
    uint32_t stream;
    struct gi_writer w; /* the DIR_ENTRIES frame being filled */
    bool open;          /* w holds a started frame */
    uint64_t entries, max_entries;
    size_t bytes;
};

static void flush_entries(struct listing *l)
{
    if (!l->open)
        return;
    if (gi_writer_finish(&l->w) == 0)
        gi_conn_send(l->conn, &l->w);
    l->open = false;
}

static int add_entry(void *data, const struct gi_tree_entry *e)
{
    struct listing *l = data;
    size_t cost = strlen(e->path) + (e->link_target ? strlen(e->link_target) : 0) + 64;
    if (l->entries >= l->max_entries || l->bytes + cost > GI_LIST_MAX_BYTES)
        return -1;
    if (!l->open) {
        gi_writer_start(&l->w, GI_DIR_ENTRIES, l->stream);
        l->open = true;
    }
    gi_writer_str(&l->w, GI_T_ENTRY, e->path);
    gi_writer_u64(&l->w, GI_T_FILE_TYPE, e->type);
    gi_writer_u64(&l->w, GI_T_SIZE, e->size);
    gi_writer_u64(&l->w, GI_T_MODE, e->mode);
    gi_writer_u64(&l->w, GI_T_MTIME, (uint64_t)e->mtime);
    if (e->link_target)
        gi_writer_str(&l->w, GI_T_LINK_TARGET, e->link_target);
    char name[64];
    gi_id_name(e->uid, false, name);
    gi_writer_str(&l->w, GI_T_OWNER, name);
    gi_id_name(e->gid, true, name);
    gi_writer_str(&l->w, GI_T_GROUP, name);
    l->entries++;
    l->bytes += cost;
    if (l->w.len >= ENTRIES_FRAME_BYTES)
        flush_entries(l);
    return 0;
}

int gi_list_dir(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct dir_args a;
    int r;
    _cleanup_free_ char *path = dir_request(c, stream, payload, len, &a, &r);
    if (!path)
        return r;
    struct stat st;
    if (stat(path, &st) < 0)
        return answer(c, stream, -errno, "list", path);
    if (!S_ISDIR(st.st_mode))
        return gi_conn_send_error(c, stream, ENOTDIR, "list '%s': not a directory", path);
    struct listing l = {.conn = c,
                        .stream = stream,
                        .max_entries = WR_MIN(a.max_entries, (uint64_t)GI_LIST_MAX_ENTRIES)};
    bool truncated = false;
    unsigned depth = (unsigned)WR_MIN(WR_MAX(a.depth, 1), (uint64_t)GI_LIST_MAX_DEPTH);
    r = gi_tree_list(path, depth, add_entry, &l, &truncated);
    flush_entries(&l);
    gi_writer_free(&l.w);
    if (r < 0)
        return answer(c, stream, r, "list", path);
    struct gi_writer *w = gi_conn_writer(c);
    gi_writer_start(w, GI_RESULT, stream);
    gi_writer_u64(w, GI_T_TRUNCATED, truncated);
    gi_conn_send(c, w);
    return 0;
}

/* ---- MKDIR, RENAME, REMOVE ------------------------------------------------------------ */

int gi_mkdir(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct dir_args a;
    int r;
    _cleanup_free_ char *path = dir_request(c, stream, payload, len, &a, &r);
    if (!path)
        return r;
    mode_t mode = a.has_mode ? (mode_t)(a.mode & 07777) : DEFAULT_DIR_MODE;
    return answer(c, stream, gi_tree_make_dir(path, mode, a.flags & GI_MKDIR_PARENTS),
                  "creating directory", path);
}

int gi_rename(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct dir_args a;
    int r;
    _cleanup_free_ char *from = dir_request(c, stream, payload, len, &a, &r);
    if (!from)
        return r;
    if (!a.new_path)
        return gi_conn_send_error(c, stream, EINVAL, "NEW_PATH missing");
    _cleanup_free_ char *to = gi_resolve_path(c, stream, a.new_path, a.new_path_len);
    if (!to)
        return 0;
    r = gi_tree_rename(from, to, a.flags & GI_RENAME_OVERWRITE);
    if (r == -EEXIST || r == -ENOTEMPTY)
        return gi_conn_send_error(c, stream, EEXIST, "moving '%s': '%s' exists", from, to);
    if (r == -EXDEV)
        return gi_conn_send_error(c, stream, EXDEV,
                                  "moving '%s' to '%s': not possible across file systems, or for "
                                  "a directory that came with the sandbox's image or checkout",
                                  from, to);
    return answer(c, stream, r, "moving", from);
}

int gi_remove(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    struct dir_args a;
    int r;
    _cleanup_free_ char *path = dir_request(c, stream, payload, len, &a, &r);
    if (!path)
        return r;
    r = gi_tree_removable(path, NULL);
    if (r == -EPERM)
        return gi_conn_send_error(c, stream, EPERM, "refusing to remove '%s'", path);
    if (r == 0)
        r = gi_tree_remove(path, a.flags & GI_REMOVE_RECURSIVE);
    if (r == -EISDIR)
        return gi_conn_send_error(c, stream, EISDIR,
                                  "'%s' is a directory: removing it needs recursive", path);
    return answer(c, stream, r, "removing", path);
}
