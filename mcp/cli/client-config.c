/* `warren mcp-config`: a ready client configuration for this warren, in each client's own
 * format. Without --http it launches `warren mcp` over stdio (this binary's absolute path
 * and the state directory); with --http it names the URL with the bearer token read from
 * the state directory (or $WARREN_TOKEN).
 *
 *   claude  the JSON `claude mcp add-json warren '<json>'` takes ({"type": "stdio" | "http"})
 *   cursor  ~/.cursor/mcp.json or .cursor/mcp.json: {"mcpServers": {"warren": ...}}
 *   vscode  .vscode/mcp.json: {"servers": {"warren": {"type": "stdio" | "http", ...}}}
 *   json    {"name", "transport": "stdio" | "http", "command", "args" | "url", "headers"} */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/util.h"

#define URL_MAX 2048u
#define TOKEN_MAX 4096u

static const char *const formats[] = {"claude", "cursor", "vscode", "json", NULL};

static void usage(FILE *f)
{
    fputs("usage: warren mcp-config claude|cursor|vscode|json [--http URL] [--state-dir D]\n"
          "  prints a client configuration for this warren: stdio (`warren mcp`), or with\n"
          "  --http the URL of `warren serve` (e.g. http://127.0.0.1:8080/mcp) with its\n"
          "  bearer token from <state-dir>/token or $WARREN_TOKEN\n",
          f);
}

/* The bearer token the server uses: $WARREN_TOKEN, else <state>/token. */
static char *read_token(const char *state_dir)
{
    const char *env = getenv("WARREN_TOKEN");
    if (env && *env)
        return wr_strdup(env);
    _cleanup_free_ char *path = wr_path_join(state_dir, "token");
    char *data = NULL;
    size_t len = 0;
    if (wr_read_file(path, TOKEN_MAX, &data, &len) < 0)
        return NULL;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' '))
        data[--len] = 0;
    if (len < 16 || strcspn(data, "\r\n\"\\") != len) {
        free(data);
        return NULL;
    }
    return data;
}

static bool url_ok(const char *url)
{
    size_t n = strlen(url);
    if (n > URL_MAX || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= ' ' || url[i] == '"' || url[i] == '\\' || url[i] == 0x7f)
            return false;
    return strlen(url + (url[4] == 's' ? 8 : 7)) > 0;
}

static char *self_path(void)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n <= 0)
        return NULL;
    path[n] = 0;
    return wr_strdup(path);
}

/* The server entry: stdio (command, args) or http (url, headers); `type` when the format
 * names the transport in it. */
static cJSON *server_entry(const char *format, const char *binary, const char *state_dir,
                           const char *url, const char *token)
{
    cJSON *e = cJSON_CreateObject();
    bool typed = !strcmp(format, "claude") || !strcmp(format, "vscode");
    if (!strcmp(format, "json")) {
        cJSON_AddStringToObject(e, "name", "warren");
        cJSON_AddStringToObject(e, "transport", url ? "http" : "stdio");
    } else if (typed) {
        cJSON_AddStringToObject(e, "type", url ? "http" : "stdio");
    }
    if (url) {
        cJSON_AddStringToObject(e, "url", url);
        cJSON *headers = cJSON_AddObjectToObject(e, "headers");
        _cleanup_free_ char *bearer = wr_asprintf("Bearer %s", token);
        cJSON_AddStringToObject(headers, "Authorization", bearer);
        return e;
    }
    cJSON_AddStringToObject(e, "command", binary);
    cJSON *args = cJSON_AddArrayToObject(e, "args");
    cJSON_AddItemToArray(args, cJSON_CreateString("mcp"));
    cJSON_AddItemToArray(args, cJSON_CreateString("--state-dir"));
    cJSON_AddItemToArray(args, cJSON_CreateString(state_dir));
    return e;
}

static cJSON *config(const char *format, cJSON *entry)
{
    if (!strcmp(format, "claude") || !strcmp(format, "json"))
        return entry;
    cJSON *root = cJSON_CreateObject();
    cJSON *servers = cJSON_AddObjectToObject(root, strcmp(format, "vscode") ? "mcpServers"
                                                                             : "servers");
    cJSON_AddItemToObject(servers, "warren", entry);
    return root;
}

int mcp_cli_client_config(int argc, char **argv)
{
    static const struct option opts[] = {
        {"http", required_argument, NULL, 'u'},
        {"state-dir", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *state_flag = NULL;
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'u')
            url = optarg;
        else if (o == 's')
            state_flag = optarg;
        else {
            usage(o == 'h' ? stdout : stderr);
            return o == 'h' ? 0 : 2;
        }
    }
    const char *format = optind < argc ? argv[optind] : NULL;
    bool known = false;
    for (size_t i = 0; format && formats[i]; i++)
        known = known || !strcmp(format, formats[i]);
    if (!known || optind + 1 != argc) {
        fprintf(stderr, "warren mcp-config: name one client: claude, cursor, vscode or json\n");
        usage(stderr);
        return 2;
    }
    if (url && !url_ok(url)) {
        fprintf(stderr, "warren mcp-config: --http takes the server's URL, e.g. "
                        "http://127.0.0.1:8080/mcp (http or https, at most %u characters)\n",
                URL_MAX);
        return 2;
    }
    _cleanup_free_ char *state_dir = mcp_cli_state_dir(state_flag);
    if (state_dir[0] != '/') {
        /* The client starts warren from a directory of its own: the path must not depend
         * on this one (the directory need not exist yet; warren makes it). */
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        if (!cwd) {
            fprintf(stderr, "warren mcp-config: the current directory: %m\n");
            return 1;
        }
        char *absolute = wr_path_join(cwd, state_dir);
        free(state_dir);
        state_dir = absolute;
    }
    _cleanup_free_ char *token = url ? read_token(state_dir) : NULL;
    if (url && !token) {
        fprintf(stderr,
                "warren mcp-config: no bearer token in %s/token: start `warren serve "
                "--state-dir %s` once (it makes one), or set $WARREN_TOKEN\n",
                state_dir, state_dir);
        return 1;
    }
    _cleanup_free_ char *binary = self_path();
    if (!binary) {
        fprintf(stderr, "warren mcp-config: cannot tell where this binary is: %m\n");
        return 1;
    }
    cJSON *root = config(format, server_entry(format, binary, state_dir, url, token));
    char *text = cJSON_Print(root);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
    return 0;
}
