/* Where host connections come from. Two kinds behind one small ops table:
 *  - a listener (an inherited listening unix socket, or AF_VSOCK on a port): every
 *    accepted connection is its own gi_conn, up to GI_MAX_CONNECTIONS;
 *  - a channel (a virtio-serial port): one always-open fd that is a single gi_conn,
 *    reopened a little later whenever it fails (the host side disconnected). An
 *    inherited fd (--channel-fd, tests) is a channel that is served once. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "guest-init.h"

#define REOPEN_DELAY_MS 100

static struct gi_transport *transports[1];

/* ---- listener ----------------------------------------------------------------------- */

static void on_accept(struct gi_watch *w, uint32_t events)
{
    struct gi_transport *t = gi_container_of(w, struct gi_transport, watch);
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_error("accept: %s", strerror(errno));
            return;
        }
        if (t->n_conns >= GI_MAX_CONNECTIONS) {
            log_error("refusing a connection: already %d open", GI_MAX_CONNECTIONS);
            close(fd);
            continue;
        }
        gi_conn_new(fd, t);
    }
}

static int listener_start(struct gi_transport *t, struct wr_error **err)
{
    int fl = fcntl(t->listen_fd, F_GETFL);
    if (fl < 0)
        return wr_error_set_errno(err, errno, "listen fd %d", t->listen_fd);
    fcntl(t->listen_fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(t->listen_fd, F_SETFD, FD_CLOEXEC);
    int r = gi_watch_add(&t->watch, t->listen_fd, EPOLLIN, on_accept);
    if (r < 0)
        return wr_error_set_errno(err, -r, "watching listen fd %d", t->listen_fd);
    return 0;
}

static void listener_conn_closed(struct gi_transport *t) {}
static uint64_t listener_timer(struct gi_transport *t, uint64_t now)
{
    return 0;
}

static const struct gi_transport_ops listener_ops = {
    .name = "listener",
    .start = listener_start,
    .conn_closed = listener_conn_closed,
    .timer = listener_timer,
};

static int vsock_listen(unsigned port, struct wr_error **err)
{
    _cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "vsock socket");
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return wr_error_set_errno(err, errno, "vsock bind port %u", port);
    if (listen(fd, 16) < 0)
        return wr_error_set_errno(err, errno, "vsock listen");
    return TAKE_FD(fd);
}

/* ---- channel ------------------------------------------------------------------------ */

/* Reads sysfs attribute file dir/entry/name into buf without the trailing newline. */
static bool read_port_name(const char *dir, const char *entry, char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/name", dir, entry);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, cap - 1);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return true;
}

/* The device node of the virtio-serial port called name. Without udev (the VM boots
 * from our initramfs) there is no /dev/virtio-ports/NAME link: the name is in sysfs
 * and the node (/dev/vportNpM) in devtmpfs. The port appears only once the host has
 * announced it, after the virtio_console module loaded, hence a lookup per attempt. */
static char *find_serial_port(const char *name)
{
    static const char dir[] = "/sys/class/virtio-ports";
    char found[256];
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] != '.' && read_port_name(dir, de->d_name, found, sizeof(found)) &&
            !strcmp(found, name)) {
            char *path = wr_asprintf("/dev/%s", de->d_name);
            closedir(d);
            return path;
        }
    }
    if (d)
        closedir(d);
    return wr_asprintf("/dev/virtio-ports/%s", name);
}

static int channel_open_fd(struct gi_transport *t)
{
    if (t->serial_path)
        return open(t->serial_path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (t->serial_name) {
        _cleanup_free_ char *path = find_serial_port(t->serial_name);
        return open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    }
    int fd = TAKE_FD(t->channel_fd);
    if (fd >= 0) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    return fd;
}

static int channel_open(struct gi_transport *t, struct wr_error **err)
{
    const char *what = t->serial_path ? t->serial_path : t->serial_name ? t->serial_name : "fd";
    int fd = channel_open_fd(t);
    if (fd < 0) {
        t->reopen_at = t->fd_channel ? 0 : wr_now_ms() + REOPEN_DELAY_MS;
        return wr_error_set_errno(err, errno, "opening serial port %s", what);
    }
    t->reopen_at = 0;
    return gi_conn_new(fd, t) ? 0 : wr_error_set(err, EIO, "serving %s", what);
}

static int channel_start(struct gi_transport *t, struct wr_error **err)
{
    _cleanup_error_ struct wr_error *e = NULL;
    /* A port that is not there yet (the module is still loading) is retried. */
    if (channel_open(t, &e) < 0)
        log_warning("%s; retrying", e->msg);
    return 0;
}

static void channel_conn_closed(struct gi_transport *t)
{
    /* An inherited fd cannot be reopened: with its host gone there is nothing to serve. */
    if (t->fd_channel) {
        log_info("channel closed by the host");
        gi_shutdown();
    }
    t->reopen_at = wr_now_ms() + REOPEN_DELAY_MS;
}

static uint64_t channel_timer(struct gi_transport *t, uint64_t now)
{
    if (!t->reopen_at || now < t->reopen_at)
        return t->reopen_at;
    _cleanup_error_ struct wr_error *e = NULL;
    if (channel_open(t, &e) < 0)
        log_debug("%s", e->msg);
    return t->reopen_at;
}

static const struct gi_transport_ops channel_ops = {
    .name = "serial",
    .channel = true,
    .start = channel_start,
    .conn_closed = channel_conn_closed,
    .timer = channel_timer,
};

/* ---- selection ---------------------------------------------------------------------- */

/* Reads warren.vsock=P / warren.serial=NAME from the kernel command line. */
static void options_from_cmdline(struct gi_options *o)
{
    _cleanup_free_ char *cmdline = NULL;
    size_t n;
    if (wr_read_file("/proc/cmdline", 64 * 1024, &cmdline, &n) < 0)
        return;
    for (char *save = NULL, *tok = strtok_r(cmdline, " \t\n", &save); tok;
         tok = strtok_r(NULL, " \t\n", &save)) {
        if (!strncmp(tok, "warren.vsock=", 13) && !o->vsock_port)
            o->vsock_port = (unsigned)strtoul(tok + 13, NULL, 10);
        else if (!strncmp(tok, "warren.serial=", 14) && tok[14] == '/' && !o->serial_path)
            o->serial_path = wr_strdup(tok + 14);
        else if (!strncmp(tok, "warren.serial=", 14) && tok[14] && !o->serial_name)
            o->serial_name = wr_strdup(tok + 14);
    }
}

static int start_channel(struct gi_transport *t, const struct gi_options *o)
{
    t->ops = &channel_ops;
    t->serial_path = o->serial_path ? wr_strdup(o->serial_path) : NULL;
    t->serial_name = o->serial_path || !o->serial_name ? NULL : wr_strdup(o->serial_name);
    t->channel_fd = o->serial_path || o->serial_name ? -1 : o->channel_fd;
    t->fd_channel = t->channel_fd >= 0;
    return 0;
}

int gi_transport_setup(const struct gi_options *opts, struct gi_transport *t, struct wr_error **err)
{
    struct gi_options o = *opts;
    *t = (struct gi_transport){.listen_fd = -1, .channel_fd = -1, .watch.fd = -1};
    if (!o.jail && o.listen_fd < 0 && o.channel_fd < 0 && !o.vsock_port && !o.serial_path)
        options_from_cmdline(&o);
    if (o.listen_fd >= 0) {
        t->ops = &listener_ops;
        t->listen_fd = o.listen_fd;
    } else if (o.vsock_port) {
        int fd = vsock_listen(o.vsock_port, err);
        if (fd < 0)
            return fd;
        t->ops = &listener_ops;
        t->listen_fd = fd;
    } else if (o.serial_path || o.serial_name || o.channel_fd >= 0) {
        start_channel(t, &o);
    } else {
        return wr_error_set(err, EINVAL,
                            "no transport: give --listen-fd, --vsock-port, --serial, "
                            "--channel-fd or warren.vsock= / warren.serial= on the kernel "
                            "command line");
    }
    if (o.serial_path != opts->serial_path)
        free(o.serial_path);
    if (o.serial_name != opts->serial_name)
        free(o.serial_name);
    transports[0] = t;
    return t->ops->start(t, err);
}

uint64_t gi_transport_timers(uint64_t now)
{
    return transports[0] ? transports[0]->ops->timer(transports[0], now) : 0;
}
