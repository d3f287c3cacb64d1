#include "mcp/tool.h"

extern const struct mcp_tool mcp_tool_sandbox_create, mcp_tool_sandbox_exec,
    mcp_tool_sandbox_read_file, mcp_tool_sandbox_write_file, mcp_tool_sandbox_list,
    mcp_tool_sandbox_destroy, mcp_tool_sandbox_git_commit, mcp_tool_sandbox_pause,
    mcp_tool_sandbox_resume, mcp_tool_sandbox_snapshot, mcp_tool_sandbox_restore,
    mcp_tool_snapshot_list, mcp_tool_snapshot_delete, mcp_tool_sandbox_git_push;

const struct mcp_tool *const mcp_tools[] = {
    &mcp_tool_sandbox_create,     &mcp_tool_sandbox_exec,     &mcp_tool_sandbox_read_file,
    &mcp_tool_sandbox_write_file, &mcp_tool_sandbox_list,     &mcp_tool_sandbox_destroy,
    &mcp_tool_sandbox_pause,      &mcp_tool_sandbox_resume,   &mcp_tool_sandbox_snapshot,
    &mcp_tool_sandbox_restore,    &mcp_tool_snapshot_list,    &mcp_tool_snapshot_delete,
    &mcp_tool_sandbox_git_commit, &mcp_tool_sandbox_git_push, NULL,
};
