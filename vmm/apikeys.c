/* API keys (see apikeys.h). */
#include <openssl/evp.h>
#include <string.h>

#include "apikeys.h"

/* Hex SHA-256 of the key's text. */
static void key_hash(const char *key, char out[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(key, strlen(key), digest, &len, EVP_sha256(), NULL);
    wr_hex_encode(digest, 32, out);
}

static bool key_form_ok(const char *key)
{
    size_t prefix = sizeof(APIKEY_PREFIX) - 1;
    if (!key || strlen(key) != APIKEY_LENGTH || strncmp(key, APIKEY_PREFIX, prefix))
        return false;
    return strspn(key + prefix, "0123456789abcdef") == APIKEY_HEX;
}

int apikey_create(struct store *st, const char *name, char **ret_key, char **ret_id,
                  struct wr_error **err)
{
    if (name && !wr_name_valid(name))
        return wr_error_set(err, EINVAL,
                            "invalid key name '%.80s': use 1-63 characters of letters, digits, "
                            "'_', '.' and '-', not starting with '.' or '-'",
                            name);
    unsigned char raw[APIKEY_HEX / 2], id_raw[8];
    int r = wr_random_bytes(raw, sizeof(raw));
    if (r == 0)
        r = wr_random_bytes(id_raw, sizeof(id_raw));
    if (r < 0)
        return wr_error_set_errno(err, -r, "generating an API key");
    char hex[APIKEY_HEX + 1], id[17], hash[65];
    wr_hex_encode(raw, sizeof(raw), hex);
    wr_hex_encode(id_raw, sizeof(id_raw), id);
    _cleanup_free_ char *key = wr_asprintf(APIKEY_PREFIX "%s", hex);
    key_hash(key, hash);
    _cleanup_free_ char *default_name = name ? NULL : wr_asprintf("key-%s", id);
    struct store_api_key k = {.id = id,
                              .name = (char *)(name ? name : default_name),
                              .created_at = wr_unix_time()};
    if (store_api_key_insert(st, &k, hash, err) < 0)
        return -(*err)->status;
    *ret_key = TAKE_PTR(key);
    *ret_id = wr_strdup(id);
    return 0;
}

bool apikey_valid(struct store *st, const char *key)
{
    if (!key_form_ok(key))
        return false;
    char hash[65];
    key_hash(key, hash);
    bool valid = false;
    struct wr_error *err = NULL;
    if (store_api_key_check(st, hash, wr_unix_time(), &valid, &err) < 0) {
        log_warning("checking an API key: %s", err->msg);
        wr_error_free(err);
        return false;
    }
    return valid;
}
