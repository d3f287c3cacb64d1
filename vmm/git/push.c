/* Pushing a branch to a remote (see gitpush.h). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <git2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>

#include "git-internal.h"
#include "push.h"

#define MAX_KNOWN_HOSTS_BYTES (16u << 20)
#define MAX_KEY_FILE_BYTES (64u << 10)
#define MAX_METHODS 8

/* ---- known_hosts ------------------------------------------------------------------------ */

/* The name known_hosts stores for host:port, as ssh writes it: "host" on port 22, else
 * "[host]:port"; lowercase, because ssh lowercases names before hashing and matching. */
static char *known_hosts_name(const char *host, int port)
{
    char *lower = wr_strdup(host);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (port == 22)
        return lower;
    char *name = wr_asprintf("[%s]:%d", lower, port);
    free(lower);
    return name;
}

/* OpenSSH's patterns: '*' and '?' only, case-insensitive ('[' is a literal: "[host]:port"). */
static bool glob_match(const char *pattern, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++, s++) {
        if (pattern[i] == '*') {
            for (;; s++) {
                if (glob_match(pattern + i + 1, n - i - 1, s))
                    return true;
                if (!*s)
                    return false;
            }
        }
        if (!*s || (pattern[i] != '?' && tolower((unsigned char)pattern[i]) != *s))
            return false;
    }
    return !*s;
}

/* "|1|base64(salt)|base64(HMAC-SHA1(salt, name))": ssh's HashKnownHosts form. */
static bool hashed_name_matches(const char *entry, size_t n, const char *name)
{
    const char *salt64 = entry + 3, *end = entry + n;
    const char *bar = memchr(salt64, '|', (size_t)(end - salt64));
    if (!bar || bar - salt64 > 80 || end - bar - 1 > 80)
        return false;
    unsigned char salt[64], hash[64], mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    ssize_t salt_len = wr_base64_decode(salt64, (size_t)(bar - salt64), salt);
    ssize_t hash_len = wr_base64_decode(bar + 1, (size_t)(end - bar - 1), hash);
    if (salt_len <= 0 || hash_len != SHA_DIGEST_LENGTH)
        return false;
    if (!HMAC(EVP_sha1(), salt, (int)salt_len, (const unsigned char *)name, strlen(name), mac,
              &mac_len))
        return false;
    return mac_len == SHA_DIGEST_LENGTH && CRYPTO_memcmp(mac, hash, mac_len) == 0;
}

/* The host field of a line: 1 when it names the host, 0 when not, -1 when a !negated
 * pattern names it (which rules the whole line out, as in OpenSSH). */
static int host_field_matches(const char *field, size_t n, const char *name)
{
    if (n > 3 && !memcmp(field, "|1|", 3))
        return hashed_name_matches(field, n, name);
    int result = 0;
    for (const char *p = field, *end = field + n; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t len = (size_t)((comma ? comma : end) - p);
        bool negated = len > 0 && *p == '!';
        if (len > 0 && glob_match(p + negated, len - negated, name)) {
            if (negated)
                return -1;
            result = 1;
        }
        p += len + 1;
    }
    return result;
}

struct known_host_line {
    bool revoked, cert_authority;
    const char *hosts, *type, *key64;
    size_t hosts_len, type_len, key64_len;
};

/* Cuts the next blank-separated field of [*p, end). */
static bool next_field(const char **p, const char *end, const char **ret, size_t *ret_len)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
    *ret = *p;
    while (*p < end && **p != ' ' && **p != '\t')
        (*p)++;
    *ret_len = (size_t)(*p - *ret);
    return *ret_len > 0;
}

/* [@marker] hosts keytype base64-key [comment] */
static bool parse_line(const char *p, const char *end, struct known_host_line *ret)
{
    *ret = (struct known_host_line){0};
    if (!next_field(&p, end, &ret->hosts, &ret->hosts_len) || ret->hosts[0] == '#')
        return false;
    if (ret->hosts[0] == '@') {
        ret->revoked = ret->hosts_len == 8 && !memcmp(ret->hosts, "@revoked", 8);
        ret->cert_authority = !ret->revoked;
        if (!next_field(&p, end, &ret->hosts, &ret->hosts_len))
            return false;
    }
    return next_field(&p, end, &ret->type, &ret->type_len) &&
           next_field(&p, end, &ret->key64, &ret->key64_len);
}

static bool line_holds_key(const struct known_host_line *l, const void *key, size_t key_len)
{
    _cleanup_free_ unsigned char *decoded = wr_malloc(3 * (l->key64_len / 4) + 3);
    ssize_t n = wr_base64_decode(l->key64, l->key64_len, decoded);
    return n >= 0 && (size_t)n == key_len && !memcmp(decoded, key, key_len);
}

/* The key's algorithm: the first string of the SSH wire format (uint32 length, bytes). */
static size_t key_type(const unsigned char *key, size_t key_len, const char **ret)
{
    if (key_len < 4)
        return 0;
    size_t n = (size_t)key[0] << 24 | (size_t)key[1] << 16 | (size_t)key[2] << 8 | key[3];
    *ret = (const char *)key + 4;
    return n <= key_len - 4 ? n : 0;
}

/* Which verdict wins when several lines speak: a revocation, then a match, then a
 * mismatch (another line may hold the new key), then nothing. */
static int verdict_rank(enum gitpush_host_key v)
{
    static const int ranks[] = {[GITPUSH_HOST_KEY_UNKNOWN] = 0,
                                [GITPUSH_HOST_KEY_MISMATCH] = 1,
                                [GITPUSH_HOST_KEY_MATCH] = 2,
                                [GITPUSH_HOST_KEY_REVOKED] = 3};
    return ranks[v];
}

static enum gitpush_host_key judge_line(const struct known_host_line *l, const char *name,
                                        const void *key, size_t key_len)
{
    const char *type = NULL;
    size_t type_len = key_type(key, key_len, &type);
    if (l->cert_authority || host_field_matches(l->hosts, l->hosts_len, name) <= 0)
        return GITPUSH_HOST_KEY_UNKNOWN;
    if (line_holds_key(l, key, key_len))
        return l->revoked ? GITPUSH_HOST_KEY_REVOKED : GITPUSH_HOST_KEY_MATCH;
    /* A key of another type for the same host is no evidence against this one. */
    bool same_type = type_len == l->type_len && !memcmp(type, l->type, type_len);
    return same_type && !l->revoked ? GITPUSH_HOST_KEY_MISMATCH : GITPUSH_HOST_KEY_UNKNOWN;
}

enum gitpush_host_key gitpush_known_hosts_check(const char *text, const char *host, int port,
                                                const void *key, size_t key_len, size_t *ret_line)
{
    _cleanup_free_ char *name = known_hosts_name(host, port);
    enum gitpush_host_key verdict = GITPUSH_HOST_KEY_UNKNOWN;
    size_t line_no = 0, decided = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
        struct known_host_line l;
        line_no++;
        if (end > p && end[-1] == '\r')
            end--;
        if (parse_line(p, end, &l)) {
            enum gitpush_host_key v = judge_line(&l, name, key, key_len);
            if (verdict_rank(v) > verdict_rank(verdict)) {
                verdict = v;
                decided = line_no;
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (ret_line)
        *ret_line = decided;
    return verdict;
}

/* ---- where the push goes ---------------------------------------------------------------- */

struct endpoint {
    bool ssh;
    char *host; /* ssh only */
    int port;
    char *local_path; /* local remotes: the repository path, for its owner */
};

static void endpoint_clear(struct endpoint *e)
{
    free(e->host);
    free(e->local_path);
}

static int parse_port(const char *port, const char *end, struct endpoint *ret,
                      struct wr_error **err)
{
    char *stop;
    long n = port < end ? strtol(port, &stop, 10) : 22;
    if (port < end && (stop != end || n < 1 || n > 65535))
        return wr_error_set(err, EINVAL, "bad port '%.*s'", (int)(end - port), port);
    ret->port = (int)n;
    return 0;
}

/* [user@]host[:port] or [user@][v6-address][:port]; authority is not NUL-terminated. */
static int parse_authority(const char *authority, size_t n, bool with_port, struct endpoint *ret,
                           struct wr_error **err)
{
    const char *end = authority + n, *at = memrchr(authority, '@', n);
    const char *host = at ? at + 1 : authority, *host_end = end, *port = end;
    if (host < end && *host == '[') {
        host_end = memchr(host, ']', (size_t)(end - host));
        if (with_port && host_end && host_end + 1 < end && host_end[1] == ':')
            port = host_end + 2;
        host++;
    } else if (with_port && (host_end = memchr(host, ':', (size_t)(end - host)))) {
        port = host_end + 1;
    } else {
        host_end = end;
    }
    if (!host_end || host_end <= host)
        return wr_error_set(err, EINVAL, "no host in '%.*s'", (int)n, authority);
    ret->host = wr_strndup(host, (size_t)(host_end - host));
    return parse_port(port, end, ret, err);
}

/* ssh://[user@]host[:port]/path, the scp form [user@]host:path, file:// and local paths.
 * Other schemes (https, git) are left to libgit2. */
static int parse_url(const char *url, struct endpoint *ret, struct wr_error **err)
{
    static const char *const ssh_schemes[] = {"ssh://", "ssh+git://", "git+ssh://"};
    *ret = (struct endpoint){0};
    for (size_t i = 0; i < WR_ARRAY_SIZE(ssh_schemes); i++) {
        size_t skip = strlen(ssh_schemes[i]);
        if (!strncmp(url, ssh_schemes[i], skip)) {
            ret->ssh = true;
            return parse_authority(url + skip, strcspn(url + skip, "/"), true, ret, err);
        }
    }
    if (!strncmp(url, "file://", 7)) {
        ret->local_path = wr_strdup(url + 7);
        return 0;
    }
    const char *colon = strchr(url, ':');
    if (colon && !strstr(url, "://") && colon < url + strcspn(url, "/")) {
        ret->ssh = true;
        return parse_authority(url, (size_t)(colon - url), false, ret, err);
    }
    if (!strstr(url, "://"))
        ret->local_path = wr_strdup(url);
    return 0;
}

/* A URL fit for a result or a message: "https://user:secret@host" loses the secret. */
static char *redact_url(const char *url)
{
    const char *scheme = strstr(url, "://");
    if (!scheme)
        return wr_strdup(url);
    const char *authority = scheme + 3;
    size_t n = strcspn(authority, "/");
    const char *at = memrchr(authority, '@', n);
    const char *colon = at ? memchr(authority, ':', (size_t)(at - authority)) : NULL;
    if (!colon)
        return wr_strdup(url);
    return wr_asprintf("%.*s:***%s", (int)(colon - url), url, at);
}

/* ---- the push's state, shared with libgit2's callbacks ----------------------------------- */

struct push_ctx {
    const struct gitpush_request *req;
    struct endpoint endpoint;
    char *url;
    uint64_t deadline_ms;
    char *local_user;
    char *methods[MAX_METHODS]; /* "agent" or a private key path, in the order tried */
    size_t n_methods, next_method;
    struct wr_buf tried; /* what was offered, for the authentication error */
    bool reached;        /* the server answered (host key or credential request) */
    char *failure;       /* why a callback aborted the push */
    int failure_status;
    char *rejection; /* the server's reason for refusing the ref */
};

static void push_ctx_clear(struct push_ctx *ctx)
{
    endpoint_clear(&ctx->endpoint);
    free(ctx->url);
    free(ctx->local_user);
    for (size_t i = 0; i < ctx->n_methods; i++)
        free(ctx->methods[i]);
    wr_buf_free(&ctx->tried);
    free(ctx->failure);
    free(ctx->rejection);
}

/* Records why the push stops and returns what makes libgit2 stop. */
static int abort_push(struct push_ctx *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int abort_push(struct push_ctx *ctx, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!ctx->failure && vasprintf(&ctx->failure, fmt, ap) < 0)
        abort();
    va_end(ap);
    ctx->failure_status = status;
    git_error_set_str(GIT_ERROR_CALLBACK, ctx->failure);
    return GIT_EUSER;
}

/* Every callback checks this: libgit2 1.5 has no timeout of its own, so a push is stopped
 * the next time it hands control back (a silent server is caught by the helper's timer, which kills
 * this process). */
static int check_deadline(struct push_ctx *ctx)
{
    if (wr_now_ms() > ctx->deadline_ms)
        return abort_push(ctx, ETIMEDOUT, "the push did not finish within %u s",
                          ctx->req->timeout_seconds ? ctx->req->timeout_seconds
                                                    : GITPUSH_TIMEOUT_SECONDS);
    return 0;
}

/* ---- host key ------------------------------------------------------------------------- */

static char *home_path(const char *rest)
{
    struct passwd *pw = getpwuid(geteuid());
    const char *home = pw && pw->pw_dir ? pw->pw_dir : getenv("HOME");
    return wr_asprintf("%s/%s", home ? home : "/", rest);
}

static char **known_hosts_files(void)
{
    const char *env = getenv("WARREN_SSH_KNOWN_HOSTS");
    char **files = wr_calloc(3, sizeof(char *));
    if (env && *env) {
        files[0] = wr_strdup(env);
    } else {
        files[0] = home_path(".ssh/known_hosts");
        files[1] = wr_strdup("/etc/ssh/ssh_known_hosts");
    }
    return files;
}

/* "SHA256:<base64, unpadded>", the fingerprint ssh shows. */
static char *fingerprint(const git_cert_hostkey *key)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char b64[64];
    SHA256((const unsigned char *)key->hostkey, key->hostkey_len, digest);
    wr_base64_encode(digest, sizeof(digest), b64);
    b64[strcspn(b64, "=")] = 0;
    return wr_asprintf("SHA256:%s", b64);
}

struct host_key_verdict {
    enum gitpush_host_key verdict;
    char *where; /* "file:line" of the deciding entry */
};

static void judge_files(struct push_ctx *ctx, const git_cert_hostkey *key, char **files,
                        struct host_key_verdict *ret)
{
    for (size_t i = 0; files[i]; i++) {
        _cleanup_free_ char *text = NULL;
        size_t len, line = 0;
        if (wr_read_file(files[i], MAX_KNOWN_HOSTS_BYTES, &text, &len) < 0)
            continue; /* a missing file knows no hosts */
        enum gitpush_host_key v = gitpush_known_hosts_check(
            text, ctx->endpoint.host, ctx->endpoint.port, key->hostkey, key->hostkey_len, &line);
        if (verdict_rank(v) > verdict_rank(ret->verdict)) {
            ret->verdict = v;
            free(ret->where);
            ret->where = wr_asprintf("%s:%zu", files[i], line);
        }
    }
}

static int refuse_host_key(struct push_ctx *ctx, const git_cert_hostkey *key, char **files,
                           const struct host_key_verdict *v)
{
    const struct endpoint *e = &ctx->endpoint;
    _cleanup_free_ char *fp = fingerprint(key), *name = known_hosts_name(e->host, e->port);
    const char *type = NULL;
    int type_len = (int)key_type((const unsigned char *)key->hostkey, key->hostkey_len, &type);
    if (v->verdict == GITPUSH_HOST_KEY_REVOKED)
        return abort_push(ctx, EACCES,
                          "the host key of %s (%.*s %s) is REVOKED in %s; refusing to push", name,
                          type_len, type, fp, v->where);
    if (v->verdict == GITPUSH_HOST_KEY_MISMATCH)
        return abort_push(
            ctx, EACCES,
            "HOST KEY MISMATCH for %s: the server presented %.*s %s, but %s holds a different "
            "%.*s key. Someone may be intercepting the connection (man-in-the-middle), or the "
            "host key was changed; refusing to push. If the change is expected, remove the old "
            "entry (ssh-keygen -R '%s') and add the new key",
            name, type_len, type, fp, v->where, type_len, type, name);
    _cleanup_free_ char *scan = e->port == 22
                                    ? wr_asprintf("ssh-keyscan %s", e->host)
                                    : wr_asprintf("ssh-keyscan -p %d %s", e->port, e->host);
    return abort_push(ctx, EACCES,
                      "unknown SSH host %s: its key (%.*s %s) is not in %s%s%s; if that is the "
                      "host's key, add it: %s >> %s",
                      name, type_len, type, fp, files[0], files[1] ? " or " : "",
                      files[1] ? files[1] : "", scan, files[0]);
}

static int certificate_check(git_cert *cert, int valid, const char *host, void *payload)
{
    struct push_ctx *ctx = payload;
    ctx->reached = true;
    if (check_deadline(ctx) < 0)
        return GIT_EUSER;
    if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
        return GIT_PASSTHROUGH; /* TLS: libgit2 checks the certificate chain itself */
    const git_cert_hostkey *key = (const git_cert_hostkey *)cert;
    if (!(key->type & GIT_CERT_SSH_RAW) || !ctx->endpoint.ssh)
        return abort_push(ctx, EACCES, "the SSH host key of %s cannot be checked", host);
    _cleanup_strv_ char **files = known_hosts_files();
    struct host_key_verdict v = {0};
    judge_files(ctx, key, files, &v);
    int r = v.verdict == GITPUSH_HOST_KEY_MATCH ? 0 : refuse_host_key(ctx, key, files, &v);
    free(v.where);
    return r;
}

/* ---- credentials ------------------------------------------------------------------------ */

/* The cipher an OpenSSH-format key is encrypted with ("none" when it is not). */
static bool openssh_key_encrypted(const char *text)
{
    const char *begin = strstr(text, "-----BEGIN OPENSSH PRIVATE KEY-----");
    char b64[65];
    size_t n = 0;
    if (!begin)
        return false;
    for (const char *p = strchr(begin, '\n'); p && *p && *p != '-' && n < 64; p++)
        if (!isspace((unsigned char)*p))
            b64[n++] = *p;
    unsigned char raw[51];
    ssize_t len = wr_base64_decode(b64, n, raw); /* "openssh-key-v1\0", string ciphername */
    if (len < 19 + 4 || memcmp(raw, "openssh-key-v1", 15))
        return false;
    return memcmp(raw + 15, "\0\0\0\4none", 8) != 0;
}

/* libssh2 gets no passphrase from warren, and libgit2 stops at a key it cannot decrypt
 * instead of trying the next, so such keys are skipped (they work through ssh-agent). */
static bool key_encrypted(const char *path)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (wr_read_file(path, MAX_KEY_FILE_BYTES, &text, &len) < 0)
        return false; /* unreadable: libssh2 says why */
    return strstr(text, "Proc-Type: 4,ENCRYPTED") || strstr(text, "BEGIN ENCRYPTED PRIVATE KEY") ||
           openssh_key_encrypted(text);
}

static void note_tried(struct push_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_tried(struct push_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *item = NULL;
    if (vasprintf(&item, fmt, ap) < 0)
        abort();
    va_end(ap);
    (void)wr_buf_printf(&ctx->tried, "%s%s", ctx->tried.len ? ", " : "", item);
}

/* ssh-agent when SSH_AUTH_SOCK names a socket, then $WARREN_SSH_KEY or the default keys. */
static void plan_methods(struct push_ctx *ctx)
{
    const char *sock = getenv("SSH_AUTH_SOCK"), *key = getenv("WARREN_SSH_KEY");
    struct stat st;
    if (sock && stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
        ctx->methods[ctx->n_methods++] = wr_strdup("agent");
    if (key && *key) {
        ctx->methods[ctx->n_methods++] = wr_strdup(key);
        return;
    }
    static const char *const defaults[] = {".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(defaults); i++) {
        char *path = home_path(defaults[i]);
        if (access(path, F_OK) == 0)
            ctx->methods[ctx->n_methods++] = path;
        else
            free(path);
    }
}

static int offer_key(struct push_ctx *ctx, git_credential **out, const char *user, const char *path)
{
    if (!strcmp(path, "agent")) {
        note_tried(ctx, "ssh-agent (SSH_AUTH_SOCK)");
        return git_credential_ssh_key_from_agent(out, user);
    }
    if (access(path, R_OK) < 0) {
        note_tried(ctx, "key %s (%s)", path, strerror(errno));
        return 1;
    }
    if (key_encrypted(path)) {
        note_tried(ctx, "key %s (skipped: passphrase-protected; add it to ssh-agent)", path);
        return 1;
    }
    note_tried(ctx, "key %s", path);
    _cleanup_free_ char *pub = wr_asprintf("%s.pub", path);
    return git_credential_ssh_key_new(out, user, access(pub, R_OK) == 0 ? pub : NULL, path, NULL);
}

/* libgit2 calls this again after each refused credential: offer the next method. */
static int credentials(git_credential **out, const char *url, const char *user_from_url,
                       unsigned int allowed, void *payload)
{
    struct push_ctx *ctx = payload;
    const char *user = user_from_url ? user_from_url : ctx->local_user;
    ctx->reached = true;
    if (check_deadline(ctx) < 0)
        return GIT_EUSER;
    if (!(allowed & GIT_CREDENTIAL_SSH_KEY) && (allowed & GIT_CREDENTIAL_USERNAME))
        return git_credential_username_new(out, user);
    if (!(allowed & GIT_CREDENTIAL_SSH_KEY))
        return abort_push(ctx, EACCES,
                          "%s asks for credentials warren does not have (it offers SSH keys "
                          "only: use an ssh:// remote)",
                          ctx->url);
    while (ctx->next_method < ctx->n_methods) {
        int r = offer_key(ctx, out, user, ctx->methods[ctx->next_method++]);
        if (r <= 0)
            return r;
    }
    return abort_push(ctx, EACCES,
                      "SSH authentication as '%s' to %s port %d failed; tried: %s. Set "
                      "WARREN_SSH_KEY to a private key the server accepts, or run warren "
                      "with SSH_AUTH_SOCK of an ssh-agent holding one",
                      user, ctx->endpoint.host, ctx->endpoint.port,
                      ctx->tried.len ? ctx->tried.data
                                     : "nothing (no ssh-agent, no ~/.ssh/id_ed25519, "
                                       "id_ecdsa or id_rsa, WARREN_SSH_KEY not set)");
}

/* ---- progress and the server's verdict --------------------------------------------------- */

static int push_transfer_progress(unsigned current, unsigned total, size_t bytes, void *payload)
{
    return check_deadline(payload);
}

static int pack_progress(int stage, uint32_t current, uint32_t total, void *payload)
{
    return check_deadline(payload);
}

static int sideband_progress(const char *text, int len, void *payload)
{
    return check_deadline(payload);
}

static int push_update_reference(const char *refname, const char *status, void *payload)
{
    struct push_ctx *ctx = payload;
    if (status && !ctx->rejection)
        ctx->rejection = wr_asprintf("the remote rejected %s: %s", refname, status);
    return 0;
}

static void set_callbacks(git_remote_callbacks *cbs, struct push_ctx *ctx)
{
    cbs->credentials = credentials;
    cbs->certificate_check = certificate_check;
    cbs->push_transfer_progress = push_transfer_progress;
    cbs->pack_progress = pack_progress;
    cbs->sideband_progress = sideband_progress;
    cbs->push_update_reference = push_update_reference;
    cbs->payload = ctx;
}

/* ---- the push ----------------------------------------------------------------------------- */

/* warren runs as root, but the repositories are its users'. Files a push creates (objects
 * and refs of a local remote, the remote-tracking ref of the user's repository) are made
 * with this thread's filesystem identity set to the owner of the repository they land in,
 * so that the user's own git can still update them. setfsuid(2) is per thread: the rest of
 * the server keeps running as root. */
struct fs_identity {
    bool changed;
    uid_t uid;
    gid_t gid;
};

static struct fs_identity become_owner_of(const char *path)
{
    struct fs_identity saved = {0};
    struct stat st;
    if (!path || path[0] != '/' || geteuid() != 0 || stat(path, &st) < 0 || st.st_uid == 0)
        return saved;
    saved.gid = (gid_t)setfsgid(st.st_gid);
    saved.uid = (uid_t)setfsuid(st.st_uid);
    saved.changed = true;
    return saved;
}

static void restore_identity(struct fs_identity id)
{
    if (id.changed) {
        setfsuid(id.uid);
        setfsgid(id.gid);
    }
}

static int push_failed(struct push_ctx *ctx, int code, struct wr_error **err)
{
    const char *branch = ctx->req->branch, *remote = ctx->req->remote;
    if (ctx->failure)
        return wr_error_set(err, ctx->failure_status, "%s", ctx->failure);
    if (code == GIT_ENONFASTFORWARD)
        return wr_error_set(err, EPERM,
                            "push rejected (non-fast-forward): %s on %s has commits that the "
                            "branch %s lacks, and warren never overwrites them; push to "
                            "another branch, or bring those commits into the branch first",
                            branch, remote, branch);
    if (ctx->endpoint.ssh && !ctx->reached) {
        const git_error *e = git_error_last();
        return wr_error_set(err, EHOSTUNREACH, "cannot reach %s port %d: %s", ctx->endpoint.host,
                            ctx->endpoint.port, e && e->message ? e->message : "connection failed");
    }
    return vmm__git_fail(code, err, "pushing to %s", ctx->url);
}

static int run_push(git_repository *repo, git_remote *remote, struct push_ctx *ctx,
                    struct wr_error **err)
{
    _cleanup_free_ char *spec =
        wr_asprintf("refs/heads/%s:refs/heads/%s", ctx->req->branch, ctx->req->branch);
    char *specs[] = {spec};
    git_strarray refspecs = {specs, 1};
    git_push_options opts;
    git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
    set_callbacks(&opts.callbacks, ctx);
    struct fs_identity id = become_owner_of(ctx->endpoint.local_path);
    int code = git_remote_upload(remote, &refspecs, &opts);
    restore_identity(id);
    if (code < 0)
        return push_failed(ctx, code, err);
    if (ctx->rejection)
        return wr_error_set(err, EPERM, "push rejected: %s", ctx->rejection);
    /* The push is done; refs/remotes/<remote>/<branch> follows it as with git push. Not
     * fatal: a stale tracking ref is what the next fetch fixes. */
    id = become_owner_of(git_repository_path(repo));
    if (git_remote_update_tips(remote, &opts.callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_UNSPECIFIED,
                               NULL) < 0)
        git_error_clear();
    restore_identity(id);
    return 0;
}

static int unknown_remote(git_repository *repo, const struct gitpush_request *req,
                          struct wr_error **err)
{
    git_strarray names = {0};
    struct wr_buf list;
    wr_buf_init(&list, 4096);
    if (git_remote_list(&names, repo) < 0)
        git_error_clear();
    for (size_t i = 0; i < names.count; i++)
        (void)wr_buf_printf(&list, "%s%s", i ? ", " : "", names.strings[i]);
    int r = wr_error_set(err, ENOENT, "no remote '%s' in %s; remotes: %s", req->remote, req->repo,
                         list.len ? list.data : "none (add one with git remote add)");
    git_strarray_dispose(&names);
    wr_buf_free(&list);
    return r;
}

static int branch_commit(git_repository *repo, const char *branch, char ret[static 41],
                         struct wr_error **err)
{
    _cleanup_free_ char *ref = wr_asprintf("refs/heads/%s", branch);
    git_oid oid;
    if (!git_reference_is_valid_name(ref))
        return wr_error_set(err, EINVAL, "'%s' is not a valid branch name", branch);
    int code = git_reference_name_to_id(&oid, repo, ref);
    if (code == GIT_ENOTFOUND)
        return wr_error_set(err, ENOENT,
                            "nothing to push: branch %s does not exist yet; commit first with "
                            "sandbox_git_commit",
                            branch);
    if (code < 0)
        return vmm__git_fail(code, err, "reading %s", ref);
    git_oid_tostr(ret, 41, &oid);
    return 0;
}

static int prepare(git_remote *remote, const struct gitpush_request *req, struct push_ctx *ctx,
                   struct wr_error **err)
{
    const char *url =
        git_remote_pushurl(remote) ? git_remote_pushurl(remote) : git_remote_url(remote);
    struct passwd *pw = getpwuid(geteuid());
    if (!url)
        return wr_error_set(err, EINVAL, "remote '%s' has no URL", req->remote);
    ctx->req = req;
    ctx->url = redact_url(url);
    ctx->local_user = wr_strdup(pw ? pw->pw_name : "root");
    ctx->deadline_ms = wr_now_ms() + 1000ull * (req->timeout_seconds ? req->timeout_seconds
                                                                     : GITPUSH_TIMEOUT_SECONDS);
    wr_buf_init(&ctx->tried, 16384);
    if (parse_url(url, &ctx->endpoint, err) < 0)
        return wr_error_wrap(err, "remote '%s'", req->remote);
    if (ctx->endpoint.ssh)
        plan_methods(ctx);
    return 0;
}

static int push_remote(git_repository *repo, const struct gitpush_request *req,
                       struct gitpush_result *ret, struct wr_error **err)
{
    git_remote *remote = NULL;
    struct push_ctx ctx = {0};
    int r = branch_commit(repo, req->branch, ret->commit, err);
    int code = r < 0 ? 0 : git_remote_lookup(&remote, repo, req->remote);
    if (code == GIT_ENOTFOUND || code == GIT_EINVALIDSPEC)
        r = unknown_remote(repo, req, err);
    else if (code < 0)
        r = vmm__git_fail(code, err, "reading remote '%s'", req->remote);
    if (r == 0)
        r = prepare(remote, req, &ctx, err);
    if (r == 0)
        r = run_push(repo, remote, &ctx, err);
    if (r == 0)
        ret->url = TAKE_PTR(ctx.url);
    if (remote)
        git_remote_disconnect(remote);
    git_remote_free(remote);
    push_ctx_clear(&ctx);
    return r;
}

int gitpush_push(const struct gitpush_request *req, struct gitpush_result *ret,
                 struct wr_error **err)
{
    git_repository *repo = NULL;
    memset(ret, 0, sizeof(*ret));
    int r = vmm__git_open_existing(req->repo, &repo, err);
    if (r >= 0)
        r = push_remote(repo, req, ret, err);
    git_repository_free(repo);
    if (r < 0)
        gitpush_result_clear(ret);
    return r < 0 ? r : 0;
}

void gitpush_result_clear(struct gitpush_result *r)
{
    free(r->url);
    r->url = NULL;
}

/* ---- the helper process ------------------------------------------------------------- */

static const char *json_string(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int vmm_gitpush_main(int argc, char **argv)
{
    cJSON *req_json = argc >= 3 ? cJSON_Parse(argv[2]) : NULL;
    struct gitpush_request req = {
        .repo = json_string(req_json, "repo"),
        .remote = json_string(req_json, "remote"),
        .branch = json_string(req_json, "branch"),
        .timeout_seconds = (unsigned)cJSON_GetNumberValue(cJSON_GetObjectItem(req_json, "timeout")),
    };
    if (!req.repo || !req.remote || !req.branch) {
        fprintf(stderr, "usage: warren __gitpush '{\"repo\":...,\"remote\":...,\"branch\":...}'\n");
        cJSON_Delete(req_json);
        return 2;
    }
    struct gitpush_result result = {0};
    struct wr_error *err = NULL;
    int r = gitpush_push(&req, &result, &err);
    if (r < 0) {
        fprintf(stderr, "%s\n", err->msg);
    } else {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "url", result.url ? result.url : "");
        cJSON_AddStringToObject(out, "commit", result.commit);
        char *text = cJSON_PrintUnformatted(out);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(out);
    }
    fflush(stdout);
    wr_error_free(err);
    gitpush_result_clear(&result);
    cJSON_Delete(req_json);
    return r < 0 ? 1 : 0;
}
