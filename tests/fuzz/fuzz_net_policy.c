/* libFuzzer target for network policies (vmm/net/policy.c): arbitrary text as the
 * `network` argument of sandbox_create / sandbox_update. What is accepted must print and
 * read back as the same policy, and its names must match themselves. */
#include <stdint.h>
#include <string.h>

#include "vmm/net/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vmm_net_policy p;
    struct wr_error *err = NULL;
    if (vmm_net_policy_parse((const char *)data, size, &p, &err) == 0) {
        char *text = vmm_net_policy_to_text(&p);
        struct vmm_net_policy q;
        struct wr_error *e2 = NULL;
        if (vmm_net_policy_parse(text, strlen(text), &q, &e2) != 0)
            __builtin_trap();
        char *again = vmm_net_policy_to_text(&q);
        if (strcmp(text, again))
            __builtin_trap();
        struct vmm_net_policy only = {.mode = VMM_NET_ALLOW, .allow = p.allow};
        for (size_t i = 0; p.allow && p.allow[i]; i++)
            if (p.allow[i][0] != '*' && !vmm_net_policy_allows(&only, p.allow[i]))
                __builtin_trap();
        free(text);
        free(again);
        vmm_net_policy_clear(&q);
        vmm_net_policy_clear(&p);
    }
    wr_error_free(err);
    /* The same bytes as a host name. */
    char host[VMM_NET_MAX_HOST + 1];
    if (vmm_net_host_normalize((const char *)data, size, host) == 0) {
        char again[VMM_NET_MAX_HOST + 1];
        if (vmm_net_host_normalize(host, strlen(host), again) != 0 || strcmp(host, again))
            __builtin_trap();
    }
    return 0;
}
