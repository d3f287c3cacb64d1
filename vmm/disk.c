/* A sandbox's disk (see disk.h): sparse ext4 images on loop devices.
 *
 * Making one: mkfs.ext4 on a 10 GiB sparse file takes ~20 ms here, a sparse copy of an
 * image made before ~3 ms, so the first disk of each size is made with mkfs as a template
 * under <state>/disks and every later one is copied from it (SEEK_DATA/SEEK_HOLE and
 * copy_file_range: only the few MiB of metadata are written). The filesystem is made with
 * lazy inode table and journal init and mounted with noinit_itable, so neither mkfs nor the
 * kernel writes the inode tables or the journal ahead of use: a fresh disk costs the host
 * ~4 MiB whatever its size. It is mounted with discard, so blocks the sandbox frees are
 * punched out of the image and the host gets them back.
 *
 * Loop devices are set up with LOOP_CONFIGURE and LO_FLAGS_AUTOCLEAR: the device is
 * released when the last mount of its filesystem goes, so nothing else tracks them.
 * LO_FLAGS_DIRECT_IO keeps the image's blocks out of the host page cache (the sandbox's
 * files are cached once, above the loop device). */
#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#include "disk.h"

#define LOOP_ATTEMPTS 32
#define RELEASE_WAIT_MS 10000
#define MKFS_OUTPUT_MAX 4096
#define MOUNTINFO_MAX (4u << 20)

static const char *const mkfs_candidates[] = {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4",
                                              "/usr/bin/mkfs.ext4", NULL};

static const char *mkfs_path(void)
{
    for (size_t i = 0; mkfs_candidates[i]; i++)
        if (access(mkfs_candidates[i], X_OK) == 0)
            return mkfs_candidates[i];
    return NULL;
}

static bool kernel_has_ext4(void)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    return wr_read_file("/proc/filesystems", 1 << 16, &text, &len) == 0 &&
           strstr(text, "\text4\n") != NULL;
}

bool vmm_disk_available(struct wr_error **err)
{
    const char *why = geteuid() != 0 ? "warren does not run as root (loop devices need root)"
                      : access("/dev/loop-control", R_OK | W_OK) < 0
                          ? "/dev/loop-control is missing (modprobe loop)"
                      : !kernel_has_ext4() ? "the kernel has no ext4"
                      : !mkfs_path() ? "mkfs.ext4 is not installed (apt-get install e2fsprogs)"
                                     : NULL;
    if (why)
        wr_error_set(err, ENOTSUP, "sandbox disks cannot be capped here: %s", why);
    return why == NULL;
}

/* ---- making a disk ----------------------------------------------------------------- */

/* The journal: 1/512 of the disk, between 4 MiB (ext4's least) and 32 MiB. */
static uint64_t journal_mib(uint64_t mib)
{
    uint64_t j = mib / 512;
    return j < 4 ? 4 : j > 32 ? 32 : j;
}

static int run_mkfs(const char *path, uint64_t mib, struct wr_error **err)
{
    const char *mkfs = mkfs_path();
    if (!mkfs)
        return wr_error_set(err, ENOENT, "mkfs.ext4 is not installed (apt-get install e2fsprogs)");
    _cleanup_free_ char *journal = wr_asprintf("size=%llu", (unsigned long long)journal_mib(mib));
    /* 4 KiB blocks and one inode per 16 KiB at every size ("-T default"; mke2fs would pick
     * 1 KiB blocks for small disks), no blocks reserved for root (the sandbox's root is
     * the only user), nothing written that reads as zeros in a sparse file anyway. */
    const char *argv[] = {mkfs,
                          "-q",
                          "-F",
                          "-T",
                          "default",
                          "-b",
                          "4096",
                          "-m",
                          "0",
                          "-J",
                          journal,
                          "-E",
                          "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
                          path,
                          NULL};
    struct wr_buf out;
    wr_buf_init(&out, MKFS_OUTPUT_MAX);
    int status = 0;
    int r = wr_run(argv, NULL, NULL, &out, &status);
    if (r < 0) {
        wr_buf_free(&out);
        return wr_error_set_errno(err, -r, "running %s", mkfs);
    }
    (void)wr_buf_append(&out, "", 1);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        r = wr_error_set(err, EIO, "%s %s failed (status %d): %.300s", mkfs, path, status,
                         out.data);
    wr_buf_free(&out);
    return r;
}

/* <dir>/ext4-<mib>.img, made (under a lock, atomically) when missing. */
static int template_get(const char *dir, uint64_t mib, char **ret, struct wr_error **err)
{
    _cleanup_free_ char *path = wr_asprintf("%s/ext4-%llu.img", dir, (unsigned long long)mib);
    if (access(path, F_OK) == 0) {
        *ret = TAKE_PTR(path);
        return 0;
    }
    int r = wr_mkdir_p(dir, 0700);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating %s", dir);
    _cleanup_free_ char *lock_path = wr_path_join(dir, ".lock");
    _cleanup_close_ int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) < 0)
        return wr_error_set_errno(err, errno, "locking %s", lock_path);
    if (access(path, F_OK) == 0) { /* another thread or process made it meanwhile */
        *ret = TAKE_PTR(path);
        return 0;
    }
    _cleanup_free_ char *tmp = wr_asprintf("%s.tmp", path);
    (void)unlink(tmp);
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "creating %s", tmp);
    if (ftruncate(fd, (off_t)(mib << 20)) < 0) {
        r = wr_error_set_errno(err, errno, "sizing %s", tmp);
    } else if ((r = run_mkfs(tmp, mib, err)) >= 0 && (fsync(fd) < 0 || rename(tmp, path) < 0)) {
        r = wr_error_set_errno(err, errno, "saving %s", path);
    }
    if (r < 0) {
        (void)unlink(tmp);
        return r;
    }
    *ret = TAKE_PTR(path);
    return 0;
}

/* Copies [off, end) of in to the same offsets of out. */
static int copy_range(int in, int out, off_t off, off_t end)
{
    while (off < end) {
        off_t out_off = off;
        ssize_t n = copy_file_range(in, &off, out, &out_off, (size_t)(end - off), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            continue;
        if (n == 0)
            return -EIO;
        if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
            return -errno;
        char buf[65536];
        size_t want = (size_t)(end - off) < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
        ssize_t got = pread(in, buf, want, off);
        if (got <= 0)
            return got < 0 ? -errno : -EIO;
        if (pwrite(out, buf, (size_t)got, off) != got)
            return -EIO;
        off += got;
    }
    return 0;
}

/* Copies in to out keeping its holes: only the extents with data are read and written. */
static int sparse_copy(int in, int out)
{
    struct stat st;
    if (fstat(in, &st) < 0 || ftruncate(out, st.st_size) < 0)
        return -errno;
    off_t pos = 0;
    while (pos < st.st_size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0)
            return errno == ENXIO ? 0 : -errno;
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0)
            return -errno;
        int r = copy_range(in, out, data, hole);
        if (r < 0)
            return r;
        pos = hole;
    }
    return 0;
}

int vmm_disk_create(const char *templates_dir, const char *image, uint64_t mib,
                    struct wr_error **err)
{
    _cleanup_free_ char *template = NULL;
    if (template_get(templates_dir, mib, &template, err) < 0)
        return wr_error_wrap(err, "making the template of a %llu MiB disk",
                             (unsigned long long)mib);
    _cleanup_close_ int in = open(template, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return wr_error_set_errno(err, errno, "opening %s", template);
    _cleanup_close_ int out = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        return wr_error_set_errno(err, errno, "creating %s", image);
    int r = sparse_copy(in, out);
    if (r < 0) {
        (void)unlink(image);
        return wr_error_set_errno(err, -r, "copying %s to %s", template, image);
    }
    return 0;
}

/* ---- mounting ---------------------------------------------------------------------- */

bool vmm_disk_is_mounted(const char *path)
{
    struct stat st, parent;
    _cleanup_free_ char *up = wr_path_join(path, "..");
    return stat(path, &st) == 0 && stat(up, &parent) == 0 && st.st_dev != parent.st_dev;
}

/* A free loop device bound to backing; its open fd in *ret_fd and its path in ret_path. */
static int loop_attach(int backing, bool readonly, int *ret_fd, char ret_path[static 32],
                       struct wr_error **err)
{
    _cleanup_close_ int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (control < 0)
        return wr_error_set_errno(err, errno, "opening /dev/loop-control");
    struct loop_config config = {
        .fd = (uint32_t)backing,
        .block_size = 4096,
        .info.lo_flags =
            LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO | (readonly ? LO_FLAGS_READ_ONLY : 0),
    };
    /* Another process may take the device between GET_FREE and CONFIGURE: then EBUSY,
     * and the next free one is tried. */
    for (int attempt = 0; attempt < LOOP_ATTEMPTS; attempt++) {
        int n = ioctl(control, LOOP_CTL_GET_FREE);
        if (n < 0)
            return wr_error_set_errno(err, errno, "finding a free loop device");
        snprintf(ret_path, 32, "/dev/loop%d", n);
        int fd = open(ret_path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (fd < 0)
            return wr_error_set_errno(err, errno, "opening %s", ret_path);
        if (ioctl(fd, LOOP_CONFIGURE, &config) == 0) {
            *ret_fd = fd;
            return 0;
        }
        int e = errno;
        close(fd);
        if (e != EBUSY)
            return wr_error_set_errno(err, e, "setting up %s", ret_path);
    }
    return wr_error_set(err, EBUSY, "no free loop device after %d attempts", LOOP_ATTEMPTS);
}

/* A loop device that backs the file open as fd already: the disk is still mounted in
 * some mount namespace (one made while it was mounted here). Mounting that device again
 * shares its live filesystem; a second loop device on the same image would put two
 * filesystems on one file. Its path in ret_path; false when there is none. */
static bool loop_find_bound(int fd, char ret_path[static 32])
{
    struct stat image;
    DIR *d = fstat(fd, &image) == 0 ? opendir("/sys/block") : NULL;
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        if (strncmp(e->d_name, "loop", 4) != 0 || strlen(e->d_name) > 20)
            continue;
        _cleanup_free_ char *path = wr_asprintf("/sys/block/%s/loop/backing_file", e->d_name);
        _cleanup_free_ char *text = NULL;
        size_t len;
        struct stat st;
        if (wr_read_file(path, 4096, &text, &len) < 0)
            continue;
        text[strcspn(text, "\n")] = 0;
        if (stat(text, &st) == 0 && st.st_dev == image.st_dev && st.st_ino == image.st_ino) {
            snprintf(ret_path, 32, "/dev/%s", e->d_name);
            found = true;
        }
    }
    if (d)
        closedir(d);
    return found;
}

int vmm_disk_mount(const char *image, const char *mountpoint, bool readonly, struct wr_error **err)
{
    if (mkdir(mountpoint, 0755) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "creating %s", mountpoint);
    /* Two threads (or warrens) preparing forks of one snapshot must not both mount it. The
     * lock is taken on an open file of its own: the loop device keeps the backing file
     * open, and a lock on that one would live as long as the device. */
    _cleanup_close_ int lock = open(image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (lock < 0 || flock(lock, LOCK_EX) < 0)
        return wr_error_set_errno(err, errno, "opening and locking the disk %s", image);
    _cleanup_close_ int fd = open(image, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "opening the disk %s", image);
    if (vmm_disk_is_mounted(mountpoint))
        return 0;
    char device[32];
    _cleanup_close_ int loop = -1;
    if (loop_find_bound(fd, device)) {
        loop = open(device, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (loop < 0)
            return wr_error_set_errno(err, errno, "opening %s", device);
    } else if (loop_attach(fd, readonly, &loop, device, err) < 0) {
        return wr_error_wrap(err, "mounting the disk %s", image);
    }
    unsigned long flags = MS_NOSUID | MS_NODEV | (readonly ? MS_RDONLY : 0);
    /* Closing `loop` releases the device when the mount failed (autoclear). */
    if (mount(device, mountpoint, "ext4", flags, readonly ? "" : "noinit_itable,discard") < 0)
        return wr_error_set_errno(err, errno, "mounting %s (%s) on %s", image, device, mountpoint);
    return 0;
}

static bool loop_bound(dev_t dev)
{
    char path[96];
    snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file", major(dev), minor(dev));
    return access(path, F_OK) == 0;
}

int vmm_disk_unmount(const char *mountpoint, bool strict, struct wr_error **err)
{
    struct stat st;
    if (!vmm_disk_is_mounted(mountpoint) || stat(mountpoint, &st) < 0)
        return 0;
    if (umount2(mountpoint, strict ? 0 : MNT_DETACH) < 0)
        return wr_error_set_errno(err, errno, "unmounting the disk on %s", mountpoint);
    if (!strict)
        return 0;
    /* The device goes with the last reference to the filesystem: here at once, unless a
     * mount namespace made while it was mounted still holds a copy. */
    for (uint64_t start = wr_now_ms(); loop_bound(st.st_dev);) {
        if (wr_now_ms() - start > RELEASE_WAIT_MS)
            return wr_error_set(err, EBUSY,
                                "the disk on %s is still mounted in another mount namespace "
                                "(a process of another sandbox holds it)",
                                mountpoint);
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    return 0;
}

int vmm_disk_used(const char *mountpoint, uint64_t *ret_bytes)
{
    struct statvfs st;
    if (!vmm_disk_is_mounted(mountpoint))
        return -ENOENT;
    if (statvfs(mountpoint, &st) < 0)
        return -errno;
    *ret_bytes = (uint64_t)(st.f_blocks - st.f_bfree) * st.f_frsize;
    return 0;
}

/* ---- other namespaces --------------------------------------------------------------- */

/* Undoes mountinfo's octal escapes (\040 for a space, ...). */
static char *unescape(const char *s, size_t n)
{
    char *out = wr_malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            *o++ = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

bool vmm_disk_mountinfo_line(const char *line, char **ret_mountpoint)
{
    /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS */
    const char *p = line;
    for (int field = 0; field < 4; field++) {
        p = strchr(p, ' ');
        if (!p)
            return false;
        p++;
    }
    size_t len = strcspn(p, " ");
    const char *sep = strstr(p + len, " - ");
    if (!sep || strncmp(sep + 3, "ext4 /dev/loop", 14) != 0)
        return false;
    _cleanup_free_ char *mountpoint = unescape(p, len);
    const char *base = strrchr(mountpoint, '/');
    if (!base || strcmp(base + 1, VMM_DISK_MOUNT) != 0)
        return false;
    *ret_mountpoint = TAKE_PTR(mountpoint);
    return true;
}

void vmm_disk_detach_all(void)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (wr_read_file("/proc/self/mountinfo", MOUNTINFO_MAX, &text, &len) < 0)
        return;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *mountpoint = NULL;
        if (vmm_disk_mountinfo_line(line, &mountpoint))
            (void)umount2(mountpoint, MNT_DETACH);
        free(mountpoint);
    }
}
