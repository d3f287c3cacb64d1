/* sandbox_git_commit in the vmm. A sandbox whose /workspace is a git working tree commits
 * what is not committed yet inside, with git (its own .gitignore, index and history), and
 * its history then goes to the user's repository (gitcommit_export). A sandbox without one
 * (made before sandboxes had .git, or whose .git was removed) has its commit built on the
 * host from its layers (gitcommit_create). Either way the guest's writes are flushed
 * first and the libgit2 work runs on the thread pool (vmm/git/commit.c). */
#include <string.h>
#include <sys/stat.h>

#include "commit.h"
#include "layers-op.h"
#include "vmm/ready.h"
#include "vmm/spec.h"
#include "vmm/state.h"

struct commit_op {
    struct vmm *vmm;
    struct store_sandbox row;
    char *branch, *message, *author_name, *author_email;
    char **paths;
    char **uppers; /* bottom first: snapshot layers, then the upper */
    char *head;    /* the sandbox's HEAD after committing inside it; NULL: build on the host */
    struct wr_buf out, errout; /* the in-sandbox commit's output */
    struct gitcommit_result result;
    struct wr_error *err;
    vmm_git_commit_cb cb;
    void *data;
    uv_work_t work;
};

static void commit_op_free(struct commit_op *op)
{
    store_sandbox_clear(&op->row);
    wr_strv_free(op->uppers);
    free(op->branch);
    free(op->message);
    free(op->author_name);
    free(op->author_email);
    wr_strv_free(op->paths);
    free(op->head);
    wr_buf_free(&op->out);
    wr_buf_free(&op->errout);
    wr_error_free(op->err);
    free(op);
}

static void commit_work(uv_work_t *w)
{
    struct commit_op *op = w->data;
    if (op->head) {
        size_t n = wr_strv_len((const char *const *)op->uppers);
        _cleanup_strv_ char **object_dirs = wr_calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            object_dirs[i] = wr_asprintf("%s/.git/objects", op->uppers[i]);
        struct gitexport_request req = {
            .repo = op->row.repo,
            .base = op->row.commit_id,
            .head = op->head,
            .object_dirs = (const char *const *)object_dirs,
            .branch = op->branch,
        };
        gitcommit_export(&req, &op->result, &op->err);
        return;
    }
    struct gitcommit_request req = {
        .repo = op->row.repo,
        .base_commit = op->row.commit_id,
        .uppers = (const char *const *)op->uppers,
        .branch = op->branch,
        .message = op->message,
        .author_name = op->author_name,
        .author_email = op->author_email,
        .paths = (const char *const *)op->paths,
    };
    gitcommit_create(&req, &op->result, &op->err);
}

static void commit_done(uv_work_t *w, int status)
{
    struct commit_op *op = w->data;
    if (op->err) {
        wr_error_wrap(&op->err, "committing sandbox '%s' to %s", op->row.name, op->branch);
        op->cb(op->data, NULL, TAKE_PTR(op->err));
    } else {
        _cleanup_free_ char *detail = wr_asprintf("%s %s", op->branch, op->result.commit);
        store_event(op->vmm->store, op->row.id, "git-commit", detail, NULL);
        struct vmm_git_commit_result r = {
            .commit = op->result.commit,
            .parent = op->result.parent,
            .branch = op->branch,
            .files_changed = op->result.files_changed,
            .insertions = op->result.insertions,
            .deletions = op->result.deletions,
        };
        op->cb(op->data, &r, NULL);
    }
    commit_op_free(op);
}

char **vmm__git_layers_bottom_up(struct vmm *vmm, const struct store_sandbox *row)
{
    _cleanup_free_ char *upper = wr_asprintf("%s/sandboxes/%s/%sworkspace/upper", vmm->state_dir,
                                             row->id, row->disk_mib ? "disk/" : "");
    char **top_first = vmm__layer_chain(row->ws_layers, upper);
    size_t n = wr_strv_len((const char *const *)top_first);
    for (size_t i = 0; i < n / 2; i++) {
        char *t = top_first[i];
        top_first[i] = top_first[n - 1 - i];
        top_first[n - 1 - i] = t;
    }
    return top_first;
}

static void start_work(struct commit_op *op)
{
    op->work.data = op;
    uv_queue_work(op->vmm->loop, &op->work, commit_work, commit_done);
}

static void synced(void *data, struct wr_error *err)
{
    /* Not fatal: the jail writes straight into the upper; a VM that cannot sync still has
     * most of its writes there. */
    if (err)
        log_warning("syncing before a commit: %s", err->msg);
    wr_error_free(err);
    start_work(data);
}

static void sync_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    if (conn && agent_sync(conn, synced, data, &err) == 0)
        return;
    synced(data, err);
}

/* ---- committing inside the sandbox ---------------------------------------------------- */

/* Stages and commits what is not committed yet (under the paths given as arguments, or
 * everything), then prints HEAD. Exit 3: /workspace is not a git working tree. Hooks of
 * the sandbox's own do not run: the commit is warren's. */
static const char commit_script[] =
    "cd /workspace 2>/dev/null || exit 3\n"
    "[ \"$(git rev-parse --show-toplevel 2>/dev/null)\" = /workspace ] || exit 3\n"
    "git add -A -- \"$@\" || exit 4\n"
    "if ! git diff --cached --quiet -- \"$@\"; then\n"
    "  git commit -q --no-verify -m \"$WARREN_COMMIT_MESSAGE\" -- \"$@\" || exit 5\n"
    "fi\n"
    "git rev-parse --verify HEAD\n";

#define COMMIT_OUTPUT_MAX (64u << 10)
#define COMMIT_TIMEOUT_MS (10u * 60u * 1000u)

static void commit_output(void *data, int fd, const char *buf, size_t len)
{
    struct commit_op *op = data;
    (void)wr_buf_append(fd == 1 ? &op->out : &op->errout, buf, len);
}

static void committed_inside(void *data, const struct agent_exit *exit, struct wr_error *err)
{
    struct commit_op *op = data;
    if (!exit) {
        wr_error_wrap(&err, "committing inside sandbox '%s'", op->row.name);
        op->cb(op->data, NULL, err);
        commit_op_free(op);
        return;
    }
    char *out = op->out.data ? op->out.data : "";
    out[strcspn(out, "\n")] = 0;
    if (exit->exit_code == 3) {
        vmm__with_conn(op->vmm, &op->row, 0, sync_on_conn, op); /* no .git: build on the host */
        return;
    }
    if (exit->exit_code != 0 || strlen(out) != 40) {
        const char *why = op->errout.data ? op->errout.data : "";
        wr_error_set(&err, EIO,
                     "committing sandbox '%s': git in the sandbox failed (exit %d): %.2000s",
                     op->row.name, exit->exit_code, why[0] ? why : "no output");
        op->cb(op->data, NULL, err);
        commit_op_free(op);
        return;
    }
    op->head = wr_strdup(out);
    vmm__with_conn(op->vmm, &op->row, 0, sync_on_conn, op); /* flush the new objects */
}

static int commit_inside(struct commit_op *op, struct wr_error **err)
{
    size_t n_paths = wr_strv_len((const char *const *)op->paths);
    _cleanup_free_ const char **argv = wr_calloc(n_paths + 5, sizeof(char *));
    size_t k = 0;
    argv[k++] = "/bin/sh";
    argv[k++] = "-c";
    argv[k++] = commit_script;
    argv[k++] = "sh";
    for (size_t i = 0; i < n_paths; i++)
        argv[k++] = op->paths[i];
    _cleanup_free_ char *message = wr_asprintf("WARREN_COMMIT_MESSAGE=%s", op->message);
    _cleanup_free_ char *an = NULL, *ae = NULL, *cn = NULL, *ce = NULL;
    const char *env[6] = {message};
    size_t e = 1;
    if (op->author_name) {
        env[e++] = an = wr_asprintf("GIT_AUTHOR_NAME=%s", op->author_name);
        env[e++] = cn = wr_asprintf("GIT_COMMITTER_NAME=%s", op->author_name);
    }
    if (op->author_email) {
        env[e++] = ae = wr_asprintf("GIT_AUTHOR_EMAIL=%s", op->author_email);
        env[e++] = ce = wr_asprintf("GIT_COMMITTER_EMAIL=%s", op->author_email);
    }
    struct agent_exec_request req = {
        .argv = argv, .env = env, .cwd = "/workspace", .timeout_ms = COMMIT_TIMEOUT_MS};
    static const struct agent_exec_handlers handlers = {.output = commit_output,
                                                        .done = committed_inside};
    struct vmm_op *exec;
    return vmm_exec(op->vmm, op->row.id, &req, &handlers, op, &exec, err);
}

void vmm__git_disks_ready(struct vmm *vmm, const struct store_sandbox *row)
{
    struct spec_storage spec;
    _cleanup_error_ struct wr_error *err = NULL;
    if (vmm__spec_build(vmm, row, &spec, &err) == 0) {
        if (vmm__spec_disks_ready(vmm, &spec, false, &err) < 0)
            log_warning("sandbox '%s': %s", row->name, err->msg);
        vmm__spec_clear(&spec);
    }
}

/* True when a workspace layer holds a .git/HEAD: the sandbox has a history of its own. */
static bool has_own_git(char *const *uppers)
{
    for (size_t i = 0; uppers[i]; i++) {
        _cleanup_free_ char *head = wr_asprintf("%s/.git/HEAD", uppers[i]);
        struct stat st;
        if (lstat(head, &st) == 0 && S_ISREG(st.st_mode))
            return true;
    }
    return false;
}

int vmm_sandbox_git_commit(struct vmm *vmm, const char *id_or_name,
                           const struct vmm_git_commit_request *req, vmm_git_commit_cb cb,
                           void *data, struct wr_error **err)
{
    struct commit_op *op = wr_calloc(1, sizeof(*op));
    wr_buf_init(&op->out, COMMIT_OUTPUT_MAX);
    wr_buf_init(&op->errout, COMMIT_OUTPUT_MAX);
    if (store_sandbox_get(vmm->store, id_or_name, &op->row, err) < 0) {
        commit_op_free(op);
        return -(*err)->status;
    }
    if (!op->row.commit_id) {
        int r = wr_error_set(err, EINVAL,
                             "sandbox '%s' was not created from a git repository "
                             "(create it with repo: a git working tree)",
                             op->row.name);
        commit_op_free(op);
        return r;
    }
    vmm__refresh_state(vmm, &op->row);
    op->vmm = vmm;
    op->cb = cb;
    op->data = data;
    op->uppers = vmm__git_layers_bottom_up(vmm, &op->row);
    op->branch = req->branch ? wr_strdup(req->branch) : wr_asprintf("warren/%s", op->row.name);
    op->message = wr_strdup(req->message);
    op->author_name = req->author_name ? wr_strdup(req->author_name) : NULL;
    op->author_email = req->author_email ? wr_strdup(req->author_email) : NULL;
    op->paths = req->paths ? wr_strv_copy(req->paths) : NULL;
    bool live = !strcmp(op->row.state, "running") || !strcmp(op->row.state, "paused");
    int r = 0;
    if (!live)
        vmm__git_disks_ready(vmm, &op->row);
    if (live)
        r = commit_inside(op, err);
    else if (has_own_git(op->uppers))
        r = wr_error_set(err, EAGAIN,
                         "sandbox '%s' is %s: its commits are made inside it with git; resume "
                         "it (sandbox_resume) and commit again",
                         op->row.name, op->row.state);
    else
        start_work(op);
    if (r < 0)
        commit_op_free(op);
    return r;
}
