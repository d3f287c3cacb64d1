/* Internal interfaces of the guest-init binary: the event loop, connections, requests
 * and transports. Nothing outside guest-init/ includes this. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"
#include "util/util.h"

#define GI_AGENT_NAME "warren-guest-init 0.1.0"
#define GI_WORKSPACE "/workspace"
#define GI_MAX_CONNECTIONS 32
/* Requests in flight on one connection; more get an EAGAIN error. */
#define GI_MAX_REQUESTS 256
/* Output queued for a connection past which producers (exec pipes, READs) pause, and
 * the level under which they resume. Keeps a huge-output command from filling PID 1. */
#define GI_OUT_HIGH (8u << 20)
#define GI_OUT_LOW (4u << 20)
/* Stdin bytes queued for one process past which the connection stops reading. */
#define GI_STDIN_HIGH (4u << 20)
/* After the leader exits, how long a silent background child may hold the pipes. */
#define GI_LINGER_MS 100

#define gi_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- event loop (loop.c) ------------------------------------------------------------ */

struct gi_watch;
typedef void (*gi_watch_cb)(struct gi_watch *w, uint32_t events);
struct gi_watch {
    int fd; /* -1 when not watched: pending events for it are dropped */
    uint32_t events;
    gi_watch_cb cb;
};

int gi_loop_init(struct wr_error **err);
/* Registers fd with the given epoll events (0 is allowed: registered but paused). */
int gi_watch_add(struct gi_watch *w, int fd, uint32_t events, gi_watch_cb cb);
void gi_watch_set(struct gi_watch *w, uint32_t events);
/* Unregisters and closes the fd; safe on an unwatched watch. */
void gi_watch_close(struct gi_watch *w);
/* Frees p after the current batch of events, so that events already fetched for the
 * object's watches can still be looked at (and dropped) safely. */
void gi_defer_free(void *p);
/* Runs until gi_loop_stop. Calls gi_timers_run before each wait. */
void gi_loop_run(void);
/* Runs fn at the start of the next loop iteration, before waiting (one pending at a
 * time): for work split into batches so that timers and I/O are not starved. */
void gi_loop_soon(void (*fn)(void));
void gi_loop_stop(void);

/* Runs due timers of every module and returns the next deadline (ms, 0 for none). */
uint64_t gi_timers_run(uint64_t now);

/* ---- connections (conn.c) ----------------------------------------------------------- */

struct gi_conn;
struct gi_transport;

struct gi_req {
    struct gi_req *next;
    struct gi_conn *conn;
    uint32_t stream;
    /* A follow-up frame (STDIN, SIGNAL, DATA, WRITE_END). <0 is a protocol error. */
    int (*on_frame)(struct gi_req *req, uint16_t type, const uint8_t *payload, size_t len);
    /* The connection's output queue dropped under GI_OUT_LOW. May be NULL. */
    void (*on_drain)(struct gi_req *req);
    /* The connection is going away: release everything, the request is already unlinked. */
    void (*abort)(struct gi_req *req);
};

/* Takes ownership of fd; sends HELLO. Returns NULL (fd closed) on failure. */
struct gi_conn *gi_conn_new(int fd, struct gi_transport *transport);
void gi_conn_close(struct gi_conn *c);
void gi_conn_close_all(void);
/* Tries to write queued output of every connection (once per loop iteration). */
void gi_conn_flush_all(void);
/* Blocks up to timeout_ms writing c's queued output (SHUTDOWN uses it). */
void gi_conn_flush_sync(struct gi_conn *c, int timeout_ms);

void gi_req_add(struct gi_conn *c, struct gi_req *req);
/* Unlinks req (it has sent its final frame); the caller frees it. */
void gi_req_remove(struct gi_req *req);

/* Queues a finished frame (copied). */
void gi_conn_send(struct gi_conn *c, struct gi_writer *w);
/* Room for a frame of up to max payload bytes at the tail of the output queue: the
 * caller writes the payload at the returned pointer, then commits its real length. */
uint8_t *gi_conn_reserve(struct gi_conn *c, size_t max);
void gi_conn_commit(struct gi_conn *c, uint16_t type, uint32_t stream, size_t len);
/* ERROR {ERRNO, MESSAGE}; errnum is positive. Returns 0. */
int gi_conn_send_error(struct gi_conn *c, uint32_t stream, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A RESULT without fields. */
void gi_conn_send_empty_result(struct gi_conn *c, uint32_t stream);
/* The connection's writer for building a frame (valid until the next send). */
struct gi_writer *gi_conn_writer(struct gi_conn *c);
bool gi_conn_congested(const struct gi_conn *c);
/* Stop/restart reading requests (stdin backpressure). */
void gi_conn_pause_input(struct gi_conn *c, bool pause);

/* ---- users (user.c) ------------------------------------------------------------------ */

/* One /etc/passwd line (or /etc/group line: uid is then its gid). */
struct gi_passwd {
    char name[64];
    uint32_t uid, gid;
    char home[256];
    char shell[128]; /* "" when absent */
};
/* 0 and *ret for a well-formed line, -1 otherwise. */
int gi_parse_passwd_line(const char *line, struct gi_passwd *ret);

struct gi_user {
    uint32_t uid, gid;
    char home[256];  /* "" when unknown */
    char shell[128]; /* the login shell, "" when unknown */
};
/* Resolves "name", "uid", "name:group" or "uid:gid" against /etc/passwd and /etc/group;
 * -1 and *why when it cannot. */
int gi_resolve_user(const char *spec, struct gi_user *ret, const char **why);
/* The name of uid (group: of gid) in the sandbox's /etc/passwd (/etc/group), or the number
 * when it has none, into out. Answers are kept for a second (a listing asks often). */
void gi_id_name(uint32_t id, bool group, char out[64]);
/* setgroups, setgid, setuid; 0 or -errno. */
int gi_become_user(const struct gi_user *u);

/* ---- requests (exec.c, files.c, dirs.c) --------------------------------------------------- */

/* Handlers of the request-starting frame types. They answer on the stream themselves
 * (ERROR for failures); <0 means a malformed payload, which closes the connection. */
int gi_exec_start(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_read_start(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_write_start(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_stat(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_memstats(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_sync(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_drop_caches(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_shutdown_request(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_attach(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
/* dirs.c */
int gi_list_dir(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_mkdir(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_rename(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_remove(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
/* watch.c: WATCH (inotify); WATCH_STOP comes on its stream. */
int gi_watch_start(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);

/* PTY sessions (pty.c): requests, and the follow-ups on an attach stream. */
int gi_pty_open(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_pty_attach(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_pty_close(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
int gi_pty_list(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
/* PROC_CONTROL: input, closing stdin, a signal or a resize for a session named by id, pid
 * or tag, without attaching. */
int gi_proc_control(struct gi_conn *c, uint32_t stream, const uint8_t *payload, size_t len);
/* A child was reaped; true when it was the leader of a terminal session. */
bool gi_pty_reaped(pid_t pid, int status);
uint64_t gi_pty_timers(uint64_t now);
/* SIGKILLs the process group of every terminal session (shutdown). */
void gi_pty_kill_all(void);

/* What EXEC and PTY_OPEN share: the command, its environment, directory and user. */
struct gi_exec_spec {
    char **argv;
    char **env;
    char *cwd;
    uint64_t timeout_ms;
    bool stdin_open;
    char *user;        /* USER as given, or NULL: root */
    struct gi_user as; /* resolved from user before the fork */
};
/* Parses ARG, ENV, CWD, USER, TIMEOUT_MS, STDIN_OPEN (other tags are skipped). Returns <0
 * for a malformed payload, 0 with *bad set for invalid contents. Without ENV the default
 * environment is filled in. */
int gi_exec_spec_parse(const uint8_t *payload, size_t len, bool need_argv, struct gi_exec_spec *s,
                       const char **bad);
void gi_exec_spec_free(struct gi_exec_spec *s);
/* Resolves USER (HOME follows it) and opens CWD: the directory's fd, or <0 with the
 * ERROR already sent (what names the request in its message). */
int gi_exec_spec_prepare(struct gi_conn *c, uint32_t stream, struct gi_exec_spec *s,
                         const char *what);
/* In a forked child: OOM score raised, signal dispositions and mask reset. */
void gi_child_prepare(void);
/* In a forked child with its stdio in place: becomes the user, enters the directory and
 * execs; a failure is reported on fd 2 and exits 127 / 126 like a shell. */
__attribute__((noreturn)) void gi_child_exec(const struct gi_exec_spec *s, int cwd_fd);

/* A child was reaped; returns true when it was the leader of one of our execs. */
bool gi_exec_reaped(pid_t pid, int status);
uint64_t gi_exec_timers(uint64_t now);
/* SIGKILLs the process group of every running exec (shutdown). */
void gi_exec_kill_all(void);

/* Resolves a PATH TLV value: relative paths are under /workspace. Returns a new string
 * or NULL (ERROR already sent) when the path is empty, too long or holds a NUL byte. */
char *gi_resolve_path(struct gi_conn *c, uint32_t stream, const uint8_t *p, size_t n);

/* ---- transports (transport.c) ------------------------------------------------------- */

struct gi_options {
    bool jail;
    int listen_fd;       /* -1 unless --listen-fd */
    int channel_fd;      /* -1 unless --channel-fd */
    unsigned vsock_port; /* 0 unless --vsock-port or warren.vsock= */
    char *serial_path;   /* NULL unless --serial or warren.serial=/PATH */
    char *serial_name;   /* NULL unless warren.serial=NAME (a virtio-serial port name) */
};

/* Where connections come from: a listening socket whose accepted connections each
 * become a gi_conn, or a single always-open channel (virtio-serial) that is one gi_conn
 * and is reopened after it fails. */
struct gi_transport_ops {
    const char *name;
    /* One long-lived stream rather than accepted connections: a host HELLO on it starts
     * a new session (PROTOCOL.md, "Transports"). */
    bool channel;
    int (*start)(struct gi_transport *t, struct wr_error **err);
    void (*conn_closed)(struct gi_transport *t);
    uint64_t (*timer)(struct gi_transport *t, uint64_t now);
};

struct gi_transport {
    const struct gi_transport_ops *ops;
    struct gi_watch watch; /* the listening socket */
    int listen_fd;
    unsigned vsock_port;
    char *serial_path; /* channel: a device path, or NULL to look up serial_name */
    char *serial_name;
    int channel_fd;  /* channel: an inherited fd served once, -1 otherwise */
    bool fd_channel; /* the channel is channel_fd: when it closes, there is no reopening */
    unsigned n_conns;
    uint64_t reopen_at; /* channel: when to reopen, 0 when open */
};

/* Picks the transport from the options (then the kernel command line in VM mode). */
int gi_transport_setup(const struct gi_options *o, struct gi_transport *t, struct wr_error **err);
uint64_t gi_transport_timers(uint64_t now);

/* ---- system (system.c) -------------------------------------------------------------- */

/* VM mode as PID 1 of the initramfs: early mounts, kernel modules, the virtiofs root
 * and workspace, switch root, basic mounts, lo, hostname (vm.c). */
int gi_vm_setup(struct wr_error **err);
/* VM mode, warren.net=user: slirp's static addressing on the NIC, a default route and a
 * resolv.conf naming slirp's DNS (net.c). Failures are logged, never fatal: false. */
bool gi_vm_net_setup(void);
/* Mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /tmp when missing. */
int gi_mount_basics(struct wr_error **err);
/* Kills every process, syncs, and powers off (VM PID 1) or exits. Never returns. */
__attribute__((noreturn)) void gi_shutdown(void);
extern bool gi_jail_mode;
