/* The decoders of the agent's list payloads (vmm/agent-lists.c) and of the terminal
 * WebSocket's control messages (mcp/web/terminal-control.c): what they make of good input,
 * and that caps, bad names and malformed TLVs are handled as documented. */
#include "guest-init/proto.h"
#include "mcp/web/terminal-control.h"
#include "test.h"
#include "vmm/agent-lists.h"
#include "vmm/vmm.h"

/* The payload of w's frame (after the header). */
#define PAYLOAD(w) ((w).data + GI_FRAME_HEADER_SIZE), ((w).len - GI_FRAME_HEADER_SIZE)

static void test_dir_entries(void)
{
    struct gi_writer w = {0};
    gi_writer_start(&w, GI_DIR_ENTRIES, 1);
    gi_writer_str(&w, GI_T_ENTRY, "src");
    gi_writer_u64(&w, GI_T_FILE_TYPE, 4);
    gi_writer_u64(&w, GI_T_MODE, 040755);
    gi_writer_str(&w, GI_T_ENTRY, "src/main.c");
    gi_writer_u64(&w, GI_T_FILE_TYPE, 8);
    gi_writer_u64(&w, GI_T_SIZE, 29);
    gi_writer_u64(&w, GI_T_MTIME, 1700000000);
    gi_writer_bytes(&w, GI_T_ENTRY, "bad\0name", 8); /* a NUL in a name: left out */
    gi_writer_u64(&w, GI_T_SIZE, 99);                /* ... with its fields */
    gi_writer_str(&w, GI_T_ENTRY, "link");
    gi_writer_u64(&w, GI_T_FILE_TYPE, 10);
    gi_writer_str(&w, GI_T_LINK_TARGET, "../x");
    ASSERT_EQ(gi_writer_finish(&w), 0);

    struct agent_dir_list list = {.max = 10};
    ASSERT_EQ(agent_dir_list_decode(&list, PAYLOAD(w)), 0);
    ASSERT_EQ(list.n, 3);
    ASSERT(list.cut);
    ASSERT_STREQ(list.entries[0].path, "src");
    ASSERT_EQ(list.entries[0].type, 4);
    ASSERT_EQ(list.entries[0].mode, 040755);
    ASSERT_STREQ(list.entries[1].path, "src/main.c");
    ASSERT_EQ(list.entries[1].size, 29);
    ASSERT_EQ(list.entries[1].mtime, 1700000000);
    ASSERT_STREQ(list.entries[2].path, "link");
    ASSERT_STREQ(list.entries[2].link_target, "../x");
    ASSERT(!list.entries[0].link_target);
    /* A second frame appends; the cap on entries holds across frames. */
    list.max = 4;
    ASSERT_EQ(agent_dir_list_decode(&list, PAYLOAD(w)), 0);
    ASSERT_EQ(list.n, 4);
    ASSERT_STREQ(list.entries[3].path, "src");
    agent_dir_list_clear(&list);
    ASSERT_EQ(list.n, 0);
    ASSERT_EQ(list.max, 4);
    /* A TLV that runs past the payload: EPROTO, the entries before it kept. */
    list.max = 10;
    ASSERT_EQ(agent_dir_list_decode(&list, w.data + GI_FRAME_HEADER_SIZE,
                                    w.len - GI_FRAME_HEADER_SIZE - 1),
              -EPROTO);
    ASSERT_EQ(list.n, 3);
    agent_dir_list_clear(&list);
    gi_writer_free(&w);
}

static void test_pty_entries(void)
{
    struct gi_writer e1 = {0}, e2 = {0}, w = {0};
    gi_writer_start(&e1, GI_RESULT, 1);
    gi_writer_u64(&e1, GI_T_PTY_ID, 7);
    gi_writer_u64(&e1, GI_T_PID, 42);
    gi_writer_u64(&e1, GI_T_ROWS, 24);
    gi_writer_u64(&e1, GI_T_COLS, 80);
    gi_writer_u64(&e1, GI_T_PTY_RUNNING, 1);
    gi_writer_u64(&e1, GI_T_CREATED, 1700000000);
    gi_writer_str(&e1, GI_T_ARG, "/bin/bash");
    gi_writer_start(&e2, GI_RESULT, 1);
    gi_writer_u64(&e2, GI_T_PTY_ID, 8);
    gi_writer_u64(&e2, GI_T_EXIT_CODE, (uint64_t)-1);
    gi_writer_u64(&e2, GI_T_SIGNAL, 9);
    gi_writer_bytes(&e2, GI_T_ROWS, "\1", 1); /* not 8 bytes: reads as 0 */
    ASSERT_EQ(gi_writer_finish(&e1) | gi_writer_finish(&e2), 0);
    gi_writer_start(&w, GI_RESULT, 1);
    gi_writer_bytes(&w, GI_T_PTY_ENTRY, PAYLOAD(e1));
    gi_writer_str(&w, GI_T_MESSAGE, "ignored");
    gi_writer_bytes(&w, GI_T_PTY_ENTRY, PAYLOAD(e2));
    ASSERT_EQ(gi_writer_finish(&w), 0);

    struct agent_pty_info list[2];
    size_t n = 0;
    ASSERT_EQ(agent_pty_list_decode(PAYLOAD(w), list, 2, &n), 0);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(list[0].id, 7);
    ASSERT_EQ(list[0].pid, 42);
    ASSERT_EQ(list[0].rows, 24);
    ASSERT_EQ(list[0].cols, 80);
    ASSERT(list[0].running);
    ASSERT_EQ(list[0].created, 1700000000);
    ASSERT_STREQ(list[0].argv0, "/bin/bash");
    ASSERT_EQ(list[1].id, 8);
    ASSERT(!list[1].running);
    ASSERT_EQ(list[1].exit_code, -1);
    ASSERT_EQ(list[1].signal, 9);
    ASSERT_EQ(list[1].rows, 0);
    ASSERT_STREQ(list[1].argv0, "");
    /* Room for one: the second is ignored. */
    ASSERT_EQ(agent_pty_list_decode(PAYLOAD(w), list, 1, &n), 0);
    ASSERT_EQ(n, 1);
    /* A malformed entry inside: EPROTO. */
    uint8_t bad[] = {GI_T_PTY_ENTRY, 0, 3, 0, 0, 0, 1, 2, 3};
    ASSERT_EQ(agent_pty_list_decode(bad, sizeof(bad), list, 2, &n), -EPROTO);
    gi_writer_free(&e1);
    gi_writer_free(&e2);
    gi_writer_free(&w);
}

static void expect_refused(const char *text, const char *why)
{
    struct term_control c = {.type = TERM_CONTROL_CLOSE, .rows = 5};
    struct wr_error *err = NULL;
    ASSERT(mcp_term_control_parse(text, strlen(text), &c, &err) < 0);
    ASSERT(strstr(err->msg, why));
    ASSERT_EQ(c.rows, 5); /* untouched */
    wr_error_free(err);
}

static void test_terminal_control(void)
{
    struct term_control c;
    struct wr_error *err = NULL;
    const char *resize = "{\"type\":\"resize\",\"rows\":24,\"cols\":80}";
    ASSERT_EQ(mcp_term_control_parse(resize, strlen(resize), &c, &err), 0);
    ASSERT(c.type == TERM_CONTROL_RESIZE && c.rows == 24 && c.cols == 80);
    const char *ack = "{\"type\":\"ack\",\"bytes\":4096} trailing";
    ASSERT_EQ(mcp_term_control_parse(ack, 27, &c, &err), 0); /* the length, not the NUL */
    ASSERT(c.type == TERM_CONTROL_ACK && c.bytes == 4096);
    ASSERT_EQ(mcp_term_control_parse("{\"type\":\"close\"}", 16, &c, &err), 0);
    ASSERT(c.type == TERM_CONTROL_CLOSE);
    expect_refused("not json", "JSON with a type");
    expect_refused("[\"type\"]", "JSON with a type");
    expect_refused("{\"type\":5}", "JSON with a type");
    expect_refused("{\"type\":\"resize\",\"rows\":0,\"cols\":80}", "rows and cols are 1 to");
    expect_refused("{\"type\":\"resize\",\"rows\":24,\"cols\":1001}", "rows and cols are 1 to");
    expect_refused("{\"type\":\"resize\",\"rows\":24}", "rows and cols are 1 to");
    expect_refused("{\"type\":\"ack\",\"bytes\":-1}", "ack takes the bytes drawn");
    expect_refused("{\"type\":\"ack\",\"bytes\":1e300}", "ack takes the bytes drawn");
    expect_refused("{\"type\":\"ack\"}", "ack takes the bytes drawn");
    expect_refused("{\"type\":\"sudo\"}", "unknown control message 'sudo'");
}

int main(void)
{
    RUN(test_dir_entries);
    RUN(test_pty_entries);
    RUN(test_terminal_control);
    return 0;
}
