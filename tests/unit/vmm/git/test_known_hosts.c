/* known_hosts matching for sandbox_git_push (vmm/git/push.c): plain names, [host]:port,
 * comma lists, wildcards and negations, hashed entries (made by ssh-keygen -H), markers. */
#include "test.h"
#include "vmm/git/push.h"

/* Public keys made with ssh-keygen; K1 and K2 are ed25519, K3 is ecdsa-sha2-nistp256. */
#define K1 "AAAAC3NzaC1lZDI1NTE5AAAAIG8hQQznPKU7N7zJD4I46/PvoyXsL9rYE/8jJoxuVMhH"
#define K2 "AAAAC3NzaC1lZDI1NTE5AAAAIDeG0tYFSCAjx+m9gBi/2dHarv49CZXNaHOBML0leP5C"
#define K3                                                                                         \
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA/WYGl8NL4sxQrIvOsLe5HZr6Fm/ftmBIpu"     \
    "fQTXQ6DqqWwnQxs39uADQR7dKjLUNtWSau6ytYAT1ySUJ4EGaVk="
/* ssh-keygen -H of "example.com" and "[git.example.org]:2222", both holding K1. */
#define HASHED_EXAMPLE_COM "|1|qpWi8UGyymW9mJkyC9/oKj+8QMA=|1N6OAfRR76J0qAQZu7yHi6l2IEE="
#define HASHED_GIT_2222 "|1|aiQwbUD1l5NNdal01wCIFvXR6y8=|W2sLfsB5g+W+YSRMEi+uivJJgyA="

static unsigned char k1[128], k2[128], k3[256];
static size_t k1_len, k2_len, k3_len;

static size_t decode(const char *b64, unsigned char *out)
{
    ssize_t n = wr_base64_decode(b64, strlen(b64), out);
    ASSERT(n > 0);
    return (size_t)n;
}

static enum gitpush_host_key check(const char *text, const char *host, int port,
                                   const unsigned char *key, size_t len)
{
    return gitpush_known_hosts_check(text, host, port, key, len, NULL);
}

static void test_plain_entries(void)
{
    const char *text = "# comment\n\nexample.com ssh-ed25519 " K1 " me@host\n"
                       "other.org,Alias.Example ssh-ed25519 " K2 "\n";
    ASSERT_EQ(check(text, "example.com", 22, k1, k1_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "EXAMPLE.com", 22, k1, k1_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "alias.example", 22, k2, k2_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "other.org", 22, k2, k2_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "example.com", 22, k2, k2_len), GITPUSH_HOST_KEY_MISMATCH);
    ASSERT_EQ(check(text, "nowhere.net", 22, k1, k1_len), GITPUSH_HOST_KEY_UNKNOWN);
    /* A plain name covers port 22 only. */
    ASSERT_EQ(check(text, "example.com", 2222, k1, k1_len), GITPUSH_HOST_KEY_UNKNOWN);
    /* A key of another type for the host is not a mismatch: the host may have several. */
    ASSERT_EQ(check(text, "example.com", 22, k3, k3_len), GITPUSH_HOST_KEY_UNKNOWN);
}

static void test_ports(void)
{
    const char *text = "[127.0.0.1]:2222 ssh-ed25519 " K1 "\r\n"
                       "[::1]:2200,[git.example.org]:443 ssh-ed25519 " K2 "\n";
    ASSERT_EQ(check(text, "127.0.0.1", 2222, k1, k1_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "127.0.0.1", 22, k1, k1_len), GITPUSH_HOST_KEY_UNKNOWN);
    ASSERT_EQ(check(text, "127.0.0.1", 2223, k1, k1_len), GITPUSH_HOST_KEY_UNKNOWN);
    ASSERT_EQ(check(text, "::1", 2200, k2, k2_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "git.example.org", 443, k2, k2_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "127.0.0.1", 2222, k2, k2_len), GITPUSH_HOST_KEY_MISMATCH);
}

static void test_hashed_entries(void)
{
    const char *text =
        HASHED_EXAMPLE_COM " ssh-ed25519 " K1 "\n" HASHED_GIT_2222 " ssh-ed25519 " K1 "\n";
    size_t line = 0;
    ASSERT_EQ(gitpush_known_hosts_check(text, "example.com", 22, k1, k1_len, &line),
              GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(line, 1);
    ASSERT_EQ(gitpush_known_hosts_check(text, "git.example.org", 2222, k1, k1_len, &line),
              GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(line, 2);
    ASSERT_EQ(check(text, "Git.Example.Org", 2222, k1, k1_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "git.example.org", 22, k1, k1_len), GITPUSH_HOST_KEY_UNKNOWN);
    ASSERT_EQ(check(text, "example.org", 22, k1, k1_len), GITPUSH_HOST_KEY_UNKNOWN);
    ASSERT_EQ(check(text, "example.com", 22, k2, k2_len), GITPUSH_HOST_KEY_MISMATCH);
    /* Damaged hashes never match (and never crash). */
    ASSERT_EQ(check("|1|qpWi8UGy|1N6OAfRR76J0 ssh-ed25519 " K1 "\n|1|| ssh-ed25519 " K1
                    "\n|1|x ssh-ed25519 " K1 "\n",
                    "example.com", 22, k1, k1_len),
              GITPUSH_HOST_KEY_UNKNOWN);
}

static void test_patterns_and_markers(void)
{
    const char *text = "*.example.com,!bad.example.com ssh-ed25519 " K1 "\n"
                       "h?st ssh-ed25519 " K2 "\n";
    ASSERT_EQ(check(text, "git.example.com", 22, k1, k1_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "bad.example.com", 22, k1, k1_len), GITPUSH_HOST_KEY_UNKNOWN);
    ASSERT_EQ(check(text, "host", 22, k2, k2_len), GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(check(text, "hoost", 22, k2, k2_len), GITPUSH_HOST_KEY_UNKNOWN);
    /* A revocation wins over a match anywhere in the file. */
    const char *revoked = "example.com ssh-ed25519 " K1 "\n@revoked * ssh-ed25519 " K1 "\n";
    ASSERT_EQ(check(revoked, "example.com", 22, k1, k1_len), GITPUSH_HOST_KEY_REVOKED);
    /* A match wins over a stale entry with the old key. */
    const char *both = "example.com ssh-ed25519 " K2 "\nexample.com ssh-ed25519 " K1 "\n";
    ASSERT_EQ(check(both, "example.com", 22, k1, k1_len), GITPUSH_HOST_KEY_MATCH);
    /* Certificate authorities are not host keys. */
    const char *ca = "@cert-authority example.com ssh-ed25519 " K1 "\n";
    ASSERT_EQ(check(ca, "example.com", 22, k1, k1_len), GITPUSH_HOST_KEY_UNKNOWN);
}

static void test_malformed_lines(void)
{
    const char *text = "example.com\nexample.com ssh-ed25519\nexample.com ssh-ed25519 !!!\n"
                       "@revoked\n   \n\texample.com\tssh-ed25519\t" K1;
    size_t line = 0;
    ASSERT_EQ(gitpush_known_hosts_check(text, "example.com", 22, k1, k1_len, &line),
              GITPUSH_HOST_KEY_MATCH);
    ASSERT_EQ(line, 6);
    ASSERT_EQ(check("", "example.com", 22, k1, k1_len), GITPUSH_HOST_KEY_UNKNOWN);
    ASSERT_EQ(check(text, "example.com", 22, k1, 3), GITPUSH_HOST_KEY_UNKNOWN);
}

int main(void)
{
    k1_len = decode(K1, k1);
    k2_len = decode(K2, k2);
    k3_len = decode(K3, k3);
    RUN(test_plain_entries);
    RUN(test_ports);
    RUN(test_hashed_entries);
    RUN(test_patterns_and_markers);
    RUN(test_malformed_lines);
    return 0;
}
