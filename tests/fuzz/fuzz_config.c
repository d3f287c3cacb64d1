/* libFuzzer target for the configuration file's parser (mcp/config.c): arbitrary bytes as
 * warren.conf. An accepted file's entries hold up: keys of [a-z0-9-], values not empty
 * and without surrounding blanks, line numbers increasing and within the file. */
#include <stdint.h>
#include <string.h>

#include "mcp/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct mcp_config *c, size_t size)
{
    unsigned previous = 0, lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += c->text[i] == '\n' || c->text[i] == 0;
    for (size_t i = 0; i < c->n_entries; i++) {
        const struct mcp_config_entry *e = &c->entries[i];
        size_t key_len = strlen(e->key), value_len = strlen(e->value);
        if (key_len == 0 || key_len > MCP_CONFIG_MAX_KEY || value_len == 0)
            __builtin_trap();
        if (strspn(e->key, "abcdefghijklmnopqrstuvwxyz0123456789-") != key_len)
            __builtin_trap();
        if (e->value[0] == ' ' || e->value[0] == '\t' || e->value[value_len - 1] == ' ' ||
            e->value[value_len - 1] == '\t')
            __builtin_trap();
        if (e->line <= previous || e->line > lines)
            __builtin_trap();
        previous = e->line;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mcp_config *c = NULL;
    struct wr_error *err = NULL;
    if (mcp_config_parse("fuzz.conf", (const char *)data, size, &c, &err) == 0) {
        check(c, size);
        mcp_config_free(c);
    } else if (!err || !strstr(err->msg, "fuzz.conf")) {
        __builtin_trap(); /* every error names the file */
    }
    wr_error_free(err);
    return 0;
}
