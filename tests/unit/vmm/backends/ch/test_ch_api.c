/* Cloud Hypervisor API client: the response parser on the real server's framing (status
 * lines without a reason phrase, 204 without Content-Length, keep-alive, 200 with
 * Content-Length 0 from vmm.shutdown, error bodies as JSON string arrays), the error
 * messages built from them, vm.info parsing, and the hybrid vsock handshake against a fake
 * VMM socket. No Cloud Hypervisor is needed (none can run on CI machines). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "test.h"
#include "vmm/backends/ch/ch-api.h"

#define REPLY_204 "HTTP/1.1 204 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n\r\n"
#define REPLY_PING                                                                                 \
    "HTTP/1.1 200 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n"                  \
    "Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"version\":\"v53.0\"}\n"
#define REPLY_VMM_SHUTDOWN                                                                         \
    "HTTP/1.1 200 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n"                  \
    "Content-Type: application/json\r\nContent-Length: 0\r\n\r\n"
#define BOOT_ERROR "[\"Error booting VM\",\"Failed to create device\",\"Invalid config\"]"
#define REPLY_500                                                                                  \
    "HTTP/1.1 500 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n"                  \
    "Content-Type: application/json\r\nContent-Length: 63\r\n\r\n" BOOT_ERROR
#define REPLY_404                                                                                  \
    "HTTP/1.1 404 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n"                  \
    "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n[\"Not Found\"]"

static void feed_all(struct ch_response_parser *p, const char *s)
{
    ASSERT_EQ(ch_response_parser_feed(p, s, strlen(s)), (ssize_t)strlen(s));
    ASSERT(p->complete);
}

static void test_204_keep_alive(void)
{
    struct ch_response_parser p;
    ch_response_parser_init(&p);
    const char *two = REPLY_204 REPLY_PING;
    ssize_t n = ch_response_parser_feed(&p, two, strlen(two));
    /* The 204 ends at its blank line: no Content-Length, no body, the next reply kept. */
    ASSERT_EQ(n, (ssize_t)strlen(REPLY_204));
    ASSERT(p.complete);
    ASSERT_EQ(p.status, 204);
    ASSERT_EQ(p.body.len, 0u);
    ASSERT_EQ(ch_response_parser_feed(&p, two + n, 1), 0); /* nothing until next() */
    ch_response_parser_next(&p);
    feed_all(&p, two + n);
    ASSERT_EQ(p.status, 200);
    ASSERT_STREQ(p.body.data, "{\"version\":\"v53.0\"}\n");
    ch_response_parser_free(&p);
}

static void test_200_empty(void)
{
    struct ch_response_parser p;
    ch_response_parser_init(&p);
    feed_all(&p, REPLY_VMM_SHUTDOWN);
    ASSERT_EQ(p.status, 200);
    ASSERT_EQ(p.body.len, 0u);
    ch_response_parser_free(&p);
}

static void test_byte_by_byte(void)
{
    struct ch_response_parser p;
    ch_response_parser_init(&p);
    const char *all = REPLY_500 REPLY_204;
    size_t len = strlen(all), at = 0;
    for (int reply = 0; reply < 2; reply++) {
        while (!p.complete) {
            ASSERT(at < len);
            ASSERT_EQ(ch_response_parser_feed(&p, all + at, 1), 1);
            at++;
        }
        ASSERT_EQ(p.status, reply == 0 ? 500 : 204);
        if (reply == 0)
            ASSERT_STREQ(p.body.data, BOOT_ERROR);
        ch_response_parser_next(&p);
    }
    ASSERT_EQ(at, len);
    ch_response_parser_free(&p);
}

static void test_error_messages(void)
{
    struct wr_error *err = NULL;
    const char *body = BOOT_ERROR;
    ASSERT_EQ(ch_api_status_error(CH_VM_BOOT, 500, body, strlen(body), &err), -EIO);
    ASSERT_STREQ(err->msg, "cloud-hypervisor: vm.boot: 500: Error booting VM: Failed to create "
                           "device: Invalid config");
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(ch_api_status_error(CH_VM_INFO, 404, "[\"Not Found\"]", 13, &err), -ENOENT);
    ASSERT_STREQ(err->msg, "cloud-hypervisor: vm.info: 404: Not Found");
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(ch_api_status_error(CH_VM_BOOT, 400, NULL, 0, &err), -EINVAL);
    ASSERT_STREQ(err->msg, "cloud-hypervisor: vm.boot: 400");
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(ch_api_status_error(CH_VM_RESIZE, 429, "busy", 4, &err), -EBUSY);
    ASSERT_STREQ(err->msg, "cloud-hypervisor: vm.resize: 429: busy");
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(ch_api_status_error(CH_VM_RESTORE, 409, "[\"a\",1]", 7, &err), -EEXIST);
    ASSERT_STREQ(err->msg, "cloud-hypervisor: vm.restore: 409: [\"a\",1]");
    wr_error_free(err);
}

static void test_404_then_reply(void)
{
    struct ch_response_parser p;
    ch_response_parser_init(&p);
    const char *two = REPLY_404 REPLY_204;
    ssize_t n = ch_response_parser_feed(&p, two, strlen(two));
    ASSERT_EQ(n, (ssize_t)strlen(REPLY_404));
    ASSERT_EQ(p.status, 404);
    ASSERT_STREQ(p.body.data, "[\"Not Found\"]");
    ch_response_parser_next(&p);
    feed_all(&p, two + n);
    ASSERT_EQ(p.status, 204);
    ch_response_parser_free(&p);
}

static void test_oversize_and_garbage(void)
{
    struct ch_response_parser p;
    ch_response_parser_init(&p);
    char *big = wr_asprintf("HTTP/1.1 200 \r\nContent-Length: %d\r\n\r\n", CH_API_RESPONSE_MAX + 1);
    ASSERT_EQ(ch_response_parser_feed(&p, big, strlen(big)), -1);
    ASSERT_EQ(ch_response_parser_feed(&p, "x", 1), -1); /* stays failed */
    free(big);
    ch_response_parser_free(&p);

    /* A body without Content-Length read until EOF may not grow past the cap either. */
    ch_response_parser_init(&p);
    const char *head = "HTTP/1.1 200 \r\n\r\n";
    ASSERT_EQ(ch_response_parser_feed(&p, head, strlen(head)), (ssize_t)strlen(head));
    char *chunk = wr_malloc(64 * 1024);
    memset(chunk, 'a', 64 * 1024);
    ssize_t r = 0;
    for (int i = 0; i < 17 && r >= 0; i++)
        r = ch_response_parser_feed(&p, chunk, 64 * 1024);
    ASSERT_EQ(r, -1);
    free(chunk);
    ch_response_parser_free(&p);

    const char *garbage[] = {"HTTP/1.1 abc \r\n\r\n", "SSH-2.0-OpenSSH\r\n", "\x01\x02\x03\r\n",
                             "HTTP/1.1 200 \r\nContent-Length: 5x\r\n\r\n"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(garbage); i++) {
        ch_response_parser_init(&p);
        ASSERT_EQ(ch_response_parser_feed(&p, garbage[i], strlen(garbage[i])), -1);
        ch_response_parser_free(&p);
    }

    /* Headers past the cap. */
    ch_response_parser_init(&p);
    const char *start = "HTTP/1.1 200 \r\n";
    ASSERT(ch_response_parser_feed(&p, start, strlen(start)) > 0);
    char line[1024];
    snprintf(line, sizeof(line), "X-Filler: %0*d\r\n", 1000, 0);
    r = 0;
    for (int i = 0; i < 20 && r >= 0; i++)
        r = ch_response_parser_feed(&p, line, strlen(line));
    ASSERT_EQ(r, -1);
    ch_response_parser_free(&p);
}

static void test_vm_info(void)
{
    struct ch_vm_info info;
    struct wr_error *err = NULL;
    const char *body = "{\"config\":{\"payload\":{}},\"state\":\"Running\","
                       "\"memory_actual_size\":402653184,\"device_tree\":{}}";
    ASSERT_EQ(ch_api_parse_vm_info(body, strlen(body), &info, &err), 0);
    ASSERT_STREQ(info.state, "Running");
    ASSERT_EQ(info.memory_actual_size, 402653184u);
    ASSERT(ch_api_parse_vm_info("[]", 2, &info, &err) < 0);
    ASSERT(err && err->status == EPROTO);
    wr_error_free(err);
}

static void test_vsock_reply(void)
{
    size_t consumed = 0;
    ASSERT_EQ(ch_vsock_parse_reply("OK 1073741824\nHELLO", 19, &consumed), 1);
    ASSERT_EQ(consumed, 14u);
    ASSERT_EQ(ch_vsock_parse_reply("OK 10", 5, &consumed), 0);
    ASSERT_EQ(ch_vsock_parse_reply("ERR\n", 4, &consumed), -1);
    ASSERT_EQ(ch_vsock_parse_reply("OK \n", 4, &consumed), -1);
    ASSERT_EQ(ch_vsock_parse_reply("OK 12x\n", 7, &consumed), -1);
}

/* ---- the hybrid vsock handshake against a fake VMM ---------------------------------- */

struct fake_vmm {
    int listen_fd;
    char path[108];
    int refusals; /* connections closed without OK first: a guest still booting */
    char got_line[64];
};

static void read_line(int fd, char *out, size_t max)
{
    size_t n = 0;
    while (n + 1 < max && read(fd, out + n, 1) == 1 && out[n] != '\n')
        n++;
    out[n] = 0;
}

static void *fake_vmm_main(void *arg)
{
    struct fake_vmm *f = arg;
    for (int i = 0; i < f->refusals; i++) {
        int c = accept(f->listen_fd, NULL, NULL);
        char line[64];
        read_line(c, line, sizeof(line));
        close(c); /* what CH does when nothing listens on the guest port */
    }
    int c = accept(f->listen_fd, NULL, NULL);
    read_line(c, f->got_line, sizeof(f->got_line));
    /* The OK line and the guest's first bytes in one write: they arrive in one read. */
    const char reply[] = "OK 1073741824\nHELLO-FROM-GUEST";
    ASSERT_EQ(write(c, reply, sizeof(reply) - 1), (ssize_t)(sizeof(reply) - 1));
    const char later[] = "LATER";
    ASSERT_EQ(write(c, later, sizeof(later) - 1), (ssize_t)(sizeof(later) - 1));
    close(c);
    return NULL;
}

struct vsock_result {
    bool done;
    int fd;
    char extra[64];
    struct wr_error *err;
};

static void on_vsock(void *data, int fd, const char *extra, size_t extra_len, struct wr_error *err)
{
    struct vsock_result *r = data;
    r->done = true;
    r->fd = fd;
    r->err = err;
    if (!err) {
        ASSERT(extra_len < sizeof(r->extra));
        memcpy(r->extra, extra, extra_len);
        r->extra[extra_len] = 0;
    }
}

static void fake_listen(struct fake_vmm *f, const char *dir)
{
    snprintf(f->path, sizeof(f->path), "%s/vsock.sock", dir);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, f->path);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(f->listen_fd >= 0);
    ASSERT_EQ(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ASSERT_EQ(listen(f->listen_fd, 8), 0);
}

static void test_vsock_handshake(void)
{
    char dir[] = "/tmp/test-ch-vsock-XXXXXX";
    ASSERT(mkdtemp(dir));
    struct fake_vmm f = {.refusals = 2};
    fake_listen(&f, dir);
    pthread_t thread;
    ASSERT_EQ(pthread_create(&thread, NULL, fake_vmm_main, &f), 0);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct vsock_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(ch_vsock_connect(&loop, f.path, CH_VSOCK_AGENT_PORT, 5000, on_vsock, &r, &err), 0);
    ASSERT(!r.done); /* never inside the call */
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT(r.done);
    if (r.err)
        fprintf(stderr, "%s\n", r.err->msg);
    ASSERT(!r.err);
    ASSERT_STREQ(f.got_line, "CONNECT 1024");
    /* The guest's bytes that came with the OK line are kept, whatever the reads' split;
     * the stream is raw from there on and the rest comes through the fd. */
    ASSERT(strncmp(r.extra, "HELLO-FROM-GUEST", 16) == 0);
    pthread_join(thread, NULL);
    char buf[64];
    size_t n = strlen(r.extra);
    memcpy(buf, r.extra, n);
    ssize_t got;
    while ((got = read(r.fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = 0;
    ASSERT_STREQ(buf, "HELLO-FROM-GUESTLATER");
    close(r.fd);
    close(f.listen_fd);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    unlink(f.path);
    rmdir(dir);
}

static void test_vsock_timeout(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct vsock_result r = {0};
    struct wr_error *err = NULL;
    ASSERT_EQ(ch_vsock_connect(&loop, "/nonexistent/vsock.sock", 1024, 100, on_vsock, &r, &err), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT(r.done && r.err && r.fd < 0);
    ASSERT_EQ(r.err->status, ETIMEDOUT);
    ASSERT(strstr(r.err->msg, "No such file") != NULL);
    wr_error_free(r.err);
    ASSERT_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_204_keep_alive);
    RUN(test_200_empty);
    RUN(test_byte_by_byte);
    RUN(test_404_then_reply);
    RUN(test_error_messages);
    RUN(test_oversize_and_garbage);
    RUN(test_vm_info);
    RUN(test_vsock_reply);
    RUN(test_vsock_handshake);
    RUN(test_vsock_timeout);
    return 0;
}
