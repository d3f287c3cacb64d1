/* A sandbox's backend and paths: which backend runs it, and the spec (directories, layer
 * chains, boot files) a backend starts it from, derived from its store row. */
#include <cjson/cJSON.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "disk.h"
#include "spec.h"
#include "vmm/backends/guest-image.h"
#include "vmm/images/images.h"

/* In the order --backend auto prefers them (DESIGN.md): Cloud Hypervisor, then QEMU with
 * KVM, then the jail. QEMU under TCG only when asked for by name. */
static const struct vmm_backend_ops *const backends[] = {
    &vmm_backend_cloud_hypervisor, &vmm_backend_qemu, &vmm_backend_jail, NULL};

/* Why a backend cannot run, starting with its name (caller frees); NULL when it can. */
static char *unavailable_reason(const struct vmm_backend_ops *ops)
{
    _cleanup_error_ struct wr_error *why = NULL;
    if (ops->available(&why))
        return NULL;
    const char *msg = why ? why->msg : "unavailable";
    size_t n = strlen(ops->name);
    if (!strncmp(msg, ops->name, n) && msg[n] == ':')
        return wr_strdup(msg);
    return wr_asprintf("%s: %s", ops->name, msg);
}

const struct vmm_backend_ops *vmm__backend_auto(char **ret_reason)
{
    _cleanup_free_ char *no_ch = unavailable_reason(&vmm_backend_cloud_hypervisor);
    if (!no_ch) {
        *ret_reason = wr_strdup("KVM works and Cloud Hypervisor and virtiofsd are installed");
        return &vmm_backend_cloud_hypervisor;
    }
    _cleanup_error_ struct wr_error *no_kvm = NULL;
    _cleanup_free_ char *no_qemu = NULL;
    if (vmm_kvm_usable(&no_kvm)) {
        no_qemu = unavailable_reason(&vmm_backend_qemu);
        if (!no_qemu) {
            *ret_reason = wr_asprintf("KVM works and QEMU is installed; %s", no_ch);
            return &vmm_backend_qemu;
        }
    } else {
        /* Software emulation is too slow to pick without being asked. */
        no_qemu = wr_asprintf("qemu: not without KVM (%s); QEMU under TCG runs only when asked "
                              "for with --backend qemu",
                              no_kvm ? no_kvm->msg : "unusable");
    }
    _cleanup_free_ char *no_jail = unavailable_reason(&vmm_backend_jail);
    if (!no_jail) {
        *ret_reason = wr_asprintf("no VM backend with KVM here (%s; %s)", no_ch, no_qemu);
        return &vmm_backend_jail;
    }
    *ret_reason = wr_asprintf("no sandbox backend can run on this machine (%s; %s; %s)", no_ch,
                              no_qemu, no_jail);
    return NULL;
}

int vmm__backend_choose(const char *name, const struct vmm_backend_ops **ret, struct wr_error **err)
{
    if (!name || !strcmp(name, "auto")) {
        _cleanup_free_ char *reason = NULL;
        *ret = vmm__backend_auto(&reason);
        if (!*ret)
            return wr_error_set(err, ENOTSUP, "%s", reason);
        log_info("backend auto: %s, because %s", (*ret)->name, reason);
        return 0;
    }
    for (size_t i = 0; backends[i]; i++) {
        if (strcmp(name, backends[i]->name) != 0)
            continue;
        _cleanup_free_ char *why = unavailable_reason(backends[i]);
        if (why)
            return wr_error_set(err, ENOTSUP, "backend '%s' cannot run here: %s", name, why);
        *ret = backends[i];
        return 0;
    }
    return wr_error_set(
        err, EINVAL, "unknown backend '%s' (available: auto, cloud-hypervisor, qemu, jail)", name);
}

const struct vmm_backend_ops *const *vmm__backends(void)
{
    return backends;
}

const struct vmm_backend_ops *vmm__backend_for(const struct vmm *vmm, const char *name)
{
    for (size_t i = 0; name && backends[i]; i++)
        if (!strcmp(backends[i]->name, name))
            return backends[i];
    return vmm->backend;
}

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
    free(s->disk_image);
    free(s->disk_dir);
    free(s->image_base);
    free(s->git_objects);
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
    /* With a disk, everything the sandbox writes is on it, work directories included
     * (overlayfs wants them on the upper's filesystem). */
    if (row->disk_mib) {
        s->disk_mib = row->disk_mib;
        s->disk_image = wr_path_join(s->dir, VMM_DISK_IMAGE);
        s->disk_dir = wr_path_join(s->dir, VMM_DISK_MOUNT);
    }
    const char *base = s->disk_dir ? s->disk_dir : s->dir;
    s->root_upper = wr_path_join(base, "root/upper");
    s->root_work = wr_path_join(base, "root/work");
    s->ws_upper = wr_path_join(base, "workspace/upper");
    s->ws_work = wr_path_join(base, "workspace/work");
    s->agent_socket = wr_path_join(s->dir, "agent.sock");
    s->log_path = wr_path_join(s->dir, "sandbox.log");
    if (strlen(s->agent_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        vmm__spec_clear(s);
        return wr_error_set(err, ENAMETOOLONG,
                            "the state directory path %s is too long for a unix socket path; "
                            "use a shorter --state-dir",
                            vmm->state_dir);
    }
    _cleanup_strv_ char **image_lowers = NULL;
    if (vmm__image_lowers(vmm, row->image, &image_lowers, &s->image_base, err) < 0) {
        vmm__spec_clear(s);
        return -(*err)->status;
    }
    s->ops = vmm__backend_for(vmm, row->backend);
    s->root_lowers = vmm__layer_chain(row->root_layers, NULL);
    size_t n = wr_strv_len((const char *const *)s->root_lowers);
    size_t k = wr_strv_len((const char *const *)image_lowers);
    s->root_lowers = wr_realloc(s->root_lowers, (n + k + 1) * sizeof(char *));
    for (size_t i = 0; i < k; i++)
        s->root_lowers[n + i] = TAKE_PTR(image_lowers[i]);
    s->root_lowers[n + k] = NULL;
    vmm__spec_load_git_objects(s);
    s->ws_lowers = vmm__layer_chain(row->ws_layers, row->ws_lower);
    s->spec = (struct vmm_sandbox_spec){
        .id = row->id,
        .dir = s->dir,
        .image = s->image_base,
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
        .network = row->network == VMM_NET_NAT,
        /* A pool's sandbox is named at claim; until then it is plain "sandbox". */
        .hostname = row->pool ? VMM_POOL_HOSTNAME : row->name,
        .pooled = row->pool != NULL,
        .git_objects = s->git_objects,
        .vsock_cid = 3,
    };
    return 0;
}

void vmm__spec_load_git_objects(struct spec_storage *s)
{
    _cleanup_free_ char *path = wr_path_join(s->dir, "git-objects");
    char *text = NULL;
    size_t len;
    free(TAKE_PTR(s->git_objects));
    if (wr_read_file(path, 4096, &text, &len) < 0)
        return; /* made by an older warren, or not from a repository */
    text[strcspn(text, "\n")] = 0;
    s->git_objects = text;
    s->spec.git_objects = text;
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

/* ---- disks ------------------------------------------------------------------------- */

char *vmm__snapshot_disk_dir(const struct vmm *vmm, const char *snapshot_id)
{
    return wr_asprintf("%s/layers/snap/%s/" VMM_DISK_MOUNT, vmm->state_dir, snapshot_id);
}

/* When layer is on a snapshot's disk (<state>/layers/snap/<id>/disk/...): that disk's
 * mount point. NULL for any other layer (an image's, a snapshot made before disks). */
static char *snapshot_disk_of(const struct vmm *vmm, const char *layer)
{
    _cleanup_free_ char *prefix = wr_asprintf("%s/layers/snap/", vmm->state_dir);
    size_t n = strlen(prefix);
    if (strncmp(layer, prefix, n) != 0)
        return NULL;
    const char *id = layer + n;
    size_t id_len = strcspn(id, "/");
    if (id_len == 0 || strncmp(id + id_len, "/" VMM_DISK_MOUNT "/", strlen(VMM_DISK_MOUNT) + 2))
        return NULL;
    return wr_asprintf("%.*s%.*s/" VMM_DISK_MOUNT, (int)n, layer, (int)id_len, id);
}

static int mount_snapshot_disks(const struct vmm *vmm, char *const *layers, struct wr_error **err)
{
    for (size_t i = 0; layers && layers[i]; i++) {
        _cleanup_free_ char *dir = snapshot_disk_of(vmm, layers[i]);
        if (!dir)
            continue;
        _cleanup_free_ char *image = wr_asprintf("%s.img", dir);
        if (vmm_disk_mount(image, dir, true, err) < 0)
            return -(*err)->status;
    }
    return 0;
}

int vmm__spec_disks_ready(struct vmm *vmm, struct spec_storage *s, bool create,
                          struct wr_error **err)
{
    if (s->disk_image) {
        _cleanup_free_ char *templates = wr_path_join(vmm->state_dir, "disks");
        int r = create ? wr_mkdir_p(s->dir, 0755) : 0;
        if (r < 0)
            return wr_error_set_errno(err, -r, "creating %s", s->dir);
        if (create && vmm_disk_create(templates, s->disk_image, s->disk_mib, err) < 0)
            return -(*err)->status;
        if (vmm_disk_mount(s->disk_image, s->disk_dir, false, err) < 0)
            return -(*err)->status;
    }
    if (mount_snapshot_disks(vmm, s->root_lowers, err) < 0 ||
        mount_snapshot_disks(vmm, s->ws_lowers, err) < 0)
        return -(*err)->status;
    return 0;
}

uint64_t vmm__disk_used(const struct vmm *vmm, const struct store_sandbox *row)
{
    if (!row->disk_mib)
        return 0;
    _cleanup_free_ char *dir =
        wr_asprintf("%s/sandboxes/%s/" VMM_DISK_MOUNT, vmm->state_dir, row->id);
    uint64_t used = 0;
    if (vmm_disk_used(dir, &used) < 0) {
        /* Not mounted (after a host reboot, until it boots): what the image holds. */
        _cleanup_free_ char *image = wr_asprintf("%s.img", dir);
        struct stat st;
        used = stat(image, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
    }
    return used;
}

int vmm__spec_make_dirs(const struct spec_storage *s, struct wr_error **err)
{
    const char *dirs[] = {s->root_upper, s->root_work, s->ws_upper, s->ws_work};
    for (size_t i = 0; i < WR_ARRAY_SIZE(dirs); i++) {
        int r = wr_mkdir_p(dirs[i], 0755);
        if (r < 0)
            return wr_error_set_errno(err, -r, "creating %s", dirs[i]);
    }
    return 0;
}
