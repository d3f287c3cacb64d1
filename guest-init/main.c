/* guest-init: PID 1 and agent of a warren sandbox. It sets up what the sandbox needs
 * (in a VM: the basic mounts; in a jail the jailer has done everything), then serves the
 * agent protocol (guest-init/PROTOCOL.md) on its transport, reaping every process that
 * ends up as its child. See usage() for the modes. */
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "guest-init.h"

static struct gi_watch signal_watch;

static void usage(FILE *f)
{
    fprintf(f, "usage: guest-init [--jail] [--listen-fd N | --vsock-port P | --serial PATH |\n"
               "                   --channel-fd N]\n"
               "  --jail          the jailer prepared the sandbox: mount nothing\n"
               "  --listen-fd N   accept connections on the inherited listening socket N\n"
               "  --vsock-port P  listen on AF_VSOCK port P\n"
               "  --serial PATH   serve one connection on a virtio-serial port\n"
               "  --channel-fd N  serve the inherited stream N like a serial port (tests)\n"
               "Without a transport option, warren.vsock=P or warren.serial=NAME is read from\n"
               "/proc/cmdline. As PID 1 without --jail, guest-init boots a VM from its\n"
               "initramfs first (warren.root=, warren.workspace=, warren.hostname=).\n");
}

static int parse_uint(const char *s, unsigned max, unsigned *ret)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return -EINVAL;
    *ret = (unsigned)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct gi_options *o)
{
    static const struct option longopts[] = {
        {"jail", no_argument, NULL, 'j'},
        {"listen-fd", required_argument, NULL, 'l'},
        {"vsock-port", required_argument, NULL, 'v'},
        {"serial", required_argument, NULL, 's'},
        {"channel-fd", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    unsigned v;
    int c;
    *o = (struct gi_options){.listen_fd = -1, .channel_fd = -1};
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'j')
            o->jail = true;
        else if (c == 'l' && parse_uint(optarg, 1u << 20, &v) == 0)
            o->listen_fd = (int)v;
        else if (c == 'v' && parse_uint(optarg, UINT32_MAX, &v) == 0)
            o->vsock_port = v;
        else if (c == 'c' && parse_uint(optarg, 1u << 20, &v) == 0)
            o->channel_fd = (int)v;
        else if (c == 's')
            o->serial_path = optarg;
        else
            return -EINVAL;
    }
    return optind == argc ? 0 : -EINVAL;
}

/* Children get fds 0-2 by dup2 from pipes; if guest-init itself started without them,
 * a pipe could land on 0-2 and be clobbered, so they are filled with /dev/null. */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int n = open("/dev/null", O_RDWR);
        if (n >= 0 && n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
}

/* At most a batch per loop iteration: a fork bomb's orphans, dying as fast as they are
 * made, must not keep PID 1 here while its exec's timeout waits to kill them. */
#define REAP_BATCH 256

static void reap_children(void)
{
    int status;
    pid_t pid;
    for (int n = 0; n < REAP_BATCH; n++) {
        if ((pid = waitpid(-1, &status, WNOHANG)) <= 0)
            return;
        if (!gi_exec_reaped(pid, status) && !gi_pty_reaped(pid, status))
            log_debug("reaped orphan %d", pid);
    }
    gi_loop_soon(reap_children);
}

static void on_signal(struct gi_watch *w, uint32_t events)
{
    struct signalfd_siginfo si;
    while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            gi_shutdown();
    }
    /* Signals coalesce: one SIGCHLD may stand for many children, so reap them all. */
    reap_children();
}

static int setup_signals(struct wr_error **err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return wr_error_set_errno(err, errno, "sigprocmask");
    /* Writes to a closed connection must fail with EPIPE, not kill PID 1. */
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "signalfd");
    int r = gi_watch_add(&signal_watch, fd, EPOLLIN, on_signal);
    if (r < 0)
        return wr_error_set_errno(err, -r, "watching the signalfd");
    return 0;
}

static bool vm_init(const struct gi_options *o)
{
    return !o->jail && getpid() == 1;
}

static int run(const struct gi_options *o, struct wr_error **err)
{
    static struct gi_transport transport;
    gi_jail_mode = o->jail;
    /* A VM's PID 1 first needs a /dev to find /dev/null (and a console) in. */
    int r = vm_init(o) ? gi_vm_setup(err) : 0;
    ensure_std_fds();
    /* Not PID 1 (a test, or a VM image with another init): adopt orphans anyway, so
     * that background processes of an exec are reaped here too. */
    if (getpid() != 1)
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (r < 0 || (r = gi_loop_init(err)) < 0 || (r = setup_signals(err)) < 0 ||
        (r = gi_transport_setup(o, &transport, err)) < 0)
        return r;
    log_info("%s serving (%s mode, pid %d)", GI_AGENT_NAME, o->jail ? "jail" : "vm", (int)getpid());
    gi_loop_run();
    return 0;
}

int main(int argc, char **argv)
{
    struct gi_options o;
    if (parse_args(argc, argv, &o) < 0) {
        usage(stderr);
        return 2;
    }
    umask(022);
    /* Big transfer buffers must go back to the kernel when freed: a fixed mmap threshold
     * stops glibc from raising it (and keeping freed megabytes in the heap) after the
     * first large file moves through. An idle sandbox's PID 1 then stays near 1 MiB. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
    _cleanup_error_ struct wr_error *err = NULL;
    if (run(&o, &err) < 0) {
        log_error("guest-init: %s", err->msg);
        /* PID 1 must not exit (the kernel would panic, and with panic=-1 reboot into
         * the same failure). Powering off ends the VMM at once, so the host reports
         * this message from the console log instead of waiting for the agent. */
        if (vm_init(&o)) {
            log_error("guest-init: fatal, powering off");
            sync();
            reboot(RB_POWER_OFF);
            for (;;)
                pause();
        }
        return 1;
    }
    return 0;
}
