/* Pure parsers of what /files receives (files.c): multipart/form-data bodies (RFC 7578
 * over RFC 2046's boundary syntax, the whole body in memory) and query parameters. They
 * allocate nothing and point into the buffers they are given; fuzz_multipart drives them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* At most this many parts (files) in one upload. */
#define E2B_MULTIPART_MAX_PARTS 1024u
/* RFC 2046: a boundary is 1..70 characters. */
#define E2B_MULTIPART_BOUNDARY_MAX 70u
/* A part's header block (Content-Disposition, Content-Type, ...). */
#define E2B_MULTIPART_HEADERS_MAX (16u * 1024u)

struct e2b_part {
    const char *name; /* the form field's name (Content-Disposition name=), not NUL-ended */
    size_t name_len;
    const char *filename; /* filename= as sent (still escaped: see e2b_multipart_filename) */
    size_t filename_len;  /* 0: none */
    const char *data;     /* the part's content */
    size_t len;
};

/* The boundary parameter of a multipart/form-data Content-Type, copied into out
 * (E2B_MULTIPART_BOUNDARY_MAX + 1 bytes). Returns false, with *ret_message, when the
 * media type is another or the boundary is missing, empty, too long or has characters
 * RFC 2046 does not allow. */
bool e2b_multipart_boundary(const char *content_type, char out[E2B_MULTIPART_BOUNDARY_MAX + 1],
                            const char **ret_message);

/* Splits body into its parts (at most max_parts, each in parts[]). 0 with *ret_n, or -1
 * with *ret_message: no opening boundary, a part without the blank line that ends its
 * headers, headers past E2B_MULTIPART_HEADERS_MAX, a part without Content-Disposition
 * form-data and a name, a missing closing boundary, too many parts. Text before the first
 * boundary (the preamble) and after the last (the epilogue) is ignored, as RFC 2046 says. */
int e2b_multipart_parse(const char *body, size_t len, const char *boundary,
                        struct e2b_part *parts, size_t max_parts, size_t *ret_n,
                        const char **ret_message);

/* A part's filename unescaped into out (size bytes, NUL-ended): browsers and undici's
 * FormData send '"', CR and LF as %22, %0D and %0A (WHATWG HTML's form encoding); a
 * backslash-quoted character (RFC 2616 quoted-pair) is taken as itself. Returns false when
 * it does not fit or holds a NUL. */
bool e2b_multipart_filename(const struct e2b_part *p, char *out, size_t size);

/* The value of query parameter name in url (after its '?'), percent-decoded ('+' is a
 * space) into out (size bytes, NUL-ended). 1 found, 0 absent, -1 malformed (a bad %
 * escape, a NUL, longer than size - 1). The first occurrence wins. */
int e2b_query_param(const char *url, const char *name, char *out, size_t size);

/* The home directory of user in an /etc/passwd text (name:password:uid:gid:gecos:home:
 * shell lines), copied into out (size bytes). 1 found, 0 no such user, -1 its home does not
 * fit or is not absolute. */
int e2b_passwd_home(const char *passwd, size_t len, const char *user, char *out, size_t size);
