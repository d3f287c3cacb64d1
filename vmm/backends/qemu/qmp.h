/* A QMP (QEMU Machine Protocol) client on the libuv loop.
 *
 * qmp_connect connects to a QMP unix socket (retrying while QEMU creates it), reads the
 * greeting and negotiates capabilities; then commands go out with an "id" and their replies
 * are matched to it, and asynchronous events (SHUTDOWN, STOP, BALLOON_CHANGE, ...) go to an
 * optional callback. Every line QEMU sends is capped (QMP_LINE_MAX).
 *
 * QEMU's -qmp chardev serves one client at a time: keep connections short. */
#pragma once

#include <cjson/cJSON.h>
#include <stdint.h>
#include <uv.h>

#include "util/util.h"

#define QMP_LINE_MAX (1u << 20)

struct qmp;

/* Connection outcome: qmp (owned by the callee from now on: release it with qmp_close) or
 * err (owned by the callee; the connection is already gone). */
typedef void (*qmp_ready_cb)(void *data, struct qmp *qmp, struct wr_error *err);
/* A command's outcome: its "return" value (borrowed: valid during the call only), or err
 * (owned by the callee) with QEMU's error class and description, ECONNRESET when the
 * connection dropped, ECANCELED when qmp_close ran first. */
typedef void (*qmp_reply_cb)(void *data, const cJSON *ret, struct wr_error *err);
/* An event ("SHUTDOWN", ...) and the whole event object (borrowed). event == NULL means
 * the connection has dropped; nothing follows. */
typedef void (*qmp_event_cb)(void *data, const char *event, const cJSON *message);

/* Connects to socket_path, retrying ENOENT / ECONNREFUSED until timeout_ms has passed, and
 * negotiates capabilities. cb runs once, from the loop, unless qmp_close(*ret_qmp) runs
 * first (that cancels the attempt). *ret_qmp (may be NULL) is the connection being made; it
 * is the same pointer cb receives. Returns < 0 (cb not called) only for bad arguments. */
int qmp_connect(uv_loop_t *loop, const char *socket_path, uint32_t timeout_ms, qmp_ready_cb cb,
                void *data, struct qmp **ret_qmp, struct wr_error **err);

/* Events from now on go to cb (NULL: dropped). */
void qmp_set_event_cb(struct qmp *qmp, qmp_event_cb cb, void *data);

/* Sends {"execute": command, "arguments": arguments}. arguments may be NULL; it is taken
 * over (deleted by the callee) in every case. cb runs once, from the loop, unless this
 * returns < 0 (the connection is closed). */
int qmp_execute(struct qmp *qmp, const char *command, cJSON *arguments, qmp_reply_cb cb, void *data,
                struct wr_error **err);

/* Closes the connection (or cancels a qmp_connect whose cb has not run: cb never runs
 * then). Pending commands' callbacks run now with ECANCELED; the memory is freed once libuv
 * has closed the handles. A connection handed out by the ready callback stays allocated,
 * even after it dropped, until this is called: every such connection must be closed.
 * NULL-safe. */
void qmp_close(struct qmp *qmp);

/* Blocking one-shot: connects, negotiates, runs command (no arguments), disconnects, all
 * within timeout_ms. For paths that have no loop (a backend's stop). "quit" succeeds when
 * QEMU closes the connection after it. When ret_json is not NULL it receives the "return"
 * value printed as JSON (caller frees). */
int qmp_execute_sync(const char *socket_path, const char *command, uint32_t timeout_ms,
                     char **ret_json, struct wr_error **err);
/* The same with arguments (not taken over). */
int qmp_execute_sync_args(const char *socket_path, const char *command, const cJSON *arguments,
                          uint32_t timeout_ms, char **ret_json, struct wr_error **err);
