/* The single-threaded epoll loop of guest-init. Objects own their gi_watch; a watch
 * whose fd is -1 is dead, and objects are freed only between batches of events
 * (gi_defer_free), so an event fetched for an object closed earlier in the same batch
 * is dropped instead of touching freed memory. */
#include <string.h>
#include <sys/epoll.h>

#include "guest-init.h"

#define MAX_EVENTS 64

static int epoll_fd = -1;
static bool stopping;
static void **deferred;
static size_t n_deferred, cap_deferred;

int gi_loop_init(struct wr_error **err)
{
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        return wr_error_set_errno(err, errno, "epoll_create1");
    return 0;
}

/* A watch with no events is kept out of the epoll set altogether: epoll reports
 * EPOLLHUP and EPOLLERR even for an empty event mask, which would spin the loop on a
 * paused pipe whose writer has gone. */
static int ctl(int op, struct gi_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    return epoll_ctl(epoll_fd, op, w->fd, op == EPOLL_CTL_DEL ? NULL : &ev);
}

int gi_watch_add(struct gi_watch *w, int fd, uint32_t events, gi_watch_cb cb)
{
    w->fd = fd;
    w->events = events;
    w->cb = cb;
    if (events && ctl(EPOLL_CTL_ADD, w, events) < 0) {
        w->fd = -1;
        return -errno;
    }
    return 0;
}

void gi_watch_set(struct gi_watch *w, uint32_t events)
{
    if (w->fd < 0 || w->events == events)
        return;
    int op = !w->events ? EPOLL_CTL_ADD : !events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (ctl(op, w, events) < 0)
        log_error("epoll_ctl(%d, fd %d): %s", op, w->fd, strerror(errno));
    w->events = events;
}

void gi_watch_close(struct gi_watch *w)
{
    if (w->fd < 0)
        return;
    /* Closing the fd alone would leave it in the epoll set while a forked child still
     * holds a copy of it. */
    if (w->events)
        ctl(EPOLL_CTL_DEL, w, 0);
    close(w->fd);
    w->fd = -1;
    w->events = 0;
}

void gi_defer_free(void *p)
{
    if (n_deferred == cap_deferred) {
        cap_deferred = cap_deferred ? cap_deferred * 2 : 16;
        deferred = wr_realloc(deferred, cap_deferred * sizeof(*deferred));
    }
    deferred[n_deferred++] = p;
}

static void free_deferred(void)
{
    for (size_t i = 0; i < n_deferred; i++)
        free(deferred[i]);
    n_deferred = 0;
}

static int wait_timeout(uint64_t now, uint64_t deadline)
{
    if (deadline == 0)
        return -1;
    if (deadline <= now)
        return 0;
    uint64_t ms = deadline - now;
    return ms > 60000 ? 60000 : (int)ms;
}

static void (*soon_fn)(void);

void gi_loop_soon(void (*fn)(void))
{
    soon_fn = fn;
}

void gi_loop_run(void)
{
    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        void (*soon)(void) = TAKE_PTR(soon_fn);
        if (soon)
            soon();
        uint64_t now = wr_now_ms();
        uint64_t deadline = gi_timers_run(now);
        if (soon_fn)
            deadline = now; /* more to do: poll without waiting */
        free_deferred();
        gi_conn_flush_all();
        int n = epoll_wait(epoll_fd, events, MAX_EVENTS, wait_timeout(wr_now_ms(), deadline));
        if (n < 0 && errno != EINTR) {
            log_error("epoll_wait: %s", strerror(errno));
            continue;
        }
        for (int i = 0; i < n; i++) {
            struct gi_watch *w = events[i].data.ptr;
            if (w->fd >= 0)
                w->cb(w, events[i].events);
        }
        free_deferred();
    }
}

void gi_loop_stop(void)
{
    stopping = true;
}
