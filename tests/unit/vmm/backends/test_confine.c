/* The confined VMM launcher (vmm/backends/confine.c), with /bin/sh standing in for the VMM:
 * the shell reports, from inside, its identity, capabilities, root, hostname, resolver and
 * the fds it was handed, into the output file it was handed as fd 4; the test checks that
 * and, from the host, the cgroup, the ownership of what the VMM was given, and that
 * destroying the cgroup ends it. This is what QEMU and Cloud Hypervisor get.
 *
 * Needs root. The binary dispatches `__confine` like warren does. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "test.h"
#include "vmm/backends/confine.h"
#include "vmm/backends/jail/cgroup.h"

#define ID "00c0ffee00c0ffee"

static char dir[] = "/tmp/warren-confine-XXXXXX";
static uv_loop_t *loop;

struct launched {
    bool done;
    pid_t pid;
    struct wr_error *err;
};

static void on_launched(void *data, pid_t pid, struct wr_error *err)
{
    struct launched *l = data;
    l->done = true;
    l->pid = pid;
    l->err = err;
}

static char *in_dir(const char *name)
{
    return wr_path_join(dir, name);
}

static void write_file(const char *name, const char *text)
{
    _cleanup_free_ char *path = in_dir(name);
    ASSERT(wr_write_file_atomic(path, text, strlen(text), 0644) == 0);
}

static int listen_at(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    ASSERT(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(fd, 1) == 0);
    return fd;
}

/* Waits until the shell wrote its last line, "done". */
static char *read_report(const char *path)
{
    for (int i = 0; i < 1000; i++) {
        char *text = NULL;
        size_t len;
        if (wr_read_file(path, 1 << 16, &text, &len) == 0 && strstr(text, "\ndone\n"))
            return text;
        free(text);
        usleep(10000);
    }
    ASSERT(!"the confined shell did not report");
    return NULL;
}

/* The VMM's / holds the system directories, dev, etc, proc, and the first component of
 * the test directory (tmp), nothing else. */
static void check_root_listing(const char *line)
{
    static const char *const allowed[] = {"bin",    "dev",  "etc",  "lib", "lib32", "lib64",
                                          "libx32", "proc", "sbin", "tmp", "usr"};
    ASSERT(line);
    _cleanup_free_ char *copy = wr_strndup(line + 6, strcspn(line + 6, "\n"));
    char *save = NULL;
    for (char *name = strtok_r(copy, " ", &save); name; name = strtok_r(NULL, " ", &save)) {
        bool ok = false;
        for (size_t i = 0; i < WR_ARRAY_SIZE(allowed); i++)
            ok |= !strcmp(name, allowed[i]);
        if (!ok)
            fprintf(stderr, "unexpected /%s in the VMM's root\n", name);
        ASSERT(ok);
    }
}

static void test_confined_process(void)
{
    _cleanup_free_ char *boot_dir = in_dir("boot");
    ASSERT(mkdir(boot_dir, 0755) == 0);
    write_file("boot/kernel", "the kernel\n");
    write_file("secret", "not for the VMM\n");
    _cleanup_free_ char *kernel = in_dir("boot/kernel");
    _cleanup_free_ char *peer = in_dir("peer.sock");
    _cleanup_free_ char *vmm_dir = in_dir("vmm");
    _cleanup_free_ char *api = in_dir("api.sock");
    _cleanup_free_ char *out = in_dir("out.txt");
    _cleanup_free_ char *log = in_dir("log");
    int peer_fd = listen_at(peer);
    _cleanup_free_ char *script =
        wr_asprintf("exec >&4 2>&1\n"
                    "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' "
                    "/proc/self/status\n"
                    "grep -E '^Max (processes|open files|core file size)' /proc/self/limits\n"
                    "echo \"pid $$\"\n"
                    "echo root $(ls -A /)\n"
                    "echo dir $(ls -A %s)\n"
                    "echo fd3 $(readlink /proc/self/fd/3)\n"
                    "echo hostname $(cat /proc/sys/kernel/hostname)\n"
                    "cat /etc/resolv.conf %s\n"
                    "echo written > %s/x && echo wrote-dir\n"
                    "(echo no > %s) 2>/dev/null || echo kernel-read-only\n"
                    "test -e /etc/shadow || echo no-shadow\n"
                    "echo done\n"
                    "exec sleep 60\n",
                    dir, kernel, vmm_dir, kernel);
    const char *files[] = {kernel, NULL};
    const char *sockets[] = {peer, NULL};
    const char *dirs[] = {vmm_dir, NULL};
    const char *listen[] = {api, NULL};
    const char *outputs[] = {out, NULL};
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    struct vmm_confine_spec spec = {.id = ID,
                                    .dir = dir,
                                    .log_path = log,
                                    .memory_bytes = 64 << 20,
                                    .cpus = 1,
                                    .files = files,
                                    .sockets = sockets,
                                    .dirs = dirs,
                                    .listen = listen,
                                    .outputs = outputs,
                                    .argv = argv};
    struct launched l = {0};
    struct wr_error *err = NULL;
    ASSERT(vmm_confine_start(loop, &spec, on_launched, &l, &err) == 0);
    while (!l.done)
        uv_run(loop, UV_RUN_ONCE);
    if (l.err)
        fprintf(stderr, "launch: %s\n", l.err->msg);
    ASSERT(!l.err && l.pid > 1);
    _cleanup_free_ char *report = read_report(out);
    fprintf(stderr, "%s", report);

    uid_t uid = vmm_confine_uid(ID);
    _cleanup_free_ char *ids = wr_asprintf("Uid:\t%u\t%u\t%u\t%u\n", uid, uid, uid, uid);
    ASSERT(strstr(report, ids));
    const char *groups = strstr(report, "Groups:");
    ASSERT(groups && strspn(groups + strlen("Groups:"), " \t") == strcspn(groups, "\n") - 7);
    static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(sets); i++) {
        _cleanup_free_ char *zero = wr_asprintf("%s:\t0000000000000000\n", sets[i]);
        ASSERT(strstr(report, zero));
    }
    ASSERT(strstr(report, "NoNewPrivs:\t1\n"));
    ASSERT(strstr(report, "Max core file size        0                    0"));
    ASSERT(strstr(report, "Max processes             512                  512"));
    ASSERT(strstr(report, "Max open files            4096                 4096"));
    ASSERT(strstr(report, "\npid 1\n")); /* PID 1 of its own PID namespace */
    check_root_listing(strstr(report, "\nroot "));
    ASSERT(strstr(
        report,
        "\ndir boot peer.sock vmm\n")); /* not the secret, the log or the sockets it serves */
    ASSERT(strstr(report, "\nfd3 socket:["));
    ASSERT(strstr(report, "\nhostname vmm\n"));
    ASSERT(strstr(report, "nameserver 10.0.2.3\nthe kernel\n"));
    ASSERT(strstr(report, "\nwrote-dir\n") && strstr(report, "\nkernel-read-only\n"));
    ASSERT(strstr(report, "\nno-shadow\n"));

    /* From the host: the VMM may connect to the socket and write its directory; the
     * socket it serves is warren's only. */
    struct stat st;
    ASSERT(stat(peer, &st) == 0 && st.st_uid == uid);
    ASSERT(stat(vmm_dir, &st) == 0 && st.st_uid == uid && (st.st_mode & 0777) == 0700);
    ASSERT(stat(api, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == 0 &&
           (st.st_mode & 0777) == 0600);
    ASSERT(vmm_cgroup_contains(ID, l.pid));
    ASSERT(vmm_cgroup_destroy(ID, &err) == 0);
    ASSERT(wr_wait_exit(l.pid, 3000));
    close(peer_fd);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "__confine"))
        return vmm_confine_main(argc, argv);
    if (geteuid() != 0)
        SKIP("the VMM launcher needs root");
    signal(SIGPIPE, SIG_IGN);
    ASSERT(mkdtemp(dir) != NULL);
    loop = uv_default_loop();
    RUN(test_confined_process);
    uv_run(loop, UV_RUN_DEFAULT);
    _cleanup_free_ char *rm = wr_asprintf("rm -rf %s", dir);
    ASSERT(system(rm) == 0);
    return 0;
}
