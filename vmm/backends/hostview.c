/* The host view shared by the jail and the VM filesystem (vmm/backends/vmfs.c): mounting the
 * overlays and the host image (the host's /usr, /etc and library directories, read-only,
 * with secrets masked) into a root being assembled in a private mount namespace. One
 * copy, so that every backend masks exactly the same secrets. */
#include <dirent.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "hostview.h"

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
int vmm_root_dir(const char *rootfs, const char *name, char **ret, struct wr_error **err)
{
    _cleanup_free_ char *path = wr_path_join(rootfs, name);
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno != ENOENT || mkdir(path, 0755) < 0)
            return wr_error_set_errno(err, errno, "creating %s", path);
    } else if (!S_ISDIR(st.st_mode)) {
        return wr_error_set(err, ENOTDIR, "refusing to mount on %s: not a directory", path);
    }
    *ret = TAKE_PTR(path);
    return 0;
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

static int mask_ssh_host_keys(const char *etc, struct wr_error **err)
{
    _cleanup_free_ char *ssh = wr_path_join(etc, "ssh");
    DIR *dir = opendir(ssh);
    if (!dir)
        return 0;
    int r = 0;
    struct dirent *de;
    while (r >= 0 && (de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "ssh_host_", 9) != 0 || len < 13 ||
            strcmp(de->d_name + len - 4, "_key") != 0)
            continue;
        _cleanup_free_ char *key = wr_path_join(ssh, de->d_name);
        if (is_file(key))
            r = vmm_mask_file(key, err);
    }
    closedir(dir);
    return r;
}

/* The host's secrets under the read-only /etc bind. */
static int mask_etc_secrets(const char *etc, struct wr_error **err)
{
    static const char *const secrets[] = {"shadow", "gshadow", "shadow-", "gshadow-"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(secrets); i++) {
        _cleanup_free_ char *path = wr_path_join(etc, secrets[i]);
        int r = is_file(path) ? vmm_mask_file(path, err) : 0;
        if (r < 0)
            return r;
    }
    int r = mask_ssh_host_keys(etc, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *private = wr_path_join(etc, "ssl/private");
    struct stat st;
    if (lstat(private, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0;
    return vmm_mount("tmpfs", private, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     "mode=0700,size=4k", err);
}

/* The host image: the host's /usr, /etc and real top-level library directories, read-only.
 * Where the host has symlinks (merged /usr) the image skeleton already has them. */
/* The sandbox's own /etc/hostname and /etc/hosts over the host's: tools that look their
 * hostname up (sudo, some runtimes) find it, and the host's name stays out. The files live
 * in the sandbox directory dir. */
static int mount_identity(const char *etc, const char *dir, const char *hostname,
                          struct wr_error **err)
{
    _cleanup_free_ char *name = wr_asprintf("%s\n", hostname);
    _cleanup_free_ char *hosts = wr_asprintf("127.0.0.1\tlocalhost\n"
                                             "127.0.1.1\t%s\n"
                                             "::1\tlocalhost ip6-localhost ip6-loopback\n",
                                             hostname);
    const char *files[][2] = {{"hostname", name}, {"hosts", hosts}};
    for (size_t i = 0; i < WR_ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *target = wr_path_join(etc, files[i][0]);
        if (!is_file(target))
            continue;
        _cleanup_free_ char *source = wr_asprintf("%s/etc-%s", dir, files[i][0]);
        int r = wr_write_file_atomic(source, files[i][1], strlen(files[i][1]), 0644);
        if (r < 0)
            return wr_error_set_errno(err, -r, "writing %s", source);
        r = vmm_bind_readonly(source, target, MS_NOSUID | MS_NODEV | MS_NOEXEC, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int vmm_mount_host_image(const char *rootfs, const char *dir, const char *hostname,
                         struct wr_error **err)
{
    static const char *const dirs[] = {"usr", "etc",   "bin",   "sbin",
                                       "lib", "lib32", "lib64", "libx32"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(dirs); i++) {
        _cleanup_free_ char *host = wr_asprintf("/%s", dirs[i]);
        struct stat st;
        if (lstat(host, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        _cleanup_free_ char *target = NULL;
        int r = vmm_root_dir(rootfs, dirs[i], &target, err);
        if (r < 0)
            return r;
        r = vmm_bind_readonly(host, target, MS_NOSUID | MS_NODEV, err);
        if (r < 0)
            return r;
    }
    _cleanup_free_ char *etc = wr_path_join(rootfs, "etc");
    int r = mask_etc_secrets(etc, err);
    if (r >= 0 && hostname)
        r = mount_identity(etc, dir, hostname, err);
    return r;
}
