/* libFuzzer target for /files' parsers (mcp/e2b/multipart.c): the multipart/form-data body
 * reader, the boundary parameter of a Content-Type, filenames, query parameters and the
 * /etc/passwd home lookup. The input's first line is the Content-Type (and the URL), the
 * rest the body. Invariants: every part lies inside the body, in order and without
 * overlap; decoded strings fit and hold no NUL. */
#include <stdint.h>
#include <string.h>

#include "mcp/e2b/multipart.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct e2b_part parts[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t head_len = nl ? (size_t)(nl - data) : size;
    char *head = wr_strndup((const char *)data, head_len);
    const char *body = nl ? (const char *)nl + 1 : (const char *)data + size;
    size_t body_len = (size_t)((const char *)data + size - body);
    /* The body in a buffer of its own size, so that ASan sees any read past it. */
    char *copy = wr_malloc(body_len ? body_len : 1);
    memcpy(copy, body, body_len);

    char boundary[E2B_MULTIPART_BOUNDARY_MAX + 1] = "";
    const char *why = NULL;
    if (e2b_multipart_boundary(head, boundary, &why)) {
        size_t b = strlen(boundary);
        if (b == 0 || b > E2B_MULTIPART_BOUNDARY_MAX)
            __builtin_trap();
    } else if (!why) {
        __builtin_trap();
    }
    /* Parse with the found boundary, or the input's first bytes as one. */
    if (!boundary[0] || why) {
        size_t b = WR_MIN(strlen(head), (size_t)E2B_MULTIPART_BOUNDARY_MAX);
        memcpy(boundary, head, b);
        boundary[b] = 0;
    }
    size_t n = 0;
    why = NULL;
    if (boundary[0] && e2b_multipart_parse(copy, body_len, boundary, parts, WR_ARRAY_SIZE(parts),
                                           &n, &why) == 0) {
        const char *prev_end = copy;
        for (size_t i = 0; i < n; i++) {
            const struct e2b_part *p = &parts[i];
            if (p->data < prev_end || p->data + p->len > copy + body_len || !p->name ||
                p->name < copy || p->name + p->name_len > copy + body_len)
                __builtin_trap();
            prev_end = p->data + p->len;
            char name[256];
            if (e2b_multipart_filename(p, name, sizeof name) && strlen(name) >= sizeof name)
                __builtin_trap();
        }
    } else if (boundary[0] && !why) {
        __builtin_trap();
    }

    char value[128];
    int r = e2b_query_param(head, "path", value, sizeof value);
    if (r == 1 && strlen(value) >= sizeof value)
        __builtin_trap();
    char home[64];
    if (e2b_passwd_home(copy, body_len, "root", home, sizeof home) == 1 &&
        (home[0] != '/' || strlen(home) >= sizeof home))
        __builtin_trap();
    free(copy);
    free(head);
    return 0;
}
