/* A sandbox's outbound network: slirp4netns plus nftables in its namespace (see net.h). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "net.h"
#include "vmm/disk.h"

#define SLIRP4NETNS "/usr/bin/slirp4netns"
#define NFT "/usr/sbin/nft"
#define READY_TIMEOUT_MS 10000

/* Never reachable from a sandbox, whatever its mode: the host's loopback, private and
 * carrier-grade NAT ranges, link-local (cloud metadata), multicast, reserved and "this
 * network"; IPv6 loopback, unique-local, link-local, multicast and IPv4-mapped. */
static const char *const denied4[] = {
    "0.0.0.0/8",     "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8",   "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "192.0.0.0/24",  "198.18.0.0/15", "224.0.0.0/3",
};
static const char *const denied6[] = {
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8",
};

/* The host's own addresses ("192.0.2.2", "2001:db8::1"), read in its namespace. */
static char **host_addresses(struct wr_error **err)
{
    struct ifaddrs *list;
    if (getifaddrs(&list) < 0) {
        wr_error_set_errno(err, errno, "listing the host's addresses");
        return NULL;
    }
    size_t n = 0;
    char **addrs = wr_calloc(1, sizeof(char *));
    for (struct ifaddrs *a = list; a; a = a->ifa_next) {
        if (!a->ifa_addr ||
            (a->ifa_addr->sa_family != AF_INET && a->ifa_addr->sa_family != AF_INET6))
            continue;
        char text[INET6_ADDRSTRLEN];
        const void *raw = a->ifa_addr->sa_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)a->ifa_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr;
        if (inet_ntop(a->ifa_addr->sa_family, raw, text, sizeof(text)))
            wr_strv_push(&addrs, &n, wr_strdup(text));
    }
    freeifaddrs(list);
    return addrs;
}

/* The nftables ruleset of a sandbox's namespace (caller frees). */
static char *net_rules(const char *const *host_addrs)
{
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    wr_buf_printf(&b, "table inet warren {\n"
                      "  chain output {\n"
                      "    type filter hook output priority 0; policy accept;\n"
                      "    oifname \"lo\" accept\n"
                      "    ip daddr " VMM_NET_DNS " udp dport 53 accept\n"
                      "    ip daddr " VMM_NET_DNS " tcp dport 53 accept\n");
    wr_buf_printf(&b, "    ip daddr { ");
    for (size_t i = 0; i < WR_ARRAY_SIZE(denied4); i++)
        wr_buf_printf(&b, "%s%s", i ? ", " : "", denied4[i]);
    for (size_t i = 0; host_addrs && host_addrs[i]; i++)
        if (!strchr(host_addrs[i], ':'))
            wr_buf_printf(&b, ", %s", host_addrs[i]);
    wr_buf_printf(&b, " } reject with icmpx type admin-prohibited\n    ip6 daddr { ");
    for (size_t i = 0; i < WR_ARRAY_SIZE(denied6); i++)
        wr_buf_printf(&b, "%s%s", i ? ", " : "", denied6[i]);
    for (size_t i = 0; host_addrs && host_addrs[i]; i++)
        if (strchr(host_addrs[i], ':') && !strchr(host_addrs[i], '%'))
            wr_buf_printf(&b, ", %s", host_addrs[i]);
    wr_buf_printf(&b, " } reject with icmpx type admin-prohibited\n  }\n}\n");
    return wr_buf_steal(&b, NULL);
}

int vmm_net_loopback_up(struct wr_error **err)
{
    _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "socket for lo");
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return wr_error_set_errno(err, errno, "reading the flags of lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        return wr_error_set_errno(err, errno, "bringing lo up");
    return 0;
}

/* Starts nft -f - in the network namespace of target with the rules on its stdin (its
 * output goes to log_fd); load_rules_wait collects it. */
static int load_rules_start(pid_t target, const char *rules, int log_fd, pid_t *ret_pid,
                            struct wr_error **err)
{
    char ns_path[64];
    snprintf(ns_path, sizeof(ns_path), "/proc/%d/ns/net", (int)target);
    _cleanup_close_ int ns = open(ns_path, O_RDONLY | O_CLOEXEC);
    if (ns < 0)
        return wr_error_set_errno(err, errno, "opening %s", ns_path);
    int in[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return wr_error_set_errno(err, errno, "creating a pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        return wr_error_set_errno(err, errno, "forking nft");
    }
    if (pid == 0) {
        if (setns(ns, CLONE_NEWNET) < 0) {
            dprintf(log_fd, "net: joining the sandbox's network namespace: %s\n", strerror(errno));
            _exit(127);
        }
        dup2(in[0], 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        char *argv[] = {NFT, "-f", "-", NULL};
        char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        execve(NFT, argv, envp);
        dprintf(2, "net: executing %s: %s\n", NFT, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    /* The rules are a few hundred bytes: the pipe holds them before nft reads. */
    int r = wr_write_all(in[1], rules, strlen(rules));
    close(in[1]);
    *ret_pid = pid;
    if (r < 0) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        return wr_error_set_errno(err, -r, "writing the rules to nft");
    }
    return 0;
}

static int load_rules_wait(pid_t pid, struct wr_error **err)
{
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return wr_error_set(err, EIO,
                            "loading the sandbox's firewall rules with nft failed (status %d; "
                            "is the nftables package installed and nf_tables available?)",
                            status);
    return 0;
}

static _Noreturn void exec_slirp(pid_t target, int log_fd, int ready_fd, int exit_fd)
{
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    /* Fixed descriptors for the child: 3 the ready pipe, 4 the exit pipe. */
    int ready = fcntl(ready_fd, F_DUPFD, 10), ex = exit_fd >= 0 ? fcntl(exit_fd, F_DUPFD, 10) : -1;
    dup2(ready, 3);
    if (ex >= 0)
        dup2(ex, 4);
    char pid_text[16];
    snprintf(pid_text, sizeof(pid_text), "%d", (int)target);
    char *argv[12] = {
        "slirp4netns",      "--configure",      "--mtu=65520", "--disable-host-loopback",
        "--enable-sandbox", "--enable-seccomp", "--ready-fd=3"};
    size_t n = 7;
    if (ex >= 0)
        argv[n++] = "--exit-fd=4";
    argv[n++] = pid_text;
    argv[n++] = "tap0";
    argv[n] = NULL;
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(SLIRP4NETNS, argv, envp);
    dprintf(2, "net: executing %s: %s\n", SLIRP4NETNS, strerror(errno));
    _exit(127);
}

/* Runs in the host's namespaces (the network helper): starts slirp4netns on a tap in the
 * network namespace of process target, waits until it is configured, and loads the rules
 * there with nft. slirp4netns exits when exit_fd (a pipe's read end; -1: none) reports
 * hang-up, or when it is killed with the sandbox's cgroup. Output goes to log_fd. */
static int net_attach(pid_t target, int log_fd, int exit_fd, struct wr_error **err)
{
    _cleanup_strv_ char **addrs = host_addresses(err);
    if (!addrs)
        return -(*err)->status;
    /* nft and slirp4netns start together (the rules name no device that slirp4netns
     * makes); both are done before this returns. */
    _cleanup_free_ char *rules = net_rules((const char *const *)addrs);
    pid_t nft = -1;
    int r = load_rules_start(target, rules, log_fd, &nft, err);
    if (r < 0)
        return r;
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) {
        r = wr_error_set_errno(err, errno, "creating a pipe");
        (void)load_rules_wait(nft, NULL);
        return r;
    }
    pid_t pid = fork();
    if (pid < 0) {
        r = wr_error_set_errno(err, errno, "forking slirp4netns");
        close(ready[0]);
        close(ready[1]);
        (void)load_rules_wait(nft, NULL);
        return r;
    }
    if (pid == 0)
        exec_slirp(target, log_fd, ready[1], exit_fd);
    close(ready[1]);
    struct pollfd p = {.fd = ready[0], .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, READY_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    char byte = 0;
    bool ok = n == 1 && read(ready[0], &byte, 1) == 1;
    close(ready[0]);
    r = load_rules_wait(nft, err);
    if (r >= 0 && !ok)
        r = wr_error_set(err, EIO,
                         "slirp4netns did not set up the sandbox's network (is the "
                         "slirp4netns package installed? see the sandbox's log)");
    if (r < 0) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        return r;
    }
    return 0;
}

/* ---- the helper ------------------------------------------------------------------------ */

#define HELPER_ERROR_MAX 1024

static void close_other_fds(const int *keep, size_t n_keep)
{
    for (int fd = 3; fd < 1024; fd++) {
        bool kept = false;
        for (size_t i = 0; i < n_keep; i++)
            kept |= keep[i] == fd;
        if (!kept)
            (void)close(fd);
    }
}

int vmm_net_helper_start(struct vmm_net_helper *h, int log_fd, int exit_fd, const int *keep,
                         size_t n_keep, struct wr_error **err)
{
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) < 0)
        return wr_error_set_errno(err, errno, "creating a pipe");
    if (pipe2(from, O_CLOEXEC) < 0) {
        close(to[0]);
        close(to[1]);
        return wr_error_set_errno(err, errno, "creating a pipe");
    }
    h->pid = fork();
    if (h->pid < 0) {
        int e = errno;
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        return wr_error_set_errno(err, e, "forking the network helper");
    }
    if (h->pid == 0) {
        int mine[16] = {to[0], from[1], log_fd, exit_fd};
        size_t n = 4;
        for (size_t i = 0; i < n_keep && n < WR_ARRAY_SIZE(mine); i++)
            mine[n++] = keep[i];
        close_other_fds(mine, n);
        pid_t target;
        if (read(to[0], &target, sizeof(target)) != (ssize_t)sizeof(target))
            _exit(0);
        _cleanup_error_ struct wr_error *e = NULL;
        if (net_attach(target, log_fd, exit_fd, &e) < 0) {
            (void)wr_write_all(from[1], e->msg, strlen(e->msg));
            _exit(1);
        }
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
    h->to = to[1];
    h->from = from[0];
    return 0;
}

int vmm_net_helper_finish(struct vmm_net_helper *h, pid_t target, struct wr_error **err)
{
    int r = 0;
    if (target > 0 && wr_write_all(h->to, &target, sizeof(target)) < 0)
        r = wr_error_set_errno(err, errno, "talking to the network helper");
    close(h->to);
    char msg[HELPER_ERROR_MAX];
    size_t len = 0;
    ssize_t n;
    while ((n = read(h->from, msg + len, sizeof(msg) - 1 - len)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && (len += (size_t)n) == sizeof(msg) - 1)
            break;
    close(h->from);
    msg[len] = 0;
    int status = 0;
    while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (r >= 0 && target > 0 && (len > 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0))
        r = wr_error_set(err, EIO, "%s", len ? msg : "the network helper failed");
    return r;
}

/* ---- __netexec ---------------------------------------------------------------------------- */

static int netexec(const char *dir, int log_fd, char **argv, struct wr_error **err)
{
    /* slirp4netns ends when the last holder of the exit pipe's write end (the program,
     * which inherits it) is gone. */
    int exit_pipe[2];
    if (pipe(exit_pipe) < 0)
        return wr_error_set_errno(err, errno, "creating a pipe");
    (void)fcntl(exit_pipe[0], F_SETFD, FD_CLOEXEC);
    struct vmm_net_helper h;
    int r = vmm_net_helper_start(&h, log_fd, exit_pipe[0], NULL, 0, err);
    close(exit_pipe[0]);
    if (r < 0)
        return r;
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
        r = wr_error_set_errno(err, errno, "creating namespaces");
        (void)vmm_net_helper_finish(&h, -1, NULL);
        return r;
    }
    _cleanup_free_ char *resolv = wr_path_join(dir, "resolv.conf");
    static const char text[] = "nameserver " VMM_NET_DNS "\n";
    if ((r = vmm_net_loopback_up(err)) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        wr_write_file_replace(resolv, text, sizeof(text) - 1, 0644) < 0 ||
        mount(resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0) {
        if (r >= 0)
            r = wr_error_set_errno(err, errno, "giving the program its resolv.conf");
        (void)vmm_net_helper_finish(&h, -1, NULL);
        return r;
    }
    if ((r = vmm_net_helper_finish(&h, getpid(), err)) < 0)
        return r;
    /* The program (a VMM) needs no sandbox's disk: this namespace's copies of them must
     * not outlive their sandboxes. */
    vmm_disk_detach_all();
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(argv[0], argv, envp);
    return wr_error_set_errno(err, errno, "executing %s", argv[0]);
}

int vmm_netexec_main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: warren __netexec DIR LOG PROGRAM [ARGS...]\n");
        return 2;
    }
    int log_fd = open(argv[3], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (log_fd < 0) {
        fprintf(stderr, "netexec: opening %s: %s\n", argv[3], strerror(errno));
        return 1;
    }
    _cleanup_error_ struct wr_error *err = NULL;
    (void)netexec(argv[2], log_fd, argv + 4, &err);
    fprintf(stderr, "netexec: %s\n", err ? err->msg : "failed");
    return 1;
}
