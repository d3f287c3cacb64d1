/* Whether hardware virtualization really works here: the VM backends' accelerator choice
 * and --backend auto depend on it. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "backend-internal.h"

/* /proc/cpuinfo's flags show vmx (Intel) or svm (AMD) where the CPU offers hardware
 * virtualization. Some nested hosts (PVM guests) provide a /dev/kvm that answers every
 * ioctl and creates VMs, yet hangs a guest kernel as soon as it enters long mode; their
 * CPUs show neither flag, which is what tells them apart. */
bool vmm_cpu_has_virtualization(void)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (wr_read_file("/proc/cpuinfo", 16 << 20, &text, &len) < 0)
        return false;
    for (const char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        const char *end = strchrnul(line, '\n');
        for (const char *p = line; p < end; p++)
            if ((p[0] == ' ') && (!strncmp(p + 1, "vmx", 3) || !strncmp(p + 1, "svm", 3)) &&
                (p[4] == ' ' || p[4] == '\n' || p[4] == 0))
                return true;
        return false;
    }
    return false;
}

bool vmm_kvm_usable(struct wr_error **err)
{
    const char *forced = getenv("WARREN_QEMU_ACCEL");
    if (forced && !strcmp(forced, "tcg"))
        return wr_error_set(err, ENODEV, "WARREN_QEMU_ACCEL=tcg turns KVM off") && false;
    _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "/dev/kvm") && false;
    if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        return wr_error_set(err, ENODEV, "/dev/kvm speaks another API version") && false;
    if (!vmm_cpu_has_virtualization())
        return wr_error_set(err, ENODEV,
                            "the CPU shows no hardware virtualization (vmx/svm): "
                            "this /dev/kvm cannot run full VMs") &&
               false;
    _cleanup_close_ int vm = ioctl(fd, KVM_CREATE_VM, 0);
    if (vm < 0)
        return wr_error_set_errno(err, errno, "/dev/kvm refuses to create a VM") && false;
    return true;
}
