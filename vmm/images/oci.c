/* OCI images (see oci.h). skopeo talks to registries and writes the layout; bsdtar unpacks
 * layers; this file only reads the layout's JSON and turns whiteouts into overlayfs ones. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "oci.h"

#define MAX_JSON (4u << 20) /* index, manifest or config */
#define MAX_LAYERS 256
#define MAX_DEPTH 256
#define TOOL_OUTPUT_MAX (64u << 10)

void oci_image_clear(struct oci_image *image)
{
    free(image->digest);
    wr_strv_free(image->layers);
    free(image->config_json);
    memset(image, 0, sizeof(*image));
}

static void json_freep(cJSON **j)
{
    cJSON_Delete(*j);
}
#define _cleanup_json_ _cleanup_(json_freep)

/* ---- references ------------------------------------------------------------------------- */

static bool ref_char_ok(char c)
{
    return isalnum((unsigned char)c) || strchr("._-/:@", c);
}

int oci_normalize_ref(const char *ref, char **ret, struct wr_error **err)
{
    size_t n = ref ? strlen(ref) : 0;
    if (n == 0 || n > OCI_MAX_REF)
        return wr_error_set(err, EINVAL, "an image reference has 1 to %d characters", OCI_MAX_REF);
    for (size_t i = 0; i < n; i++)
        if (!ref_char_ok(ref[i]))
            return wr_error_set(err, EINVAL,
                                "invalid image reference '%.100s': only letters, digits and "
                                "'._-/:@' (for example docker.io/library/python:3.12-slim)",
                                ref);
    if (!isalnum((unsigned char)ref[0]) || strstr(ref, "//") || ref[n - 1] == '/')
        return wr_error_set(err, EINVAL,
                            "invalid image reference '%.100s' (for example "
                            "registry.example:5000/team/env:1)",
                            ref);
    /* The first component names a registry when it has a '.' or ':' or is localhost. */
    const char *slash = strchr(ref, '/');
    bool has_registry = slash && (memchr(ref, '.', (size_t)(slash - ref)) ||
                                  memchr(ref, ':', (size_t)(slash - ref)) ||
                                  (slash - ref == 9 && !strncmp(ref, "localhost", 9)));
    const char *path = has_registry ? slash + 1 : ref;
    const char *last = strrchr(path, '/');
    last = last ? last + 1 : path;
    bool tagged = strchr(last, ':') || strchr(path, '@');
    *ret = wr_asprintf("%s%s%s%s", has_registry ? "" : "docker.io/",
                       !has_registry && !strchr(ref, '/') ? "library/" : "", ref,
                       tagged ? "" : ":latest");
    return 0;
}

/* "host[:port]" of a normalized reference; caller frees. */
static char *ref_registry(const char *name)
{
    return wr_strndup(name, strcspn(name, "/"));
}

/* ---- the layout ------------------------------------------------------------------------ */

static char *layout_dir(const char *state_dir)
{
    return wr_asprintf("%s/images/oci", state_dir);
}

static bool digest_valid(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
            return false;
    return true;
}

static char *blob_path(const char *state_dir, const char *digest)
{
    return wr_asprintf("%s/images/oci/blobs/sha256/%s", state_dir, digest + 7);
}

char *oci_layer_dir(const char *state_dir, const char *digest)
{
    return wr_asprintf("%s/images/layers/%s", state_dir, digest + 7);
}

static int read_json(const char *path, cJSON **ret, struct wr_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = wr_read_file(path, MAX_JSON, &text, &len);
    if (r < 0)
        return wr_error_set_errno(err, -r, "reading %s", path);
    *ret = cJSON_ParseWithLength(text, len);
    if (!*ret || !cJSON_IsObject(*ret)) {
        cJSON_Delete(*ret);
        return wr_error_set(err, EINVAL, "%s is not a JSON object", path);
    }
    return 0;
}

static int read_blob_json(const char *state_dir, const char *digest, cJSON **ret,
                          struct wr_error **err)
{
    if (!digest_valid(digest))
        return wr_error_set(err, EINVAL, "the image names an invalid digest '%.80s'",
                            digest ? digest : "");
    _cleanup_free_ char *path = blob_path(state_dir, digest);
    return read_json(path, ret, err);
}

/* One pull or garbage collection at a time on a layout, across threads and processes:
 * skopeo and this file both rewrite index.json. */
static pthread_mutex_t layout_mutex = PTHREAD_MUTEX_INITIALIZER;

static int lock_layout(const char *state_dir, int *ret_fd, struct wr_error **err)
{
    _cleanup_free_ char *dir = layout_dir(state_dir);
    int r = wr_mkdir_p(dir, 0700);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating %s", dir);
    _cleanup_free_ char *lock = wr_path_join(dir, ".lock");
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "opening %s", lock);
    pthread_mutex_lock(&layout_mutex);
    if (flock(fd, LOCK_EX) < 0) {
        pthread_mutex_unlock(&layout_mutex);
        close(fd);
        return wr_error_set_errno(err, errno, "locking %s", lock);
    }
    *ret_fd = fd;
    return 0;
}

static void unlock_layout(int fd)
{
    close(fd);
    pthread_mutex_unlock(&layout_mutex);
}

/* ---- running tools -------------------------------------------------------------------- */

static void tool_line(void *data, const char *text)
{
    const struct oci_pull_request *req = data;
    if (req && req->progress && text[0])
        req->progress(req->data, text);
}

/* Runs argv; a failure carries the tool's last output. */
static int run_tool(const char *const *argv, const struct oci_pull_request *progress,
                    const char *what, struct wr_error **err)
{
    struct wr_buf out;
    wr_buf_init(&out, TOOL_OUTPUT_MAX);
    int status = 0;
    int r = wr_run(argv, tool_line, (void *)progress, &out, &status);
    if (r < 0) {
        wr_buf_free(&out);
        return wr_error_set_errno(err, -r, "%s: running %s (install it: apt-get install %s)", what,
                                  argv[0],
                                  !strcmp(argv[0], "bsdtar") ? "libarchive-tools" : argv[0]);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        wr_buf_free(&out);
        return 0;
    }
    _cleanup_free_ char *text = wr_utf8_sanitize(out.data ? out.data : "", out.len);
    wr_buf_free(&out);
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = 0;
    const char *tail = len > 1500 ? text + len - 1500 : text;
    return wr_error_set(err, EIO, "%s: %s failed: %s", what, argv[0], tail[0] ? tail : "no output");
}

/* ---- pulling ----------------------------------------------------------------------------- */

static bool insecure(const struct oci_pull_request *req)
{
    _cleanup_free_ char *registry = ref_registry(req->name);
    for (size_t i = 0; req->insecure_registries && req->insecure_registries[i]; i++)
        if (!strcmp(req->insecure_registries[i], registry))
            return true;
    return false;
}

static int skopeo_copy(const struct oci_pull_request *req, const char *tag, struct wr_error **err)
{
    _cleanup_free_ char *layout = layout_dir(req->state_dir);
    _cleanup_free_ char *src = wr_asprintf("docker://%s", req->name);
    _cleanup_free_ char *dest = wr_asprintf("oci:%s:%s", layout, tag);
    _cleanup_free_ char *authfile =
        req->auth_file ? wr_asprintf("--src-authfile=%s", req->auth_file) : NULL;
    const char *argv[8];
    size_t k = 0;
    argv[k++] = "skopeo";
    argv[k++] = "copy";
    if (insecure(req))
        argv[k++] = "--src-tls-verify=false";
    if (authfile)
        argv[k++] = authfile;
    argv[k++] = src;
    argv[k++] = dest;
    argv[k] = NULL;
    return run_tool(argv, req, "pulling the image", err);
}

/* The manifest digest that index.json tags with `tag`. */
static int find_tagged(const char *state_dir, const char *tag, char **ret, struct wr_error **err)
{
    _cleanup_free_ char *dir = layout_dir(state_dir);
    _cleanup_free_ char *index_path = wr_path_join(dir, "index.json");
    _cleanup_json_ cJSON *index = NULL;
    if (read_json(index_path, &index, err) < 0)
        return -(*err)->status;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(index, "manifests"))
    {
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(m, "annotations");
        const cJSON *name =
            cJSON_GetObjectItemCaseSensitive(ann, "org.opencontainers.image.ref.name");
        const cJSON *digest = cJSON_GetObjectItemCaseSensitive(m, "digest");
        if (cJSON_IsString(name) && !strcmp(name->valuestring, tag) && cJSON_IsString(digest) &&
            digest_valid(digest->valuestring)) {
            *ret = wr_strdup(digest->valuestring);
            return 0;
        }
    }
    return wr_error_set(err, EIO, "skopeo left no manifest tagged %s in %s", tag, dir);
}

/* The parts of the image config that apply to execs. */
static char *exec_config(const cJSON *config)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(config, "config");
    cJSON *out = cJSON_CreateObject();
    cJSON *env = cJSON_AddArrayToObject(out, "env");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "Env"))
    {
        if (cJSON_IsString(e) && strchr(e->valuestring, '=') && e->valuestring[0] != '=')
            cJSON_AddItemToArray(env, cJSON_CreateString(e->valuestring));
    }
    const char *keys[][2] = {{"WorkingDir", "workdir"}, {"User", "user"}};
    for (size_t i = 0; i < WR_ARRAY_SIZE(keys); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, keys[i][0]);
        cJSON_AddStringToObject(out, keys[i][1], cJSON_IsString(v) ? v->valuestring : "");
    }
    char *text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return text;
}

static int read_manifest(const struct oci_pull_request *req, const char *digest,
                         struct oci_image *ret, struct wr_error **err)
{
    _cleanup_json_ cJSON *manifest = NULL, *config = NULL;
    if (read_blob_json(req->state_dir, digest, &manifest, err) < 0)
        return -(*err)->status;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(manifest, "config");
    const cJSON *cfg_digest = cJSON_GetObjectItemCaseSensitive(cfg, "digest");
    if (read_blob_json(req->state_dir, cJSON_GetStringValue(cfg_digest), &config, err) < 0)
        return -(*err)->status;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(manifest, "layers");
    int n = cJSON_GetArraySize(layers);
    if (!cJSON_IsArray(layers) || n > MAX_LAYERS)
        return wr_error_set(err, EINVAL, "the manifest of %s has no usable layer list", req->name);
    ret->layers = wr_calloc((size_t)n + 1, sizeof(char *));
    ret->size_bytes = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cfg, "size"));
    size_t k = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, layers)
    {
        const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l, "digest"));
        if (!digest_valid(d))
            return wr_error_set(err, EINVAL, "the manifest of %s names an invalid layer digest",
                                req->name);
        ret->layers[k++] = wr_strdup(d);
        double size = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l, "size"));
        ret->size_bytes += size > 0 ? (uint64_t)size : 0;
    }
    ret->digest = wr_strdup(digest);
    ret->config_json = exec_config(config);
    return 0;
}

/* ---- unpacking ------------------------------------------------------------------------- */

static int convert_dir(int dirfd, const char *path, int depth, struct wr_error **err);

/* An OCI whiteout ".wh.<name>" becomes an overlayfs whiteout <name> (a 0/0 character
 * device); ".wh..wh..opq" marks its directory opaque. */
static int convert_entry(int dirfd, const char *name, const char *path, int depth,
                         struct wr_error **err)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return wr_error_set_errno(err, errno, "reading %s/%s", path, name);
    if (!strcmp(name, ".wh..wh..opq")) {
        if (unlinkat(dirfd, name, 0) < 0 ||
            fsetxattr(dirfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
            return wr_error_set_errno(err, errno, "marking %s opaque", path);
        return 0;
    }
    if (!strncmp(name, ".wh.", 4)) {
        const char *hidden = name + 4;
        if (!hidden[0] || strchr(hidden, '/'))
            return wr_error_set(err, EINVAL, "a layer holds a malformed whiteout %s/%s", path,
                                name);
        (void)unlinkat(dirfd, hidden, 0);
        if (unlinkat(dirfd, name, 0) < 0 ||
            mknodat(dirfd, hidden, S_IFCHR | 0000, makedev(0, 0)) < 0)
            return wr_error_set_errno(err, errno, "whiting out %s/%s", path, hidden);
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return 0;
    _cleanup_free_ char *sub_path = wr_path_join(path, name);
    int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return wr_error_set_errno(err, errno, "opening %s", sub_path);
    return convert_dir(sub, sub_path, depth + 1, err);
}

/* Walks a directory (fd taken over). */
static int convert_dir(int fd, const char *path, int depth, struct wr_error **err)
{
    if (depth > MAX_DEPTH) {
        close(fd);
        return wr_error_set(err, ELOOP, "%s: directories nested too deeply", path);
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return wr_error_set_errno(err, errno, "reading %s", path);
    }
    /* Names first: the walk changes the directory it reads. */
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        wr_strv_push(&names, &n, wr_strdup(de->d_name));
    }
    int r = 0;
    for (size_t i = 0; r >= 0 && i < n; i++)
        r = convert_entry(dirfd(d), names[i], path, depth, err);
    wr_strv_free(names);
    closedir(d);
    return r;
}

static int make_tmp(const char *state_dir, char **ret, struct wr_error **err)
{
    char suffix[17];
    uint64_t nonce = 0;
    (void)wr_random_bytes(&nonce, sizeof(nonce));
    wr_hex_encode(&nonce, sizeof(nonce), suffix);
    _cleanup_free_ char *tmp = wr_asprintf("%s/images/tmp/%s", state_dir, suffix);
    int r = wr_mkdir_p(tmp, 0755);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating %s", tmp);
    *ret = TAKE_PTR(tmp);
    return 0;
}

/* Unpacks one layer unless it is unpacked already. A layer directory only appears by
 * rename of a finished one, so its existence means it is complete. */
static int unpack_layer(const struct oci_pull_request *req, const char *digest, size_t index,
                        size_t count, struct wr_error **err)
{
    _cleanup_free_ char *final = oci_layer_dir(req->state_dir, digest);
    struct stat st;
    if (stat(final, &st) == 0)
        return 0;
    _cleanup_free_ char *tmp = NULL;
    if (make_tmp(req->state_dir, &tmp, err) < 0)
        return -(*err)->status;
    _cleanup_free_ char *blob = blob_path(req->state_dir, digest);
    _cleanup_free_ char *message =
        wr_asprintf("unpacking layer %zu of %zu (%.19s)", index + 1, count, digest);
    if (req->progress)
        req->progress(req->data, message);
    /* bsdtar refuses absolute paths, ".." and extracting through symlinks by default. */
    const char *argv[] = {"bsdtar", "-x", "-p", "--numeric-owner", "-f", blob, "-C", tmp, NULL};
    int r = run_tool(argv, NULL, "unpacking a layer", err);
    if (r >= 0) {
        int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = fd < 0 ? wr_error_set_errno(err, errno, "opening %s", tmp)
                   : convert_dir(fd, digest, 0, err);
    }
    if (r >= 0 && rename(tmp, final) < 0 && errno != EEXIST && errno != ENOTEMPTY)
        r = wr_error_set_errno(err, errno, "renaming %s to %s", tmp, final);
    (void)wr_rm_rf(tmp);
    return r;
}

static void sweep_unreferenced(const char *state_dir);

int oci_pull(const struct oci_pull_request *req, struct oci_image *ret, struct wr_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_free_ char *layers_dir = wr_asprintf("%s/images/layers", req->state_dir);
    int r = wr_mkdir_p(layers_dir, 0700);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating %s", layers_dir);
    char tag[33] = "warren-";
    uint64_t nonce = 0;
    (void)wr_random_bytes(&nonce, sizeof(nonce));
    wr_hex_encode(&nonce, sizeof(nonce), tag + 7);
    int lock;
    if (lock_layout(req->state_dir, &lock, err) < 0)
        return -(*err)->status;
    _cleanup_free_ char *digest = NULL;
    r = skopeo_copy(req, tag, err);
    if (r >= 0)
        r = find_tagged(req->state_dir, tag, &digest, err);
    if (r >= 0)
        r = read_manifest(req, digest, ret, err);
    size_t count = ret->layers ? wr_strv_len((const char *const *)ret->layers) : 0;
    for (size_t i = 0; r >= 0 && i < count; i++)
        r = unpack_layer(req, ret->layers[i], i, count, err);
    /* A failed pull leaves no blob or layer that no image of the layout references. */
    if (r < 0)
        sweep_unreferenced(req->state_dir);
    unlock_layout(lock);
    if (r < 0)
        oci_image_clear(ret);
    return r < 0 ? r : 0;
}

/* ---- garbage ----------------------------------------------------------------------------- */

static bool listed(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

static void add_unique(char ***v, size_t *n, const char *s)
{
    if (s && !listed(*v, s))
        wr_strv_push(v, n, wr_strdup(s));
}

/* The blobs (manifest, config, layers) of the kept manifests. */
static char **kept_blobs(const char *state_dir, const char *const *keep)
{
    char **blobs = wr_calloc(1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; keep && keep[i]; i++) {
        cJSON *m = NULL;
        _cleanup_error_ struct wr_error *e = NULL;
        add_unique(&blobs, &n, keep[i]);
        if (read_blob_json(state_dir, keep[i], &m, &e) < 0)
            continue;
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(m, "config");
        add_unique(&blobs, &n,
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "digest")));
        const cJSON *l;
        cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(m, "layers"))
        {
            add_unique(&blobs, &n,
                       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l, "digest")));
        }
        cJSON_Delete(m);
    }
    return blobs;
}

/* The layout's index.json (NULL when unreadable) and its path. */
static cJSON *read_index(const char *state_dir, char **ret_path)
{
    _cleanup_free_ char *dir = layout_dir(state_dir);
    *ret_path = wr_path_join(dir, "index.json");
    cJSON *index = NULL;
    _cleanup_error_ struct wr_error *e = NULL;
    return read_json(*ret_path, &index, &e) < 0 ? NULL : index;
}

/* index.json keeps the descriptors of kept manifests only. */
static void rewrite_index(const char *state_dir, const char *const *keep)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_json_ cJSON *index = read_index(state_dir, &path);
    if (!index)
        return;
    cJSON *manifests = cJSON_GetObjectItemCaseSensitive(index, "manifests");
    for (int i = cJSON_GetArraySize(manifests) - 1; i >= 0; i--) {
        const char *d = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(manifests, i), "digest"));
        if (!d || !listed((char *const *)keep, d))
            cJSON_DeleteItemFromArray(manifests, i);
    }
    char *text = cJSON_PrintUnformatted(index);
    if (text)
        (void)wr_write_file_atomic(path, text, strlen(text), 0644);
    free(text);
}

/* Removes the entries of dir whose digest ("sha256:" + name) is not in keep. */
static void sweep_dir(const char *dir, char *const *keep)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *digest = wr_asprintf("sha256:%s", de->d_name);
        if (listed(keep, digest))
            continue;
        _cleanup_free_ char *path = wr_path_join(dir, de->d_name);
        (void)wr_rm_rf(path);
    }
    if (d)
        closedir(d);
}

/* Removes the blobs and unpacked layers none of keep uses (the layout lock held). */
static void sweep(const char *state_dir, const char *const *keep)
{
    char **blobs = kept_blobs(state_dir, keep);
    _cleanup_free_ char *blob_dir = wr_asprintf("%s/images/oci/blobs/sha256", state_dir);
    _cleanup_free_ char *layer_dir = wr_asprintf("%s/images/layers", state_dir);
    sweep_dir(blob_dir, blobs);
    sweep_dir(layer_dir, blobs);
    wr_strv_free(blobs);
}

static void sweep_unreferenced(const char *state_dir)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_json_ cJSON *index = read_index(state_dir, &path);
    if (!index)
        return;
    char **keep = wr_calloc(1, sizeof(char *));
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(index, "manifests"))
    {
        add_unique(&keep, &n, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "digest")));
    }
    sweep(state_dir, (const char *const *)keep);
    wr_strv_free(keep);
}

void oci_collect_garbage(const char *state_dir, const char *const *keep)
{
    int lock;
    _cleanup_error_ struct wr_error *e = NULL;
    if (lock_layout(state_dir, &lock, &e) < 0)
        return;
    rewrite_index(state_dir, keep);
    sweep(state_dir, keep);
    unlock_layout(lock);
}
