/* multipart/form-data and query parameters (see multipart.h). */
#include <string.h>
#include <strings.h>

#include "mcp/http/http.h"
#include "multipart.h"

/* RFC 2046 bchars: DIGIT / ALPHA / "'()+_,-./:=? " (a space only inside). */
static bool boundary_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("'()+_,-./:=? ", ch));
}

static const char *skip_spaces(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* One parameter of a header value ("; key=value" or "; key="quoted""), starting at p.
 * Returns where the next one starts, or NULL when malformed. The value of a quoted string
 * keeps its backslashes (e2b_multipart_filename undoes them). */
static const char *next_param(const char *p, const char *end, const char **key, size_t *key_len,
                              const char **value, size_t *value_len)
{
    p = skip_spaces(p, end);
    *key = p;
    while (p < end && *p != '=' && *p != ';' && *p != ' ' && *p != '\t')
        p++;
    *key_len = (size_t)(p - *key);
    p = skip_spaces(p, end);
    *value = p;
    *value_len = 0;
    if (p < end && *p == '=') {
        p = skip_spaces(p + 1, end);
        if (p < end && *p == '"') {
            *value = ++p;
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end)
                    p++;
                p++;
            }
            if (p >= end)
                return NULL; /* an unclosed quote */
            *value_len = (size_t)(p - *value);
            p++;
        } else {
            *value = p;
            while (p < end && *p != ';' && *p != ' ' && *p != '\t')
                p++;
            *value_len = (size_t)(p - *value);
        }
        p = skip_spaces(p, end);
    }
    if (p < end && *p != ';')
        return NULL;
    return p < end ? p + 1 : p;
}

bool e2b_multipart_boundary(const char *content_type, char out[E2B_MULTIPART_BOUNDARY_MAX + 1],
                            const char **ret_message)
{
    if (!content_type || !http_media_type_is(content_type, "multipart/form-data")) {
        *ret_message = "Content-Type must be multipart/form-data or application/octet-stream";
        return false;
    }
    const char *end = content_type + strlen(content_type);
    const char *p = strchr(content_type, ';');
    while (p && p < end) {
        const char *key, *value;
        size_t key_len, value_len;
        p = next_param(p + (*p == ';'), end, &key, &key_len, &value, &value_len);
        if (!p)
            break;
        if (key_len != 8 || strncasecmp(key, "boundary", 8))
            continue;
        if (value_len == 0 || value_len > E2B_MULTIPART_BOUNDARY_MAX ||
            value[value_len - 1] == ' ')
            break;
        for (size_t i = 0; i < value_len; i++)
            if (!boundary_char(value[i]))
                goto bad;
        memcpy(out, value, value_len);
        out[value_len] = 0;
        return true;
    }
bad:
    *ret_message = "the multipart/form-data Content-Type has no valid boundary";
    return false;
}

/* Reads a part's header block [p, end) for Content-Disposition: form-data's name and
 * filename. */
static int part_headers(const char *p, const char *end, struct e2b_part *part,
                        const char **ret_message)
{
    bool disposition = false;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (!colon) {
            *ret_message = "a multipart header line has no ':'";
            return -1;
        }
        if (colon - p == 19 && !strncasecmp(p, "content-disposition", 19)) {
            const char *v = skip_spaces(colon + 1, line_end);
            const char *semi = v < line_end ? memchr(v, ';', (size_t)(line_end - v)) : NULL;
            const char *type_end = semi ? semi : line_end;
            while (type_end > v && (type_end[-1] == ' ' || type_end[-1] == '\t'))
                type_end--;
            if (type_end - v != 9 || strncasecmp(v, "form-data", 9)) {
                *ret_message = "a part's Content-Disposition is not form-data";
                return -1;
            }
            const char *q = semi ? semi + 1 : line_end;
            while (q < line_end) {
                const char *key, *value;
                size_t key_len, value_len;
                q = next_param(q, line_end, &key, &key_len, &value, &value_len);
                if (!q) {
                    *ret_message = "a part's Content-Disposition is malformed";
                    return -1;
                }
                if (key_len == 4 && !strncasecmp(key, "name", 4)) {
                    part->name = value;
                    part->name_len = value_len;
                } else if (key_len == 8 && !strncasecmp(key, "filename", 8)) {
                    part->filename = value;
                    part->filename_len = value_len;
                }
            }
            disposition = true;
        }
        p = eol ? eol + 2 : end;
    }
    if (!disposition || !part->name) {
        *ret_message = "a part has no Content-Disposition: form-data with a name";
        return -1;
    }
    return 0;
}

int e2b_multipart_parse(const char *body, size_t len, const char *boundary,
                        struct e2b_part *parts, size_t max_parts, size_t *ret_n,
                        const char **ret_message)
{
    size_t blen = strlen(boundary);
    if (blen == 0 || blen > E2B_MULTIPART_BOUNDARY_MAX) {
        *ret_message = "bad multipart boundary";
        return -1;
    }
    /* The delimiter is CRLF "--" boundary; the first one may start the body. */
    char delim[E2B_MULTIPART_BOUNDARY_MAX + 4] = "\r\n--";
    memcpy(delim + 4, boundary, blen);
    size_t dlen = blen + 4;
    const char *end = body + len;
    const char *p;
    if (len >= dlen - 2 && !memcmp(body, delim + 2, dlen - 2))
        p = body + dlen - 2;
    else if ((p = memmem(body, len, delim, dlen)))
        p += dlen;
    else {
        *ret_message = "the multipart body has no boundary line";
        return -1;
    }
    size_t n = 0;
    for (;;) {
        /* p is just past a delimiter: "--" closes, else padding and CRLF open a part. */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            *ret_n = n;
            return 0;
        }
        p = skip_spaces(p, end);
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            *ret_message = "a multipart boundary line does not end with CRLF";
            return -1;
        }
        p += 2;
        if (n == max_parts) {
            *ret_message = "too many parts in the multipart body";
            return -1;
        }
        struct e2b_part *part = &parts[n];
        *part = (struct e2b_part){0};
        const char *headers_end;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            headers_end = p; /* no headers */
        } else {
            size_t window = WR_MIN((size_t)(end - p), (size_t)E2B_MULTIPART_HEADERS_MAX + 4);
            headers_end = memmem(p, window, "\r\n\r\n", 4);
            if (!headers_end) {
                *ret_message = window < (size_t)(end - p)
                                   ? "a part's headers are too long"
                                   : "a part's headers do not end with a blank line";
                return -1;
            }
            headers_end += 2;
        }
        if (part_headers(p, headers_end, part, ret_message) < 0)
            return -1;
        const char *data = headers_end + 2;
        const char *next = memmem(data, (size_t)(end - data), delim, dlen);
        if (!next) {
            *ret_message = "the multipart body ends without its closing boundary";
            return -1;
        }
        part->data = data;
        part->len = (size_t)(next - data);
        n++;
        p = next + dlen;
    }
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

bool e2b_multipart_filename(const struct e2b_part *p, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < p->filename_len; i++) {
        char ch = p->filename[i];
        if (ch == '\\' && i + 1 < p->filename_len) {
            ch = p->filename[++i];
        } else if (ch == '%' && i + 2 < p->filename_len) {
            int hi = hex_value(p->filename[i + 1]), lo = hex_value(p->filename[i + 2]);
            int v = hi << 4 | lo;
            if (hi >= 0 && lo >= 0 && (v == '"' || v == '\r' || v == '\n')) {
                ch = (char)v;
                i += 2;
            }
        }
        if (ch == 0 || o + 1 >= size)
            return false;
        out[o++] = ch;
    }
    if (size == 0)
        return false;
    out[o] = 0;
    return true;
}

int e2b_query_param(const char *url, const char *name, char *out, size_t size)
{
    const char *q = strchr(url, '?');
    if (!q)
        return 0;
    size_t name_len = strlen(name);
    for (const char *p = q + 1; *p;) {
        const char *amp = strchrnul(p, '&');
        const char *hash = memchr(p, '#', (size_t)(amp - p));
        if (hash)
            amp = hash;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        const char *key_end = eq ? eq : amp;
        if ((size_t)(key_end - p) == name_len && !memcmp(p, name, name_len)) {
            size_t o = 0;
            for (const char *v = eq ? eq + 1 : amp; v < amp; v++) {
                char ch = *v;
                if (ch == '+') {
                    ch = ' ';
                } else if (ch == '%') {
                    if (amp - v < 3)
                        return -1;
                    int hi = hex_value(v[1]);
                    int lo = hex_value(v[2]);
                    if (hi < 0 || lo < 0)
                        return -1;
                    ch = (char)(hi << 4 | lo);
                    v += 2;
                }
                if (ch == 0 || o + 1 >= size)
                    return -1;
                out[o++] = ch;
            }
            if (size == 0)
                return -1;
            out[o] = 0;
            return 1;
        }
        if (*amp == '#' || !*amp)
            break;
        p = amp + 1;
    }
    return 0;
}

int e2b_passwd_home(const char *passwd, size_t len, const char *user, char *out, size_t size)
{
    size_t user_len = strlen(user);
    const char *end = passwd + len;
    for (const char *line = passwd; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        const char *field = line;
        const char *fields[7];
        size_t lens[7], k = 0;
        while (k < 7) {
            const char *colon = memchr(field, ':', (size_t)(eol - field));
            const char *field_end = colon ? colon : eol;
            fields[k] = field;
            lens[k++] = (size_t)(field_end - field);
            if (!colon)
                break;
            field = colon + 1;
        }
        if (k >= 6 && lens[0] == user_len && !memcmp(fields[0], user, user_len)) {
            if (lens[5] == 0 || fields[5][0] != '/' || lens[5] >= size ||
                memchr(fields[5], 0, lens[5]))
                return -1;
            memcpy(out, fields[5], lens[5]);
            out[lens[5]] = 0;
            return 1;
        }
        line = eol + 1;
    }
    return 0;
}
