/* Private to the client library: the flip_client struct and the retry
 * loop that every operation file (ops.c, later sub.c) goes through.
 * Applications see only client/flip.h. */
#ifndef FLIP_CLIENT_CLIENT_H
#define FLIP_CLIENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "client/flip.h"
#include "client/wire.h"
#include "flip.pb-c.h"

#define CLIENT_MAX_GIVEN      16 /* endpoints from flip_client_new */
#define CLIENT_MAX_LEARNED    16 /* leader addresses learned from redirects */
#define CLIENT_MAX_EPS        (CLIENT_MAX_GIVEN + CLIENT_MAX_LEARNED)
#define CLIENT_NONE           ((size_t)-1)
#define CLIENT_TIMEOUT_MS     5000
/* Bound on connect + Hello, so one dead node cannot eat the deadline. */
#define CLIENT_CONNECT_MS     1000
/* Pauses between rounds that found no leader: 10 ms doubling to 50 (a
 * round costs a node one small answer). A leader whose process died is
 * replaced in about 100 ms (raft/node.c finds its port refusing), so a
 * cap of 200 ms made the failover a caller sees twice the cluster's; at
 * 50 a client hears of the new leader within 50 ms of it
 * (docs/protocol.md section 18). */
#define CLIENT_BACKOFF_MIN_MS 10
#define CLIENT_BACKOFF_MAX_MS 50
/* The server also cuts a page short to fit its frame limit. */
#define CLIENT_LIST_PAGE      1000
/* flip_list stops with FLIP_TOOBIG past this many flags: a server that
 * keeps saying "more" must not grow the caller's memory without end (the
 * store's size budget keeps real clusters far below it). */
#define CLIENT_LIST_MAX       1000000

enum client_op
{
    CLIENT_STALE_READ, /* any node */
    CLIENT_READ,       /* leader; safe to retry */
    CLIENT_WRITE,      /* leader; never resent once written */
    /* leader; carries a request id, so resent (same id) after any
     * ambiguous outcome until the deadline: the cluster applies it once */
    CLIENT_WRITE_ONCE
};

/* The first attempt of a CLIENT_WRITE_ONCE waits at most this long for
 * its answer before the write is resent elsewhere (a paused leader would
 * otherwise hold the whole deadline); each later attempt waits twice as
 * long as the one before, so a merely slow cluster is not sent the same
 * write again and again. */
#define CLIENT_ATTEMPT_MS 1500

struct flip_client
{
    struct wire eps[CLIENT_MAX_EPS]; /* [0, n_given) given, then learned */
    size_t n_eps;
    size_t n_given;
    size_t next_evict; /* learned slot to recycle when all are used */
    size_t last_good;  /* where a call without a known leader starts */
    size_t leader;     /* index of the known leader, or CLIENT_NONE */
    unsigned timeout_ms;
    char *name; /* Hello.client_name; owned, may be NULL */
    uint64_t rng;
    uint64_t conflict_revision;
    enum flip_type conflict_type; /* after TYPE_MISMATCH; AUTO: unknown */
    /* Request ids (exactly-once writes): random per handle, and the last
     * sequence number used. */
    uint8_t client_id[16];
    uint64_t write_seq;
    /* the process the id belongs to: a fork()ed child must not share it
     * (its writes would be answered with the parent's outcomes) */
    long id_pid;
    char errmsg[512];
};

/* Fills `rid` with the next request id of `c` (borrowing c->client_id). */
void client_next_request_id(struct flip_client *c, Flip__RequestId *rid);

/* Formats c->errmsg. */
void client_set_err(struct flip_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sends `req` where `op` says, following redirects and retrying as
 * client.c's opening comment says, within one c->timeout_ms deadline.
 * Resets c->errmsg and c->conflict_revision first.
 *
 * @param[out] out on FLIP_OK, a response with no error status, owned by
 *                 the caller (codec_response_free); NULL otherwise.
 * @return FLIP_OK or a final FLIP_* code, with c->errmsg saying why. */
int client_call(struct flip_client *c,
                enum client_op op,
                Flip__Request *req,
                Flip__Response **out);

/* FLIP_OK when an OK response carries the `want` result, else FLIP_PROTO
 * with c->errmsg set. */
int client_expect(struct flip_client *c,
                  const Flip__Response *resp,
                  Flip__Response__ResultCase want);

/* Index of the endpoint spelled exactly `addr`, or CLIENT_NONE. */
size_t client_find_endpoint(const struct flip_client *c, const char *addr);

/* The text of a wire error: its message, else the FLIP_* code's text. */
const char *client_err_text(const Flip__Error *e);

#endif
