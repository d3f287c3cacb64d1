/* libFuzzer target for a directory listing's DIR_ENTRIES decoder (vmm/agent-lists.c):
 * arbitrary bytes from a sandbox's agent, split into frames as they might arrive. The
 * listing never holds more entries than asked for or more bytes than its cap, every name
 * is a NUL-free string within the input, and a cut listing says so. */
#include <stdint.h>
#include <string.h>

#include "vmm/agent-lists.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* The first byte sets the cap on entries, the second where the input splits into two
     * frames: a listing arrives over several. */
    struct agent_dir_list list = {.max = 1 + data[0] % 64};
    size_t split = data[1] % (size - 1);
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    split = split > n ? n : split;
    agent_dir_list_decode(&list, p, split);
    agent_dir_list_decode(&list, p + split, n - split);
    if (list.n > list.max || list.bytes > AGENT_LIST_MAX_BYTES)
        __builtin_trap();
    size_t total = 0;
    for (size_t i = 0; i < list.n; i++) {
        const struct agent_dir_entry *e = &list.entries[i];
        size_t len = strlen(e->path);
        if (len > n || (e->link_target && strlen(e->link_target) >= 4096))
            __builtin_trap();
        total += len + (e->link_target ? strlen(e->link_target) : 0);
    }
    if (total > n)
        __builtin_trap();
    agent_dir_list_clear(&list);
    if (list.n || list.entries || list.bytes)
        __builtin_trap();
    return 0;
}
