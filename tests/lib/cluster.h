/* An in-process raft_fixture cluster whose servers run the real FSM over
 * real LMDB stores in temporary directories. Deterministic simulated time. */
#ifndef FLIP_TESTS_CLUSTER_H
#define FLIP_TESTS_CLUSTER_H

#include <raft.h>
#include <raft/fixture.h>

#include "raft/fsm.h"

#define CLUSTER_MAX 5

struct cluster
{
    struct raft_fixture f;
    struct fsm fsms[CLUSTER_MAX];
    struct store *stores[CLUSTER_MAX];
    char dirs[CLUSTER_MAX][256];
    unsigned n;
    unsigned n_apply_done;
    int last_status;
};

/* Creates n servers, bootstraps them and starts them. */
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
/* Steps until every live server applied `index` (bounded); 1 on success. */
int cluster_wait_applied(struct cluster *c, uint64_t index, unsigned max_ms);
int cluster_leader(struct cluster *c); /* index, or -1 */

#endif
