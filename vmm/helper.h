/* Running one of warren's helper processes (`warren __jail`, `warren __vmfs`): a fresh exec
 * of /proc/self/exe that builds something in its own namespaces, prints "<pid>\n" on
 * stdout and exits 0, or prints one line of error text on stderr and exits non-zero. A
 * fresh process keeps that setup single-threaded and away from the server's state. */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "util/util.h"

typedef void (*vmm_helper_cb)(void *data, pid_t pid, struct wr_error *err);

/* Spawns `warren <subcommand> <arg>` detached (own session: a Ctrl-C at the server does
 * not reach what it builds), kills it after timeout_ms. `what` names it in errors ("the
 * jailer"). On success cb runs exactly once, from the loop, after the helper exited and
 * both pipes were drained, with the pid it printed or an error the callee owns. On
 * failure cb never runs and nothing is left running. */
int vmm_helper_run(uv_loop_t *loop, const char *subcommand, const char *arg, uint32_t timeout_ms,
                   const char *what, vmm_helper_cb cb, void *data, struct wr_error **err);

/* The same for a helper that answers with text (at most 4 KiB) on stdout instead of a pid:
 * cb gets it (valid during the call) when the helper exited 0, else an error. */
typedef void (*vmm_helper_output_cb)(void *data, const char *out, size_t len, struct wr_error *err);
int vmm_helper_run_output(uv_loop_t *loop, const char *subcommand, const char *arg,
                          uint32_t timeout_ms, const char *what, vmm_helper_output_cb cb,
                          void *data, struct wr_error **err);
