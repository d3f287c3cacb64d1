/* The vmm core's entry points: opening the state directory with its store and backend,
 * closing it, and the server-wide settings the tools read. */
#include <limits.h>
#include <string.h>

#include "apikeys.h"
#include "conn.h"
#include "disk.h"
#include "network.h"
#include "pool.h"
#include "metrics.h"
#include "reaper.h"
#include "spec.h"
#include "vmm/backends/guest-image.h"
#include "vmm/net/proxy.h"

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
    if (vmm__backend_choose(opts->backend, &backend, err) < 0)
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
    v->insecure_registries = wr_strv_copy(opts->insecure_registries ? opts->insecure_registries
                                                                    : (const char *const[]){NULL});
    const char *auth = getenv("WARREN_REGISTRY_AUTH");
    v->registry_auth = auth && auth[0] ? wr_strdup(auth) : NULL;
    _cleanup_error_ struct wr_error *no_disks = NULL;
    if (vmm_disk_available(&no_disks)) {
        v->max_disk_mib = opts->max_disk_mib ? opts->max_disk_mib : VMM_DISK_MIB_MAX_DEFAULT;
    } else {
        v->no_disk_reason = wr_strdup(no_disks->msg);
        log_warning("%s; sandboxes' writes are limited only by the host's free space",
                    no_disks->msg);
    }
    if (access(v->guest_init_path, X_OK) < 0) {
        r = wr_error_set_errno(err, errno, "guest-init not found at %s (build it with cmake)",
                               v->guest_init_path);
        vmm_close(v);
        return r;
    }
    if (opts->egress_hosts && vmm_egress_hosts_load(opts->egress_hosts, &v->egress_hosts, err) < 0) {
        r = -(*err)->status;
        vmm_close(v);
        return r;
    }
    /* A restarted server serves the allow-lists of the sandboxes still running. */
    vmm__net_reopen(v);
    if (vmm__pools_open(v, opts->pools, err) < 0) {
        r = -(*err)->status;
        vmm_close(v);
        return r;
    }
    vmm__reaper_start(v);
    vmm__metrics_start(v);
    *ret = v;
    return 0;
}

void vmm_close(struct vmm *vmm)
{
    if (!vmm)
        return;
    vmm__reaper_stop(vmm);
    vmm__metrics_stop(vmm);
    vmm__pools_close(vmm);
    while (vmm->rts)
        vmm__rt_forget(vmm, vmm->rts->id);
    store_close(vmm->store);
    vmm_egress_hosts_free(vmm->egress_hosts);
    free(vmm->state_dir);
    free(vmm->guest_init_path);
    free(vmm->guest_kernel_dir);
    wr_strv_free(vmm->insecure_registries);
    free(vmm->registry_auth);
    free(vmm->no_disk_reason);
    free(vmm);
}

const char *vmm_backend_name(const struct vmm *vmm)
{
    return vmm->backend->name;
}

const char *vmm_state_dir(const struct vmm *vmm)
{
    return vmm->state_dir;
}

bool vmm_api_key_valid(struct vmm *vmm, const char *key)
{
    return apikey_valid(vmm->store, key);
}
uint32_t vmm_max_exec_timeout_s(const struct vmm *vmm)
{
    return vmm->max_exec_timeout_s;
}

uint64_t vmm_max_disk_mib(const struct vmm *vmm)
{
    return vmm->max_disk_mib;
}

uint64_t vmm_default_disk_mib(const struct vmm *vmm)
{
    return vmm__default_disk_mib(vmm);
}

const char *vmm_disk_unavailable_reason(const struct vmm *vmm)
{
    return vmm->no_disk_reason;
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
