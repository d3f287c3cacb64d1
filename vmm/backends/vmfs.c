/* The filesystem side of a VM sandbox (see vmfs.h).
 *
 * `warren __vmfs <dir>/vmfs.json` forks the supervisor and waits for its verdict on a
 * CLOEXEC pipe, like the jailer: the supervisor writes an error message and exits, or
 * closes the pipe with nothing written once both virtiofsd sockets are listening. The
 * launcher then prints the supervisor's pid and exits, so the supervisor is reparented away
 * from the server and outlives it. The server side (vmm_vmfs_start) only watches the
 * launcher's pipes and exit on the loop.
 *
 * The supervisor joins the sandbox's cgroup (the VMM's, confine.h), unshares a mount
 * namespace, builds <dir>/vmfs-root and <dir>/vmfs-workspace there, and runs the two
 * virtiofsds as its children. It exits when either of them exits (after stopping the
 * other), or on SIGTERM; its namespace, and with it every mount, dies with the last of
 * these processes.
 *
 * virtiofsd is confined as far as it can go while it still serves a root guest: it stays
 * uid 0, because it serves each request with the guest's uid and gid as its fsuid/fsgid
 * (setresuid/setresgid per thread, back to 0 afterwards), which needs CAP_SETUID and
 * CAP_SETGID, and the guest's root needs CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER,
 * CAP_FSETID, CAP_MKNOD and CAP_SETFCAP honoured. Those 8 are what it keeps. It starts with
 * a bounding set of those plus the 3 its own sandbox=namespace setup needs and then drops
 * (CAP_SYS_ADMIN: unshare, mount, pivot_root; CAP_SETPCAP: emptying its bounding set;
 * CAP_SYS_RESOURCE: its RLIMIT_NOFILE), no_new_privs, RLIMIT_CORE 0, in IPC and UTS
 * namespaces of its own (this file) and new PID, network and mount namespaces where it
 * pivot_roots into its share (its own setup), under its seccomp filter. The serving
 * process ends up with exactly the 8 capabilities (permitted and effective), an empty
 * bounding set minus those, no other process in sight, no network, and the share as its
 * whole filesystem: a compromised virtiofsd reaches its own sandbox's files only. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "attach.h"
#include "confine.h"
#include "hostview.h"
#include "vmfs.h"
#include "vmm/backends/jail/jailer.h"
#include "vmm/disk.h"
#include "vmm/helper.h"

#define READY_TIMEOUT_MS 10000
#define LAUNCH_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 3000
#define LOG_TAIL_BYTES 1024
#define SHARES 2

static const char *const share_tags[SHARES] = {VMM_VMFS_TAG_ROOT, VMM_VMFS_TAG_WORKSPACE};

char *vmm_vmfs_socket(const struct vmm_sandbox_spec *spec, const char *tag)
{
    return wr_asprintf("%s/fs-%s.sock", spec->dir, tag);
}

static char *share_dir(const char *dir, const char *tag)
{
    return wr_asprintf("%s/vmfs-%s", dir, tag);
}

/* ---- shared helpers ------------------------------------------------------------------ */

/* ---- the supervisor ------------------------------------------------------------------ */

struct supervisor {
    const struct vmm_sandbox_spec *spec;
    int sync_fd; /* write end: an error message, or EOF once ready */
    pid_t virtiofsd[SHARES];
};

static int build_root_share(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    _cleanup_free_ char *target = share_dir(spec->dir, VMM_VMFS_TAG_ROOT);
    if (mkdir(target, 0755) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "creating %s", target);
    int r = vmm_mount_root(spec, target, false, err);
    /* The guest mounts the workspace share here; the image skeleton normally has it. */
    _cleanup_free_ char *workspace = NULL;
    if (r >= 0)
        r = vmm_root_dir(target, "workspace", &workspace, err);
    return r;
}

static int build_workspace_share(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    _cleanup_free_ char *target = share_dir(spec->dir, VMM_VMFS_TAG_WORKSPACE);
    if (mkdir(target, 0755) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "creating %s", target);
    if (wr_strv_len(spec->ws_lowers) > 0) {
        int r =
            vmm_mount_overlay(spec->ws_lowers, spec->ws_upper, spec->ws_work, false, target, err);
        return r < 0 ? r : vmm_mount_git_objects(spec, target, err);
    }
    if (spec->pooled) {
        /* A pool's VM: an empty, shared tmpfs, so that the workspace vmm_vmfs_attach mounts
         * under it later reaches the virtiofsd's namespace (a slave of this one). */
        int r =
            vmm_mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755", err);
        if (r < 0)
            return r;
        if (mount(NULL, target, NULL, MS_SHARED, NULL) < 0)
            return wr_error_set_errno(err, errno, "sharing the mount %s", target);
        return 0;
    }
    /* An empty workspace: the upper alone, bound so both shares are mounts of this ns. */
    if (mount(spec->ws_upper, target, NULL, MS_BIND, NULL) < 0)
        return wr_error_set_errno(err, errno, "binding %s on %s", spec->ws_upper, target);
    return 0;
}

static int build_shares(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    if (unshare(CLONE_NEWNS) < 0)
        return wr_error_set_errno(err, errno, "creating a mount namespace");
    /* Nothing mounted here may propagate back to the host's namespace. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return wr_error_set_errno(err, errno, "making mounts private");
    int r = build_root_share(spec, err);
    if (r >= 0)
        r = build_workspace_share(spec, err);
    /* The shares hold what they need of this sandbox's disk; this namespace's copies of
     * every disk (the other sandboxes' too) would otherwise live as long as the VM. */
    if (r >= 0)
        vmm_disk_detach_all();
    return r;
}

/* The capabilities a virtiofsd starts with (see the top of this file): what it keeps to
 * serve files, and what its own sandbox setup needs before it drops them. */
static const int virtiofsd_caps[] = {
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER,    CAP_FSETID,  CAP_SETGID,       CAP_SETUID,
    CAP_MKNOD, CAP_SETFCAP,      CAP_SYS_ADMIN, CAP_SETPCAP, CAP_SYS_RESOURCE,
};

static int bound_capabilities(void)
{
    uint64_t keep = 0;
    for (size_t i = 0; i < WR_ARRAY_SIZE(virtiofsd_caps); i++)
        keep |= 1ull << virtiofsd_caps[i];
    for (int cap = 0; cap <= 63; cap++)
        if (!(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return -errno;
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ? -errno : 0;
}

/* In the forked child: the confinement virtiofsd does not do itself. Returns only on
 * failure, with what failed in the log. */
static void confine_virtiofsd(void)
{
    struct rlimit core = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &core);
    if (unshare(CLONE_NEWIPC | CLONE_NEWUTS) < 0) {
        dprintf(2, "vmfs: creating virtiofsd's namespaces: %s\n", strerror(errno));
        _exit(127);
    }
    int r = bound_capabilities();
    if (r < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        dprintf(2, "vmfs: dropping virtiofsd's privileges: %s\n", strerror(r < 0 ? -r : errno));
        _exit(127);
    }
}

static _Noreturn void exec_virtiofsd(const char *socket_path, const char *source,
                                     const sigset_t *mask)
{
    /* The supervisor may be SIGKILLed: its virtiofsds must not outlive it. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    sigprocmask(SIG_SETMASK, mask, NULL);
    confine_virtiofsd();
    _cleanup_free_ char *socket_arg = wr_asprintf("--socket-path=%s", socket_path);
    _cleanup_free_ char *source_arg = wr_asprintf("source=%s", source);
    /* One request queue is what CH accepts; sandbox=namespace (the default) pivots into
     * the share, and cache=auto keeps the guest's page cache coherent on close/open. */
    char *argv[] = {"virtiofsd", socket_arg, "-o", source_arg, "-o", "cache=auto", NULL};
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(VMM_VIRTIOFSD_PATH, argv, envp);
    dprintf(2, "vmfs: executing %s: %s\n", VMM_VIRTIOFSD_PATH, strerror(errno));
    _exit(127);
}

static int spawn_virtiofsd(struct supervisor *s, size_t i, const sigset_t *mask,
                           struct wr_error **err)
{
    _cleanup_free_ char *socket_path = vmm_vmfs_socket(s->spec, share_tags[i]);
    _cleanup_free_ char *source = share_dir(s->spec->dir, share_tags[i]);
    if (unlink(socket_path) < 0 && errno != ENOENT)
        return wr_error_set_errno(err, errno, "removing stale %s", socket_path);
    pid_t pid = fork();
    if (pid < 0)
        return wr_error_set_errno(err, errno, "forking virtiofsd");
    if (pid == 0) {
        close(s->sync_fd);
        exec_virtiofsd(socket_path, source, mask);
    }
    s->virtiofsd[i] = pid;
    return 0;
}

/* True when a unix socket bound at path is listening in this network namespace. Connecting
 * to test it is not an option: virtiofsd serves the first connection it accepts. */
static bool socket_listening(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        return false;
    char line[PATH_MAX + 128];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned long flags;
        char sock_path[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %4095s", &flags, sock_path) == 2)
            found = (flags & 0x10000) /* __SO_ACCEPTCON */ && !strcmp(sock_path, path);
    }
    fclose(f);
    return found;
}

static int virtiofsd_exited(const struct supervisor *s, size_t i, struct wr_error **err)
{
    _cleanup_free_ char *tail = wr_file_tail(s->spec->log_path, LOG_TAIL_BYTES);
    return wr_error_set(err, EIO, "virtiofsd for share '%s' exited during startup%s%s",
                        share_tags[i], tail ? ":\n" : " (no output)", tail ? tail : "");
}

static int wait_ready(struct supervisor *s, struct wr_error **err)
{
    uint64_t deadline = wr_now_ms() + READY_TIMEOUT_MS;
    for (size_t i = 0; i < SHARES; i++) {
        _cleanup_free_ char *path = vmm_vmfs_socket(s->spec, share_tags[i]);
        while (!socket_listening(path)) {
            int status;
            if (waitpid(s->virtiofsd[i], &status, WNOHANG) == s->virtiofsd[i]) {
                s->virtiofsd[i] = 0;
                return virtiofsd_exited(s, i, err);
            }
            if (wr_now_ms() > deadline)
                return wr_error_set(err, ETIMEDOUT, "virtiofsd did not listen on %s within %d ms",
                                    path, READY_TIMEOUT_MS);
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return 0;
}

static void kill_virtiofsds(struct supervisor *s, int sig)
{
    for (size_t i = 0; i < SHARES; i++)
        if (s->virtiofsd[i] > 0)
            (void)kill(s->virtiofsd[i], sig);
}

static bool reap_children(struct supervisor *s)
{
    bool any = false;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (size_t i = 0; i < SHARES; i++)
            if (s->virtiofsd[i] == pid) {
                s->virtiofsd[i] = 0;
                any = true;
            }
    return any;
}

static bool children_left(const struct supervisor *s)
{
    for (size_t i = 0; i < SHARES; i++)
        if (s->virtiofsd[i] > 0)
            return true;
    return false;
}

/* Runs until every virtiofsd is gone. The first exit or a termination signal stops the
 * rest: a VM with one share gone is broken anyway. SIGKILL follows a grace period. */
static _Noreturn void supervise(struct supervisor *s, const sigset_t *wait_set)
{
    bool stopping = false;
    uint64_t kill_at = 0;
    while (children_left(s)) {
        struct timespec timeout = {1, 0};
        int sig = sigtimedwait(wait_set, NULL, stopping ? &timeout : NULL);
        bool exited = sig == SIGCHLD && reap_children(s);
        if (!stopping && (exited || (sig > 0 && sig != SIGCHLD))) {
            stopping = true;
            kill_at = wr_now_ms() + STOP_TIMEOUT_MS;
            kill_virtiofsds(s, SIGTERM);
        }
        if (stopping && wr_now_ms() >= kill_at)
            kill_virtiofsds(s, SIGKILL);
        (void)reap_children(s);
    }
    _exit(0);
}

static int write_pid_file(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    _cleanup_free_ char *path = wr_path_join(spec->dir, "vmfs.pid");
    _cleanup_free_ char *text = wr_asprintf("%d\n", (int)getpid());
    int r = wr_write_file_atomic(path, text, strlen(text), 0600);
    if (r < 0)
        return wr_error_set_errno(err, -r, "writing %s", path);
    return 0;
}

static int redirect_output(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    _cleanup_close_ int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int log_fd =
        open(spec->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (null_fd < 0 || log_fd < 0)
        return wr_error_set_errno(err, errno, "opening %s", spec->log_path);
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
        return wr_error_set_errno(err, errno, "redirecting output");
    return 0;
}

static int supervisor_setup(struct supervisor *s, const sigset_t *old_mask, struct wr_error **err)
{
    int r = redirect_output(s->spec, err);
    if (r >= 0)
        r = write_pid_file(s->spec, err);
    if (r >= 0)
        r = vmm_confine_join_cgroup(s->spec->id, s->spec->memory_bytes, s->spec->cpus, err);
    if (r >= 0)
        r = build_shares(s->spec, err);
    for (size_t i = 0; r >= 0 && i < SHARES; i++)
        r = spawn_virtiofsd(s, i, old_mask, err);
    if (r >= 0)
        r = wait_ready(s, err);
    return r;
}

static _Noreturn void run_supervisor(const struct vmm_sandbox_spec *spec, int sync_fd)
{
    struct supervisor s = {.spec = spec, .sync_fd = sync_fd};
    (void)setsid();
    sigset_t wait_set, old_mask;
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGCHLD);
    sigaddset(&wait_set, SIGTERM);
    sigaddset(&wait_set, SIGINT);
    sigaddset(&wait_set, SIGHUP);
    sigprocmask(SIG_BLOCK, &wait_set, &old_mask);
    _cleanup_error_ struct wr_error *err = NULL;
    if (supervisor_setup(&s, &old_mask, &err) < 0) {
        kill_virtiofsds(&s, SIGKILL);
        (void)wr_write_all(sync_fd, err->msg, strlen(err->msg));
        _exit(1);
    }
    close(sync_fd);
    supervise(&s, &wait_set);
}

/* The launcher's half of the handshake: EOF with nothing written means ready. */
static int wait_for_supervisor(int sync_fd, pid_t child, struct wr_error **err)
{
    return wr_child_setup_wait(sync_fd, child, "the vmfs supervisor", err);
}

static int launch(const char *spec_path, pid_t *ret_pid, struct wr_error **err)
{
    struct vmm_sandbox_spec *spec = NULL;
    int r = vmm_jail_spec_load(spec_path, &spec, err);
    int sync_fd[2] = {-1, -1};
    if (r >= 0 && pipe2(sync_fd, O_CLOEXEC) < 0)
        r = wr_error_set_errno(err, errno, "creating the setup pipe");
    pid_t child = r >= 0 ? fork() : 0;
    if (child < 0)
        r = wr_error_set_errno(err, errno, "forking the vmfs supervisor");
    if (child == 0 && r >= 0) {
        close(sync_fd[0]);
        run_supervisor(spec, sync_fd[1]);
    }
    if (r >= 0) {
        close(sync_fd[1]);
        r = wait_for_supervisor(sync_fd[0], child, err);
        close(sync_fd[0]);
        *ret_pid = child;
    }
    vmm_jail_spec_free(spec);
    return r;
}

int vmm_vmfs_main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "__vmfs") != 0) {
        fprintf(stderr, "usage: warren __vmfs SPEC.json\n");
        return 2;
    }
    /* Nothing from the server reaches the virtiofsds but fds 0-2. */
    if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    umask(022);
    _cleanup_error_ struct wr_error *err = NULL;
    pid_t pid = 0;
    if (launch(argv[2], &pid, &err) < 0) {
        fprintf(stderr, "%s\n", err->msg);
        fflush(stderr);
        _exit(1);
    }
    printf("%d\n", (int)pid);
    fflush(stdout);
    _exit(ferror(stdout) ? 1 : 0);
}

/* ---- stop (server side) -------------------------------------------------------------- */

/* The supervisor's argv as vmm_vmfs_start sets it: a stale or reused pid is left alone. */
static bool is_supervisor(pid_t pid, const char *dir)
{
    _cleanup_free_ char *path = wr_asprintf("/proc/%d/cmdline", (int)pid);
    _cleanup_free_ char *spec_path = wr_path_join(dir, "vmfs.json");
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (wr_read_file(path, 8192, &text, &len) < 0)
        return false;
    /* argv is NUL-separated: "warren\0__vmfs\0<dir>/vmfs.json\0". */
    const char *arg1 = memchr(text, 0, len);
    if (!arg1 || strcmp(arg1 + 1, "__vmfs") != 0)
        return false;
    const char *arg2 = arg1 + 1 + strlen("__vmfs") + 1;
    return arg2 < text + len && strcmp(arg2, spec_path) == 0;
}

static pid_t read_pid_file(const char *dir)
{
    _cleanup_free_ char *path = wr_path_join(dir, "vmfs.pid");
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (wr_read_file(path, 64, &text, &len) < 0)
        return 0;
    long pid = strtol(text, NULL, 10);
    return pid > 1 && pid <= INT32_MAX ? (pid_t)pid : 0;
}

bool vmm_vmfs_running(const char *dir)
{
    pid_t pid = read_pid_file(dir);
    return pid > 1 && is_supervisor(pid, dir);
}

int vmm_vmfs_attach(const struct vmm_sandbox_spec *spec, pid_t pid, char **ret_guest_dir,
                    struct wr_error **err)
{
    (void)pid; /* the VMM's; the mounts live in the supervisor's namespace */
    *ret_guest_dir = NULL;
    pid_t supervisor = read_pid_file(spec->dir);
    if (supervisor <= 1 || !is_supervisor(supervisor, spec->dir))
        return wr_error_set(err, ESRCH, "the vmfs supervisor of sandbox %s is not running",
                            spec->id);
    _cleanup_free_ char *share = share_dir(spec->dir, VMM_VMFS_TAG_WORKSPACE);
    _cleanup_free_ char *target = wr_path_join(share, VMM_VMFS_ATTACH_DIR);
    _cleanup_free_ char *root_share = share_dir(spec->dir, VMM_VMFS_TAG_ROOT);
    _cleanup_free_ char *root = wr_asprintf("/proc/%d/root%s", (int)supervisor, root_share);
    if (vmm_attach_workspace(spec, supervisor, target, true, false, err) < 0 ||
        vmm_rename_identity(spec, root, err) < 0)
        return -(*err)->status;
    *ret_guest_dir = wr_asprintf("/workspace/%s", VMM_VMFS_ATTACH_DIR);
    return 0;
}

static void remove_files(const char *dir)
{
    for (size_t i = 0; i < SHARES; i++) {
        _cleanup_free_ char *path = wr_asprintf("%s/fs-%s.sock", dir, share_tags[i]);
        (void)unlink(path);
    }
    _cleanup_free_ char *pid_file = wr_path_join(dir, "vmfs.pid");
    (void)unlink(pid_file);
}

static int stop_dir(const char *dir, pid_t pid, struct wr_error **err)
{
    if (pid <= 1 || !is_supervisor(pid, dir))
        pid = read_pid_file(dir);
    if (pid > 1 && is_supervisor(pid, dir)) {
        /* SIGTERM first: the supervisor stops its virtiofsds and waits for them. */
        if (kill(pid, SIGTERM) == 0 && !wr_wait_exit(pid, STOP_TIMEOUT_MS + 1000)) {
            (void)kill(pid, SIGKILL);
            if (!wr_wait_exit(pid, STOP_TIMEOUT_MS))
                return wr_error_set(err, ETIMEDOUT, "the vmfs supervisor %d did not exit",
                                    (int)pid);
        }
    }
    remove_files(dir);
    return 0;
}

int vmm_vmfs_stop(const struct vmm_sandbox_spec *spec, pid_t pid, struct wr_error **err)
{
    int r = stop_dir(spec->dir, pid, err);
    if (r < 0)
        return wr_error_wrap(err, "stopping the filesystems of %s", spec->id);
    return 0;
}

/* ---- start (server side) ------------------------------------------------------------- */

/* One launcher run (vmm/helper.c does the process work). */
struct vmfs_start {
    vmm_vmfs_start_cb cb;
    void *data;
    char *dir;
};

static void launched(void *data, pid_t pid, struct wr_error *err)
{
    struct vmfs_start *start = data;
    /* A launcher killed mid-way may leave a supervisor behind; its pid file finds it. */
    if (err)
        (void)stop_dir(start->dir, 0, NULL);
    start->cb(start->data, pid, err);
    free(start->dir);
    free(start);
}

static int check_spec(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    int r = vmm_jail_spec_validate(spec, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *longest = vmm_vmfs_socket(spec, VMM_VMFS_TAG_WORKSPACE);
    if (strlen(longest) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return wr_error_set(err, ENAMETOOLONG, "socket path %s is too long", longest);
    if (access(VMM_VIRTIOFSD_PATH, X_OK) < 0)
        return wr_error_set_errno(err, errno, "virtiofsd (%s)", VMM_VIRTIOFSD_PATH);
    return 0;
}

int vmm_vmfs_start(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, vmm_vmfs_start_cb cb,
                   void *data, struct wr_error **err)
{
    int r = check_spec(spec, err);
    _cleanup_free_ char *json = NULL;
    if (r >= 0)
        r = vmm_jail_spec_to_json(spec, &json, err);
    if (r < 0)
        return wr_error_wrap(err, "starting the filesystems of %s", spec->id);
    _cleanup_free_ char *spec_path = wr_path_join(spec->dir, "vmfs.json");
    r = wr_write_file_atomic(spec_path, json, strlen(json), 0600);
    if (r < 0)
        return wr_error_set_errno(err, -r, "writing %s", spec_path);
    struct vmfs_start *start = wr_calloc(1, sizeof(*start));
    *start = (struct vmfs_start){.cb = cb, .data = data, .dir = wr_strdup(spec->dir)};
    r = vmm_helper_run(loop, "__vmfs", spec_path, LAUNCH_TIMEOUT_MS, "the vmfs supervisor",
                       launched, start, err);
    if (r < 0) {
        free(start->dir);
        free(start);
    }
    return r;
}
