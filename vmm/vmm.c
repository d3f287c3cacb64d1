/* The vmm core: opening the state directory, choosing the backend, deriving a sandbox's
 * paths, and the per-sandbox agent connection that operations share. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "vmm-internal.h"
#include "vmm/backends/guest-image.h"
#include "vmm/backends/vmfs.h"
#include "vmm/images/image.h"

#define AGENT_CONNECT_TIMEOUT_MS 10000

/* In the order --backend auto prefers them (DESIGN.md): Cloud Hypervisor, then QEMU with
 * KVM, then the jail. QEMU under TCG only when asked for by name. */
static const struct vmm_backend_ops *const backends[] = {
    &vmm_backend_cloud_hypervisor, &vmm_backend_qemu, &vmm_backend_jail, NULL};

static int choose_backend(const char *name, const struct vmm_backend_ops **ret,
                          struct wr_error **err)
{
    bool is_auto = !name || !strcmp(name, "auto");
    for (size_t i = 0; backends[i]; i++) {
        if (!is_auto && strcmp(name, backends[i]->name) != 0)
            continue;
        if (is_auto && backends[i] == &vmm_backend_qemu && !vmm_kvm_usable(NULL))
            continue; /* software emulation is too slow to pick without being asked */
        _cleanup_error_ struct wr_error *why = NULL;
        if (backends[i]->available(&why)) {
            *ret = backends[i];
            return 0;
        }
        if (!is_auto)
            return wr_error_set(err, ENOTSUP, "backend '%s' cannot run here: %s", name,
                                why ? why->msg : "unavailable");
    }
    if (is_auto)
        return wr_error_set(err, ENOTSUP,
                            "no sandbox backend can run on this machine "
                            "(the jail backend needs root or user namespaces)");
    return wr_error_set(
        err, EINVAL, "unknown backend '%s' (available: auto, cloud-hypervisor, qemu, jail)", name);
}

/* The directory of the running binary: guest-init and guest/ are found next to it. */
static char *binary_dir(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return wr_strdup(".");
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    return wr_strdup(self);
}

int vmm_open(const struct vmm_options *opts, struct vmm **ret, struct wr_error **err)
{
    const struct vmm_backend_ops *backend = NULL;
    if (choose_backend(opts->backend, &backend, err) < 0)
        return -(*err)->status;
    int r = wr_mkdir_p(opts->state_dir, 0700);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating state directory %s", opts->state_dir);
    _cleanup_free_ char *sandboxes = wr_path_join(opts->state_dir, "sandboxes");
    r = wr_mkdir_p(sandboxes, 0700);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating %s", sandboxes);
    struct store *st;
    if (store_open(opts->state_dir, &st, err) < 0)
        return wr_error_wrap(err, "opening the state store");
    struct vmm *v = wr_calloc(1, sizeof(*v));
    v->loop = opts->loop;
    v->state_dir = wr_strdup(opts->state_dir);
    _cleanup_free_ char *bin = binary_dir();
    v->guest_init_path =
        opts->guest_init_path ? wr_strdup(opts->guest_init_path) : wr_path_join(bin, "guest-init");
    v->guest_kernel_dir = vmm_guest_kernel_dir(bin);
    v->backend = backend;
    v->store = st;
    v->max_exec_timeout_s = opts->max_exec_timeout_s ? opts->max_exec_timeout_s : 3600;
    v->idle_reclaim_s = opts->idle_reclaim_s < 0 ? 0
                        : opts->idle_reclaim_s   ? (uint32_t)opts->idle_reclaim_s
                                                 : 30;
    v->idle_pause_s = opts->idle_pause_s < 0 ? 0 : opts->idle_pause_s ? opts->idle_pause_s : 900;
    v->idle_stop_s = opts->idle_stop_s < 0 ? 0 : opts->idle_stop_s ? opts->idle_stop_s : 86400;
    if (access(v->guest_init_path, X_OK) < 0) {
        r = wr_error_set_errno(err, errno, "guest-init not found at %s (build it with cmake)",
                               v->guest_init_path);
        vmm_close(v);
        return r;
    }
    vmm__reaper_start(v);
    *ret = v;
    return 0;
}

void vmm_close(struct vmm *vmm)
{
    if (!vmm)
        return;
    vmm__reaper_stop(vmm);
    while (vmm->rts)
        vmm__rt_forget(vmm, vmm->rts->id);
    store_close(vmm->store);
    free(vmm->state_dir);
    free(vmm->guest_init_path);
    free(vmm->guest_kernel_dir);
    free(vmm);
}

const char *vmm_backend_name(const struct vmm *vmm)
{
    return vmm->backend->name;
}

const struct vmm_backend_ops *vmm__backend_for(const struct vmm *vmm, const char *name)
{
    for (size_t i = 0; name && backends[i]; i++)
        if (!strcmp(backends[i]->name, name))
            return backends[i];
    return vmm->backend;
}
const char *vmm_state_dir(const struct vmm *vmm)
{
    return vmm->state_dir;
}
uint32_t vmm_max_exec_timeout_s(const struct vmm *vmm)
{
    return vmm->max_exec_timeout_s;
}

int64_t vmm_idle_pause_at(const struct vmm *vmm, int64_t last_used)
{
    return vmm->idle_pause_s ? last_used + vmm->idle_pause_s : 0;
}

int64_t vmm_idle_stop_at(const struct vmm *vmm, int64_t last_used)
{
    return vmm->idle_stop_s ? last_used + vmm->idle_stop_s : 0;
}

void vmm_sandbox_info_clear(struct vmm_sandbox_info *info)
{
    store_sandbox_clear(&info->row);
}

int vmm_path_check(const char *path, struct wr_error **err)
{
    size_t n = path ? strlen(path) : 0;
    if (n == 0)
        return wr_error_set(err, EINVAL, "path must not be empty");
    if (n > 4096)
        return wr_error_set(err, EINVAL, "path is too long (at most 4096 bytes)");
    for (const char *p = path; *p;) {
        const char *end = strchrnul(p, '/');
        if (end - p == 2 && p[0] == '.' && p[1] == '.')
            return wr_error_set(err, EINVAL,
                                "path '%.200s' contains '..': give a path inside the sandbox "
                                "(absolute, or relative to /workspace) without '..'",
                                path);
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* ---- specs ------------------------------------------------------------------------ */

char **vmm__layer_chain(const char *layers_json, const char *base)
{
    cJSON *a = layers_json ? cJSON_Parse(layers_json) : NULL;
    size_t n = 0, cap = (size_t)(cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0) + 2;
    char **v = wr_calloc(cap, sizeof(char *));
    for (cJSON *c = cJSON_IsArray(a) ? a->child : NULL; c; c = c->next)
        if (cJSON_IsString(c))
            v[n++] = wr_strdup(c->valuestring);
    if (base)
        v[n++] = wr_strdup(base);
    cJSON_Delete(a);
    return v;
}

void vmm__spec_clear(struct spec_storage *s)
{
    free(s->dir);
    free(s->root_upper);
    free(s->root_work);
    free(s->ws_upper);
    free(s->ws_work);
    free(s->agent_socket);
    free(s->log_path);
    free(s->image_root);
    free(s->kernel);
    free(s->initrd);
    wr_strv_free(s->root_lowers);
    wr_strv_free(s->ws_lowers);
    memset(s, 0, sizeof(*s));
}

int vmm__spec_build(struct vmm *vmm, const struct store_sandbox *row, struct spec_storage *s,
                    struct wr_error **err)
{
    memset(s, 0, sizeof(*s));
    s->dir = wr_asprintf("%s/sandboxes/%s", vmm->state_dir, row->id);
    s->root_upper = wr_path_join(s->dir, "root/upper");
    s->root_work = wr_path_join(s->dir, "root/work");
    s->ws_upper = wr_path_join(s->dir, "workspace/upper");
    s->ws_work = wr_path_join(s->dir, "workspace/work");
    s->agent_socket = wr_path_join(s->dir, "agent.sock");
    s->log_path = wr_path_join(s->dir, "sandbox.log");
    if (strlen(s->agent_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        vmm__spec_clear(s);
        return wr_error_set(err, ENAMETOOLONG,
                            "the state directory path %s is too long for a unix socket path; "
                            "use a shorter --state-dir",
                            vmm->state_dir);
    }
    if (vmm_image_root(vmm->state_dir, row->image, &s->image_root, err) < 0) {
        vmm__spec_clear(s);
        return -(*err)->status;
    }
    s->ops = vmm__backend_for(vmm, row->backend);
    s->root_lowers = vmm__layer_chain(row->root_layers, s->image_root);
    s->ws_lowers = vmm__layer_chain(row->ws_layers, row->ws_lower);
    s->spec = (struct vmm_sandbox_spec){
        .id = row->id,
        .dir = s->dir,
        .image = row->image,
        .root_lowers = (const char *const *)s->root_lowers,
        .root_upper = s->root_upper,
        .root_work = s->root_work,
        .ws_lowers = (const char *const *)s->ws_lowers,
        .ws_upper = s->ws_upper,
        .ws_work = s->ws_work,
        .agent_socket = s->agent_socket,
        .guest_init_path = vmm->guest_init_path,
        .log_path = s->log_path,
        .cpus = row->cpus,
        .memory_bytes = row->memory_mib << 20,
        .network = row->network,
        .hostname = row->name,
        .vsock_cid = 3,
    };
    return 0;
}

int vmm__spec_boot_files(struct vmm *vmm, struct spec_storage *s, struct wr_error **err)
{
    if (!s->ops->vm)
        return 0;
    if (vmm_guest_image(vmm->state_dir, vmm->guest_init_path, vmm->guest_kernel_dir, &s->kernel,
                        &s->initrd, err) < 0)
        return -(*err)->status;
    s->spec.kernel_path = s->kernel;
    s->spec.initrd_path = s->initrd;
    return 0;
}

/* ---- liveness --------------------------------------------------------------------- */

static bool row_alive(const struct store_sandbox *row)
{
    return row->pid > 0 && row->pid_start && wr_process_start_time(row->pid) == row->pid_start;
}

/* A VM whose virtiofsd died has lost its root and workspace: it cannot do useful work any
 * more, so its VMM is stopped and the sandbox reported failed (its files are on the host,
 * intact). */
static bool vm_lost_filesystems(struct vmm *vmm, const struct store_sandbox *row)
{
    if (!vmm__backend_for(vmm, row->backend)->vm)
        return false;
    _cleanup_free_ char *dir = wr_asprintf("%s/sandboxes/%s", vmm->state_dir, row->id);
    if (vmm_vmfs_running(dir))
        return false;
    (void)kill(row->pid, SIGKILL); /* row_alive checked pid and start time: it is ours */
    return true;
}

int vmm__refresh_state(struct vmm *vmm, struct store_sandbox *row)
{
    if (strcmp(row->state, "running") != 0 && strcmp(row->state, "paused") != 0)
        return 0;
    bool alive = row_alive(row);
    bool lost_fs = alive && vm_lost_filesystems(vmm, row);
    if (alive && !lost_fs)
        return 0;
    /* A jail whose processes are gone is simply stopped; a VM whose VMM died crashed. */
    bool vm = vmm__backend_for(vmm, row->backend)->vm;
    const char *state = vm ? "failed" : "stopped";
    const char *why = lost_fs ? "its virtiofsd exited, so the VM lost its filesystems; the VM "
                                "was stopped and its files are kept"
                      : vm    ? "its VMM process exited unexpectedly (see serial.log in the "
                                "sandbox directory); its files are kept"
                              : "its processes exited; its files are kept";
    _cleanup_error_ struct wr_error *e = NULL;
    if (store_sandbox_set_state(vmm->store, row->id, state, 0, 0, why, &e) < 0)
        log_warning("marking sandbox %s %s: %s", row->id, state, e->msg);
    free(row->state);
    row->state = wr_strdup(state);
    free(row->error);
    row->error = wr_strdup(why);
    row->pid = 0;
    row->pid_start = 0;
    vmm__rt_forget(vmm, row->id);
    return 1;
}

int vmm__sandbox_running(struct vmm *vmm, const char *id_or_name, struct store_sandbox *ret,
                         struct wr_error **err)
{
    if (store_sandbox_get(vmm->store, id_or_name, ret, err) < 0)
        return -(*err)->status;
    vmm__refresh_state(vmm, ret);
    if (!strcmp(ret->state, "running") || !strcmp(ret->state, "paused"))
        return 0;
    int r;
    if (!strcmp(ret->state, "stopped"))
        r = wr_error_set(err, ESRCH,
                         "sandbox '%s' is stopped (%s); destroy it with sandbox_destroy and "
                         "create a new one",
                         ret->name, ret->error ? ret->error : "not running");
    else if (!strcmp(ret->state, "creating"))
        r = wr_error_set(err, EAGAIN, "sandbox '%s' is still being created; try again shortly",
                         ret->name);
    else
        r = wr_error_set(err, EIO,
                         "sandbox '%s' is %s (%s); destroy it with sandbox_destroy and create a "
                         "new one",
                         ret->name, ret->state, ret->error ? ret->error : "no reason recorded");
    store_sandbox_clear(ret);
    return r;
}

/* ---- agent connections ----------------------------------------------------------- */

struct conn_waiter {
    vmm_conn_cb cb;
    void *data;
    struct conn_waiter *next;
};

struct sandbox_rt *vmm__rt_get(struct vmm *vmm, const char *id, bool create)
{
    for (struct sandbox_rt *rt = vmm->rts; rt; rt = rt->next)
        if (!strcmp(rt->id, id))
            return rt;
    if (!create)
        return NULL;
    struct sandbox_rt *rt = wr_calloc(1, sizeof(*rt));
    rt->vmm = vmm;
    rt->id = wr_strdup(id);
    rt->next = vmm->rts;
    vmm->rts = rt;
    return rt;
}

/* The agent client leaves a broken connection to its owner: close it here so that the
 * next operation connects again (or finds the sandbox stopped). */
static void rt_conn_closed(void *data)
{
    struct sandbox_rt *rt = data;
    if (rt->conn)
        agent_conn_close(TAKE_PTR(rt->conn));
}

static void rt_connected(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct sandbox_rt *rt = data;
    rt->connecting = false;
    if (conn) {
        rt->conn = conn;
        agent_conn_on_close(conn, rt_conn_closed, rt);
    }
    struct conn_waiter *w = TAKE_PTR(rt->waiters);
    while (w) {
        struct conn_waiter *next = w->next;
        struct wr_error *copy = err ? wr_calloc(1, sizeof(*copy)) : NULL;
        if (copy) {
            copy->status = err->status;
            copy->msg = wr_asprintf("connecting to the sandbox agent: %s", err->msg);
        }
        w->cb(w->data, conn, copy);
        free(w);
        w = next;
    }
    wr_error_free(err);
}

static void connect_agent(struct vmm *vmm, struct sandbox_rt *rt, uint32_t timeout_ms)
{
    struct wr_error *err = NULL;
    struct spec_storage spec = {0};
    struct store_sandbox row;
    timeout_ms = timeout_ms ? timeout_ms : AGENT_CONNECT_TIMEOUT_MS;
    rt->connecting = true;
    int r = store_sandbox_get(vmm->store, rt->id, &row, &err);
    if (r == 0) {
        r = vmm__spec_build(vmm, &row, &spec, &err);
        if (r == 0 && spec.ops->agent_connect)
            r = spec.ops->agent_connect(vmm->loop, &spec.spec, timeout_ms, rt_connected, rt, &err);
        else if (r == 0)
            r = agent_connect_unix(vmm->loop, spec.spec.agent_socket, timeout_ms, rt_connected, rt,
                                   &err);
        vmm__spec_clear(&spec);
        store_sandbox_clear(&row);
    }
    if (r < 0)
        rt_connected(rt, NULL, err);
}

static void add_waiter(struct sandbox_rt *rt, vmm_conn_cb cb, void *data)
{
    struct conn_waiter *w = wr_calloc(1, sizeof(*w));
    w->cb = cb;
    w->data = data;
    w->next = rt->waiters;
    rt->waiters = w;
}

struct deferred_conn {
    struct vmm *vmm;
    char *id;
    uint32_t timeout_ms;
    vmm_conn_cb cb;
    void *data;
};

static void with_conn_now(struct vmm *vmm, struct sandbox_rt *rt, uint32_t timeout_ms,
                          vmm_conn_cb cb, void *data)
{
    if (rt->conn) {
        cb(data, rt->conn, NULL);
        return;
    }
    add_waiter(rt, cb, data);
    if (!rt->connecting)
        connect_agent(vmm, rt, timeout_ms);
}

static void after_deflate(void *data)
{
    struct deferred_conn *d = data;
    with_conn_now(d->vmm, vmm__rt_get(d->vmm, d->id, true), d->timeout_ms, d->cb, d->data);
    free(d->id);
    free(d);
}

static void after_resume(void *data, struct wr_error *err)
{
    struct deferred_conn *d = data;
    if (err) {
        wr_error_wrap(&err, "the sandbox is paused and could not be resumed");
        d->cb(d->data, NULL, err);
        free(d->id);
        free(d);
        return;
    }
    struct store_sandbox row;
    if (store_sandbox_get(d->vmm->store, d->id, &row, NULL) < 0) {
        after_deflate(d); /* the connect that follows reports what is wrong */
        return;
    }
    vmm__deflate_then(d->vmm, vmm__rt_get(d->vmm, d->id, true), &row, after_deflate, d);
    store_sandbox_clear(&row);
}

void vmm__with_conn(struct vmm *vmm, const struct store_sandbox *row, uint32_t timeout_ms,
                    vmm_conn_cb cb, void *data)
{
    struct sandbox_rt *rt = vmm__rt_get(vmm, row->id, true);
    bool paused = !strcmp(row->state, "paused");
    if (rt->reclaiming)
        rt->touched = true;
    if (rt->balloon_bytes == 0 && !paused) {
        with_conn_now(vmm, rt, timeout_ms, cb, data);
        return;
    }
    struct deferred_conn *d = wr_calloc(1, sizeof(*d));
    *d = (struct deferred_conn){
        .vmm = vmm, .id = wr_strdup(row->id), .timeout_ms = timeout_ms, .cb = cb, .data = data};
    if (paused) /* calls to a paused sandbox resume it first */
        vmm__resume_then(vmm, row, after_resume, d);
    else /* an idle VM gave memory back: take it back before any work starts */
        vmm__deflate_then(vmm, rt, row, after_deflate, d);
}

void vmm__rt_forget(struct vmm *vmm, const char *id)
{
    for (struct sandbox_rt **p = &vmm->rts; *p; p = &(*p)->next) {
        struct sandbox_rt *rt = *p;
        if (strcmp(rt->id, id) != 0)
            continue;
        if (rt->connecting)
            return; /* rt_connected still needs it; the connection will be dropped later */
        if (rt->reclaiming || rt->deflating) {
            /* A balloon operation still points at rt: keep the small struct. */
            if (rt->conn)
                agent_conn_close(TAKE_PTR(rt->conn));
            return;
        }
        *p = rt->next;
        if (rt->conn)
            agent_conn_close(rt->conn);
        free(rt->id);
        free(rt);
        return;
    }
}
