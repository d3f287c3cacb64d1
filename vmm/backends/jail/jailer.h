/* The jail backend's setup process ("jailer") and the pieces of it that are tested on
 * their own: the spec file format and the seccomp filter.
 *
 * Contract: `warren __jail <dir>/jail.json` (argv[1] == "__jail", argv[2] the spec written
 * by vmm_jail_spec_to_json). The jailer builds the sandbox and exits: 0 after printing
 * "<host pid of the sandbox's PID 1>\n" on stdout, non-zero after printing one line of
 * error text on stderr. The sandbox lives on without it (reparented to init). Its PID 1 is
 * guest-init, exec'd as `guest-init --jail --listen-fd 3` with fd 3 a listening unix
 * socket bound at spec->agent_socket and stdout/stderr appended to spec->log_path.
 *
 * Any binary that may run as the jailer (warren, and test binaries that start jails)
 * dispatches `__jail` to vmm_jailer_main from main(), because start() spawns
 * /proc/self/exe. */
#pragma once

#include <stddef.h>

#include "vmm/backends/backend-internal.h"

/* The fd number guest-init receives its listening agent socket on. */
#define VMM_JAIL_LISTEN_FD 3

/* Entry point of the hidden `__jail` subcommand. Returns an exit status only for a bad
 * command line; otherwise it ends the process itself with _exit (0 or 1). */
int vmm_jailer_main(int argc, char **argv);

/* Serializes spec as a JSON object; *ret_json is a NUL-terminated string the caller
 * frees. */
int vmm_jail_spec_to_json(const struct vmm_sandbox_spec *spec, char **ret_json,
                          struct wr_error **err);
/* Parses what vmm_jail_spec_to_json wrote into a new spec that owns all its strings;
 * free it with vmm_jail_spec_free. Does not validate (see vmm_jail_spec_validate). */
int vmm_jail_spec_from_json(const char *json, size_t len, struct vmm_sandbox_spec **ret_spec,
                            struct wr_error **err);
/* Reads, parses and validates the spec file at path (the jailer's and vmfs's argv[2]). */
int vmm_jail_spec_load(const char *path, struct vmm_sandbox_spec **ret_spec, struct wr_error **err);
/* Frees a spec returned by vmm_jail_spec_from_json. NULL-safe. */
void vmm_jail_spec_free(struct vmm_sandbox_spec *spec);
/* Checks everything the jailer relies on before any syscall: a 16-hex-digit id, absolute
 * paths without the ',' ':' '\n' characters overlay options cannot carry, sizes within
 * bounds, a valid hostname, an agent socket path that fits sockaddr_un. */
int vmm_jail_spec_validate(const struct vmm_sandbox_spec *spec, struct wr_error **err);

/* Loads the jail's seccomp filter into the calling thread (no_new_privs must already be
 * set): default allow, EPERM for the syscalls that administer the host (modules, mounts,
 * namespaces, keys, bpf, clocks, reboot, ...), the same list on the compat arches (i386
 * and x32 on x86_64), and the process killed for syscalls of any other arch. */
int vmm_seccomp_load(struct wr_error **err);
