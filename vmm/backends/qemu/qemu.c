/* The qemu backend: a sandbox is a QEMU VM (KVM, or TCG where /dev/kvm is unusable) that
 * boots the guest kernel with guest-init as /init, takes its root and /workspace over
 * virtiofs from a vmfs supervisor (vmfs.c), talks to the host over a virtio-serial port
 * whose chardev is the unix socket spec->agent_socket, and gives memory back through a
 * virtio balloon driven over QMP. With spec->network, a virtio-net NIC on QEMU's user-mode
 * network (slirp: NAT to the host's network, no tap, no host configuration, nothing
 * listening into the guest); without it, no NIC at all.
 *
 * QEMU runs confined (vmm/backends/confine.h): its own uid, no capabilities, its own
 * namespaces (network included, whatever the mode) and a root holding only its binaries,
 * the boot files and virtiofsd's sockets. It creates no host path: the QMP and agent
 * sockets are bound by the launcher and handed over as fds 3 and 4, the serial log as
 * fd 5 (an fd set, named by its opaque, <dir>/serial.log).
 *
 * start(): vmfs first (QEMU connects to the vhost-user sockets while it creates the
 * devices), then the launcher, which prints QEMU's host pid once QEMU is exec'd (QEMU
 * outlives the server; the next server finds it by pid), then a QMP handshake: when QMP
 * answers, QEMU is up and the guest is booting. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "qmp.h"
#include "vmm/agent.h"
#include "vmm/backends/confine.h"
#include "vmm/backends/jail/cgroup.h"
#include "vmm/backends/vmfs.h"

#define QEMU_BINARY "qemu-system-x86_64"
#define AGENT_PORT_NAME "org.warren.agent"
#define QMP_CONNECT_TIMEOUT_MS 10000
#define QMP_QUIT_TIMEOUT_MS 1000
#define QMP_COMMAND_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 3000
#define LOG_TAIL_BYTES 1500
#define ARGS_MAX 64
/* The fds the launcher hands QEMU (confine.h): listen sockets, then output files. */
#define QMP_FD VMM_CONFINE_FIRST_FD
#define AGENT_FD (VMM_CONFINE_FIRST_FD + 1)
#define SERIAL_FD (VMM_CONFINE_FIRST_FD + 2)

/* ---- available ----------------------------------------------------------------------- */

char *vmm_qemu_binary(void)
{
    const char *path = getenv("PATH");
    _cleanup_free_ char *copy = wr_strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char *candidate = wr_path_join(dir, QEMU_BINARY);
        if (candidate[0] == '/' && access(candidate, X_OK) == 0)
            return candidate;
        free(candidate);
    }
    return NULL;
}

static bool qemu_available(struct wr_error **err)
{
    _cleanup_free_ char *qemu = vmm_qemu_binary();
    if (!qemu) {
        wr_error_set(err, ENOENT, "qemu: %s is not installed", QEMU_BINARY);
        return false;
    }
    if (access(VMM_VIRTIOFSD_PATH, X_OK) < 0) {
        wr_error_set(err, ENOENT, "qemu: virtiofsd (%s) is not installed", VMM_VIRTIOFSD_PATH);
        return false;
    }
    if (geteuid() != 0) {
        wr_error_set(err, EPERM, "qemu: must run as root (virtiofsd and the share mounts)");
        return false;
    }
    return true;
}

/* ---- shared helpers ------------------------------------------------------------------ */

static char *dir_file(const struct vmm_sandbox_spec *spec, const char *name)
{
    return wr_path_join(spec->dir, name);
}

/* "context" followed by what QEMU said (its stderr, in the sandbox log) and the guest's
 * console: the user sees why a boot failed without opening files. */
static struct wr_error *boot_error(const char *dir, const char *log_path, int status,
                                   const char *context)
{
    _cleanup_free_ char *serial_path = wr_path_join(dir, "serial.log");
    _cleanup_free_ char *log = wr_file_tail(log_path, LOG_TAIL_BYTES);
    _cleanup_free_ char *serial = wr_file_tail(serial_path, LOG_TAIL_BYTES);
    struct wr_error *err = NULL;
    wr_error_set(&err, status, "%s\n--- sandbox log (%s) ---\n%s\n--- serial console (%s) ---\n%s",
                 context, log_path, log ? log : "(empty)", serial_path,
                 serial ? serial : "(empty)");
    return err;
}

/* QEMU's argv as qemu_start sets it: the serial log's fd set names spec->dir. */
static bool is_our_qemu(pid_t pid, const char *dir)
{
    _cleanup_free_ char *path = wr_asprintf("/proc/%d/cmdline", (int)pid);
    _cleanup_free_ char *text = NULL;
    _cleanup_free_ char *needle = wr_asprintf("opaque=%s/serial.log", dir);
    size_t len;
    if (wr_read_file(path, 65536, &text, &len) < 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (text[i] == 0)
            text[i] = '\n';
    return strstr(text, QEMU_BINARY) && strstr(text, needle);
}

/* ---- the command line ---------------------------------------------------------------- */

struct argv_builder {
    char *v[ARGS_MAX + 1];
    size_t n;
};

static void add_arg(struct argv_builder *b, char *owned)
{
    /* ARGS_MAX is sized for the fixed command line below; overflowing it is a bug. */
    if (b->n >= ARGS_MAX)
        abort();
    b->v[b->n++] = owned;
}

static void add_args(struct argv_builder *b, const char *option, char *owned_value)
{
    add_arg(b, wr_strdup(option));
    add_arg(b, owned_value);
}

static void add_machine(struct argv_builder *b, const struct vmm_sandbox_spec *spec, bool kvm)
{
    unsigned long long mib = (unsigned long long)(spec->memory_bytes >> 20);
    add_args(b, "-name", wr_asprintf("warren-%s", spec->id));
    add_args(b, "-machine", wr_strdup("q35,memory-backend=mem"));
    /* TCG: a 32 MiB translation cache (QEMU allows up to 1 GiB and keeps what it touched
     * resident), so that an idle VM costs the host little beyond its own memory. */
    add_args(b, "-accel", wr_strdup(kvm ? "kvm" : "tcg,thread=multi,tb-size=32"));
    add_args(b, "-cpu", wr_strdup(kvm ? "host" : "max"));
    add_args(b, "-smp", wr_asprintf("%u", spec->cpus));
    add_args(b, "-m", wr_asprintf("%lluM", mib));
    /* virtiofs maps guest memory into virtiofsd: it must be a shared memfd. */
    add_args(b, "-object", wr_asprintf("memory-backend-memfd,id=mem,size=%lluM,share=on", mib));
    add_arg(b, wr_strdup("-nodefaults"));
    add_arg(b, wr_strdup("-no-user-config"));
    add_args(b, "-display", wr_strdup("none"));
    add_arg(b, wr_strdup("-no-reboot"));
    /* QEMU's own seccomp filter: no exec, no privilege changes, no obsolete syscalls. */
    add_args(b, "-sandbox",
             wr_strdup("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
}

static void add_boot(struct argv_builder *b, const struct vmm_sandbox_spec *spec)
{
    add_args(b, "-kernel", wr_strdup(spec->kernel_path));
    add_args(b, "-initrd", wr_strdup(spec->initrd_path));
    /* warren.net=user: guest-init gives the NIC slirp's fixed addressing (net.c). */
    add_args(b, "-append",
             wr_asprintf("console=ttyS0 panic=-1 quiet warren.serial=%s warren.hostname=%s "
                         "warren.root=%s warren.workspace=%s warren.net=user",
                         AGENT_PORT_NAME, spec->hostname, VMM_VMFS_TAG_ROOT,
                         VMM_VMFS_TAG_WORKSPACE));
    add_args(b, "-add-fd", wr_asprintf("fd=%d,set=1,opaque=%s/serial.log", SERIAL_FD, spec->dir));
    add_args(b, "-chardev", wr_strdup("file,id=serial,path=/dev/fdset/1"));
    add_args(b, "-serial", wr_strdup("chardev:serial"));
}

static void add_devices(struct argv_builder *b, const struct vmm_sandbox_spec *spec)
{
    static const char *const tags[] = {VMM_VMFS_TAG_ROOT, VMM_VMFS_TAG_WORKSPACE};
    for (size_t i = 0; i < WR_ARRAY_SIZE(tags); i++) {
        _cleanup_free_ char *sock = vmm_vmfs_socket(spec, tags[i]);
        add_args(b, "-chardev", wr_asprintf("socket,id=fs-%s,path=%s", tags[i], sock));
        add_args(b, "-device",
                 wr_asprintf("vhost-user-fs-pci,chardev=fs-%s,tag=%s,queue-size=1024", tags[i],
                             tags[i]));
    }
    add_args(b, "-device", wr_strdup("virtio-serial-pci,id=serial0"));
    add_args(b, "-chardev", wr_asprintf("socket,id=agent,fd=%d,server=on,wait=off", AGENT_FD));
    add_args(b, "-device",
             wr_asprintf("virtserialport,bus=serial0.0,chardev=agent,name=%s", AGENT_PORT_NAME));
    add_args(b, "-device", wr_strdup("virtio-balloon-pci,id=balloon0,free-page-reporting=on"));
    {
        /* Slirp's defaults: guest 10.0.2.15/24, gateway (the 127.0.0.1 of QEMU's network
         * namespace, where only an allow-list's egress proxy listens) 10.0.2.2, DNS
         * forwarder 10.0.2.3. Every VM has the NIC, whatever its network mode: the mode is
         * what QEMU's namespace reaches (vmm/network.c changes it at run time). romfile=
         * skips the PXE option ROM. status=off: without a link status feature virtio_net registers
         * the NIC with its carrier on; with it, the carrier comes on while the NIC is still down
         * and the kernel's linkwatch shows operstate "up" only up to a second later. */
        add_args(b, "-netdev", wr_strdup("user,id=net0"));
        add_args(b, "-device", wr_strdup("virtio-net-pci,netdev=net0,romfile=,status=off"));
    }
    add_args(b, "-chardev", wr_asprintf("socket,id=qmp,fd=%d,server=on,wait=off", QMP_FD));
    add_args(b, "-mon", wr_strdup("chardev=qmp,mode=control"));
}

/* The whole command line; argv[0] is the absolute path of QEMU. NULL-terminated. The
 * launcher (confine.h) starts QEMU in a network namespace of its own, so that its user
 * network (and the guest's 10.0.2.2) reaches nothing of the host; with NAT, slirp4netns
 * joins that namespace to the host's behind the sandbox's firewall rules
 * (vmm/backends/net.h). */
static char **qemu_argv(const struct vmm_sandbox_spec *spec, const char *qemu, bool kvm)
{
    struct argv_builder b = {.n = 0};
    add_arg(&b, wr_strdup(qemu));
    add_machine(&b, spec, kvm);
    add_boot(&b, spec);
    add_devices(&b, spec);
    char **argv = wr_calloc(b.n + 1, sizeof(char *));
    memcpy(argv, b.v, b.n * sizeof(char *));
    return argv;
}

/* ---- start --------------------------------------------------------------------------- */

/* One start. Freed when it is done. */
struct qemu_start {
    uv_loop_t *loop;
    vmm_backend_start_cb cb;
    void *data;
    struct vmm_sandbox_spec spec; /* the strings below, plus what the launch needs */
    char *id, *dir, *log_path, *agent_socket, *kernel_path, *initrd_path;
    char **argv;
    struct qmp *qmp; /* the QMP handshake in flight */
    pid_t qemu_pid;
};

static void start_free(struct qemu_start *st)
{
    free(st->id);
    free(st->dir);
    free(st->log_path);
    free(st->agent_socket);
    free(st->kernel_path);
    free(st->initrd_path);
    wr_strv_free(st->argv);
    free(st);
}

static void stop_dir(const char *id, const char *dir, pid_t qemu_pid);

/* Reports the outcome once. On failure nothing of the sandbox is left running. */
static void start_done(struct qemu_start *st, struct wr_error *err)
{
    if (st->qmp) {
        qmp_close(st->qmp); /* cancels the handshake: its callback will not run */
        st->qmp = NULL;
    }
    if (err)
        stop_dir(st->id, st->dir, st->qemu_pid);
    st->cb(st->data, err ? 0 : st->qemu_pid, err);
    start_free(st);
}

static void on_qmp_ready(void *data, struct qmp *qmp, struct wr_error *err)
{
    struct qemu_start *st = data;
    st->qmp = NULL;
    if (err) {
        struct wr_error *e = boot_error(st->dir, st->log_path, err->status, err->msg);
        wr_error_free(err);
        start_done(st, e);
        return;
    }
    /* QMP answering means QEMU built every device (the vhost-user ones connected to
     * virtiofsd) and runs the guest. The guest agent comes later; the core retries. */
    qmp_close(qmp);
    start_done(st, NULL);
}

static void on_qemu_launched(void *data, pid_t pid, struct wr_error *err)
{
    struct qemu_start *st = data;
    st->qemu_pid = pid;
    if (err) {
        struct wr_error *e = boot_error(st->dir, st->log_path, err->status, err->msg);
        wr_error_free(err);
        start_done(st, e);
        return;
    }
    /* The QMP socket has listened since before QEMU ran: a QEMU that dies closes it and
     * the handshake fails at once. */
    _cleanup_free_ char *qmp_path = wr_path_join(st->dir, "qmp.sock");
    if (qmp_connect(st->loop, qmp_path, QMP_CONNECT_TIMEOUT_MS, on_qmp_ready, st, &st->qmp, &err) <
        0)
        start_done(st, err);
}

/* QEMU through the confining launcher (confine.h): what it is handed and shown. */
static int launch_qemu(struct qemu_start *st, struct wr_error **err)
{
    _cleanup_free_ char *qmp_path = wr_path_join(st->dir, "qmp.sock");
    _cleanup_free_ char *serial_path = wr_path_join(st->dir, "serial.log");
    _cleanup_free_ char *fs_root = vmm_vmfs_socket(&st->spec, VMM_VMFS_TAG_ROOT);
    _cleanup_free_ char *fs_workspace = vmm_vmfs_socket(&st->spec, VMM_VMFS_TAG_WORKSPACE);
    const char *files[] = {st->kernel_path, st->initrd_path, NULL};
    const char *sockets[] = {fs_root, fs_workspace, NULL};
    const char *listen[] = {qmp_path, st->agent_socket, NULL}; /* QMP_FD, AGENT_FD */
    const char *outputs[] = {serial_path, NULL};               /* SERIAL_FD */
    struct vmm_confine_spec confine = {
        .id = st->id,
        .dir = st->dir,
        .log_path = st->log_path,
        .memory_bytes = st->spec.memory_bytes,
        .cpus = st->spec.cpus,
        .network = st->spec.network,
        .files = files,
        .sockets = sockets,
        .listen = listen,
        .outputs = outputs,
        .argv = (const char *const *)st->argv,
    };
    return vmm_confine_start(st->loop, &confine, on_qemu_launched, st, err);
}

static void on_vmfs_ready(void *data, pid_t pid, struct wr_error *err)
{
    struct qemu_start *st = data;
    (void)pid;
    if (err) {
        wr_error_wrap(&err, "starting virtiofsd");
        start_done(st, err);
        return;
    }
    if (launch_qemu(st, &err) < 0)
        start_done(st, err);
}

static int check_spec(const struct vmm_sandbox_spec *spec, char **ret_qemu, struct wr_error **err)
{
    if (!spec->kernel_path || !spec->initrd_path)
        return wr_error_set(err, EINVAL, "qemu: the spec has no guest kernel or initramfs");
    if (access(spec->kernel_path, R_OK) < 0 || access(spec->initrd_path, R_OK) < 0)
        return wr_error_set_errno(err, errno, "qemu: guest boot files %s, %s", spec->kernel_path,
                                  spec->initrd_path);
    if (strpbrk(spec->dir, ",") || strpbrk(spec->agent_socket, ","))
        return wr_error_set(err, EINVAL, "qemu: paths with ',' cannot be QEMU options");
    *ret_qemu = vmm_qemu_binary();
    if (!*ret_qemu)
        return wr_error_set(err, ENOENT, "qemu: %s is not installed", QEMU_BINARY);
    return 0;
}

static int qemu_start(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, vmm_backend_start_cb cb,
                      void *data, struct wr_error **err)
{
    _cleanup_free_ char *qemu = NULL;
    int r = check_spec(spec, &qemu, err);
    if (r < 0)
        return r;
    struct qemu_start *st = wr_calloc(1, sizeof(*st));
    *st = (struct qemu_start){.loop = loop, .cb = cb, .data = data};
    st->id = wr_strdup(spec->id);
    st->dir = wr_strdup(spec->dir);
    st->log_path = wr_strdup(spec->log_path);
    st->agent_socket = wr_strdup(spec->agent_socket);
    st->kernel_path = wr_strdup(spec->kernel_path);
    st->initrd_path = wr_strdup(spec->initrd_path);
    st->spec = (struct vmm_sandbox_spec){.id = st->id,
                                         .dir = st->dir,
                                         .memory_bytes = spec->memory_bytes,
                                         .cpus = spec->cpus,
                                         .network = spec->network};
    st->argv = qemu_argv(spec, qemu, vmm_kvm_usable(NULL));
    r = vmm_vmfs_start(loop, spec, on_vmfs_ready, st, err);
    if (r < 0)
        start_free(st);
    return r;
}

/* ---- stop ---------------------------------------------------------------------------- */

static void kill_qemu(const char *dir, pid_t pid)
{
    if (pid <= 1 || !is_our_qemu(pid, dir))
        return;
    _cleanup_free_ char *qmp_path = wr_path_join(dir, "qmp.sock");
    /* quit through QMP ends QEMU cleanly; a wedged or busy monitor gets signals. */
    if (qmp_execute_sync(qmp_path, "quit", QMP_QUIT_TIMEOUT_MS, NULL, NULL) == 0 &&
        wr_wait_exit(pid, STOP_TIMEOUT_MS))
        return;
    if (kill(pid, SIGTERM) == 0 && wr_wait_exit(pid, STOP_TIMEOUT_MS))
        return;
    if (kill(pid, SIGKILL) == 0)
        (void)wr_wait_exit(pid, STOP_TIMEOUT_MS);
}

/* After QEMU: the supervisor (it stops its virtiofsds), then the sandbox's cgroup, which
 * kills whatever of it is left (slirp4netns, a wedged virtiofsd), then the sockets. */
static int stop_rest(const char *id, const char *dir, struct wr_error **err)
{
    struct vmm_sandbox_spec spec = {.id = id, .dir = dir};
    int r = vmm_vmfs_stop(&spec, 0, err);
    _cleanup_error_ struct wr_error *cgroup_err = NULL;
    if (vmm_cgroup_destroy(id, &cgroup_err) < 0 && r >= 0) {
        wr_error_move(err, &cgroup_err);
        r = -(*err)->status;
    }
    static const char *const sockets[] = {"qmp.sock", "agent.sock"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(sockets); i++) {
        _cleanup_free_ char *path = wr_path_join(dir, sockets[i]);
        (void)unlink(path);
    }
    return r;
}

static void stop_dir(const char *id, const char *dir, pid_t qemu_pid)
{
    kill_qemu(dir, qemu_pid);
    (void)stop_rest(id, dir, NULL);
}

static int qemu_stop(const struct vmm_sandbox_spec *spec, pid_t pid, struct wr_error **err)
{
    kill_qemu(spec->dir, pid);
    if (pid > 1 && is_our_qemu(pid, spec->dir))
        return wr_error_set(err, ETIMEDOUT, "stopping VM %s: QEMU %d did not exit", spec->id,
                            (int)pid);
    int r = stop_rest(spec->id, spec->dir, err);
    if (spec->agent_socket)
        (void)unlink(spec->agent_socket);
    if (r < 0)
        return wr_error_wrap(err, "stopping VM %s", spec->id);
    return 0;
}

/* ---- memory -------------------------------------------------------------------------- */

/* QEMU's resident memory, guest RAM included: the memfd's pages count as shared Rss. */
static int qemu_memory_usage(const struct vmm_sandbox_spec *spec, pid_t pid, uint64_t *ret_bytes)
{
    if (pid <= 1 || !is_our_qemu(pid, spec->dir))
        return -ESRCH;
    return wr_process_rss(pid, ret_bytes);
}

/* ---- one QMP command: balloon, stop, cont ---------------------------------------------- */

struct qmp_op {
    void (*cb)(void *data, struct wr_error *err);
    void *data;
    const char *command;
    cJSON *args; /* owned until sent */
    struct qmp *qmp;
};

static void qmp_op_done(struct qmp_op *op, struct wr_error *err)
{
    qmp_close(op->qmp);
    cJSON_Delete(op->args);
    op->cb(op->data, err);
    free(op);
}

static void on_command_reply(void *data, const cJSON *ret, struct wr_error *err)
{
    (void)ret;
    qmp_op_done(data, err);
}

static void on_command_qmp(void *data, struct qmp *qmp, struct wr_error *err)
{
    struct qmp_op *op = data;
    op->qmp = qmp;
    if (err) {
        qmp_op_done(op, err);
        return;
    }
    if (qmp_execute(qmp, op->command, TAKE_PTR(op->args), on_command_reply, op, &err) < 0)
        qmp_op_done(op, err);
}

/* Connects to the VM's QMP socket, runs command (args taken over, may be NULL), closes. */
static int qmp_command(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                       const char *command, cJSON *args,
                       void (*cb)(void *data, struct wr_error *err), void *data,
                       struct wr_error **err)
{
    if (pid <= 1 || !is_our_qemu(pid, spec->dir)) {
        cJSON_Delete(args);
        return wr_error_set(err, ESRCH, "VM %s is not running", spec->id);
    }
    struct qmp_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct qmp_op){.cb = cb, .data = data, .command = command, .args = args};
    _cleanup_free_ char *qmp_path = dir_file(spec, "qmp.sock");
    int r = qmp_connect(loop, qmp_path, QMP_COMMAND_TIMEOUT_MS, on_command_qmp, op, NULL, err);
    if (r < 0) {
        cJSON_Delete(op->args);
        free(op);
    }
    return r;
}

/* QMP's balloon value is the RAM the guest keeps: memory minus the balloon. */
static int qemu_balloon_set(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                            uint64_t bytes, void (*cb)(void *data, struct wr_error *err),
                            void *data, struct wr_error **err)
{
    if (bytes >= spec->memory_bytes)
        return wr_error_set(err, EINVAL, "balloon of %llu bytes leaves no guest memory",
                            (unsigned long long)bytes);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddNumberToObject(args, "value", (double)(spec->memory_bytes - bytes));
    return qmp_command(loop, spec, pid, "balloon", args, cb, data, err);
}

static int qemu_pause(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                      void (*cb)(void *data, struct wr_error *err), void *data,
                      struct wr_error **err)
{
    return qmp_command(loop, spec, pid, "stop", NULL, cb, data, err);
}

static int qemu_resume(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                       void (*cb)(void *data, struct wr_error *err), void *data,
                       struct wr_error **err)
{
    return qmp_command(loop, spec, pid, "cont", NULL, cb, data, err);
}

/* ---- agent --------------------------------------------------------------------------- */

struct agent_op {
    void (*cb)(void *data, struct agent_conn *conn, struct wr_error *err);
    void *data;
    char *dir, *log_path;
};

static void on_agent(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct agent_op *op = data;
    if (err) {
        /* The usual reason is a guest that never booted: show its console. */
        struct wr_error *e = boot_error(op->dir, op->log_path, err->status, err->msg);
        wr_error_free(err);
        err = e;
    }
    op->cb(op->data, conn, err);
    free(op->dir);
    free(op->log_path);
    free(op);
}

/* agent_connect_unix on QEMU's chardev socket, with the boot logs added to a failure. */
static int qemu_agent_connect(uv_loop_t *loop, const struct vmm_sandbox_spec *spec,
                              uint32_t timeout_ms,
                              void (*cb)(void *data, struct agent_conn *conn, struct wr_error *err),
                              void *data, struct wr_error **err)
{
    struct agent_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct agent_op){.cb = cb, .data = data};
    op->dir = wr_strdup(spec->dir);
    op->log_path = wr_strdup(spec->log_path);
    int r = agent_connect_unix(loop, spec->agent_socket, timeout_ms, on_agent, op, err);
    if (r < 0) {
        free(op->dir);
        free(op->log_path);
        free(op);
    }
    return r;
}

/* A forward on QEMU's user network, from the 127.0.0.1 of QEMU's own network namespace:
 * port 40000 + guest_port % 20000 there (below the ephemeral range; only warren connects
 * in that namespace). Adding it again is harmless: QEMU refuses the duplicate, the first
 * one serves. */
static int qemu_port_forward(const struct vmm_sandbox_spec *spec, pid_t pid, uint16_t guest_port,
                             uint16_t *ret_port, struct wr_error **err)
{
    (void)pid;
    uint16_t host_port = (uint16_t)(40000 + guest_port % 20000);
    _cleanup_free_ char *qmp_path = wr_path_join(spec->dir, "qmp.sock");
    _cleanup_free_ char *line =
        wr_asprintf("hostfwd_add net0 tcp:127.0.0.1:%u-:%u", host_port, guest_port);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "command-line", line);
    _cleanup_free_ char *out = NULL;
    int r = qmp_execute_sync_args(qmp_path, "human-monitor-command", args, QMP_CONNECT_TIMEOUT_MS,
                                  &out, err);
    cJSON_Delete(args);
    if (r < 0)
        return r;
    /* The monitor answers text: empty when added, an error sentence otherwise. */
    if (out && strlen(out) > 2 && !strstr(out, "already") && !strstr(out, "Could not set up"))
        return wr_error_set(err, EIO, "forwarding port %u of the VM: %s", guest_port, out);
    *ret_port = host_port;
    return 0;
}

const struct vmm_backend_ops vmm_backend_qemu = {
    .name = "qemu",
    .vm = true,
    .available = qemu_available,
    .start = qemu_start,
    .stop = qemu_stop,
    .memory_usage = qemu_memory_usage,
    .agent_connect = qemu_agent_connect,
    .balloon_set = qemu_balloon_set,
    .pause = qemu_pause,
    .resume = qemu_resume,
    .attach = vmm_vmfs_attach,
    .port_forward = qemu_port_forward,
};
