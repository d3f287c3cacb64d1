/* A sandbox's outbound network: slirp4netns plus nftables in its namespace (see net.h). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "net.h"
#include "vmm/backends/jail/cgroup.h"
#include "vmm/net/addr.h"

#define SLIRP4NETNS "/usr/bin/slirp4netns"
#define NFT "/usr/sbin/nft"
#define READY_TIMEOUT_MS 10000

bool vmm_net_available(struct wr_error **err)
{
    const char *missing = access(SLIRP4NETNS, X_OK) < 0 ? SLIRP4NETNS " (apt-get install slirp4netns)"
                          : access(NFT, X_OK) < 0     ? NFT " (apt-get install nftables)"
                                                      : NULL;
    if (missing)
        wr_error_set(err, ENOENT, "sandboxes with a network need %s", missing);
    return !missing;
}

/* The nftables ruleset of a sandbox's namespace (caller frees). */
static char *net_rules(const char *const *host_addrs)
{
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    /* Created if missing, then emptied: attaching again (sandbox_update) loads one copy. */
    wr_buf_printf(&b, "table inet warren\nflush table inet warren\ntable inet warren {\n"
                      "  chain output {\n"
                      "    type filter hook output priority 0; policy accept;\n"
                      "    oifname \"lo\" accept\n"
                      "    ip daddr " VMM_NET_DNS " udp dport 53 accept\n"
                      "    ip daddr " VMM_NET_DNS " tcp dport 53 accept\n");
    wr_buf_printf(&b, "    ip daddr { ");
    for (size_t i = 0; i < vmm_net_denied4_n; i++)
        wr_buf_printf(&b, "%s%s", i ? ", " : "", vmm_net_denied4[i]);
    for (size_t i = 0; host_addrs && host_addrs[i]; i++)
        if (!strchr(host_addrs[i], ':'))
            wr_buf_printf(&b, ", %s", host_addrs[i]);
    wr_buf_printf(&b, " } reject with icmpx type admin-prohibited\n    ip6 daddr { ");
    for (size_t i = 0; i < vmm_net_denied6_n; i++)
        wr_buf_printf(&b, "%s%s", i ? ", " : "", vmm_net_denied6[i]);
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
static int net_attach(pid_t target, int log_fd, int exit_fd, const char *pid_file, pid_t *ret_slirp,
                      struct wr_error **err)
{
    _cleanup_strv_ char **addrs = vmm_net_host_addresses(err);
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
    if (r >= 0 && pid_file) {
        /* With its start time: a pid alone may name another process after a reboot. */
        char text[48];
        int len = snprintf(text, sizeof(text), "%d %llu\n", (int)pid,
                           (unsigned long long)wr_process_start_time(pid));
        if (wr_write_file_replace(pid_file, text, (size_t)len, 0600) < 0)
            r = wr_error_set_errno(err, errno, "writing %s", pid_file);
    }
    if (r < 0) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        return r;
    }
    if (ret_slirp)
        *ret_slirp = pid;
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

int vmm_net_helper_start(struct vmm_net_helper *h, int log_fd, int exit_fd, const char *dir,
                         const int *keep, size_t n_keep, struct wr_error **err)
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
        _cleanup_free_ char *pid_file = wr_path_join(dir, VMM_NET_SLIRP_PID_FILE);
        if (net_attach(target, log_fd, exit_fd, pid_file, NULL, &e) < 0) {
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

/* ---- attaching and detaching a running sandbox's NAT ------------------------------------- */

int vmm_netattach_main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: warren __netattach '{\"pid\": N, \"dir\": D, \"id\": ID}'\n");
        return 2;
    }
    cJSON *arg = cJSON_Parse(argv[2]);
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(arg, "pid");
    const char *dir = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(arg, "dir"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(arg, "id"));
    if (!cJSON_IsNumber(pid) || pid->valuedouble < 2 || !dir || !id) {
        fprintf(stderr, "netattach: bad argument\n");
        return 2;
    }
    pid_t target = (pid_t)pid->valuedouble;
    /* slirp4netns is killed with the sandbox: it joins the sandbox's cgroup, if it has one. */
    if (vmm_cgroup_contains(id, target))
        (void)vmm_cgroup_add_pid(id, getpid(), NULL);
    _cleanup_free_ char *log = wr_path_join(dir, "sandbox.log");
    int log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (log_fd < 0) {
        fprintf(stderr, "netattach: opening %s: %s\n", log, strerror(errno));
        return 1;
    }
    _cleanup_free_ char *pid_file = wr_path_join(dir, VMM_NET_SLIRP_PID_FILE);
    _cleanup_error_ struct wr_error *err = NULL;
    pid_t slirp = 0;
    if (net_attach(target, log_fd, -1, pid_file, &slirp, &err) < 0) {
        fprintf(stderr, "%s\n", err->msg);
        return 1;
    }
    printf("%d\n", (int)slirp);
    cJSON_Delete(arg);
    return 0;
}

/* True when pid is still the host's slirp4netns that started at start. */
static bool is_our_slirp(pid_t pid, uint64_t start)
{
    char path[64];
    struct stat exe, want;
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    return start != 0 && wr_process_start_time(pid) == start && stat(path, &exe) == 0 &&
           stat(SLIRP4NETNS, &want) == 0 && exe.st_dev == want.st_dev && exe.st_ino == want.st_ino;
}

int vmm_net_detach(const char *dir, pid_t target, struct wr_error **err)
{
    _cleanup_free_ char *pid_file = wr_path_join(dir, VMM_NET_SLIRP_PID_FILE);
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = wr_read_file(pid_file, 64, &text, &len);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return wr_error_set_errno(err, -r, "reading %s", pid_file);
    char *end;
    pid_t pid = (pid_t)strtol(text, &end, 10);
    uint64_t start = strtoull(end, NULL, 10);
    if (pid > 1 && is_our_slirp(pid, start)) {
        if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
            return wr_error_set_errno(err, errno, "stopping slirp4netns");
        /* Not our child: gone once its /proc entry is. */
        for (int i = 0; i < 200 && is_our_slirp(pid, start); i++)
            usleep(5000);
    }
    (void)unlink(pid_file);
    return vmm_net_cut(target, err);
}

int vmm_net_cut(pid_t target, struct wr_error **err)
{
    /* SOCK_DESTROY through ss (iproute2): every TCP socket of the namespace that is not
     * on its loopback ends with ECONNABORTED, and its peer (in the sandbox, or a VM's
     * guest through QEMU's user network) sees the connection end. */
    char ns[64];
    snprintf(ns, sizeof(ns), "--net=/proc/%d/ns/net", (int)target);
    const char *const argv[] = {"/usr/bin/nsenter",
                                ns,
                                "/usr/bin/ss",
                                "-K",
                                "-t",
                                "-n",
                                "not dst 127.0.0.0/8 and not dst [::1]",
                                NULL};
    struct wr_buf out;
    wr_buf_init(&out, 4096);
    int status = 0, r = wr_run(argv, NULL, NULL, &out, &status);
    if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        r = -EIO;
    if (r < 0)
        wr_error_set(err, -r, "cutting the sandbox's connections with ss -K: %.*s",
                     (int)(out.len < 200 ? out.len : 200), out.data ? out.data : "");
    wr_buf_free(&out);
    return r;
}
