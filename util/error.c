#include <stdio.h>
#include <string.h>

#include "util.h"

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    return s;
}

static int set_message(struct wr_error **err, int status, char *msg)
{
    int r = status > 0 ? -status : -1;
    if (!err || *err) {
        free(msg);
        return r;
    }
    *err = wr_malloc(sizeof(**err));
    (*err)->status = status > 0 ? status : EIO;
    (*err)->msg = msg;
    return r;
}

int wr_error_set(struct wr_error **err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    return set_message(err, status, msg);
}

int wr_error_set_errno(struct wr_error **err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = vformat(fmt, ap);
    va_end(ap);
    return set_message(err, status, wr_asprintf("%s: %s", msg, strerror(status)));
}

int wr_error_wrap(struct wr_error **err, const char *fmt, ...)
{
    if (!err || !*err)
        return -EIO;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *ctx = vformat(fmt, ap);
    va_end(ap);
    char *msg = wr_asprintf("%s: %s", ctx, (*err)->msg);
    free((*err)->msg);
    (*err)->msg = msg;
    return -(*err)->status;
}

void wr_error_free(struct wr_error *err)
{
    if (!err)
        return;
    free(err->msg);
    free(err);
}

void wr_error_move(struct wr_error **dst, struct wr_error **src)
{
    if (!*src)
        return;
    if (dst && !*dst)
        *dst = TAKE_PTR(*src);
    else
        wr_error_free(TAKE_PTR(*src));
}

void *wr_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

void *wr_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        abort();
    return p;
}

void *wr_realloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

char *wr_strdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

char *wr_strndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (!d)
        abort();
    return d;
}

char *wr_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

size_t wr_strv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

char **wr_strv_copy(const char *const *v)
{
    size_t n = wr_strv_len(v);
    char **c = wr_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        c[i] = wr_strdup(v[i]);
    return c;
}

void wr_strv_push(char ***v, size_t *n, char *s)
{
    *v = wr_realloc(*v, (*n + 2) * sizeof(char *));
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
}

char *wr_strv_join(const char *const *v, const char *sep)
{
    struct wr_buf b;
    wr_buf_init(&b, SIZE_MAX);
    for (size_t i = 0; v && v[i]; i++)
        wr_buf_printf(&b, "%s%s", i ? sep : "", v[i]);
    wr_buf_append(&b, "", 1);
    return wr_buf_steal(&b, NULL);
}

void wr_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
