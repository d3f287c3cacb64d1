/* A client for Cloud Hypervisor's REST API (shared/spec/cloud-hypervisor.yaml), spoken over
 * the VMM's --api-socket unix socket on the libuv loop, and the host side of its hybrid
 * vsock (`CONNECT <port>\n` / `OK <hostport>\n`).
 *
 * Three layers, each usable on its own (the tests and the fuzzer drive the lower two
 * without sockets):
 *   - request bodies built from a vmm_sandbox_spec (ch_api_body);
 *   - a response parser for the real server's framing (ch_response_parser_*): status lines
 *     without a reason phrase, 204 without Content-Length, keep-alive, error bodies that are
 *     a JSON array of strings;
 *   - a connection (ch_api_*) that queues calls and runs one at a time. */
#pragma once

#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "vmm/backends/backend-internal.h"

/* Responses larger than this are refused: vm.info (the whole VmConfig) is a few KiB. */
#define CH_API_RESPONSE_MAX (1024 * 1024)
#define CH_API_HEADER_MAX (16 * 1024)
/* The guest-init port the host connects to over hybrid vsock (warren.vsock= on the
 * kernel command line). */
#define CH_VSOCK_AGENT_PORT 1024

/* The calls warren makes. The table in ch-api.c gives each its method and path. */
enum ch_api_op {
    CH_VMM_PING,
    CH_VM_CREATE,
    CH_VM_BOOT,
    CH_VM_INFO,
    CH_VM_PAUSE,
    CH_VM_RESUME,
    CH_VM_RESIZE,
    CH_VM_SNAPSHOT,
    CH_VM_RESTORE,
    CH_VM_SHUTDOWN,
    CH_VMM_SHUTDOWN,
    CH_API_OP_COUNT,
};

/* "vm.boot": the endpoint name, as CH's own error messages and the spec name it. */
const char *ch_api_op_name(enum ch_api_op op);
/* "GET" or "PUT". */
const char *ch_api_op_method(enum ch_api_op op);
/* True for the calls that carry a JSON body (create, resize, snapshot, restore). CH answers
 * 400 when an action endpoint gets one, so the others never send a body. */
bool ch_api_op_has_body(enum ch_api_op op);

/* ---- request bodies --------------------------------------------------------------- */

/* What the calls with a body need; only the field of the op at hand is read. */
struct ch_api_args {
    const struct vmm_sandbox_spec *spec; /* vm.create */
    uint64_t desired_balloon;            /* vm.resize, bytes */
    const char *url;                     /* vm.snapshot destination_url, vm.restore source_url */
};

/* The JSON body of op (caller frees), or NULL for calls without a body. Fails (NULL with
 * *err set) only when args lack what op needs or a path is unusable. */
char *ch_api_body(enum ch_api_op op, const struct ch_api_args *args, struct wr_error **err);
/* The guest kernel command line for spec (caller frees). */
char *ch_api_cmdline(const struct vmm_sandbox_spec *spec);
/* <spec->dir>/<name>: the files warren makes for the VMM (api.sock, bound by the launcher
 * and handed to CH as a listening fd). */
char *ch_api_path(const struct vmm_sandbox_spec *spec, const char *name);
/* The directory of the files the confined VMM creates itself (vsock.sock, serial.log):
 * <spec->dir>/CH_VMM_DIR, owned by the VMM's uid (vmm/backends/confine.h). */
#define CH_VMM_DIR "vmm"
char *ch_api_vmm_path(const struct vmm_sandbox_spec *spec, const char *name);

/* ---- responses ---------------------------------------------------------------------- */

struct ch_response_parser {
    http_parser parser;
    struct wr_buf body;
    size_t header_bytes;
    int status;    /* the HTTP status once the headers are in */
    bool complete; /* one whole response parsed; ch_response_parser_next before the next */
    bool failed;
};

void ch_response_parser_init(struct ch_response_parser *p);
void ch_response_parser_free(struct ch_response_parser *p);
/* Feeds bytes. Returns how many were consumed (parsing stops after one complete response,
 * leaving the rest for the next one), or -1 on malformed or oversized input (then the
 * connection is unusable). */
ssize_t ch_response_parser_feed(struct ch_response_parser *p, const char *data, size_t len);
/* Forgets the parsed response and gets ready for the next one on the same connection. */
void ch_response_parser_next(struct ch_response_parser *p);

/* Turns a non-2xx response into an error: "cloud-hypervisor: vm.boot: 500: Error booting
 * VM: ...: Invalid config", the messages of CH's JSON string array joined outermost first,
 * the raw body (sanitized, shortened) when it is not such an array. Returns -status. */
int ch_api_status_error(enum ch_api_op op, int http_status, const char *body, size_t len,
                        struct wr_error **err);

struct ch_vm_info {
    char state[16];              /* "Created", "Running", "Paused", "Shutdown", "BreakPoint" */
    uint64_t memory_actual_size; /* RAM minus the balloon; 0 when absent */
};
/* Parses a vm.info body (VmInfo). */
int ch_api_parse_vm_info(const char *body, size_t len, struct ch_vm_info *ret,
                         struct wr_error **err);

/* ---- the connection ------------------------------------------------------------------ */

struct ch_api;

/* A call's outcome: status is 200 or 204 and body (NUL-terminated, owned by the client,
 * valid during the callback) what came with it; or err (owned by the callee) for a
 * transport failure, a timeout or a non-2xx status (message from ch_api_status_error). */
typedef void (*ch_api_cb)(void *data, int status, const char *body, size_t len,
                          struct wr_error *err);

/* A client for the API socket at socket_path. It connects on the first call and again
 * after the connection broke, so it may be created before the VMM listens. The caller
 * owns the result and releases it with ch_api_close. */
struct ch_api *ch_api_new(uv_loop_t *loop, const char *socket_path);
/* Fails every queued call with ECANCELED (their callbacks run before this returns) and
 * frees the client once libuv is done with its handles. Safe from inside a callback. */
void ch_api_close(struct ch_api *api);

/* Queues a call; body is the JSON (copied) for calls that have one, NULL otherwise.
 * timeout_ms bounds connect + send + reply. cb runs exactly once, always from the loop,
 * never inside this call. Fails (without calling cb) only on a closed client or a body
 * given to a call that takes none. */
int ch_api_call(struct ch_api *api, enum ch_api_op op, const char *body, uint32_t timeout_ms,
                ch_api_cb cb, void *data, struct wr_error **err);

/* The same call made synchronously on a fresh connection, for stop(), which may not return
 * to the loop: the HTTP status (200/204) or < 0 with err. Blocks at most timeout_ms. */
int ch_api_call_sync(const char *socket_path, enum ch_api_op op, const char *body,
                     uint32_t timeout_ms, struct wr_error **err);

/* ---- hybrid vsock -------------------------------------------------------------------- */

/* The handshake's outcome: a connected stream fd (the callee owns it) and the guest bytes
 * that arrived in the same read as the OK line (valid during the callback), or err. */
typedef void (*ch_vsock_cb)(void *data, int fd, const char *extra, size_t extra_len,
                            struct wr_error *err);

/* Connects to guest port `port` through CH's vsock socket at socket_path: connect, send
 * `CONNECT <port>\n`, read `OK <hostport>\n`. A refused or closed connection, or no OK
 * within CH's 2 s, means the guest is not listening yet: it retries every 20 ms until
 * timeout_ms. cb runs exactly once, from the loop. */
int ch_vsock_connect(uv_loop_t *loop, const char *socket_path, uint32_t port, uint32_t timeout_ms,
                     ch_vsock_cb cb, void *data, struct wr_error **err);
/* Parses the handshake's reply buffer: 1 and *ret_consumed (the OK line's length) when it
 * holds `OK <digits>\n`, 0 when the line is not complete yet, -1 when it is not an OK. */
int ch_vsock_parse_reply(const char *buf, size_t len, size_t *ret_consumed);
