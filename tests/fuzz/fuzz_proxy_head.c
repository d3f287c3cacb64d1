/* libFuzzer target for the egress proxy's request heads (vmm/net/head.c): arbitrary bytes
 * from a sandbox. An accepted head lies within the input, names a host of bounded length,
 * and its rewritten plain-HTTP head is one head (ends at its only blank line), with no
 * line break inside a line. */
#include <stdint.h>
#include <string.h>

#include "vmm/net/head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vmm_proxy_head h;
    const char *why = NULL;
    int r = vmm_proxy_head_parse((const char *)data, size, &h, &why);
    if (r > 1 && !why)
        __builtin_trap();
    if (r == 1) {
        if (h.head_len > size || h.head_len > VMM_PROXY_MAX_HEAD ||
            strlen(h.host_raw) > VMM_NET_MAX_HOST)
            __builtin_trap();
        if (h.forward) {
            const char *end = strstr(h.forward, "\r\n\r\n");
            if (!end || (size_t)(end - h.forward) + 4 != h.forward_len ||
                strlen(h.forward) != h.forward_len)
                __builtin_trap();
            for (size_t i = 0; i + 1 < h.forward_len; i++)
                if ((h.forward[i] == '\n') != (i > 0 && h.forward[i - 1] == '\r'))
                    __builtin_trap();
        }
        vmm_proxy_head_clear(&h);
    }
    return 0;
}
