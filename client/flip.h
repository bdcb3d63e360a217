/* flip.h: the flipd client library, the one public header.
 *
 * A flip_client talks to a flipd cluster over the wire protocol of
 * proto/flip.proto. Every call blocks until it has an answer, fails, or the
 * client's per-operation deadline (flip_client_set_timeout) passes.
 *
 * @section routing Which node answers
 *
 * Writes (flip_set, flip_delete) and linearizable reads (flip_get and
 * flip_list with stale = 0) must be served by the leader. The client
 * remembers the last leader it reached and goes there first; a follower
 * answers NOT_LEADER with the leader's client address, which the client
 * follows even when that address was not in the endpoint list. Stale reads
 * are served by whichever node the client last reached successfully.
 *
 * @section retries What is retried, and what is not
 *
 * The rules of docs/protocol.md section 6:
 *
 *   - Connection refused, reset, or timed out before the request was fully
 *     written: the next endpoint is tried. After every endpoint has failed
 *     once, the client waits a jittered backoff (10 ms doubling to 50 ms)
 *     before the next round.
 *   - UNAVAILABLE (no leader yet, node shutting down), NO_SPACE and
 *     NOT_LEADER without a leader address: nothing was done; retried on the
 *     next node with the same backoff until the deadline, which then
 *     returns FLIP_UNAVAILABLE / FLIP_NOSPACE.
 *   - Reads are also retried after a transport failure, LEADERSHIP_LOST or
 *     INTERNAL.
 *   - Writes (flip_set, flip_delete) carry a request id and are resent
 *     with the same id after a transport failure once written, no answer
 *     within CLIENT_ATTEMPT_MS (1.5 s), LEADERSHIP_LOST or INTERNAL, until
 *     the deadline: the cluster applies a request id at most once and
 *     answers every resend with the first outcome (docs/protocol.md,
 *     "Request ids"). Only if the deadline passes with no certain answer
 *     does the call return FLIP_LEADERSHIPLOST or FLIP_TIMEOUT with an
 *     "outcome unknown" message; calling again then is a new write (a new
 *     id), so re-read first.
 *
 * @section errors Return codes
 *
 * Every function that can fail returns a FLIP_* code of enum flip_err below
 * (0 is FLIP_OK); flip_strerror() gives its static text and
 * flip_client_errmsg() the detailed text of the last failure on that client.
 * Server statuses map as follows:
 *
 *   NOT_FOUND            FLIP_NOTFOUND
 *   CAS_CONFLICT         FLIP_CONFLICT (see flip_client_conflict_revision)
 *   TYPE_MISMATCH        FLIP_TYPEMISMATCH (see flip_client_conflict_type)
 *   STORE_FULL           FLIP_STOREFULL
 *   INVALID_ARGUMENT     FLIP_INVALID
 *   TOO_LARGE            FLIP_TOOBIG
 *   UNAVAILABLE          FLIP_UNAVAILABLE (after retrying until the deadline)
 *   LEADERSHIP_LOST      FLIP_LEADERSHIPLOST (writes; reads are retried)
 *   NO_SPACE             FLIP_NOSPACE (after retrying until the deadline)
 *   UNSUPPORTED_VERSION  FLIP_UNSUPPORTED
 *   UNKNOWN_TYPE         FLIP_UNSUPPORTED (the server predates this call)
 *   PROTOCOL_ERROR       FLIP_PROTO
 *   INTERNAL, unknown    FLIP_INTERNAL (reads: after retrying)
 *
 * Local failures: FLIP_NOMEM, FLIP_INVALID (bad argument, checked before
 * anything is sent), FLIP_TOOBIG (request over the frame limit), FLIP_PROTO
 * (malformed answer), FLIP_TIMEOUT (no answer within the deadline),
 * FLIP_UNAVAILABLE (no node reachable within the deadline).
 *
 * @section threads Threads and signals
 *
 * A flip_client is not thread-safe: use one per thread, or serialise calls
 * to it. Distinct clients share nothing. The library keeps no global state
 * and never raises SIGPIPE (sends use MSG_NOSIGNAL).
 *
 * @section memory Ownership
 *
 * Strings passed in are only read during the call. Everything returned
 * through an out-parameter belongs to the caller and is released with the
 * matching flip_*_clear / flip_*_free function; on failure out-parameters
 * are left empty (zeroed), so clearing them is always safe. */
#ifndef FLIP_CLIENT_FLIP_H
#define FLIP_CLIENT_FLIP_H

#include <stddef.h>
#include <stdint.h>

/* @defgroup codes Return codes
 *
 * The values are part of the API and never change. flipd's internal table
 * (lib/err.h, not installed) holds the same codes with the same numbers;
 * whichever of the two a file includes first defines them, and a unit test
 * (test_public_api) checks that both lists agree entry by entry. */
#ifndef FLIP_CODES_DEFINED
#define FLIP_CODES_DEFINED
enum flip_err
{
    FLIP_OK = 0,
    FLIP_NOMEM = 1,
    FLIP_INVALID = 2,
    FLIP_TOOBIG = 3,
    FLIP_NOTFOUND = 4,
    FLIP_CONFLICT = 5,
    FLIP_NOTLEADER = 6,
    FLIP_UNAVAILABLE = 7,
    FLIP_IOERR = 8,
    FLIP_NOSPACE = 9,
    FLIP_CORRUPT = 10,
    FLIP_AGAIN = 11,
    FLIP_BUSY = 12,
    FLIP_LEADERSHIPLOST = 13,
    FLIP_UNSUPPORTED = 14,
    FLIP_PROTO = 15,
    FLIP_TIMEOUT = 16,
    FLIP_CLOSED = 17,
    FLIP_INTERNAL = 18,
    FLIP_TYPEMISMATCH = 19,
    FLIP_STOREFULL = 20
};
#endif

/* Static text for a FLIP_* code; never NULL. */
const char *flip_strerror(int rv);

/* @defgroup types Values and flags */

/* The type of a flag value. FLIP_TYPE_AUTO only means "guess" as the type
 * argument of flip_value_parse; no stored value has it. */
enum flip_type
{
    FLIP_TYPE_AUTO = 0,
    FLIP_TYPE_BOOL = 1,
    FLIP_TYPE_INT,
    FLIP_TYPE_DOUBLE,
    FLIP_TYPE_STRING,
    FLIP_TYPE_JSON
};

/* A typed value. `s` holds the text of both FLIP_TYPE_STRING and
 * FLIP_TYPE_JSON (a NUL-terminated UTF-8 string; JSON text is validated by
 * the server). Values passed to the library are borrowed; values inside a
 * returned struct flip_flag are owned by that flag. */
struct flip_value
{
    enum flip_type type;
    union
    {
        int b; /* FLIP_TYPE_BOOL: 0 or 1 */
        int64_t i;
        double d; /* finite */
        const char *s;
    } u;
};

/* A flag as stored, with the audit data of its last change. Every string
 * (key, actor, reason, value.u.s) is owned by the struct, never NULL (empty
 * when the server sent none), and freed by flip_flag_clear. */
struct flip_flag
{
    char *key;
    struct flip_value value;
    uint64_t revision;        /* raft index of the last change */
    uint64_t create_revision; /* raft index that created the flag */
    char *actor;              /* who changed it */
    char *reason;             /* why; may be empty */
    int64_t time_ms;          /* leader wall clock, ms since the epoch */
};

/* Options of a write; pass NULL for "no reason, default actor, no CAS". */
struct flip_write_opts
{
    const char *reason; /* NULL or up to 1024 bytes; kept in the audit data */
    const char *actor;  /* NULL: the client_name given to flip_client_new */
    int use_cas;        /* non-zero: apply only if expected_revision holds */
    /* With use_cas: the flag's current revision must equal this; 0 means
     * "only if the flag does not exist". */
    uint64_t expected_revision;
    /* flip_set: non-zero lets the value change the flag's type; without
     * it a value of another type fails with FLIP_TYPEMISMATCH. */
    int change_type;
};

/* One member of the cluster configuration, as a node reports it. */
struct flip_member
{
    uint64_t id;
    char *raft_address;   /* owned, never NULL */
    char *client_address; /* owned, never NULL; may be empty */
    int voter;
    int joined; /* the cluster recorded it as holding its data */
};

/* One node's own view of itself and the cluster. Strings are owned, never
 * NULL; `members` is an owned array of n_members entries. */
struct flip_node_status
{
    uint64_t id;
    char *role; /* "leader", "follower", "candidate", "unavailable" */
    uint64_t term;
    uint64_t leader_id;   /* 0 when unknown */
    char *leader_address; /* the leader's client address, or empty */
    uint64_t applied_revision;
    uint64_t commit_index;
    uint64_t last_contact_ms; /* since this node last heard a leader */
    uint64_t flag_count;
    uint64_t store_bytes;     /* size the budget is measured in */
    uint64_t max_store_bytes; /* the node's budget; 0: none */
    /* The node's event loop since it started (0 from a server that does
     * not say; docs/protocol.md, StatusResult.loop_*): the longest busy
     * turn, the most CPU one turn used, the turns busy over 1 ms and over
     * 10 ms, and of the latter those the node caused (work or blocking,
     * not waiting for a CPU). */
    uint64_t loop_busy_max_us;
    uint64_t loop_cpu_max_us;
    uint64_t loop_turns_over_1ms;
    uint64_t loop_turns_over_10ms;
    uint64_t loop_stalls_over_10ms;
    char *raft_address;
    char *client_address;
    /* With FLIP_STATUS_HASH: a hash of every stored row, equal on two nodes
     * at the same applied_revision. has_state_hash is 0 when not asked for
     * or when the server does not compute it. */
    int has_state_hash;
    uint64_t state_hash;
    struct flip_member *members;
    size_t n_members;
    /* The cluster id ("" until committed, or from a server that predates
     * it), and whether the node's state is current: has_live is 0 from a
     * server that does not say. leader_commit is the leader's commit index
     * as the node last heard it, lag how far its applied state trails. */
    char *cluster_id;
    int has_live;
    int live;
    uint64_t leader_commit;
    uint64_t lag;
};

/* @defgroup client Client handle */

/* Opaque: one client, its endpoint list and its persistent connections. */
struct flip_client;

/* Creates a client. No connection is made until the first call.
 *
 * @param[out] out           the new client, or NULL on failure.
 * @param[in]  endpoints_csv comma-separated "host:port" list of client
 *                           addresses ("10.0.0.1:7001,localhost:7002";
 *                           "[::1]:7001" for IPv6), at most 16, tried in
 *                           this order. Spaces around entries are ignored.
 * @param[in]  client_name   sent in Hello; the server uses it as the default
 *                           actor of writes. NULL sends none.
 * @return FLIP_OK, FLIP_INVALID (empty or malformed endpoint list, too many
 *         endpoints), FLIP_NOMEM. */
int flip_client_new(struct flip_client **out,
                    const char *endpoints_csv,
                    const char *client_name);

/* Closes every connection and frees the client. NULL is a no-op. */
void flip_client_free(struct flip_client *c);

/* Sets the per-operation deadline in milliseconds (default 5000). One
 * operation, retries and redirects included, never takes longer, except
 * flip_list, which gives each page its own deadline. 0 restores the
 * default. */
void flip_client_set_timeout(struct flip_client *c, unsigned ms);

/* Text describing the last failure on this client: the server's message or
 * the local reason, prefixed by the endpoint where relevant. Empty after a
 * successful call.
 *
 * @return a string owned by the client, valid until its next call. */
const char *flip_client_errmsg(const struct flip_client *c);

/* After FLIP_CONFLICT: the flag's current revision as the server reported
 * it (0 when the flag does not exist). 0 after any other result. */
uint64_t flip_client_conflict_revision(const struct flip_client *c);

/* After FLIP_TYPEMISMATCH: the flag's type as the server reported it;
 * FLIP_TYPE_AUTO when it did not say (or after any other result). */
enum flip_type flip_client_conflict_type(const struct flip_client *c);

/* @defgroup ops Flag operations */

/* Sets a flag, creating it if absent. Served by the leader.
 *
 * @param[in]  c            the client.
 * @param[in]  key          1..256 bytes of [A-Za-z0-9._-/:], no leading '/'.
 * @param[in]  value        the new value; strings and JSON up to 64 KiB.
 * @param[in]  opts         reason, actor, compare-and-set; NULL for none.
 * @param[out] revision_out the flag's new revision; may be NULL.
 * @return FLIP_OK, FLIP_CONFLICT (compare-and-set failed),
 *         FLIP_TYPEMISMATCH (the flag has another type: see
 *         opts->change_type; flip_client_conflict_revision gives its
 *         revision), FLIP_STOREFULL (the store is at its size budget),
 *         FLIP_INVALID, FLIP_TOOBIG, FLIP_NOSPACE, FLIP_LEADERSHIPLOST or
 *         FLIP_TIMEOUT (outcome unknown: only once the deadline passed
 *         with every resend unanswered), FLIP_UNAVAILABLE (no leader
 *         reached, nothing sent), FLIP_UNSUPPORTED, FLIP_PROTO,
 *         FLIP_INTERNAL, FLIP_NOMEM.
 * @note Exactly once: the write carries a request id (a random 128-bit id
 *       per handle and a sequence number) and is resent with that same id
 *       after any ambiguous outcome (lost connection, no answer within
 *       1.5 s, leadership lost) until the deadline; the cluster applies
 *       an id at most once and answers a resend with the first outcome.
 *       See docs/protocol.md, "Request ids". */
int flip_set(struct flip_client *c,
             const char *key,
             const struct flip_value *value,
             const struct flip_write_opts *opts,
             uint64_t *revision_out);

/* Deletes a flag. Served by the leader.
 *
 * @param[in]  c            the client.
 * @param[in]  key          the flag.
 * @param[in]  opts         reason, actor, compare-and-set; NULL for none.
 * @param[out] revision_out the revision of the delete; may be NULL.
 * @param[out] existed_out  1 if the flag existed, 0 if not; may be NULL.
 * @return as flip_set; FLIP_NOTFOUND if the server reports the flag
 *         absent as an error rather than through existed_out. */
int flip_delete(struct flip_client *c,
                const char *key,
                const struct flip_write_opts *opts,
                uint64_t *revision_out,
                int *existed_out);

/* Reads one flag.
 *
 * @param[in]  c     the client.
 * @param[in]  key   the flag.
 * @param[in]  stale 0: linearizable, answered by the leader after a read
 *                   barrier. Non-zero: answered by any node from its applied
 *                   state, possibly behind the leader.
 * @param[out] out   the flag, released with flip_flag_clear. Zeroed on
 *                   failure.
 * @return FLIP_OK, FLIP_NOTFOUND, FLIP_INVALID, FLIP_UNAVAILABLE,
 *         FLIP_TIMEOUT, FLIP_UNSUPPORTED, FLIP_PROTO, FLIP_INTERNAL,
 *         FLIP_NOMEM. */
int flip_get(struct flip_client *c,
             const char *key,
             int stale,
             struct flip_flag *out);

/* Lists the flags whose key starts with a prefix, in key order.
 *
 * @param[in]  c         the client.
 * @param[in]  prefix    NULL or "" for every flag.
 * @param[in]  stale     as in flip_get.
 * @param[out] flags_out an array of *n_out flags (NULL when empty), released
 *                       with flip_flags_free. NULL on failure.
 * @param[out] n_out     the number of flags.
 * @return as flip_get (never FLIP_NOTFOUND: an empty list is FLIP_OK).
 * @note Fetched in pages of up to 1000 flags (fewer when the server cuts a
 *       page to fit its frame limit). Each page is its own request with its
 *       own deadline, so a long list is not one snapshot: a flag changed
 *       during the listing may appear with its old or new value. Keys must
 *       arrive in strictly increasing order (else FLIP_PROTO), and past
 *       1,000,000 flags the call fails with FLIP_TOOBIG, so a server that
 *       keeps saying "more" cannot grow the caller's memory without end. */
int flip_list(struct flip_client *c,
              const char *prefix,
              int stale,
              struct flip_flag **flags_out,
              size_t *n_out);

/* Frees the strings of one flag and zeroes it. Safe on a zeroed flag. */
void flip_flag_clear(struct flip_flag *f);

/* Frees an array returned by flip_list. NULL is a no-op. */
void flip_flags_free(struct flip_flag *flags, size_t n);

/* Flags of flip_status_node. */
#define FLIP_STATUS_HASH \
    0x1u /* also compute state_hash: O(flags) on the node */

/* Asks ONE node for its status: no redirect, no retry on another node.
 *
 * @param[in]  c        the client (its deadline and client name are used).
 * @param[in]  endpoint the node's client "host:port"; need not be in the
 *                      client's endpoint list.
 * @param[in]  flags    0 or FLIP_STATUS_HASH.
 * @param[out] out      released with flip_node_status_clear. Zeroed on
 *                      failure.
 * @return FLIP_OK, FLIP_INVALID (malformed endpoint), FLIP_UNAVAILABLE (node
 *         unreachable), FLIP_TIMEOUT, FLIP_PROTO, FLIP_UNSUPPORTED,
 *         FLIP_INTERNAL, FLIP_NOMEM. */
int flip_status_node(struct flip_client *c,
                     const char *endpoint,
                     unsigned flags,
                     struct flip_node_status *out);

/* Frees what a flip_node_status owns and zeroes it. */
void flip_node_status_clear(struct flip_node_status *s);

/* @defgroup member Membership: the raft configuration and its leader */

/* One member of the raft configuration as the leader holds it. Strings
 * are owned, never NULL. */
struct flip_member_info
{
    uint64_t id;
    char *raft_address;
    char *client_address; /* "" when the leader's --cluster list lacks it */
    char *role;           /* "voter", "standby" or "spare" */
    int leader;           /* the node that answered */
    int reachable;        /* the leader's last connect to it succeeded */
    int joined;           /* as in struct flip_member */
    uint64_t match_index; /* raft index the leader knows it replicated */
    uint64_t lag;         /* the leader's commit index minus match_index */
};

/* The members of the raft configuration, asked of the leader (redirects
 * followed; safe to retry).
 *
 * @param[out] out   an array of *n_out members in configuration order,
 *                   released with flip_member_list_free; NULL on failure.
 * @param[out] n_out the number of members.
 * @return FLIP_OK, FLIP_UNAVAILABLE (no leader reachable), FLIP_TIMEOUT,
 *         FLIP_PROTO, FLIP_UNSUPPORTED (a server that predates it),
 *         FLIP_NOMEM. */
int flip_member_list(struct flip_client *c,
                     struct flip_member_info **out,
                     size_t *n_out);

/* Frees an array returned by flip_member_list. NULL is a no-op. */
void flip_member_list_free(struct flip_member_info *m, size_t n);

/* Actions of flip_member_change. */
enum flip_member_action
{
    FLIP_MEMBER_ADD = 1,    /* id, raft, client, role (NULL: voter) */
    FLIP_MEMBER_REMOVE = 2, /* id */
    FLIP_MEMBER_ASSIGN = 3  /* id, role: promote ("voter"), demote */
};

/* Changes the raft configuration through the leader (redirects followed;
 * resent until the deadline after an unclear outcome: every action is
 * safe to repeat). add: the new node must run `flipd --join ...`; it is
 * added as a spare, caught up, then given `role` ("voter", "standby" or
 * "spare"). A member already as asked (same addresses and role; a removed
 * id gone) is FLIP_OK with *already_out = 1.
 *
 * @return FLIP_OK, FLIP_INVALID (bad arguments, or refused as unsafe:
 *         removing or demoting the leader or a voter the cluster cannot
 *         spare; an id or address in use otherwise; the reason is in
 *         flip_client_errmsg), FLIP_UNAVAILABLE (no leader, or another
 *         change kept running until the deadline), FLIP_TIMEOUT,
 *         FLIP_PROTO, FLIP_UNSUPPORTED, FLIP_NOMEM. */
int flip_member_change(struct flip_client *c,
                       enum flip_member_action action,
                       uint64_t id,
                       const char *raft,
                       const char *client,
                       const char *role,
                       int *already_out);

/* Hands leadership to voter `id` (0: the leader picks the most up-to-date
 * voter) and waits until it leads (raft gives up after an election
 * timeout). Sent to the leader once (never resent after it was written:
 * with id 0 a resend would move leadership again); with an id, calling it
 * again is harmless: a target that already leads is FLIP_OK with
 * *already_out = 1.
 *
 * @param[out] leader_out  NULL or the new leader's id.
 * @param[out] already_out NULL or 1 when `id` already led.
 * @return FLIP_OK, FLIP_INVALID (`id` is not a voter, or no other voter
 *         exists), FLIP_UNAVAILABLE (no leader; another transfer under
 *         way; the transfer did not complete), FLIP_TIMEOUT, FLIP_PROTO,
 *         FLIP_UNSUPPORTED, FLIP_NOMEM. */
int flip_leader_transfer(struct flip_client *c,
                         uint64_t id,
                         uint64_t *leader_out,
                         int *already_out);

/* @defgroup watch Watching flags: a live local copy
 *
 * A flip_watch keeps an in-memory copy of every flag under a set of key
 * prefixes, kept current by a subscription (docs/protocol.md section 15),
 * and answers reads from that copy without touching the network.
 *
 * @section watch_flow How it works
 *
 * flip_watch_start loads the last-known-good file (if any), starts one
 * background thread and returns at once, whatever the state of the
 * cluster. The thread connects to the endpoints in turn (starting at a
 * random one), subscribes and keeps the copy current: first a snapshot
 * (or, when it already holds a state at some revision, only the changes
 * after it), then every change in revision order. It moves to another
 * node when the connection drops, the node sends an error, no frame
 * arrives within stale_after_ms, or the node reports that it has had no
 * leader for longer than an election timeout (then it asks the other
 * nodes, and stays, in state STALE, if none of them knows a leader; a
 * heartbeat that names a leader is never taken as stale). Such moves to
 * a node that knows a leader are spaced: the first at once, the next
 * ones at least 50 ms, doubling to 1 s, after the previous one. It
 * resumes from the copy's revision, so a failover loses no change and
 * repeats none. A node that has not yet reached that revision is skipped
 * (AHEAD_OF_NODE), unless it has reached the revision of the copy's last
 * change or snapshot: it is then resumed from at once, from its own
 * revision (see below). Between rounds over every endpoint it waits a
 * jittered backoff, 50 ms doubling to 1 s.
 *
 * The node sends heartbeats (every second by default) only once the
 * snapshot and the catch-up are done, and every matching change up to a
 * heartbeat's revision before it. So the copy's revision follows the
 * node's heartbeats even while the watched prefixes are quiet, and a
 * watch that fails over resumes from a recent revision (rather than from
 * its last change, which the node's change log may no longer reach,
 * forcing a resync snapshot). The copy is then the state at every
 * revision from its last change to its last heartbeat, so any node that
 * has applied one of them can resume it.
 *
 * Before subscribing, the watch asks the node whether it knows a leader
 * (a Status request): a leaderless node is passed over while another
 * endpoint may be better, and is otherwise used in state STALE, so the
 * watch never claims LIVE from a node that cannot see new writes. A
 * subscription, new or resumed, becomes LIVE at the node's first
 * heartbeat, i.e. once the snapshot and every change the node applied
 * meanwhile have arrived. LIVE means "following the cluster", not
 * "linearizable": the node serving the watch may apply a write a moment
 * after the leader acknowledged it.
 *
 * The copy's revision never goes backwards: a CHANGE at or below the
 * current revision (the flags of one CHANGE share its revision and are
 * applied as one step; two CHANGEs never share one), or a snapshot older
 * than it, is a protocol error and the node is left; a heartbeat below
 * it moves nothing. One exception keeps a watch from wedging forever:
 * when every endpoint, twice in a row, answers that it has not reached
 * the watch's revision (the cluster was rebuilt or restored from a backup
 * while this copy, or its last-known-good file, is from a later history),
 * the watch reports a FLIP_EV_NOTICE and takes a fresh snapshot, which
 * replaces the copy.
 *
 * @section watch_lkg Fail static: the last-known-good file
 *
 * With cache_path set, the copy is written to that file after every
 * snapshot and, at most every 200 ms, after changes; when only its
 * revision moved (heartbeats of quiet prefixes), at most every 5 s; plus
 * once at flip_watch_stop. Writes are atomic (temporary file in the same
 * directory, fsync, rename, fsync of the directory): a crash leaves the
 * old file or the new one. At start the file is loaded before anything
 * else, so a service that starts while the whole cluster is down still
 * reads the values it last saw (reason FLIP_REASON_CACHED), and the watch
 * resumes from the file's revision once a node answers. A file that is
 * corrupt, truncated, of another format version or unreadable is ignored
 * as a whole (never partly loaded) and reported as a FLIP_EV_NOTICE; it
 * is replaced at the next write. A file written for other prefixes is
 * used only if its prefixes cover the watch's ones (the flags outside
 * them are dropped); otherwise its values are still served as CACHED but
 * the watch starts from a full snapshot.
 *
 * The file also records the cluster the state came from (its cluster id,
 * docs/protocol.md). A node of another cluster (the cluster was rebuilt,
 * or restored into a new one) is never resumed from by revision: the
 * watch says so in its state detail ("... belongs to cluster X, but our
 * copy came from cluster Y: ... taking a fresh snapshot"), keeps serving
 * the file's values as CACHED, and replaces them with a resync snapshot.
 *
 * File format (version 2, integers big-endian; version 1 files, without
 * the cluster id record, are still read):
 *
 *   offset  size  field
 *   0       8     magic "flipdLKG"
 *   8       4     format version, 2
 *   12      4     CRC-32 (IEEE) of every byte from offset 16 to the end
 *   16      8     revision of the state
 *   24      4     number of prefixes P
 *   28      4     number of flags N
 *   32      8     length of the body that follows, in bytes
 *   40      ...   u32 length + the cluster id (0..64 bytes, 0: unknown);
 *                 P times: u32 length + prefix bytes; then N times: u32
 *                 length + a protobuf flip.Flag (proto/flip.proto)
 *
 * @section watch_reads Reads and reasons
 *
 * flip_watch_bool/int/double/string/get look the key up in the copy and
 * say where the answer came from through *why (may be NULL):
 *
 *   FLIP_REASON_LIVE     the value of a live subscription (state LIVE).
 *   FLIP_REASON_CACHED   the last value seen, while the watch is not LIVE
 *                        (connecting, stale, disconnected), including
 *                        values loaded from the last-known-good file.
 *   FLIP_REASON_DEFAULT  the caller's default: the key is unknown (or
 *                        deleted), or its value has another type. A value
 *                        of the wrong type is never converted, except an
 *                        int read as a double (exact up to 2^53).
 *
 * @section watch_threads Threads
 *
 * The watch runs one thread of its own, with every signal blocked. Reads
 * (flip_watch_bool ... flip_watch_get), flip_watch_state,
 * flip_watch_revision and flip_watch_fd may be called from any number of
 * threads at once, including from on_event; they take a reader lock for
 * the duration of a hash lookup and a copy, and never wait for the
 * network. A whole CHANGE (every flag changed at one revision) and a
 * whole snapshot become visible to readers atomically: during a snapshot,
 * readers keep seeing the previous state until SNAPSHOT_END.
 *
 * on_event is called on the watch's thread only, one event at a time, in
 * order, never re-entered, and without any lock held. A CHANGE or DELETE
 * is reported once the copy reflects it; SNAPSHOT_ITEMs are reported as
 * they arrive, and the snapshot becomes the copy just before its
 * DELETEs and SNAPSHOT_END. It must return promptly (the
 * stream is not read meanwhile; a node drops a subscriber that falls too
 * far behind, which the watch then resumes), and must not call
 * flip_watch_stop on its own watch. To hand work to another thread, use
 * flip_watch_fd or, with libuv, uv_async_send from on_event.
 *
 * flip_watch_start and flip_watch_stop must not race with each other or
 * with other calls on the same watch: no call may be in progress or made
 * once flip_watch_stop has begun.
 *
 * @section watch_memory Ownership
 *
 * Options are copied by flip_watch_start; nothing passed in needs to
 * outlive the call. Everything an event points to is borrowed for the
 * duration of the callback. flip_watch_get copies out a flag that the
 * caller releases with flip_flag_clear. */

/* Opaque: one watch, its thread, its copy of the flags. */
struct flip_watch;

/* The watch's connection to the cluster, as seen by readers. */
enum flip_watch_state
{
    /* Not (yet) synchronised: starting, or failing over after the
     * subscription was lost; reads answer CACHED. */
    FLIP_WATCH_CONNECTING = 0,
    /* Subscribed to a live node (it knows a leader and has applied what
     * that leader committed, docs/protocol.md section 17), snapshot and
     * catch-up complete (its first heartbeat came): the copy follows the
     * cluster. Reads answer LIVE. */
    FLIP_WATCH_LIVE,
    /* Subscribed, but the node has had no leader for longer than an
     * election timeout, or knows one but is catching up with it (stuck,
     * restoring, far behind), and no other node is better: the copy may
     * miss changes the cluster has made. The watch keeps asking the other
     * nodes and moves to a live one. */
    FLIP_WATCH_STALE,
    /* A whole round over every endpoint failed; retrying with backoff. */
    FLIP_WATCH_DISCONNECTED
};

/* Where a read's answer came from; see "Reads and reasons" above. */
enum flip_reason
{
    FLIP_REASON_LIVE = 0,
    FLIP_REASON_CACHED,
    FLIP_REASON_DEFAULT
};

enum flip_watch_event_type
{
    FLIP_EV_SNAPSHOT_BEGIN = 0, /* a snapshot at `revision` starts */
    FLIP_EV_SNAPSHOT_ITEM,      /* one flag of it (`flag`), in key order */
    /* The snapshot is complete and is now the copy; the FLIP_EV_DELETE
     * events of keys it no longer holds came just before. */
    FLIP_EV_SNAPSHOT_END,
    FLIP_EV_CHANGE, /* `flag` was set at `revision` */
    /* `flag->key` was deleted: at `revision` by a CHANGE, or, with
     * `resync`, found absent from a snapshot that replaced the copy (then
     * `flag` is the last version the watch had). */
    FLIP_EV_DELETE,
    FLIP_EV_STATE, /* the state changed to `state`; `detail` says why */
    /* Something the application may want to log, state unchanged: the
     * last-known-good file was ignored or could not be written, a node
     * was left after an error, ... (`detail`). */
    FLIP_EV_NOTICE
};

/* One event, passed to on_event. Every pointer is borrowed and valid only
 * during the callback; strings are never NULL. */
struct flip_watch_event
{
    enum flip_watch_event_type type;
    /* SNAPSHOT_* and DELETE: the snapshot replaces the whole copy after a
     * gap the node could not fill from its change log (a resync), rather
     * than being the first snapshot. */
    int resync;
    /* SNAPSHOT_ITEM, CHANGE, DELETE: the flag; NULL otherwise. A DELETE
     * from a CHANGE has only key, revision and the audit fields; its
     * value.type is FLIP_TYPE_AUTO (no value). */
    const struct flip_flag *flag;
    /* SNAPSHOT_*: the snapshot's revision; CHANGE, DELETE: the revision of
     * the change (of the snapshot for a resync delete); STATE, NOTICE: the
     * copy's revision. Several CHANGE/DELETE events share a revision when
     * one replicated entry changed several flags (the leader groups
     * writes that arrive together): they come one after the other, and
     * the copy already reflects all of them at the first. */
    uint64_t revision;
    enum flip_watch_state state; /* the state once this event is applied */
    const char *node;            /* "host:port" of the node, or "" */
    /* STATE, NOTICE: a human-readable reason; SNAPSHOT_BEGIN with resync:
     * the node's reason; otherwise "". */
    const char *detail;
};

/* Options of flip_watch_start. Zero the whole struct first (memset), then
 * set what you need: fields may be added at the end in later versions,
 * and zero always means "the default". */
struct flip_watch_options
{
    /* Required: comma-separated "host:port" client addresses, at most 16,
     * as in flip_client_new. Any node serves a watch. */
    const char *endpoints;
    /* Sent in Hello (the node does not log it); NULL: "flip_watch". */
    const char *client_name;
    /* Key prefixes to watch, each "" (everything) or 1..256 characters of
     * the key alphabet; at most 256. n_prefixes 0: every flag. */
    const char *const *prefixes;
    size_t n_prefixes;
    /* Last-known-good file, or NULL for none; see "Fail static". Its
     * directory must exist. */
    const char *cache_path;
    /* Non-zero: load cache_path but never write it (a second reader of a
     * file another watch maintains). */
    int cache_readonly;
    /* A node from which no frame (event or heartbeat) arrives for this
     * long is left. 0: three heartbeat intervals as the node announces
     * them (3 s with the default 1 s heartbeat). */
    unsigned stale_after_ms;
    /* Called for every event, see "Threads"; NULL for none. */
    void (*on_event)(void *data, const struct flip_watch_event *ev);
    void *data; /* passed to on_event */
    /* Start from this revision instead of a snapshot (the application
     * persisted it itself): only changes after it are delivered, or a
     * resync snapshot if the node's change log no longer reaches back so
     * far. 0: a snapshot, or the last-known-good file's revision. A
     * non-zero value also overrides the file's revision. */
    uint64_t from_revision;
};

/* Starts watching.
 *
 * Validates the options, loads the last-known-good file (so reads answer
 * from it as soon as this returns), then starts the watch thread. Never
 * waits for the network.
 *
 * @param[out] out the new watch, or NULL on failure.
 * @param[in]  o   the options (copied).
 * @return FLIP_OK; FLIP_INVALID (no or malformed endpoints, a bad prefix,
 *         more than 256 prefixes); FLIP_NOMEM; FLIP_IOERR (the thread or a
 *         descriptor could not be created). A missing or corrupt
 *         last-known-good file is NOT an error (see FLIP_EV_NOTICE). */
int flip_watch_start(struct flip_watch **out,
                     const struct flip_watch_options *o);

/* Stops the thread (it leaves any network wait at once; only a name
 * resolution in progress can delay it), writes the last-known-good file
 * if changes are pending (one fsync'd write), closes everything and
 * frees the watch. No event is delivered after it returns. NULL is a
 * no-op.
 * @note Never call it from on_event of the same watch (it would wait for
 *       itself), nor while another thread may still use the watch. */
void flip_watch_stop(struct flip_watch *w);

/* @return the current state. */
enum flip_watch_state flip_watch_state(const struct flip_watch *w);

/* @return "connecting", "live", "stale" or "disconnected". Static. */
const char *flip_watch_state_name(enum flip_watch_state state);

/* @return "live", "cached" or "default". Static. */
const char *flip_reason_name(enum flip_reason why);

/* @return the revision of the copy: every change up to it is reflected.
 *         It moves with changes, snapshots and the node's heartbeats (so
 *         also while the watched prefixes are quiet). 0 before a state
 *         was loaded (values from a last-known-good file written for
 *         other prefixes do not count). Never decreases, except after the
 *         history-reset notice described in "How it works". */
uint64_t flip_watch_revision(const struct flip_watch *w);

/* A descriptor that becomes readable whenever the copy, its revision or
 * the state changed, for poll()- or libuv-based applications
 * (uv_poll_start with UV_READABLE). It is non-blocking: read from it until
 * read() fails with EAGAIN to clear it (any buffer of at least 8 bytes),
 * then re-read the flags you need. Owned by the watch; do not close it.
 * Changes coalesce: one wakeup may stand for many. A revision that moves
 * with a heartbeat (every second by default while the prefixes are quiet)
 * wakes it too, although no flag changed.
 *
 * @return the descriptor; valid until flip_watch_stop. */
int flip_watch_fd(const struct flip_watch *w);

/* Typed reads. Each returns the flag's value when the key is in the copy
 * with exactly that type (flip_watch_double also takes an int), else
 * `def`; *why (may be NULL) says which, see "Reads and reasons". Never
 * block on the network, never allocate. */
int flip_watch_bool(struct flip_watch *w,
                    const char *key,
                    int def,
                    enum flip_reason *why);
int64_t flip_watch_int(struct flip_watch *w,
                       const char *key,
                       int64_t def,
                       enum flip_reason *why);
double flip_watch_double(struct flip_watch *w,
                         const char *key,
                         double def,
                         enum flip_reason *why);

/* Copies a string flag's text (a json flag's text too) into buf, or the
 * default when the key is unknown or not a string/json flag.
 *
 * @param[in]  def NULL means "".
 * @param[out] buf len bytes; always NUL-terminated when len > 0.
 * @return FLIP_OK (buf holds the value or the whole default);
 *         FLIP_TOOBIG (the flag's value needs more than len - 1 bytes: buf
 *         holds the default instead and *why is DEFAULT; or the default
 *         itself was cut to fit); FLIP_INVALID (buf NULL or len 0). */
int flip_watch_string(struct flip_watch *w,
                      const char *key,
                      const char *def,
                      char *buf,
                      size_t len,
                      enum flip_reason *why);

/* Copies a whole flag out of the copy, value and audit data.
 *
 * @param[out] out released with flip_flag_clear; zeroed unless FLIP_OK.
 * @return FLIP_OK (*why LIVE or CACHED); FLIP_NOTFOUND (*why DEFAULT);
 *         FLIP_NOMEM; FLIP_INVALID (key NULL). */
int flip_watch_get(struct flip_watch *w,
                   const char *key,
                   struct flip_flag *out,
                   enum flip_reason *why);

/* @defgroup text Text conversions (no I/O; usable without a client) */

/* @return "bool", "int", "double", "string", "json", "auto" or "unknown".
 *         Static. */
const char *flip_type_name(enum flip_type type);

/* Parses a type name as printed by flip_type_name ("auto" included).
 * @return FLIP_OK or FLIP_INVALID. */
int flip_type_parse(const char *name, enum flip_type *out);

#endif
