/* `warren key create|list|revoke`: API keys (vmm/apikeys.h) on a state directory, also
 * while a server runs on it. */
#pragma once

/* argv[1] is "key". state_dir: the resolved state directory unless --state-dir names
 * another. Returns the process's exit status. */
int mcp_key_main(int argc, char **argv, const char *default_state_dir);
