#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "client.h"

void bench_die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

void bench_server_start(struct bench_server *s, const char *warren, const char *state_dir,
                        const char *backend, const char *extra_arg)
{
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
        bench_die("pipe");
    s->pid = fork();
    if (s->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        execl(warren, warren, "mcp", "--backend", backend, "--state-dir", state_dir, "--log-level",
              "error", extra_arg, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    s->in = fdopen(to[1], "w");
    s->out = fdopen(from[0], "r");
    setvbuf(s->out, NULL, _IOFBF, 1 << 20);
    setvbuf(s->in, NULL, _IOFBF, 1 << 20);
}

void bench_server_stop(struct bench_server *s)
{
    fclose(s->in);
    fclose(s->out);
    waitpid(s->pid, NULL, 0);
}

/* Sends a request and returns its result (caller frees); exits on a protocol error. */
cJSON *bench_rpc(struct bench_server *s, const char *method, cJSON *params)
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
            bench_die("server closed stdout");
        cJSON *msg = cJSON_Parse(line);
        if (!msg)
            bench_die("the server sent a line that is not JSON");
        cJSON *id = cJSON_GetObjectItem(msg, "id");
        if (id && id->valueint == s->next_id) {
            cJSON *result = cJSON_DetachItemFromObject(msg, "result");
            if (!result) {
                fprintf(stderr, "%s", line);
                bench_die("request failed");
            }
            cJSON_Delete(msg);
            return result;
        }
        cJSON_Delete(msg);
    }
}

cJSON *bench_tool(struct bench_server *s, const char *name, cJSON *args)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", name);
    cJSON_AddItemToObject(p, "arguments", args ? args : cJSON_CreateObject());
    cJSON *r = bench_rpc(s, "tools/call", p);
    if (cJSON_IsTrue(cJSON_GetObjectItem(r, "isError"))) {
        fprintf(stderr, "%s\n",
                cJSON_GetArrayItem(cJSON_GetObjectItem(r, "content"), 0)->child->next->valuestring);
        bench_die(name);
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

uint64_t bench_percentile(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    return v[(size_t)(p * (double)(n - 1))];
}

cJSON *bench_exec_args(const char *id, const char *cmd)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id);
    cJSON *argv = cJSON_AddArrayToObject(a, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString(cmd));
    return a;
}

cJSON *bench_shell_args(const char *id, const char *command)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id);
    cJSON_AddStringToObject(a, "command", command);
    return a;
}

char *bench_make_repo(void)
{
    char tmpl[] = "/tmp/warren-bench-repo-XXXXXX";
    char *dir = wr_strdup(mkdtemp(tmpl));
    _cleanup_free_ char *cmd =
        wr_asprintf("cd %s && git init -q && mkdir -p src && for i in $(seq 1 20); do echo \"file "
                    "$i\" > src/f$i.txt; done && "
                    "git add -A && git -c user.name=b -c user.email=b@b commit -qm init",
                    dir);
    if (system(cmd) != 0)
        bench_die("creating the bench repo");
    return dir;
}

/* Sends one pre-serialized request line and returns the response line (static buffer).
 * The file benchmark builds and checks its 22 MiB messages by hand, as a client that
 * cares about speed would, so that the figure is the server's and the transport's. */
const char *bench_rpc_raw(struct bench_server *s, const char *line, size_t len)
{
    fwrite(line, 1, len, s->in);
    fputc('\n', s->in);
    fflush(s->in);
    static char *resp;
    static size_t cap;
    if (getline(&resp, &cap, s->out) < 0)
        bench_die("server closed stdout");
    return resp;
}

void bench_initialize(struct bench_server *s)
{
    cJSON *init = cJSON_Parse("{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},"
                              "\"clientInfo\":{\"name\":\"bench\",\"version\":\"1\"}}");
    cJSON_Delete(bench_rpc(s, "initialize", init));
    fputs("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n", s->in);
}

cJSON *bench_destroy(struct bench_server *s, const char *id)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", id);
    return bench_tool(s, "sandbox_destroy", d);
}

void bench_file_throughput(struct bench_server *s, const char *id, size_t n, double *ret_write_mbs,
                           double *ret_read_mbs)
{
    unsigned char *data = wr_malloc(n);
    wr_random_bytes(data, n);
    size_t b64_len = wr_base64_encoded_len(n);
    char *b64 = wr_malloc(b64_len + 1);
    wr_base64_encode(data, n, b64);
    struct wr_buf w;
    wr_buf_init(&w, SIZE_MAX / 2);
    wr_buf_printf(&w,
                  "{\"jsonrpc\":\"2.0\",\"id\":\"w\",\"method\":\"tools/call\",\"params\":{"
                  "\"name\":\"sandbox_write_file\",\"arguments\":{\"id\":\"%s\",\"path\":"
                  "\"/tmp/bench.bin\",\"encoding\":\"base64\",\"content\":\"",
                  id);
    wr_buf_append(&w, b64, b64_len);
    wr_buf_append(&w, "\"}}}", 4);
    _cleanup_free_ char *r = wr_asprintf(
        "{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"method\":\"tools/call\",\"params\":{\"name\":"
        "\"sandbox_read_file\",\"arguments\":{\"id\":\"%s\",\"path\":\"/tmp/bench.bin\","
        "\"encoding\":\"base64\",\"length\":%zu}}}",
        id, n);
    static const char marker[] = "\"structuredContent\":{\"content\":\"";
    double best_w = 1e18, best_r = 1e18;
    for (int round = 0; round < 5; round++) {
        uint64_t t0 = wr_now_ns();
        const char *resp = bench_rpc_raw(s, w.data, w.len);
        if (!strstr(resp, "\"bytes_written\":"))
            bench_die("write_file failed");
        uint64_t t1 = wr_now_ns();
        resp = bench_rpc_raw(s, r, strlen(r));
        const char *content = strstr(resp, marker);
        if (!content || memcmp(content + sizeof(marker) - 1, b64, b64_len) != 0)
            bench_die("16 MiB file came back different");
        uint64_t t2 = wr_now_ns();
        best_w = WR_MIN(best_w, (double)(t1 - t0));
        best_r = WR_MIN(best_r, (double)(t2 - t1));
    }
    *ret_write_mbs = (double)n / (best_w / 1e9) / 1e6;
    *ret_read_mbs = (double)n / (best_r / 1e9) / 1e6;
    wr_buf_free(&w);
    free(data);
    free(b64);
}

void bench_run(const char *command)
{
    if (system(command) != 0)
        bench_die(command);
}

void bench_create_times(struct bench_server *s, const cJSON *args, uint64_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = wr_now_ns();
        cJSON *sb = bench_tool(s, "sandbox_create", cJSON_Duplicate(args, true));
        t[i] = wr_now_ns() - t0;
        cJSON_Delete(bench_destroy(s, cJSON_GetObjectItem(sb, "id")->valuestring));
        cJSON_Delete(sb);
    }
}
