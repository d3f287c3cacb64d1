/* warren: the command line. `warren mcp` serves one MCP client over stdio, `warren serve`
 * serves many over Streamable HTTP; both embed the same core. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "mcp.h"
#include "mcp/e2b/e2b.h"
#include "mcp/http/http.h"
#include "mcp/keys.h"
#include "mcp/web/web.h"
#include "vmm/backends/confine.h"
#include "vmm/backends/jail/jailer.h"
#include "vmm/backends/net.h"
#include "vmm/backends/vmfs.h"
#include "vmm/git/push.h"
#include "vmm/vmm.h"

#define WARREN_VERSION "0.1.0"

struct cli {
    const char *command;
    const char *backend;
    const char *state_dir;
    const char *listen;
    const char *auth;
    const char *log_level;
    bool log_json;
    unsigned max_timeout;
    uint64_t max_disk_mib;
    int idle_reclaim;
    long idle_pause, idle_stop;
    const char *insecure[17]; /* --insecure-registry, NULL-terminated */
    size_t n_insecure;
    const char *pools[17]; /* --pool, NULL-terminated */
    size_t n_pools;
    const char *egress_hosts;
    const char *e2b_base_image;
};

static void usage(FILE *f)
{
    fputs("usage: warren mcp   [--backend B] [--state-dir D] [options]\n"
          "       warren serve --listen 127.0.0.1:PORT [--auth token|none] [--backend B]\n"
          "                    [--state-dir D] [options]\n"
          "       warren key create [--name N] | list | revoke NAME|ID  [--state-dir D]\n"
          "       warren version\n"
          "\n"
          "  mcp            MCP over stdio for one client (what Claude Code / Cursor launch)\n"
          "  serve          MCP Streamable HTTP at /mcp for many clients, the web UI at /\n"
          "                 and the E2B-compatible API (docs/e2b.md)\n"
          "  key            API keys, accepted wherever the token is (warren key --help)\n"
          "\n"
          "options:\n"
          "  --backend B           auto (default), cloud-hypervisor, qemu or jail\n"
          "  --state-dir D         default: $WARREN_STATE_DIR, else /var/lib/warren as root,\n"
          "                        else $XDG_STATE_HOME/warren\n"
          "  --listen ADDR         host:port, default 127.0.0.1:8080 (serve)\n"
          "  --auth token|none     bearer token from $WARREN_TOKEN or <state-dir>/token\n"
          "                        (default); none only on a loopback address\n"
          "  --max-exec-timeout S  cap on sandbox_exec timeout_seconds (default 3600)\n"
          "  --max-disk-mib N      cap on sandbox_create disk_mib (default 102400; at least\n"
          "                        64); a create without disk_mib gets 10240 or N if smaller\n"
          "  --idle-reclaim-seconds S  idle time after which a VM sandbox hands memory\n"
          "                        back through its balloon (default 30; 0: never)\n"
          "  --idle-pause-seconds S  pause a sandbox idle this long; a call resumes it\n"
          "                        (default 900; 0: never)\n"
          "  --idle-stop-seconds S   stop a sandbox idle this long, files kept; sandbox_resume\n"
          "                        boots it again (default 86400; 0: never)\n"
          "  --insecure-registry HOST[:PORT]  pull images from this registry over plain\n"
          "                        HTTP (repeatable, at most 16)\n"
          "  --pool IMAGE=N        keep N sandboxes of IMAGE (host, an OCI reference or a\n"
          "                        template) started for sandbox_create to claim\n"
          "                        (repeatable, at most 16 images)\n"
          "  --egress-hosts FILE   names the egress proxy of allow-list sandboxes resolves\n"
          "                        from this hosts(5) file before the host's resolver\n"
          "  --e2b-base-image I    the image E2B's default template 'base' stands for\n"
          "                        (default: host)\n"
          "  --log-level L         error, warning, info (default), debug\n"
          "  --log-json            log JSON lines to stderr\n",
          f);
}

static int parse_level(const char *s)
{
    if (!strcmp(s, "error"))
        return WR_LOG_ERROR;
    if (!strcmp(s, "warning"))
        return WR_LOG_WARNING;
    if (!strcmp(s, "debug"))
        return WR_LOG_DEBUG;
    return WR_LOG_INFO;
}

static int parse_cli(int argc, char **argv, struct cli *c)
{
    static const struct option opts[] = {
        {"backend", required_argument, NULL, 'b'},
        {"state-dir", required_argument, NULL, 's'},
        {"listen", required_argument, NULL, 'l'},
        {"auth", required_argument, NULL, 'a'},
        {"log-level", required_argument, NULL, 'v'},
        {"log-json", no_argument, NULL, 'j'},
        {"max-exec-timeout", required_argument, NULL, 't'},
        {"max-disk-mib", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {"idle-reclaim-seconds", required_argument, NULL, 'i'},
        {"idle-pause-seconds", required_argument, NULL, 'p'},
        {"idle-stop-seconds", required_argument, NULL, 'o'},
        {"insecure-registry", required_argument, NULL, 'r'},
        {"pool", required_argument, NULL, 'P'},
        {"egress-hosts", required_argument, NULL, 'E'},
        {"e2b-base-image", required_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    *c = (struct cli){.command = argv[1],
                      .backend = "auto",
                      .listen = "127.0.0.1:8080",
                      .auth = "token",
                      .log_level = "info"};
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'b':
            c->backend = optarg;
            break;
        case 's':
            c->state_dir = optarg;
            break;
        case 'l':
            c->listen = optarg;
            break;
        case 'a':
            c->auth = optarg;
            break;
        case 'v':
            c->log_level = optarg;
            break;
        case 'j':
            c->log_json = true;
            break;
        case 't':
            c->max_timeout = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'd': {
            char *end = NULL;
            unsigned long long n = strtoull(optarg, &end, 10);
            if (!*optarg || *end || n < VMM_DISK_MIB_MIN || n > (1ull << 24)) {
                fprintf(stderr, "warren: --max-disk-mib must be a number of MiB from %d to %llu\n",
                        VMM_DISK_MIB_MIN, 1ull << 24);
                return -1;
            }
            c->max_disk_mib = n;
            break;
        }
        case 'i':
            c->idle_reclaim = atoi(optarg) > 0 ? atoi(optarg) : -1;
            break;
        case 'p':
            c->idle_pause = atol(optarg) > 0 ? atol(optarg) : -1;
            break;
        case 'o':
            c->idle_stop = atol(optarg) > 0 ? atol(optarg) : -1;
            break;
        case 'r':
            if (c->n_insecure == WR_ARRAY_SIZE(c->insecure) - 1)
                return -1;
            c->insecure[c->n_insecure++] = optarg;
            break;
        case 'P':
            if (c->n_pools == WR_ARRAY_SIZE(c->pools) - 1)
                return -1;
            c->pools[c->n_pools++] = optarg;
            break;
        case 'E':
            c->egress_hosts = optarg;
            break;
        case 'B':
            c->e2b_base_image = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind < argc || (strcmp(c->auth, "token") && strcmp(c->auth, "none")))
        return -1;
    return 0;
}

/* The listener's credential check besides the token: the state directory's API keys. */
static bool api_key_ok(void *data, const char *credential)
{
    return vmm_api_key_valid(data, credential);
}

static char *resolve_state_dir(const char *flag)
{
    if (flag)
        return wr_strdup(flag);
    const char *env = getenv("WARREN_STATE_DIR");
    if (env && *env)
        return wr_strdup(env);
    if (geteuid() == 0)
        return wr_strdup("/var/lib/warren");
    const char *xdg = getenv("XDG_STATE_HOME");
    if (xdg && *xdg)
        return wr_path_join(xdg, "warren");
    const char *home = getenv("HOME");
    return wr_asprintf("%s/.local/state/warren", home ? home : "/tmp");
}

/* The bearer token: $WARREN_TOKEN, else <state>/token, created (0600) on first start. */
static int load_token(const char *state_dir, char **ret, struct wr_error **err)
{
    const char *env = getenv("WARREN_TOKEN");
    if (env && *env) {
        *ret = wr_strdup(env);
        return 0;
    }
    _cleanup_free_ char *path = wr_path_join(state_dir, "token");
    char *data = NULL;
    size_t len = 0;
    if (wr_read_file(path, 4096, &data, &len) == 0) {
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' '))
            data[--len] = 0;
        if (len >= 16) {
            *ret = data;
            return 0;
        }
        free(data);
    }
    uint8_t raw[32];
    char hex[65];
    int r = wr_random_bytes(raw, sizeof(raw));
    if (r < 0)
        return wr_error_set_errno(err, -r, "generating a token");
    wr_hex_encode(raw, sizeof(raw), hex);
    r = wr_write_file_atomic(path, hex, strlen(hex), 0600);
    if (r < 0)
        return wr_error_set_errno(err, -r, "writing %s", path);
    log_info("generated a bearer token in %s", path);
    *ret = wr_strdup(hex);
    return 0;
}

struct app {
    uv_loop_t *loop;
    struct vmm *vmm;
    struct mcp_server *server;
    struct http_server *listener; /* serve: the one HTTP listener, with /mcp on it */
    struct mcp_http *http;
    struct mcp_e2b *e2b; /* serve: the E2B-compatible API on the same listener */
    struct mcp_web *web; /* serve: the web UI on the same listener */
    uv_signal_t sigint, sigterm;
    bool stopping;
};

static void app_stop(struct app *app)
{
    if (app->stopping)
        return;
    app->stopping = true;
    /* The UI's event streams end cleanly, then the listener: no request reaches a front
     * door that is going away. */
    mcp_web_stop(TAKE_PTR(app->web));
    mcp_e2b_stop(TAKE_PTR(app->e2b));
    http_server_stop(TAKE_PTR(app->listener));
    mcp_http_stop(TAKE_PTR(app->http));
    uv_signal_stop(&app->sigint);
    uv_signal_stop(&app->sigterm);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_stop(app->loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    log_info("signal %d: shutting down (sandboxes keep running)", signum);
    app_stop(s->data);
}

static void on_stdin_closed(void *data)
{
    app_stop(data);
}

static int run(struct cli *c)
{
    /* File content moves through buffers of tens of megabytes. Served from the heap and
     * kept there once freed (up to the trim threshold), the next transfer reuses pages
     * that are already mapped instead of faulting in fresh ones: page faults, not
     * copies, dominated large reads (see tests/bench). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 192 << 20);
    wr_log_set_level(parse_level(c->log_level));
    wr_log_set_json(c->log_json);
    signal(SIGPIPE, SIG_IGN);
    _cleanup_free_ char *state_dir = resolve_state_dir(c->state_dir);
    _cleanup_error_ struct wr_error *err = NULL;
    struct app app = {.loop = uv_default_loop()};
    struct vmm_options vo = {.loop = app.loop,
                             .state_dir = state_dir,
                             .backend = c->backend,
                             .max_exec_timeout_s = c->max_timeout,
                             .max_disk_mib = c->max_disk_mib,
                             .idle_reclaim_s = c->idle_reclaim,
                             .idle_pause_s = c->idle_pause,
                             .idle_stop_s = c->idle_stop,
                             .insecure_registries = c->insecure,
                             .pools = c->pools,
                             .egress_hosts = c->egress_hosts};
    if (vmm_open(&vo, &app.vmm, &err) < 0) {
        log_error("%s", err->msg);
        return 1;
    }
    log_info("state directory %s, backend %s", state_dir, vmm_backend_name(app.vmm));
    struct mcp_server_options so = {
        .loop = app.loop, .vmm = app.vmm, .server_version = WARREN_VERSION};
    if (mcp_server_new(&so, &app.server, &err) < 0) {
        log_error("%s", err->msg);
        vmm_close(app.vmm);
        return 1;
    }
    uv_signal_init(app.loop, &app.sigint);
    uv_signal_init(app.loop, &app.sigterm);
    app.sigint.data = app.sigterm.data = &app;
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    int r;
    if (!strcmp(c->command, "mcp")) {
        r = mcp_stdio_start(app.server, on_stdin_closed, &app, &err);
    } else {
        _cleanup_free_ char *token = NULL;
        r = strcmp(c->auth, "none") ? load_token(state_dir, &token, &err) : 0;
        struct http_server_options ho = {.loop = app.loop,
                                         .listen = c->listen,
                                         .token = token,
                                         .credential_ok = api_key_ok,
                                         .credential_data = app.vmm};
        if (r == 0)
            r = http_server_start(&ho, &app.listener, &err);
        if (r == 0)
            r = mcp_http_start(app.server, app.listener, NULL, &app.http, &err);
        struct mcp_e2b_options eo = {.vmm = app.vmm,
                                     .listener = app.listener,
                                     .token = token,
                                     .base_image = c->e2b_base_image};
        if (r == 0)
            r = mcp_e2b_start(&eo, &app.e2b, &err);
        if (r == 0)
            r = mcp_web_start(app.vmm, app.listener, &app.web, &err);
    }
    if (r < 0) {
        log_error("%s", err->msg);
        app_stop(&app);
    } else {
        uv_run(app.loop, UV_RUN_DEFAULT);
    }
    /* One more turn runs the close callbacks of the transports' handles (they free their
     * memory there). Work still queued (a create half done) is abandoned with the
     * process; the loop is not run after the vmm is gone. Sandboxes keep running. */
    uv_run(app.loop, UV_RUN_NOWAIT);
    vmm_close(app.vmm);
    mcp_server_free(app.server);
    return r < 0 ? 1 : 0;
}

/* The HTTP listener holds up to 1,024 connections besides every sandbox's sockets: the
 * usual soft limit of 1,024 descriptors would stop it first. The hard limit is the
 * operator's. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    /* Hidden subcommands: helper processes warren spawns from /proc/self/exe. */
    if (argc >= 2 && !strcmp(argv[1], "__jail"))
        return vmm_jailer_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "__confine"))
        return vmm_confine_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "__netattach"))
        return vmm_netattach_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "__vmfs"))
        return vmm_vmfs_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "__gitpush"))
        return vmm_gitpush_main(argc, argv);
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("warren %s\n", WARREN_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "key")) {
        _cleanup_free_ char *state_dir = resolve_state_dir(NULL);
        return mcp_key_main(argc, argv, state_dir);
    }
    struct cli c;
    if (strcmp(argv[1], "mcp") && strcmp(argv[1], "serve")) {
        fprintf(stderr, "warren: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if (parse_cli(argc, argv, &c) < 0) {
        fprintf(stderr, "warren %s: bad arguments (see below)\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    raise_fd_limit();
    return run(&c);
}
