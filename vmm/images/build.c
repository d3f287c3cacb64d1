/* image_build: a template is an image made by running steps in a sandbox. Each step's
 * result is a snapshot named step-<key>, where the key hashes what the step starts from
 * and the step itself, so a rebuild that begins with the same steps restores the last one
 * cached and runs only the rest; the template is a record in the images table whose
 * config names the snapshot of its last step (vmm__image_lowers stacks its layers). The
 * build sandbox is an ordinary sandbox (build-<random>), destroyed when the build ends. */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <string.h>

#include "guest-init/proto.h"
#include "images.h"
#include "vmm/spec.h"

#define STEP_OUTPUT_MAX (64u << 10)
#define STEP_TIMEOUT_MS (30u * 60u * 1000u)

enum step_kind { STEP_FILES, STEP_RUN };

struct step {
    enum step_kind kind;
    char *text; /* the command, or the files as JSON */
    char key[65];
};

struct build_op {
    struct vmm *vmm;
    char *name, *from, *workdir;
    char **env;   /* "K=V" */
    cJSON *files; /* {path: content} or NULL */
    struct step *steps;
    size_t n_steps, next, cached;
    char *sandbox;            /* the build sandbox's id */
    struct wr_error *failure; /* why the build failed, answered once the sandbox is gone */
    char **size_dirs;         /* the template's own layers, measured on the thread pool */
    uint64_t size_bytes;
    uv_work_t work;
    char base_key[65];
    struct wr_buf output;
    const cJSON *file; /* the file being written */
    vmm_progress_cb progress;
    vmm_build_cb cb;
    void *data;
};

static void build_free(struct build_op *op)
{
    for (size_t i = 0; i < op->n_steps; i++)
        free(op->steps[i].text);
    free(op->steps);
    free(op->name);
    free(op->from);
    free(op->workdir);
    free(op->sandbox);
    wr_error_free(op->failure);
    wr_strv_free(op->size_dirs);
    wr_strv_free(op->env);
    cJSON_Delete(op->files);
    wr_buf_free(&op->output);
    free(op);
}

static void sha256_hex(const char *parts[], size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < n; i++)
        EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1); /* the NUL separates parts */
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    wr_hex_encode(md, sizeof(md), out);
}

static char *step_snapshot(const struct step *s)
{
    return wr_asprintf("step-%.32s", s->key);
}

static void progress(struct build_op *op, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void progress(struct build_op *op, const char *fmt, ...)
{
    if (!op->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *text = NULL;
    if (vasprintf(&text, fmt, ap) >= 0)
        op->progress(op->data, text);
    va_end(ap);
}

/* ---- ending ----------------------------------------------------------------------------- */

static void answer_failure(struct build_op *op)
{
    struct wr_error *err = TAKE_PTR(op->failure);
    wr_error_wrap(&err, "building template '%s'", op->name);
    op->cb(op->data, NULL, err);
    build_free(op);
}

static void register_template(struct build_op *op);

static void measure_work(uv_work_t *w)
{
    struct build_op *op = w->data;
    for (size_t i = 0; op->size_dirs && op->size_dirs[i]; i++)
        op->size_bytes += wr_disk_usage(op->size_dirs[i]);
}

static void measured(uv_work_t *w, int status)
{
    register_template(w->data);
}

/* The template's size: what its own layers (those of its last step's snapshot) take. */
static void measure(struct build_op *op)
{
    const struct step *last = &op->steps[op->n_steps - 1];
    _cleanup_free_ char *name = step_snapshot(last);
    _cleanup_free_ char *digest = wr_asprintf("template:%s", last->key);
    struct store_snapshot snap;
    struct store_image same;
    _cleanup_error_ struct wr_error *err = NULL;
    /* Rebuilt to what it already is: its size is known. */
    if (store_image_get(op->vmm->store, op->name, &same, &err) == 0) {
        bool known = !strcmp(same.digest, digest);
        op->size_bytes = same.size_bytes;
        store_image_clear(&same);
        if (known) {
            register_template(op);
            return;
        }
    }
    wr_error_free(TAKE_PTR(err));
    if (store_snapshot_get(op->vmm->store, name, &snap, &err) == 0) {
        cJSON *m = cJSON_Parse(snap.manifest);
        char *root = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(m, "root"));
        op->size_dirs = vmm__layer_chain(root, NULL);
        free(root);
        cJSON_Delete(m);
        store_snapshot_clear(&snap);
    }
    op->work.data = op;
    uv_queue_work(op->vmm->loop, &op->work, measure_work, measured);
}

/* The build sandbox is gone: the call answers only now, so that nothing of the build is
 * listed once it has. */
static void sandbox_gone(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct build_op *op = data;
    if (err)
        log_warning("removing build sandbox %s: %s", op->sandbox, err->msg);
    wr_error_free(err);
    free(TAKE_PTR(op->sandbox));
    if (op->failure)
        answer_failure(op);
    else
        measure(op);
}

static void drop_sandbox(struct build_op *op)
{
    struct wr_error *err = NULL;
    if (!op->sandbox)
        sandbox_gone(op, NULL, NULL);
    else if (vmm_sandbox_destroy(op->vmm, op->sandbox, sandbox_gone, op, &err) < 0)
        sandbox_gone(op, NULL, err);
}

static void fail(struct build_op *op, struct wr_error *err)
{
    op->failure = err;
    drop_sandbox(op);
}

/* The template's config: its base's, with the build's env and workdir, and its layers. */
static char *template_config(struct build_op *op, const char *snapshot)
{
    _cleanup_strv_ char **env = NULL;
    _cleanup_free_ char *workdir = NULL, *user = NULL;
    vmm__image_exec_config(op->vmm, op->from, &env, &workdir, &user);
    cJSON *c = cJSON_CreateObject();
    cJSON *e = cJSON_AddArrayToObject(c, "env");
    for (size_t i = 0; env && env[i]; i++)
        cJSON_AddItemToArray(e, cJSON_CreateString(env[i]));
    for (size_t i = 0; op->env && op->env[i]; i++)
        cJSON_AddItemToArray(e, cJSON_CreateString(op->env[i]));
    cJSON_AddStringToObject(c, "workdir", op->workdir ? op->workdir : workdir ? workdir : "");
    cJSON_AddStringToObject(c, "user", user ? user : "");
    cJSON_AddStringToObject(c, "template", snapshot);
    cJSON_AddStringToObject(c, "from", op->from);
    char *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return text;
}

static void finish(struct build_op *op)
{
    drop_sandbox(op); /* then register_template */
}

static void register_template(struct build_op *op)
{
    const struct step *last = &op->steps[op->n_steps - 1];
    _cleanup_free_ char *snapshot = step_snapshot(last);
    _cleanup_free_ char *config = template_config(op, snapshot);
    _cleanup_free_ char *digest = wr_asprintf("template:%s", last->key);
    cJSON *keys = cJSON_CreateArray();
    for (size_t i = 0; i < op->n_steps; i++)
        cJSON_AddItemToArray(keys, cJSON_CreateString(op->steps[i].key));
    _cleanup_free_ char *layers = cJSON_PrintUnformatted(keys);
    cJSON_Delete(keys);
    struct store_image rec = {.name = op->name,
                              .digest = digest,
                              .layers = layers,
                              .config = config,
                              .size_bytes = op->size_bytes,
                              .created_at = wr_unix_time()};
    struct wr_error *err = NULL;
    if (store_image_put(op->vmm->store, &rec, &err) < 0) {
        op->failure = err;
        answer_failure(op);
        return;
    }
    store_event(op->vmm->store, NULL, "image-build", op->name, NULL);
    struct vmm_build_result r = {
        .image = op->name, .digest = digest, .steps = op->n_steps, .cached = op->cached};
    op->cb(op->data, &r, NULL);
    build_free(op);
}

/* ---- steps ------------------------------------------------------------------------------- */

static void run_next(struct build_op *op);

static void snapshotted(void *data, const struct vmm_snapshot_info *info, struct wr_error *err)
{
    struct build_op *op = data;
    if (err) {
        fail(op, err);
        return;
    }
    op->next++;
    run_next(op);
}

static void step_done(struct build_op *op)
{
    struct wr_error *err = NULL;
    _cleanup_free_ char *name = step_snapshot(&op->steps[op->next]);
    if (vmm_sandbox_snapshot(op->vmm, op->sandbox, name, false, snapshotted, op, &err) < 0)
        fail(op, err);
}

static void step_output(void *data, int fd, const char *buf, size_t len)
{
    struct build_op *op = data;
    if (op->output.len + len > STEP_OUTPUT_MAX)
        wr_buf_consume(&op->output, WR_MIN(op->output.len, op->output.len + len - STEP_OUTPUT_MAX));
    (void)wr_buf_append(&op->output, buf, WR_MIN(len, STEP_OUTPUT_MAX));
    /* The last line of what arrived, as progress. */
    size_t end = len;
    while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r'))
        end--;
    size_t start = end;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (end > start) {
        _cleanup_free_ char *line = wr_utf8_sanitize(buf + start, WR_MIN(end - start, 200));
        progress(op, "step %zu/%zu: %s", op->next + 1, op->n_steps, line);
    }
}

static void step_exited(void *data, const struct agent_exit *exit, struct wr_error *err)
{
    struct build_op *op = data;
    if (!exit) {
        fail(op, err);
        return;
    }
    if (exit->exit_code != 0) {
        _cleanup_free_ char *out =
            wr_utf8_sanitize(op->output.data ? op->output.data : "", op->output.len);
        size_t n = strlen(out);
        wr_error_set(&err, EIO, "step %zu (%.200s) failed with exit code %d%s: %s", op->next + 1,
                     op->steps[op->next].text, exit->exit_code,
                     exit->timed_out ? " (timed out)" : "", n > 4000 ? out + n - 4000 : out);
        fail(op, err);
        return;
    }
    step_done(op);
}

static void run_command(struct build_op *op, const char *command)
{
    /* Like Docker's WORKDIR, a missing workdir is made before the step runs in it. */
    const char *in_workdir[] = {
        "/bin/sh", "-c", "mkdir -p -- \"$1\" && cd -- \"$1\" && eval \"$2\"", "sh", op->workdir,
        command,   NULL};
    const char *plain[] = {"/bin/sh", "-c", command, NULL};
    struct agent_exec_request req = {.argv = op->workdir ? in_workdir : plain,
                                     .env = (const char *const *)op->env,
                                     .cwd = op->workdir ? "/" : NULL,
                                     .timeout_ms = STEP_TIMEOUT_MS};
    static const struct agent_exec_handlers handlers = {.output = step_output, .done = step_exited};
    struct vmm_op *exec;
    struct wr_error *err = NULL;
    wr_buf_reset(&op->output);
    if (vmm_exec(op->vmm, op->sandbox, &req, &handlers, op, &exec, &err) < 0)
        fail(op, err);
}

static void write_next_file(struct build_op *op);

static void file_written(void *data, uint64_t bytes, struct wr_error *err)
{
    struct build_op *op = data;
    if (err) {
        wr_error_wrap(&err, "writing %s", op->file->string);
        fail(op, err);
        return;
    }
    op->file = op->file->next;
    write_next_file(op);
}

static void write_next_file(struct build_op *op)
{
    if (!op->file) {
        step_done(op);
        return;
    }
    const char *content = op->file->valuestring;
    struct wr_error *err = NULL;
    if (vmm_write_file(op->vmm, op->sandbox, op->file->string, content, strlen(content), 0644,
                       GI_WRITE_CREATE_DIRS, file_written, op, &err) < 0)
        fail(op, err);
}

static void run_next(struct build_op *op)
{
    if (op->next == op->n_steps) {
        finish(op);
        return;
    }
    const struct step *s = &op->steps[op->next];
    progress(op, "step %zu/%zu: %.200s", op->next + 1, op->n_steps,
             s->kind == STEP_FILES ? "writing files" : s->text);
    if (s->kind == STEP_FILES) {
        op->file = op->files->child;
        write_next_file(op);
    } else {
        run_command(op, s->text);
    }
}

/* ---- starting ------------------------------------------------------------------------- */

static void sandbox_ready(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct build_op *op = data;
    if (err) {
        fail(op, err);
        return;
    }
    op->sandbox = wr_strdup(info->row.id);
    run_next(op);
}

/* What the first step starts from: a template's last key, an OCI image's digest, host. */
static void base_key(struct build_op *op)
{
    struct store_image row;
    _cleanup_error_ struct wr_error *err = NULL;
    const char *id = "host";
    if (strcmp(op->from, "host") != 0 &&
        store_image_get(op->vmm->store, op->from, &row, &err) == 0) {
        const char *parts[] = {row.digest};
        sha256_hex(parts, 1, op->base_key);
        store_image_clear(&row);
        return;
    }
    const char *parts[] = {id};
    sha256_hex(parts, 1, op->base_key);
}

static void compute_keys(struct build_op *op)
{
    cJSON *e = cJSON_CreateStringArray((const char *const *)op->env,
                                       (int)wr_strv_len((const char *const *)op->env));
    _cleanup_free_ char *env = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    const char *prev = op->base_key;
    for (size_t i = 0; i < op->n_steps; i++) {
        struct step *s = &op->steps[i];
        const char *parts[] = {prev, s->kind == STEP_FILES ? "files" : "run", s->text, env,
                               op->workdir ? op->workdir : ""};
        sha256_hex(parts, WR_ARRAY_SIZE(parts), s->key);
        prev = s->key;
    }
}

static void start_steps(struct build_op *op)
{
    base_key(op);
    compute_keys(op);
    /* The longest prefix of steps whose results are there already. */
    for (size_t i = op->n_steps; i > 0 && !op->cached; i--) {
        struct store_snapshot snap;
        _cleanup_free_ char *name = step_snapshot(&op->steps[i - 1]);
        _cleanup_error_ struct wr_error *missing = NULL;
        if (store_snapshot_get(op->vmm->store, name, &snap, &missing) == 0) {
            op->cached = i;
            store_snapshot_clear(&snap);
        }
    }
    op->next = op->cached;
    if (op->cached)
        progress(op, "%zu of %zu steps cached", op->cached, op->n_steps);
    if (op->cached == op->n_steps) {
        finish(op);
        return;
    }
    char suffix[9];
    uint32_t nonce = 0;
    (void)wr_random_bytes(&nonce, sizeof(nonce));
    wr_hex_encode(&nonce, sizeof(nonce), suffix);
    _cleanup_free_ char *name = wr_asprintf("build-%.40s-%s", op->name, suffix);
    struct wr_error *err = NULL;
    int r;
    if (op->cached) {
        _cleanup_free_ char *snapshot = step_snapshot(&op->steps[op->cached - 1]);
        r = vmm_snapshot_restore(op->vmm, snapshot, name, sandbox_ready, op, &err);
    } else {
        struct vmm_create_request req = {.name = name, .image = op->from};
        r = vmm_sandbox_create(op->vmm, &req, sandbox_ready, op, &err);
    }
    if (r < 0)
        fail(op, err);
}

static void base_pulled(void *data, const struct vmm_image_info *info, struct wr_error *err)
{
    struct build_op *op = data;
    if (err) {
        fail(op, err);
        return;
    }
    start_steps(op);
}

static int check_request(struct vmm *vmm, const struct vmm_build_request *req,
                         struct wr_error **err)
{
    if (!req->name || !wr_name_valid(req->name) || !strcmp(req->name, "host"))
        return wr_error_set(err, EINVAL,
                            "invalid template name '%.80s': 1-63 letters, digits, '_', '.' and "
                            "'-' (not 'host')",
                            req->name ? req->name : "");
    size_t n = wr_strv_len(req->run);
    if (n == 0 && !req->files)
        return wr_error_set(err, EINVAL, "a template needs at least one step (run or files)");
    if (req->workdir && req->workdir[0] != '/')
        return wr_error_set(err, EINVAL, "workdir must be an absolute path");
    struct store_image row;
    _cleanup_error_ struct wr_error *missing = NULL;
    if (store_image_get(vmm->store, req->name, &row, &missing) == 0) {
        store_image_clear(&row);
        /* Rebuilding a template replaces it, but not under what is built on it. */
        char **users = NULL;
        int r = vmm__image_users(vmm, req->name, &users, err);
        if (r < 0)
            return r;
        if (users[0])
            r = wr_error_set(err, EBUSY,
                             "template '%s' exists and is in use by %s; destroy those first or "
                             "build under another name",
                             req->name, users[0]);
        wr_strv_free(users);
        return r;
    }
    return 0;
}

int vmm_image_build(struct vmm *vmm, const struct vmm_build_request *req, vmm_progress_cb prog,
                    vmm_build_cb cb, void *data, struct wr_error **err)
{
    _cleanup_free_ char *from = NULL;
    if (check_request(vmm, req, err) < 0 || vmm__image_name(vmm, req->from, &from, err) < 0)
        return -(*err)->status;
    struct build_op *op = wr_calloc(1, sizeof(*op));
    *op = (struct build_op){.vmm = vmm,
                            .name = wr_strdup(req->name),
                            .from = TAKE_PTR(from),
                            .workdir = req->workdir ? wr_strdup(req->workdir) : NULL,
                            .env = req->env ? wr_strv_copy(req->env) : wr_calloc(1, sizeof(char *)),
                            .files = req->files ? cJSON_Duplicate(req->files, true) : NULL,
                            .progress = prog,
                            .cb = cb,
                            .data = data};
    wr_buf_init(&op->output, STEP_OUTPUT_MAX + 1);
    size_t n = wr_strv_len(req->run);
    op->steps = wr_calloc(n + 1, sizeof(*op->steps));
    if (op->files && op->files->child) {
        op->steps[op->n_steps++] =
            (struct step){.kind = STEP_FILES, .text = cJSON_PrintUnformatted(op->files)};
    }
    for (size_t i = 0; i < n; i++)
        op->steps[op->n_steps++] = (struct step){.kind = STEP_RUN, .text = wr_strdup(req->run[i])};
    if (!strcmp(op->from, "host") || strchr(op->from, '/') == NULL) {
        start_steps(op); /* host or a template: nothing to pull */
        return 0;
    }
    struct wr_error *e = NULL;
    if (vmm_image_pull(vmm, op->from, NULL, base_pulled, op, &e) < 0)
        fail(op, e);
    return 0;
}
