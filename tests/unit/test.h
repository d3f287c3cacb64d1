/* Small assertion macros for the unit test binaries (libuv's style). A failed ASSERT
 * prints where and exits 1; a test that cannot run here calls SKIP (exit 77). */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT((a) == (b))
#define ASSERT_STREQ(a, b)                                                                         \
    do {                                                                                           \
        const char *_a_ = (a), *_b_ = (b);                                                         \
        if (!_a_ || !_b_ || strcmp(_a_, _b_) != 0) {                                               \
            fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, _a_ ? _a_ : "(null)", \
                    _b_ ? _b_ : "(null)");                                                         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define SKIP(why)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "skipped: %s\n", why);                                                     \
        exit(77);                                                                                  \
    } while (0)
#define RUN(test)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "-- %s\n", #test);                                                         \
        test();                                                                                    \
    } while (0)
