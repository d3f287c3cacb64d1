/* The configuration file's syntax (see config.h). */
#include <errno.h>
#include <string.h>

#include "config.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Trims spaces and tabs at both ends of [*s, *s + *n). */
static void trim(char **s, size_t *n)
{
    while (*n > 0 && is_blank(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_blank((*s)[*n - 1]))
        (*n)--;
}

/* One line, NUL-terminated in place (its '\n' and a '\r' before it already cut off).
 * Appends an entry to config unless the line is blank or a comment. */
static int parse_line(struct mcp_config *config, char *line, size_t len, unsigned number,
                      struct wr_error **err)
{
    const char *path = config->path;
    if (len > MCP_CONFIG_MAX_LINE)
        return wr_error_set(err, EINVAL, "%s:%u: line longer than %u bytes", path, number,
                            MCP_CONFIG_MAX_LINE);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
            return wr_error_set(err, EINVAL, "%s:%u: control character 0x%02x", path, number,
                                (unsigned char)line[i]);
    if (!wr_utf8_valid(line, len))
        return wr_error_set(err, EINVAL, "%s:%u: not valid UTF-8", path, number);
    trim(&line, &len);
    if (len == 0 || line[0] == '#')
        return 0;
    char *eq = memchr(line, '=', len);
    if (!eq)
        return wr_error_set(err, EINVAL, "%s:%u: expected 'key = value'", path, number);
    char *key = line, *value = eq + 1;
    size_t key_len = (size_t)(eq - line), value_len = len - key_len - 1;
    trim(&key, &key_len);
    trim(&value, &value_len);
    if (key_len == 0)
        return wr_error_set(err, EINVAL, "%s:%u: no key before '='", path, number);
    if (key_len > MCP_CONFIG_MAX_KEY)
        return wr_error_set(err, EINVAL, "%s:%u: key longer than %u bytes", path, number,
                            MCP_CONFIG_MAX_KEY);
    for (size_t i = 0; i < key_len; i++)
        if (!is_key_char(key[i]))
            return wr_error_set(err, EINVAL,
                                "%s:%u: key '%.*s' has a character other than a-z, 0-9 and '-'",
                                path, number, (int)key_len, key);
    if (value_len == 0)
        return wr_error_set(err, EINVAL, "%s:%u: no value for '%.*s'", path, number,
                            (int)key_len, key);
    if (config->n_entries == MCP_CONFIG_MAX_ENTRIES)
        return wr_error_set(err, EINVAL, "%s:%u: more than %u settings", path, number,
                            MCP_CONFIG_MAX_ENTRIES);
    key[key_len] = 0;
    value[value_len] = 0;
    config->entries[config->n_entries++] =
        (struct mcp_config_entry){.key = key, .value = value, .line = number};
    return 0;
}

int mcp_config_parse(const char *path, const char *text, size_t len, struct mcp_config **ret,
                     struct wr_error **err)
{
    if (len > MCP_CONFIG_MAX_BYTES)
        return wr_error_set(err, EFBIG, "%s: larger than %u bytes", path, MCP_CONFIG_MAX_BYTES);
    struct mcp_config *config = wr_calloc(1, sizeof(*config));
    config->path = wr_strdup(path);
    config->text = wr_strndup(text, len);
    config->entries = wr_calloc(MCP_CONFIG_MAX_ENTRIES, sizeof(*config->entries));
    /* A NUL inside the file would end the copy early: it is a control character too. */
    if (strlen(config->text) != len) {
        unsigned number = 1;
        for (const char *p = text; *p; p++)
            number += *p == '\n';
        wr_error_set(err, EINVAL, "%s:%u: control character 0x00", path, number);
        mcp_config_free(config);
        return -EINVAL;
    }
    char *p = config->text, *end = config->text + len;
    for (unsigned number = 1; p < end; number++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        p[n] = 0;
        int r = parse_line(config, p, n, number, err);
        if (r < 0) {
            mcp_config_free(config);
            return r;
        }
        p = nl ? nl + 1 : end;
    }
    *ret = config;
    return 0;
}

int mcp_config_load(const char *path, struct mcp_config **ret, struct wr_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = wr_read_file(path, MCP_CONFIG_MAX_BYTES, &text, &len);
    if (r == -EFBIG)
        return wr_error_set(err, EFBIG, "%s: larger than %u bytes", path, MCP_CONFIG_MAX_BYTES);
    if (r < 0)
        return wr_error_set_errno(err, -r, "reading %s", path);
    return mcp_config_parse(path, text, len, ret, err);
}

void mcp_config_free(struct mcp_config *config)
{
    if (!config)
        return;
    free(config->path);
    free(config->entries);
    free(config->text);
    free(config);
}
