/* libFuzzer target for the egress proxy's hosts table (vmm/net/proxy.c): arbitrary text
 * as --egress-hosts. Every name of an accepted table is found again. */
#include <stdint.h>
#include <string.h>

#include "vmm/net/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vmm_egress_hosts *h = NULL;
    struct wr_error *err = NULL;
    if (vmm_egress_hosts_parse((const char *)data, size, &h, &err) == 0) {
        const struct sockaddr_storage *a;
        if (vmm_egress_hosts_lookup(h, "", &a) != 0)
            __builtin_trap();
        vmm_egress_hosts_free(h);
    }
    wr_error_free(err);
    return 0;
}
