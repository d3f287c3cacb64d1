/* Paths as envd takes them: absolute, or relative to the home directory of the user the
 * request acts as (envd resolves "~" and relative paths that way), that user looked up in
 * the sandbox's own /etc/passwd. */
#include <errno.h>
#include <string.h>

#include "e2b-internal.h"
#include "multipart.h"

#define PASSWD_MAX (1u << 20)

struct resolve {
    char *path, *user;
    e2b_path_cb cb;
    void *data;
};

static int finish_path(const char *home, const char *path, char **ret, struct wr_error **err)
{
    _cleanup_free_ char *full = NULL;
    if (path[0] == '/')
        full = wr_strdup(path);
    else if (!strcmp(path, "~"))
        full = wr_strdup(home);
    else
        full = wr_path_join(home, !strncmp(path, "~/", 2) ? path + 2 : path);
    if (vmm_path_check(full, err) < 0)
        return -(*err)->status;
    *ret = TAKE_PTR(full);
    return 0;
}

static void on_passwd(void *data, const char *buf, size_t len, uint64_t file_size,
                      struct wr_error *err)
{
    struct resolve *r = data;
    struct wr_error *e = NULL;
    char home[4097];
    char *full = NULL;
    int found = 0;
    if (err && err->status != ENOENT) {
        e = err;
        err = NULL;
        wr_error_wrap(&e, "reading the sandbox's /etc/passwd");
    } else {
        found = err ? 0 : e2b_passwd_home(buf, len, r->user, home, sizeof home);
        if (found == 0 && !strcmp(r->user, "root")) {
            strcpy(home, "/root");
            found = 1;
        }
        if (found <= 0)
            wr_error_set(&e, EACCES, "user '%.64s' does not exist in the sandbox", r->user);
        else
            finish_path(home, r->path, &full, &e);
    }
    wr_error_free(err);
    r->cb(r->data, full, e);
    free(r->path);
    free(r->user);
    free(r);
}

int e2b_resolve_path(struct mcp_e2b *e, const char *sandbox, const char *user, const char *path,
                     e2b_path_cb cb, void *data, struct wr_error **err)
{
    if (!path || !*path)
        path = "~"; /* envd: an empty path is the home directory */
    if (strlen(path) > 4096)
        return wr_error_set(err, EINVAL, "path is too long (at most 4096 bytes)");
    if (user && (strlen(user) > 64 || !*user))
        return wr_error_set(err, EACCES, "bad user name");
    if (path[0] == '/' && (!user || !strcmp(user, "root"))) {
        char *full = NULL;
        if (finish_path("/root", path, &full, err) < 0)
            return -(*err)->status;
        cb(data, full, NULL);
        return 0;
    }
    struct resolve *r = wr_calloc(1, sizeof *r);
    r->path = wr_strdup(path);
    r->user = wr_strdup(user ? user : "root");
    r->cb = cb;
    r->data = data;
    if (vmm_read_file(e->vmm, sandbox, "/etc/passwd", 0, PASSWD_MAX, on_passwd, r, err) < 0) {
        free(r->path);
        free(r->user);
        free(r);
        return -(*err)->status;
    }
    return 0;
}
