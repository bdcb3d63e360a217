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
 *     once, the client waits a jittered backoff (10 ms doubling to 200 ms)
 *     before the next round.
 *   - UNAVAILABLE (no leader yet, node shutting down), NO_SPACE and
 *     NOT_LEADER without a leader address: nothing was done; retried on the
 *     next node with the same backoff until the deadline, which then
 *     returns FLIP_UNAVAILABLE / FLIP_NOSPACE.
 *   - Reads are also retried after a transport failure, LEADERSHIP_LOST or
 *     INTERNAL.
 *   - A write is NEVER retried once its request has been fully written: if
 *     the connection then drops or the deadline passes, the write may or may
 *     not have been applied, and the call returns FLIP_UNAVAILABLE or
 *     FLIP_TIMEOUT with an "outcome unknown" message. LEADERSHIP_LOST
 *     (FLIP_LEADERSHIPLOST) and INTERNAL (FLIP_INTERNAL) on a write mean
 *     the same. Re-read before retrying; use compare-and-set
 *     (expected_revision) to retry safely: the server does not
 *     de-duplicate resent writes.
 *
 * @section errors Return codes
 *
 * Every function that can fail returns a FLIP_* code from lib/err.h (0 is
 * FLIP_OK); flip_strerror() gives its static text and flip_client_errmsg()
 * the detailed text of the last failure on that client. Server statuses map
 * as follows:
 *
 *   NOT_FOUND            FLIP_NOTFOUND
 *   CAS_CONFLICT         FLIP_CONFLICT (see flip_client_conflict_revision)
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

#include "lib/err.h" /* FLIP_* codes and flip_strerror() */

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
};

/* One member of the cluster configuration, as a node reports it. */
struct flip_member
{
    uint64_t id;
    char *raft_address;   /* owned, never NULL */
    char *client_address; /* owned, never NULL; may be empty */
    int voter;
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
    char *raft_address;
    char *client_address;
    /* With FLIP_STATUS_HASH: a hash of every stored row, equal on two nodes
     * at the same applied_revision. has_state_hash is 0 when not asked for
     * or when the server does not compute it. */
    int has_state_hash;
    uint64_t state_hash;
    struct flip_member *members;
    size_t n_members;
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

/* @defgroup ops Flag operations */

/* Sets a flag, creating it if absent. Served by the leader.
 *
 * @param[in]  c            the client.
 * @param[in]  key          1..256 bytes of [A-Za-z0-9._-/:], no leading '/'.
 * @param[in]  value        the new value; strings and JSON up to 64 KiB.
 * @param[in]  opts         reason, actor, compare-and-set; NULL for none.
 * @param[out] revision_out the flag's new revision; may be NULL.
 * @return FLIP_OK, FLIP_CONFLICT (compare-and-set failed), FLIP_INVALID,
 *         FLIP_TOOBIG, FLIP_NOSPACE, FLIP_LEADERSHIPLOST (outcome unknown),
 *         FLIP_UNAVAILABLE (no leader reached, or outcome unknown: see the
 *         message), FLIP_TIMEOUT, FLIP_UNSUPPORTED, FLIP_PROTO,
 *         FLIP_INTERNAL, FLIP_NOMEM.
 * @note Never retried once sent; see "retries" above. */
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
 *       during the listing may appear with its old or new value. */
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

/* @defgroup text Text conversions (no I/O; usable without a client) */

/* @return "bool", "int", "double", "string", "json", "auto" or "unknown".
 *         Static. */
const char *flip_type_name(enum flip_type type);

/* Parses a type name as printed by flip_type_name ("auto" included).
 * @return FLIP_OK or FLIP_INVALID. */
int flip_type_parse(const char *name, enum flip_type *out);

/* Turns command-line text into a value.
 *
 * FLIP_TYPE_AUTO guesses: "true"/"false" give a bool, a decimal integer
 * that fits in 64 bits (no leading zeros) an int, any other JSON number a
 * double, a valid JSON object or array a json value, anything else a
 * string. Explicit types are strict: bool takes true/false/1/0 (any case),
 * int a decimal integer in range, double a finite number, json valid JSON.
 *
 * @param[in]  text the text; for string and json results, out->u.s points
 *                  INTO text, which must outlive the value.
 * @param[in]  type the wanted type, or FLIP_TYPE_AUTO.
 * @param[out] out  the value.
 * @return FLIP_OK or FLIP_INVALID (text does not fit the type). */
int flip_value_parse(const char *text,
                     enum flip_type type,
                     struct flip_value *out);

/* Renders a value as text.
 *
 * @param[in]  v       the value.
 * @param[in]  as_json 0: plain (bool true/false, int decimal, double %.17g,
 *                     string and json raw). Non-zero: a JSON literal
 *                     (strings quoted and escaped, json compacted onto one
 *                     line, a non-finite double as null).
 * @param[out] out     a NUL-terminated string, freed with flip_text_free.
 * @return FLIP_OK, FLIP_INVALID (unknown type), FLIP_NOMEM. */
int flip_value_format(const struct flip_value *v, int as_json, char **out);

/* Quotes a string as a JSON string literal: '"', '\\' and control
 * characters are escaped; other bytes are copied as they are.
 *
 * @param[out] out the literal with its quotes, freed with flip_text_free.
 * @return FLIP_OK or FLIP_NOMEM. */
int flip_json_quote(const char *s, char **out);

/* Frees a string returned by flip_value_format or flip_json_quote. */
void flip_text_free(char *s);

#endif
