/* Per-sandbox cgroups for the jail backend: `warren/<id>` under the cgroup root.
 *
 * On a unified (v2) host this is one directory with memory.max, pids.max, cpu.max and
 * cgroup.freeze. On a v1 or hybrid host it is one directory in each of the memory, pids,
 * freezer and (best effort) cpu hierarchies. Every function takes the sandbox id (16 hex
 * digits) and finds the directories again from it, so the jailer (which creates them) and
 * the server (which measures, freezes and removes them) share no state but the name. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

struct vmm_cgroup_limits {
    uint64_t memory_bytes; /* 0: no limit */
    uint64_t pids_max;     /* 0: no limit */
    unsigned cpus;         /* CFS quota in whole CPUs; 0: no quota. Best effort. */
};

/* True on a pure cgroup v2 host (/sys/fs/cgroup/cgroup.controllers exists). */
bool vmm_cgroup_is_unified(void);

/* True when the controllers the jail needs are there (v2: memory and pids in
 * cgroup.controllers; v1: the memory, pids and freezer hierarchies; cpu is best effort).
 * *ret_summary (always set, caller frees) names the version and the controllers present
 * and missing; err says what is missing when false. */
bool vmm_cgroup_check(char **ret_summary, struct wr_error **err);

/* Creates the sandbox's cgroup(s) and writes the limits. An existing cgroup of the same
 * id is reused (its limits rewritten). Returns 0 or a negative errno with err set. */
int vmm_cgroup_create(const char *id, const struct vmm_cgroup_limits *limits,
                      struct wr_error **err);
/* Moves pid into every hierarchy of the sandbox's cgroup. */
int vmm_cgroup_add_pid(const char *id, pid_t pid, struct wr_error **err);
/* True when pid is a member of the sandbox's memory (v1) or unified (v2) cgroup. */
bool vmm_cgroup_contains(const char *id, pid_t pid);
/* Memory charged to the sandbox now (v2 memory.current, v1 memory.usage_in_bytes).
 * Returns 0 or -errno (-ENOENT: no such cgroup). */
int vmm_cgroup_memory_usage(const char *id, uint64_t *ret_bytes);
/* CPU time the sandbox's processes used, in microseconds (v2 cpu.stat usage_usec, v1
 * cpuacct.usage where cpu and cpuacct are mounted together). 0 or -errno. */
int vmm_cgroup_cpu_usage(const char *id, uint64_t *ret_usec);
/* Freezes / thaws every process of the sandbox (v2 cgroup.freeze, v1 freezer.state) and
 * waits (bounded, about 1 s) until the kernel reports the new state. */
int vmm_cgroup_freeze(const char *id, struct wr_error **err);
int vmm_cgroup_thaw(const char *id, struct wr_error **err);
/* SIGKILLs every process left in the sandbox's cgroup(s), waits (bounded, about 2 s)
 * until they are empty, and removes the directories. Safe when nothing exists. */
int vmm_cgroup_destroy(const char *id, struct wr_error **err);
