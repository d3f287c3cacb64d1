/* The ClientHello's server name (see sni.h). The handshake message may span several TLS
 * records: their payloads are joined (up to VMM_SNI_MAX_HELLO) before it is parsed. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sni.h"

#define TLS_HANDSHAKE 22
#define TLS_CLIENT_HELLO 1
#define TLS_MAX_RECORD (16384 + 2048)
#define EXT_SERVER_NAME 0
#define SNI_HOST_NAME 0

/* A bounds-checked reader over a byte range. */
struct rd {
    const uint8_t *p;
    size_t n;
    bool bad;
};

static uint32_t rd_u(struct rd *r, size_t bytes)
{
    if (r->bad || r->n < bytes) {
        r->bad = true;
        return 0;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < bytes; i++)
        v = v << 8 | r->p[i];
    r->p += bytes;
    r->n -= bytes;
    return v;
}

/* A sub-reader over the next len bytes. */
static struct rd rd_sub(struct rd *r, size_t len)
{
    struct rd s = {.p = r->p, .n = len, .bad = r->bad || r->n < len};
    if (s.bad) {
        r->bad = true;
        s.n = 0;
        return s;
    }
    r->p += len;
    r->n -= len;
    return s;
}

/* The ClientHello body (after the 4-byte handshake header). */
static enum vmm_sni_result parse_hello(struct rd *h, char *name, size_t name_size)
{
    rd_u(h, 2);              /* legacy_version */
    rd_sub(h, 32);           /* random */
    size_t sid = rd_u(h, 1); /* legacy_session_id */
    if (sid > 32)
        return VMM_SNI_MALFORMED;
    rd_sub(h, sid);
    size_t suites = rd_u(h, 2);
    if (suites < 2 || suites % 2)
        return VMM_SNI_MALFORMED;
    rd_sub(h, suites);
    size_t comp = rd_u(h, 1);
    if (comp < 1)
        return VMM_SNI_MALFORMED;
    rd_sub(h, comp);
    if (h->bad)
        return VMM_SNI_MALFORMED;
    if (h->n == 0)
        return VMM_SNI_NONE; /* no extensions at all */
    struct rd exts = rd_sub(h, rd_u(h, 2));
    if (h->bad || h->n != 0)
        return VMM_SNI_MALFORMED;
    bool seen = false;
    enum vmm_sni_result result = VMM_SNI_NONE;
    while (exts.n > 0) {
        uint32_t type = rd_u(&exts, 2);
        struct rd ext = rd_sub(&exts, rd_u(&exts, 2));
        if (exts.bad)
            return VMM_SNI_MALFORMED;
        if (type != EXT_SERVER_NAME)
            continue;
        if (seen)
            return VMM_SNI_MALFORMED; /* an extension appears at most once */
        seen = true;
        struct rd list = rd_sub(&ext, rd_u(&ext, 2));
        if (ext.bad || ext.n != 0 || list.n == 0)
            return VMM_SNI_MALFORMED;
        while (list.n > 0) {
            uint32_t kind = rd_u(&list, 1);
            struct rd host = rd_sub(&list, rd_u(&list, 2));
            if (list.bad)
                return VMM_SNI_MALFORMED;
            if (kind != SNI_HOST_NAME || result == VMM_SNI_FOUND)
                continue;
            if (host.n == 0 || host.n >= name_size)
                return VMM_SNI_MALFORMED;
            for (size_t i = 0; i < host.n; i++)
                if (host.p[i] <= ' ' || host.p[i] >= 0x7f)
                    return VMM_SNI_MALFORMED;
            memcpy(name, host.p, host.n);
            name[host.n] = 0;
            result = VMM_SNI_FOUND;
        }
    }
    return result;
}

enum vmm_sni_result vmm_sni_read(const uint8_t *buf, size_t len, char *name, size_t name_size)
{
    /* Join the handshake records' payloads until the message is whole. */
    uint8_t *msg = NULL;
    size_t have = 0, need = 0; /* need: 4 + the message's length, once known */
    enum vmm_sni_result result = VMM_SNI_MORE;
    size_t off = 0;
    while (result == VMM_SNI_MORE) {
        if (len - off < 5) {
            if (off >= VMM_SNI_MAX_HELLO)
                result = VMM_SNI_TOO_BIG;
            else if (len > off && buf[off] != TLS_HANDSHAKE)
                result = VMM_SNI_NOT_TLS;
            break;
        }
        const uint8_t *rec = buf + off;
        size_t rlen = (size_t)rec[3] << 8 | rec[4];
        if (rec[0] != TLS_HANDSHAKE || rec[1] != 3) {
            result = VMM_SNI_NOT_TLS;
            break;
        }
        if (rlen == 0 || rlen > TLS_MAX_RECORD) {
            result = VMM_SNI_MALFORMED;
            break;
        }
        if (off + 5 + rlen > VMM_SNI_MAX_HELLO) {
            result = VMM_SNI_TOO_BIG;
            break;
        }
        if (len - off - 5 < rlen)
            break; /* the record is not complete yet */
        msg = realloc(msg, have + rlen);
        if (!msg)
            abort();
        memcpy(msg + have, rec + 5, rlen);
        have += rlen;
        off += 5 + rlen;
        if (have >= 4 && need == 0) {
            if (msg[0] != TLS_CLIENT_HELLO) {
                result = VMM_SNI_NOT_TLS;
                break;
            }
            need = 4 + ((size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3]);
            if (need > VMM_SNI_MAX_HELLO) {
                result = VMM_SNI_TOO_BIG;
                break;
            }
        }
        if (need && have >= need) {
            struct rd h = {.p = msg + 4, .n = need - 4};
            result = parse_hello(&h, name, name_size);
        }
    }
    free(msg);
    return result;
}
