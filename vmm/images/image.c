/* Root filesystem images (see image.h). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"

struct skeleton_dir {
    const char *path;
    mode_t mode;
};

/* Mount points and the empty, writable-in-the-upper places a Debian system expects; the
 * host directories of the host image (vmm/backends/hostview.c) are mounted on theirs, so
 * that none of them is made through the root overlay. */
static const struct skeleton_dir skeleton_dirs[] = {
    {"proc", 0555},         {"sys", 0555},         {"dev", 0755},       {"tmp", 01777},
    {"run", 0755},          {"var", 0755},         {"var/tmp", 01777},  {"var/lib", 0755},
    {"var/lib/dpkg", 0755}, {"var/lib/apt", 0755}, {"var/cache", 0755}, {"var/cache/apt", 0755},
    {"var/log", 0755},      {"root", 0700},        {"home", 0755},      {"workspace", 0755},
    {"mnt", 0755},          {"opt", 0755},         {"srv", 0755},       {"etc", 0755},
    {"usr", 0755},
};

/* The skeleton's directory under <state>/images: a new name whenever its contents change,
 * so that a state directory made by an older warren gets the new one. */
#define HOST_SKELETON "host.2"

/* Top-level entries that are symlinks into /usr on a merged-/usr host and real
 * directories (bind-mounted by the jail) elsewhere. */
static const char *const host_lib_dirs[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

static int make_dir(const char *root, const char *path, mode_t mode)
{
    _cleanup_free_ char *full = wr_path_join(root, path);
    if (mkdir(full, mode) < 0)
        return -errno;
    /* mkdir applies the umask; the skeleton's modes must be exact (1777 for tmp). */
    if (chmod(full, mode) < 0)
        return -errno;
    return 0;
}

/* Mirrors the host's /<name>: its symlink, an empty directory, or nothing if absent. */
static int mirror_host_entry(const char *root, const char *name)
{
    _cleanup_free_ char *host_path = wr_asprintf("/%s", name);
    struct stat st;
    if (lstat(host_path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (S_ISDIR(st.st_mode))
        return make_dir(root, name, 0755);
    if (!S_ISLNK(st.st_mode))
        return 0;
    char target[PATH_MAX];
    ssize_t n = readlink(host_path, target, sizeof(target) - 1);
    if (n < 0)
        return -errno;
    target[n] = 0;
    _cleanup_free_ char *link = wr_path_join(root, name);
    return symlink(target, link) < 0 ? -errno : 0;
}

/* The mount points warren needs in any root, as the top of an OCI image's layers: they
 * must exist before anything is mounted on them (and not be made in the sandbox's upper). */
static const struct skeleton_dir mount_dirs[] = {
    {"proc", 0555}, {"sys", 0555}, {"dev", 0755},
    {"tmp", 01777}, {"run", 0755}, {"workspace", 0755},
};
#define MOUNTS_SKELETON "mounts.1"

static int build_skeleton(const char *root, const struct skeleton_dir *dirs, size_t n,
                          struct wr_error **err)
{
    if (mkdir(root, 0755) < 0 || chmod(root, 0755) < 0)
        return wr_error_set_errno(err, errno, "creating %s", root);
    for (size_t i = 0; i < n; i++) {
        int r = make_dir(root, dirs[i].path, dirs[i].mode);
        if (r < 0)
            return wr_error_set_errno(err, -r, "creating %s/%s", root, dirs[i].path);
    }
    return 0;
}

static int build_host_skeleton(const char *root, bool host, struct wr_error **err)
{
    if (!host)
        return build_skeleton(root, mount_dirs, WR_ARRAY_SIZE(mount_dirs), err);
    if (build_skeleton(root, skeleton_dirs, WR_ARRAY_SIZE(skeleton_dirs), err) < 0)
        return -(*err)->status;
    for (size_t i = 0; i < WR_ARRAY_SIZE(host_lib_dirs); i++) {
        int r = mirror_host_entry(root, host_lib_dirs[i]);
        if (r < 0)
            return wr_error_set_errno(err, -r, "creating %s/%s", root, host_lib_dirs[i]);
    }
    return 0;
}

static int create_skeleton(const char *images_dir, const char *name, const char *final,
                           struct wr_error **err)
{
    char suffix[17];
    uint64_t nonce = 0;
    (void)wr_random_bytes(&nonce, sizeof(nonce));
    wr_hex_encode(&nonce, sizeof(nonce), suffix);
    _cleanup_free_ char *tmp =
        wr_asprintf("%s/.%s.tmp.%d.%s", images_dir, name, (int)getpid(), suffix);
    int r = build_host_skeleton(tmp, !strcmp(name, HOST_SKELETON), err);
    if (r >= 0 && rename(tmp, final) < 0) {
        /* Another process finished first: its skeleton is as good as ours. */
        if (errno != EEXIST && errno != ENOTEMPTY)
            r = wr_error_set_errno(err, errno, "renaming %s to %s", tmp, final);
    }
    (void)wr_rm_rf(tmp);
    return r;
}

int vmm_image_root(const char *state_dir, const char *image, char **ret_root_lower,
                   struct wr_error **err)
{
    bool host = image && !strcmp(image, "host");
    const char *name = host ? HOST_SKELETON : MOUNTS_SKELETON;
    _cleanup_free_ char *images_dir = wr_path_join(state_dir, "images");
    _cleanup_free_ char *final = wr_path_join(images_dir, name);
    struct stat st;
    if (stat(final, &st) == 0 && S_ISDIR(st.st_mode)) {
        *ret_root_lower = TAKE_PTR(final);
        return 0;
    }
    int r = wr_mkdir_p(images_dir, 0755);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating %s", images_dir);
    r = create_skeleton(images_dir, name, final, err);
    if (r < 0)
        return wr_error_wrap(err, "creating the skeleton of image '%s'", host ? "host" : image);
    *ret_root_lower = TAKE_PTR(final);
    return 0;
}
