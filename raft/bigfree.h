/* Frees of big libraft buffers off the thread that frees them.
 *
 * libraft 0.22.1 frees a whole snapshot with one raft_free on the loop
 * thread: the leader after sending it to a follower (legacy.c, the send
 * callback), a follower after restoring one, flipd's FSM after writing
 * its own. glibc serves such a buffer with a mapping of its own (bigfree
 * fixes glibc's threshold for that at BIGFREE_MIN), so the free is a
 * munmap of hundreds of MB: 30-50 ms holding the process's mmap lock
 * (the loop thread stood still, or waited in brk behind it, for as long;
 * docs/known-issues.md #11). raft_heap_set lets the process choose
 * libraft's allocator: bigfree's passes everything to glibc, except a free
 * of a block of BIGFREE_MIN bytes or more, which goes to a thread of its
 * own. That thread drops the pages 4 MB at a time (madvise: the mmap lock
 * for a slice at a time) and then frees what is by then an empty range.
 *
 * Happy path: bigfree_start installs the heap; libraft, raft_uv and the
 * FSM allocate and free as usual; bigfree_stop, once the loop has
 * stopped, puts libraft's default heap back and waits for the queue.
 * Failure modes: the thread cannot start: the heap is not installed,
 * frees stay synchronous (as without this module). A free that arrives
 * while it stops is done at once. The queue needs no
 * memory: a block waits in a list threaded through its own first bytes.
 *
 * libraft's heap is one per process, so there is one bigfree per process,
 * owned by main (a local of main, alive until bigfree_stop returns). */
#ifndef FLIP_RAFT_BIGFREE_H
#define FLIP_RAFT_BIGFREE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#define BIGFREE_MIN ((size_t)4 << 20)

struct bigfree
{
    struct raft_heap heap; /* handed to raft_heap_set */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void *head; /* blocks waiting: the first word of each is the next */
    int stop;
    int running;
    pthread_t thread;
    uint64_t n_deferred; /* under mu */
    uint64_t n_freed;    /* under mu */
};

/* Starts the thread and installs the heap. 0, or an errno value (nothing
 * installed). */
int bigfree_start(struct bigfree *b);
/* Puts libraft's default heap back, frees what is queued, joins the
 * thread. Call with no other thread using libraft. No-op if not running. */
void bigfree_stop(struct bigfree *b);
/* Blocks handed to the thread so far, and freed by it. */
void bigfree_counts(struct bigfree *b, uint64_t *deferred, uint64_t *freed);

#endif
