/* One raft node: raft_uv storage, raft_uv_tcp transport, the FSM over the
 * LMDB store, and a monitor that turns raft's polled state into events.
 *
 * Startup: node_init opens <data>/fsm (LMDB) and <data>/raft (raft_uv),
 * bootstraps the initial configuration when the raft dir is new, and
 * node_start starts raft. Shutdown: node_close transfers leadership when
 * leader (planned stops fail over in milliseconds, not an election
 * timeout), then closes raft, io and transport, then the store, and calls
 * back. libraft 0.22.1 specifics honoured here: transport.version = 1,
 * capacity threshold set only where raft_uv's counter is sound, pre-vote on. */
#ifndef FLIP_RAFT_NODE_H
#define FLIP_RAFT_NODE_H

#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "addrfield.h"
#include "fsm.h"
#include "ioshim.h"
#include "peertcp.h"
#include "storage/identity.h"

#define NODE_ADDR_MAX    ADDRFIELD_PART_MAX
#define NODE_MAX_MEMBERS 16

struct node_member
{
    uint64_t id;
    char raft_address[NODE_ADDR_MAX];   /* IPv4 literal host:port */
    char client_address[NODE_ADDR_MAX]; /* where clients connect */
};

/* A member's address field in raft's configuration (raft/addrfield.h). */
#define NODE_FIELD_MAX ADDRFIELD_MAX

struct node_config
{
    uint64_t id;
    int join; /* never bootstrap: wait to be added (flipd --join) */
    const char *data_dir;
    const char *bind_address; /* NULL = listen on our raft_address */
    struct node_member members[NODE_MAX_MEMBERS]; /* initial cluster */
    unsigned n_members;
    unsigned election_ms;
    unsigned heartbeat_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    size_t segment_size;      /* 0 = raft_uv default (8 MiB) */
    uint64_t max_store_bytes; /* store budget; sizes the LMDB map */
};

/* A follower is live (its state is current) only while its applied index
 * has reached, within one election timeout, the commit index its leader
 * last told it, and it heard from that leader within an election timeout;
 * and never while it trails that commit index by more than this. */
#define NODE_LIVE_LAG_MAX 256

struct node;

/* Events from the monitor; all fire on the loop thread, never from inside
 * a node_* call. */
struct node_observer
{
    void *data;
    void (*on_role)(void *data, int old_role, int new_role);
    void (*on_leader)(void *data, uint64_t leader_id);
};

struct node
{
    uv_loop_t *loop;
    struct node_config config;
    struct raft raft;
    struct raft_io io;
    struct ioshim shim;   /* between raft and io: libraft workarounds */
    char raft_dir[600];   /* raft_uv's directory, for the shim's room check */
    struct peertcp peers; /* raft_uv_tcp, TCP_NODELAY on its streams */
    unsigned retry_delay_ms; /* given to raft_uv_set_connect_retry_delay */
    struct raft_transfer transfer;
    struct fsm fsm;
    struct store *store;
    struct node_observer observer;
    uv_timer_t monitor; /* polls raft state (no state callback in libraft) */
    int role;           /* last seen RAFT_LEADER/FOLLOWER/CANDIDATE */
    uint64_t leader_id; /* last seen leader, 0 = none */
    uint64_t term;
    uint64_t last_contact;  /* uv_now when a leader was last known */
    uint64_t last_tick;     /* uv_now of the previous monitor tick */
    uint64_t snapshot_hold; /* followers take no local snapshot before */
    int snapshot_hold_off;  /* FLIP_NO_SNAPSHOT_HOLD set: never hold */
    int closing;
    int monitor_started;
    int raft_closing;
    int init_closed; /* a failed node_init's raft_close has completed */
    uv_timer_t transfer_timer; /* bounds a planned-stop transfer */
    int transfer_timer_started;
    /* Planned stop: after the transfer, raft stays up (as a follower) while
     * this says writes are still waiting for their outcome, bounded by an
     * election timeout. */
    int (*outstanding)(void *data);
    void *outstanding_data;
    uint64_t drain_deadline;
    void (*close_cb)(struct node *n);
    char errmsg[512];
    /* Cluster identity (storage/identity.h), cached from the store. */
    char cluster_id[IDENTITY_ID_LEN + 1]; /* "" until committed */
    uint32_t joined_mask;    /* bit i: members[i] recorded as joined */
    uint64_t ident_read_at;  /* applied index of the last cache refresh */
    uint64_t ident_restores; /* fsm.n_restored at that refresh */
    struct node_ident_req *ident_req; /* identity entry in flight, or NULL */
    /* Lag behind the leader: its commit index as it last told us (from
     * AppendEntries; our own on the leader) and when. */
    uint64_t leader_commit;
    uint64_t leader_commit_at; /* uv_now; 0 = never */
    uint64_t catchup_target;   /* a leader_commit to reach, 0 = none */
    uint64_t catchup_since;    /* when that target was set */
    int caught_up;             /* reached a target, contact kept since */
    /* Leader: followers whose log went back below their match index (a
     * restore from an older backup); see note_follower_log in node.c. */
    uint64_t behind_since[NODE_MAX_MEMBERS]; /* uv_now, 0 = not seen */
    uint64_t behind_last[NODE_MAX_MEMBERS];  /* its last index then */
    uint64_t last_unstick;                   /* uv_now of the last handover */
    /* A follower asked for a vote while its leader is silent gives that
     * leader up at once (see give_up_silent_leader in node.c): raft's
     * clock runs this far ahead of the loop's. */
    raft_time (*loop_time)(struct raft_io *io); /* raft_uv's io->time */
    uint64_t time_ahead;      /* ms added to raft's clock so far */
    uint64_t time_ahead_at;   /* uv_now of the last addition, 0 = none */
    uint64_t leader_heard_at; /* uv_now of the last message from leader_id */
    uint64_t n_gave_up;       /* leaders given up on a vote request */
    /* A silent leader's raft port probed (probe_tick in node.c): refused
     * means its process is gone. */
    struct node_probe *probe; /* connect in flight, or NULL */
    /* Members raft's configuration names that config.members lacks, with
     * the client address of their address field (raft/member.c), as of
     * the last monitor tick. */
    struct node_member conf_members[NODE_MAX_MEMBERS];
    unsigned n_conf_members;
    char self_field[NODE_FIELD_MAX]; /* our own address field */
    uint64_t probed_at;              /* uv_now of the last probe */
    uint64_t probe_heard_at;         /* leader_heard_at the silence began at */
    uint64_t probe_after;            /* silence (ms) at which to probe next */
    uint64_t dead_leader; /* leader id whose port refused, 0 = none */
    uint64_t give_up_at;  /* uv_now to give it up at, 0 = none */
    uint64_t n_probes;    /* probes started */
    uint64_t n_refused;   /* probes refused: leader process gone */
    struct raft_transfer unstick_req;
    int unstick_busy;
    uint64_t n_unstuck; /* handovers done for it */
};

/* Opens the store and raft storage and bootstraps if new. On failure every
 * resource taken is released and n->errmsg says why. */
int node_init(struct node *n, uv_loop_t *loop, const struct node_config *cfg);
int node_start(struct node *n);
/* Stops raft and frees everything node_init took; `cb` fires when done. */
void node_close(struct node *n, void (*cb)(struct node *n));

int node_is_leader(const struct node *n);
/* The highest raft index reflected in this node's state: entries that
 * change nothing (barriers, configuration) count too. */
uint64_t node_applied(const struct node *n);
/* RAFT_LEADER / RAFT_FOLLOWER / RAFT_CANDIDATE, or -1 while closing. */
int node_role(const struct node *n);
/* Leader's member entry, or NULL when unknown / not a configured member. */
const struct node_member *node_leader(const struct node *n);
const struct node_member *node_member_by_id(const struct node *n, uint64_t id);
/* Milliseconds since this node last knew a leader (0 while it knows one). */
uint64_t node_leaderless_ms(const struct node *n);
const char *node_role_name(int role);
/* The libraft capacity threshold (KiB) flipd sets for a raft_uv segment size
 * (0 = raft_uv's default): 0 (off) wherever raft_uv's 16-bit counter could
 * wrap or read below the threshold on a healthy node. */
unsigned short node_capacity_threshold(size_t segment_size);

/* The cluster id, "" until the first leader committed one. Not const only
 * because protobuf-c's string fields are not; callers never write it. */
char *node_cluster_id(struct node *n);
/* 1 when the cluster recorded member `id` as holding its data. */
int node_member_joined(const struct node *n, uint64_t id);
/* The leader's commit index as this node knows it (its own on a leader),
 * and how far node_applied trails it (0 when caught up). */
uint64_t node_leader_commit(const struct node *n);
uint64_t node_lag(const struct node *n);
/* 1 while this node's state is current: leader, or a follower caught up
 * with what its leader committed (see NODE_LIVE_LAG_MAX). */
int node_live(const struct node *n);
/* Rebuilds n->conf_members from raft's configuration (monitor tick). */
void node_members_refresh(struct node *n);

/* 1 when data directory `data_dir` holds no raft state yet: node_init will
 * bootstrap it (server/peercheck.c asks the other members first). */
int node_data_is_new(const char *data_dir);

#endif
