/* The jail's seccomp filter: a deny list on top of namespaces, capabilities and
 * no_new_privs. It closes the kernel interfaces that administer the whole host or have a
 * long record of privilege-escalation bugs, the same way Docker's default profile does,
 * but as a deny list so that ordinary programs never meet a surprise ENOSYS. */
#include <errno.h>
#include <seccomp.h>
#include <string.h>

#include "jailer.h"

static void seccomp_releasep(scmp_filter_ctx *ctx)
{
    if (*ctx)
        seccomp_release(*ctx);
}
#define _cleanup_seccomp_ _cleanup_(seccomp_releasep)

static const char *const denied_syscalls[] = {
    /* kernel code and images */
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "lookup_dcookie",
    "uselib",
    "nfsservctl",
    /* the kernel keyring is not namespaced */
    "keyctl",
    "add_key",
    "request_key",
    /* mounts: the jail's mount table is final once guest-init runs */
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    /* namespaces: no nested sandboxes that could undo the jail's view */
    "unshare",
    "setns",
    /* host-wide state */
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "vhangup",
    "iopl",
    "ioperm",
    /* file handles bypass the mount namespace (the "shocker" escape) */
    "open_by_handle_at",
    "name_to_handle_at",
    /* userfaultfd widens kernel race windows; process_vm_writev pokes other processes */
    "userfaultfd",
    "process_vm_writev",
    /* io_uring performs operations this filter never sees and has had a run of privilege
     * escalations; Docker's default profile blocks it too */
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
};

/* personality(2) may only query (0xffffffff): every change is refused, including the
 * harmless ones (PER_LINUX, PER_LINUX32) that Docker's profile allows, because libseccomp
 * cannot express "a0 is none of these values" in one rule and the dangerous flags
 * (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO) matter more than `setarch`. */
#define PERSONALITY_QUERY 0xffffffffUL

static int deny(scmp_filter_ctx ctx, const char *name, struct wr_error **err)
{
    int nr = seccomp_syscall_resolve_name(name);
    /* A syscall this libseccomp or arch does not know cannot be called anyway. */
    if (nr == __NR_SCMP_ERROR)
        return 0;
    int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (r < 0)
        return wr_error_set_errno(err, -r, "seccomp: denying %s", name);
    return 0;
}

static int deny_personality(scmp_filter_ctx ctx, struct wr_error **err)
{
    int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                             SCMP_A0(SCMP_CMP_NE, PERSONALITY_QUERY));
    if (r < 0)
        return wr_error_set_errno(err, -r, "seccomp: restricting personality");
    return 0;
}

/* Adds the 32-bit arches whose syscalls a 64-bit kernel also accepts, so that the deny
 * list applies to them too instead of being bypassed by `int 0x80`. */
static int add_compat_arches(scmp_filter_ctx ctx, struct wr_error **err)
{
    uint32_t native = seccomp_arch_native();
    uint32_t compat[2] = {0, 0};
    if (native == SCMP_ARCH_X86_64) {
        compat[0] = SCMP_ARCH_X86;
        compat[1] = SCMP_ARCH_X32;
    } else if (native == SCMP_ARCH_AARCH64) {
        compat[0] = SCMP_ARCH_ARM;
    }
    for (size_t i = 0; i < WR_ARRAY_SIZE(compat) && compat[i]; i++) {
        int r = seccomp_arch_add(ctx, compat[i]);
        if (r < 0 && r != -EEXIST)
            return wr_error_set_errno(err, -r, "seccomp: adding arch %u", compat[i]);
    }
    return 0;
}

int vmm_seccomp_load(struct wr_error **err)
{
    _cleanup_seccomp_ scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return wr_error_set(err, ENOMEM, "seccomp: seccomp_init failed");
    /* Any arch not added below is outside everything this filter reasons about. */
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (r < 0)
        return wr_error_set_errno(err, -r, "seccomp: setting the bad-arch action");
    r = add_compat_arches(ctx, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < WR_ARRAY_SIZE(denied_syscalls); i++) {
        r = deny(ctx, denied_syscalls[i], err);
        if (r < 0)
            return r;
    }
    r = deny_personality(ctx, err);
    if (r < 0)
        return r;
    r = seccomp_load(ctx);
    if (r < 0)
        return wr_error_set_errno(err, -r, "seccomp: loading the filter");
    return 0;
}
