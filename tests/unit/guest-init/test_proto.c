/* Unit tests of the agent protocol's framing and TLV encoding (guest-init/proto.c). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "guest-init/proto.h"
#include "test.h"

static void test_header_round_trip(void)
{
    struct gi_frame_header h = {.length = 1234, .type = GI_EXEC, .flags = 0, .stream = 0xdeadbeef};
    uint8_t buf[GI_FRAME_HEADER_SIZE];
    gi_header_encode(&h, buf);
    /* Little-endian on the wire, whatever the host. */
    ASSERT_EQ(buf[0], 1234 & 0xff);
    ASSERT_EQ(buf[1], 1234 >> 8);
    ASSERT_EQ(buf[4], GI_EXEC);
    ASSERT_EQ(buf[8], 0xef);
    ASSERT_EQ(buf[11], 0xde);
    struct gi_frame_header d;
    ASSERT_EQ(gi_header_decode(buf, &d), 0);
    ASSERT_EQ(d.length, 1234u);
    ASSERT_EQ(d.type, GI_EXEC);
    ASSERT_EQ(d.stream, 0xdeadbeefu);
}

static void test_header_oversize(void)
{
    uint8_t buf[GI_FRAME_HEADER_SIZE];
    struct gi_frame_header h = {.length = GI_FRAME_MAX_PAYLOAD, .type = GI_DATA, .stream = 1};
    struct gi_frame_header d;
    gi_header_encode(&h, buf);
    ASSERT_EQ(gi_header_decode(buf, &d), 0);
    h.length = GI_FRAME_MAX_PAYLOAD + 1;
    gi_header_encode(&h, buf);
    ASSERT_EQ(gi_header_decode(buf, &d), -EPROTO);
    h.length = UINT32_MAX;
    gi_header_encode(&h, buf);
    ASSERT_EQ(gi_header_decode(buf, &d), -EPROTO);
}

static void test_tlv_round_trip(void)
{
    struct gi_writer w = {0};
    gi_writer_start(&w, GI_EXEC, 7);
    gi_writer_str(&w, GI_T_ARG, "echo");
    gi_writer_str(&w, GI_T_ARG, "");
    gi_writer_u64(&w, GI_T_TIMEOUT_MS, 0x0102030405060708ull);
    gi_writer_bytes(&w, GI_T_ENV, "A=\0B", 4);
    ASSERT_EQ(gi_writer_finish(&w), 0);
    struct gi_frame_header h;
    ASSERT_EQ(gi_header_decode(w.data, &h), 0);
    ASSERT_EQ(h.type, GI_EXEC);
    ASSERT_EQ(h.stream, 7u);
    ASSERT_EQ(h.length, w.len - GI_FRAME_HEADER_SIZE);
    struct gi_reader r;
    struct gi_tlv t;
    uint64_t v;
    gi_reader_init(&r, w.data + GI_FRAME_HEADER_SIZE, h.length);
    ASSERT_EQ(gi_reader_next(&r, &t), 1);
    ASSERT(t.tag == GI_T_ARG && t.len == 4 && memcmp(t.value, "echo", 4) == 0);
    ASSERT_EQ(gi_tlv_u64(&t, &v), -EPROTO);
    ASSERT_EQ(gi_reader_next(&r, &t), 1);
    ASSERT(t.tag == GI_T_ARG && t.len == 0);
    ASSERT_EQ(gi_reader_next(&r, &t), 1);
    ASSERT_EQ(gi_tlv_u64(&t, &v), 0);
    ASSERT_EQ(v, 0x0102030405060708ull);
    ASSERT_EQ(gi_reader_next(&r, &t), 1);
    ASSERT(t.tag == GI_T_ENV && t.len == 4 && memcmp(t.value, "A=\0B", 4) == 0);
    ASSERT_EQ(gi_reader_next(&r, &t), 0);
    /* A writer is reused: a second frame starts from scratch. */
    gi_writer_start(&w, GI_SYNC, 9);
    ASSERT_EQ(gi_writer_finish(&w), 0);
    ASSERT_EQ(w.len, (size_t)GI_FRAME_HEADER_SIZE);
    gi_writer_free(&w);
}

static void test_tlv_malformed(void)
{
    /* A truncated TLV header. */
    uint8_t short_hdr[5] = {1, 0, 8, 0, 0};
    struct gi_reader r;
    struct gi_tlv t;
    gi_reader_init(&r, short_hdr, sizeof(short_hdr));
    ASSERT_EQ(gi_reader_next(&r, &t), -EPROTO);
    /* A length past the end of the payload. */
    uint8_t too_long[6 + 3] = {1, 0, 4, 0, 0, 0, 'a', 'b', 'c'};
    gi_reader_init(&r, too_long, sizeof(too_long));
    ASSERT_EQ(gi_reader_next(&r, &t), -EPROTO);
    /* A huge length must not wrap the bounds check. */
    uint8_t huge[8] = {1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0};
    gi_reader_init(&r, huge, sizeof(huge));
    ASSERT_EQ(gi_reader_next(&r, &t), -EPROTO);
    /* A good TLV followed by garbage: the first reads, the rest fails. */
    uint8_t mixed[6 + 8 + 2] = {GI_T_PID, 0, 8, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0, 9, 9};
    uint64_t v;
    gi_reader_init(&r, mixed, sizeof(mixed));
    ASSERT_EQ(gi_reader_next(&r, &t), 1);
    ASSERT_EQ(gi_tlv_u64(&t, &v), 0);
    ASSERT_EQ(v, 42u);
    ASSERT_EQ(gi_reader_next(&r, &t), -EPROTO);
    gi_reader_init(&r, NULL, 0);
    ASSERT_EQ(gi_reader_next(&r, &t), 0);
}

static void test_writer_overflow(void)
{
    struct gi_writer w = {0};
    static uint8_t big[GI_FRAME_MAX_PAYLOAD];
    gi_writer_start(&w, GI_DATA, 1);
    gi_writer_raw(&w, big, GI_FRAME_MAX_PAYLOAD);
    ASSERT_EQ(gi_writer_finish(&w), 0);
    ASSERT_EQ(w.len, GI_FRAME_HEADER_SIZE + (size_t)GI_FRAME_MAX_PAYLOAD);
    gi_writer_start(&w, GI_EXEC, 1);
    gi_writer_bytes(&w, GI_T_ARG, big, GI_FRAME_MAX_PAYLOAD - 6);
    ASSERT_EQ(gi_writer_finish(&w), 0);
    gi_writer_u64(&w, GI_T_TIMEOUT_MS, 1); /* one byte too many */
    ASSERT_EQ(gi_writer_finish(&w), -EMSGSIZE);
    gi_writer_start(&w, GI_EXEC, 1);
    gi_writer_bytes(&w, GI_T_ARG, big, SIZE_MAX / 2);
    ASSERT_EQ(gi_writer_finish(&w), -EMSGSIZE);
    gi_writer_free(&w);
}

int main(void)
{
    RUN(test_header_round_trip);
    RUN(test_header_oversize);
    RUN(test_tlv_round_trip);
    RUN(test_tlv_malformed);
    RUN(test_writer_overflow);
    return 0;
}
