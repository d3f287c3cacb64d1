/* `warren key`: API keys from the command line (see keys.h). The key itself is printed
 * once, by create, on standard output; the store keeps its hash only. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "vmm/apikeys.h"

static void key_usage(FILE *f)
{
    fputs("usage: warren key create [--name N] [--state-dir D]\n"
          "       warren key list [--state-dir D]\n"
          "       warren key revoke NAME|ID [--state-dir D]\n"
          "\n"
          "  create   prints a new key (e2b_ and 40 hex digits) on standard output\n"
          "  list     name, id, created, last used, revoked (never the key)\n"
          "  revoke   refuses the key from the next request on, also on a running server\n",
          f);
}

static void format_time(int64_t t, char *out, size_t size)
{
    if (!t) {
        snprintf(out, size, "-");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int key_list(struct store *st, struct wr_error **err)
{
    struct store_api_key *keys = NULL;
    size_t n = 0;
    if (store_api_key_list(st, &keys, &n, err) < 0)
        return -1;
    printf("%-24s %-16s %-20s %-20s %s\n", "NAME", "ID", "CREATED", "LAST USED", "REVOKED");
    for (size_t i = 0; i < n; i++) {
        char created[32], used[32], revoked[32];
        format_time(keys[i].created_at, created, sizeof(created));
        format_time(keys[i].last_used_at, used, sizeof(used));
        format_time(keys[i].revoked_at, revoked, sizeof(revoked));
        printf("%-24s %-16s %-20s %-20s %s\n", keys[i].name, keys[i].id, created, used, revoked);
        store_api_key_clear(&keys[i]);
    }
    free(keys);
    return 0;
}

int mcp_key_main(int argc, char **argv, const char *default_state_dir)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"state-dir", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *state_dir = default_state_dir;
    const char *verb = argc >= 3 ? argv[2] : NULL;
    optind = 3;
    int o;
    while (verb && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'n')
            name = optarg;
        else if (o == 's')
            state_dir = optarg;
        else if (o == 'h') {
            key_usage(stdout);
            return 0;
        } else {
            key_usage(stderr);
            return 2;
        }
    }
    int operands = verb ? argc - optind : 0;
    bool ok = verb && ((!strcmp(verb, "create") && operands == 0) ||
                       (!strcmp(verb, "list") && operands == 0 && !name) ||
                       (!strcmp(verb, "revoke") && operands == 1 && !name));
    if (!ok) {
        key_usage(stderr);
        return 2;
    }
    _cleanup_error_ struct wr_error *err = NULL;
    struct store *st = NULL;
    int r = wr_mkdir_p(state_dir, 0700);
    if (r < 0) {
        fprintf(stderr, "warren key: creating %s: %s\n", state_dir, strerror(-r));
        return 1;
    }
    if (store_open(state_dir, &st, &err) < 0) {
        fprintf(stderr, "warren key: %s\n", err->msg);
        return 1;
    }
    if (!strcmp(verb, "create")) {
        _cleanup_free_ char *key = NULL, *id = NULL;
        r = apikey_create(st, name, &key, &id, &err);
        if (r == 0) {
            printf("%s\n", key);
            fprintf(stderr, "warren key: created key '%s%s' (id %s); it is shown only this once\n",
                    name ? "" : "key-", name ? name : id, id);
        }
    } else if (!strcmp(verb, "list")) {
        r = key_list(st, &err);
    } else {
        r = store_api_key_revoke(st, argv[optind], wr_unix_time(), &err);
        if (r == 0)
            fprintf(stderr, "warren key: revoked '%s'\n", argv[optind]);
    }
    store_close(st);
    if (r < 0) {
        fprintf(stderr, "warren key %s: %s\n", verb, err->msg);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
