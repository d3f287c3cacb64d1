/* Shared by the E2B front door's parts: e2b.c (routes, auth, dispatch), control.c (the
 * control plane), process.c and filesystem.c (envd's Connect services), files.c (/files). */
#pragma once

#include <cjson/cJSON.h>

#include "connect.h"
#include "e2b.h"

/* The envd version warren reports: it steers the SDK (see docs/e2b.md). */
#define E2B_ENVD_VERSION "0.6.2"
#define E2B_ENVD_PORT "49983"

struct mcp_e2b {
    struct vmm *vmm;
    struct http_server *listener;
    char *token; /* NULL: --auth none */
    char *base_image; /* what template "base" creates: "host" unless configured */
    struct e2b_call *calls; /* calls in flight (streams, async unary calls) */
    bool stopping;
};

/* One envd RPC, from dispatch until it is answered. */
struct e2b_call {
    struct e2b_call *prev, *next;
    struct mcp_e2b *e2b;
    struct http_conn *conn; /* NULL once the client went away */
    struct http_request *req;
    char *sandbox;  /* E2b-Sandbox-Id */
    char *user;     /* from Authorization: Basic, NULL when absent */
    cJSON *msg;     /* the request message */
    bool stream;    /* a server-streaming method */
    const char *method; /* "process.Process/Start" */
    uint64_t started_ms;
    /* Runs when the client goes away before the call is answered (conn is NULL by
     * then); the method cancels its work and later calls e2b_call_done. */
    void (*on_gone)(struct e2b_call *call);
    void *data;         /* the method's */
    cJSON *record_extra; /* fields added to the activity record (exit_code, ...) */
};

struct e2b_method {
    const char *name;    /* "Start" */
    bool server_stream;  /* answered with connect_stream_* */
    void (*handle)(struct e2b_call *call);
};

/* Each service's methods, ended by a {NULL} entry. */
extern const struct e2b_method e2b_process_methods[];
extern const struct e2b_method e2b_filesystem_methods[];

/* Answers and ends a call. A unary call: reply (consumed) or an error; a stream: its end
 * (code CONNECT_OK for a clean one). The activity record names the outcome. Frees call. */
void e2b_call_reply(struct e2b_call *call, cJSON *reply);
void e2b_call_error(struct e2b_call *call, enum connect_code code, const char *message);
/* The same for an error from the vmm API (consumed; its status picks the code). */
void e2b_call_fail(struct e2b_call *call, struct wr_error *err);
/* A stream's message (consumed); nothing when the client is gone. */
void e2b_call_send(struct e2b_call *call, cJSON *msg);
/* Frees a call whose client is gone, once its work has stopped. */
void e2b_call_free(struct e2b_call *call);

/* Records an E2B call on a sandbox as its activity (event "tool", client "e2b", tool
 * "e2b <what>"): args (consumed, may be NULL) summarized like a tool call's, the outcome
 * (error NULL: ok), the duration, and extra's fields (consumed, may be NULL: an exit code,
 * the first lines of output). envd calls are recorded by e2b_call_reply and _error. */
void e2b_record(struct mcp_e2b *e, const char *sandbox, const char *what, cJSON *args,
                const char *error, uint64_t started_ms, cJSON *extra);

/* The envd access token of a sandbox (64 hex + NUL) and whether one is required. */
bool e2b_access_token(const struct mcp_e2b *e, const char *sandbox, char out[65]);

/* The control plane (control.c) and /files (files.c; sandbox NULL: a signed URL fetched
 * without E2b-Sandbox-Id, whose signature names the sandbox). */
void e2b_control_handle(struct mcp_e2b *e, struct http_conn *c, struct http_request *req);
void e2b_files_handle(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                      const char *sandbox);
/* An E2B control-plane error: status with {code: status, message} (the body alone: a
 * string to free). */
void e2b_respond_error(struct http_conn *c, int status, const char *message);
char *e2b_error_json(int status, const char *message);

/* ---- process.Process requests (process-request.c) ------------------------------------- */

#define E2B_PROCESS_ARGS_MAX 4096 /* arguments, and environment variables */
#define E2B_PROCESS_TAG_MAX VMM_PROCESS_TAG_MAX
#define E2B_PROCESS_HOST_DATA_MAX VMM_PROCESS_HOST_DATA_MAX
#define E2B_PTY_DIM_MAX 1000
#define E2B_INPUT_MAX (64u * 1024u) /* one SendInput's bytes (VMM_PTY_MAX_INPUT) */

/* A StartRequest: {process: {cmd, args, envs, cwd}, pty?: {size}, tag?, stdin?}. */
struct e2b_start_request {
    char **argv; /* cmd then args */
    char **env;  /* "K=V" from envs, NULL when none */
    char *cwd;   /* NULL: the sandbox's default */
    char *tag;   /* NULL: none */
    bool pty;
    unsigned rows, cols; /* with pty */
    bool stdin_open;     /* envd: open unless stdin is false */
    cJSON *config;       /* {cmd, args, envs, cwd} as List answers it */
};
/* 0 and *ret (cleared with e2b_start_request_clear), or -errno with *why. */
int e2b_start_request_parse(const cJSON *msg, struct e2b_start_request *ret, const char **why);
void e2b_start_request_clear(struct e2b_start_request *r);

/* A ProcessSelector: {process: {pid} | {tag}}; tag points into msg. */
struct e2b_selector {
    uint32_t pid;
    const char *tag;
};
int e2b_selector_parse(const cJSON *msg, struct e2b_selector *ret, const char **why);
/* {size: {cols, rows}} of a pty field; a missing dimension is 0. */
int e2b_pty_size_parse(const cJSON *pty, unsigned *ret_rows, unsigned *ret_cols,
                       const char **why);
/* SendSignal's signal: SIGKILL or SIGTERM, by enum name or number. */
int e2b_signal_parse(const cJSON *msg, int *ret, const char **why);
/* SendInput's {input: {stdin | pty: base64}}: data (to free) of at most E2B_INPUT_MAX. */
struct e2b_input {
    void *data;
    size_t len;
    bool pty;
};
int e2b_input_parse(const cJSON *msg, struct e2b_input *ret, const char **why);
/* ---- paths and entries (paths.c, filesystem.c) ------------------------------------------ */

/* path: the absolute path (the callee's to free), or NULL with err (the callee's; EACCES:
 * no such user). */
typedef void (*e2b_path_cb)(void *data, char *path, struct wr_error *err);
/* The absolute path a client's path names when acting as user (NULL: root): an absolute
 * path as it is, a relative one (or "~/...") below the user's home directory in the
 * sandbox's /etc/passwd, an empty one the home itself; the user must exist there, and the
 * result passes vmm_path_check. cb runs exactly once unless this returns < 0; it may run
 * before this returns (absolute paths as root need no lookup). */
int e2b_resolve_path(struct mcp_e2b *e, const char *sandbox, const char *user, const char *path,
                     e2b_path_cb cb, void *data, struct wr_error **err);

/* filesystem.EntryInfo for path (absolute) from what the agent reports. type: DT_* value
 * ((st_mode & S_IFMT) >> 12); link_target may be NULL. */
cJSON *e2b_entry_json(const char *path, uint32_t type, uint64_t size, uint32_t mode, int64_t mtime,
                      const char *link_target, const char *owner, const char *group);

/* filesystem.Filesystem's watchers (watch.c). */
void e2b_watch_dir(struct e2b_call *call);
void e2b_create_watcher(struct e2b_call *call);
void e2b_get_watcher_events(struct e2b_call *call);
void e2b_remove_watcher(struct e2b_call *call);
