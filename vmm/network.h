/* vmm/network.c: a sandbox's network mode at run time. The backends give every sandbox a
 * network namespace of its own and, for NAT, attach slirp4netns at boot; this file adds
 * what the server keeps: the egress proxy of an allow-list sandbox (in its namespace, on
 * the loop), NAT attached to or detached from a running sandbox, and the proxy settings
 * inside (environment, apt). */
#pragma once

#include "vmm-internal.h"

/* The environment entries ("K=V", NULL-terminated; NULL when none) an exec in the sandbox
 * gets for its mode: the proxy variables for an allow-list. */
char **vmm__net_env(const struct store_sandbox *row);

/* Right after a boot (the agent connected): an allow-list sandbox's proxy is opened and
 * apt pointed at it. cb gets an error only when the proxy could not be opened. */
void vmm__net_started(struct vmm *vmm, const struct store_sandbox *row, struct agent_conn *conn,
                      vmm_done_cb cb, void *data);

/* Moves a running (or paused) sandbox from the mode in `row` to `to` at once: NAT
 * detached or attached, the proxy closed, opened or given the new allow-list, the files
 * inside rewritten. row is the sandbox before the change; conn its agent connection. */
void vmm__net_switch(struct vmm *vmm, const struct store_sandbox *row, struct agent_conn *conn,
                     const struct vmm_net_policy *to, vmm_done_cb cb, void *data);

/* After the server starts: proxies of the running allow-list sandboxes opened again. */
void vmm__net_reopen(struct vmm *vmm);

/* A policy the sandbox's backend can carry, or an error saying why not. */
int vmm__net_check(const char *backend, const struct vmm_net_policy *p, struct wr_error **err);
