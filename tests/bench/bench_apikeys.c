/* Benchmark of the API key check (vmm/apikeys.c) the listener runs for a credential that
 * is not the server token: SHA-256 of the key and one indexed sqlite lookup in the state
 * directory's store (no write: the last use is recorded at most once a minute). Prints
 * the cost per check for a valid key, a wrong key of the right form, and a malformed one
 * (refused without a lookup), with 1,000 keys in the store.
 * Usage: bench_apikeys  (no server, no root). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "vmm/apikeys.h"

#define KEYS 1000
#define CHECKS 20000

static double per_check_us(struct store *st, struct apikey_cache *cache, const char *key, bool want)
{
    uint64_t start = wr_now_ms();
    for (int i = 0; i < CHECKS; i++)
        if ((cache ? apikey_valid_cached(st, cache, key) : apikey_valid(st, key)) != want)
            bench_die("apikey_valid gave the wrong answer");
    return (double)(wr_now_ms() - start) * 1000.0 / CHECKS;
}

int main(void)
{
    char dir[] = "/tmp/warren-bench-apikeys-XXXXXX";
    if (!mkdtemp(dir))
        bench_die("mkdtemp");
    struct store *st = NULL;
    struct wr_error *err = NULL;
    if (store_open(dir, &st, &err) < 0)
        bench_die(err->msg);
    char *valid = NULL;
    for (int i = 0; i < KEYS; i++) {
        char *key = NULL, *id = NULL;
        if (apikey_create(st, NULL, &key, &id, &err) < 0)
            bench_die(err->msg);
        if (i == KEYS / 2)
            valid = key;
        else
            free(key);
        free(id);
    }
    apikey_valid(st, valid); /* records the first use: later checks only read */
    const char *wrong = "e2b_0000000000000000000000000000000000000000";
    struct apikey_cache *cache = apikey_cache_new();
    printf("API key check, %d keys in the store, %d checks each:\n", KEYS, CHECKS);
    printf("  valid key, lookup:              %.1f us/check\n",
           per_check_us(st, NULL, valid, true));
    printf("  valid key, cached (the server): %.1f us/check\n",
           per_check_us(st, cache, valid, true));
    printf("  wrong key (e2b_ form):          %.1f us/check\n",
           per_check_us(st, cache, wrong, false));
    printf("  malformed:                      %.2f us/check\n",
           per_check_us(st, cache, "x", false));
    apikey_cache_free(cache);
    free(valid);
    store_close(st);
    _cleanup_free_ char *rm = wr_asprintf("rm -rf %s", dir);
    bench_run(rm);
    return 0;
}
