/* The host side of the agent protocol (guest-init/PROTOCOL.md): one connection to the
 * guest-init of one sandbox, on the libuv loop, with any number of requests in flight
 * (each on its own stream id). Every backend hands the vmm core a connected stream (a
 * unix socket for the jail and Cloud Hypervisor's hybrid vsock, a chardev socket for
 * QEMU's virtio-serial port); everything above that is this file. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "util/util.h"

struct agent_conn;

/* Called once: conn is ready (HELLO received, version checked), or NULL with err (owned by
 * the callee) when connecting failed or timed out. */
typedef void (*agent_connect_cb)(void *data, struct agent_conn *conn, struct wr_error *err);

/* Connects to the unix socket at path, retrying ECONNREFUSED/ENOENT every few ms until
 * timeout_ms passes (the agent may still be starting), sends the host's HELLO and waits
 * for the agent's (PROTOCOL.md). Frames before the agent's HELLO (left from an earlier
 * session on a serial channel) are skipped; so are later HELLOs. The same call serves
 * QEMU's virtio-serial chardev socket: there the timeout must cover the guest's boot. */
int agent_connect_unix(uv_loop_t *loop, const char *path, uint32_t timeout_ms, agent_connect_cb cb,
                       void *data, struct wr_error **err);

/* Serves an already connected stream fd (taken: closed on every path), e.g. Cloud
 * Hypervisor's hybrid vsock after the backend's "CONNECT <port>" / "OK <hostport>"
 * exchange. initial holds bytes that arrived after that exchange (copied; at most a
 * few frames); they are read before anything from fd. Then as agent_connect_unix:
 * HELLO is sent and awaited, cb runs from the loop, never inside this call. */
int agent_connect_fd(uv_loop_t *loop, int fd, const void *initial, size_t initial_len,
                     uint32_t timeout_ms, agent_connect_cb cb, void *data, struct wr_error **err);

/* Called when the connection breaks (the sandbox died, the agent closed it). Every
 * pending request has already been failed with ECONNRESET. Not called after
 * agent_conn_close. The caller still owns conn and must agent_conn_close it (doing so
 * from inside this callback is fine). */
void agent_conn_on_close(struct agent_conn *conn, void (*cb)(void *data), void *data);

/* Closes the connection; pending requests fail with ECANCELED (their callbacks run before
 * this returns). The struct is freed after libuv's close callbacks. */
void agent_conn_close(struct agent_conn *conn);

/* Agent identity from HELLO ("warren-guest-init 0.1.0") and the agent's pid. */
const char *agent_conn_agent(const struct agent_conn *conn);

/* ---- exec ---------------------------------------------------------------------- */

struct agent_exec_request {
    const char *const *argv; /* argv[0] is looked up in PATH inside the sandbox */
    const char *const *env;  /* "K=V" entries; the agent's base environment is not inherited */
    const char *cwd;         /* NULL: /workspace */
    const char *user;        /* "name", "uid", "name:group" or "uid:gid"; NULL: root */
    const void *stdin_data;  /* sent then closed; NULL with stdin_len 0: /dev/null */
    size_t stdin_len;
    uint32_t timeout_ms; /* 0: none; on expiry the agent kills the process group */
};

struct agent_exit {
    int exit_code; /* -1 when killed by a signal */
    int signal;    /* 0 unless killed by a signal */
    bool timed_out;
};

struct agent_exec_handlers {
    /* Output as it arrives; fd is 1 or 2. May be NULL. */
    void (*output)(void *data, int fd, const char *buf, size_t len);
    /* Exactly once: exit filled in, or exit NULL and err (owned by the callee). */
    void (*done)(void *data, const struct agent_exit *exit, struct wr_error *err);
};

struct agent_exec;

/* Starts a process. *ret_exec stays valid until done has run; use it to signal. */
int agent_exec(struct agent_conn *conn, const struct agent_exec_request *req,
               const struct agent_exec_handlers *handlers, void *data, struct agent_exec **ret_exec,
               struct wr_error **err);
/* Sends signum to the process group of a running exec (SIGKILL on cancellation). */
int agent_exec_signal(struct agent_exec *exec, int signum);

/* ---- files and the rest ------------------------------------------------------------ */

/* Read: data is the bytes read (owned by the agent client, valid during the call),
 * file_size the whole file's size. */
typedef void (*agent_read_cb)(void *data, const char *buf, size_t len, uint64_t file_size,
                              struct wr_error *err);
/* Reads at most length bytes from offset. length is capped by the caller. */
int agent_read_file(struct agent_conn *conn, const char *path, uint64_t offset, uint64_t length,
                    agent_read_cb cb, void *data, struct wr_error **err);

typedef void (*agent_write_cb)(void *data, uint64_t bytes_written, struct wr_error *err);
/* Writes buf (copied or referenced until cb: the caller keeps buf alive until cb runs).
 * flags: GI_WRITE_APPEND, GI_WRITE_CREATE_DIRS. mode applies when the file is created. */
int agent_write_file(struct agent_conn *conn, const char *path, const void *buf, size_t len,
                     uint32_t mode, uint32_t flags, agent_write_cb cb, void *data,
                     struct wr_error **err);

struct agent_stat {
    uint64_t size;
    uint32_t mode; /* st_mode, type bits included */
    int64_t mtime;
    char owner[64], group[64]; /* names in the sandbox (else the ids); "" from older agents */
};
typedef void (*agent_stat_cb)(void *data, const struct agent_stat *st, struct wr_error *err);
int agent_stat(struct agent_conn *conn, const char *path, agent_stat_cb cb, void *data,
               struct wr_error **err);

struct agent_memstats {
    uint64_t total, free, available, cached; /* bytes */
};
typedef void (*agent_memstats_cb)(void *data, const struct agent_memstats *m, struct wr_error *err);
int agent_memstats(struct agent_conn *conn, agent_memstats_cb cb, void *data,
                   struct wr_error **err);

/* SYNC, DROP_CACHES and SHUTDOWN: requests without result fields. */
typedef void (*agent_simple_cb)(void *data, struct wr_error *err);
int agent_sync(struct agent_conn *conn, agent_simple_cb cb, void *data, struct wr_error **err);
int agent_drop_caches(struct agent_conn *conn, agent_simple_cb cb, void *data,
                      struct wr_error **err);
int agent_shutdown(struct agent_conn *conn, agent_simple_cb cb, void *data, struct wr_error **err);
/* Directories (LIST_DIR, MKDIR, RENAME, REMOVE). An entry of a listing: path relative to
 * the listed directory; type is (st_mode & S_IFMT) >> 12 (DT_REG 8, DT_DIR 4, DT_LNK 10). */
struct agent_dir_entry {
    char *path;
    uint32_t type;
    uint64_t size;
    uint32_t mode; /* st_mode, type bits included */
    int64_t mtime;
    char *link_target; /* a symlink's target, or NULL */
    char owner[64], group[64]; /* as in agent_stat */
};
/* entries (owned by the agent client, valid during the call) in the guest's order:
 * depth-first, each directory's names sorted; truncated when some were left out. */
typedef void (*agent_list_dir_cb)(void *data, const struct agent_dir_entry *entries, size_t n,
                                  bool truncated, struct wr_error *err);
/* Lists path down to depth levels (1..GI_LIST_MAX_DEPTH), at most max_entries entries
 * (up to GI_LIST_MAX_ENTRIES). Symlinks are not followed. */
int agent_list_dir(struct agent_conn *conn, const char *path, unsigned depth, size_t max_entries,
                   agent_list_dir_cb cb, void *data, struct wr_error **err);
/* flags: GI_MKDIR_PARENTS. */
int agent_mkdir(struct agent_conn *conn, const char *path, uint32_t mode, uint32_t flags,
                agent_simple_cb cb, void *data, struct wr_error **err);
/* flags: GI_RENAME_OVERWRITE (else an existing `to` is EEXIST). */
int agent_rename(struct agent_conn *conn, const char *from, const char *to, uint32_t flags,
                 agent_simple_cb cb, void *data, struct wr_error **err);
/* flags: GI_REMOVE_RECURSIVE (a directory needs it). "/" and /workspace are refused. */
int agent_remove(struct agent_conn *conn, const char *path, uint32_t flags, agent_simple_cb cb,
                 void *data, struct wr_error **err);
/* ATTACH (VMs): guest-init binds dir (below /workspace; NULL: none) on /workspace and takes
 * hostname: a warm pool's VM given to the create that claimed it. */
int agent_attach(struct agent_conn *conn, const char *dir, const char *hostname, agent_simple_cb cb,
                 void *data, struct wr_error **err);

/* ---- watching a directory (WATCH) ------------------------------------------------------ */

struct agent_watch_handlers {
    /* The watches are in place: changes from now on are reported. */
    void (*started)(void *data);
    /* One change: name relative to the watched directory ("" for itself), type one of
     * GI_WATCH_CREATE .. GI_WATCH_CHMOD. */
    void (*event)(void *data, const char *name, unsigned type);
    /* Exactly once: err NULL after agent_unwatch, else why the watch ended (ENOENT: the
     * directory went, EOVERFLOW: events were lost, ECANCELED/ECONNRESET: the connection). */
    void (*end)(void *data, struct wr_error *err);
};
struct agent_watch;
/* Watches path (recursive: and every directory below it) with inotify in the sandbox.
 * *ret_watch stays valid until handlers->end has run. */
int agent_watch(struct agent_conn *conn, const char *path, bool recursive,
                const struct agent_watch_handlers *handlers, void *data,
                struct agent_watch **ret_watch, struct wr_error **err);
/* Stops the watch; end runs later (err NULL). */
int agent_unwatch(struct agent_watch *watch, struct wr_error **err);

/* ---- terminals (PTY sessions) ---------------------------------------------------------- */

/* Terminal sessions live in guest-init independently of this connection (PROTOCOL.md, "PTY
 * sessions"): open one, then attach a stream to it; a closed connection detaches it. */
struct agent_pty_request {
    const char *const *argv; /* NULL: the user's login shell */
    const char *const *env;  /* "K=V"; TERM is always xterm-256color */
    const char *cwd;         /* NULL: /workspace */
    const char *user;        /* as for exec; NULL: root */
    unsigned rows, cols;     /* 1..GI_PTY_DIM_MAX (ignored with pipes) */
    /* A process session on pipes (stdout and stderr apart) instead of a terminal, with
     * stdin a pipe when stdin_open (else /dev/null). */
    bool pipes, stdin_open;
    const char *tag;       /* NULL or 1..GI_PROC_TAG_MAX bytes */
    const void *host_data; /* kept with the session, given back by agent_pty_list */
    size_t host_data_len;  /* at most GI_PROC_HOST_DATA_MAX */
};
/* Exactly once: the session's id and its process's pid, or err (owned by the callee). */
typedef void (*agent_pty_open_cb)(void *data, uint64_t pty_id, uint64_t pid, struct wr_error *err);
int agent_pty_open(struct agent_conn *conn, const struct agent_pty_request *req,
                   agent_pty_open_cb cb, void *data, struct wr_error **err);

/* Why an attachment ended. */
enum agent_pty_end_reason {
    AGENT_PTY_EXITED = 0,   /* the process exited: exit is filled in */
    AGENT_PTY_DETACHED = 1, /* agent_pty_detach: the session runs on */
    AGENT_PTY_REPLACED = 2, /* another attach took the session over */
    AGENT_PTY_CLOSED = 3,   /* agent_pty_close ended the session */
};
struct agent_pty_end {
    enum agent_pty_end_reason reason;
    struct agent_exit exit; /* AGENT_PTY_EXITED only */
};

struct agent_pty_handlers {
    /* Optional, first: the session attached to, and its leader's pid. */
    void (*attached)(void *data, uint64_t pty_id, uint64_t pid);
    /* A pipe session's stderr (counted in the acknowledgements like output). Optional:
     * output takes it when NULL. */
    void (*stderr_output)(void *data, const char *buf, size_t len);
    /* Terminal output (first the session's recent output, then live). Every byte must be
     * acknowledged with agent_pty_ack once consumed: guest-init sends at most
     * GI_PTY_WINDOW bytes ahead of the acknowledgements. */
    void (*output)(void *data, const char *buf, size_t len);
    /* Exactly once: end filled in, or end NULL and err (owned by the callee): no such
     * session, or the connection closed (ECANCELED) or broke (ECONNRESET). */
    void (*end)(void *data, const struct agent_pty_end *end, struct wr_error *err);
};

struct agent_pty;

/* Attaches to session pty_id (detaching whoever was attached). *ret_pty stays valid until
 * handlers->end has run. */
int agent_pty_attach(struct agent_conn *conn, uint64_t pty_id,
                     const struct agent_pty_handlers *handlers, void *data,
                     struct agent_pty **ret_pty, struct wr_error **err);
/* Opens a session and makes the same stream its first attachment (one round trip less
 * than open then attach): handlers->attached gets its id and pid first. */
int agent_pty_open_attached(struct agent_conn *conn, const struct agent_pty_request *req,
                            const struct agent_pty_handlers *handlers, void *data,
                            struct agent_pty **ret_pty, struct wr_error **err);
/* A session named by its id, else its leader's pid, else its tag. */
struct agent_pty_selector {
    uint64_t id, pid;
    const char *tag;
};
/* The same by selector; live: output from now on, not the ring of recent output (except on
 * the session's first attachment, which gets everything since the start). */
int agent_pty_attach_selected(struct agent_conn *conn, const struct agent_pty_selector *sel,
                              bool live, const struct agent_pty_handlers *handlers, void *data,
                              struct agent_pty **ret_pty, struct wr_error **err);
/* What PROC_CONTROL does to a session without attaching; zero fields do nothing. */
struct agent_pty_control {
    const void *input; /* for the terminal or the stdin pipe (copied) */
    size_t input_len;
    bool close_stdin;    /* pipes: EOF once the input is written */
    int signum;          /* to the session's process group */
    unsigned rows, cols; /* terminals: a resize */
};
/* cb gets ENOENT for no such session, EPIPE for input to a closed stdin, ESRCH after the
 * exit, EINVAL for a control that does not fit the session. */
int agent_pty_control(struct agent_conn *conn, const struct agent_pty_selector *sel,
                      const struct agent_pty_control *ctl, agent_simple_cb cb, void *data,
                      struct wr_error **err);
/* Input for the terminal (copied; split into frames of at most GI_CHUNK_SIZE). */
int agent_pty_input(struct agent_pty *pty, const void *buf, size_t len, struct wr_error **err);
int agent_pty_resize(struct agent_pty *pty, unsigned rows, unsigned cols, struct wr_error **err);
/* Acknowledges bytes of output consumed, letting guest-init send that much more. */
int agent_pty_ack(struct agent_pty *pty, uint64_t bytes, struct wr_error **err);
/* Sends signum to the session's process group. */
int agent_pty_signal(struct agent_pty *pty, int signum, struct wr_error **err);
/* Detaches, leaving the session running; end runs later with AGENT_PTY_DETACHED. */
int agent_pty_detach(struct agent_pty *pty, struct wr_error **err);
/* Kills every process of the terminal session and forgets it (ENOENT when unknown). */
int agent_pty_close(struct agent_conn *conn, uint64_t pty_id, agent_simple_cb cb, void *data,
                    struct wr_error **err);

struct agent_pty_info {
    uint64_t id, pid;
    char argv0[256];
    bool pipes;
    char tag[257];            /* "" when none (GI_PROC_TAG_MAX bytes at most) */
    const uint8_t *host_data; /* points into the answer: valid during the callback */
    size_t host_data_len;
    unsigned rows, cols;
    bool running;
    int exit_code, signal; /* when not running */
    int64_t created;       /* seconds since the epoch */
};
/* list (n entries, owned by the agent client, valid during the call) or err. */
typedef void (*agent_pty_list_cb)(void *data, const struct agent_pty_info *list, size_t n,
                                  struct wr_error *err);
int agent_pty_list(struct agent_conn *conn, agent_pty_list_cb cb, void *data,
                   struct wr_error **err);
