#include "../tool.h"

extern const struct mcp_tool mcp_tool_sandbox_create, mcp_tool_sandbox_exec,
    mcp_tool_sandbox_read_file, mcp_tool_sandbox_write_file, mcp_tool_sandbox_list,
    mcp_tool_sandbox_destroy;

const struct mcp_tool *const mcp_tools[] = {
    &mcp_tool_sandbox_create,    &mcp_tool_sandbox_exec, &mcp_tool_sandbox_read_file,
    &mcp_tool_sandbox_write_file, &mcp_tool_sandbox_list, &mcp_tool_sandbox_destroy,
    NULL,
};
