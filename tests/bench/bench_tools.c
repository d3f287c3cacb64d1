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

#include "../../util/util.h"

struct server {
    pid_t pid;
    FILE *in;  /* to the server */
    FILE *out; /* from the server */
    int next_id;
};

static void die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

static void server_start(struct server *s, const char *warren, const char *state_dir)
{
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
        die("pipe");
    s->pid = fork();
    if (s->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        execl(warren, warren, "mcp", "--backend", "jail", "--state-dir", state_dir,
              "--log-level", "error", (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    s->in = fdopen(to[1], "w");
    s->out = fdopen(from[0], "r");
    setvbuf(s->out, NULL, _IOFBF, 1 << 20);
    setvbuf(s->in, NULL, _IOFBF, 1 << 20);
}

/* Sends a request and returns its result (caller frees); exits on a protocol error. */
static cJSON *rpc(struct server *s, const char *method, cJSON *params)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(req, "id", ++s->next_id);
    cJSON_AddStringToObject(req, "method", method);
    cJSON_AddItemToObject(req, "params", params ? params : cJSON_CreateObject());
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    fputs(text, s->in);
    fputc('\n', s->in);
    fflush(s->in);
    free(text);
    static char *line;
    static size_t cap;
    for (;;) {
        if (getline(&line, &cap, s->out) < 0)
            die("server closed stdout");
        cJSON *msg = cJSON_Parse(line);
        if (!msg)
            die("the server sent a line that is not JSON");
        cJSON *id = cJSON_GetObjectItem(msg, "id");
        if (id && id->valueint == s->next_id) {
            cJSON *result = cJSON_DetachItemFromObject(msg, "result");
            if (!result) {
                fprintf(stderr, "%s", line);
                die("request failed");
            }
            cJSON_Delete(msg);
            return result;
        }
        cJSON_Delete(msg);
    }
}

static cJSON *tool(struct server *s, const char *name, cJSON *args)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", name);
    cJSON_AddItemToObject(p, "arguments", args ? args : cJSON_CreateObject());
    cJSON *r = rpc(s, "tools/call", p);
    if (cJSON_IsTrue(cJSON_GetObjectItem(r, "isError"))) {
        fprintf(stderr, "%s\n", cJSON_GetArrayItem(cJSON_GetObjectItem(r, "content"), 0)->child->next->valuestring);
        die(name);
    }
    cJSON *sc = cJSON_DetachItemFromObject(r, "structuredContent");
    cJSON_Delete(r);
    return sc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t percentile(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    return v[(size_t)(p * (double)(n - 1))];
}

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

static cJSON *exec_args(const char *id, const char *cmd)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id);
    cJSON *argv = cJSON_AddArrayToObject(a, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString(cmd));
    return a;
}

/* The server time of a sandbox_list call is estimated as its round trip minus the round
 * trip of a ping (pipes, wake-ups, JSON on both sides), measured alternately. */
static void bench_list(struct server *s)
{
    enum { N = 2000 };
    static uint64_t t[N], p[N];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = wr_now_ns();
        cJSON_Delete(tool(s, "sandbox_list", NULL));
        uint64_t t1 = wr_now_ns();
        cJSON_Delete(rpc(s, "ping", NULL));
        t[i] = t1 - t0;
        p[i] = wr_now_ns() - t1;
    }
    uint64_t list = percentile(t, N, 0.5), ping = percentile(p, N, 0.5);
    printf("sandbox_list round trip over stdio: p50 %.1f us (p99 %.1f us); ping round trip p50 %.1f us; "
           "server time of sandbox_list ~ %.1f us (target p50 <= 100 us)\n",
           list / 1e3, percentile(t, N, 0.99) / 1e3, ping / 1e3, (double)(list - ping) / 1e3);
}

static void bench_exec(struct server *s, const char *id)
{
    enum { N = 300 };
    static uint64_t tool_t[N], bare_t[N];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = wr_now_ns();
        cJSON_Delete(tool(s, "sandbox_exec", exec_args(id, "/bin/true")));
        tool_t[i] = wr_now_ns() - t0;
        bare_t[i] = bare_true_ns();
    }
    uint64_t tp = percentile(tool_t, N, 0.5), bp = percentile(bare_t, N, 0.5);
    printf("sandbox_exec /bin/true: p50 %.2f ms; bare fork+exec+wait: p50 %.2f ms; ratio %.2fx (target <= 3x)\n",
           tp / 1e6, bp / 1e6, (double)tp / (double)bp);
}

static char *make_repo(void)
{
    char tmpl[] = "/tmp/warren-bench-repo-XXXXXX";
    char *dir = wr_strdup(mkdtemp(tmpl));
    _cleanup_free_ char *cmd = wr_asprintf(
        "cd %s && git init -q && mkdir -p src && for i in $(seq 1 20); do echo \"file $i\" > src/f$i.txt; done && "
        "git add -A && git -c user.name=b -c user.email=b@b commit -qm init", dir);
    if (system(cmd) != 0)
        die("creating the bench repo");
    return dir;
}

static void bench_create(struct server *s, const char *repo)
{
    enum { N = 30 };
    uint64_t t[N];
    for (int i = 0; i < N; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "repo", repo);
        uint64_t t0 = wr_now_ns();
        cJSON *sb = tool(s, "sandbox_create", a);
        t[i] = wr_now_ns() - t0;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "id", cJSON_GetObjectItem(sb, "id")->valuestring);
        cJSON_Delete(tool(s, "sandbox_destroy", d));
        cJSON_Delete(sb);
    }
    printf("sandbox_create (host image, repo commit seen before): p50 %.1f ms, max %.1f ms (target p50 <= 50 ms)\n",
           percentile(t, N, 0.5) / 1e6, percentile(t, N, 1.0) / 1e6);
}

/* Sends one pre-serialized request line and returns the response line (static buffer).
 * The file benchmark builds and checks its 22 MiB messages by hand, as a client that
 * cares about speed would, so that the figure is the server's and the transport's. */
static const char *rpc_raw(struct server *s, const char *line, size_t len)
{
    fwrite(line, 1, len, s->in);
    fputc('\n', s->in);
    fflush(s->in);
    static char *resp;
    static size_t cap;
    if (getline(&resp, &cap, s->out) < 0)
        die("server closed stdout");
    return resp;
}

static void bench_files(struct server *s, const char *id)
{
    size_t n = 16u << 20;
    unsigned char *data = wr_malloc(n);
    wr_random_bytes(data, n);
    size_t b64_len = wr_base64_encoded_len(n);
    char *b64 = wr_malloc(b64_len + 1);
    wr_base64_encode(data, n, b64);
    struct wr_buf w;
    wr_buf_init(&w, SIZE_MAX / 2);
    wr_buf_printf(&w, "{\"jsonrpc\":\"2.0\",\"id\":\"w\",\"method\":\"tools/call\",\"params\":{"
                      "\"name\":\"sandbox_write_file\",\"arguments\":{\"id\":\"%s\",\"path\":"
                      "\"/tmp/bench.bin\",\"encoding\":\"base64\",\"content\":\"", id);
    wr_buf_append(&w, b64, b64_len);
    wr_buf_append(&w, "\"}}}", 4);
    _cleanup_free_ char *r = wr_asprintf(
        "{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"method\":\"tools/call\",\"params\":{\"name\":"
        "\"sandbox_read_file\",\"arguments\":{\"id\":\"%s\",\"path\":\"/tmp/bench.bin\","
        "\"encoding\":\"base64\",\"length\":16777216}}}", id);
    static const char marker[] = "\"structuredContent\":{\"content\":\"";
    double best_w = 1e18, best_r = 1e18;
    for (int round = 0; round < 5; round++) {
        uint64_t t0 = wr_now_ns();
        const char *resp = rpc_raw(s, w.data, w.len);
        if (!strstr(resp, "\"bytes_written\":16777216"))
            die("write_file failed");
        uint64_t t1 = wr_now_ns();
        resp = rpc_raw(s, r, strlen(r));
        const char *content = strstr(resp, marker);
        if (!content || memcmp(content + sizeof(marker) - 1, b64, b64_len) != 0)
            die("16 MiB file came back different");
        uint64_t t2 = wr_now_ns();
        best_w = WR_MIN(best_w, (double)(t1 - t0));
        best_r = WR_MIN(best_r, (double)(t2 - t1));
    }
    printf("16 MiB file through the tools (base64 over stdio): write %.0f MB/s, read %.0f MB/s "
           "(best of 5; target >= 200 MB/s)\n", n / (best_w / 1e9) / 1e6, n / (best_r / 1e9) / 1e6);
    wr_buf_free(&w);
    free(data);
    free(b64);
}

static void report_rss(struct server *s, const char *id)
{
    cJSON *list = tool(s, "sandbox_list", NULL);
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
    struct server s = {0};
    server_start(&s, warren, state);
    cJSON *init = cJSON_Parse("{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},"
                              "\"clientInfo\":{\"name\":\"bench\",\"version\":\"1\"}}");
    cJSON_Delete(rpc(&s, "initialize", init));
    fputs("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n", s.in);
    _cleanup_free_ char *repo = make_repo();
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "repo", repo);
    cJSON_AddStringToObject(a, "name", "bench");
    cJSON *sb = tool(&s, "sandbox_create", a);
    const char *id = cJSON_GetObjectItem(sb, "id")->valuestring;
    bench_list(&s);
    bench_exec(&s, id);
    bench_create(&s, repo);
    bench_files(&s, id);
    sleep(1);
    report_rss(&s, id);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", id);
    cJSON_Delete(tool(&s, "sandbox_destroy", d));
    cJSON_Delete(sb);
    fclose(s.in);
    waitpid(s.pid, NULL, 0);
    _cleanup_free_ char *cmd = wr_asprintf("rm -rf %s %s", state, repo);
    return system(cmd) == 0 ? 0 : 1;
}
