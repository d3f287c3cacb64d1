/* What warren needs of the host, asked of the same functions the sandbox manager decides
 * with: `warren doctor` reports them (mcp/cli/doctor.c). Each check is one verdict: ok or
 * not, what was found, and what to do when it fails. Blocking (reads /proc and /sys, runs
 * `qemu-system-x86_64 --version`): not for the server's loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

struct vmm_check {
    char *name;   /* "kvm", "qemu", "cgroup", ... */
    bool ok;      /* false: the feature it backs does not work here */
    char *detail; /* what was found */
    char *fix;    /* what to do when !ok; NULL when ok */
};

struct vmm_backend_verdict {
    const char *name; /* "cloud-hypervisor", "qemu", "jail" */
    bool available;
    char *why; /* NULL when available */
};

struct vmm_host_report {
    struct vmm_check *checks;
    size_t n_checks;
    struct vmm_backend_verdict backends[3]; /* in --backend auto's order of preference */
    size_t n_backends;
    const char *chosen; /* what --backend auto picks; NULL when nothing can run */
    char *reason;       /* why (or why nothing) */
};

/* Checks this host for a server on state_dir. Fills *ret; free it with
 * vmm_host_report_clear. */
void vmm_host_report(const char *state_dir, struct vmm_host_report *ret);
void vmm_host_report_clear(struct vmm_host_report *report);
