/* A flipd server without raft, for unit tests of server/conn.c and
 * server/pubsub.c over real sockets: the real struct server, listener,
 * connections, dispatch and pubsub on a private libuv loop, a real LMDB
 * store in a temporary directory, and the real FSM applying entries the
 * test hands it (no raft: the test picks each entry's index). Clients are
 * plain blocking sockets on 127.0.0.1.
 *
 * Nothing runs by itself: fs_turn is one loop turn plus what the server's
 * per-turn hook does (pubsub pump, flush of dirty connections), and the
 * pubsub heartbeat timer is stopped, so every test is deterministic.
 * Requests that need raft (Set, Delete, linearizable reads) must not be
 * sent; Hello and Subscribe work. */
#ifndef FLIP_TESTS_FAKESERVER_H
#define FLIP_TESTS_FAKESERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cluster.h"
#include "flip.pb-c.h"
#include "server/conn.h"
#include "server/server.h"

struct fakeserver
{
    uv_loop_t loop;
    struct server s;
    struct store *store;
    char dir[256];
    int port;
};

/* Starts a server whose config is the defaults plus `args` (n of them, e.g.
 * "--max-frame", "131072"); fails the test on error. */
void fs_start(struct fakeserver *f, const char **args, int n);
/* Closes every connection and the server, removes the directory. */
void fs_stop(struct fakeserver *f);
/* One loop turn (non-blocking) plus the per-turn hook. */
void fs_turn(struct fakeserver *f);
/* The per-turn hook alone: pubsub pump, then every dirty connection. */
void fs_flush(struct fakeserver *f);

/* A new client connected and accepted; returns its fd and sets *c to the
 * server's side (NULL allowed). */
int fs_connect(struct fakeserver *f, struct conn **c);
/* Writes a request frame (codec_request_encode) on fd. */
void fs_send(int fd, const Flip__Request *req);
/* The next response on fd, turning the loop while none is there (bounded:
 * 5 s); NULL on EOF. Free with codec_response_free. */
Flip__Response *fs_recv(struct fakeserver *f, int fd);
/* True when the server closed fd (EOF or reset), turning the loop while
 * nothing is there (bounded). Unread responses are skipped. */
int fs_closed(struct fakeserver *f, int fd);
/* True when nothing is readable on fd after `turns` loop turns. */
int fs_quiet(struct fakeserver *f, int fd, int turns);
/* Hello with id `id`: sends it, checks its OK answer, or both. */
void fs_send_hello(int fd, uint64_t id);
void fs_expect_hello(struct fakeserver *f, int fd, uint64_t id);
void fs_hello(struct fakeserver *f, int fd, uint64_t id);

/* Applies entry `e` through the FSM at raft index `index` (observers:
 * pubsub fan-out), as libraft would on commit. */
void fs_apply(struct fakeserver *f,
              uint64_t index,
              const struct cluster_entry *e);
/* Applies `len` raw bytes as the entry at `index` (e.g. bytes that do not
 * decode: the FSM records a no-op). */
void fs_apply_raw(struct fakeserver *f,
                  uint64_t index,
                  const void *bytes,
                  size_t len);
/* One SET of a string value (value NULL: a DELETE) at `index`. */
void fs_apply_one(struct fakeserver *f,
                  uint64_t index,
                  const char *key,
                  const char *value);

/* The event of a response (fails the test if it is not one). */
const Flip__Event *fs_event(const Flip__Response *r);
/* Reads the next response and checks it is an event of `type` at
 * `revision`; returns it (caller frees). */
Flip__Response *fs_expect_event(struct fakeserver *f,
                                int fd,
                                Flip__EventType type,
                                uint64_t revision);

#endif
