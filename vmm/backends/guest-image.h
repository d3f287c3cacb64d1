/* The boot payload of the VM backends: the guest kernel that tools/build-guest-kernel.sh
 * installed, and an initramfs built here from the static guest-init plus the kernel
 * modules it loads. The initramfs is an uncompressed "newc" cpio (the Debian kernel
 * accepts it as is), cached in the state directory under a key derived from its
 * inputs, so that it is built once and reused by every VM sandbox after that.
 *
 * Initramfs layout:
 *   /init                 guest-init (PID 1 of the VM)
 *   /lib/modules/NAME.ko  each module listed in <kernel_dir>/modules/order
 *   /lib/modules/order    their names in load order, one per line
 *   /dev/console          character device 5:1 (the kernel opens it for init)
 *   /dev /proc /sys /newroot /tmp /run   empty directories guest-init mounts on */
#pragma once

#include "util/util.h"

/* True when binary_dir is the directory `cmake --install` puts warren in (WARREN_BINDIR,
 * /usr/bin in the Debian package): warren then uses the installed files (guest-init in
 * WARREN_LIBEXECDIR, the kernel in WARREN_GUEST_KERNEL_DIR) rather than those next to it
 * in a build tree. */
bool vmm_binary_dir_is_installed(const char *binary_dir);

/* Where the guest kernel lives: $WARREN_GUEST_DIR when set and not empty, else
 * WARREN_GUEST_KERNEL_DIR (/var/lib/warren/kernel) for an installed warren, else
 * <binary_dir>/guest (tools/build-guest-kernel.sh's default output is build/guest, next
 * to build/warren). Returns a new string the caller frees. */
char *vmm_guest_kernel_dir(const char *binary_dir);

/* Checks that kernel_dir holds a complete guest kernel (vmlinuz, VERSION, the modules
 * guest-init loads) the way vmm_guest_image reads it; *ret_version is its VERSION line
 * (caller frees). 0, or -errno with what to do in err. */
int vmm_guest_kernel_check(const char *kernel_dir, char **ret_version, struct wr_error **err);

/* Returns in *ret_kernel <kernel_dir>/vmlinuz and in *ret_initrd the path of an
 * initramfs for guest_init_path and kernel_dir's modules, under
 * <state_dir>/guest/initrd-<key>.cpio. Builds it (temp file + rename) when missing and
 * removes initramfs files of other keys. Blocking file I/O: call it from the thread
 * pool. The caller owns both strings. On failure nothing is returned and err says
 * what is missing ("guest kernel not found in X: run tools/build-guest-kernel.sh"). */
int vmm_guest_image(const char *state_dir, const char *guest_init_path, const char *kernel_dir,
                    char **ret_kernel, char **ret_initrd, struct wr_error **err);
