/* raft/bigfree.c with libraft's real heap hooks: a free of a big block
 * through raft_free or raft_aligned_free goes to the thread and is freed
 * there, a small one is freed at once, bigfree_stop drains the queue and
 * puts libraft's default heap back. ASan and valgrind check that every
 * block is freed exactly once. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <raft.h>

#include "../lib/runner.h"
#include "raft/bigfree.h"

static void wait_freed(struct bigfree *b, uint64_t n)
{
    uint64_t deferred = 0;
    uint64_t freed = 0;

    for (int i = 0; i < 5000; i++) { /* at most 5 s */
        bigfree_counts(b, &deferred, &freed);
        if (freed >= n) {
            break;
        }
        usleep(1000);
    }
    CHECK_EQ_INT(freed, n);
}

TEST(bigfree_big_blocks_freed_on_its_thread, 30)
{
    struct bigfree b;
    uint64_t deferred = 0;
    uint64_t freed = 0;
    char *big;
    char *small;
    void *aligned;

    CHECK_EQ_INT(bigfree_start(&b), 0);
    big = raft_malloc(BIGFREE_MIN + 12345);
    CHECK(big != NULL);
    memset(big, 7, BIGFREE_MIN + 12345); /* its pages are really there */
    small = raft_malloc(4096);
    CHECK(small != NULL);
    raft_free(small);
    raft_free(NULL);
    bigfree_counts(&b, &deferred, &freed);
    CHECK_EQ_INT(deferred, 0);
    raft_free(big);
    wait_freed(&b, 1);
    aligned = raft_aligned_alloc(4096, 2 * BIGFREE_MIN);
    CHECK(aligned != NULL);
    memset(aligned, 1, 4096);
    raft_aligned_free(4096, aligned);
    wait_freed(&b, 2);
    bigfree_counts(&b, &deferred, &freed);
    CHECK_EQ_INT(deferred, 2);
    bigfree_stop(&b);

    /* libraft's default heap again: nothing reaches the stopped thread */
    big = raft_malloc(BIGFREE_MIN);
    CHECK(big != NULL);
    raft_free(big);
    bigfree_counts(&b, &deferred, &freed);
    CHECK_EQ_INT(deferred, 2);
    CHECK_EQ_INT(freed, 2);
    bigfree_stop(&b); /* idempotent */
}

/* Blocks still queued when it stops are freed before bigfree_stop
 * returns. */
TEST(bigfree_stop_drains_the_queue, 30)
{
    struct bigfree b;
    uint64_t deferred = 0;
    uint64_t freed = 0;

    CHECK_EQ_INT(bigfree_start(&b), 0);
    for (int i = 0; i < 8; i++) {
        void *p = raft_malloc(BIGFREE_MIN);
        CHECK(p != NULL);
        raft_free(p);
    }
    bigfree_stop(&b);
    bigfree_counts(&b, &deferred, &freed);
    CHECK_EQ_INT(deferred, 8);
    CHECK_EQ_INT(freed, 8);
}

struct freer
{
    void *blocks[8];
};

static void *free_all(void *arg)
{
    struct freer *f = arg;

    for (int i = 0; i < 8; i++) {
        raft_free(f->blocks[i]);
    }
    return NULL;
}

/* Two threads free big blocks at once (libraft frees on the loop, raft_uv
 * on its pool): every block queued once and freed once. (Whether glibc
 * maps a block of its own is not visible here, under ASan or valgrind:
 * bigfree_start's fixed threshold is argued in bigfree.c.) */
TEST(bigfree_frees_from_two_threads, 30)
{
    struct bigfree b;
    struct freer f[2];
    pthread_t t[2];
    uint64_t deferred = 0;
    uint64_t freed = 0;
    void *six;
    void *five;

    CHECK_EQ_INT(bigfree_start(&b), 0);
    six = raft_malloc(6 << 20);
    CHECK(six != NULL);
    raft_free(six);
    five = raft_malloc(5 << 20);
    CHECK(five != NULL);
    raft_free(five);
    wait_freed(&b, 2);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 8; i++) {
            f[k].blocks[i] = raft_malloc(BIGFREE_MIN + (size_t)i * 4096);
            CHECK(f[k].blocks[i] != NULL);
        }
    }
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_INT(pthread_create(&t[k], NULL, free_all, &f[k]), 0);
    }
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_INT(pthread_join(t[k], NULL), 0);
    }
    bigfree_stop(&b);
    bigfree_counts(&b, &deferred, &freed);
    CHECK_EQ_INT(deferred, 18);
    CHECK_EQ_INT(freed, 18);
}
