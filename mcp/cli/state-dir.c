/* Where the state directory is, for the server and the subcommands alike (see cli.h). */
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "util/util.h"

char *mcp_cli_state_dir(const char *flag)
{
    if (flag)
        return wr_strdup(flag);
    const char *env = getenv("WARREN_STATE_DIR");
    if (env && *env)
        return wr_strdup(env);
    if (geteuid() == 0)
        return wr_strdup("/var/lib/warren");
    const char *xdg = getenv("XDG_STATE_HOME");
    if (xdg && *xdg)
        return wr_path_join(xdg, "warren");
    const char *home = getenv("HOME");
    return wr_asprintf("%s/.local/state/warren", home ? home : "/tmp");
}
