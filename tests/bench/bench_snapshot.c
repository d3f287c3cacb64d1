/* Benchmark of snapshots, forks and git commits on the jail backend, through the real MCP
 * stdio server:
 *   - sandbox_snapshot of a sandbox holding 1 MiB vs 1 GiB of new workspace files (O(1):
 *     target <= 2x, and < 50 ms)
 *   - sandbox_restore (a fork) vs a plain sandbox_create of the same repository (<= 1.2x)
 *   - sandbox_git_commit of 1,000 changed files (< 1 s)
 * Usage: bench_snapshot [path/to/warren]  (root). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "client.h"

static void exec_ok(struct bench_server *s, const char *id, const char *command)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id);
    cJSON_AddStringToObject(a, "command", command);
    cJSON_AddNumberToObject(a, "timeout_seconds", 600);
    cJSON *r = bench_tool(s, "sandbox_exec", a);
    if (cJSON_GetObjectItem(r, "exit_code")->valueint != 0)
        bench_die(command);
    cJSON_Delete(r);
}

static cJSON *create(struct bench_server *s, const char *repo, const char *name)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "repo", repo);
    if (name)
        cJSON_AddStringToObject(a, "name", name);
    return bench_tool(s, "sandbox_create", a);
}

static double snapshot_ms(struct bench_server *s, const char *id, char **ret_snapshot)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id);
    uint64_t t0 = wr_now_ns();
    cJSON *r = bench_tool(s, "sandbox_snapshot", a);
    double ms = (double)(wr_now_ns() - t0) / 1e6;
    if (ret_snapshot)
        *ret_snapshot = wr_strdup(cJSON_GetObjectItem(r, "snapshot_id")->valuestring);
    cJSON_Delete(r);
    return ms;
}

/* Median of the snapshot time of a sandbox holding `fill` (a shell command) plus changes. */
static double snapshot_median(struct bench_server *s, const char *repo, const char *fill,
                              char **ret_snapshot)
{
    enum { N = 7 };
    uint64_t t[N];
    cJSON *sb = create(s, repo, NULL);
    const char *id = cJSON_GetObjectItem(sb, "id")->valuestring;
    exec_ok(s, id, fill);
    for (int i = 0; i < N; i++) {
        exec_ok(s, id, "date > /workspace/stamp");
        char *snap = NULL;
        t[i] = (uint64_t)(snapshot_ms(s, id, i == N - 1 ? &snap : NULL) * 1e3);
        if (snap)
            *ret_snapshot = snap;
    }
    cJSON_Delete(sb);
    return (double)bench_percentile(t, N, 0.5) / 1e3;
}

static void bench_fork(struct bench_server *s, const char *repo, const char *snapshot)
{
    enum { N = 15 };
    uint64_t c[N], f[N];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = wr_now_ns();
        cJSON *plain = create(s, repo, NULL);
        uint64_t t1 = wr_now_ns();
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "snapshot", snapshot);
        cJSON *fork = bench_tool(s, "sandbox_restore", a);
        uint64_t t2 = wr_now_ns();
        c[i] = t1 - t0;
        f[i] = t2 - t1;
        cJSON_Delete(bench_destroy(s, cJSON_GetObjectItem(plain, "id")->valuestring));
        cJSON_Delete(bench_destroy(s, cJSON_GetObjectItem(fork, "id")->valuestring));
        cJSON_Delete(plain);
        cJSON_Delete(fork);
    }
    double cm = (double)bench_percentile(c, N, 0.5) / 1e6,
           fm = (double)bench_percentile(f, N, 0.5) / 1e6;
    printf("sandbox_restore (fork): p50 %.1f ms; plain sandbox_create: p50 %.1f ms; ratio %.2fx "
           "(target <= 1.2x)\n",
           fm, cm, fm / cm);
}

static void bench_commit(struct bench_server *s, const char *repo)
{
    cJSON *sb = create(s, repo, "bench-commit");
    const char *id = cJSON_GetObjectItem(sb, "id")->valuestring;
    exec_ok(s, id,
            "mkdir -p many && for i in $(seq 1 1000); do echo \"change $i\" > many/f$i.txt; done");
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id);
    cJSON_AddStringToObject(a, "message", "1000 files");
    uint64_t t0 = wr_now_ns();
    cJSON *r = bench_tool(s, "sandbox_git_commit", a);
    double ms = (double)(wr_now_ns() - t0) / 1e6;
    printf("sandbox_git_commit of %d changed files: %.0f ms (target < 1000 ms)\n",
           cJSON_GetObjectItem(r, "files_changed")->valueint, ms);
    cJSON_Delete(r);
    cJSON_Delete(bench_destroy(s, id));
    cJSON_Delete(sb);
}

/* Sandboxes outlive the server: destroy every one this run made. */
static void destroy_all(struct bench_server *s)
{
    cJSON *list = bench_tool(s, "sandbox_list", NULL);
    cJSON *sb;
    cJSON_ArrayForEach(sb, cJSON_GetObjectItem(list, "sandboxes"))
    {
        cJSON_Delete(bench_destroy(s, cJSON_GetObjectItem(sb, "id")->valuestring));
    }
    cJSON_Delete(list);
}

int main(int argc, char **argv)
{
    if (geteuid() != 0) {
        fprintf(stderr, "bench_snapshot: needs root (the jail backend)\n");
        return 77;
    }
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    char tmpl[] = "/tmp/warren-bench-snap-XXXXXX";
    const char *state = mkdtemp(tmpl);
    struct bench_server s = {0};
    bench_server_start(&s, warren, state, "jail", NULL);
    bench_initialize(&s);
    _cleanup_free_ char *repo = bench_make_repo();
    _cleanup_free_ char *small_snap = NULL, *big_snap = NULL;
    double small =
        snapshot_median(&s, repo, "head -c 1M /dev/urandom > /workspace/blob", &small_snap);
    double big = snapshot_median(
        &s, repo, "for i in $(seq 1 64); do head -c 16M /dev/zero > /workspace/blob$i; done",
        &big_snap);
    printf("sandbox_snapshot, running sandbox: 1 MiB workspace p50 %.1f ms, 1 GiB workspace p50 "
           "%.1f ms; ratio %.2fx (target <= 2x, and < 50 ms)\n",
           small, big, big / small);
    bench_fork(&s, repo, small_snap);
    bench_commit(&s, repo);
    destroy_all(&s);
    fclose(s.in);
    waitpid(s.pid, NULL, 0);
    _cleanup_free_ char *cmd = wr_asprintf("rm -rf %s %s", state, repo);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_snapshot: could not remove %s\n", state);
    return 0;
}
