/* Benchmark of the jail backend through the real MCP stdio server, as a client sees it:
 *   - tools/call round trip of sandbox_list (p50, p99)
 *   - sandbox_exec of /bin/true vs a bare fork+exec+wait of /bin/true measured beside it
 *   - sandbox_create with a small repo whose commit was seen before (p50)
 *   - a 16 MiB file written and read back through the tools (MB/s)
 *   - resident memory of an idle sandbox's guest-init (PID 1)
 * Usage: bench_tools [path/to/warren]  (run as root; prints figures, exits non-zero only
 * when something fails, never on a slow figure). */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "client.h"

static uint64_t bare_true_ns(void)
{
    uint64_t t = wr_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
    return wr_now_ns() - t;
}

/* The server time of a sandbox_list call is estimated as its round trip minus the round
 * trip of a ping (pipes, wake-ups, JSON on both sides), measured alternately. */
static void bench_list(struct bench_server *s)
{
    enum { N = 2000 };
    static uint64_t t[N], p[N];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = wr_now_ns();
        cJSON_Delete(bench_tool(s, "sandbox_list", NULL));
        uint64_t t1 = wr_now_ns();
        cJSON_Delete(bench_rpc(s, "ping", NULL));
        t[i] = t1 - t0;
        p[i] = wr_now_ns() - t1;
    }
    uint64_t list = bench_percentile(t, N, 0.5), ping = bench_percentile(p, N, 0.5);
    printf("sandbox_list round trip over stdio: p50 %.1f us (p99 %.1f us); ping round trip p50 "
           "%.1f us; "
           "server time of sandbox_list ~ %.1f us (target p50 <= 100 us)\n",
           list / 1e3, bench_percentile(t, N, 0.99) / 1e3, ping / 1e3, (double)(list - ping) / 1e3);
}

static void bench_exec(struct bench_server *s, const char *id)
{
    enum { N = 300 };
    static uint64_t tool_t[N], bare_t[N];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = wr_now_ns();
        cJSON_Delete(bench_tool(s, "sandbox_exec", bench_exec_args(id, "/bin/true")));
        tool_t[i] = wr_now_ns() - t0;
        bare_t[i] = bare_true_ns();
    }
    uint64_t tp = bench_percentile(tool_t, N, 0.5), bp = bench_percentile(bare_t, N, 0.5);
    printf("sandbox_exec /bin/true: p50 %.2f ms; bare fork+exec+wait: p50 %.2f ms; ratio %.2fx "
           "(target <= 3x)\n",
           tp / 1e6, bp / 1e6, (double)tp / (double)bp);
}

static void bench_create(struct bench_server *s, const char *repo)
{
    enum { N = 30 };
    uint64_t t[N];
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "repo", repo);
    bench_create_times(s, a, t, N);
    cJSON_Delete(a);
    printf("sandbox_create (host image, repo commit seen before): p50 %.1f ms, max %.1f ms (target "
           "p50 <= 50 ms)\n",
           bench_percentile(t, N, 0.5) / 1e6, bench_percentile(t, N, 1.0) / 1e6);
}

static void report_rss(struct bench_server *s, const char *id)
{
    cJSON *list = bench_tool(s, "sandbox_list", NULL);
    cJSON *sb;
    cJSON_ArrayForEach(sb, cJSON_GetObjectItem(list, "sandboxes"))
    {
        if (strcmp(cJSON_GetObjectItem(sb, "id")->valuestring, id) != 0)
            continue;
        int pid = cJSON_GetObjectItem(sb, "pid")->valueint;
        _cleanup_free_ char *path = wr_asprintf("/proc/%d/status", pid);
        FILE *f = fopen(path, "r");
        char line[256];
        while (f && fgets(line, sizeof(line), f))
            if (!strncmp(line, "VmRSS:", 6))
                printf("idle guest-init (sandbox PID 1) resident memory:%s", line + 6);
        if (f)
            fclose(f);
    }
    cJSON_Delete(list);
}

int main(int argc, char **argv)
{
    if (geteuid() != 0) {
        fprintf(stderr, "bench_tools: needs root (the jail backend)\n");
        return 77;
    }
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    char tmpl[] = "/tmp/warren-bench-state-XXXXXX";
    const char *state = mkdtemp(tmpl);
    struct bench_server s = {0};
    bench_server_start(&s, warren, state, "jail", NULL);
    bench_initialize(&s);
    _cleanup_free_ char *repo = bench_make_repo();
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "repo", repo);
    cJSON_AddStringToObject(a, "name", "bench");
    cJSON *sb = bench_tool(&s, "sandbox_create", a);
    const char *id = cJSON_GetObjectItem(sb, "id")->valuestring;
    bench_list(&s);
    bench_exec(&s, id);
    bench_create(&s, repo);
    double w, r;
    bench_file_throughput(&s, id, 16u << 20, &w, &r);
    printf("16 MiB file through the tools (base64 over stdio): write %.0f MB/s, read %.0f MB/s "
           "(best of 5; target >= 200 MB/s)\n",
           w, r);
    sleep(1);
    report_rss(&s, id);
    cJSON_Delete(bench_destroy(&s, id));
    cJSON_Delete(sb);
    fclose(s.in);
    waitpid(s.pid, NULL, 0);
    _cleanup_free_ char *cmd = wr_asprintf("rm -rf %s %s", state, repo);
    return system(cmd) == 0 ? 0 : 1;
}
