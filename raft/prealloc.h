/* Disk blocks allocated ahead of the store's data file, so that apply's
 * commit, on the loop, does not allocate them (issue 8, review M3).
 *
 * Why. LMDB reuses free pages in place, but while a reader pins old pages
 * (a local snapshot streaming the store for seconds, a subscriber's
 * snapshot) every commit appends new pages past the end of its file. With
 * ext4's delayed allocation such a write reserves the blocks under the
 * inode's i_data_sem, which writeback holds while it allocates the blocks
 * of earlier appends (the periodic store sync, the kernel's flusher): the
 * loop waited 8-14 ms inside the commit's pwrite (ext4_da_get_block_prep,
 * bench/snapshot.sh PERF=). For blocks allocated beforehand (fallocate
 * with FALLOC_FL_KEEP_SIZE: the size and the bytes LMDB sees do not
 * change) the write finds the mapping in the inode's extent cache and
 * takes no such lock, as long as that cache keeps the entry (the kernel
 * may reclaim it under memory pressure; then the write takes the lock
 * for reading, as for any overwrite).
 *
 * Happy path: after each commit the FSM passes the file's end in use and
 * the map size; once the end comes within half of the margin of what is
 * allocated, one job on libuv's pool allocates up to end + margin (never
 * past the map size), on its own descriptor of the file. margin = end / 8,
 * between PREALLOC_MIN_AHEAD and PREALLOC_MAX_AHEAD: about a second of
 * appends at the fastest rate measured. The disk held beyond the end is
 * at most max(end / 8, 4 MiB), 64 MiB at most, and only once the file
 * grows: LMDB's file never shrinks, so it is held for good.
 *
 * Only on ext4, the filesystem the wait was measured on: elsewhere (XFS,
 * btrfs' copy-on-write, tmpfs, where it would pin memory) the module does
 * nothing.
 *
 * Failure modes: less than PREALLOC_KEEP_FREE would be left free on the
 * filesystem, or fallocate says ENOSPC: nothing (more) is allocated, and
 * the next try waits until the file has grown by a margin (the raft log's
 * own low-disk checks, known-issues #13, keep their room). Any other
 * refusal: logged once, no more attempts. Either way commits then allocate
 * as they did before; nothing else changes. */
#ifndef FLIP_RAFT_PREALLOC_H
#define FLIP_RAFT_PREALLOC_H

#include <stdint.h>

#include <uv.h>

#define PREALLOC_MIN_AHEAD ((uint64_t)4 << 20)
#define PREALLOC_MAX_AHEAD ((uint64_t)64 << 20)
#define PREALLOC_KEEP_FREE ((uint64_t)1 << 30)

struct prealloc; /* heap: a job in flight outlives prealloc_close */

/* Takes `fd` (a descriptor of the data file, closed by prealloc in every
 * case); a job leaves at least `keep_free` bytes free on the filesystem
 * (PREALLOC_KEEP_FREE; tests pass others). FLIP_OK, or FLIP_NOMEM (fd
 * closed). On a filesystem other than ext4 the module is inert. */
int prealloc_open(struct prealloc **out,
                  uv_loop_t *loop,
                  int fd,
                  uint64_t keep_free);
/* The file is in use up to `end` bytes and never grows past `limit`:
 * starts a job when the allocated margin runs low and none is running.
 * Loop thread. */
void prealloc_note(struct prealloc *p, uint64_t end, uint64_t limit);
/* How far blocks are known allocated; jobs done (short of space not
 * counted); one is running. */
uint64_t prealloc_reserved(const struct prealloc *p);
uint64_t prealloc_jobs(const struct prealloc *p);
int prealloc_busy(const struct prealloc *p);
/* Frees it now, or when its job ends (it then only closes the fd). NULL
 * is ignored. */
void prealloc_close(struct prealloc *p);

#endif
