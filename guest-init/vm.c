/* VM mode: guest-init is /init of the initramfs that vmm/backends/guest-image.c builds, PID 1 of
 * a QEMU or Cloud Hypervisor VM. Before serving it does what an initramfs init does:
 *
 *   1. mount devtmpfs, proc and sysfs in the initramfs, give itself a console;
 *   2. load the kernel modules of /lib/modules/order (virtio, virtiofs, vsock, ...);
 *   3. read warren.* keys from /proc/cmdline;
 *   4. mount the virtiofs root at /newroot and the workspace at /newroot/workspace;
 *   5. switch root the way switch_root(8) does (an initramfs cannot be pivot_root'ed):
 *      move /dev, /proc, /sys into the new root, delete the initramfs files, move the
 *      new root onto /, chroot into it;
 *   6. mount the rest (/dev/pts, /dev/shm, /tmp), bring up lo, set the hostname;
 *   7. with warren.net=user, configure the NIC for QEMU's user-mode network (net.c).
 *
 * Any failure is fatal: main() logs it on the console and powers the VM off, so that
 * the VMM exits and the host reports the console log instead of waiting for an agent
 * that will never answer. Only step 7 is not fatal: a VM whose network failed still boots. */
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "guest-init.h"

#define NEW_ROOT "/newroot"
#define MODULES_DIR "/lib/modules"
#define MAX_TAG 64

struct vm_config {
    char root_tag[MAX_TAG + 1];
    char workspace_tag[MAX_TAG + 1]; /* empty: no workspace mount ("none") */
    char hostname[65];
    bool net_user; /* warren.net=user: a virtio NIC on QEMU's slirp */
};

/* ---- kernel command line --------------------------------------------------------- */

static void copy_value(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* Keys this file owns; the transport keys (warren.serial, warren.vsock) are read by
 * gi_cmdline_transport in transport.c. */
static void parse_cmdline(const char *cmdline, struct vm_config *c)
{
    _cleanup_free_ char *copy = wr_strdup(cmdline);
    *c = (struct vm_config){.root_tag = "root", .workspace_tag = "workspace"};
    for (char *save = NULL, *tok = strtok_r(copy, " \t\n", &save); tok;
         tok = strtok_r(NULL, " \t\n", &save)) {
        if (!strncmp(tok, "warren.root=", 12))
            copy_value(c->root_tag, sizeof(c->root_tag), tok + 12);
        else if (!strncmp(tok, "warren.workspace=", 17))
            copy_value(c->workspace_tag, sizeof(c->workspace_tag),
                       strcmp(tok + 17, "none") ? tok + 17 : "");
        else if (!strncmp(tok, "warren.hostname=", 16))
            copy_value(c->hostname, sizeof(c->hostname), tok + 16);
        else if (!strncmp(tok, "warren.net=", 11)) {
            c->net_user = !strcmp(tok + 11, "user");
            if (!c->net_user)
                log_error("unknown network mode %s: no network", tok);
        }
    }
}

/* ---- early mounts and console ---------------------------------------------------- */

static int mount_at(const char *source, const char *target, const char *type, unsigned long flags,
                    const char *options, struct wr_error **err)
{
    if (mkdir(target, 0755) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "mkdir %s", target);
    if (mount(source, target, type, flags, options) < 0)
        return wr_error_set_errno(err, errno, "mount %s '%s' on %s", type, source, target);
    return 0;
}

static int mount_early(struct wr_error **err)
{
    int r = mount_at("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", err);
    /* A kernel with CONFIG_DEVTMPFS_MOUNT has mounted it already. */
    if (r < 0 && (*err)->status == EBUSY) {
        wr_error_free(TAKE_PTR(*err));
        r = 0;
    }
    if (r == 0)
        r = mount_at("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
    if (r == 0)
        r = mount_at("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
    return r;
}

/* The kernel hands init /dev/console as fds 0-2 only when the initramfs has that node;
 * without it our log would go nowhere, so open it from devtmpfs. */
static void console_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int n = open("/dev/console", O_RDWR | O_NOCTTY);
        if (n >= 0 && n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
}

/* ---- modules --------------------------------------------------------------------- */

/* Loads one module. A module that is missing or fails is logged and skipped: what
 * needs it (a mount, the agent port) then fails with its own, clearer message. */
static void load_module(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), MODULES_DIR "/%s.ko", name);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("module %s: %s", path, strerror(errno));
        return;
    }
    if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
        log_error("loading module %s: %s", name, strerror(errno));
}

static void load_modules(void)
{
    _cleanup_free_ char *order = NULL;
    size_t n;
    if (wr_read_file(MODULES_DIR "/order", 64 * 1024, &order, &n) < 0) {
        log_warning(MODULES_DIR "/order missing: loading no modules");
        return;
    }
    uint64_t start = wr_now_ms();
    unsigned count = 0;
    for (char *save = NULL, *name = strtok_r(order, " \t\r\n", &save); name;
         name = strtok_r(NULL, " \t\r\n", &save)) {
        if (name[0] != '#' && !strchr(name, '/')) {
            load_module(name);
            count++;
        }
    }
    log_info("loaded %u modules in %llu ms", count, (unsigned long long)(wr_now_ms() - start));
}

/* ---- root switch ------------------------------------------------------------------ */

static int mount_virtiofs(const char *tag, const char *target, struct wr_error **err)
{
    if (mount_at(tag, target, "virtiofs", 0, NULL, err) == 0)
        return 0;
    if ((*err)->status == ENODEV)
        return wr_error_wrap(err, "virtiofs unavailable (did the virtiofs module load?)");
    /* The kernel answers EINVAL for a tag no virtiofs device has (it logs "tag not
     * found" only at a level that quiet hides). */
    if ((*err)->status == EINVAL || (*err)->status == ENOENT)
        return wr_error_wrap(err, "virtiofs tag '%s' not found", tag);
    return -(*err)->status;
}

/* Deletes the initramfs files (they are RAM the VM would never get back), staying on
 * the rootfs device: mount points (/newroot and what was moved into it) are skipped. */
static void remove_tree(int dirfd, dev_t rootdev)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    for (struct dirent *de; (de = readdir(d));) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != rootdev)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub >= 0)
                remove_tree(sub, rootdev);
        }
        unlinkat(dirfd, de->d_name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
    }
    closedir(d);
}

static int move_into_new_root(const char *from, struct wr_error **err)
{
    char to[64];
    snprintf(to, sizeof(to), NEW_ROOT "%s", from);
    if (mkdir(to, 0755) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "mkdir %s in the sandbox root", from);
    if (mount(from, to, NULL, MS_MOVE, NULL) < 0)
        return wr_error_set_errno(err, errno, "moving %s into the sandbox root", from);
    return 0;
}

/* switch_root(8)'s technique: the initramfs is the rootfs itself, which cannot be
 * unmounted or pivot_root'ed away, so the new root is moved on top of it instead. */
static int switch_root(struct wr_error **err)
{
    static const char *const api_mounts[] = {"/dev", "/proc", "/sys"};
    struct stat root;
    for (size_t i = 0; i < WR_ARRAY_SIZE(api_mounts); i++)
        if (move_into_new_root(api_mounts[i], err) < 0)
            return -(*err)->status;
    if (stat("/", &root) < 0)
        return wr_error_set_errno(err, errno, "stat /");
    int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        remove_tree(fd, root.st_dev);
    if (chdir(NEW_ROOT) < 0)
        return wr_error_set_errno(err, errno, "chdir " NEW_ROOT);
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
        return wr_error_set_errno(err, errno, "moving " NEW_ROOT " onto /");
    if (chroot(".") < 0 || chdir("/") < 0)
        return wr_error_set_errno(err, errno, "chroot into the sandbox root");
    return 0;
}

static int mount_roots(const struct vm_config *c, struct wr_error **err)
{
    if (mount_virtiofs(c->root_tag, NEW_ROOT, err) < 0)
        return wr_error_wrap(err, "mounting the sandbox root");
    if (!c->workspace_tag[0])
        return 0;
    if (mount_virtiofs(c->workspace_tag, NEW_ROOT GI_WORKSPACE, err) < 0)
        return wr_error_wrap(err, "mounting the workspace");
    return 0;
}

/* ---- network and identity ---------------------------------------------------------- */

/* The kernel gives lo 127.0.0.1 and ::1 by itself once it is up. */
static int loopback_up(struct wr_error **err)
{
    _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return wr_error_set_errno(err, errno, "reading the flags of lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        return wr_error_set_errno(err, errno, "bringing up lo");
    return 0;
}

static int set_hostname(const char *name, struct wr_error **err)
{
    if (!name[0])
        return 0;
    if (sethostname(name, strlen(name)) < 0)
        return wr_error_set_errno(err, errno, "sethostname %s", name);
    return 0;
}

/* ---- entry point ------------------------------------------------------------------ */

int gi_vm_setup(struct wr_error **err)
{
    uint64_t start = wr_now_ms();
    int r = mount_early(err);
    console_fds();
    if (r < 0)
        return r;
    load_modules();
    _cleanup_free_ char *cmdline = NULL;
    size_t n;
    if ((r = wr_read_file("/proc/cmdline", 64 * 1024, &cmdline, &n)) < 0)
        return wr_error_set_errno(err, -r, "reading /proc/cmdline");
    struct vm_config c;
    parse_cmdline(cmdline, &c);
    if ((r = mount_roots(&c, err)) < 0 || (r = switch_root(err)) < 0 ||
        (r = gi_mount_basics(err)) < 0 || (r = loopback_up(err)) < 0 ||
        (r = set_hostname(c.hostname, err)) < 0)
        return r;
    const char *net = c.net_user ? (gi_vm_net_setup() ? ", network" : ", network FAILED") : "";
    log_info("VM set up in %llu ms (root '%s', workspace '%s'%s)",
             (unsigned long long)(wr_now_ms() - start), c.root_tag,
             c.workspace_tag[0] ? c.workspace_tag : "none", net);
    return 0;
}
