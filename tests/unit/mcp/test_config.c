/* The configuration file's syntax (mcp/config.c): entries, line numbers, comments,
 * whitespace, CRLF, and every rejected form with its file:line message. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "mcp/config.h"
#include "test.h"

static struct mcp_config *parse_ok(const char *text)
{
    struct mcp_config *c = NULL;
    struct wr_error *err = NULL;
    int r = mcp_config_parse("t.conf", text, strlen(text), &c, &err);
    if (r < 0)
        fprintf(stderr, "unexpected error: %s\n", err->msg);
    ASSERT_EQ(r, 0);
    ASSERT(c);
    return c;
}

/* Parsing text fails with a message that contains want. */
static void parse_bad(const char *text, size_t len, const char *want)
{
    struct mcp_config *c = NULL;
    struct wr_error *err = NULL;
    ASSERT(mcp_config_parse("t.conf", text, len, &c, &err) < 0);
    ASSERT(c == NULL);
    ASSERT(err);
    if (!strstr(err->msg, want)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", err->msg, want);
        exit(1);
    }
    wr_error_free(err);
}

/* A literal, embedded NULs included. */
#define BAD(literal, want) parse_bad(literal, sizeof(literal) - 1, want)

static void test_entries(void)
{
    struct mcp_config *c = parse_ok("# warren\n"
                                    "\n"
                                    "listen = 127.0.0.1:8080\n"
                                    "  \t# indented comment\n"
                                    "\tpool=host=2   \n"
                                    "egress-hosts = /etc/hosts # not a comment\r\n"
                                    "log-json = true");
    ASSERT_EQ(c->n_entries, 4u);
    ASSERT_STREQ(c->entries[0].key, "listen");
    ASSERT_STREQ(c->entries[0].value, "127.0.0.1:8080");
    ASSERT_EQ(c->entries[0].line, 3u);
    ASSERT_STREQ(c->entries[1].key, "pool");
    ASSERT_STREQ(c->entries[1].value, "host=2");
    ASSERT_EQ(c->entries[1].line, 5u);
    ASSERT_STREQ(c->entries[2].value, "/etc/hosts # not a comment");
    ASSERT_EQ(c->entries[2].line, 6u);
    ASSERT_STREQ(c->entries[3].key, "log-json");
    ASSERT_STREQ(c->entries[3].value, "true");
    ASSERT_EQ(c->entries[3].line, 7u);
    ASSERT_STREQ(c->path, "t.conf");
    mcp_config_free(c);
    struct mcp_config *empty = parse_ok("");
    ASSERT_EQ(empty->n_entries, 0u);
    mcp_config_free(empty);
}

static void test_errors(void)
{
    BAD("listen 127.0.0.1:1\n", "t.conf:1: expected 'key = value'");
    BAD("\n\n = x\n", "t.conf:3: no key before '='");
    BAD("a = 1\nlisten =  \n", "t.conf:2: no value for 'listen'");
    BAD("Listen = x\n", "t.conf:1: key 'Listen' has a character other than");
    BAD("state dir = /x\n", "t.conf:1: key 'state dir'");
    BAD("a = b\x01\n", "t.conf:1: control character 0x01");
    BAD("a = b\n\nc = \xff\xfe\n", "t.conf:3: not valid UTF-8");
    BAD("a = 1\nb = 2\0\n", "t.conf:2: control character 0x00");
    BAD("a = x\rb\n", "t.conf:1: control character 0x0d");
    char long_key[MCP_CONFIG_MAX_KEY + 8];
    memset(long_key, 'k', sizeof(long_key));
    memcpy(long_key + MCP_CONFIG_MAX_KEY + 1, " = 1\n", 5);
    parse_bad(long_key, MCP_CONFIG_MAX_KEY + 6, "key longer than");
    char *big = malloc(MCP_CONFIG_MAX_LINE + 16);
    memcpy(big, "a = ", 4);
    memset(big + 4, 'v', MCP_CONFIG_MAX_LINE);
    parse_bad(big, MCP_CONFIG_MAX_LINE + 4, "t.conf:1: line longer than");
    free(big);
    /* Too many settings, and too large a file. */
    struct wr_buf b;
    wr_buf_init(&b, 1 << 20);
    for (int i = 0; i <= MCP_CONFIG_MAX_ENTRIES; i++)
        wr_buf_printf(&b, "k = %d\n", i);
    parse_bad(b.data, b.len, "t.conf:257: more than 256 settings");
    wr_buf_reset(&b);
    while (b.len <= MCP_CONFIG_MAX_BYTES)
        wr_buf_printf(&b, "# padding padding padding padding padding padding\n");
    parse_bad(b.data, b.len, "t.conf: larger than");
    wr_buf_free(&b);
}

static void test_load(void)
{
    char dir[] = "/tmp/warren-config-XXXXXX";
    ASSERT(mkdtemp(dir));
    _cleanup_free_ char *path = wr_path_join(dir, "warren.conf");
    struct mcp_config *c = NULL;
    struct wr_error *err = NULL;
    ASSERT_EQ(mcp_config_load(path, &c, &err), -ENOENT);
    ASSERT(strstr(err->msg, "warren.conf"));
    wr_error_free(TAKE_PTR(err));
    ASSERT_EQ(wr_write_file_atomic(path, "backend = jail\n", 15, 0600), 0);
    ASSERT_EQ(mcp_config_load(path, &c, &err), 0);
    ASSERT_EQ(c->n_entries, 1u);
    ASSERT_STREQ(c->entries[0].value, "jail");
    ASSERT_STREQ(c->path, path);
    mcp_config_free(c);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    RUN(test_entries);
    RUN(test_errors);
    RUN(test_load);
    return 0;
}
