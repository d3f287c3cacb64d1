/* Whole-system duties of PID 1: the basic mounts of a VM, SHUTDOWN, and (in main.c)
 * reaping. In --jail mode the jailer has prepared the filesystem and guest-init mounts
 * nothing. */
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>

#include "guest-init.h"

bool gi_jail_mode;

struct basic_mount {
    const char *source, *target, *type, *options;
    unsigned long flags;
    mode_t mode;
};

static const struct basic_mount basic_mounts[] = {
    {"proc", "/proc", "proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0555},
    {"sysfs", "/sys", "sysfs", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0555},
    {"devtmpfs", "/dev", "devtmpfs", "mode=0755", MS_NOSUID, 0755},
    {"devpts", "/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620", MS_NOSUID | MS_NOEXEC,
     0755},
    {"tmpfs", "/dev/shm", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV, 01777},
    {"tmpfs", "/tmp", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV, 01777},
};

/* A directory is a mount point when it sits on another device than its parent (the
 * initramfs root is one device; everything we mount is another). */
static bool is_mount_point(const char *path)
{
    struct stat st, parent;
    _cleanup_free_ char *up = wr_path_join(path, "..");
    if (stat(path, &st) < 0 || stat(up, &parent) < 0)
        return false;
    return st.st_dev != parent.st_dev;
}

int gi_mount_basics(struct wr_error **err)
{
    for (size_t i = 0; i < WR_ARRAY_SIZE(basic_mounts); i++) {
        const struct basic_mount *m = &basic_mounts[i];
        if (mkdir(m->target, m->mode) < 0 && errno != EEXIST)
            return wr_error_set_errno(err, errno, "mkdir %s", m->target);
        if (is_mount_point(m->target))
            continue;
        if (mount(m->source, m->target, m->type, m->flags, m->options) < 0)
            return wr_error_set_errno(err, errno, "mount %s on %s", m->type, m->target);
    }
    return 0;
}

void gi_shutdown(void)
{
    log_info("shutting down");
    gi_exec_kill_all();
    /* kill(-1) from a PID 1 reaches every other process of the VM or pid namespace; from
     * any other pid (a test run) it would reach the caller's whole session. */
    if (getpid() == 1)
        kill(-1, SIGKILL);
    gi_conn_close_all();
    sync();
    /* In a jail, the pid namespace ends with its init; reboot(2) there would need
     * CAP_SYS_BOOT and a seccomp exception for nothing. */
    if (getpid() == 1 && !gi_jail_mode) {
        reboot(RB_POWER_OFF);
        log_error("reboot: %s", strerror(errno));
    }
    _exit(0);
}

int gi_shutdown_request(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    gi_conn_send_empty_result(c, stream);
    gi_conn_flush_sync(c, 1000);
    gi_shutdown();
}
