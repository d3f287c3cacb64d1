/* Pushing a branch of the user's repository to one of its remotes (libgit2): over SSH
 * (ssh-agent, $WARREN_SSH_KEY or ~/.ssh/id_{ed25519,ecdsa,rsa} of the user running warren)
 * or to a local path / file:// remote. libgit2 1.5 checks no SSH host key itself, so the
 * server's key is checked here against known_hosts ($WARREN_SSH_KNOWN_HOSTS, else
 * ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts): an unknown or changed key refuses the
 * push. Only the remote's refs change, plus refs/remotes/<remote>/<branch> in the user's
 * repository (as git push does); its config, HEAD, index and working tree are not
 * touched. Blocking: it runs in the `warren __gitpush` helper process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

/* A push that has not finished after this long is aborted at libgit2's next callback. */
#define GITPUSH_TIMEOUT_SECONDS 120

struct gitpush_request {
    const char *repo;         /* the user's repository (host path) */
    const char *remote;       /* remote name, e.g. "origin" */
    const char *branch;       /* branch name without refs/heads/ */
    unsigned timeout_seconds; /* 0: GITPUSH_TIMEOUT_SECONDS */
};

struct gitpush_result {
    char *url; /* the URL pushed to, any password removed; owned (gitpush_result_clear) */
    char commit[41];
};

/* Pushes refs/heads/<branch> to the same ref of the remote. Returns 0 and fills *ret
 * (which the caller clears), or a negative errno-style value with err set to a message
 * that says what to do (unknown remote, no branch, authentication, host key, rejection,
 * unreachable host). */
int gitpush_push(const struct gitpush_request *req, struct gitpush_result *ret,
                 struct wr_error **err);
void gitpush_result_clear(struct gitpush_result *r);

/* ---- known_hosts (exposed for the unit test) ----------------------------------------- */

enum gitpush_host_key {
    GITPUSH_HOST_KEY_UNKNOWN = 0, /* no entry holds this key for this host */
    GITPUSH_HOST_KEY_MATCH,       /* an entry for this host holds this key */
    GITPUSH_HOST_KEY_MISMATCH,    /* the host is listed with a different key of this type */
    GITPUSH_HOST_KEY_REVOKED,     /* the key is marked @revoked */
};

/* Checks a server's key (SSH wire format: the bytes base64 encodes in known_hosts) for
 * host:port against the text of one known_hosts file. Understands plain names, [host]:port,
 * comma lists, * and ? wildcards, !negations, hashed |1|salt|hash entries and the
 * @revoked marker; @cert-authority lines are skipped. When ret_line is not NULL it gets
 * the 1-based line of the deciding entry (0 for UNKNOWN). */
enum gitpush_host_key gitpush_known_hosts_check(const char *text, const char *host, int port,
                                                const void *key, size_t key_len, size_t *ret_line);

/* Entry point of the hidden `warren __gitpush '<request JSON>'` subcommand: the push runs
 * in its own short-lived process (vmm/git/push-op.c), so that a stalled network is ended
 * by killing it and libgit2 1.5's per-push leaks die with it. The request is
 * {"repo","remote","branch","timeout"}; the answer {"url","commit"} on stdout, or the
 * error on stderr and exit status 1. */
int vmm_gitpush_main(int argc, char **argv);
