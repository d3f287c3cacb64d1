/* A sandbox's network policy, as sandbox_create and sandbox_update take it:
 *
 *   false                              loopback only
 *   true                               outbound NAT (vmm/backends/net.h)
 *   {"allow": [...], "deny": [...]}    HTTP and HTTPS to the named hosts only, through
 *                                      warren's egress proxy (proxy.h); deny wins
 *
 * A name is a DNS host name ("deb.debian.org"), "*.example.org" (any name below
 * example.org, not example.org itself) or "*" (any name). Addresses are not names: an
 * allow-list is for hosts by name, and an IP literal is refused (use true for those). */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "util/util.h"

enum vmm_net_mode {
    VMM_NET_NONE = 0,
    VMM_NET_NAT = 1,
    VMM_NET_ALLOW = 2,
};

#define VMM_NET_MAX_NAMES 256 /* in allow and in deny */
#define VMM_NET_MAX_HOST 253  /* a DNS name's longest text form */

struct vmm_net_policy {
    enum vmm_net_mode mode;
    char **allow, **deny; /* NULL-terminated, normalized; NULL unless mode is ALLOW */
};

void vmm_net_policy_clear(struct vmm_net_policy *p);
/* From the tool argument (a boolean or the object above). */
int vmm_net_policy_from_json(const cJSON *v, struct vmm_net_policy *ret, struct wr_error **err);
/* From stored text (what vmm_net_policy_to_text made, or "true"/"false"). */
int vmm_net_policy_parse(const char *text, size_t len, struct vmm_net_policy *ret,
                         struct wr_error **err);
/* The tool's view (false, true or {"allow": [...], "deny": [...]}); the caller owns it. */
cJSON *vmm_net_policy_to_json(const struct vmm_net_policy *p);
/* Compact JSON text of the same (the caller frees). */
char *vmm_net_policy_to_text(const struct vmm_net_policy *p);
void vmm_net_policy_copy(struct vmm_net_policy *dst, const struct vmm_net_policy *src);

/* Host name normalization: lower case, one trailing dot dropped, checked to be a DNS name
 * and not an address. Writes at most VMM_NET_MAX_HOST + 1 bytes to out. */
int vmm_net_host_normalize(const char *in, size_t len, char out[static VMM_NET_MAX_HOST + 1]);
/* True when the allow-list policy p lets HTTP(S) reach host (normalized). */
bool vmm_net_policy_allows(const struct vmm_net_policy *p, const char *host);
