/* Streamable HTTP transport: the request layer on its own, then the real transport with a
 * real MCP server on a private loop (in a thread), driven with raw HTTP over sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mcp/http/http-internal.h"
#include "mcp/streamable-http-internal.h"
#include "test.h"

#define TOKEN "s3cret-token"

/* ---- the request layer ---------------------------------------------------------------- */

static void test_parser_pipelined(void)
{
    const char *in = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
                     "Mcp-Session-Id: abc\r\n\r\n{}"
                     "GET /mcp HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct http_parser_state p;
    http__parser_init(&p, 1024, NULL, NULL);
    size_t len = strlen(in);
    ssize_t n = http__parser_feed(&p, in, len);
    ASSERT(n > 0 && p.complete);
    ASSERT_EQ(p.req.method, HTTP_POST);
    ASSERT_STREQ(http_request_header(&p.req, "Mcp-Session-Id"), "abc");
    ASSERT_EQ(p.req.body.len, 2u);
    ASSERT(p.req.keep_alive);
    http__parser_next(&p);
    ssize_t m = http__parser_feed(&p, in + n, len - (size_t)n);
    ASSERT_EQ((size_t)m, len - (size_t)n);
    ASSERT(p.complete);
    ASSERT_EQ(p.req.method, HTTP_GET);
    ASSERT_STREQ(p.req.host, "localhost");
    http__parser_free(&p);
}

static void test_parser_bytewise_and_caps(void)
{
    const char *in = "POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n0\r\n\r\n";
    struct http_parser_state p;
    http__parser_init(&p, 1024, NULL, NULL);
    for (size_t i = 0; in[i]; i++)
        ASSERT_EQ(http__parser_feed(&p, in + i, 1), 1);
    ASSERT(p.complete);
    ASSERT_STREQ(p.req.body.data, "abc");
    http__parser_free(&p);

    http__parser_init(&p, 2, NULL, NULL);
    ASSERT_EQ(http__parser_feed(&p, in, strlen(in)), -1);
    ASSERT_EQ(p.status, 413);
    http__parser_free(&p);

    char big[HTTP_MAX_HEADER_BYTES + 100];
    int k = snprintf(big, sizeof(big), "GET /mcp HTTP/1.1\r\nX: ");
    memset(big + k, 'a', sizeof(big) - (size_t)k);
    http__parser_init(&p, 2, NULL, NULL);
    ASSERT_EQ(http__parser_feed(&p, big, sizeof(big)), -1);
    ASSERT_EQ(p.status, 431);
    http__parser_free(&p);

    const char *twice = "GET /mcp HTTP/1.1\r\nAuthorization: a\r\nauthorization: b\r\n\r\n";
    http__parser_init(&p, 2, NULL, NULL);
    ASSERT_EQ(http__parser_feed(&p, twice, strlen(twice)), -1);
    ASSERT_EQ(p.status, 400);
    http__parser_free(&p);
}

static void test_header_checks(void)
{
    ASSERT(http_host_allowed("127.0.0.1:8080", "127.0.0.1:8080"));
    ASSERT(http_host_allowed("localhost", "127.0.0.1:8080"));
    ASSERT(http_host_allowed("[::1]:9", "127.0.0.1:8080"));
    ASSERT(!http_host_allowed("evil.example:8080", "127.0.0.1:8080"));
    ASSERT(!http_host_allowed("127.0.0.1.evil.example", "127.0.0.1:8080"));
    ASSERT(http_origin_allowed("http://localhost:3000", "127.0.0.1:8080"));
    ASSERT(http_origin_allowed("https://127.0.0.1", "127.0.0.1:8080"));
    ASSERT(!http_origin_allowed("null", "127.0.0.1:8080"));
    ASSERT(!http_origin_allowed("http://evil.example", "127.0.0.1:8080"));
    ASSERT(!http_origin_allowed("http://[::1", "127.0.0.1:8080"));
    ASSERT(http_token_matches("Bearer abc", "abc"));
    ASSERT(http_token_matches("bearer  abc", "abc"));
    ASSERT(!http_token_matches("Bearer abcd", "abc"));
    ASSERT(!http_token_matches("Bearer ", "abc"));
    ASSERT(!http_token_matches("Basic abc", "abc"));
    ASSERT(!http_token_matches(NULL, "abc"));
    ASSERT(http_media_type_is("Application/JSON; charset=utf-8", "application/json"));
    ASSERT(!http_media_type_is("application/jsonx", "application/json"));
    ASSERT(http_accepts(NULL, "text/event-stream"));
    ASSERT(http_accepts("application/json, text/event-stream", "text/event-stream"));
    ASSERT(http_accepts("text/*;q=0.5", "text/event-stream"));
    ASSERT(!http_accepts("application/json", "text/event-stream"));
}

/* ---- the transport on a loop thread ----------------------------------------------------- */

static uv_loop_t loop;
static uv_async_t wakeup;
static uv_sem_t done_sem;
static void (*loop_fn)(void *);
static void *loop_arg;
static struct mcp_server *server;
static struct http_server *listener;
static struct mcp_http *http;
static int port;

static void wakeup_cb(uv_async_t *a)
{
    loop_fn(loop_arg);
    uv_sem_post(&done_sem);
}

/* Runs fn on the loop thread and waits for it: the transport is not thread-safe. */
static void on_loop(void (*fn)(void *), void *arg)
{
    loop_fn = fn;
    loop_arg = arg;
    uv_async_send(&wakeup);
    uv_sem_wait(&done_sem);
}

static bool (*wait_pred)(void);
static bool wait_result;

static void eval_pred(void *arg)
{
    wait_result = wait_pred();
}

/* Evaluates a condition on the server's state, on the loop thread. */
static bool check_on_loop(bool (*pred)(void))
{
    wait_pred = pred;
    on_loop(eval_pred, NULL);
    return wait_result;
}

/* Polls a condition on the loop thread until it holds (or fails the test after 10 s). */
static void wait_for(bool (*pred)(void))
{
    for (int i = 0; i < 1000; i++) {
        if (check_on_loop(pred))
            return;
        usleep(10 * 1000);
    }
    ASSERT(!"condition not reached in 10 s");
}

static void *loop_thread(void *arg)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static void server_start(const char *token)
{
    ASSERT_EQ(uv_loop_init(&loop), 0);
    uv_async_init(&loop, &wakeup, wakeup_cb);
    uv_sem_init(&done_sem, 0);
    struct mcp_server_options so = {.loop = &loop, .vmm = NULL, .server_version = "0.1.0"};
    struct wr_error *err = NULL;
    ASSERT_EQ(mcp_server_new(&so, &server, &err), 0);
    /* Capture stderr to check the line scripts parse. */
    FILE *cap = tmpfile();
    int saved = dup(2);
    dup2(fileno(cap), 2);
    struct http_server_options lo = {.loop = &loop, .listen = "127.0.0.1:0", .token = token};
    int r = http_server_start(&lo, &listener, &err);
    struct mcp_http_options ho = {.max_sessions = 16};
    if (r == 0)
        r = mcp_http_start(server, listener, &ho, &http, &err);
    dup2(saved, 2);
    close(saved);
    ASSERT_EQ(r, 0);
    char line[256] = "";
    rewind(cap);
    ASSERT(fgets(line, sizeof(line), cap));
    fclose(cap);
    ASSERT_EQ(sscanf(line, "warren: listening on http://127.0.0.1:%d/mcp", &port), 1);
    ASSERT(port > 0);
}

static void stop_fn(void *arg)
{
    http_server_stop(listener);
    mcp_http_stop(http);
    uv_close((uv_handle_t *)&wakeup, NULL);
}

/* ---- a raw HTTP client ---------------------------------------------------------------- */

struct reply {
    int status;
    struct wr_buf headers; /* "name: value\n" lines, names lowercased */
    struct wr_buf body;
    bool complete;
    bool headers_only;
    bool last_was_value;
};

static int reply_field(http_parser *p, const char *at, size_t n)
{
    struct reply *r = p->data;
    if (r->last_was_value)
        wr_buf_append(&r->headers, "\n", 1);
    for (size_t i = 0; i < n; i++) {
        char ch = (char)(at[i] >= 'A' && at[i] <= 'Z' ? at[i] + 32 : at[i]);
        wr_buf_append(&r->headers, &ch, 1);
    }
    r->last_was_value = false;
    return 0;
}

static int reply_value(http_parser *p, const char *at, size_t n)
{
    struct reply *r = p->data;
    if (!r->last_was_value)
        wr_buf_append(&r->headers, ": ", 2);
    wr_buf_append(&r->headers, at, n);
    r->last_was_value = true;
    return 0;
}

static int reply_headers_done(http_parser *p)
{
    struct reply *r = p->data;
    r->status = p->status_code;
    wr_buf_append(&r->headers, "\n", 1);
    if (r->headers_only) {
        r->complete = true;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int reply_body(http_parser *p, const char *at, size_t n)
{
    return wr_buf_append(&((struct reply *)p->data)->body, at, n);
}

static int reply_complete(http_parser *p)
{
    ((struct reply *)p->data)->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings reply_settings = {
    .on_header_field = reply_field,
    .on_header_value = reply_value,
    .on_headers_complete = reply_headers_done,
    .on_body = reply_body,
    .on_message_complete = reply_complete,
};

static int client_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads one response. Bytes past it stay in the per-connection carry buffer. */
struct client {
    int fd;
    http_parser parser;
    char carry[65536];
    size_t carry_len;
};

static void client_open(struct client *c)
{
    c->fd = client_connect();
    c->carry_len = 0;
}

static void client_send(struct client *c, const char *s)
{
    ASSERT_EQ(wr_write_all(c->fd, s, strlen(s)), 0);
}

static int client_read(struct client *c, struct reply *r, bool headers_only)
{
    memset(r, 0, sizeof(*r));
    wr_buf_init(&r->headers, 1 << 20);
    wr_buf_init(&r->body, 1 << 24);
    r->headers_only = headers_only;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = r;
    for (;;) {
        if (c->carry_len == 0) {
            ssize_t n = read(c->fd, c->carry, sizeof(c->carry));
            if (n <= 0) {
                if (!r->complete && r->status)
                    http_parser_execute(&c->parser, &reply_settings, NULL, 0);
                return r->complete ? 0 : -1;
            }
            c->carry_len = (size_t)n;
        }
        size_t used = http_parser_execute(&c->parser, &reply_settings, c->carry, c->carry_len);
        memmove(c->carry, c->carry + used, c->carry_len - used);
        c->carry_len -= used;
        if (r->complete)
            return 0;
        if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
            return -1;
    }
}

static void reply_free(struct reply *r)
{
    wr_buf_free(&r->headers);
    wr_buf_free(&r->body);
}

static const char *reply_header(struct reply *r, const char *name, char *out, size_t size)
{
    char key[128];
    snprintf(key, sizeof(key), "%s: ", name);
    const char *h = r->headers.data ? strstr(r->headers.data, key) : NULL;
    if (!h)
        return NULL;
    h += strlen(key);
    size_t n = strcspn(h, "\n");
    snprintf(out, size, "%.*s", (int)WR_MIN(n, size - 1), h);
    return out;
}

/* One POST on a fresh connection. extra: additional header lines. */
static int post(const char *session, const char *extra, const char *body, struct reply *r)
{
    struct client c;
    client_open(&c);
    char head[2048];
    snprintf(head, sizeof(head),
             "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer " TOKEN "\r\n"
             "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
             "%s%s%s%sContent-Length: %zu\r\n\r\n",
             port, session ? "Mcp-Session-Id: " : "", session ? session : "", session ? "\r\n" : "",
             extra ? extra : "", strlen(body));
    client_send(&c, head);
    client_send(&c, body);
    int ret = client_read(&c, r, false);
    close(c.fd);
    return ret;
}

#define INIT_BODY                                                                                  \
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"     \
    "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}"
#define PING_BODY "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}"

static void initialize(char session[65])
{
    struct reply r;
    ASSERT_EQ(post(NULL, NULL, INIT_BODY, &r), 0);
    ASSERT_EQ(r.status, 200);
    char sid[128];
    ASSERT(reply_header(&r, "mcp-session-id", sid, sizeof(sid)));
    ASSERT_EQ(strlen(sid), 64u);
    ASSERT(strstr(r.body.data, "\"protocolVersion\":\"2025-11-25\""));
    memcpy(session, sid, 65);
    reply_free(&r);
}

static void expect_status(const char *session, const char *extra, const char *body, int status)
{
    struct reply r;
    ASSERT_EQ(post(session, extra, body, &r), 0);
    if (r.status != status)
        fprintf(stderr, "got %d, want %d: %s\n", r.status, status, r.body.data);
    ASSERT_EQ(r.status, status);
    reply_free(&r);
}

static void test_initialize_and_session_rules(void)
{
    char sid[65];
    initialize(sid);
    expect_status(NULL, NULL, PING_BODY, 400);
    expect_status("0000000000000000000000000000000000000000000000000000000000000000", NULL,
                  PING_BODY, 404);
    expect_status(sid, "MCP-Protocol-Version: 1999-01-01\r\n", PING_BODY, 400);
    expect_status(sid, "MCP-Protocol-Version: 2025-06-18\r\n", PING_BODY, 200);
    expect_status(sid, NULL, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 202);

    struct reply r;
    ASSERT_EQ(post(sid, NULL, PING_BODY, &r), 0);
    ASSERT_EQ(r.status, 200);
    char ct[128];
    ASSERT_STREQ(reply_header(&r, "content-type", ct, sizeof(ct)), "application/json");
    ASSERT_STREQ(r.body.data, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}");
    reply_free(&r);

    ASSERT_EQ(post(sid, NULL, "{\"jsonrpc\":", &r), 0);
    ASSERT_EQ(r.status, 400);
    ASSERT(strstr(r.body.data, "-32700"));
    reply_free(&r);
}

static void test_security(void)
{
    char sid[65];
    initialize(sid);
    struct client c;
    const char *no_token = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                           "application/json\r\nContent-Length: 2\r\n\r\n{}";
    client_open(&c);
    client_send(&c, no_token);
    struct reply r;
    ASSERT_EQ(client_read(&c, &r, false), 0);
    ASSERT_EQ(r.status, 401);
    char v[128];
    ASSERT_STREQ(reply_header(&r, "www-authenticate", v, sizeof(v)), "Bearer");
    reply_free(&r);
    close(c.fd);

    client_open(&c);
    client_send(&c, "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer nope\r\n\r\n");
    ASSERT_EQ(client_read(&c, &r, false), 0);
    ASSERT_EQ(r.status, 401);
    reply_free(&r);
    close(c.fd);

    expect_status(sid, "Origin: http://evil.example\r\n", PING_BODY, 403);
    expect_status(sid, "Origin: http://localhost:5173\r\n", PING_BODY, 200);

    client_open(&c);
    client_send(&c, "GET /mcp HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer " TOKEN
                    "\r\n\r\n");
    ASSERT_EQ(client_read(&c, &r, false), 0);
    ASSERT_EQ(r.status, 403);
    reply_free(&r);
    close(c.fd);
}

static void test_limits_and_methods(void)
{
    char sid[65];
    initialize(sid);
    struct client c;
    struct reply r;
    char req[1024];
    /* Only the headers: the server must answer without waiting for 48 MiB. */
    snprintf(req, sizeof(req),
             "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " TOKEN "\r\n"
             "Content-Type: application/json\r\nMcp-Session-Id: %s\r\nContent-Length: %u\r\n\r\n",
             sid, MCP_MAX_MESSAGE_BYTES + 1);
    client_open(&c);
    client_send(&c, req);
    ASSERT_EQ(client_read(&c, &r, false), 0);
    ASSERT_EQ(r.status, 413);
    reply_free(&r);
    close(c.fd);

    expect_status(sid, NULL, "[]", 400);
    const char *cases[][2] = {
        {"PUT /mcp HTTP/1.1\r\n", "405"},
        {"GET /other HTTP/1.1\r\n", "404"},
        {"POST /mcp HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n", "415"},
    };
    for (size_t i = 0; i < WR_ARRAY_SIZE(cases); i++) {
        snprintf(req, sizeof(req), "%sHost: localhost\r\nAuthorization: Bearer " TOKEN "\r\n\r\n",
                 cases[i][0]);
        client_open(&c);
        client_send(&c, req);
        ASSERT_EQ(client_read(&c, &r, false), 0);
        ASSERT_EQ(r.status, atoi(cases[i][1]));
        reply_free(&r);
        close(c.fd);
    }
}

static void test_keep_alive_and_pipelining(void)
{
    char sid[65];
    initialize(sid);
    char req[1024];
    snprintf(req, sizeof(req),
             "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " TOKEN "\r\n"
             "Content-Type: application/json\r\nMcp-Session-Id: %s\r\nContent-Length: %zu\r\n\r\n"
             "%s",
             sid, strlen(PING_BODY), PING_BODY);
    struct client c;
    struct reply r;
    client_open(&c);
    for (int i = 0; i < 2; i++) {
        client_send(&c, req);
        ASSERT_EQ(client_read(&c, &r, false), 0);
        ASSERT_EQ(r.status, 200);
        reply_free(&r);
    }
    /* Two requests in one write: both answered, in order. */
    char two[2048];
    snprintf(two, sizeof(two), "%s%s", req, req);
    client_send(&c, two);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(client_read(&c, &r, false), 0);
        ASSERT_EQ(r.status, 200);
        ASSERT(strstr(r.body.data, "\"id\":7"));
        reply_free(&r);
    }
    close(c.fd);
}

static void test_expect_continue(void)
{
    char sid[65], req[1024];
    initialize(sid);
    snprintf(req, sizeof(req),
             "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " TOKEN "\r\n"
             "Content-Type: application/json\r\nMcp-Session-Id: %s  \r\nExpect: 100-continue\r\n"
             "Content-Length: %zu\r\n\r\n",
             sid, strlen(PING_BODY));
    struct client c;
    struct reply r;
    client_open(&c);
    client_send(&c, req);
    ASSERT_EQ(client_read(&c, &r, false), 0);
    ASSERT_EQ(r.status, 100);
    reply_free(&r);
    client_send(&c, PING_BODY);
    ASSERT_EQ(client_read(&c, &r, false), 0);
    ASSERT_EQ(r.status, 200);
    reply_free(&r);
    close(c.fd);
}

static void get_request(char *out, size_t size, const char *sid)
{
    snprintf(out, size,
             "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " TOKEN "\r\n"
             "Accept: text/event-stream\r\nMcp-Session-Id: %s\r\n\r\n",
             sid);
}

static char *stream_sid;

static void notify_session(void *arg)
{
    for (struct http_session *s = http->sessions; s; s = s->next)
        if (strcmp(s->id, stream_sid) == 0)
            s->session->sink.send(s, "{\"jsonrpc\":\"2.0\",\"method\":\"x\"}",
                                  strlen("{\"jsonrpc\":\"2.0\",\"method\":\"x\"}"), NULL, false);
}

static void test_get_stream_and_delete(void)
{
    char sid[65], req[1024];
    initialize(sid);
    get_request(req, sizeof(req), sid);
    struct client c, d;
    struct reply r;
    client_open(&c);
    client_send(&c, req);
    ASSERT_EQ(client_read(&c, &r, true), 0);
    ASSERT_EQ(r.status, 200);
    char v[128];
    ASSERT_STREQ(reply_header(&r, "content-type", v, sizeof(v)), "text/event-stream");
    ASSERT_STREQ(reply_header(&r, "cache-control", v, sizeof(v)), "no-store");
    reply_free(&r);

    client_open(&d);
    client_send(&d, req);
    ASSERT_EQ(client_read(&d, &r, false), 0);
    ASSERT_EQ(r.status, 409);
    reply_free(&r);

    /* A message tied to no request reaches the GET stream. */
    stream_sid = sid;
    on_loop(notify_session, NULL);
    char buf[512];
    ssize_t n = read(c.fd, buf, sizeof(buf) - 1);
    ASSERT(n > 0);
    buf[n] = '\0';
    ASSERT(strstr(buf, "data: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n"));

    snprintf(req, sizeof(req),
             "DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " TOKEN "\r\n"
             "Mcp-Session-Id: %s\r\n\r\n",
             sid);
    client_send(&d, req);
    ASSERT_EQ(client_read(&d, &r, false), 0);
    ASSERT_EQ(r.status, 200);
    reply_free(&r);
    close(d.fd);
    expect_status(sid, NULL, PING_BODY, 404);
    close(c.fd);
}

/* ---- answers that come later: the test holds the core's messages back ------------------- */

struct held {
    struct http_session *session;
    char json[512];
    char related[64];
    bool final;
} held[4];
static int held_count;
static void (*real_send)(void *, const char *, size_t, const char *, bool);

static void hold_send(void *data, const char *json, size_t len, const char *related_id, bool final)
{
    struct held *h = &held[held_count++];
    h->session = data;
    snprintf(h->json, sizeof(h->json), "%.*s", (int)len, json);
    snprintf(h->related, sizeof(h->related), "%s", related_id ? related_id : "");
    h->final = final;
}

static void hold_session(void *arg)
{
    for (struct http_session *s = http->sessions; s; s = s->next) {
        if (strcmp(s->id, arg) == 0) {
            if (s->session->sink.send != hold_send)
                real_send = s->session->sink.send;
            s->session->sink.send = hold_send;
        }
    }
    held_count = 0;
}

/* Sends a progress notification for the held request, then its response. */
static void release(void *arg)
{
    struct held *h = &held[0];
    const char *progress = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}";
    if (arg)
        real_send(h->session, progress, strlen(progress), h->related, false);
    real_send(h->session, h->json, strlen(h->json), h->related, h->final);
}

static bool one_held(void)
{
    return held_count == 1;
}
static bool no_connections(void)
{
    return listener->conn_count == 0;
}

static void test_streamed_and_abandoned_requests(void)
{
    char sid[65], req[1024];
    initialize(sid);
    on_loop(hold_session, sid);
    snprintf(req, sizeof(req),
             "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " TOKEN "\r\n"
             "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
             "Mcp-Session-Id: %s\r\nContent-Length: %zu\r\n\r\n%s",
             sid, strlen(PING_BODY), PING_BODY);
    struct client c;
    struct reply r;
    client_open(&c);
    client_send(&c, req);
    wait_for(one_held);
    on_loop(release, "progress");
    ASSERT_EQ(client_read(&c, &r, false), 0);
    ASSERT_EQ(r.status, 200);
    char v[128];
    ASSERT_STREQ(reply_header(&r, "content-type", v, sizeof(v)), "text/event-stream");
    ASSERT(strstr(r.body.data, "notifications/progress"));
    ASSERT(strstr(r.body.data, "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n"));
    reply_free(&r);

    /* The same connection goes on after the chunked stream ends; this time the client hangs
     * up before the answer, which must be dropped without harm. */
    held_count = 0;
    client_send(&c, req);
    wait_for(one_held);
    close(c.fd);
    wait_for(no_connections);
    on_loop(release, "progress");
    /* The id is free again: a new request with it is answered. */
    on_loop(hold_session, sid);
    client_open(&c);
    client_send(&c, req);
    wait_for(one_held);
    on_loop(release, NULL);
    ASSERT_EQ(client_read(&c, &r, false), 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_STREQ(reply_header(&r, "content-type", v, sizeof(v)), "application/json");
    reply_free(&r);
    close(c.fd);
}

static bool sessions_full(void)
{
    return http->session_count >= 16;
}

static void test_session_cap(void)
{
    /* max_sessions is 16 and earlier tests left some open: fill up, then one more is 503. */
    char sid[65];
    while (!check_on_loop(sessions_full))
        initialize(sid);
    expect_status(NULL, NULL, INIT_BODY, 503);
}

static void test_refuses_open_listen_without_token(void)
{
    struct http_server *h = NULL;
    struct wr_error *err = NULL;
    struct http_server_options o = {.loop = &loop, .listen = "0.0.0.0:0", .token = NULL};
    ASSERT(http_server_start(&o, &h, &err) < 0);
    ASSERT(err && strstr(err->msg, "token"));
    wr_error_free(err);
    err = NULL;
    o.listen = "nonsense";
    ASSERT(http_server_start(&o, &h, &err) < 0);
    wr_error_free(err);
}

/* ---- a second route on the same listener ------------------------------------------------ */

/* What another front door (the web UI, the E2B API) does: its own routes, answered without
 * anything of MCP's. GET /echo/<x> answers <x>; POST /echo/ refuses bodies over 8 bytes. */
static void echo_handle(void *data, struct http_conn *c, struct http_request *req)
{
    const char *rest = req->path + strlen("/echo/");
    struct http_response r = {.status = 200,
                              .content_type = "text/plain",
                              .body = req->method == HTTP_POST ? req->body.data : rest,
                              .body_len = req->method == HTTP_POST ? req->body.len : strlen(rest)};
    http_respond(c, &r);
}

static int echo_check(void *data, const struct http_request *req, const char **ret_message)
{
    if (http_request_header(req, "x-refuse")) {
        *ret_message = "refused by the route";
        return 418;
    }
    return 0;
}

static void add_echo_route(void *arg)
{
    struct http_route route = {.path = "/echo/",
                               .methods = HTTP_METHOD_BIT(HTTP_GET) | HTTP_METHOD_BIT(HTTP_POST),
                               .body_max = 8,
                               .check = echo_check,
                               .handle = echo_handle};
    http_server_route(listener, &route);
}

static void raw_request(const char *request, struct reply *r)
{
    struct client c;
    client_open(&c);
    client_send(&c, request);
    ASSERT_EQ(client_read(&c, r, false), 0);
    close(c.fd);
}

#define AUTH "Host: 127.0.0.1\r\nAuthorization: Bearer " TOKEN "\r\n"

static void test_second_route(void)
{
    on_loop(add_echo_route, NULL);
    struct reply r;
    char v[128];
    raw_request("GET /echo/hello?x=1 HTTP/1.1\r\n" AUTH "\r\n", &r);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.body.len, 5u);
    ASSERT(!memcmp(r.body.data, "hello", 5));
    reply_free(&r);
    raw_request("POST /echo/ HTTP/1.1\r\n" AUTH "Content-Length: 4\r\n\r\nabcd", &r);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.body.len, 4u);
    reply_free(&r);
    /* The route's own body cap, not MCP's 48 MiB. */
    raw_request("POST /echo/ HTTP/1.1\r\n" AUTH "Content-Length: 9\r\n\r\nabcdefghi", &r);
    ASSERT_EQ(r.status, 413);
    reply_free(&r);
    raw_request("DELETE /echo/x HTTP/1.1\r\n" AUTH "\r\n", &r);
    ASSERT_EQ(r.status, 405);
    ASSERT_STREQ(reply_header(&r, "allow", v, sizeof(v)), "GET, POST");
    ASSERT(strstr(r.body.data, "\"error\""));
    reply_free(&r);
    raw_request("GET /echo/x HTTP/1.1\r\n" AUTH "X-Refuse: 1\r\n\r\n", &r);
    ASSERT_EQ(r.status, 418);
    ASSERT(strstr(r.body.data, "refused by the route"));
    reply_free(&r);
    /* The token guards every route; a path no route serves is 404. */
    raw_request("GET /echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", &r);
    ASSERT_EQ(r.status, 401);
    ASSERT_STREQ(reply_header(&r, "www-authenticate", v, sizeof(v)), "Bearer");
    reply_free(&r);
    raw_request("GET /nothing HTTP/1.1\r\n" AUTH "\r\n", &r);
    ASSERT_EQ(r.status, 404);
    ASSERT(strstr(r.body.data, "not found: this server answers /mcp, /echo/"));
    reply_free(&r);
    /* /mcp keeps its JSON-RPC error bodies. */
    raw_request("PUT /mcp HTTP/1.1\r\n" AUTH "\r\n", &r);
    ASSERT_EQ(r.status, 405);
    ASSERT(strstr(r.body.data, "\"jsonrpc\":\"2.0\""));
    reply_free(&r);
}

static void test_repeated_headers(void)
{
    const char *in = "GET /x HTTP/1.1\r\nAccept: a/b\r\nACCEPT: c/d\r\nX-Y: 1\r\n\r\n";
    struct http_parser_state p;
    http__parser_init(&p, 16, NULL, NULL);
    ASSERT(http__parser_feed(&p, in, strlen(in)) > 0 && p.complete);
    ASSERT_STREQ(http_request_header(&p.req, "accept"), "a/b, c/d");
    ASSERT_STREQ(http_request_header(&p.req, "x-y"), "1");
    ASSERT_STREQ(p.req.path, "/x");
    http__parser_free(&p);
    const char *twice = "GET /x HTTP/1.1\r\nMcp-Session-Id: a\r\nmcp-session-id: b\r\n\r\n";
    http__parser_init(&p, 16, NULL, NULL);
    ASSERT_EQ(http__parser_feed(&p, twice, strlen(twice)), -1);
    ASSERT_EQ(p.status, 400);
    http__parser_free(&p);
}

static void test_cookie_value(void)
{
    char v[16];
    ASSERT(http_cookie_value("a=1; warren_session=abc; b=2", "warren_session", v, sizeof(v)));
    ASSERT_STREQ(v, "abc");
    ASSERT(http_cookie_value("warren_session=x", "warren_session", v, sizeof(v)));
    ASSERT_STREQ(v, "x");
    ASSERT(http_cookie_value("warren_session=", "warren_session", v, sizeof(v)));
    ASSERT_STREQ(v, "");
    /* Names match whole: no prefix or suffix matches; values longer than the room fail. */
    ASSERT(!http_cookie_value("xwarren_session=a; warren_sessionx=b", "warren_session", v, sizeof(v)));
    ASSERT(!http_cookie_value("warren_session=0123456789abcdef", "warren_session", v, sizeof(v)));
    ASSERT(!http_cookie_value("", "warren_session", v, sizeof(v)));
}

int main(void)
{
    RUN(test_parser_pipelined);
    RUN(test_parser_bytewise_and_caps);
    RUN(test_header_checks);
    RUN(test_repeated_headers);
    server_start(TOKEN);
    RUN(test_refuses_open_listen_without_token);
    pthread_t thread;
    ASSERT_EQ(pthread_create(&thread, NULL, loop_thread, NULL), 0);
    RUN(test_initialize_and_session_rules);
    RUN(test_security);
    RUN(test_limits_and_methods);
    RUN(test_keep_alive_and_pipelining);
    RUN(test_cookie_value);
    RUN(test_expect_continue);
    RUN(test_get_stream_and_delete);
    RUN(test_streamed_and_abandoned_requests);
    RUN(test_second_route);
    RUN(test_session_cap);
    on_loop(stop_fn, NULL);
    pthread_join(thread, NULL);
    mcp_server_free(server);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    return 0;
}
