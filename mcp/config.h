/* The server's configuration file (/etc/warren/warren.conf, or `--config FILE`): one
 * setting per line, `key = value`, in the syntax documented in tools/package/warren.conf.
 *
 *   # a comment: '#' starts a comment only as the first character of a line
 *   listen = 127.0.0.1:8080
 *   pool = host=2
 *
 * Blank lines and comment lines are ignored; spaces and tabs around the key and the value
 * are dropped; the value is the rest of the line after the first '=' (it may contain '='
 * and '#'). This parser checks the syntax and the caps only: which keys exist and what
 * their values mean is the caller's (mcp/main.c maps each key to the command-line option
 * of the same name). */
#pragma once

#include "util/util.h"

#define MCP_CONFIG_MAX_BYTES (64u * 1024)
#define MCP_CONFIG_MAX_LINE 4096
#define MCP_CONFIG_MAX_ENTRIES 256
#define MCP_CONFIG_MAX_KEY 64

struct mcp_config_entry {
    const char *key;   /* [a-z0-9-]+, at most MCP_CONFIG_MAX_KEY bytes */
    const char *value; /* not empty, no control characters, valid UTF-8 */
    unsigned line;     /* 1-based line number in the file */
};

struct mcp_config {
    char *path; /* as given, for messages */
    struct mcp_config_entry *entries;
    size_t n_entries;
    char *text; /* the entries point into it */
};

/* Parses len bytes of text (need not be NUL-terminated) read from path (used in messages
 * only). On success *ret is a new config the caller frees with mcp_config_free. On a
 * syntax error returns a negative errno (-EINVAL, -EFBIG) and err says "PATH:LINE: what";
 * nothing is returned. */
int mcp_config_parse(const char *path, const char *text, size_t len, struct mcp_config **ret,
                     struct wr_error **err);

/* Reads and parses path. A file that does not exist returns -ENOENT with err set, so that
 * a caller for which the file is optional can tell that case apart. */
int mcp_config_load(const char *path, struct mcp_config **ret, struct wr_error **err);

void mcp_config_free(struct mcp_config *config);
