/* API keys: credentials a client presents instead of the server token (the E2B SDK's
 * X-API-Key, a /mcp bearer token, the web UI's sign-in). A key is "e2b_" and 40 hex
 * digits (the E2B SDK checks keys against ^e2b_[0-9a-f]+$); the store keeps its SHA-256
 * only. Keys are made, listed and revoked by `warren key` on the state directory, also
 * while a server runs on it: the server looks a key up in the store when it is presented,
 * or trusts its cache only while nothing else committed to the database, so a revoke
 * takes effect at the next request. */
#pragma once

#include <stdbool.h>

#include "store.h"

#define APIKEY_PREFIX "e2b_"
#define APIKEY_HEX 40
#define APIKEY_LENGTH (sizeof(APIKEY_PREFIX) - 1 + APIKEY_HEX)
#define APIKEY_NAME_MAX 63

/* Makes a key named name (NULL: "key-<id>"; else 1-63 of [A-Za-z0-9_.-]) and records its
 * hash. *ret_key (the only copy of the key) and *ret_id are the caller's to free. */
int apikey_create(struct store *st, const char *name, char **ret_key, char **ret_id,
                  struct wr_error **err);
/* Keys found valid lately, so that a client that sends its key with every request does
 * not cost a lookup each time. An entry holds while nothing else committed to the
 * database (sqlite's data_version: a `warren key revoke` in another process empties it)
 * and for at most APIKEY_CACHE_SECONDS (then the lookup runs again and records the use). */
#define APIKEY_CACHE_SECONDS 60
struct apikey_cache;
struct apikey_cache *apikey_cache_new(void);
void apikey_cache_free(struct apikey_cache *cache); /* NULL-safe */
/* apikey_valid through the cache (positive answers only are kept). */
bool apikey_valid_cached(struct store *st, struct apikey_cache *cache, const char *key);

/* Whether key is a key of the store that is not revoked. Anything that is not of the
 * key's form is refused without a lookup. A store error counts as a refusal. */
bool apikey_valid(struct store *st, const char *key);
