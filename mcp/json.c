/* A cJSON serializer for big results: strings are escaped by copying runs of plain bytes
 * at once, so a result carrying tens of megabytes of file content costs little more than
 * a memcpy. Output matches cJSON_PrintUnformatted for everything warren sends. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "mcp-internal.h"

/* Plain bytes need no escape in a JSON string: everything but controls, '"' and '\'. */
static bool plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\';
}

/* Length of the run of plain bytes at the start of s. Sixteen bytes at a time with SSE2
 * (every x86-64 has it): a byte needs escaping when it equals '"' or '\\', or when
 * min(byte, 0x1f) == byte, the unsigned test for a control character. */
static size_t plain_run(const char *s, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  ctl = _mm_set1_epi8(0x1f);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                         _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
        int mask = _mm_movemask_epi8(hit);
        if (mask)
            return i + (size_t)__builtin_ctz((unsigned)mask);
    }
#endif
    while (i < n && plain((unsigned char)s[i]))
        i++;
    return i;
}

void mcp__json_append_string(struct wr_buf *b, const char *s, size_t n)
{
    wr_buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        i += plain_run(s + i, n - i);
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        wr_buf_append(b, s + run, i - run);
        switch (c) {
        case '"':
            wr_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            wr_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            wr_buf_append(b, "\\n", 2);
            break;
        case '\r':
            wr_buf_append(b, "\\r", 2);
            break;
        case '\t':
            wr_buf_append(b, "\\t", 2);
            break;
        case '\b':
            wr_buf_append(b, "\\b", 2);
            break;
        case '\f':
            wr_buf_append(b, "\\f", 2);
            break;
        default:
            wr_buf_printf(b, "\\u%04x", c);
            break;
        }
        run = i + 1;
    }
    wr_buf_append(b, s + run, n - run);
    wr_buf_append(b, "\"", 1);
}

size_t mcp__json_string_len(const char *s, size_t n)
{
    size_t len = n + 2;
    for (size_t i = 0; i < n; i++) {
        i += plain_run(s + i, n - i);
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        bool short_escape =
            c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f';
        len += short_escape ? 1 : 5;
    }
    return len;
}

static void append_number(struct wr_buf *b, double d)
{
    if (isnan(d) || isinf(d))
        wr_buf_append(b, "null", 4);
    else if (d == (double)(int64_t)d && fabs(d) < 1e15)
        wr_buf_printf(b, "%lld", (long long)d);
    else
        wr_buf_printf(b, "%.17g", d);
}

void mcp__json_print(struct wr_buf *b, const cJSON *j)
{
    if (cJSON_IsString(j)) {
        size_t n = strlen(j->valuestring);
        wr_buf_reserve(b, n + 2);
        mcp__json_append_string(b, j->valuestring, n);
    } else if (cJSON_IsNumber(j)) {
        append_number(b, j->valuedouble);
    } else if (cJSON_IsTrue(j)) {
        wr_buf_append(b, "true", 4);
    } else if (cJSON_IsFalse(j)) {
        wr_buf_append(b, "false", 5);
    } else if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        bool obj = cJSON_IsObject(j);
        wr_buf_append(b, obj ? "{" : "[", 1);
        for (const cJSON *c = j->child; c; c = c->next) {
            if (c != j->child)
                wr_buf_append(b, ",", 1);
            if (obj) {
                mcp__json_append_string(b, c->string, strlen(c->string));
                wr_buf_append(b, ":", 1);
            }
            mcp__json_print(b, c);
        }
        wr_buf_append(b, obj ? "}" : "]", 1);
    } else if (cJSON_IsRaw(j)) {
        wr_buf_append(b, j->valuestring, strlen(j->valuestring));
    } else {
        wr_buf_append(b, "null", 4);
    }
}
