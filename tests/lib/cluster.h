/* An in-process raft_fixture cluster whose servers run the real FSM over
 * real LMDB stores in temporary directories. Deterministic simulated time. */
#ifndef FLIP_TESTS_CLUSTER_H
#define FLIP_TESTS_CLUSTER_H

#include <raft.h>
#include <raft/fixture.h>

#include "raft/fsm.h"

#define CLUSTER_MAX          5
/* Outcomes each server's observer keeps: the last CLUSTER_SEEN entries, of
 * at most CLUSTER_SEEN_CHANGES changes each. */
#define CLUSTER_SEEN         128
#define CLUSTER_SEEN_CHANGES 16

/* One change of an entry (cluster_write / cluster_encode). */
struct cluster_change
{
    const char *key;
    const char *value;    /* a string value; NULL: a delete */
    const char *reason;   /* NULL: none */
    int cas;              /* carries expected_revision */
    uint64_t expected;    /* with cas: 0 = "must not exist" */
    uint64_t request_seq; /* 0: no request id; else (client 0x5a.., seq) */
    const Flip__Value *v; /* instead of `value`: a value of any kind */
};

/* An entry: its changes and the leader-stamped fields. */
struct cluster_entry
{
    const struct cluster_change *changes;
    size_t n;
    int64_t time_ms;         /* 0: 1700000000000; -1: no time_ms */
    uint64_t changelog_keep; /* 0: 50 */
    const char *cluster_id;  /* NULL: none */
    uint64_t joined_member;  /* 0: none */
};

/* What one server's observer saw applied. */
struct cluster_seen
{
    uint64_t index[CLUSTER_SEEN];
    size_t n_changes[CLUSTER_SEEN];
    struct fsm_outcome out[CLUSTER_SEEN][CLUSTER_SEEN_CHANGES];
    size_t next; /* ring position */
};

struct cluster
{
    struct raft_fixture f;
    struct fsm fsms[CLUSTER_MAX];
    struct store *stores[CLUSTER_MAX];
    char dirs[CLUSTER_MAX][256];
    unsigned n;
    unsigned n_apply_done;
    int last_status;
    struct cluster_seen seen[CLUSTER_MAX]; /* per server (observer) */
};

/* Creates n servers, bootstraps them and starts them. Each server's FSM
 * observer records its outcomes (cluster_outcome); a test may replace it. */
void cluster_start(struct cluster *c, unsigned n);
void cluster_stop(struct cluster *c);
/* Elects server i and steps until it leads. */
void cluster_elect(struct cluster *c, unsigned i);
/* Proposes set key=value (string) on the current leader (with optional
 * CAS); returns the raft index it got, 0 if there is no leader. */
uint64_t cluster_set(struct cluster *c,
                     const char *key,
                     const char *value,
                     int cas,
                     uint64_t expected);
/* Proposes `cmd` as one entry on the current leader; returns its raft
 * index, 0 if there is no leader. */
uint64_t cluster_apply(struct cluster *c, const Flipcmd__Command *cmd);
/* Encodes the entry cluster_set proposes into `out` (raft_malloc'd). */
void cluster_command(const char *key,
                     const char *value,
                     int cas,
                     uint64_t expected,
                     struct raft_buffer *out);
/* Proposes entry `e` on the current leader; its raft index, 0 if there is
 * no leader. */
uint64_t cluster_write(struct cluster *c, const struct cluster_entry *e);
/* Proposes `len` raw bytes as one entry (e.g. bytes that do not decode);
 * its raft index, 0 if there is no leader. */
uint64_t cluster_propose_raw(struct cluster *c, const void *bytes, size_t len);
/* Encodes entry `e` into `out` (raft_malloc'd), as cluster_write sends it. */
void cluster_encode(const struct cluster_entry *e, struct raft_buffer *out);
/* The outcome server `server` applied for change `pos` of the entry at raft
 * index `index` (fails the test when it has not seen it). */
struct fsm_outcome cluster_outcome(struct cluster *c,
                                   unsigned server,
                                   uint64_t index,
                                   size_t pos);
/* Any revision, for cluster_check_outcome. */
#define CLUSTER_ANY_REVISION UINT64_MAX
/* Fails the test unless every server answered change `pos` of the entry at
 * `index` with `st` and `revision` (or any, CLUSTER_ANY_REVISION). */
void cluster_check_outcome(struct cluster *c,
                           uint64_t index,
                           size_t pos,
                           enum fsm_status st,
                           uint64_t revision);
/* Steps until every live server applied `index` (bounded); 1 on success. */
int cluster_wait_applied(struct cluster *c, uint64_t index, unsigned max_ms);
int cluster_leader(struct cluster *c); /* index, or -1 */

#endif
