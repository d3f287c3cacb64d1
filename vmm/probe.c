/* The host checks of `warren doctor` (see probe.h). Every verdict comes from the function
 * the sandbox manager itself decides with: the backends' available(), the KVM check,
 * --backend auto's choice, the disk, network and cgroup checks. */
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "disk.h"
#include "network.h"
#include "probe.h"
#include "spec.h"
#include "vmm/backends/guest-image.h"
#include "vmm/backends/jail/cgroup.h"
#include "vmm/backends/net.h"
#include "vmm/backends/vmfs.h"

/* A state directory with less free space than this is reported as a failure. */
#define STATE_MIN_FREE_BYTES (1ull << 30)
#define MAX_CHECKS 16u

static void add(struct vmm_host_report *r, const char *name, bool ok, char *detail,
                const char *fix)
{
    if (r->n_checks == MAX_CHECKS)
        abort(); /* a programming error: MAX_CHECKS is the number of checks below */
    r->checks[r->n_checks++] = (struct vmm_check){.name = wr_strdup(name),
                                                  .ok = ok,
                                                  .detail = detail,
                                                  .fix = ok ? NULL : wr_strdup(fix)};
}

/* add() with the error's message as the detail. */
static void add_error(struct vmm_host_report *r, const char *name, bool ok, struct wr_error *err,
                      const char *found, const char *fix)
{
    add(r, name, ok, wr_strdup(ok || !err ? found : err->msg), fix);
}

static void check_kvm(struct vmm_host_report *r)
{
    struct stat st;
    bool present = stat("/dev/kvm", &st) == 0 && S_ISCHR(st.st_mode);
    int fd = present ? open("/dev/kvm", O_RDWR | O_CLOEXEC) : -1;
    int open_errno = errno;
    if (fd >= 0)
        close(fd);
    add(r, "kvm-device", fd >= 0,
        !present   ? wr_strdup("/dev/kvm does not exist")
        : fd >= 0  ? wr_strdup("/dev/kvm exists and opens read-write")
                   : wr_asprintf("/dev/kvm exists but does not open: %s", strerror(open_errno)),
        !present ? "load the KVM module (modprobe kvm_intel or kvm_amd), or enable nested "
                   "virtualization for this VM; without KVM only the jail and QEMU under TCG run"
                 : "run warren as root or add its user to the kvm group");
    bool flags = vmm_cpu_has_virtualization();
    add(r, "kvm-cpu", flags,
        wr_strdup(flags ? "the CPU shows hardware virtualization (vmx/svm)"
                        : "the CPU shows neither vmx nor svm in /proc/cpuinfo"),
        "enable VT-x / AMD-V in the firmware, or nested virtualization on the hypervisor "
        "that runs this machine");
    _cleanup_error_ struct wr_error *err = NULL;
    bool usable = vmm_kvm_usable(&err);
    add_error(r, "kvm", usable, err, "KVM runs full VMs here (the VM backends use it)",
              "without KVM, VM sandboxes need --backend qemu (TCG: slow); the jail needs none");
}

static char *qemu_version(const char *binary)
{
    const char *argv[] = {binary, "--version", NULL};
    struct wr_buf out;
    wr_buf_init(&out, 4096);
    int status = 0;
    char *line = NULL;
    if (wr_run(argv, NULL, NULL, &out, &status) == 0 && status == 0 && out.data)
        line = wr_strndup(out.data, strcspn(out.data, "\n"));
    wr_buf_free(&out);
    return line;
}

static void check_vmms(struct vmm_host_report *r)
{
    _cleanup_free_ char *qemu = vmm_qemu_binary();
    _cleanup_free_ char *version = qemu ? qemu_version(qemu) : NULL;
    add(r, "qemu", qemu != NULL,
        qemu ? wr_asprintf("%s (%s)", qemu, version ? version : "version unknown")
             : wr_strdup("qemu-system-x86_64 is not in PATH"),
        "apt-get install --no-install-recommends qemu-system-x86");
    _cleanup_error_ struct wr_error *err = NULL;
    _cleanup_free_ char *ch = vmm_ch_binary(&err);
    add(r, "cloud-hypervisor", ch != NULL, ch ? wr_strdup(ch) : wr_strdup(err->msg),
        "put the cloud-hypervisor release binary in PATH or set $WARREN_CLOUD_HYPERVISOR "
        "(it also needs KVM)");
    bool virtiofsd = access(VMM_VIRTIOFSD_PATH, X_OK) == 0;
    add(r, "virtiofsd", virtiofsd,
        wr_asprintf("%s %s", VMM_VIRTIOFSD_PATH, virtiofsd ? "is installed" : "is missing"),
        "apt-get install --no-install-recommends qemu-system-common (it ships "
        VMM_VIRTIOFSD_PATH ")");
    _cleanup_free_ char *bin = vmm__binary_dir();
    _cleanup_free_ char *kernel_dir = vmm_guest_kernel_dir(bin);
    _cleanup_free_ char *kernel_version = NULL;
    _cleanup_error_ struct wr_error *no_kernel = NULL;
    bool kernel = vmm_guest_kernel_check(kernel_dir, &kernel_version, &no_kernel) == 0;
    add(r, "guest-kernel", kernel,
        kernel ? wr_asprintf("%s (%s)", kernel_dir, kernel_version) : wr_strdup(no_kernel->msg),
        "run fetch-guest-kernel (installed in /usr/libexec/warren; tools/build-guest-kernel.sh in "
        "a checkout) with that directory, or set $WARREN_GUEST_DIR to "
        "where the guest kernel is (the VM backends need it; the jail does not)");
}

static void check_jail(struct vmm_host_report *r)
{
    _cleanup_free_ char *cgroups = NULL;
    _cleanup_error_ struct wr_error *err = NULL;
    bool cgroup_ok = vmm_cgroup_check(&cgroups, &err);
    add(r, "cgroup", cgroup_ok, TAKE_PTR(cgroups),
        "mount the memory, pids (and on v1 freezer) controllers; on cgroup v2 enable them in "
        "the parent's cgroup.subtree_control");
    wr_error_free(TAKE_PTR(err));
    bool root = geteuid() == 0;
    bool userns = vmm_userns_usable(&err);
    add(r, "user-namespaces", userns || root,
        wr_strdup(userns ? "unprivileged user namespaces are allowed"
                  : root ? "unprivileged user namespaces are disabled (not needed as root)"
                         : "unprivileged user namespaces are disabled"),
        "run warren as root, or allow them (sysctl kernel.unprivileged_userns_clone=1, "
        "user.max_user_namespaces > 0)");
    wr_error_free(TAKE_PTR(err));
    bool overlay = vmm_overlay_available(&err);
    add_error(r, "overlayfs", overlay, err, "overlayfs is available", "modprobe overlay");
    wr_error_free(TAKE_PTR(err));
    /* What sandbox_create checks for a sandbox with a network, on the jail. */
    struct vmm_net_policy policy = {.mode = VMM_NET_ALLOW};
    bool net = vmm__net_check("jail", &policy, &err) == 0;
    add_error(r, "network", net, err,
              "slirp4netns and nft are installed (network: true and allow-list sandboxes)",
              geteuid() != 0
                  ? "run warren as root for sandboxes with a network; without it they have "
                    "loopback only"
                  : "apt-get install --no-install-recommends slirp4netns nftables; without them "
                    "sandboxes have loopback only");
    wr_error_free(TAKE_PTR(err));
    bool disk = vmm_disk_available(&err);
    add_error(r, "disk-caps", disk, err,
              "loop devices, ext4 and mkfs.ext4 are there: sandbox disks are capped (disk_mib)",
              "as root: modprobe loop and apt-get install e2fsprogs; otherwise a sandbox's "
              "writes are limited only by the host's free space");
}

static const char *fs_name(unsigned long type)
{
    switch (type) {
    case EXT4_SUPER_MAGIC:
        return "ext4";
    case XFS_SUPER_MAGIC:
        return "xfs";
    case BTRFS_SUPER_MAGIC:
        return "btrfs";
    case TMPFS_MAGIC:
        return "tmpfs";
    case OVERLAYFS_SUPER_MAGIC:
        return "overlayfs";
    case 0x2fc12fc1:
        return "zfs";
    default:
        return NULL;
    }
}

/* The state directory, or the nearest directory above it that exists (it is made on the
 * first start). */
static void check_state_dir(struct vmm_host_report *r, const char *state_dir)
{
    _cleanup_free_ char *dir = wr_strdup(state_dir);
    struct statfs fs = {0};
    while (statfs(dir, &fs) < 0 && strchr(dir, '/') && strcmp(dir, "/") != 0) {
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = 0;
        else
            *slash = 0;
    }
    bool exists = strcmp(dir, state_dir) == 0;
    bool writable = access(dir, W_OK) == 0;
    const char *type = fs_name((unsigned long)fs.f_type);
    char type_hex[32];
    snprintf(type_hex, sizeof(type_hex), "0x%lx", (unsigned long)fs.f_type);
    uint64_t free_bytes = (uint64_t)fs.f_bavail * (uint64_t)fs.f_bsize;
    bool overlay = fs.f_type == OVERLAYFS_SUPER_MAGIC;
    bool ok = writable && !overlay && free_bytes >= STATE_MIN_FREE_BYTES;
    add(r, "state-dir", ok,
        wr_asprintf("%s%s%s%s: %s filesystem, %.1f GiB free%s", state_dir,
                    exists ? "" : " (not made yet; checked ", exists ? "" : dir, exists ? "" : ")",
                    type ? type : type_hex, (double)free_bytes / (1 << 30),
                    writable ? "" : ", not writable by this user"),
        !writable  ? "run warren as a user that can write there, or pick --state-dir"
        : overlay  ? "put the state directory on a filesystem that is not overlayfs (sandbox "
                     "layers are overlay upper directories, which overlayfs cannot hold)"
                   : "free space there, or pick a --state-dir with at least 1 GiB free");
}

static void check_backends(struct vmm_host_report *r)
{
    const struct vmm_backend_ops *const *all = vmm__backends();
    for (size_t i = 0; all[i] && r->n_backends < WR_ARRAY_SIZE(r->backends); i++) {
        _cleanup_error_ struct wr_error *why = NULL;
        struct vmm_backend_verdict *v = &r->backends[r->n_backends++];
        v->name = all[i]->name;
        v->available = all[i]->available(&why);
        v->why = v->available ? NULL : wr_strdup(why ? why->msg : "unavailable");
    }
    const struct vmm_backend_ops *chosen = vmm__backend_auto(&r->reason);
    r->chosen = chosen ? chosen->name : NULL;
}

void vmm_host_report(const char *state_dir, struct vmm_host_report *ret)
{
    *ret = (struct vmm_host_report){.checks = wr_calloc(MAX_CHECKS, sizeof(struct vmm_check))};
    check_kvm(ret);
    check_vmms(ret);
    check_jail(ret);
    check_state_dir(ret, state_dir);
    check_backends(ret);
}

void vmm_host_report_clear(struct vmm_host_report *report)
{
    for (size_t i = 0; i < report->n_checks; i++) {
        free(report->checks[i].name);
        free(report->checks[i].detail);
        free(report->checks[i].fix);
    }
    free(report->checks);
    for (size_t i = 0; i < report->n_backends; i++)
        free(report->backends[i].why);
    free(report->reason);
    *report = (struct vmm_host_report){0};
}
