#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"

static int log_level = WR_LOG_INFO;
static bool log_json;

void wr_log_set_level(int level)
{
    log_level = level;
}
void wr_log_set_json(bool json)
{
    log_json = json;
}
int wr_log_get_level(void)
{
    return log_level;
}

static const char *level_name(int level)
{
    switch (level) {
    case WR_LOG_ERROR:
        return "error";
    case WR_LOG_WARNING:
        return "warning";
    case WR_LOG_NOTICE:
        return "notice";
    case WR_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* Writes s as a JSON string body (without quotes). */
static void put_json_escaped(struct wr_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            wr_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            wr_buf_printf(b, "\\u%04x", c);
        else
            wr_buf_append(b, s, 1);
    }
}

void wr_log(int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    int saved = errno;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char when[32];
    wr_format_time(wr_unix_time(), when);
    struct wr_buf b;
    wr_buf_init(&b, 16384);
    if (log_json) {
        wr_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", when, level_name(level));
        put_json_escaped(&b, msg);
        wr_buf_append(&b, "\"}\n", 3);
    } else {
        wr_buf_printf(&b, "%s warren[%d] %s: %s\n", when, (int)getpid(), level_name(level), msg);
    }
    (void)!write(STDERR_FILENO, b.data, b.len);
    wr_buf_free(&b);
    errno = saved;
}
