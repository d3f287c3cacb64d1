/* warren: the command line. `warren mcp` serves one MCP client over stdio, `warren serve`
 * serves many over Streamable HTTP; both embed the same core. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "config.h"
#include "mcp.h"
#include "mcp/cli/cli.h"
#include "mcp/e2b/e2b.h"
#include "mcp/http/http.h"
#include "mcp/keys.h"
#include "mcp/metrics/metrics.h"
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
    long shutdown_timeout_s;   /* -1: the default */
    const char *config_path;   /* --config */
    struct mcp_config *config; /* the settings file read, owned; values point into it */
};

static void usage(FILE *f)
{
    fputs("usage: warren mcp   [--backend B] [--state-dir D] [options]\n"
          "       warren serve --listen 127.0.0.1:PORT [--auth token|none] [--backend B]\n"
          "                    [--state-dir D] [options]\n"
          "       warren doctor [--state-dir D] [--listen ADDR] [--json]\n"
          "       warren mcp-config claude|cursor|vscode|json [--http URL] [--state-dir D]\n"
          "       warren key create [--name N] | list | revoke NAME|ID  [--state-dir D]\n"
          "       warren version\n"
          "\n"
          "  mcp            MCP over stdio for one client (what Claude Code / Cursor launch)\n"
          "  serve          MCP Streamable HTTP at /mcp for many clients, the web UI at /,\n"
          "                 the E2B-compatible API (docs/e2b.md), Prometheus metrics at /metrics\n"
          "  doctor         checks what warren needs on this host and which backend auto picks\n"
          "  mcp-config     prints a client configuration (Claude Code, Cursor, VS Code, JSON)\n"
          "  key            API keys, accepted wherever the token is (warren key --help)\n"
          "\n"
          "options (each is also a key of the configuration file, `listen = ADDR`):\n"
          "  --config FILE         settings, one `key = value` a line; default for serve:\n"
          "                        " WARREN_SYSCONFDIR "/warren.conf when it exists. Options\n"
          "                        given here override the file's\n"
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
          "  --shutdown-timeout S  on SIGTERM, calls in flight get S seconds to finish before\n"
          "                        they are cancelled (default 10; 0: stop at once)\n"
          "  --e2b-base-image I    the image E2B's default template 'base' stands for\n"
          "                        (default: host)\n"
          "  --log-level L         error, warning, info (default), debug\n"
          "  --log-json            log JSON lines to stderr (in the file: log-json = true)\n"
          "\n"
          "files (installed): guest-init in " WARREN_LIBEXECDIR ", the VM guest kernel in\n"
          "  " WARREN_GUEST_KERNEL_DIR " (" WARREN_LIBEXECDIR "/fetch-guest-kernel fetches it);\n"
          "  in a build tree both are found next to the warren binary\n",
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

/* The options of `warren mcp` and `warren serve`. Each one but help and config is also a
 * key of the configuration file, under the same name. */
static const struct option cli_options[] = {
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
    {"shutdown-timeout", required_argument, NULL, 'T'},
    {"e2b-base-image", required_argument, NULL, 'B'},
    {"config", required_argument, NULL, 'c'},
    {NULL, 0, NULL, 0},
};

static bool option_repeatable(int o)
{
    return o == 'r' || o == 'P';
}

/* A whole decimal number in [min, max]. */
static int parse_number(const char *s, unsigned long long min, unsigned long long max,
                        unsigned long long *ret)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (!*s || *s == '-' || *s == '+' || *end || errno || n < min || n > max)
        return -1;
    *ret = n;
    return 0;
}

/* Sets option o to value (NULL for a flag without argument given on the command line).
 * name is how the user wrote it ("--listen" or "listen"), for messages. */
static int cli_set(struct cli *c, int o, const char *name, const char *value,
                   struct wr_error **err)
{
    unsigned long long n;
    switch (o) {
    case 'b':
        c->backend = value;
        return 0;
    case 's':
        c->state_dir = value;
        return 0;
    case 'l':
        c->listen = value;
        return 0;
    case 'a':
        if (strcmp(value, "token") && strcmp(value, "none"))
            return wr_error_set(err, EINVAL, "%s must be token or none, not '%s'", name, value);
        c->auth = value;
        return 0;
    case 'v':
        if (strcmp(value, "error") && strcmp(value, "warning") && strcmp(value, "info") &&
            strcmp(value, "debug"))
            return wr_error_set(err, EINVAL, "%s must be error, warning, info or debug, not '%s'",
                                name, value);
        c->log_level = value;
        return 0;
    case 'j':
        if (value && strcmp(value, "true") && strcmp(value, "false"))
            return wr_error_set(err, EINVAL, "%s must be true or false, not '%s'", name, value);
        c->log_json = !value || !strcmp(value, "true");
        return 0;
    case 't':
        if (parse_number(value, 1, UINT32_MAX, &n) < 0)
            return wr_error_set(err, EINVAL, "%s must be a number of seconds from 1 to %u", name,
                                UINT32_MAX);
        c->max_timeout = (unsigned)n;
        return 0;
    case 'd':
        if (parse_number(value, VMM_DISK_MIB_MIN, 1ull << 24, &n) < 0)
            return wr_error_set(err, EINVAL, "%s must be a number of MiB from %d to %llu", name,
                                VMM_DISK_MIB_MIN, 1ull << 24);
        c->max_disk_mib = n;
        return 0;
    case 'i':
    case 'p':
    case 'o':
        /* 0 turns the step off (-1 below); unset (0 in struct cli) keeps the default. */
        if (parse_number(value, 0, INT32_MAX, &n) < 0)
            return wr_error_set(err, EINVAL, "%s must be a number of seconds from 0 to %d", name,
                                INT32_MAX);
        if (o == 'i')
            c->idle_reclaim = n ? (int)n : -1;
        else if (o == 'p')
            c->idle_pause = n ? (long)n : -1;
        else
            c->idle_stop = n ? (long)n : -1;
        return 0;
    case 'r':
        if (c->n_insecure == WR_ARRAY_SIZE(c->insecure) - 1)
            return wr_error_set(err, EINVAL, "%s is given more than %zu times", name,
                                WR_ARRAY_SIZE(c->insecure) - 1);
        c->insecure[c->n_insecure++] = value;
        return 0;
    case 'P':
        if (c->n_pools == WR_ARRAY_SIZE(c->pools) - 1)
            return wr_error_set(err, EINVAL, "%s is given more than %zu times", name,
                                WR_ARRAY_SIZE(c->pools) - 1);
        c->pools[c->n_pools++] = value;
        return 0;
    case 'E':
        c->egress_hosts = value;
        return 0;
    case 'T':
        if (parse_number(value, 0, 3600, &n) < 0)
            return wr_error_set(err, EINVAL, "%s must be 0 to 3600 seconds", name);
        c->shutdown_timeout_s = (long)n;
        return 0;
    case 'B':
        c->e2b_base_image = value;
        return 0;
    case 'c':
        c->config_path = value;
        return 0;
    }
    return wr_error_set(err, EINVAL, "unknown option %s", name);
}

static const struct option *option_by_name(const char *name)
{
    for (const struct option *opt = cli_options; opt->name; opt++)
        if (!strcmp(opt->name, name) && opt->val != 'h' && opt->val != 'c')
            return opt;
    return NULL;
}

/* Applies the configuration file's settings that the command line did not give
 * (given[o] set): a flag overrides its key, and any --pool or --insecure-registry on the
 * command line replaces that key's whole list. */
static int cli_apply_config(struct cli *c, const struct mcp_config *config, const bool *given,
                            struct wr_error **err)
{
    unsigned first_line[UCHAR_MAX + 1] = {0};
    for (size_t i = 0; i < config->n_entries; i++) {
        const struct mcp_config_entry *e = &config->entries[i];
        const struct option *opt = option_by_name(e->key);
        if (!opt)
            return wr_error_set(err, EINVAL, "%s:%u: unknown key '%s'", config->path, e->line,
                                e->key);
        if (first_line[opt->val] && !option_repeatable(opt->val))
            return wr_error_set(err, EINVAL, "%s:%u: '%s' is set again (first on line %u)",
                                config->path, e->line, e->key, first_line[opt->val]);
        if (!first_line[opt->val])
            first_line[opt->val] = e->line;
        if (given[opt->val])
            continue;
        if (cli_set(c, opt->val, e->key, e->value, err) < 0)
            return wr_error_wrap(err, "%s:%u", config->path, e->line);
    }
    return 0;
}

/* The configuration file: --config FILE (which must exist), else for `warren serve` the
 * system one when it exists. */
static int cli_load_config(struct cli *c, const bool *given, struct wr_error **err)
{
    const char *path = c->config_path;
    bool optional = false;
    if (!path) {
        if (strcmp(c->command, "serve"))
            return 0;
        path = WARREN_SYSCONFDIR "/warren.conf";
        optional = true;
    }
    int r = mcp_config_load(path, &c->config, err);
    if (r == -ENOENT && optional) {
        wr_error_free(TAKE_PTR(*err));
        return 0;
    }
    if (r < 0)
        return r;
    return cli_apply_config(c, c->config, given, err);
}

static int parse_cli(int argc, char **argv, struct cli *c)
{
    *c = (struct cli){.command = argv[1],
                      .backend = "auto",
                      .listen = "127.0.0.1:8080",
                      .auth = "token",
                      .log_level = "info",
                      .shutdown_timeout_s = -1};
    bool given[UCHAR_MAX + 1] = {false};
    _cleanup_error_ struct wr_error *err = NULL;
    optind = 2;
    int o, index = 0;
    while ((o = getopt_long(argc, argv, "h", cli_options, &index)) != -1) {
        if (o == 'h') {
            usage(stdout);
            exit(0);
        }
        if (o == '?' || o == ':')
            return -1;
        _cleanup_free_ char *name = wr_asprintf("--%s", cli_options[index].name);
        if (cli_set(c, o, name, optarg, &err) < 0) {
            fprintf(stderr, "warren: %s\n", err->msg);
            return -1;
        }
        given[o] = true;
    }
    if (optind < argc) {
        fprintf(stderr, "warren: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (cli_load_config(c, given, &err) < 0) {
        fprintf(stderr, "warren: %s\n", err->msg);
        return -2;
    }
    return 0;
}

/* The listener's credential check besides the token: the state directory's API keys. */
static bool api_key_ok(void *data, const char *credential)
{
    return vmm_api_key_valid(data, credential);
}

static char *resolve_state_dir(const char *flag)
{
    return mcp_cli_state_dir(flag);
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
    /* Graceful shutdown: the first SIGTERM/SIGINT drains (app_drain), a second one or the
     * end of the drain stops. */
    uv_timer_t drain_timer;
    uint64_t drain_deadline_ms;
    uint64_t shutdown_timeout_ms;
    bool draining, calls_cancelled;
    bool stopping;
};

/* How often a drain checks whether the calls in flight have finished. */
#define DRAIN_POLL_MS 50
/* After the calls left are cancelled, their error answers get this long to be written. */
#define DRAIN_FLUSH_MS 300

static void app_stop(struct app *app)
{
    if (app->stopping)
        return;
    app->stopping = true;
    /* The UI's event streams end cleanly, then the listener: no request reaches a front
     * door that is going away. */
    mcp_web_stop(TAKE_PTR(app->web));
    mcp_e2b_stop(app->e2b);
    http_server_stop(TAKE_PTR(app->listener));
    mcp_http_stop(TAKE_PTR(app->http));
    uv_signal_stop(&app->sigint);
    uv_signal_stop(&app->sigterm);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->drain_timer, NULL);
    uv_stop(app->loop);
}

static void drain_tick(uv_timer_t *t)
{
    struct app *app = t->data;
    uint64_t now = uv_now(app->loop);
    if (app->calls_cancelled) {
        if (now >= app->drain_deadline_ms)
            app_stop(app);
        return;
    }
    size_t in_flight = mcp_server_calls_in_flight(app->server);
    if (in_flight == 0) {
        log_info("shutdown: no call in flight; stopping");
        app_stop(app);
        return;
    }
    if (now < app->drain_deadline_ms)
        return;
    _cleanup_free_ char *message = wr_asprintf(
        "the server is shutting down: this call was cancelled after %llu s of grace; its "
        "sandbox keeps running for the next server",
        (unsigned long long)(app->shutdown_timeout_ms / 1000));
    size_t n = mcp_server_cancel_calls(app->server, message);
    log_info("shutdown: cancelled %zu call(s) still in flight after %llu ms", n,
             (unsigned long long)app->shutdown_timeout_ms);
    app->calls_cancelled = true;
    app->drain_deadline_ms = now + DRAIN_FLUSH_MS;
}

/* Graceful shutdown: new requests are refused (HTTP 503, or a JSON-RPC error), event
 * streams end, calls in flight get shutdown_timeout_ms to finish; those left are answered
 * with a JSON-RPC error and cancelled. Sandboxes keep running. */
static void app_drain(struct app *app)
{
    if (app->draining || app->stopping)
        return;
    if (app->shutdown_timeout_ms == 0 || !app->server) {
        app_stop(app);
        return;
    }
    app->draining = true;
    mcp_server_drain(app->server);
    if (app->listener)
        http_server_drain(app->listener);
    mcp_http_drain(app->http);
    mcp_web_drain(app->web);
    log_info("shutdown: %zu call(s) in flight get up to %llu ms to finish",
             mcp_server_calls_in_flight(app->server),
             (unsigned long long)app->shutdown_timeout_ms);
    app->drain_deadline_ms = uv_now(app->loop) + app->shutdown_timeout_ms;
    uv_timer_start(&app->drain_timer, drain_tick, 0, DRAIN_POLL_MS);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct app *app = s->data;
    if (app->draining) {
        log_info("signal %d again: stopping now (sandboxes keep running)", signum);
        app_stop(app);
        return;
    }
    log_info("signal %d: shutting down (sandboxes keep running)", signum);
    app_drain(app);
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
    struct app app = {.loop = uv_default_loop(),
                      .shutdown_timeout_ms =
                          (uint64_t)(c->shutdown_timeout_s < 0 ? 10 : c->shutdown_timeout_s) *
                          1000};
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
    uv_timer_init(app.loop, &app.drain_timer);
    app.drain_timer.data = &app;
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
        if (r == 0)
            mcp_metrics_route(app.listener, app.vmm);
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
    mcp_e2b_free(app.e2b);
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
    if (!strcmp(argv[1], "doctor"))
        return mcp_cli_doctor(argc, argv);
    if (!strcmp(argv[1], "mcp-config"))
        return mcp_cli_client_config(argc, argv);
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
    int r = parse_cli(argc, argv, &c);
    if (r == -2) {
        mcp_config_free(c.config);
        return 2;
    }
    if (r < 0) {
        fprintf(stderr, "warren %s: bad arguments (see below)\n\n", argv[1]);
        usage(stderr);
        mcp_config_free(c.config);
        return 2;
    }
    raise_fd_limit();
    r = run(&c);
    mcp_config_free(c.config);
    return r;
}
