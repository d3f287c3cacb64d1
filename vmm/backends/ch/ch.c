/* The cloud-hypervisor backend: a sandbox is a Cloud Hypervisor microVM booting the guest
 * kernel with guest-init as PID 1, its root and /workspace shared over virtiofs
 * (vmm/backends/vmfs.c), the agent reached over hybrid vsock, memory handed back by the balloon.
 *
 * start() runs a chain of steps on the loop, each started by the previous one's callback:
 * virtiofsd (vmm_vmfs_start) -> the confined launch (vmm/backends/confine.h) of
 * `cloud-hypervisor --api-socket fd=3`, fd 3 being <dir>/api.sock bound by the launcher ->
 * vmm.ping every 10 ms until it answers -> vm.create -> vm.boot -> vm.info every 10 ms
 * until "Running" -> cb(pid of the VMM). The VMM outlives the server; the next server finds
 * it again by pid (a member of the sandbox's cgroup) and api.sock.
 *
 * CH runs as the sandbox's VMM uid, without capabilities, in its own namespaces, in a root
 * holding its binary, the boot files, /dev/kvm (its own), virtiofsd's sockets and
 * <dir>/vmm, the one directory it writes (owned by its uid): vsock.sock (hybrid vsock) and
 * serial.log (the guest's ttyS0). In the sandbox directory: api.sock (REST API),
 * fs-root.sock and fs-workspace.sock (virtiofsd). */
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "ch-api.h"
#include "vmm/agent.h"
#include "vmm/backends/confine.h"
#include "vmm/backends/jail/cgroup.h"
#include "vmm/backends/vmfs.h"

#define PING_INTERVAL_MS 10
#define PING_LIMIT_MS 10000 /* Kata's figure: a VMM not answering by then is not coming */
#define PING_TIMEOUT_MS 1000
#define CALL_TIMEOUT_MS 10000
#define BOOT_TIMEOUT_MS 30000
#define INFO_INTERVAL_MS 10
#define RUNNING_LIMIT_MS 10000
#define STOP_API_TIMEOUT_MS 1000
#define STOP_WAIT_MS 2000
#define LOG_TAIL_BYTES 1536
/* vmm/backends/vmfs.c runs Debian's C virtiofsd from here. */

/* ---- available ------------------------------------------------------------------------- */

static char *find_in_path(const char *name)
{
    const char *path = getenv("PATH");
    _cleanup_free_ char *copy = wr_strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char *candidate = wr_path_join(dir, name);
        if (access(candidate, X_OK) == 0)
            return candidate;
        free(candidate);
    }
    return NULL;
}

char *vmm_ch_binary(struct wr_error **err)
{
    const char *env = getenv("WARREN_CLOUD_HYPERVISOR");
    if (env && *env) {
        if (access(env, X_OK) == 0)
            return wr_strdup(env);
        wr_error_set_errno(err, errno, "cloud-hypervisor: $WARREN_CLOUD_HYPERVISOR (%s)", env);
        return NULL;
    }
    char *found = find_in_path("cloud-hypervisor");
    if (!found)
        wr_error_set(err, ENOENT,
                     "cloud-hypervisor: no cloud-hypervisor binary in PATH "
                     "(or set $WARREN_CLOUD_HYPERVISOR)");
    return found;
}

static bool ch_available(struct wr_error **err)
{
    if (!vmm_kvm_usable(err))
        return false;
    _cleanup_free_ char *binary = vmm_ch_binary(err);
    if (!binary)
        return false;
    if (access(VMM_VIRTIOFSD_PATH, X_OK) < 0) {
        wr_error_set_errno(err, errno, "cloud-hypervisor: virtiofsd (%s)", VMM_VIRTIOFSD_PATH);
        return false;
    }
    return true;
}

/* ---- shared helpers ---------------------------------------------------------------------- */

/* Appends the tail of a log to an error's message: why a boot failed is usually there. */
static void append_log(struct wr_error *err, const char *what, const char *path)
{
    _cleanup_free_ char *tail = wr_file_tail(path, LOG_TAIL_BYTES);
    if (!err || !tail)
        return;
    char *msg = wr_asprintf("%s\n--- %s (%s) ---\n%s", err->msg, what, path, tail);
    free(err->msg);
    err->msg = msg;
}

/* True when pid is this sandbox's VMM: a member of its cgroup started as the launcher
 * starts CH. A stale pid (a restarted host, a reused pid) is never in the cgroup. */
static bool is_our_vmm(pid_t pid, const char *id)
{
    if (pid <= 1 || !vmm_cgroup_contains(id, pid))
        return false;
    _cleanup_free_ char *path = wr_asprintf("/proc/%d/cmdline", (int)pid);
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (wr_read_file(path, 65536, &text, &len) < 0)
        return false;
    const char *arg1 = memchr(text, 0, len);
    return arg1 && arg1 + 1 < text + len && strcmp(arg1 + 1, "--api-socket") == 0;
}

/* ---- start ----------------------------------------------------------------------------- */

enum start_step { STEP_VMFS, STEP_LAUNCH, STEP_PING, STEP_CREATE, STEP_BOOT, STEP_RUNNING };

struct ch_start;

/* One start() run. Freed when its timer is closed. */
struct ch_start {
    uv_loop_t *loop;
    struct vmm_sandbox_spec spec; /* the strings below and the sizes: what the launch needs */
    char *id, *dir, *log_path, *api_socket, *vsock_socket, *serial_log, *binary, *create_body;
    char *kernel_path, *initrd_path;
    struct ch_api *api;
    pid_t vmm_pid;
    uv_timer_t timer; /* retries of ping and vm.info */
    enum start_step step;
    uint64_t step_deadline;
    vmm_backend_start_cb cb;
    void *data;
    bool reported;
};

static void on_start_timer_closed(uv_handle_t *handle)
{
    struct ch_start *st = handle->data;
    free(st->id);
    free(st->dir);
    free(st->log_path);
    free(st->api_socket);
    free(st->vsock_socket);
    free(st->serial_log);
    free(st->binary);
    free(st->create_body);
    free(st->kernel_path);
    free(st->initrd_path);
    free(st);
}

static void start_release(struct ch_start *st)
{
    ch_api_close(TAKE_PTR(st->api));
    uv_close((uv_handle_t *)&st->timer, on_start_timer_closed);
}

static void start_succeeded(struct ch_start *st)
{
    st->reported = true;
    log_info("cloud-hypervisor: sandbox %s running (VMM pid %d)", st->id, (int)st->vmm_pid);
    st->cb(st->data, st->vmm_pid, NULL);
    start_release(st);
}

/* Reports err (taking it) after tearing down whatever was started: the VMM, virtiofsd,
 * the sockets. The messages of CH and the tails of the logs go with it. */
static void start_failed(struct ch_start *st, struct wr_error *err)
{
    if (st->reported) {
        wr_error_free(err);
        return;
    }
    st->reported = true;
    if (is_our_vmm(st->vmm_pid, st->id) && kill(st->vmm_pid, SIGKILL) == 0)
        (void)wr_wait_exit(st->vmm_pid, STOP_WAIT_MS);
    if (st->step > STEP_VMFS)
        (void)vmm_vmfs_stop(&st->spec, 0, NULL);
    (void)vmm_cgroup_destroy(st->id, NULL);
    (void)unlink(st->api_socket);
    (void)unlink(st->vsock_socket);
    append_log(err, "guest serial console", st->serial_log);
    append_log(err, "sandbox log", st->log_path);
    wr_error_wrap(&err, "starting Cloud Hypervisor VM %s", st->id);
    st->cb(st->data, 0, err);
    start_release(st);
}

/* CH through the confining launcher: the API socket handed over as fd 3, the boot files
 * and virtiofsd's sockets shown read-only / connectable, <dir>/vmm its to write. */
static int launch_vmm(struct ch_start *st, vmm_helper_cb cb, struct wr_error **err)
{
    _cleanup_free_ char *vmm_dir = wr_path_join(st->dir, CH_VMM_DIR);
    _cleanup_free_ char *fs_root = vmm_vmfs_socket(&st->spec, VMM_VMFS_TAG_ROOT);
    _cleanup_free_ char *fs_workspace = vmm_vmfs_socket(&st->spec, VMM_VMFS_TAG_WORKSPACE);
    _cleanup_free_ char *api_arg = wr_asprintf("fd=%d", VMM_CONFINE_FIRST_FD);
    const char *files[] = {st->kernel_path, st->initrd_path, NULL};
    const char *sockets[] = {fs_root, fs_workspace, NULL};
    const char *dirs[] = {vmm_dir, NULL};
    const char *listen[] = {st->api_socket, NULL};
    const char *argv[] = {st->binary, "--api-socket", api_arg, NULL};
    struct vmm_confine_spec confine = {
        .id = st->id,
        .dir = st->dir,
        .log_path = st->log_path ? st->log_path : "/dev/null",
        .memory_bytes = st->spec.memory_bytes,
        .cpus = st->spec.cpus,
        .files = files,
        .sockets = sockets,
        .dirs = dirs,
        .listen = listen,
        .argv = argv,
    };
    return vmm_confine_start(st->loop, &confine, cb, st, err);
}

/* True (and err dropped) when start has already reported: the calls cancelled by
 * start_release come back here with ECANCELED and must not go on. */
static bool start_over(struct ch_start *st, struct wr_error *err)
{
    if (!st->reported)
        return false;
    wr_error_free(err);
    return true;
}

static void call_or_fail(struct ch_start *st, enum ch_api_op op, const char *body,
                         uint32_t timeout_ms, ch_api_cb cb)
{
    struct wr_error *err = NULL;
    if (ch_api_call(st->api, op, body, timeout_ms, cb, st, &err) < 0)
        start_failed(st, err);
}

static void begin_step(struct ch_start *st, enum start_step step, uint32_t limit_ms)
{
    st->step = step;
    st->step_deadline = uv_now(st->loop) + limit_ms;
}

static void on_info(void *data, int status, const char *body, size_t len, struct wr_error *err);
static void on_ping(void *data, int status, const char *body, size_t len, struct wr_error *err);

static void on_start_timer(uv_timer_t *timer)
{
    struct ch_start *st = timer->data;
    if (st->step == STEP_PING)
        call_or_fail(st, CH_VMM_PING, NULL, PING_TIMEOUT_MS, on_ping);
    else
        call_or_fail(st, CH_VM_INFO, NULL, CALL_TIMEOUT_MS, on_info);
}

/* Retries the step's call after `interval_ms` while its time limit lasts; past it, err
 * (taken) is what start reports. */
static void retry_or_fail(struct ch_start *st, uint32_t interval_ms, struct wr_error *err)
{
    if (uv_now(st->loop) >= st->step_deadline) {
        start_failed(st, err);
        return;
    }
    wr_error_free(err);
    uv_timer_start(&st->timer, on_start_timer, interval_ms, 0);
}

static void on_info(void *data, int status, const char *body, size_t len, struct wr_error *err)
{
    struct ch_start *st = data;
    if (start_over(st, err))
        return;
    struct ch_vm_info info;
    if (err || ch_api_parse_vm_info(body, len, &info, &err) < 0) {
        start_failed(st, err);
        return;
    }
    if (strcmp(info.state, "Running") == 0) {
        start_succeeded(st);
        return;
    }
    wr_error_set(&err, ETIMEDOUT, "the VM is still %s after %d ms", info.state, RUNNING_LIMIT_MS);
    retry_or_fail(st, INFO_INTERVAL_MS, err);
}

static void on_boot(void *data, int status, const char *body, size_t len, struct wr_error *err)
{
    struct ch_start *st = data;
    if (start_over(st, err))
        return;
    if (err) {
        start_failed(st, err);
        return;
    }
    begin_step(st, STEP_RUNNING, RUNNING_LIMIT_MS);
    call_or_fail(st, CH_VM_INFO, NULL, CALL_TIMEOUT_MS, on_info);
}

static void on_create(void *data, int status, const char *body, size_t len, struct wr_error *err)
{
    struct ch_start *st = data;
    if (start_over(st, err))
        return;
    if (err) {
        start_failed(st, err);
        return;
    }
    /* vm.create only stores the config; vm.boot validates it and connects to virtiofsd,
     * so configuration errors surface here. */
    begin_step(st, STEP_BOOT, BOOT_TIMEOUT_MS);
    call_or_fail(st, CH_VM_BOOT, NULL, BOOT_TIMEOUT_MS, on_boot);
}

static void on_ping(void *data, int status, const char *body, size_t len, struct wr_error *err)
{
    struct ch_start *st = data;
    if (start_over(st, err))
        return;
    if (err) {
        /* Not listening yet (ENOENT, ECONNREFUSED): the VMM is still starting. */
        wr_error_wrap(&err, "the API did not answer within %d ms", PING_LIMIT_MS);
        retry_or_fail(st, PING_INTERVAL_MS, err);
        return;
    }
    begin_step(st, STEP_CREATE, CALL_TIMEOUT_MS);
    call_or_fail(st, CH_VM_CREATE, st->create_body, CALL_TIMEOUT_MS, on_create);
}

static void on_vmm_launched(void *data, pid_t pid, struct wr_error *err)
{
    struct ch_start *st = data;
    if (err) {
        start_failed(st, err);
        return;
    }
    st->vmm_pid = pid;
    begin_step(st, STEP_PING, PING_LIMIT_MS);
    st->api = ch_api_new(st->loop, st->api_socket);
    call_or_fail(st, CH_VMM_PING, NULL, PING_TIMEOUT_MS, on_ping);
}

static void on_vmfs_started(void *data, pid_t pid, struct wr_error *err)
{
    struct ch_start *st = data;
    if (err) {
        start_failed(st, err);
        return;
    }
    begin_step(st, STEP_LAUNCH, PING_LIMIT_MS);
    if (launch_vmm(st, on_vmm_launched, &err) < 0)
        start_failed(st, err);
}

static struct ch_start *start_new(uv_loop_t *loop, const struct vmm_sandbox_spec *spec,
                                  vmm_backend_start_cb cb, void *data)
{
    struct ch_start *st = wr_calloc(1, sizeof(*st));
    st->loop = loop;
    st->id = wr_strdup(spec->id);
    st->dir = wr_strdup(spec->dir);
    st->kernel_path = wr_strdup(spec->kernel_path);
    st->initrd_path = wr_strdup(spec->initrd_path);
    st->spec = (struct vmm_sandbox_spec){.id = st->id,
                                         .dir = st->dir,
                                         .memory_bytes = spec->memory_bytes,
                                         .cpus = spec->cpus};
    st->log_path = spec->log_path ? wr_strdup(spec->log_path) : NULL;
    st->api_socket = ch_api_path(spec, "api.sock");
    st->vsock_socket = ch_api_vmm_path(spec, "vsock.sock");
    st->serial_log = ch_api_vmm_path(spec, "serial.log");
    st->cb = cb;
    st->data = data;
    uv_timer_init(loop, &st->timer);
    st->timer.data = st;
    return st;
}

static int start_check(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    if (spec->network)
        return wr_error_set(err, ENOTSUP,
                            "cloud-hypervisor: network access is not supported "
                            "yet (no tap device is set up)");
    _cleanup_free_ char *vsock = ch_api_vmm_path(spec, "vsock.sock");
    if (strlen(vsock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return wr_error_set(err, ENAMETOOLONG, "socket path %s is too long", vsock);
    return 0;
}

/* On failure cb is not called and nothing is left running; on success cb is called
 * exactly once, from the loop, with the VMM's pid or an error it then owns. */
static int ch_start(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, vmm_backend_start_cb cb,
                    void *data, struct wr_error **err)
{
    _cleanup_free_ char *binary = vmm_ch_binary(err);
    struct ch_api_args args = {.spec = spec};
    _cleanup_free_ char *body = binary ? ch_api_body(CH_VM_CREATE, &args, err) : NULL;
    if (!body || start_check(spec, err) < 0)
        return wr_error_wrap(err, "starting Cloud Hypervisor VM %s", spec->id);
    struct ch_start *st = start_new(loop, spec, cb, data);
    st->binary = TAKE_PTR(binary);
    st->create_body = TAKE_PTR(body);
    /* CH binds the vsock socket and fails when the file exists; it only unlinks it on a
     * clean shutdown. The API socket the launcher binds afresh. */
    (void)unlink(st->vsock_socket);
    begin_step(st, STEP_VMFS, 0);
    int r = vmm_vmfs_start(loop, spec, on_vmfs_started, st, err);
    if (r < 0) {
        st->reported = true;
        start_release(st);
        return wr_error_wrap(err, "starting Cloud Hypervisor VM %s", spec->id);
    }
    return 0;
}

/* ---- stop ------------------------------------------------------------------------------ */

/* Asks the VMM to stop the VM and exit; true when it answered (the process then exits on
 * its own). */
static bool shutdown_via_api(const char *api_socket)
{
    _cleanup_error_ struct wr_error *err = NULL;
    int r = ch_api_call_sync(api_socket, CH_VM_SHUTDOWN, NULL, STOP_API_TIMEOUT_MS, &err);
    if (r < 0 && (r == -ENOENT || r == -ECONNREFUSED || r == -ETIMEDOUT))
        return false; /* nobody (alive) behind the socket */
    wr_error_free(TAKE_PTR(err));
    /* vm.shutdown may fail (no VM booted yet); vmm.shutdown ends the process either way. */
    r = ch_api_call_sync(api_socket, CH_VMM_SHUTDOWN, NULL, STOP_API_TIMEOUT_MS, &err);
    return r >= 0;
}

static void kill_vmm(pid_t pid, const char *id, const char *api_socket)
{
    bool asked = shutdown_via_api(api_socket);
    if (!is_our_vmm(pid, id))
        return;
    if (asked && wr_wait_exit(pid, STOP_WAIT_MS))
        return;
    if (kill(pid, SIGTERM) == 0 && wr_wait_exit(pid, STOP_WAIT_MS / 2))
        return;
    if (kill(pid, SIGKILL) == 0)
        (void)wr_wait_exit(pid, STOP_WAIT_MS);
}

static void unlink_sockets(const struct vmm_sandbox_spec *spec)
{
    _cleanup_free_ char *api = ch_api_path(spec, "api.sock");
    _cleanup_free_ char *vsock = ch_api_vmm_path(spec, "vsock.sock");
    (void)unlink(api);
    (void)unlink(vsock);
}

static int ch_stop(const struct vmm_sandbox_spec *spec, pid_t pid, struct wr_error **err)
{
    _cleanup_free_ char *api_socket = ch_api_path(spec, "api.sock");
    kill_vmm(pid, spec->id, api_socket);
    /* virtiofsd exits when its VMM disconnects; this catches one that did not, and one
     * started for a VMM that never connected. The cgroup takes whatever is left. */
    int r = vmm_vmfs_stop(spec, 0, err);
    _cleanup_error_ struct wr_error *cgroup_err = NULL;
    if (vmm_cgroup_destroy(spec->id, &cgroup_err) < 0 && r >= 0) {
        wr_error_move(err, &cgroup_err);
        r = -(*err)->status;
    }
    unlink_sockets(spec);
    if (r < 0)
        return wr_error_wrap(err, "stopping Cloud Hypervisor VM %s", spec->id);
    return 0;
}

/* ---- memory ---------------------------------------------------------------------------- */

/* The VMM's resident memory, guest RAM included: with shared memory the guest's pages are
 * the memfd's, counted in Rss; pages the balloon or free page reporting gave back are
 * holes, not counted. CH itself has no counter of guest memory use. */
static int ch_memory_usage(const struct vmm_sandbox_spec *spec, pid_t pid, uint64_t *ret_bytes)
{
    if (!is_our_vmm(pid, spec->id))
        return -ESRCH;
    return wr_process_rss(pid, ret_bytes);
}

/* ---- one API call: balloon (vm.resize), vm.pause, vm.resume ---------------------------- */

struct call_op {
    struct ch_api *api;
    void (*cb)(void *data, struct wr_error *err);
    void *data;
};

static void on_called(void *data, int status, const char *body, size_t len, struct wr_error *err)
{
    struct call_op *op = data;
    ch_api_close(op->api);
    op->cb(op->data, err);
    free(op);
}

/* Opens the VMM's API socket, makes one call (body may be NULL), closes. */
static int api_call(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, enum ch_api_op call,
                    const char *body, void (*cb)(void *data, struct wr_error *err), void *data,
                    struct wr_error **err)
{
    _cleanup_free_ char *api_socket = ch_api_path(spec, "api.sock");
    struct call_op *op = wr_calloc(1, sizeof(*op));
    op->api = ch_api_new(loop, api_socket);
    op->cb = cb;
    op->data = data;
    int r = ch_api_call(op->api, call, body, CALL_TIMEOUT_MS, on_called, op, err);
    if (r < 0) {
        ch_api_close(op->api);
        free(op);
    }
    return r;
}

static int ch_balloon_set(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                          uint64_t bytes, void (*cb)(void *data, struct wr_error *err), void *data,
                          struct wr_error **err)
{
    struct ch_api_args args = {.desired_balloon = bytes};
    _cleanup_free_ char *body = ch_api_body(CH_VM_RESIZE, &args, err);
    if (!body)
        return -(*err)->status;
    return api_call(loop, spec, CH_VM_RESIZE, body, cb, data, err);
}

static int ch_pause(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                    void (*cb)(void *data, struct wr_error *err), void *data, struct wr_error **err)
{
    return api_call(loop, spec, CH_VM_PAUSE, NULL, cb, data, err);
}

static int ch_resume(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                     void (*cb)(void *data, struct wr_error *err), void *data,
                     struct wr_error **err)
{
    return api_call(loop, spec, CH_VM_RESUME, NULL, cb, data, err);
}

/* ---- agent ----------------------------------------------------------------------------- */

struct agent_op {
    uv_loop_t *loop;
    uint64_t deadline;
    agent_connect_cb cb;
    void *data;
};

static void on_vsock_connected(void *data, int fd, const char *extra, size_t extra_len,
                               struct wr_error *err)
{
    struct agent_op *op = data;
    if (!err) {
        /* HELLO gets what is left of the caller's time, at least a moment. */
        uint64_t now = uv_now(op->loop);
        uint32_t left = op->deadline > now + 100 ? (uint32_t)(op->deadline - now) : 100;
        agent_connect_fd(op->loop, fd, extra, extra_len, left, op->cb, op->data, &err);
    }
    if (err)
        op->cb(op->data, NULL, err);
    free(op);
}

static int ch_agent_connect(uv_loop_t *loop, const struct vmm_sandbox_spec *spec,
                            uint32_t timeout_ms, agent_connect_cb cb, void *data,
                            struct wr_error **err)
{
    _cleanup_free_ char *vsock = ch_api_vmm_path(spec, "vsock.sock");
    struct agent_op *op = wr_calloc(1, sizeof(*op));
    op->loop = loop;
    op->deadline = uv_now(loop) + timeout_ms;
    op->cb = cb;
    op->data = data;
    int r =
        ch_vsock_connect(loop, vsock, CH_VSOCK_AGENT_PORT, timeout_ms, on_vsock_connected, op, err);
    if (r < 0)
        free(op);
    return r;
}

const struct vmm_backend_ops vmm_backend_cloud_hypervisor = {
    .name = "cloud-hypervisor",
    .vm = true,
    .available = ch_available,
    .start = ch_start,
    .stop = ch_stop,
    .memory_usage = ch_memory_usage,
    .agent_connect = ch_agent_connect,
    .balloon_set = ch_balloon_set,
    .pause = ch_pause,
    .resume = ch_resume,
    .attach = vmm_vmfs_attach,
};
