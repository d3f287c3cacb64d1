/* Whole-system duties of PID 1: the basic mounts of a VM, SHUTDOWN, and (in main.c)
 * reaping. In --jail mode the jailer has prepared the filesystem and guest-init mounts
 * nothing. */
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

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
    gi_pty_kill_all();
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

/* ATTACH: a VM taken from a warm pool gets its workspace and its name. The host has
 * mounted the workspace under a directory of the workspace share (PATH, below /workspace);
 * bound on /workspace it hides the share. */
int gi_attach(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len)
{
    if (gi_jail_mode)
        return gi_conn_send_error(c, stream, EPERM, "attach: the jail is attached by the host");
    struct gi_reader rd;
    struct gi_tlv t;
    _cleanup_free_ char *path = NULL, *hostname = NULL;
    int r;
    gi_reader_init(&rd, payload, len);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        char **dst = t.tag == GI_T_PATH ? &path : t.tag == GI_T_HOSTNAME ? &hostname : NULL;
        if (!dst)
            continue;
        if (t.len == 0 || t.len > 4096 || memchr(t.value, 0, t.len))
            return gi_conn_send_error(c, stream, EINVAL, "attach: empty or invalid field");
        free(*dst);
        *dst = wr_strndup((const char *)t.value, t.len);
    }
    if (r < 0)
        return r;
    if (path &&
        (strncmp(path, GI_WORKSPACE "/", strlen(GI_WORKSPACE) + 1) != 0 || strstr(path, "..")))
        return gi_conn_send_error(c, stream, EINVAL, "attach: PATH must be below %s", GI_WORKSPACE);
    if (path && mount(path, GI_WORKSPACE, NULL, MS_BIND | MS_REC, NULL) < 0)
        return gi_conn_send_error(c, stream, errno, "attach: binding %s on %s: %s", path,
                                  GI_WORKSPACE, strerror(errno));
    if (hostname && sethostname(hostname, strlen(hostname)) < 0)
        return gi_conn_send_error(c, stream, errno, "attach: sethostname: %s", strerror(errno));
    log_info("attached%s%s%s%s", path ? " workspace " : "", path ? path : "",
             hostname ? " as " : "", hostname ? hostname : "");
    gi_conn_send_empty_result(c, stream);
    return 0;
}
