/* `warren doctor`: what this host offers warren, one verdict a line with what to do about a
 * failure, and which backend --backend auto picks and why. The host checks are the sandbox
 * manager's own (vmm/probe.h); the listen address and the token are the server's. With
 * --json, one object (schema in README.md, "warren doctor"):
 *
 *   {"state_dir": D, "checks": [{"name", "ok", "detail", "fix"}],
 *    "backends": [{"name", "available", "why"}], "backend": {"chosen", "reason"}} */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "mcp/http/http.h"
#include "vmm/probe.h"

#define LISTEN_MAX 300

struct extra_check {
    const char *name;
    bool ok;
    char *detail;
    const char *fix;
};

/* Whether the address parses and could be bound now (in use: most likely a running
 * warren serve, which is no failure). */
static struct extra_check check_listen(const char *listen)
{
    char host[256];
    int port = -1;
    struct extra_check c = {.name = "listen",
                            .fix = "pass --listen HOST:PORT with a local address and a free port"};
    if (strlen(listen) > LISTEN_MAX || !http_split_authority(listen, host, sizeof(host), &port) ||
        port < 0 || port > 65535) {
        c.detail = wr_asprintf("--listen %.300s is not HOST:PORT", listen);
        return c;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
    char service[8];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, service, &hints, &ai);
    if (gai != 0) {
        c.detail = wr_asprintf("%s: %s", listen, gai_strerror(gai));
        return c;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int r = fd >= 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    bool loopback = http_host_is_loopback(host);
    const char *reach = loopback ? "loopback only" : "reachable from other hosts: keep the token "
                                                     "secret and put TLS in front";
    c.ok = r == 0 || r == EADDRINUSE;
    c.detail = r == 0            ? wr_asprintf("%s can be bound (%s)", listen, reach)
               : r == EADDRINUSE ? wr_asprintf("%s is in use: a running warren serve, or "
                                               "something else (%s)", listen, reach)
                                 : wr_asprintf("%s cannot be bound: %s", listen, strerror(r));
    return c;
}

/* $WARREN_TOKEN, or <state>/token: the server makes it (0600) on its first start. */
static struct extra_check check_token(const char *state_dir)
{
    struct extra_check c = {.name = "token", .ok = true};
    const char *env = getenv("WARREN_TOKEN");
    if (env && *env) {
        c.ok = strlen(env) >= 16;
        c.detail = wr_asprintf("from $WARREN_TOKEN (%zu characters)", strlen(env));
        c.fix = "use a token of at least 16 characters (warren serve makes 64 hex digits)";
        return c;
    }
    _cleanup_free_ char *path = wr_path_join(state_dir, "token");
    struct stat st;
    if (stat(path, &st) < 0) {
        c.detail = wr_asprintf("%s does not exist yet: warren serve makes one (mode 0600) on "
                               "its first start",
                               path);
        return c;
    }
    bool private = (st.st_mode & 077) == 0 && st.st_uid == geteuid();
    c.ok = private && S_ISREG(st.st_mode) && st.st_size >= 16;
    c.detail = wr_asprintf("%s: mode %04o, owner uid %u, %lld bytes", path,
                           (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                           (long long)st.st_size);
    c.fix = !private ? "chmod 600 the token file and chown it to the user warren runs as"
                     : "remove the token file: warren serve makes a new one";
    return c;
}

static void print_line(bool ok, const char *name, const char *detail, const char *fix)
{
    printf("%-4s %-16s %s", ok ? "ok" : "FAIL", name, detail);
    if (!ok && fix)
        printf(" -> %s", fix);
    printf("\n");
}

static void print_text(const char *state_dir, const struct vmm_host_report *r,
                       const struct extra_check *extra, size_t n_extra)
{
    printf("warren doctor: state directory %s\n\n", state_dir);
    for (size_t i = 0; i < r->n_checks; i++)
        print_line(r->checks[i].ok, r->checks[i].name, r->checks[i].detail, r->checks[i].fix);
    for (size_t i = 0; i < n_extra; i++)
        print_line(extra[i].ok, extra[i].name, extra[i].detail, extra[i].fix);
    printf("\nbackends:\n");
    for (size_t i = 0; i < r->n_backends; i++)
        printf("%-4s %-16s %s\n", r->backends[i].available ? "ok" : "no", r->backends[i].name,
               r->backends[i].available ? "can run here" : r->backends[i].why);
    if (r->chosen)
        printf("\n--backend auto picks %s: %s\n", r->chosen, r->reason);
    else
        printf("\nnothing can run: %s\n", r->reason);
}

static void add_check(cJSON *checks, const char *name, bool ok, const char *detail,
                      const char *fix)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddBoolToObject(o, "ok", ok);
    cJSON_AddStringToObject(o, "detail", detail);
    if (!ok && fix)
        cJSON_AddStringToObject(o, "fix", fix);
    else
        cJSON_AddNullToObject(o, "fix");
    cJSON_AddItemToArray(checks, o);
}

static void print_json(const char *state_dir, const struct vmm_host_report *r,
                       const struct extra_check *extra, size_t n_extra)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "state_dir", state_dir);
    cJSON *checks = cJSON_AddArrayToObject(root, "checks");
    for (size_t i = 0; i < r->n_checks; i++)
        add_check(checks, r->checks[i].name, r->checks[i].ok, r->checks[i].detail,
                  r->checks[i].fix);
    for (size_t i = 0; i < n_extra; i++)
        add_check(checks, extra[i].name, extra[i].ok, extra[i].detail, extra[i].fix);
    cJSON *backends = cJSON_AddArrayToObject(root, "backends");
    for (size_t i = 0; i < r->n_backends; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->backends[i].name);
        cJSON_AddBoolToObject(o, "available", r->backends[i].available);
        if (r->backends[i].why)
            cJSON_AddStringToObject(o, "why", r->backends[i].why);
        else
            cJSON_AddNullToObject(o, "why");
        cJSON_AddItemToArray(backends, o);
    }
    cJSON *backend = cJSON_AddObjectToObject(root, "backend");
    if (r->chosen)
        cJSON_AddStringToObject(backend, "chosen", r->chosen);
    else
        cJSON_AddNullToObject(backend, "chosen");
    cJSON_AddStringToObject(backend, "reason", r->reason);
    char *text = cJSON_Print(root);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
}

int mcp_cli_doctor(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir", required_argument, NULL, 's'},
        {"listen", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *state_flag = NULL, *listen = "127.0.0.1:8080";
    bool json = false;
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 's')
            state_flag = optarg;
        else if (o == 'l')
            listen = optarg;
        else if (o == 'j')
            json = true;
        else {
            fprintf(o == 'h' ? stdout : stderr,
                    "usage: warren doctor [--state-dir D] [--listen ADDR] [--json]\n");
            return o == 'h' ? 0 : 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "warren doctor: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    _cleanup_free_ char *state_dir = mcp_cli_state_dir(state_flag);
    struct vmm_host_report report;
    vmm_host_report(state_dir, &report);
    struct extra_check extra[] = {check_listen(listen), check_token(state_dir)};
    if (json)
        print_json(state_dir, &report, extra, WR_ARRAY_SIZE(extra));
    else
        print_text(state_dir, &report, extra, WR_ARRAY_SIZE(extra));
    int status = report.chosen ? 0 : 1;
    for (size_t i = 0; i < WR_ARRAY_SIZE(extra); i++)
        free(extra[i].detail);
    vmm_host_report_clear(&report);
    return status;
}
