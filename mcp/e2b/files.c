/* envd's /files: GET answers a file's bytes (read from the sandbox in chunks and streamed),
 * POST writes the files of a multipart/form-data body (parts named "file", each named by
 * its filename or the path parameter) or the one file of an application/octet-stream body,
 * and answers [{name, type: "file", path}]. The query names the path and the user
 * (username=); a signed URL (sandbox.uploadUrl / downloadUrl) carries signature= and
 * signature_expiration= instead of the access token. The upload's whole body is held
 * before the first byte is written (the route's body_max caps it), so a refused or
 * oversized upload writes nothing. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#include "e2b-internal.h"
#include "guest-init/proto.h"
#include "multipart.h"

/* A download is read from the sandbox this much at a time. */
#define READ_CHUNK (16u << 20)
/* ...and waits while more than this is queued for a slow client. */
#define QUEUE_HIGH (16u << 20)
/* The largest file a download serves. */
#define DOWNLOAD_MAX (1ull << 30)

/* ---- the query and the signature -------------------------------------------------------- */

struct files_query {
    char path[4097];
    char user[65];
    char signature[128];
    char expiration[24];
    bool has_path, has_user, has_signature, has_expiration;
};

static int parse_query(const char *url, struct files_query *q, const char **ret_message)
{
    struct {
        const char *name;
        char *out;
        size_t size;
        bool *has;
    } params[] = {
        {"path", q->path, sizeof q->path, &q->has_path},
        {"username", q->user, sizeof q->user, &q->has_user},
        {"signature", q->signature, sizeof q->signature, &q->has_signature},
        {"signature_expiration", q->expiration, sizeof q->expiration, &q->has_expiration},
    };
    for (size_t i = 0; i < WR_ARRAY_SIZE(params); i++) {
        int r = e2b_query_param(url, params[i].name, params[i].out, params[i].size);
        if (r < 0) {
            *ret_message = i == 0 ? "the path parameter is malformed or too long"
                                  : "a query parameter is malformed or too long";
            return -1;
        }
        *params[i].has = r > 0 && params[i].out[0];
    }
    return 0;
}

/* The SDK's signature (src/sandbox/signature.ts): "v1_" + base64(sha256("path:operation:
 * user:token[:expiration]")) without its padding. */
static void signature_for(const struct files_query *q, const char *operation, const char *token,
                          char out[64])
{
    _cleanup_free_ char *raw =
        q->has_expiration ? wr_asprintf("%s:%s:%s:%s:%s", q->has_path ? q->path : "", operation,
                                        q->has_user ? q->user : "", token, q->expiration)
                          : wr_asprintf("%s:%s:%s:%s", q->has_path ? q->path : "", operation,
                                        q->has_user ? q->user : "", token);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)raw, strlen(raw), digest);
    memcpy(out, "v1_", 3);
    wr_base64_encode(digest, sizeof digest, out + 3);
    char *pad = strchr(out, '=');
    if (pad)
        *pad = 0;
}

static bool signature_matches(struct mcp_e2b *e, const char *sandbox, const struct files_query *q,
                              const char *operation)
{
    char token[65], want[64];
    if (!e2b_access_token(e, sandbox, token))
        return true; /* --auth none: sandboxes have no access token */
    signature_for(q, operation, token, want);
    return strlen(want) == strlen(q->signature) &&
           CRYPTO_memcmp(want, q->signature, strlen(want)) == 0;
}

/* The sandbox a signed URL without E2b-Sandbox-Id was made for: the one (by id or name) whose
 * access token signs it. NULL when none does. */
static char *signed_sandbox(struct mcp_e2b *e, const struct files_query *q, const char *operation)
{
    struct vmm_sandbox_info *list = NULL;
    size_t n = 0;
    struct wr_error *err = NULL;
    char token[65];
    if (!e2b_access_token(e, "", token))
        return NULL; /* --auth none: no access tokens, no signatures to tell sandboxes by */
    if (vmm_sandbox_list(e->vmm, &list, &n, &err) < 0) {
        wr_error_free(err);
        return NULL;
    }
    char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!found && signature_matches(e, list[i].row.id, q, operation))
            found = wr_strdup(list[i].row.id);
        else if (!found && signature_matches(e, list[i].row.name, q, operation))
            found = wr_strdup(list[i].row.name);
        vmm_sandbox_info_clear(&list[i]);
    }
    free(list);
    return found;
}

/* X-Access-Token, for a request that carries no signature. */
static bool access_token_ok(struct mcp_e2b *e, const struct http_request *req, const char *sandbox)
{
    char want[65];
    if (!e2b_access_token(e, sandbox, want))
        return true;
    const char *got = http_request_header(req, "x-access-token");
    return got && strlen(got) == 64 && CRYPTO_memcmp(got, want, 64) == 0;
}

/* ---- errors ------------------------------------------------------------------------------ */

/* envd's statuses: 400 bad path, 401 bad user, 404 missing, 507 no space. */
static int status_for(int errno_status)
{
    switch (errno_status < 0 ? -errno_status : errno_status) {
    case ENOENT:
        return 404;
    case EACCES:
        return 401;
    case EPERM:
    case EROFS:
        return 403;
    case ENOSPC:
    case EDQUOT:
        return 507;
    case EFBIG:
        return 413;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
    case EEXIST:
        return 400;
    case ESRCH:
        return 502;
    default:
        return 500;
    }
}

/* Answers (if the client is still there) and records one /files request. */
static void files_finish(struct mcp_e2b *e, struct http_conn *c, const char *sandbox,
                         const char *what, const char *path, uint64_t size, int status,
                         const char *error, uint64_t started_ms)
{
    if (c && error)
        e2b_respond_error(c, status, error);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "path", path ? path : "");
    cJSON_AddNumberToObject(args, "size", (double)size);
    e2b_record(e, sandbox, what, args, error, started_ms, NULL);
}

/* ---- download ------------------------------------------------------------------------------ */

struct download {
    struct mcp_e2b *e;
    struct http_conn *conn; /* NULL once the client is gone */
    char *sandbox, *path;
    uint64_t offset, size, started_ms;
    bool streaming;
    uv_timer_t timer; /* waits for a slow client's queue to drain */
};

static void download_closed(uv_handle_t *h)
{
    struct download *d = h->data;
    free(d->sandbox);
    free(d->path);
    free(d);
}

static void download_end(struct download *d, int status, const char *error)
{
    if (d->conn)
        http_conn_on_close(d->conn, NULL, NULL);
    if (d->streaming && d->conn) {
        if (error)
            http_conn_close(d->conn); /* the body is cut short: the client must not take it */
        else
            http_stream_end(d->conn);
        d->conn = NULL;
    }
    files_finish(d->e, d->conn, d->sandbox, "files read", d->path, d->offset, status, error,
                 d->started_ms);
    uv_close((uv_handle_t *)&d->timer, download_closed);
}

static void download_gone(void *data)
{
    struct download *d = data;
    d->conn = NULL; /* the read in flight (or the timer) ends it */
}

static void read_next(struct download *d);

static void on_read(void *data, const char *buf, size_t len, uint64_t file_size,
                    struct wr_error *err)
{
    struct download *d = data;
    if (err) {
        _cleanup_free_ char *msg =
            err->status == EISDIR ? wr_asprintf("'%s' is a directory", d->path) : NULL;
        download_end(d, status_for(err->status), msg ? msg : err->msg);
        wr_error_free(err);
        return;
    }
    if (!d->conn)
        return download_end(d, 499, "the client went away");
    if (!d->streaming) {
        d->size = file_size;
        if (file_size > DOWNLOAD_MAX) {
            _cleanup_free_ char *msg = wr_asprintf(
                "'%s' is %llu bytes; downloads are at most %llu bytes", d->path,
                (unsigned long long)file_size, (unsigned long long)DOWNLOAD_MAX);
            return download_end(d, 413, msg);
        }
        if (len >= file_size) {
            /* The whole file in one answer, with its Content-Length. */
            struct http_response r = {.status = 200,
                                      .content_type = "application/octet-stream",
                                      .body = buf,
                                      .body_len = len};
            d->offset = len;
            http_conn_on_close(d->conn, NULL, NULL);
            http_respond(TAKE_PTR(d->conn), &r);
            return download_end(d, 200, NULL);
        }
        http_stream_begin(d->conn, 200, "application/octet-stream", NULL);
        d->streaming = true;
    }
    if (len)
        http_stream_write(d->conn, buf, len);
    d->offset += len;
    if (len == 0 || d->offset >= d->size)
        return download_end(d, 200, NULL);
    read_next(d);
}

static void on_timer(uv_timer_t *t)
{
    read_next(t->data);
}

static void read_next(struct download *d)
{
    if (!d->conn)
        return download_end(d, 499, "the client went away");
    if (http_conn_write_queue(d->conn) > QUEUE_HIGH) {
        uv_timer_start(&d->timer, on_timer, 2, 0);
        return;
    }
    struct wr_error *err = NULL;
    if (vmm_read_file(d->e->vmm, d->sandbox, d->path, d->offset, READ_CHUNK, on_read, d, &err) <
        0) {
        download_end(d, status_for(err->status), err->msg);
        wr_error_free(err);
    }
}

static void download_resolved(void *data, char *path, struct wr_error *err)
{
    struct download *d = data;
    if (err) {
        d->path = path;
        download_end(d, status_for(err->status), err->msg);
        wr_error_free(err);
        return;
    }
    free(d->path);
    d->path = path;
    read_next(d);
}

static void download(struct mcp_e2b *e, struct http_conn *c, const char *sandbox,
                     const struct files_query *q, uint64_t started_ms)
{
    struct download *d = wr_calloc(1, sizeof *d);
    d->e = e;
    d->conn = c;
    d->sandbox = wr_strdup(sandbox);
    d->path = wr_strdup(q->path);
    d->started_ms = started_ms;
    uv_timer_init(http_conn_loop(c), &d->timer);
    d->timer.data = d;
    http_conn_on_close(c, download_gone, d);
    struct wr_error *err = NULL;
    if (e2b_resolve_path(e, sandbox, q->has_user ? q->user : NULL, q->path, download_resolved, d,
                         &err) < 0) {
        download_end(d, status_for(err->status), err->msg);
        wr_error_free(err);
    }
}

/* ---- upload -------------------------------------------------------------------------------- */

struct upload_file {
    char *asked; /* the path as the client named it */
    char *path;  /* resolved */
    const char *data;
    size_t len;
};

struct upload {
    struct mcp_e2b *e;
    struct http_conn *conn;
    char *sandbox, *user;
    struct wr_buf body; /* taken from the request: the files point into it */
    struct upload_file *files;
    size_t n, at;     /* files; the one being resolved or written */
    size_t written;   /* bytes of files[at] written so far (large files go in pieces) */
    char *temp;       /* a large file is written here, then renamed over its path */
    char *fail_message; /* why a large file failed, while its partial copy is removed */
    int fail_status;
    uint64_t total, started_ms;
};

static void upload_free(struct upload *u)
{
    for (size_t i = 0; i < u->n; i++) {
        free(u->files[i].asked);
        free(u->files[i].path);
    }
    free(u->files);
    free(u->sandbox);
    free(u->user);
    free(u->temp);
    free(u->fail_message);
    wr_buf_free(&u->body);
    free(u);
}

static void upload_gone(void *data)
{
    struct upload *u = data;
    u->conn = NULL; /* the write in flight finishes; nothing is answered */
}

static void upload_end(struct upload *u, int status, const char *error)
{
    if (u->conn)
        http_conn_on_close(u->conn, NULL, NULL);
    if (!error && u->conn) {
        cJSON *list = cJSON_CreateArray();
        for (size_t i = 0; i < u->n; i++) {
            cJSON *f = cJSON_CreateObject();
            const char *slash = strrchr(u->files[i].path, '/');
            cJSON_AddStringToObject(f, "name", slash ? slash + 1 : u->files[i].path);
            cJSON_AddStringToObject(f, "type", "file");
            cJSON_AddStringToObject(f, "path", u->files[i].path);
            cJSON_AddItemToArray(list, f);
        }
        _cleanup_free_ char *text = cJSON_PrintUnformatted(list);
        cJSON_Delete(list);
        struct http_response r = {.status = 200,
                                  .content_type = "application/json",
                                  .body = text,
                                  .body_len = strlen(text)};
        http_respond(u->conn, &r);
    }
    const char *first = u->n ? (u->files[0].path ? u->files[0].path : u->files[0].asked) : "";
    _cleanup_free_ char *what = u->n > 1 ? wr_asprintf("%s (+%zu more)", first, u->n - 1) : NULL;
    files_finish(u->e, u->conn, u->sandbox, "files write", what ? what : first, u->total, status,
                 error, u->started_ms);
    upload_free(u);
}

static void upload_fail(struct upload *u, struct wr_error *err, const char *context)
{
    _cleanup_free_ char *msg = wr_asprintf("%s: %s", context, err->msg);
    upload_end(u, status_for(err->status), msg);
    wr_error_free(err);
}

static void write_next(struct upload *u);

static void temp_renamed(void *data, struct wr_error *err)
{
    struct upload *u = data;
    if (err)
        return upload_fail(u, err, u->files[u->at].path);
    free(u->temp);
    u->temp = NULL;
    u->at++;
    u->written = 0;
    write_next(u);
}

/* A large file failed half-way: its partial copy is removed before the answer. */
static void temp_removed(void *data, struct wr_error *err)
{
    struct upload *u = data;
    wr_error_free(err); /* best effort: the sandbox may be gone */
    upload_end(u, u->fail_status, u->fail_message);
}

static void piece_written(void *data, uint64_t bytes, struct wr_error *err)
{
    struct upload *u = data;
    struct upload_file *f = &u->files[u->at];
    struct wr_error *e2 = NULL;
    if (err) {
        if (u->temp) {
            /* Leave nothing half-written: drop the partial copy, keep the old file. */
            u->fail_message = wr_asprintf("%s: %s", f->path, err->msg);
            u->fail_status = status_for(err->status);
            wr_error_free(err);
            if (vmm_remove(u->e->vmm, u->sandbox, u->temp, false, temp_removed, u, &e2) < 0) {
                wr_error_free(e2);
                upload_end(u, u->fail_status, u->fail_message);
            }
            return;
        }
        return upload_fail(u, err, f->path);
    }
    u->written += bytes;
    u->total += bytes;
    if (u->temp && u->written < f->len)
        return write_next(u);
    if (u->temp) {
        if (vmm_move(u->e->vmm, u->sandbox, u->temp, f->path, true, temp_renamed, u, &e2) < 0)
            upload_fail(u, e2, f->path);
        return;
    }
    u->at++;
    u->written = 0;
    write_next(u);
}

static void write_next(struct upload *u)
{
    if (u->at == u->n)
        return upload_end(u, 200, NULL);
    struct upload_file *f = &u->files[u->at];
    struct wr_error *err = NULL;
    const char *target = f->path;
    size_t len = f->len;
    uint32_t flags = GI_WRITE_CREATE_DIRS;
    if (f->len > VMM_MAX_FILE_BYTES) {
        /* Too large for one write: pieces appended to a temporary name beside the file,
         * renamed over it at the end. */
        if (!u->temp) {
            uint8_t bytes[8] = {0};
            char rnd[17];
            (void)wr_random_bytes(bytes, sizeof bytes);
            wr_hex_encode(bytes, sizeof bytes, rnd);
            u->temp = wr_asprintf("%s.warren-upload-%s", f->path, rnd);
        } else {
            flags |= GI_WRITE_APPEND;
        }
        target = u->temp;
        len = WR_MIN(f->len - u->written, (size_t)VMM_MAX_FILE_BYTES);
    }
    if (vmm_write_file(u->e->vmm, u->sandbox, target, f->data + u->written, len, 0644, flags,
                       piece_written, u, &err) < 0)
        upload_fail(u, err, f->path);
}

static void resolve_next(struct upload *u);

static void upload_resolved(void *data, char *path, struct wr_error *err)
{
    struct upload *u = data;
    if (err)
        return upload_fail(u, err, u->files[u->at].asked);
    u->files[u->at++].path = path;
    resolve_next(u);
}

/* Every path is resolved (and the user checked) before the first byte is written. */
static void resolve_next(struct upload *u)
{
    if (u->at == u->n) {
        u->at = 0;
        return write_next(u);
    }
    struct wr_error *err = NULL;
    if (e2b_resolve_path(u->e, u->sandbox, u->user, u->files[u->at].asked, upload_resolved, u,
                         &err) < 0)
        upload_fail(u, err, u->files[u->at].asked);
}

/* The files of the body: one for application/octet-stream, the "file" parts of a
 * multipart/form-data body. */
static int upload_files(struct upload *u, const char *content_type, const struct files_query *q,
                        const char **ret_message)
{
    if (content_type && http_media_type_is(content_type, "application/octet-stream")) {
        if (!q->has_path) {
            *ret_message = "an application/octet-stream upload needs the path parameter";
            return -1;
        }
        u->files = wr_calloc(1, sizeof *u->files);
        u->files[0] = (struct upload_file){
            .asked = wr_strdup(q->path), .data = u->body.data, .len = u->body.len};
        u->n = 1;
        return 0;
    }
    char boundary[E2B_MULTIPART_BOUNDARY_MAX + 1];
    if (!e2b_multipart_boundary(content_type, boundary, ret_message))
        return -1;
    _cleanup_free_ struct e2b_part *parts =
        wr_calloc(E2B_MULTIPART_MAX_PARTS, sizeof *parts);
    size_t n = 0;
    if (e2b_multipart_parse(u->body.data ? u->body.data : "", u->body.len, boundary, parts,
                            E2B_MULTIPART_MAX_PARTS, &n, ret_message) < 0)
        return -1;
    u->files = wr_calloc(n ? n : 1, sizeof *u->files);
    for (size_t i = 0; i < n; i++) {
        if (parts[i].name_len != 4 || memcmp(parts[i].name, "file", 4))
            continue; /* envd takes the parts named "file" */
        char name[4097];
        if (parts[i].filename_len && !e2b_multipart_filename(&parts[i], name, sizeof name)) {
            *ret_message = "a part's filename is malformed or too long";
            return -1;
        }
        const char *asked = q->has_path ? q->path : parts[i].filename_len ? name : NULL;
        if (!asked) {
            *ret_message = "a part has no filename and the path parameter is absent";
            return -1;
        }
        u->files[u->n++] = (struct upload_file){
            .asked = wr_strdup(asked), .data = parts[i].data, .len = parts[i].len};
    }
    if (u->n == 0) {
        *ret_message = "the multipart body has no part named \"file\"";
        return -1;
    }
    if (q->has_path && u->n > 1) {
        *ret_message = "several files name their paths in their filenames, not in path";
        return -1;
    }
    return 0;
}

static void upload(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                   const char *sandbox, const struct files_query *q, uint64_t started_ms)
{
    struct upload *u = wr_calloc(1, sizeof *u);
    u->e = e;
    u->conn = c;
    u->sandbox = wr_strdup(sandbox);
    u->user = q->has_user ? wr_strdup(q->user) : NULL;
    u->started_ms = started_ms;
    /* The body moves to the upload: the listener frees the request when the client goes,
     * the writes in flight still read it. */
    u->body = req->body;
    wr_buf_init(&req->body, req->body.max);
    const char *encoding = http_request_header(req, "content-encoding");
    const char *why = NULL;
    if (encoding && strcasecmp(encoding, "identity")) {
        why = "Content-Encoding is not supported on uploads: send the bytes as they are";
    } else if (upload_files(u, http_request_header(req, "content-type"), q, &why) == 0) {
        http_conn_on_close(c, upload_gone, u);
        return resolve_next(u);
    }
    upload_end(u, 400, why);
}

void e2b_files_handle(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                      const char *sandbox)
{
    uint64_t started_ms = wr_now_ms();
    struct files_query q;
    const char *why = NULL;
    bool reading = req->method == HTTP_GET;
    if (!reading && req->method != HTTP_POST)
        return e2b_respond_error(c, 405, "/files takes GET (download) and POST (upload)");
    if (parse_query(req->url, &q, &why) < 0)
        return e2b_respond_error(c, 400, why);
    const char *operation = reading ? "read" : "write";
    _cleanup_free_ char *found = NULL;
    if (q.has_signature) {
        if (q.has_expiration) {
            char *end = NULL;
            long long when = strtoll(q.expiration, &end, 10);
            if (!end || *end || when < wr_unix_time())
                return e2b_respond_error(c, 401, "the signed URL has expired");
        }
        if (!sandbox)
            sandbox = found = signed_sandbox(e, &q, operation);
        if (!sandbox || !signature_matches(e, sandbox, &q, operation))
            return e2b_respond_error(c, 401, "invalid signature");
    } else if (!sandbox) {
        return e2b_respond_error(c, 401, "a /files URL without E2b-Sandbox-Id must be signed");
    } else if (!access_token_ok(e, req, sandbox)) {
        /* The route's check let the request through for a signature it does not carry
         * ("signature=" in another parameter): the access token is needed then. */
        return e2b_respond_error(c, 401, "invalid access token");
    }
    if (!q.has_path && reading)
        return e2b_respond_error(c, 400, "the path parameter is needed");
    if (reading)
        download(e, c, sandbox, &q, started_ms);
    else
        upload(e, c, req, sandbox, &q, started_ms);
}
