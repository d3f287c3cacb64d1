/* The jail backend: a sandbox is a set of namespaces, a cgroup and a seccomp filter around
 * guest-init, built by the jailer (jailer.c) in a process of its own.
 *
 * start() writes the spec to <dir>/jail.json and spawns `/proc/self/exe __jail <that
 * file>` on the loop; the jailer prints the sandbox's pid on stdout or an error on stderr
 * and exits, and start's callback runs once the jailer has exited and both pipes are
 * drained. Nothing in start() blocks or polls. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "cgroup.h"
#include "jailer.h"
#include "vmm/backends/attach.h"
#include "vmm/backends/hostview.h"
#include "vmm/helper.h"

#define JAILER_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 2000

/* ---- available ----------------------------------------------------------------------- */

static bool file_contains(const char *path, const char *needle)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    return wr_read_file(path, 1 << 20, &text, &len) == 0 && strstr(text, needle) != NULL;
}

static long read_sysctl(const char *path, long missing)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (wr_read_file(path, 64, &text, &len) < 0)
        return missing;
    return strtol(text, NULL, 10);
}

bool vmm_userns_usable(struct wr_error **err)
{
    if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone", 1) != 1 ||
        read_sysctl("/proc/sys/user/max_user_namespaces", 1) <= 0 ||
        read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", 0) != 0) {
        wr_error_set(err, EPERM,
                     "jail: not root and unprivileged user namespaces are "
                     "disabled on this host");
        return false;
    }
    return true;
}

bool vmm_overlay_available(struct wr_error **err)
{
    if (file_contains("/proc/filesystems", "\toverlay\n"))
        return true;
    wr_error_set(err, ENODEV, "overlayfs is not available (modprobe overlay)");
    return false;
}

static bool jail_available(struct wr_error **err)
{
    if (!vmm_overlay_available(err))
        return wr_error_wrap(err, "jail") && false;
    if (geteuid() != 0)
        return vmm_userns_usable(err);
    _cleanup_free_ char *summary = NULL;
    if (!vmm_cgroup_check(&summary, err))
        return wr_error_wrap(err, "jail") && false;
    return true;
}

/* ---- start --------------------------------------------------------------------------- */

/* One jailer run (vmm/helper.c does the process work). */
struct jail_start {
    vmm_backend_start_cb cb;
    void *data;
    char *id;
    char *agent_socket;
};

static void jailer_done(void *data, pid_t pid, struct wr_error *err)
{
    struct jail_start *start = data;
    if (err) {
        /* A jailer that failed (or was killed) may leave a cgroup or a half-built sandbox
         * behind; the cgroup holds every process it made, so this removes them all. */
        (void)vmm_cgroup_destroy(start->id, NULL);
        (void)unlink(start->agent_socket);
    }
    start->cb(start->data, pid, err);
    free(start->id);
    free(start->agent_socket);
    free(start);
}

static int write_spec_file(const struct vmm_sandbox_spec *spec, char **ret_path,
                           struct wr_error **err)
{
    _cleanup_free_ char *json = NULL;
    int r = vmm_jail_spec_to_json(spec, &json, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = wr_path_join(spec->dir, "jail.json");
    r = wr_write_file_atomic(path, json, strlen(json), 0600);
    if (r < 0)
        return wr_error_set_errno(err, -r, "writing %s", path);
    *ret_path = TAKE_PTR(path);
    return 0;
}

/* On failure cb is not called and nothing is left running; on success cb is called
 * exactly once, from the loop, with the pid or an error it then owns. */
static int jail_start(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, vmm_backend_start_cb cb,
                      void *data, struct wr_error **err)
{
    int r = vmm_jail_spec_validate(spec, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *spec_path = NULL;
    r = write_spec_file(spec, &spec_path, err);
    if (r < 0)
        return r;
    struct jail_start *start = wr_calloc(1, sizeof(*start));
    *start = (struct jail_start){.cb = cb,
                                 .data = data,
                                 .id = wr_strdup(spec->id),
                                 .agent_socket = wr_strdup(spec->agent_socket)};
    r = vmm_helper_run(loop, "__jail", spec_path, JAILER_TIMEOUT_MS, "the jailer", jailer_done,
                       start, err);
    if (r < 0) {
        free(start->id);
        free(start->agent_socket);
        free(start);
    }
    return r;
}

/* ---- stop ---------------------------------------------------------------------------- */

/* guest-init's argv as the jailer sets it. */
static bool is_jail_init(pid_t pid)
{
    static const char expected[] = "guest-init\0--jail\0";
    _cleanup_free_ char *path = wr_asprintf("/proc/%d/cmdline", (int)pid);
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (wr_read_file(path, 4096, &text, &len) < 0)
        return false;
    return len >= sizeof(expected) - 1 && memcmp(text, expected, sizeof(expected) - 1) == 0;
}

static int jail_stop(const struct vmm_sandbox_spec *spec, pid_t pid, struct wr_error **err)
{
    /* The pid may be stale (a restarted host, a reused pid): only a process in this
     * sandbox's cgroup, or a jail init where there are no cgroups, is killed. */
    if (pid > 1 && (vmm_cgroup_contains(spec->id, pid) || is_jail_init(pid))) {
        /* Frozen tasks cannot die: thaw a paused sandbox first (a no-op otherwise). */
        vmm_cgroup_thaw(spec->id, NULL);
        /* Killing PID 1 of a pid namespace kills every process in it. */
        if (kill(pid, SIGKILL) == 0)
            wr_wait_exit(pid, STOP_TIMEOUT_MS);
    }
    int r = vmm_cgroup_destroy(spec->id, err);
    if (spec->agent_socket && unlink(spec->agent_socket) < 0 && errno != ENOENT && r >= 0)
        r = wr_error_set_errno(err, errno, "removing %s", spec->agent_socket);
    if (r < 0)
        return wr_error_wrap(err, "stopping jail %s", spec->id);
    return 0;
}

/* ---- memory -------------------------------------------------------------------------- */

static int jail_memory_usage(const struct vmm_sandbox_spec *spec, pid_t pid, uint64_t *ret_bytes)
{
    int r = vmm_cgroup_memory_usage(spec->id, ret_bytes);
    if (r == -ENOENT && pid > 1)
        return wr_process_rss(pid, ret_bytes);
    return r;
}

static int jail_cpu_usage(const struct vmm_sandbox_spec *spec, pid_t pid, uint64_t *ret_usec)
{
    int r = vmm_cgroup_cpu_usage(spec->id, ret_usec);
    if (r < 0 && pid > 1)
        return wr_process_cpu_usec(pid, ret_usec);
    return r;
}

/* The cgroup freezer works synchronously enough (it waits for FROZEN/THAWED): report at
 * once. */
static int jail_freeze(const struct vmm_sandbox_spec *spec, bool freeze,
                       void (*cb)(void *data, struct wr_error *err), void *data,
                       struct wr_error **err)
{
    int r = freeze ? vmm_cgroup_freeze(spec->id, err) : vmm_cgroup_thaw(spec->id, err);
    if (r < 0)
        return r;
    cb(data, NULL);
    return 0;
}

static int jail_pause(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                      void (*cb)(void *data, struct wr_error *err), void *data,
                      struct wr_error **err)
{
    return jail_freeze(spec, true, cb, data, err);
}

static int jail_resume(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, pid_t pid,
                       void (*cb)(void *data, struct wr_error *err), void *data,
                       struct wr_error **err)
{
    return jail_freeze(spec, false, cb, data, err);
}

/* ---- attach (a warm pool's jail claimed) --------------------------------------------- */

static int jail_attach(const struct vmm_sandbox_spec *spec, pid_t pid, char **ret_guest_dir,
                       struct wr_error **err)
{
    *ret_guest_dir = NULL;
    if (geteuid() != 0)
        return wr_error_set(err, EPERM, "jail: a pooled jail is attached by root only");
    _cleanup_free_ char *root = wr_asprintf("/proc/%d/root", (int)pid);
    if (vmm_attach_workspace(spec, pid, "/workspace", false, true, err) < 0 ||
        vmm_rename_identity(spec, root, err) < 0)
        return -(*err)->status;
    return 0;
}

const struct vmm_backend_ops vmm_backend_jail = {
    .name = "jail",
    .vm = false,
    .available = jail_available,
    .start = jail_start,
    .stop = jail_stop,
    .memory_usage = jail_memory_usage,
    .cpu_usage = jail_cpu_usage,
    .pause = jail_pause,
    .resume = jail_resume,
    .attach = jail_attach,
};
