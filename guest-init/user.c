/* The user an EXEC runs as (the USER tag: an image config's User): "name", "uid",
 * "name:group" or "uid:gid", resolved against the sandbox's own /etc/passwd and
 * /etc/group as Docker does: a name must exist there, a number need not (its group is
 * then 0), and a group given alone overrides the user's. */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest-init.h"

#define MAX_LINE 4096

static bool parse_id(const char *s, size_t n, uint32_t *ret)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX - 1)
        return false;
    *ret = (uint32_t)v;
    return true;
}

int gi_parse_passwd_line(const char *line, struct gi_passwd *ret)
{
    /* name:password:uid:gid:gecos:home:shell (group lines: name:password:gid:members) */
    const char *f[7];
    size_t n[7];
    size_t k = 0;
    const char *p = line;
    while (k < 7) {
        const char *end = strchrnul(p, ':');
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl)
            end = nl;
        f[k] = p;
        n[k++] = (size_t)(end - p);
        if (*end != ':')
            break;
        p = end + 1;
    }
    if (k < 3 || n[0] == 0 || n[0] >= sizeof(ret->name))
        return -1;
    memset(ret, 0, sizeof(*ret));
    memcpy(ret->name, f[0], n[0]);
    if (!parse_id(f[2], n[2], &ret->uid))
        return -1;
    if (k >= 4 && !parse_id(f[3], n[3], &ret->gid))
        ret->gid = 0;
    if (k >= 6 && n[5] < sizeof(ret->home))
        memcpy(ret->home, f[5], n[5]);
    if (k >= 7 && n[6] < sizeof(ret->shell))
        memcpy(ret->shell, f[6], n[6]);
    return 0;
}

/* The entry of file (/etc/passwd or /etc/group) named name, or whose id is id when name
 * is NULL. 0 when found. */
static int lookup(const char *file, const char *name, uint32_t id, struct gi_passwd *ret)
{
    FILE *f = fopen(file, "re");
    if (!f)
        return -1;
    char line[MAX_LINE];
    int r = -1;
    while (r < 0 && fgets(line, sizeof(line), f)) {
        struct gi_passwd e;
        if (gi_parse_passwd_line(line, &e) < 0)
            continue;
        if (name ? !strcmp(e.name, name) : e.uid == id) {
            *ret = e;
            r = 0;
        }
    }
    fclose(f);
    return r;
}

int gi_resolve_user(const char *spec, struct gi_user *ret, const char **why)
{
    memset(ret, 0, sizeof(*ret));
    const char *colon = strchr(spec, ':');
    size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
    char user[64] = "";
    if (ulen == 0 || ulen >= sizeof(user)) {
        *why = "invalid user";
        return -1;
    }
    memcpy(user, spec, ulen);
    struct gi_passwd pw;
    uint32_t id;
    if (parse_id(user, ulen, &id)) {
        ret->uid = id;
        if (lookup("/etc/passwd", NULL, id, &pw) == 0) {
            ret->gid = pw.gid;
            memcpy(ret->home, pw.home, sizeof(ret->home));
            memcpy(ret->shell, pw.shell, sizeof(ret->shell));
        }
    } else if (lookup("/etc/passwd", user, 0, &pw) == 0) {
        ret->uid = pw.uid;
        ret->gid = pw.gid;
        memcpy(ret->home, pw.home, sizeof(ret->home));
        memcpy(ret->shell, pw.shell, sizeof(ret->shell));
    } else {
        *why = "no such user in the sandbox's /etc/passwd";
        return -1;
    }
    if (colon) {
        const char *group = colon + 1;
        struct gi_passwd gr;
        if (parse_id(group, strlen(group), &id))
            ret->gid = id;
        else if (group[0] && lookup("/etc/group", group, 0, &gr) == 0)
            ret->gid = gr.uid; /* a group line's third field is its gid */
        else {
            *why = "no such group in the sandbox's /etc/group";
            return -1;
        }
    }
    return 0;
}

#define NAME_CACHE_SIZE 8
#define NAME_CACHE_MS 1000

void gi_id_name(uint32_t id, bool group, char out[64])
{
    static struct {
        uint32_t id;
        bool group, used;
        uint64_t at;
        char name[64];
    } cache[NAME_CACHE_SIZE];
    static unsigned next;
    uint64_t now = wr_now_ms();
    for (unsigned i = 0; i < NAME_CACHE_SIZE; i++)
        if (cache[i].used && cache[i].id == id && cache[i].group == group &&
            now - cache[i].at < NAME_CACHE_MS) {
            memcpy(out, cache[i].name, 64);
            return;
        }
    struct gi_passwd e;
    if (lookup(group ? "/etc/group" : "/etc/passwd", NULL, id, &e) == 0)
        snprintf(out, 64, "%s", e.name);
    else
        snprintf(out, 64, "%u", id);
    unsigned i = next++ % NAME_CACHE_SIZE;
    cache[i].id = id;
    cache[i].group = group;
    cache[i].used = true;
    cache[i].at = now;
    memcpy(cache[i].name, out, 64);
}

int gi_become_user(const struct gi_user *u)
{
    gid_t gid = u->gid;
    if (setgroups(1, &gid) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0)
        return -errno;
    return 0;
}
