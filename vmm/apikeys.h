/* API keys: credentials a client presents instead of the server token (the E2B SDK's
 * X-API-Key, a /mcp bearer token, the web UI's sign-in). A key is "e2b_" and 40 hex
 * digits (the E2B SDK checks keys against ^e2b_[0-9a-f]+$); the store keeps its SHA-256
 * only. Keys are made, listed and revoked by `warren key` on the state directory, also
 * while a server runs on it: the server looks every key up in the store when it is
 * presented, so a revoke takes effect at the next request. */
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
/* Whether key is a key of the store that is not revoked. Anything that is not of the
 * key's form is refused without a lookup. A store error counts as a refusal. */
bool apikey_valid(struct store *st, const char *key);
