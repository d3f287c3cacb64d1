/* libFuzzer target for the agent protocol's decoders: the input is a stream of frames
 * as a peer might send them; every header is decoded and every payload walked as TLVs,
 * the way guest-init and vmm/agent.c do. */
#include <stddef.h>
#include <stdint.h>

#include "guest-init/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size >= GI_FRAME_HEADER_SIZE) {
        struct gi_frame_header h;
        if (gi_header_decode(data, &h) < 0)
            return 0;
        data += GI_FRAME_HEADER_SIZE;
        size -= GI_FRAME_HEADER_SIZE;
        size_t n = h.length < size ? h.length : size;
        struct gi_reader r;
        struct gi_tlv t;
        uint64_t v;
        gi_reader_init(&r, data, n);
        while (gi_reader_next(&r, &t) > 0) {
            if (gi_tlv_u64(&t, &v) == 0)
                (void)v;
            volatile uint8_t sink = t.len ? t.value[t.len - 1] : 0;
            (void)sink;
        }
        data += n;
        size -= n;
    }
    return 0;
}
