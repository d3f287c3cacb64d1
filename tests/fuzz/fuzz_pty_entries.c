/* libFuzzer target for the PTY_LIST result decoder (vmm/agent-lists.c): arbitrary bytes
 * from a sandbox's agent. At most max sessions come out, each command name a terminated
 * string within its buffer; a failed decode says so without writing past the list. */
#include <stdint.h>
#include <string.h>

#include "vmm/agent-lists.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = data[0] % (GI_PTY_MAX + 1);
    struct agent_pty_info list[GI_PTY_MAX + 1];
    memset(list, 0xa5, sizeof(list));
    size_t n = 12345;
    int r = agent_pty_list_decode(data + 1, size - 1, list, max, &n);
    if (r == 0 && n > max)
        __builtin_trap();
    if (r != 0 && r != -EPROTO)
        __builtin_trap();
    /* Nothing past max was written (the 0xa5 fill of the one after it is intact). */
    for (size_t i = 0; i < sizeof(list[max]); i++)
        if (((const uint8_t *)&list[max])[i] != 0xa5)
            __builtin_trap();
    if (r == 0)
        for (size_t i = 0; i < n; i++)
            if (!memchr(list[i].argv0, 0, sizeof(list[i].argv0)))
                __builtin_trap();
    return 0;
}
