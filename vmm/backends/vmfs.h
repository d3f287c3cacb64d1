/* The filesystem side of a VM sandbox, shared by the qemu and cloud-hypervisor backends.
 *
 * `warren __vmfs <dir>/vmfs.json` (the spec as vmm_jail_spec_to_json writes it) runs as a
 * supervisor in a private mount namespace. There it assembles the root tree exactly like the
 * jail does (vmm_mount_root: the image's lowers + the sandbox's upper as an overlay, and for
 * the host image the host's directories as copy-on-write overlays with secrets hidden) and
 * the /workspace overlay (ws_lowers + ws_upper), then runs one virtiofsd per share
 * (tags "root" and "workspace") listening on <dir>/fs-root.sock and <dir>/fs-workspace.sock.
 * It exits when they exit (virtiofsd exits when its VMM disconnects), and the mounts go with
 * its namespace: nothing is ever mounted in the host's namespace.
 *
 * Any binary that may start VM sandboxes (warren, test binaries) dispatches `__vmfs` to
 * vmm_vmfs_main from main(), because vmm_vmfs_start spawns /proc/self/exe. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "backend-internal.h"

/* The virtiofs tags the guest mounts (guest-init's warren.root= / warren.workspace=). */
/* Debian bookworm's C virtiofsd, the one warren starts for the VM backends. */
#define VMM_VIRTIOFSD_PATH "/usr/lib/qemu/virtiofsd"
#define VMM_VMFS_TAG_ROOT "root"
#define VMM_VMFS_TAG_WORKSPACE "workspace"

typedef void (*vmm_vmfs_start_cb)(void *data, pid_t pid, struct wr_error *err);

/* Writes <dir>/vmfs.json and spawns the supervisor (detached: its own session, so it
 * outlives the server like the VMM does). cb runs once, from the loop, when both sockets
 * accept connections (pid = the supervisor's pid), or with an error it then owns (the
 * supervisor's stderr, or a timeout; nothing is left running then). Returns < 0 without
 * calling cb when nothing could be started. */
int vmm_vmfs_start(uv_loop_t *loop, const struct vmm_sandbox_spec *spec, vmm_vmfs_start_cb cb,
                   void *data, struct wr_error **err);

/* The vhost-user socket of share `tag` ("root" or "workspace"): <dir>/fs-<tag>.sock. The
 * caller frees the string. */
char *vmm_vmfs_socket(const struct vmm_sandbox_spec *spec, const char *tag);

/* Kills the supervisor (and with it its virtiofsds and mounts) when pid is still this
 * sandbox's supervisor; pid 0 means "unknown": the supervisor is then found through its
 * pid file <dir>/vmfs.pid. Waits (bounded) until it is gone and removes the sockets. Safe
 * on an already-dead sandbox. */
int vmm_vmfs_stop(const struct vmm_sandbox_spec *spec, pid_t pid, struct wr_error **err);

/* Entry point of the hidden `__vmfs` subcommand (argv[1] == "__vmfs", argv[2] the spec
 * file). Returns the process's exit status. */
int vmm_vmfs_main(int argc, char **argv);

/* True while the supervisor of the sandbox directory dir runs (and with it its
 * virtiofsds: it exits when either does). A VM without it has lost its filesystems. */
bool vmm_vmfs_running(const char *dir);

/* The directory of a pooled VM's workspace share that vmm_vmfs_attach mounts the
 * workspace on; the guest binds /workspace/<it> on /workspace. */
#define VMM_VMFS_ATTACH_DIR "ws"
/* The backends' attach op (backend-internal.h) for VMs whose files vmfs serves: the
 * workspace mounted on VMM_VMFS_ATTACH_DIR of the workspace share in the supervisor's
 * namespace, /etc/hostname and /etc/hosts renamed through the root share. */
int vmm_vmfs_attach(const struct vmm_sandbox_spec *spec, pid_t pid, char **ret_guest_dir,
                    struct wr_error **err);
