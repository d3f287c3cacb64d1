/* Builds and caches the initramfs of the VM backends (layout in guest-image.h).
 *
 * The cpio "newc" format is simple enough to write here, which keeps the server free of
 * an external cpio tool: every entry is a 110-byte ASCII header ("070701" and thirteen
 * 8-digit hex fields), the NUL-terminated name padded to 4 bytes, then the data padded
 * to 4 bytes; a "TRAILER!!!" entry ends the archive. The kernel unpacks it into the
 * rootfs tmpfs before running /init. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "guest-image.h"

/* Part of the cache key: bump it when the layout changes, so old caches are rebuilt. */
#define LAYOUT_VERSION "warren-initrd-1"
#define MAX_MODULES 64
#define MAX_MODULE_NAME 64
/* Temp files of a crashed build older than this are removed by the next build. */
#define STALE_TMP_SECONDS 60

struct cpio_writer {
    int fd;
    uint32_t next_ino;
    size_t len;
    uint8_t buf[64 * 1024];
};

struct module_list {
    char names[MAX_MODULES][MAX_MODULE_NAME + 1];
    size_t n;
};

/* ---- cpio writer ------------------------------------------------------------------- */

static int cpio_flush(struct cpio_writer *w)
{
    int r = wr_write_all(w->fd, w->buf, w->len);
    w->len = 0;
    return r;
}

static int cpio_put(struct cpio_writer *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        if (w->len == sizeof(w->buf)) {
            int r = cpio_flush(w);
            if (r < 0)
                return r;
        }
        size_t k = WR_MIN(n, sizeof(w->buf) - w->len);
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
    }
    return 0;
}

/* Entries and their data start on 4-byte boundaries; offset is where we are now. */
static int cpio_pad(struct cpio_writer *w, uint64_t offset)
{
    static const uint8_t zeros[3];
    return cpio_put(w, zeros, (4 - offset % 4) % 4);
}

struct cpio_entry {
    const char *name; /* without a leading slash */
    uint32_t mode;    /* type and permission bits */
    uint64_t size;
    uint32_t rdev_major, rdev_minor;
};

static int cpio_header(struct cpio_writer *w, const struct cpio_entry *e)
{
    char h[111];
    size_t name_size = strlen(e->name) + 1;
    uint32_t nlink = S_ISDIR(e->mode) ? 2 : 1;
    /* Fields: ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor
     * namesize check. Everything is owned by root; mtime 0 keeps the archive
     * reproducible. */
    snprintf(h, sizeof(h), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
             w->next_ino++, e->mode, 0u, 0u, nlink, 0u, (uint32_t)e->size, 0u, 0u, e->rdev_major,
             e->rdev_minor, (uint32_t)name_size, 0u);
    int r = cpio_put(w, h, 110);
    if (r == 0)
        r = cpio_put(w, e->name, name_size);
    return r < 0 ? r : cpio_pad(w, 110 + name_size);
}

static int cpio_bytes(struct cpio_writer *w, const char *name, uint32_t mode, const void *data,
                      size_t n)
{
    struct cpio_entry e = {.name = name, .mode = S_IFREG | mode, .size = n};
    int r = cpio_header(w, &e);
    if (r == 0)
        r = cpio_put(w, data, n);
    return r < 0 ? r : cpio_pad(w, n);
}

/* Copies the file at src as exactly the size it had when opened (a file growing under
 * us is cut there; one shrinking is an error, since the header already gave the size). */
static int cpio_file(struct cpio_writer *w, const char *name, uint32_t mode, const char *src)
{
    _cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_size > UINT32_MAX)
        return -EINVAL;
    struct cpio_entry e = {.name = name, .mode = S_IFREG | mode, .size = (uint64_t)st.st_size};
    int r = cpio_header(w, &e);
    uint64_t left = e.size;
    while (r == 0 && left > 0) {
        if (w->len == sizeof(w->buf) && (r = cpio_flush(w)) < 0)
            break;
        ssize_t n = read(fd, w->buf + w->len, WR_MIN(left, sizeof(w->buf) - w->len));
        if (n <= 0)
            r = n < 0 && errno == EINTR ? 0 : n < 0 ? -errno : -EIO;
        else {
            w->len += (size_t)n;
            left -= (uint64_t)n;
        }
    }
    return r < 0 ? r : cpio_pad(w, e.size);
}

static int cpio_special(struct cpio_writer *w, const char *name, uint32_t mode, uint32_t major,
                        uint32_t minor)
{
    struct cpio_entry e = {.name = name, .mode = mode, .rdev_major = major, .rdev_minor = minor};
    return cpio_header(w, &e);
}

/* ---- inputs ------------------------------------------------------------------------ */

static bool module_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > MAX_MODULE_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Parses modules/order: one module name per line; blank lines and # comments skipped. */
static int parse_order(const char *text, const char *path, struct module_list *list,
                       struct wr_error **err)
{
    list->n = 0;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\r'))
            n--;
        if (n > 0 && *p != '#') {
            if (!module_name_valid(p, n))
                return wr_error_set(err, EINVAL, "%s: bad module name '%.*s'", path, (int)n, p);
            if (list->n == MAX_MODULES)
                return wr_error_set(err, E2BIG, "%s: more than %d modules", path, MAX_MODULES);
            memcpy(list->names[list->n], p, n);
            list->names[list->n++][n] = '\0';
        }
        p += strcspn(p, "\n");
        p += *p == '\n';
    }
    return 0;
}

static int read_small(const char *path, char **ret, struct wr_error **err)
{
    size_t n;
    int r = wr_read_file(path, 64 * 1024, ret, &n);
    if (r < 0)
        return wr_error_set_errno(err, -r, "reading %s", path);
    return 0;
}

/* ---- cache key ------------------------------------------------------------------------ */

/* FNV-1a over 8-byte words (then the tail bytes): not a cryptographic hash, only a
 * cache key over files warren itself installs, and eight times faster than bytewise
 * FNV on the megabyte of guest-init hashed at every VM sandbox start. */
static void fnv1a(uint64_t *h, const void *data, size_t n)
{
    const uint8_t *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, p + i, 8);
        *h = (*h ^ word) * 0x100000001b3ull;
    }
    for (; i < n; i++)
        *h = (*h ^ p[i]) * 0x100000001b3ull;
}

static int hash_file_content(uint64_t *h, const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint8_t buf[64 * 1024];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            fnv1a(h, buf, (size_t)n);
    }
    return 0;
}

static void hash_stat(uint64_t *h, const char *path)
{
    struct stat st;
    int64_t v[3] = {-1, 0, 0};
    if (stat(path, &st) == 0) {
        v[0] = st.st_size;
        v[1] = st.st_mtim.tv_sec;
        v[2] = st.st_mtim.tv_nsec;
    }
    fnv1a(h, v, sizeof(v));
}

/* The key covers everything that goes into the archive: guest-init's bytes, the kernel
 * package (VERSION), the module list, and each module file's size and mtime. */
static int compute_key(const char *guest_init, const char *version, const char *order,
                       const char *modules_dir, const struct module_list *list, uint64_t *ret)
{
    uint64_t h = 0xcbf29ce484222325ull;
    fnv1a(&h, LAYOUT_VERSION, sizeof(LAYOUT_VERSION));
    fnv1a(&h, version, strlen(version) + 1);
    fnv1a(&h, order, strlen(order) + 1);
    for (size_t i = 0; i < list->n; i++) {
        _cleanup_free_ char *ko = wr_asprintf("%s/%s.ko", modules_dir, list->names[i]);
        hash_stat(&h, ko);
    }
    int r = hash_file_content(&h, guest_init);
    *ret = h;
    return r;
}

/* ---- building ------------------------------------------------------------------------- */

static int write_archive(struct cpio_writer *w, const char *guest_init, const char *modules_dir,
                         const char *order, const struct module_list *list, struct wr_error **err)
{
    static const char *const dirs[] = {"dev", "proc", "sys", "newroot",
                                       "tmp", "run",  "lib", "lib/modules"};
    int r = 0;
    for (size_t i = 0; i < WR_ARRAY_SIZE(dirs) && r == 0; i++)
        r = cpio_special(w, dirs[i], S_IFDIR | 0755, 0, 0);
    if (r == 0)
        r = cpio_special(w, "dev/console", S_IFCHR | 0600, 5, 1);
    if (r == 0 && (r = cpio_file(w, "init", 0755, guest_init)) < 0)
        return wr_error_set_errno(err, -r, "adding %s", guest_init);
    for (size_t i = 0; i < list->n && r == 0; i++) {
        _cleanup_free_ char *src = wr_asprintf("%s/%s.ko", modules_dir, list->names[i]);
        _cleanup_free_ char *dst = wr_asprintf("lib/modules/%s.ko", list->names[i]);
        if ((r = cpio_file(w, dst, 0644, src)) < 0)
            return wr_error_set_errno(err, -r, "adding module %s", src);
    }
    if (r == 0)
        r = cpio_bytes(w, "lib/modules/order", 0644, order, strlen(order));
    if (r == 0)
        r = cpio_special(w, "TRAILER!!!", 0, 0, 0);
    if (r == 0)
        r = cpio_flush(w);
    return r < 0 ? wr_error_set_errno(err, -r, "writing the initramfs") : 0;
}

struct build_inputs {
    const char *guest_init, *modules_dir, *order;
    const struct module_list *list;
};

/* Writes the archive to a temp file next to path and renames it into place, so that a
 * concurrent reader (another sandbox, another warren) sees a whole file or none. */
static int build_initrd(const char *path, const struct build_inputs *in, struct wr_error **err)
{
    char rnd[8], hex[17];
    if (wr_random_bytes(rnd, sizeof(rnd)) < 0)
        return wr_error_set(err, EIO, "no random bytes for a temp file name");
    wr_hex_encode(rnd, sizeof(rnd), hex);
    _cleanup_free_ char *tmp = wr_asprintf("%s.tmp.%s", path, hex);
    struct cpio_writer *w = wr_calloc(1, sizeof(*w));
    w->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        free(w);
        return wr_error_set_errno(err, errno, "creating %s", tmp);
    }
    w->next_ino = 1;
    int r = write_archive(w, in->guest_init, in->modules_dir, in->order, in->list, err);
    if (r == 0 && fsync(w->fd) < 0)
        r = wr_error_set_errno(err, errno, "fsync %s", tmp);
    close(w->fd);
    free(w);
    if (r == 0 && rename(tmp, path) < 0)
        r = wr_error_set_errno(err, errno, "renaming %s", tmp);
    if (r < 0)
        unlink(tmp);
    return r;
}

static bool is_stale(const char *dir, const char *name, const char *keep)
{
    if (strncmp(name, "initrd-", 7) != 0 || !strcmp(name, keep))
        return false;
    if (!strstr(name, ".tmp."))
        return true;
    /* Someone else's build may still be writing a young temp file. */
    struct stat st;
    _cleanup_free_ char *p = wr_path_join(dir, name);
    return stat(p, &st) == 0 && st.st_mtime + STALE_TMP_SECONDS < time(NULL);
}

/* Removes initramfs files of other keys (an older guest-init or kernel). A VMM that
 * booted from one has already read it: QEMU and Cloud Hypervisor load the initramfs
 * into guest memory at start. */
static void remove_stale(const char *dir, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        if (!is_stale(dir, de->d_name, keep))
            continue;
        _cleanup_free_ char *p = wr_path_join(dir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

/* ---- entry points --------------------------------------------------------------------- */

bool vmm_binary_dir_is_installed(const char *binary_dir)
{
    return !strcmp(binary_dir, WARREN_BINDIR);
}

char *vmm_guest_kernel_dir(const char *binary_dir)
{
    const char *env = getenv("WARREN_GUEST_DIR");
    if (env && *env)
        return wr_strdup(env);
    if (vmm_binary_dir_is_installed(binary_dir))
        return wr_strdup(WARREN_GUEST_KERNEL_DIR);
    return wr_path_join(binary_dir, "guest");
}

struct kernel_files {
    char *kernel, *version, *order, *modules_dir;
    struct module_list list;
};

static void kernel_files_free(struct kernel_files *k)
{
    free(k->kernel);
    free(k->version);
    free(k->order);
    free(k->modules_dir);
}

static int load_kernel_files(const char *kernel_dir, struct kernel_files *k, struct wr_error **err)
{
    struct stat st;
    k->kernel = wr_path_join(kernel_dir, "vmlinuz");
    if (stat(k->kernel, &st) < 0 || !S_ISREG(st.st_mode))
        return wr_error_set(err, ENOENT,
                            "guest kernel not found in %s: run tools/build-guest-kernel.sh %s "
                            "(installed: " WARREN_LIBEXECDIR "/fetch-guest-kernel %s), or "
                            "set WARREN_GUEST_DIR",
                            kernel_dir, kernel_dir, kernel_dir);
    _cleanup_free_ char *version = wr_path_join(kernel_dir, "VERSION");
    _cleanup_free_ char *order = wr_asprintf("%s/modules/order", kernel_dir);
    k->modules_dir = wr_path_join(kernel_dir, "modules");
    if (read_small(version, &k->version, err) < 0 || read_small(order, &k->order, err) < 0)
        return wr_error_wrap(err,
                             "guest kernel in %s is incomplete: run "
                             "tools/build-guest-kernel.sh %s",
                             kernel_dir, kernel_dir);
    return parse_order(k->order, order, &k->list, err);
}

int vmm_guest_kernel_check(const char *kernel_dir, char **ret_version, struct wr_error **err)
{
    _cleanup_(kernel_files_free) struct kernel_files k = {0};
    int r = load_kernel_files(kernel_dir, &k, err);
    if (r < 0)
        return r;
    size_t n = strcspn(k.version, "\n");
    *ret_version = wr_strndup(k.version, n);
    return 0;
}

int vmm_guest_image(const char *state_dir, const char *guest_init_path, const char *kernel_dir,
                    char **ret_kernel, char **ret_initrd, struct wr_error **err)
{
    _cleanup_(kernel_files_free) struct kernel_files k = {0};
    int r = load_kernel_files(kernel_dir, &k, err);
    if (r < 0)
        return r;
    uint64_t key;
    if ((r = compute_key(guest_init_path, k.version, k.order, k.modules_dir, &k.list, &key)) < 0)
        return wr_error_set_errno(err, -r, "reading guest-init %s", guest_init_path);
    _cleanup_free_ char *dir = wr_path_join(state_dir, "guest");
    char name[64];
    snprintf(name, sizeof(name), "initrd-%016llx.cpio", (unsigned long long)key);
    _cleanup_free_ char *path = wr_path_join(dir, name);
    if (access(path, R_OK) < 0) {
        if ((r = wr_mkdir_p(dir, 0755)) < 0)
            return wr_error_set_errno(err, -r, "creating %s", dir);
        struct build_inputs in = {guest_init_path, k.modules_dir, k.order, &k.list};
        if ((r = build_initrd(path, &in, err)) < 0)
            return wr_error_wrap(err, "building the guest initramfs");
        remove_stale(dir, name);
    }
    *ret_kernel = TAKE_PTR(k.kernel);
    *ret_initrd = TAKE_PTR(path);
    return 0;
}
