/* libFuzzer target for the ClientHello reader (vmm/net/sni.c): arbitrary bytes as the
 * start of a CONNECT tunnel. A found name is non-empty printable ASCII that fits; every
 * prefix of an input gives MORE or a final answer, never a crash. */
#include <stdint.h>
#include <string.h>

#include "vmm/net/sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[64];
    enum vmm_sni_result r = vmm_sni_read(data, size, name, sizeof(name));
    if (r == VMM_SNI_FOUND) {
        size_t n = strlen(name);
        if (n == 0 || n >= sizeof(name))
            __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (name[i] <= ' ' || name[i] >= 0x7f)
                __builtin_trap();
    }
    if (r < VMM_SNI_TOO_BIG || r > VMM_SNI_FOUND)
        __builtin_trap();
    return 0;
}
