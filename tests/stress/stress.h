/* Fixture stress: libraft's in-memory raft_fixture driving our real FSM
 * (raft/fsm.c over one LMDB store per server) and our real proposal code
 * (raft/propose.c: batching, limbo, read barriers, commit nudge) through
 * random kills, partitions, slow disks and networks, with an oracle that
 * every server applied the same entry at every index, that no write is
 * acknowledged falsely or applied twice, and that reads are linearizable.
 *
 * One seed = one deterministic run (stress_run_seed); fixture_stress.c runs
 * each seed in a forked child so a crash is pinned to its seed. */
#ifndef FLIP_TESTS_STRESS_H
#define FLIP_TESTS_STRESS_H

#include <stddef.h>
#include <stdint.h>

/* Snapshot gate of the follower-side workaround for docs/known-issues.md
 * item 1 (raft/node.c): PROD mimics node.c on fixture time; OFF leaves only
 * the FSM's own last_stored check. */
enum stress_gate
{
    STRESS_GATE_PROD = 0,
    STRESS_GATE_OFF
};

struct stress_opts
{
    unsigned nodes;    /* 3 or 5; 0 = derived from the seed */
    int gate;          /* enum stress_gate */
    int io_faults;     /* -1 = derived from the seed, 0 = never, 1 = always */
    unsigned chaos_ms; /* simulated chaos phase */
    int shim;          /* raft/ioshim.c between libraft and the fixture's
                          io, as node.c does (default on) */
    unsigned mutate;   /* self-test: server 0 botches its Nth apply */
    int raw;           /* let known libraft bugs run into their crash */
    int trace;         /* keep the fixture's stderr tracer */
    int verbose;       /* one line per seed */
    const char *dir;   /* directory holding s0..s4 for this run's stores */
};

struct stress_stats
{
    unsigned nodes;
    int pre_vote;
    unsigned snap_threshold; /* 0 = libraft default (no snapshots here) */
    int io_faults;
    uint64_t steps;
    uint64_t sim_ms;
    uint64_t last_index;   /* index every server applied at the end */
    unsigned proposed;     /* raft_apply calls accepted */
    unsigned acked;        /* apply callbacks with status 0 */
    unsigned apply_errors; /* raft_apply errors other than NOTLEADER */
    unsigned applied;      /* FSM applies, all servers */
    unsigned snapshots;    /* local snapshots taken */
    unsigned declined;     /* local snapshots declined */
    unsigned restored;     /* snapshots installed */
    unsigned kills;
    unsigned cuts;
    unsigned faults;
    unsigned leaders;  /* distinct (term, leader) pairs seen */
    unsigned fixups;   /* fixture truncations corrected (wrap_truncate) */
    unsigned shimmed;  /* InstallSnapshot terms corrected (ioshim) */
    unsigned leaks;    /* libraft InstallSnapshot leaks freed (wrap_recv) */
    unsigned deferred; /* InstallSnapshots held back (ioshim) */
    unsigned mutated;  /* opts.mutate took effect */
    unsigned restarts; /* proposer processes started (raft/propose.c) */
    unsigned reads;    /* linearizable reads answered OK */
};

/* Runs one seed. Returns 0 when every check passed, 2 when the run hit a
 * documented libraft bug (its signature is detected before it can do
 * damage; the seed stops there), 1 on any other failure; err has the first
 * one. A crash (libraft, FSM abort, sanitizer) ends the process instead. */
int stress_run_seed(uint64_t seed,
                    const struct stress_opts *o,
                    struct stress_stats *st,
                    char *err,
                    size_t errlen);

#endif
