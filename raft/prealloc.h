/* Disk blocks allocated ahead of the store's data file, so that apply's
 * commit, on the loop, never allocates them (issue 8, review M3).
 *
 * Why. LMDB reuses free pages in place, but while a reader pins old pages
 * (a local snapshot streaming the store for seconds, a subscriber's
 * snapshot) every commit appends new pages past the end of its file. With
 * ext4's delayed allocation such a write must reserve the blocks under the
 * inode's i_data_sem, which writeback holds while it allocates the blocks
 * of earlier appends (the periodic store sync, the kernel's flusher): the
 * loop waited 8-14 ms inside the commit's pwrite (ext4_da_get_block_prep,
 * bench/snapshot.sh PERF=). Blocks allocated beforehand (fallocate with
 * FALLOC_FL_KEEP_SIZE: the size and the bytes LMDB sees do not change) are
 * found in the extent cache and the write takes no such lock.
 *
 * Happy path: after each commit the FSM passes the file's end in use;
 * once it comes within half of the margin of what is allocated, one job
 * on libuv's pool allocates up to end + margin, on its own descriptor of
 * the file. margin = end / 8, between 4 and 64 MiB: about a second of
 * appends at the fastest rate measured, at most 1/8 more disk (a file
 * that does not grow gets nothing more).
 *
 * Failure modes: fallocate refused (no space, a filesystem without it):
 * logged once, no more attempts; commits then allocate as they did
 * before, nothing else changes. No pool: nothing is allocated ahead. */
#ifndef FLIP_RAFT_PREALLOC_H
#define FLIP_RAFT_PREALLOC_H

#include <stdint.h>

#include <uv.h>

#define PREALLOC_MIN_AHEAD ((uint64_t)4 << 20)
#define PREALLOC_MAX_AHEAD ((uint64_t)64 << 20)

struct prealloc; /* heap: a job in flight outlives prealloc_close */

/* Takes `fd` (a descriptor of the data file, closed by prealloc in every
 * case). FLIP_OK, or FLIP_NOMEM (fd closed). */
int prealloc_open(struct prealloc **out, uv_loop_t *loop, int fd);
/* The file is in use up to `end` bytes: starts a job when the allocated
 * margin runs low and none is running. Loop thread. */
void prealloc_note(struct prealloc *p, uint64_t end);
/* How far blocks are known allocated, and how many jobs ran. */
uint64_t prealloc_reserved(const struct prealloc *p);
uint64_t prealloc_jobs(const struct prealloc *p);
/* Frees it now, or when its job ends (it then only closes the fd). NULL
 * is ignored. */
void prealloc_close(struct prealloc *p);

#endif
