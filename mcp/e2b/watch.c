/* filesystem.Filesystem's watchers. */
#include "e2b-internal.h"

void e2b_watch_dir(struct e2b_call *call)
{
    e2b_call_error(call, CONNECT_UNIMPLEMENTED, "not yet");
}
void e2b_create_watcher(struct e2b_call *call)
{
    e2b_call_error(call, CONNECT_UNIMPLEMENTED, "not yet");
}
void e2b_get_watcher_events(struct e2b_call *call)
{
    e2b_call_error(call, CONNECT_UNIMPLEMENTED, "not yet");
}
void e2b_remove_watcher(struct e2b_call *call)
{
    e2b_call_error(call, CONNECT_UNIMPLEMENTED, "not yet");
}
