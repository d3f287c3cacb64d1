/* The host view shared by the jail and the VM filesystem (vmm/backends/vmfs.c): mounting the
 * overlays and the host image (the host's /usr, /etc and library directories, read-only,
 * with secrets masked) into a root being assembled in a private mount namespace. One
 * copy, so that every backend masks exactly the same secrets. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "hostview.h"
#include "net.h"

/* The legacy mount(2) data argument is one page. */
#define MOUNT_DATA_MAX 4095

int vmm_mount(const char *source, const char *target, const char *fstype, unsigned long flags,
              const char *data, struct wr_error **err)
{
    if (mount(source, target, fstype, flags, data) < 0)
        return wr_error_set_errno(err, errno, "mounting %s on %s",
                                  fstype ? fstype : (source ? source : "(none)"), target);
    return 0;
}

/* Flags a remount must keep: in a user namespace the kernel refuses to clear flags that
 * the original mount had (they are locked), so carry them over from statvfs. */
unsigned long vmm_mount_locked_flags(const char *path)
{
    struct statvfs st;
    if (statvfs(path, &st) < 0)
        return 0;
    unsigned long flags = 0;
    const unsigned long map[][2] = {
        {ST_NOSUID, MS_NOSUID},   {ST_NODEV, MS_NODEV},           {ST_NOEXEC, MS_NOEXEC},
        {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
    };
    for (size_t i = 0; i < WR_ARRAY_SIZE(map); i++)
        if (st.f_flag & map[i][0])
            flags |= map[i][1];
    return flags;
}

/* Binds source on target (not recursively: host submounts stay out of the jail) and makes
 * the bind read-only with `extra` flags. */
int vmm_bind_readonly(const char *source, const char *target, unsigned long extra,
                      struct wr_error **err)
{
    int r = vmm_mount(source, target, NULL, MS_BIND, NULL, err);
    if (r < 0)
        return r;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | extra | vmm_mount_locked_flags(target);
    return vmm_mount(NULL, target, NULL, flags, NULL, err);
}

/* Hides a file: opening it fails (a read-only, nodev bind of /dev/null). */
int vmm_mask_file(const char *target, struct wr_error **err)
{
    return vmm_bind_readonly("/dev/null", target, MS_NOSUID | MS_NODEV | MS_NOEXEC, err);
}

/* A top-level directory of the new root, which may come from the sandbox-writable upper
 * layer: refuse anything but a real directory so a planted symlink cannot redirect a
 * mount to a host path. Creates it when missing. */
/* *ret = base/rel when every component below base is a real directory, creating missing
 * ones with create. A symlink anywhere is refused: uppers and snapshot layers hold what
 * the sandbox wrote, and a planted link must not point a mount at a host path. Returns 1
 * when the directory is there, 0 when it is absent (without create). Nothing runs in the
 * sandbox while its root is assembled, so the checks cannot race it. */
static int real_subdir(const char *base, const char *rel, bool create, char **ret,
                       struct wr_error **err)
{
    _cleanup_free_ char *path = wr_strdup(base);
    _cleanup_free_ char *copy = wr_strdup(rel);
    char *save = NULL;
    for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        char *next = wr_path_join(path, part);
        free(path);
        path = next;
        struct stat st;
        if (lstat(path, &st) < 0) {
            if (errno != ENOENT)
                return wr_error_set_errno(err, errno, "reading %s", path);
            if (!create)
                return 0;
            if (mkdir(path, 0755) < 0)
                return wr_error_set_errno(err, errno, "creating %s", path);
        } else if (!S_ISDIR(st.st_mode)) {
            return wr_error_set(err, ENOTDIR, "refusing %s: not a directory", path);
        }
    }
    *ret = TAKE_PTR(path);
    return 1;
}

/* The length of path's directory part ("a/b/work" -> 3). */
static size_t dirname_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) : 0;
}

int vmm_root_dir(const char *rootfs, const char *name, char **ret, struct wr_error **err)
{
    return real_subdir(rootfs, name, true, ret, err) < 0 ? -(*err)->status : 0;
}

int vmm_mount_overlay(const char *const *lowers, const char *upper, const char *work, bool userns,
                      const char *target, struct wr_error **err)
{
    struct wr_buf opts;
    wr_buf_init(&opts, MOUNT_DATA_MAX);
    int r = wr_buf_printf(&opts, "lowerdir=");
    for (size_t i = 0; r >= 0 && lowers[i]; i++)
        r = wr_buf_printf(&opts, "%s%s", i ? ":" : "", lowers[i]);
    if (r >= 0)
        r = wr_buf_printf(&opts, ",upperdir=%s,workdir=%s%s", upper, work,
                          userns ? ",userxattr" : "");
    if (r < 0) {
        wr_buf_free(&opts);
        return wr_error_set(err, E2BIG,
                            "overlay options for %s exceed %d bytes (too many "
                            "layers or paths too long)",
                            target, MOUNT_DATA_MAX);
    }
    r = vmm_mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, opts.data, err);
    wr_buf_free(&opts);
    return r;
}

static bool is_file(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The host's secrets, hidden from the sandbox by whiteouts in a layer between the host's
 * /etc and the sandbox's layers: to the sandbox they do not exist (tools such as useradd
 * then work without them), and it may create its own. */
static const char *const etc_secrets[] = {"shadow", "gshadow", "shadow-", "gshadow-",
                                          "ssl/private"};

/* An overlayfs whiteout (a 0/0 character device; any user may make one since Linux 5.8). */
static int make_whiteout(const char *dir, const char *name, struct wr_error **err)
{
    _cleanup_free_ char *path = wr_path_join(dir, name);
    _cleanup_free_ char *parent = wr_strdup(path);
    *strrchr(parent, '/') = 0;
    int r = wr_mkdir_p(parent, 0755);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating %s", parent);
    if (mknod(path, S_IFCHR | 0000, makedev(0, 0)) < 0)
        return wr_error_set_errno(err, errno, "creating the whiteout %s", path);
    return 0;
}

static bool is_ssh_host_key(const char *name)
{
    size_t len = strlen(name);
    return !strncmp(name, "ssh_host_", 9) && len >= 13 && !strcmp(name + len - 4, "_key");
}

/* Builds <dir>/root/hostmask/etc, the whiteouts of the host's secrets, anew at every boot
 * (a key the host gained since is hidden too). *ret is that directory. */
static int build_etc_mask(const struct vmm_sandbox_spec *spec, char **ret, struct wr_error **err)
{
    _cleanup_free_ char *mask = wr_asprintf("%s/root/hostmask/etc", spec->dir);
    int r = wr_rm_rf(mask);
    if (r == 0)
        r = wr_mkdir_p(mask, 0755);
    if (r < 0)
        return wr_error_set_errno(err, -r, "preparing %s", mask);
    for (size_t i = 0; r >= 0 && i < WR_ARRAY_SIZE(etc_secrets); i++) {
        _cleanup_free_ char *host = wr_asprintf("/etc/%s", etc_secrets[i]);
        struct stat st;
        if (lstat(host, &st) == 0)
            r = make_whiteout(mask, etc_secrets[i], err);
    }
    DIR *ssh = r >= 0 ? opendir("/etc/ssh") : NULL;
    struct dirent *de;
    while (ssh && r >= 0 && (de = readdir(ssh))) {
        if (!is_ssh_host_key(de->d_name))
            continue;
        _cleanup_free_ char *name = wr_asprintf("ssh/%s", de->d_name);
        r = make_whiteout(mask, name, err);
    }
    if (ssh)
        closedir(ssh);
    if (r >= 0)
        *ret = TAKE_PTR(mask);
    return r;
}

/* The host directories under the host image, each the lowest layer of its own overlay: the
 * top-level system directories (where the host has real directories; a merged-/usr host
 * has symlinks, which the skeleton copies) and, inside the skeleton's otherwise empty
 * /var, what dpkg and apt need to install packages. */
static const char *const host_dirs[] = {
    "usr",   "etc",    "bin",          "sbin",        "lib",           "lib32",
    "lib64", "libx32", "var/lib/dpkg", "var/lib/apt", "var/cache/apt",
};

/* One host directory in the sandbox's root: an overlay of the host's /<rel> below the
 * snapshot layers' <layer>/<rel>, with the sandbox's upper's <rel> on top. Every write
 * lands in the upper; the host is a lower layer and never written. */
static int mount_host_dir(const struct vmm_sandbox_spec *spec, const char *rootfs, const char *rel,
                          const char *mask, bool userns, struct wr_error **err)
{
    _cleanup_free_ char *target = NULL, *upper = NULL;
    if (real_subdir(rootfs, rel, true, &target, err) < 0 ||
        real_subdir(spec->root_upper, rel, true, &upper, err) < 0)
        return -(*err)->status;
    /* Its own work directory, emptied first: a previous boot's may hold leftovers. */
    _cleanup_free_ char *name = wr_strdup(rel);
    for (char *c = name; *c; c++)
        if (*c == '/')
            *c = '-';
    /* Beside root_work, on the upper's filesystem (the sandbox's disk when it has one). */
    _cleanup_free_ char *work =
        wr_asprintf("%.*s/hostwork/%s", (int)dirname_len(spec->root_work), spec->root_work, name);
    int r = wr_rm_rf(work);
    if (r == 0)
        r = wr_mkdir_p(work, 0755);
    if (r < 0)
        return wr_error_set_errno(err, -r, "preparing %s", work);
    /* The root's lowers end with the image skeleton, which holds no host directory. */
    size_t n = wr_strv_len(spec->root_lowers);
    _cleanup_strv_ char **lowers = wr_calloc(n + 2, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        char *layer_dir = NULL;
        r = real_subdir(spec->root_lowers[i], rel, false, &layer_dir, err);
        if (r < 0)
            return r;
        if (r > 0)
            lowers[k++] = layer_dir;
    }
    if (mask)
        lowers[k++] = wr_strdup(mask);
    lowers[k++] = wr_asprintf("/%s", rel);
    return vmm_mount_overlay((const char *const *)lowers, upper, work, userns, target, err);
}

/* The sandbox's own /etc/hostname and /etc/hosts: tools that look their hostname up (sudo,
 * some runtimes) find it, and the host's name stays out. They are written into the upper
 * (the sandbox may edit them like any file) unless the file the sandbox would see already
 * names it: its own edits, kept in its upper or a snapshot layer, win. */
/* The sandbox's own etc/<name>: in its upper, else in its topmost snapshot layer (the root's
 * lowers end with the image skeleton, which has none). Returns 1 and its text, 0 when the
 * sandbox has none (it would see the host's), or a negative errno. */
static int sandbox_etc_file(const struct vmm_sandbox_spec *spec, const char *name, char **ret)
{
    size_t layers = wr_strv_len(spec->root_lowers);
    for (size_t i = 0; i < layers; i++) {
        const char *layer = i == 0 ? spec->root_upper : spec->root_lowers[i - 1];
        _cleanup_free_ char *path = wr_asprintf("%s/etc/%s", layer, name);
        if (!is_file(path))
            continue;
        size_t len;
        int r = wr_read_file(path, 1 << 20, ret, &len);
        return r < 0 ? r : 1;
    }
    return 0;
}

/* hosts with the sandbox's name on 127.0.1.1: an /etc/hosts the sandbox has edited (or
 * inherited from the sandbox it was forked from) keeps its other lines; without one
 * (text NULL), loopback's names and that line. */
static char *renamed_hosts(const char *text, const char *line)
{
    if (!text)
        return wr_asprintf("127.0.0.1\tlocalhost\n%s"
                           "::1\tlocalhost ip6-localhost ip6-loopback\n",
                           line);
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    bool placed = false;
    for (const char *p = text; *p;) {
        const char *end = strchrnul(p, '\n');
        size_t n = (size_t)(end - p);
        bool old_name = n > 9 && !strncmp(p, "127.0.1.1", 9) && (p[9] == ' ' || p[9] == '\t');
        if (!old_name)
            wr_buf_printf(&b, "%.*s\n", (int)n, p);
        if (!placed && (old_name || (n > 9 && !strncmp(p, "127.0.0.1", 9)))) {
            wr_buf_printf(&b, "%s", line);
            placed = true;
        }
        p = *end ? end + 1 : end;
    }
    if (!placed)
        wr_buf_printf(&b, "%s", line);
    return wr_buf_steal(&b, NULL);
}

/* The sandbox's own /etc/hostname and /etc/hosts, so that tools that look their hostname up
 * (sudo, some runtimes) find it and the host's name and hosts stay out. Written into the
 * upper, where the sandbox may edit them like any file; a file of the sandbox's that
 * already names it is left as it is, and a fork's keeps its other lines. */
static int write_identity(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    _cleanup_free_ char *name = wr_asprintf("%s\n", spec->hostname);
    _cleanup_free_ char *line = wr_asprintf("127.0.1.1\t%s\n", spec->hostname);
    static const char *const files[] = {"hostname", "hosts"};
    _cleanup_free_ char *etc = NULL;
    if (real_subdir(spec->root_upper, "etc", true, &etc, err) < 0)
        return -(*err)->status;
    for (size_t i = 0; i < WR_ARRAY_SIZE(files); i++) {
        bool hosts = i == 1;
        _cleanup_free_ char *mine = NULL, *text = NULL;
        int r = sandbox_etc_file(spec, files[i], &mine);
        if (r < 0)
            continue; /* unreadable or huge: the sandbox's own business, left alone */
        if (r > 0 && (hosts ? strstr(mine, line) != NULL : !strcmp(mine, name)))
            continue;
        text = hosts ? renamed_hosts(r > 0 ? mine : NULL, line) : wr_strdup(name);
        _cleanup_free_ char *path = wr_path_join(etc, files[i]);
        struct stat st;
        if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
            return wr_error_set(err, EEXIST, "refusing %s: not a regular file", path);
        r = wr_write_file_replace(path, text, strlen(text), 0644);
        if (r < 0)
            return wr_error_set_errno(err, -r, "writing %s", path);
    }
    return 0;
}

/* Replaces etc/<name> under the directory fd etc with text (a temporary file renamed over
 * it); refuses anything but a regular file there. */
static int replace_etc_file(int etc, const char *name, const char *text, struct wr_error **err)
{
    struct stat st;
    if (fstatat(etc, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
        return wr_error_set(err, EEXIST, "refusing /etc/%s: not a regular file", name);
    _cleanup_free_ char *tmp = wr_asprintf(".%s.warren", name);
    _cleanup_close_ int fd =
        openat(etc, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "writing /etc/%s", tmp);
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len || renameat(etc, tmp, etc, name) < 0) {
        int e = errno ? errno : EIO;
        (void)unlinkat(etc, tmp, 0);
        return wr_error_set_errno(err, e, "writing /etc/%s", name);
    }
    return 0;
}

int vmm_rename_identity(const struct vmm_sandbox_spec *spec, const char *root,
                        struct wr_error **err)
{
    if (strcmp(spec->image, "host") != 0)
        return 0; /* only the host image is given identity files (vmm_mount_root) */
    _cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return wr_error_set_errno(err, errno, "opening %s", root);
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
    _cleanup_close_ int etc = (int)syscall(SYS_openat2, rootfd, "etc", &how, sizeof(how));
    if (etc < 0)
        return wr_error_set_errno(err, errno, "opening %s/etc", root);
    _cleanup_free_ char *name = wr_asprintf("%s\n", spec->hostname);
    _cleanup_free_ char *line = wr_asprintf("127.0.1.1\t%s\n", spec->hostname);
    _cleanup_free_ char *hosts = NULL;
    _cleanup_close_ int fd = openat(etc, "hosts", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        struct wr_buf b;
        wr_buf_init(&b, 1 << 20);
        char chunk[4096];
        ssize_t n;
        while ((n = read(fd, chunk, sizeof(chunk))) > 0)
            if (wr_buf_append(&b, chunk, (size_t)n) < 0)
                break;
        char *text = wr_buf_steal(&b, NULL);
        hosts = renamed_hosts(text ? text : "", line);
        free(text);
    } else {
        hosts = renamed_hosts(NULL, line);
    }
    if (replace_etc_file(etc, "hostname", name, err) < 0 ||
        replace_etc_file(etc, "hosts", hosts, err) < 0)
        return -(*err)->status;
    return 0;
}

int vmm_mount_git_objects(const struct vmm_sandbox_spec *spec, const char *workspace,
                          struct wr_error **err)
{
    struct stat st;
    if (!spec->git_objects || stat(spec->git_objects, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0; /* not from a repository, or the repository is gone: git says so inside */
    _cleanup_free_ char *target = NULL;
    int r = real_subdir(workspace, ".git/repo-objects", false, &target, err);
    if (r <= 0)
        return r; /* the sandbox removed its .git: nothing to mount on */
    return vmm_bind_readonly(spec->git_objects, target, MS_NOSUID | MS_NODEV | MS_NOEXEC, err);
}

/* Every host directory the host image takes: the ones that are real directories here. */
static bool host_dir_present(const char *rel)
{
    _cleanup_free_ char *host = wr_asprintf("/%s", rel);
    struct stat st;
    return lstat(host, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A sandbox with a network resolves names through the DNS forwarder of its own
 * namespace's gateway (vmm/backends/net.h): the host's resolver is on an address it cannot
 * reach. Rewritten at every boot. */
static int write_resolv_conf(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    _cleanup_free_ char *etc = NULL;
    if (real_subdir(spec->root_upper, "etc", true, &etc, err) < 0)
        return -(*err)->status;
    /* A rename replaces a symlink there (systemd-resolved's) rather than follow it. */
    _cleanup_free_ char *path = wr_path_join(etc, "resolv.conf");
    static const char text[] = "# warren: the DNS forwarder of this sandbox's network\n"
                               "nameserver " VMM_NET_DNS "\n";
    int r = wr_write_file_replace(path, text, sizeof(text) - 1, 0644);
    if (r < 0)
        return wr_error_set_errno(err, -r, "writing %s", path);
    return 0;
}

int vmm_mount_root(const struct vmm_sandbox_spec *spec, const char *rootfs, bool userns,
                   struct wr_error **err)
{
    if (spec->network && write_resolv_conf(spec, err) < 0)
        return -(*err)->status;
    bool host = !strcmp(spec->image, "host");
    /* What goes into the upper goes in before the root overlay is mounted on it: an upper
     * changed under a mounted overlay confuses it (a later copy-up fails). */
    for (size_t i = 0; host && i < WR_ARRAY_SIZE(host_dirs); i++) {
        _cleanup_free_ char *upper = NULL;
        if (host_dir_present(host_dirs[i]) &&
            real_subdir(spec->root_upper, host_dirs[i], true, &upper, err) < 0)
            return -(*err)->status;
    }
    if (host && spec->hostname && write_identity(spec, err) < 0)
        return -(*err)->status;
    _cleanup_free_ char *mask = NULL;
    if (host && build_etc_mask(spec, &mask, err) < 0)
        return -(*err)->status;
    int r = vmm_mount_overlay(spec->root_lowers, spec->root_upper, spec->root_work, userns, rootfs,
                              err);
    for (size_t i = 0; r >= 0 && host && i < WR_ARRAY_SIZE(host_dirs); i++)
        if (host_dir_present(host_dirs[i]))
            r = mount_host_dir(spec, rootfs, host_dirs[i],
                               !strcmp(host_dirs[i], "etc") ? mask : NULL, userns, err);
    return r;
}
