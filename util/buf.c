#include <stdio.h>
#include <string.h>

#include "util.h"

void wr_buf_init(struct wr_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

static int reserve(struct wr_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return -ENOSPC;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1 && need <= b->max + 1)
        cap = b->max + 1; /* never more than the cap allows */
    b->data = wr_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int wr_buf_reserve(struct wr_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -ENOSPC;
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        b->data = wr_realloc(b->data, need);
        b->cap = need;
    }
    return 0;
}

int wr_buf_append(struct wr_buf *b, const void *data, size_t n)
{
    int r = reserve(b, n);
    if (r < 0)
        return r;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int wr_buf_printf(struct wr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int r = reserve(b, (size_t)n);
    if (r < 0)
        return r;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void wr_buf_consume(struct wr_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        if (b->data)
            b->data[0] = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

void wr_buf_reset(struct wr_buf *b)
{
    wr_buf_consume(b, b->len);
}

char *wr_buf_steal(struct wr_buf *b, size_t *ret_len)
{
    char *d = b->data ? b->data : wr_strdup("");
    if (ret_len)
        *ret_len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void wr_buf_free(struct wr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
