/* libFuzzer target: arbitrary bytes as Cloud Hypervisor API responses on one keep-alive
 * connection. The parser must accept or reject every input without a crash, leak or
 * over-read, and go on after each complete response. */
#include <stddef.h>
#include <stdint.h>

#include "vmm/backends/ch/ch-api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ch_response_parser p;
    ch_response_parser_init(&p);
    const char *in = (const char *)data;
    while (size > 0) {
        ssize_t n = ch_response_parser_feed(&p, in, size);
        if (n <= 0)
            break;
        in += n;
        size -= (size_t)n;
        if (!p.complete)
            break;
        ch_response_parser_next(&p);
    }
    ch_response_parser_free(&p);
    return 0;
}
