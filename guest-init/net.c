/* VM mode with warren.net=user: the guest side of QEMU's user-mode network (slirp).
 *
 * Slirp's addressing is fixed: the guest is 10.0.2.15/24, the gateway 10.0.2.2 (which is
 * also the host's 127.0.0.1), the DNS forwarder 10.0.2.3. So no DHCP client is needed:
 * the NIC (the first interface in /sys/class/net other than lo) gets that address and a
 * default route through ioctls, and a file saying "nameserver 10.0.2.3" is bound over
 * /etc/resolv.conf, which is otherwise the host's (a read-only view of its /etc whose
 * resolver, often 127.0.0.53, does not exist in the guest).
 *
 * The root is the host's read-only /usr: nothing here runs ip(8) or a DHCP client. Every
 * failure is logged on the console and the VM boots on without a working network: a
 * sandbox without network is still useful, one that never boots is not. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "guest-init.h"

#define SLIRP_ADDRESS "10.0.2.15"
#define SLIRP_NETMASK "255.255.255.0"
#define SLIRP_GATEWAY "10.0.2.2"
#define SLIRP_DNS "10.0.2.3"
#define RESOLV_CONF "/etc/resolv.conf"
/* Written on the /tmp tmpfs, bound over RESOLV_CONF, then unlinked: the bind keeps it. */
#define RESOLV_TMP "/tmp/.warren-resolv.conf"
/* virtio_net probes the device while its module loads, so the NIC is normally there at
 * once; a short wait covers an asynchronous probe. */
#define NIC_WAIT_MS 2000
#define NIC_POLL_MS 20

/* The alphabetically first interface other than lo (a VM with network has one NIC). */
static bool find_nic(char name[IFNAMSIZ])
{
    DIR *d = opendir("/sys/class/net");
    if (!d)
        return false;
    name[0] = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "lo") || strlen(de->d_name) >= IFNAMSIZ)
            continue;
        if (!name[0] || strcmp(de->d_name, name) < 0)
            snprintf(name, IFNAMSIZ, "%s", de->d_name);
    }
    closedir(d);
    return name[0] != 0;
}

static bool wait_for_nic(char name[IFNAMSIZ])
{
    /* Without the driver there is nothing to wait for. */
    if (access("/sys/module/virtio_net", F_OK) < 0)
        return find_nic(name);
    uint64_t deadline = wr_now_ms() + NIC_WAIT_MS;
    while (!find_nic(name)) {
        if (wr_now_ms() >= deadline)
            return false;
        struct timespec ts = {.tv_nsec = NIC_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return true;
}

static void set_in_addr(struct sockaddr *sa, const char *text)
{
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    *in = (struct sockaddr_in){.sin_family = AF_INET};
    inet_pton(AF_INET, text, &in->sin_addr);
}

static int ifreq_ioctl(int fd, unsigned long request, const char *what, struct ifreq *ifr,
                       struct wr_error **err)
{
    if (ioctl(fd, request, ifr) < 0)
        return wr_error_set_errno(err, errno, "%s of %s", what, ifr->ifr_name);
    return 0;
}

/* Address, netmask, up, then the default route (the kernel refuses a gateway that no
 * up interface can reach). */
static int configure_nic(const char *nic, struct wr_error **err)
{
    _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "socket");
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", nic);
    set_in_addr(&ifr.ifr_addr, SLIRP_ADDRESS);
    int r = ifreq_ioctl(fd, SIOCSIFADDR, "setting the address", &ifr, err);
    if (r < 0)
        return r;
    set_in_addr(&ifr.ifr_netmask, SLIRP_NETMASK);
    if ((r = ifreq_ioctl(fd, SIOCSIFNETMASK, "setting the netmask", &ifr, err)) < 0 ||
        (r = ifreq_ioctl(fd, SIOCGIFFLAGS, "reading the flags", &ifr, err)) < 0)
        return r;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if ((r = ifreq_ioctl(fd, SIOCSIFFLAGS, "bringing up", &ifr, err)) < 0)
        return r;

    struct rtentry rt = {0};
    set_in_addr(&rt.rt_dst, "0.0.0.0");
    set_in_addr(&rt.rt_genmask, "0.0.0.0");
    set_in_addr(&rt.rt_gateway, SLIRP_GATEWAY);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    char dev[IFNAMSIZ];
    snprintf(dev, sizeof(dev), "%s", nic);
    rt.rt_dev = dev;
    if (ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "adding the default route via " SLIRP_GATEWAY);
    return 0;
}

/* When /etc/resolv.conf is a symlink (systemd-resolved's ../run/systemd/resolve/...), a
 * bind mount lands on its target, which the guest usually lacks: create it (and its
 * directories) so that there is something to bind over. Best effort: the mount then
 * says what is wrong. */
static void create_link_target(void)
{
    char target[PATH_MAX];
    ssize_t n = readlink(RESOLV_CONF, target, sizeof(target) - 1);
    if (n <= 0)
        return;
    target[n] = 0;
    _cleanup_free_ char *path = target[0] == '/' ? wr_strdup(target) : wr_path_join("/etc", target);
    for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = 0;
        (void)mkdir(path, 0755);
        *slash = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd >= 0)
        close(fd);
}

static int bind_resolv_conf(struct wr_error **err)
{
    static const char content[] = "nameserver " SLIRP_DNS "\n";
    (void)unlink(RESOLV_TMP);
    _cleanup_close_ int fd =
        open(RESOLV_TMP, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "creating " RESOLV_TMP);
    int r = wr_write_all(fd, content, sizeof(content) - 1);
    if (r < 0) {
        (void)unlink(RESOLV_TMP);
        return wr_error_set_errno(err, -r, "writing " RESOLV_TMP);
    }
    struct stat st;
    if (lstat(RESOLV_CONF, &st) == 0 && S_ISLNK(st.st_mode) && stat(RESOLV_CONF, &st) < 0)
        create_link_target();
    if (mount(RESOLV_TMP, RESOLV_CONF, NULL, MS_BIND, NULL) < 0)
        r = wr_error_set_errno(err, errno, "binding a resolv.conf over " RESOLV_CONF);
    else if (mount(NULL, RESOLV_CONF, NULL,
                   MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        log_warning("remounting " RESOLV_CONF " read-only: %s", strerror(errno));
    (void)unlink(RESOLV_TMP);
    return r;
}

bool gi_vm_net_setup(void)
{
    uint64_t start = wr_now_ms();
    _cleanup_error_ struct wr_error *err = NULL;
    char nic[IFNAMSIZ];
    if (!wait_for_nic(nic)) {
        log_error("network: no interface besides lo (did the virtio_net module load?)");
        return false;
    }
    if (configure_nic(nic, &err) < 0) {
        log_error("network: %s", err->msg);
        return false;
    }
    if (bind_resolv_conf(&err) < 0) {
        log_error("network: %s", err->msg);
        return false;
    }
    log_info("network: %s is " SLIRP_ADDRESS "/24 via " SLIRP_GATEWAY ", DNS " SLIRP_DNS
             " (%llu ms)",
             nic, (unsigned long long)(wr_now_ms() - start));
    return true;
}
