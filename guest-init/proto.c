/* Framing and TLV encoding of the agent protocol (guest-init/PROTOCOL.md). Shared by the
 * static guest-init and the host's vmm/agent.c, so it uses nothing but libc and util. */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "util/util.h"

#define TLV_HEADER_SIZE 6

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void gi_header_encode(const struct gi_frame_header *h, uint8_t out[GI_FRAME_HEADER_SIZE])
{
    put_u32(out, h->length);
    put_u16(out + 4, h->type);
    put_u16(out + 6, h->flags);
    put_u32(out + 8, h->stream);
}

int gi_header_decode(const uint8_t in[GI_FRAME_HEADER_SIZE], struct gi_frame_header *h)
{
    h->length = get_u32(in);
    h->type = get_u16(in + 4);
    h->flags = get_u16(in + 6);
    h->stream = get_u32(in + 8);
    return h->length > GI_FRAME_MAX_PAYLOAD ? -EPROTO : 0;
}

/* Makes room for n more bytes, or sets overflow when the payload would pass the maximum
 * (the writer then ignores further appends, and finish reports it). */
static bool reserve(struct gi_writer *w, size_t n)
{
    if (w->overflow)
        return false;
    if (n > GI_FRAME_MAX_PAYLOAD || w->len - GI_FRAME_HEADER_SIZE > GI_FRAME_MAX_PAYLOAD - n) {
        w->overflow = true;
        return false;
    }
    size_t need = w->len + n;
    if (need <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < need)
        cap *= 2;
    w->data = wr_realloc(w->data, cap);
    w->cap = cap;
    return true;
}

void gi_writer_start(struct gi_writer *w, uint16_t type, uint32_t stream)
{
    /* A writer is reused across frames: its allocation is kept, only its contents reset. */
    w->len = 0;
    w->overflow = false;
    if (w->cap < GI_FRAME_HEADER_SIZE) {
        w->data = wr_realloc(w->data, 256);
        w->cap = 256;
    }
    struct gi_frame_header h = {.length = 0, .type = type, .flags = 0, .stream = stream};
    gi_header_encode(&h, w->data);
    w->len = GI_FRAME_HEADER_SIZE;
}

static void put_tlv_header(struct gi_writer *w, uint16_t tag, uint32_t len)
{
    put_u16(w->data + w->len, tag);
    put_u32(w->data + w->len + 2, len);
    w->len += TLV_HEADER_SIZE;
}

void gi_writer_u64(struct gi_writer *w, uint16_t tag, uint64_t v)
{
    if (!reserve(w, TLV_HEADER_SIZE + 8))
        return;
    put_tlv_header(w, tag, 8);
    put_u32(w->data + w->len, (uint32_t)v);
    put_u32(w->data + w->len + 4, (uint32_t)(v >> 32));
    w->len += 8;
}

void gi_writer_bytes(struct gi_writer *w, uint16_t tag, const void *p, size_t n)
{
    if (n > GI_FRAME_MAX_PAYLOAD || !reserve(w, TLV_HEADER_SIZE + n)) {
        w->overflow = true;
        return;
    }
    put_tlv_header(w, tag, (uint32_t)n);
    if (n)
        memcpy(w->data + w->len, p, n);
    w->len += n;
}

void gi_writer_str(struct gi_writer *w, uint16_t tag, const char *s)
{
    gi_writer_bytes(w, tag, s, strlen(s));
}

void gi_writer_raw(struct gi_writer *w, const void *p, size_t n)
{
    if (!reserve(w, n))
        return;
    if (n)
        memcpy(w->data + w->len, p, n);
    w->len += n;
}

int gi_writer_finish(struct gi_writer *w)
{
    if (w->overflow || w->len < GI_FRAME_HEADER_SIZE)
        return -EMSGSIZE;
    put_u32(w->data, (uint32_t)(w->len - GI_FRAME_HEADER_SIZE));
    return 0;
}

void gi_writer_free(struct gi_writer *w)
{
    free(w->data);
    *w = (struct gi_writer){0};
}

void gi_reader_init(struct gi_reader *r, const void *payload, size_t len)
{
    r->p = payload;
    r->left = len;
}

int gi_reader_next(struct gi_reader *r, struct gi_tlv *t)
{
    if (r->left == 0)
        return 0;
    if (r->left < TLV_HEADER_SIZE)
        return -EPROTO;
    uint32_t len = get_u32(r->p + 2);
    if (len > r->left - TLV_HEADER_SIZE)
        return -EPROTO;
    t->tag = get_u16(r->p);
    t->len = len;
    t->value = r->p + TLV_HEADER_SIZE;
    r->p += TLV_HEADER_SIZE + len;
    r->left -= TLV_HEADER_SIZE + len;
    return 1;
}

int gi_tlv_u64(const struct gi_tlv *t, uint64_t *ret)
{
    if (t->len != 8)
        return -EPROTO;
    *ret = (uint64_t)get_u32(t->value) | (uint64_t)get_u32(t->value + 4) << 32;
    return 0;
}
