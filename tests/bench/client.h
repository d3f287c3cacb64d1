/* A minimal MCP stdio client for the benchmark programs: it starts `warren mcp`, sends
 * requests and reads answers with as little client-side work as possible, so that the
 * figures are the server's. Every failure ends the program (bench_die). */
#pragma once

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "util/util.h"

struct bench_server {
    pid_t pid;
    FILE *in;  /* to the server */
    FILE *out; /* from the server */
    int next_id;
};

void bench_die(const char *what) __attribute__((noreturn));
/* extra_arg: one more command-line argument for warren, or NULL. */
void bench_server_start(struct bench_server *s, const char *warren, const char *state_dir,
                        const char *backend, const char *extra_arg);
/* Closes the server's stdin (it exits) and waits for it. */
void bench_server_stop(struct bench_server *s);
/* initialize + notifications/initialized */
void bench_initialize(struct bench_server *s);
/* The result of a request (caller frees). */
cJSON *bench_rpc(struct bench_server *s, const char *method, cJSON *params);
/* The structuredContent of a successful tool call (caller frees); args is taken over. */
cJSON *bench_tool(struct bench_server *s, const char *name, cJSON *args);
cJSON *bench_destroy(struct bench_server *s, const char *id);
/* Sends a serialized request line; returns the response line (valid until the next call). */
const char *bench_rpc_raw(struct bench_server *s, const char *line, size_t len);
cJSON *bench_exec_args(const char *id, const char *cmd);
/* sandbox_exec arguments running command through /bin/sh -c. */
cJSON *bench_shell_args(const char *id, const char *command);
/* A small git repository in /tmp (caller frees the path). */
char *bench_make_repo(void);
/* Runs a shell command; a failure ends the program. */
void bench_run(const char *command);
/* Creates and destroys n sandboxes (args: a JSON object of sandbox_create arguments, copied
 * for each), filling t with each create's time in ns. */
void bench_create_times(struct bench_server *s, const cJSON *args, uint64_t *t, size_t n);
/* Sorts v and returns its p-th percentile (p in 0..1). */
uint64_t bench_percentile(uint64_t *v, size_t n, double p);
/* Writes and reads back an n-byte random file through the tools (best of 5), in MB/s. */
void bench_file_throughput(struct bench_server *s, const char *id, size_t n, double *ret_write_mbs,
                           double *ret_read_mbs);
