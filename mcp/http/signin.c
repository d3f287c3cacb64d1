/* Browser sign-in (see http.h): sessions kept in memory by the listener, named by an
 * HttpOnly, SameSite=Strict cookie; each has a CSRF token that state-changing requests
 * carry in a header. A server restart signs every browser out. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http-internal.h"

#define SESSION_IDLE_MS (12ull * 3600 * 1000)
#define MAX_SIGNINS 256

struct http_signin {
    struct http_signin *next;
    char id[65], csrf[65];
    uint64_t last_used_ms;
};

static bool equal_const_time(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

bool http_server_token_ok(const struct http_server *s, const char *token)
{
    if (!s->token || !token)
        return false;
    if (equal_const_time(token, s->token))
        return true;
    return s->credential_ok && s->credential_ok(s->credential_data, token);
}

bool http_server_bearer_ok(const struct http_server *s, const char *authorization)
{
    if (!s->token || !authorization)
        return false;
    if (http_token_matches(authorization, s->token))
        return true;
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    return s->credential_ok && s->credential_ok(s->credential_data, given);
}

bool http_server_needs_signin(const struct http_server *s)
{
    return s->token != NULL;
}

bool http_cookie_value(const char *header, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    for (const char *p = header; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
            size_t vlen = len - nlen - 1;
            if (vlen >= size)
                return false;
            memcpy(out, p + nlen + 1, vlen);
            out[vlen] = 0;
            return true;
        }
        p = end;
    }
    return false;
}

static void expire(struct http_server *s)
{
    uint64_t now = uv_now(s->loop);
    for (struct http_signin **p = &s->signins; *p;) {
        if (now - (*p)->last_used_ms > SESSION_IDLE_MS) {
            struct http_signin *dead = *p;
            *p = dead->next;
            free(dead);
            s->signin_count--;
        } else
            p = &(*p)->next;
    }
}

int http_signin_create(struct http_server *s, char **ret_set_cookie, char **ret_csrf)
{
    expire(s);
    unsigned char raw[64];
    int r = wr_random_bytes(raw, sizeof(raw));
    if (r < 0)
        return r;
    struct http_signin *in = wr_calloc(1, sizeof(*in));
    wr_hex_encode(raw, 32, in->id);
    wr_hex_encode(raw + 32, 32, in->csrf);
    in->last_used_ms = uv_now(s->loop);
    /* At the cap the least recently used session goes. */
    if (s->signin_count >= MAX_SIGNINS) {
        struct http_signin **oldest = &s->signins;
        for (struct http_signin **p = &s->signins; *p; p = &(*p)->next)
            if ((*p)->last_used_ms < (*oldest)->last_used_ms)
                oldest = p;
        struct http_signin *dead = *oldest;
        *oldest = dead->next;
        free(dead);
        s->signin_count--;
    }
    in->next = s->signins;
    s->signins = in;
    s->signin_count++;
    *ret_set_cookie = wr_asprintf(
        "Set-Cookie: " HTTP_SIGNIN_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict\r\n", in->id);
    *ret_csrf = wr_strdup(in->csrf);
    return 0;
}

static struct http_signin *find(struct http_server *s, const struct http_request *req)
{
    const char *header = http_request_header(req, "cookie");
    char id[80];
    if (!header || !http_cookie_value(header, HTTP_SIGNIN_COOKIE, id, sizeof(id)))
        return NULL;
    expire(s);
    for (struct http_signin *in = s->signins; in; in = in->next)
        if (equal_const_time(in->id, id)) {
            in->last_used_ms = uv_now(s->loop);
            return in;
        }
    return NULL;
}

const char *http_signin_csrf(struct http_server *s, const struct http_request *req)
{
    struct http_signin *in = find(s, req);
    return in ? in->csrf : NULL;
}

const char *http_signin_end(struct http_server *s, const struct http_request *req)
{
    struct http_signin *in = find(s, req);
    if (in)
        for (struct http_signin **p = &s->signins; *p; p = &(*p)->next)
            if (*p == in) {
                *p = in->next;
                free(in);
                s->signin_count--;
                break;
            }
    return "Set-Cookie: " HTTP_SIGNIN_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\r\n";
}

void http__signins_free(struct http_server *s)
{
    while (s->signins) {
        struct http_signin *in = s->signins;
        s->signins = in->next;
        free(in);
    }
    s->signin_count = 0;
}

bool http__signin_allows(struct http_server *s, const struct http_request *req,
                         const char **ret_message)
{
    struct http_signin *in = find(s, req);
    if (!in) {
        *ret_message = "missing or wrong bearer token (or sign in)";
        return false;
    }
    bool safe = req->method == HTTP_GET || req->method == HTTP_HEAD;
    if (safe)
        return true;
    /* SameSite=Strict keeps other sites' requests from carrying the cookie; the CSRF
     * header and the Origin (checked against this server before) make sure of it. */
    const char *csrf = http_request_header(req, "x-csrf-token");
    if (!csrf || !equal_const_time(csrf, in->csrf) || !req->origin) {
        *ret_message = "a signed-in browser's request needs its X-CSRF-Token and Origin";
        return false;
    }
    return true;
}

bool http_request_authenticated(struct http_server *s, const struct http_request *req)
{
    const char *why = NULL;
    return !s->token || http_server_bearer_ok(s, req->authorization) ||
           http__signin_allows(s, req, &why);
}
