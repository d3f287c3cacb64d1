/* The `warren` subcommands that do not run a server: `doctor` (what this host offers and
 * which backend --backend auto picks) and `mcp-config` (a client configuration to paste).
 * Each takes main's argc/argv (argv[1] is the subcommand) and returns the exit status. */
#pragma once

/* The state directory: flag, else $WARREN_STATE_DIR, else /var/lib/warren as root, else
 * $XDG_STATE_HOME/warren or ~/.local/state/warren. Caller frees. */
char *mcp_cli_state_dir(const char *flag);

/* warren doctor [--state-dir D] [--listen ADDR] [--json]: 0 when a backend can run, 1
 * when none can, 2 for bad arguments. */
int mcp_cli_doctor(int argc, char **argv);

/* warren mcp-config claude|cursor|vscode|json [--http URL] [--state-dir D]: 0, 1 when
 * the configuration cannot be made (no token for --http), 2 for bad arguments. */
int mcp_cli_client_config(int argc, char **argv);
