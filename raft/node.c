/* Raft node wiring; see node.h. */
#include "node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "errmap.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "lib/queue.h"
#include "proto/command.h"

/* libraft 0.15 (Debian 12's own) commits entries without a real majority
 * and diverges replicas under faults; 0.22.1 from bookworm-backports is the
 * version this code is written and tested against. */
#if !defined(RAFT_VERSION_NUMBER) || RAFT_VERSION_NUMBER < 2201
#error "flipd needs libraft >= 0.22.1 (bookworm-backports); 0.15 is unsafe"
#endif

#define MONITOR_MS 10

static int mkdir_p(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return FLIP_IOERR;
    }
    return FLIP_OK;
}

const char *node_role_name(int role)
{
    switch (role) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

const struct node_member *node_member_by_id(const struct node *n, uint64_t id)
{
    for (unsigned i = 0; i < n->config.n_members; i++) {
        if (n->config.members[i].id == id) {
            return &n->config.members[i];
        }
    }
    for (unsigned i = 0; i < n->n_conf_members; i++) {
        if (n->conf_members[i].id == id) {
            return &n->conf_members[i];
        }
    }
    return NULL;
}

uint64_t node_applied(const struct node *n)
{
    uint64_t raft_idx = raft_last_applied((struct raft *)&n->raft);
    uint64_t store_idx = store_applied_index(n->store);
    /* During restart replay raft's counter trails the store's. */
    return raft_idx > store_idx ? raft_idx : store_idx;
}

int node_role(const struct node *n)
{
    int role = raft_state((struct raft *)&n->raft);
    return n->closing ? -1 : role;
}

int node_is_leader(const struct node *n)
{
    return !n->closing && raft_state((struct raft *)&n->raft) == RAFT_LEADER;
}

const struct node_member *node_leader(const struct node *n)
{
    raft_id id = 0;
    const char *addr = NULL;

    /* during a planned stop the node still knows the new leader, which is
     * where writes arriving meanwhile are redirected */
    if (n->raft_closing) {
        return NULL;
    }
    raft_leader((struct raft *)&n->raft, &id, &addr);
    return id == 0 ? NULL : node_member_by_id(n, id);
}

uint64_t node_leaderless_ms(const struct node *n)
{
    uint64_t now = uv_now(n->loop);
    if (n->leader_id != 0) {
        return 0;
    }
    return now > n->last_contact ? now - n->last_contact : 0;
}

/* libraft 0.22.1 crashes a follower that takes its own snapshot while the
 * leader is installing one on it (assertions in TrailSnapshot and
 * legacyApply in a debug build, SIGSEGV in Debian's): it happens when a
 * follower comes back after a stall or a partition, replays its log past
 * the snapshot threshold, and the leader, which compacted past it, sends
 * InstallSnapshot at the same moment. See docs/known-issues.md. A
 * follower therefore declines local snapshots for a while after any sign
 * that it fell behind: start-up, no known leader, or its loop stalled. */
#define SNAPSHOT_HOLD_EXTRA_MS 3000

static void hold_snapshots(struct node *n, uint64_t now)
{
    uint64_t until = now + 2 * n->config.election_ms + SNAPSHOT_HOLD_EXTRA_MS;
    if (until > n->snapshot_hold) {
        n->snapshot_hold = until;
    }
}

static int snapshot_gate(void *data)
{
    struct node *n = data;
    if (n->snapshot_hold_off) {
        return 1; /* FLIP_NO_SNAPSHOT_HOLD: to reproduce the libraft bug */
    }
    if (raft_state(&n->raft) == RAFT_LEADER) {
        return 1; /* nobody installs a snapshot on the leader */
    }
    return uv_now(n->loop) >= n->snapshot_hold;
}

/* ---- cluster identity (storage/identity.h) ------------------------------
 *
 * The nodes bootstrap independently, so the cluster id is chosen by the
 * first leader that finds none in its store, and committed as an entry;
 * apply keeps the first one (two leaders racing propose two, every replica
 * keeps the same). The leader also records each member whose match index
 * passed the bootstrap entry as "joined": such a member holds data the
 * cluster relies on, and must never start again from an empty directory
 * (server/peercheck.c asks for this before bootstrapping). */

struct node_ident_req
{
    struct raft_apply req; /* raft owns it until ident_done */
    struct node *node;
};

static uint32_t all_members_mask(const struct node *n)
{
    return n->config.n_members >= 32 ? UINT32_MAX
                                     : (UINT32_C(1) << n->config.n_members) - 1;
}

/* Re-reads the identity rows when apply or a restore may have changed
 * them; once complete only a restore can. */
static void ident_refresh(struct node *n)
{
    uint64_t applied = store_applied_index(n->store);
    int complete =
        n->cluster_id[0] != '\0' && n->joined_mask == all_members_mask(n);
    uint32_t mask = 0;

    if (n->fsm.n_restored == n->ident_restores &&
        (complete || applied == n->ident_read_at)) {
        return;
    }
    n->ident_read_at = applied;
    n->ident_restores = n->fsm.n_restored;
    identity_get(n->store, n->cluster_id);
    for (unsigned i = 0; i < n->config.n_members; i++) {
        if (identity_joined(n->store, n->config.members[i].id)) {
            mask |= UINT32_C(1) << i;
        }
    }
    n->joined_mask = mask;
}

static void ident_done(struct raft_apply *req, int status, void *result)
{
    struct node_ident_req *ir = CONTAINER_OF(req, struct node_ident_req, req);

    (void)status;
    (void)result;
    if (ir->node->ident_req == ir) {
        ir->node->ident_req = NULL;
    }
    flip_free(ir);
}

/* Proposes an identity entry (no changes): a cluster id, or a member that
 * joined. At most one in flight. */
static void ident_propose(struct node *n,
                          const char *cluster_id,
                          uint64_t member)
{
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    struct node_ident_req *ir;
    struct raft_buffer buf;
    int rv;

    cmd.cluster_id = (char *)(uintptr_t)cluster_id;
    cmd.has_joined_member = member != 0;
    cmd.joined_member = member;
    ir = flip_calloc(1, sizeof *ir);
    if (ir == NULL) {
        return;
    }
    ir->node = n;
    buf.len = command_size(&cmd);
    buf.base = raft_malloc(buf.len);
    if (buf.base == NULL) {
        flip_free(ir);
        return;
    }
    command_write(&cmd, buf.base);
    rv = raft_apply(&n->raft, &ir->req, &buf, 1, ident_done);
    if (rv == RAFT_INVALID) {
        abort(); /* raft freed the buffer; see docs: a programming error */
    }
    if (rv != 0) {
        raft_free(buf.base);
        flip_free(ir);
        return;
    }
    n->ident_req = ir;
}

static void ident_tick(struct node *n)
{
    char id[IDENTITY_ID_LEN + 1];

    ident_refresh(n);
    if (n->closing || n->ident_req != NULL ||
        raft_state(&n->raft) != RAFT_LEADER ||
        raft_last_applied(&n->raft) < raft_commit_index(&n->raft)) {
        return; /* only a leader that applied what it committed */
    }
    if (n->cluster_id[0] == '\0') {
        if (identity_generate(id) == FLIP_OK) {
            flip_infof("raft: no cluster id yet; proposing %s", id);
            ident_propose(n, id, 0);
        }
        return;
    }
    for (unsigned i = 0; i < n->config.n_members; i++) {
        uint64_t mid = n->config.members[i].id;
        raft_index match = 0;

        if (n->joined_mask & (UINT32_C(1) << i)) {
            continue;
        }
        if (mid == n->config.id) {
            match = raft_last_index(&n->raft);
        } else if (raft_match_index(&n->raft, mid, &match) != 0) {
            continue;
        }
        if (match > 1) { /* holds more than the bootstrap entry */
            ident_propose(n, NULL, mid);
            return;
        }
    }
}

char *node_cluster_id(struct node *n)
{
    return n->cluster_id;
}

int node_member_joined(const struct node *n, uint64_t id)
{
    for (unsigned i = 0; i < n->config.n_members; i++) {
        if (n->config.members[i].id == id) {
            return (n->joined_mask >> i) & 1;
        }
    }
    return 0;
}

/* ---- lag behind the leader ---------------------------------------------
 *
 * A follower's own commit index is capped by its log, so a follower that
 * is stuck (or was restored from an old backup, or wiped) can look caught
 * up by it. The leader's commit index travels in every AppendEntries,
 * heartbeats included: shim_recv notes it, and the monitor checks that
 * each value is reached within an election timeout of learning it. */

static void note_leader_commit(struct node *n, const struct raft_message *m)
{
    if (m->type != RAFT_APPEND_ENTRIES ||
        m->append_entries.term < raft_current_term(&n->raft)) {
        return;
    }
    n->leader_commit = m->append_entries.leader_commit;
    n->leader_commit_at = uv_now(n->loop);
}

/* Leader side of an in-place restore (docs/known-issues.md): a follower
 * restored from an older backup has a log that ends below the match index
 * the leader remembers for it. libraft 0.22.1's leader then never sends it
 * another entry: it ignores its rejections at or below that match index as
 * stale (progressMaybeDecrement in pipeline mode), and once in probe mode
 * it computes the entries in flight as next - match - 1, which wraps
 * (match > next) past the in-flight limit, so it sends empty heartbeats
 * forever. Only a fresh leader (match indexes start at 0) replicates to it
 * again, which is what restarting the leader did by hand. So the leader
 * watches every AppendEntries result for a log that went backwards (last
 * index below the match index) and, when a follower keeps answering so for
 * an election timeout, hands leadership to the most up-to-date other voter.
 * A genuinely stale result (reordered) is followed by current ones within
 * far less than that, which clear the watch. */
#define UNSTICK_GAP_ELECTIONS 10 /* least time between two handovers */

static void note_follower_log(struct node *n, const struct raft_message *m)
{
    raft_index match = 0;

    if (m->type != RAFT_APPEND_ENTRIES_RESULT ||
        raft_state(&n->raft) != RAFT_LEADER) {
        return;
    }
    if (m->append_entries_result.rejected == 0 &&
        m->append_entries_result.last_log_index == 0) {
        /* a follower installing a snapshot answers heartbeats so: it
         * claims nothing. (Only real answers reach here: the shim's
         * contact-only results, raft/ioshim.c, go to raft after this.) */
        return;
    }
    for (unsigned i = 0; i < n->config.n_members; i++) {
        if (n->config.members[i].id != m->server_id) {
            continue;
        }
        if (raft_match_index(&n->raft, m->server_id, &match) != 0 ||
            m->append_entries_result.last_log_index >= match) {
            n->behind_since[i] = 0;
        } else if (n->behind_since[i] == 0) {
            n->behind_since[i] = uv_now(n->loop);
            n->behind_last[i] = m->append_entries_result.last_log_index;
        }
        return;
    }
}

static void unstick_done(struct raft_transfer *req)
{
    struct node *n = req->data;
    n->unstick_busy = 0;
}

/* The voter other than us and `skip` with the highest match index. */
static uint64_t best_transferee(struct node *n, uint64_t skip)
{
    uint64_t best = 0;
    raft_index best_match = 0;

    for (unsigned i = 0; i < n->config.n_members; i++) {
        uint64_t id = n->config.members[i].id;
        raft_index match = 0;
        if (id == n->config.id || id == skip ||
            raft_match_index(&n->raft, id, &match) != 0) {
            continue;
        }
        if (best == 0 || match > best_match) {
            best = id;
            best_match = match;
        }
    }
    return best;
}

static void unstick_tick(struct node *n, int role, uint64_t now)
{
    uint64_t election = n->config.election_ms;

    if (role != RAFT_LEADER || n->closing) {
        memset(n->behind_since, 0, sizeof n->behind_since);
        return;
    }
    for (unsigned i = 0; i < n->config.n_members; i++) {
        uint64_t id = n->config.members[i].id;
        uint64_t to;
        raft_index match = 0;

        if (n->behind_since[i] == 0 || now - n->behind_since[i] <= election ||
            n->unstick_busy ||
            (n->last_unstick != 0 &&
             now - n->last_unstick < UNSTICK_GAP_ELECTIONS * election)) {
            continue;
        }
        to = best_transferee(n, id);
        raft_match_index(&n->raft, id, &match);
        flip_infof(
            "raft: node %llu's log ends at %llu, below the %llu it "
            "acknowledged (restored from an older backup?); this "
            "leader would never send it entries again (libraft): "
            "%s",
            (unsigned long long)id, (unsigned long long)n->behind_last[i],
            (unsigned long long)match,
            to != 0 ? "handing leadership over so that a new leader "
                      "replicates to it"
                    : "no other voter to hand leadership to");
        n->behind_since[i] = 0;
        n->last_unstick = now;
        if (to == 0) {
            continue;
        }
        n->unstick_req.data = n;
        if (raft_transfer(&n->raft, &n->unstick_req, to, unstick_done) == 0) {
            n->unstick_busy = 1;
            n->n_unstuck++;
        }
        return;
    }
}

static void lag_tick(struct node *n, int role, uint64_t now)
{
    uint64_t applied = node_applied(n);
    uint64_t election = n->config.election_ms;

    if (role == RAFT_LEADER) {
        n->leader_commit = raft_commit_index(&n->raft);
        n->leader_commit_at = now;
    }
    if (n->leader_commit_at == 0 || now - n->leader_commit_at > election ||
        (role != RAFT_LEADER && n->leader_id == 0)) {
        n->caught_up = 0; /* no word from a leader: nothing to compare */
        n->catchup_target = 0;
        return;
    }
    if (n->catchup_target == 0) {
        n->catchup_target = n->leader_commit > 0 ? n->leader_commit : 1;
        n->catchup_since = now;
    }
    if (applied >= n->catchup_target) {
        n->caught_up = 1;
        n->catchup_target = n->leader_commit > applied ? n->leader_commit : 0;
        n->catchup_since = now;
    } else if (now - n->catchup_since > election) {
        n->caught_up = 0; /* did not apply what the leader committed */
    }
    if (node_lag(n) > NODE_LIVE_LAG_MAX) {
        n->caught_up = 0;
    }
}

uint64_t node_leader_commit(const struct node *n)
{
    return n->leader_commit;
}

uint64_t node_lag(const struct node *n)
{
    uint64_t applied = node_applied(n);
    return n->leader_commit > applied ? n->leader_commit - applied : 0;
}

int node_live(const struct node *n)
{
    uint64_t now = uv_now(n->loop);

    if (n->closing || n->leader_commit_at == 0 ||
        now - n->leader_commit_at > n->config.election_ms) {
        return 0;
    }
    if (raft_state((struct raft *)&n->raft) == RAFT_LEADER) {
        return node_lag(n) <= NODE_LIVE_LAG_MAX;
    }
    return n->leader_id != 0 && n->caught_up;
}

int node_data_is_new(const char *data_dir)
{
    static const char *const names[] = { "metadata1", "metadata2" };
    char path[700];
    struct stat st;

    /* raft_uv's metadata files: written by raft_bootstrap */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/raft/%s", data_dir, names[i]);
        if (stat(path, &st) == 0) {
            return 0;
        }
    }
    return 1;
}

static void probe_tick(struct node *n, int role, uint64_t now);
static void raft_clock_ahead(struct node *n, uint64_t now);

/* Polls raft's state; libraft 0.22 has no state-change callback. */
static void monitor_tick(uv_timer_t *t)
{
    struct node *n = t->data;
    int role;
    raft_id leader = 0;
    const char *addr = NULL;

    if (n->closing) {
        return;
    }
    node_members_refresh(n);
    role = raft_state(&n->raft);
    raft_leader(&n->raft, &leader, &addr);
    n->term = raft_current_term(&n->raft);
    if (leader != 0) {
        n->last_contact = uv_now(n->loop);
    }
    if (leader == 0 || uv_now(n->loop) - n->last_tick > n->config.election_ms) {
        hold_snapshots(n, uv_now(n->loop));
    }
    n->last_tick = uv_now(n->loop);
    ident_tick(n);
    if (role != n->role) {
        int old = n->role;
        n->role = role;
        flip_infof("raft: %s -> %s (term %llu)", node_role_name(old),
                   node_role_name(role), (unsigned long long)n->term);
        if (n->observer.on_role != NULL) {
            n->observer.on_role(n->observer.data, old, role);
        }
    }
    if (leader != n->leader_id) {
        n->leader_id = leader;
        n->leader_heard_at = uv_now(n->loop);
        n->dead_leader = 0;
        n->give_up_at = 0;
        if (leader != 0) {
            flip_infof("raft: leader is node %llu (term %llu)",
                       (unsigned long long)leader, (unsigned long long)n->term);
        } else {
            flip_infof("raft: no leader (term %llu)",
                       (unsigned long long)n->term);
        }
        if (n->observer.on_leader != NULL) {
            n->observer.on_leader(n->observer.data, leader);
        }
    }
    lag_tick(n, role, uv_now(n->loop));
    unstick_tick(n, role, uv_now(n->loop));
    probe_tick(n, role, uv_now(n->loop));
}

static int bootstrap(struct node *n)
{
    struct raft_configuration conf;
    int rv;

    raft_configuration_init(&conf);
    for (unsigned i = 0; i < n->config.n_members; i++) {
        const struct node_member *m = &n->config.members[i];
        char field[NODE_FIELD_MAX];

        addrfield_encode(field, m->raft_address, m->client_address);
        rv = raft_configuration_add(&conf, m->id, field, RAFT_VOTER);
        if (rv != 0) {
            raft_configuration_close(&conf);
            return rv;
        }
    }
    rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        return 0; /* state exists: a plain restart */
    }
    if (rv == 0) {
        flip_infof("raft: bootstrapped a %u-node cluster", n->config.n_members);
    }
    return rv;
}

/* ---- a dead leader process found by its refused port ---------------------
 *
 * A leader that is only slow (its loop stalled, its host busy: on this
 * 2-core machine a node can wait a few hundred ms for a CPU) must keep its
 * followers, or a short election timeout elects spuriously under load; a
 * leader whose process died (kill -9, a crash, a fail-stop abort) should
 * be replaced at once. The kernel tells the two apart: the dead process's
 * listening port refuses connections, a stalled one's still accepts (the
 * kernel completes the handshake without it). So once the leader has been
 * silent for PROBE_SILENT_HEARTBEATS heartbeats, a follower connects to
 * its raft address, and again each time the silence doubles, until it
 * reaches an election timeout: a process killed with -9 keeps its
 * sockets open while the kernel tears down its memory and AIO contexts
 * (measured: still accepting 25 ms after the signal), so one probe is
 * not enough. Accepted: the connection is closed at once (raft_uv drops a
 * peer that sends no handshake) and the follower waits as before. Refused: the
 * leader process is gone; the follower gives it up (raft_clock_ahead), the
 * first one at once and the others after half an election timeout per rank, so
 * that two followers do not campaign in the same tick and split the vote;
 * asked for a vote meanwhile, a follower that saw the refusal gives the
 * leader up at once (give_up_silent_leader). A host that is down or cut
 * off refuses nothing (the connect goes unanswered, and is dropped after
 * an election timeout): then the election timeout decides, as before. */
#define PROBE_SILENT_HEARTBEATS 3

struct node_probe
{
    uv_tcp_t tcp;
    uv_connect_t req;
    struct node *node; /* NULL once the node dropped it */
    uint64_t leader_id;
};

static void probe_closed(uv_handle_t *h)
{
    flip_free(h->data);
}

static void probe_drop(struct node *n)
{
    struct node_probe *p = n->probe;

    if (p == NULL) {
        return;
    }
    n->probe = NULL;
    p->node = NULL;
    if (!uv_is_closing((uv_handle_t *)&p->tcp)) {
        uv_close((uv_handle_t *)&p->tcp, probe_closed); /* cancels */
    }
}

static void leader_gone(struct node *n, uint64_t id, uint64_t now)
{
    unsigned rank = 0;

    for (unsigned i = 0; i < n->config.n_members; i++) {
        uint64_t m = n->config.members[i].id;
        if (m != id && m < n->config.id) {
            rank++;
        }
    }
    n->dead_leader = id;
    n->give_up_at = now + (uint64_t)rank * n->config.election_ms / 2u;
    n->n_refused++;
    flip_infof(
        "raft: leader %llu silent for %llu ms and its raft port "
        "refuses connections: its process is gone; giving it up in "
        "%llu ms",
        (unsigned long long)id, (unsigned long long)(now - n->leader_heard_at),
        (unsigned long long)(n->give_up_at - now));
}

static void probe_connected(uv_connect_t *req, int status)
{
    struct node_probe *p = req->data;
    struct node *n = p->node;

    if (n != NULL) {
        n->probe = NULL;
        p->node = NULL;
        if (status == UV_ECONNREFUSED && !n->closing &&
            n->leader_id == p->leader_id &&
            raft_state(&n->raft) == RAFT_FOLLOWER) {
            leader_gone(n, p->leader_id, uv_now(n->loop));
        }
    }
    if (!uv_is_closing((uv_handle_t *)&p->tcp)) {
        uv_close((uv_handle_t *)&p->tcp, probe_closed);
    }
}

static void probe_start(struct node *n, uint64_t now)
{
    const struct node_member *m = node_member_by_id(n, n->leader_id);
    struct sockaddr_in sa;
    struct node_probe *p;
    char host[NODE_ADDR_MAX];
    const char *colon;

    n->probed_at = now;
    if (m == NULL || (colon = strrchr(m->raft_address, ':')) == NULL ||
        (size_t)(colon - m->raft_address) >= sizeof host) {
        return;
    }
    memcpy(host, m->raft_address, (size_t)(colon - m->raft_address));
    host[colon - m->raft_address] = '\0';
    if (uv_ip4_addr(host, atoi(colon + 1), &sa) != 0 ||
        (p = flip_calloc(1, sizeof *p)) == NULL) {
        return;
    }
    uv_tcp_init(n->loop, &p->tcp);
    p->tcp.data = p;
    p->req.data = p;
    p->node = n;
    p->leader_id = n->leader_id;
    if (uv_tcp_connect(&p->req, &p->tcp, (const struct sockaddr *)&sa,
                       probe_connected) != 0) {
        uv_close((uv_handle_t *)&p->tcp, probe_closed);
        return;
    }
    n->probe = p;
    n->n_probes++;
}

static void probe_tick(struct node *n, int role, uint64_t now)
{
    if (n->probe != NULL && now - n->probed_at > n->config.election_ms) {
        probe_drop(n); /* unanswered: a host down or cut off */
    }
    if (role != RAFT_FOLLOWER || n->leader_id == 0) {
        return;
    }
    if (n->give_up_at != 0 && now >= n->give_up_at) {
        n->give_up_at = 0;
        if (n->dead_leader == n->leader_id) {
            raft_clock_ahead(n, now);
            flip_infof("raft: giving dead leader %llu up at the next tick",
                       (unsigned long long)n->leader_id);
        }
    }
    if (n->probe_heard_at != n->leader_heard_at) {
        /* heard from it since the last probe: a new silence */
        n->probe_heard_at = n->leader_heard_at;
        n->probe_after =
            (uint64_t)PROBE_SILENT_HEARTBEATS * n->config.heartbeat_ms;
    }
    if (n->probe == NULL && n->dead_leader != n->leader_id &&
        now - n->leader_heard_at >= n->probe_after &&
        now - n->leader_heard_at < n->config.election_ms) {
        n->probe_after *= 2;
        probe_start(n, now);
    }
}

/* ---- raft_io entry points of the shim (raft/ioshim.h) ---------------- */

static struct ioshim *shim_of(struct raft_io *io)
{
    return &CONTAINER_OF(io, struct node, io)->shim;
}

static int shim_send(struct raft_io *io,
                     struct raft_io_send *req,
                     const struct raft_message *m,
                     raft_io_send_cb cb)
{
    return ioshim_send(shim_of(io), req, m, cb);
}

/* ---- a silent leader given up when a peer asks for a vote --------------
 *
 * libraft 0.22.1 refuses every vote, pre-votes included, while this
 * follower still names a leader (recvRequestVote: current_leader.id != 0),
 * however long that leader has been silent, and names it until its own
 * randomized election timeout (one to two --election-ms) fires. So after
 * a leader dies, the follower whose timer fires first is refused by the
 * other, waits a whole new timeout, and the election only succeeds once
 * the second follower's timer fires too: a kill -9 of the leader costs the
 * later of two timeouts (about 1.67 x --election-ms on average) instead of
 * the earlier (1.33 x). The Raft thesis (4.2.3) keeps a vote from a
 * follower only "within the minimum election timeout of hearing from a
 * current leader". So when a peer asks this follower for a vote and the
 * leader it names has been silent for an election timeout (less one
 * heartbeat, the spread between the followers' last messages), or whose
 * raft port it found refusing (the probe above), the node moves raft's
 * clock (io->time, which is all libraft reads) forward by two
 * election timeouts: at its next tick (within --heartbeat-ms) raft's own
 * timer has expired, it gives the leader up and campaigns, and the two
 * followers then elect one of them at once. Nothing else changes: raft's
 * clock only ever moves forward, votes are granted by libraft's own rules,
 * and a leader that is heard from keeps its followers (a peer cut off
 * from a live leader does not move them). */

static raft_time node_raft_time(struct raft_io *io)
{
    struct node *n = CONTAINER_OF(io, struct node, io);

    return n->loop_time(io) + n->time_ahead;
}

/* Raft's timer expires at its next tick: two election timeouts are past
 * the longest randomized timeout, whatever the silence so far. */
static void raft_clock_ahead(struct node *n, uint64_t now)
{
    n->time_ahead += 2u * (uint64_t)n->config.election_ms;
    n->time_ahead_at = now;
}

static void give_up_silent_leader(struct node *n, const struct raft_message *m)
{
    uint64_t now = uv_now(n->loop);
    uint64_t election = n->config.election_ms;
    uint64_t silent = now - n->leader_heard_at;

    if (m->server_id == n->leader_id) {
        n->leader_heard_at = now;
        n->dead_leader = 0; /* it answers after all (restarted) */
        n->give_up_at = 0;
        return;
    }
    if (m->type != RAFT_REQUEST_VOTE || n->leader_id == 0 ||
        raft_state(&n->raft) != RAFT_FOLLOWER ||
        (silent + n->config.heartbeat_ms < election &&
         n->dead_leader != n->leader_id) ||
        (n->time_ahead_at != 0 && now - n->time_ahead_at < election)) {
        return;
    }
    raft_clock_ahead(n, now);
    n->n_gave_up++;
    flip_infof(
        "raft: node %llu asks for a %svote and leader %llu has been "
        "silent for %llu ms: giving it up at the next tick",
        (unsigned long long)m->server_id,
        m->request_vote.pre_vote ? "pre-" : "",
        (unsigned long long)n->leader_id, (unsigned long long)silent);
}

static void shim_recv(struct raft_io *io, struct raft_message *m)
{
    struct node *n = CONTAINER_OF(io, struct node, io);

    note_leader_commit(n, m);
    note_follower_log(n, m);
    give_up_silent_leader(n, m);
    ioshim_recv(shim_of(io), m);
}

static void shim_tick(struct raft_io *io)
{
    ioshim_tick(shim_of(io));
}

static int shim_start(struct raft_io *io,
                      unsigned msecs,
                      raft_io_tick_cb tick,
                      raft_io_recv_cb recv)
{
    return ioshim_start(shim_of(io), msecs, tick, recv, shim_tick, shim_recv);
}

static int shim_load(struct raft_io *io,
                     raft_term *term,
                     raft_id *voted_for,
                     struct raft_snapshot **snapshot,
                     raft_index *start_index,
                     struct raft_entry *entries[],
                     size_t *n_entries)
{
    return ioshim_load(shim_of(io), term, voted_for, snapshot, start_index,
                       entries, n_entries);
}

static int shim_truncate(struct raft_io *io, raft_index index)
{
    return ioshim_truncate(shim_of(io), index);
}

static int shim_append(struct raft_io *io,
                       struct raft_io_append *req,
                       const struct raft_entry entries[],
                       unsigned n,
                       raft_io_append_cb cb)
{
    return ioshim_append(shim_of(io), req, entries, n, cb);
}

static int shim_snapshot_put(struct raft_io *io,
                             unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb)
{
    return ioshim_snapshot_put(shim_of(io), trailing, req, snapshot, cb);
}

static int shim_snapshot_get(struct raft_io *io,
                             struct raft_io_snapshot_get *req,
                             raft_io_snapshot_get_cb cb)
{
    return ioshim_snapshot_get(shim_of(io), req, cb);
}

/* libraft refuses every write and barrier (RAFT_NOSPACE) while a majority
 * of voters report less reserved log space than its capacity threshold
 * (4 MiB by default). raft_uv 0.22 reports that space in a 16-bit KiB
 * counter, (unsigned short)(bytes / 1024), where bytes is its prepared
 * segments (up to 2) plus the room left in the open ones (up to 2 while one
 * is being finished): up to 4 segments. With segments of 16 MiB or more the
 * counter wraps and can read near 0 on a node with plenty of room, and
 * every node's log fills at the same rate, so all of them cross that point
 * together and writes stop for good (known-issues #14). Below 8 MiB a
 * healthy node's 2 segments can read under 4 MiB. Only in between does the
 * check mean what it says ("no segment could be prepared": a full disk,
 * answered NO_SPACE); elsewhere it is off. */
unsigned short node_capacity_threshold(size_t segment_size)
{
    const size_t mib = 1024u * 1024u;
    size_t size = segment_size != 0 ? segment_size : 8u * mib;

    if (size < 8u * mib || size >= 16u * mib) {
        return 0;
    }
    return 4u * 1024u; /* libraft's default: 4 MiB, in KiB */
}

/* After raft_init (which may call into io) and before raft_start. */
static void shim_install(struct node *n)
{
    ioshim_init(&n->shim, &n->raft, &n->io);
    n->loop_time = n->io.time;
    n->io.time = node_raft_time;
    n->io.send = shim_send;
    n->io.start = shim_start;
    n->io.snapshot_put = shim_snapshot_put;
    n->io.snapshot_get = shim_snapshot_get;
    n->io.load = shim_load;
    n->io.truncate = shim_truncate;
    n->io.append = shim_append;
    /* a truncation rewrites at most a segment and opens the next one */
    ioshim_set_room(
        &n->shim, n->raft_dir,
        2u * (n->config.segment_size != 0 ? (uint64_t)n->config.segment_size
                                          : UINT64_C(8) * 1024u * 1024u));
}

/* raft_close's callback on a failed node_init: io and transport have
 * stopped, so their memory can go (raft_close itself frees neither). */
static void init_failed_closed(struct raft *r)
{
    struct node *n = r->data;

    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->peers.transport);
    n->init_closed = 1;
}

/* A peer reached again after refused connects: a restarted follower (the
 * leader's side), a leader back up (the others'). The line says how long
 * the peer went unreached and how many tries that took, against the retry
 * delay raft_uv was given: test_peer_reconnect reads it. */
static void peer_reached(struct peertcp *p,
                         raft_id id,
                         unsigned refused,
                         uint64_t waited_ms)
{
    struct node *n = CONTAINER_OF(p, struct node, peers);

    flip_infof(
        "raft: peer %llu reached after %u refused connects in %llu ms "
        "(retry delay %u ms)",
        (unsigned long long)id, refused, (unsigned long long)waited_ms,
        n->retry_delay_ms);
}

int node_init(struct node *n, uv_loop_t *loop, const struct node_config *cfg)
{
    char fsm_dir[600];
    const struct node_member *self;
    const char *bind;
    unsigned seed = 0;
    int rv;

    memset(n, 0, sizeof *n);
    n->loop = loop;
    n->config = *cfg;
    self = node_member_by_id(n, cfg->id);
    if (self == NULL) {
        snprintf(n->errmsg, sizeof n->errmsg,
                 "node id %llu is not in the cluster list",
                 (unsigned long long)cfg->id);
        return FLIP_INVALID;
    }
    if (cfg->heartbeat_ms == 0 || cfg->heartbeat_ms >= cfg->election_ms) {
        /* libraft checks this with an assert compiled out of Debian's build */
        snprintf(n->errmsg, sizeof n->errmsg,
                 "heartbeat (%u ms) must be below the election timeout (%u ms)",
                 cfg->heartbeat_ms, cfg->election_ms);
        return FLIP_INVALID;
    }
    snprintf(fsm_dir, sizeof fsm_dir, "%s/fsm", cfg->data_dir);
    snprintf(n->raft_dir, sizeof n->raft_dir, "%s/raft", cfg->data_dir);
    if (mkdir_p(cfg->data_dir) != FLIP_OK || mkdir_p(fsm_dir) != FLIP_OK ||
        mkdir_p(n->raft_dir) != FLIP_OK) {
        snprintf(n->errmsg, sizeof n->errmsg, "cannot create %s: %s",
                 cfg->data_dir, strerror(errno));
        return FLIP_IOERR;
    }
    rv = store_open(&n->store, fsm_dir, store_mapsize(cfg->max_store_bytes));
    if (rv != FLIP_OK) {
        snprintf(n->errmsg, sizeof n->errmsg, "cannot open store in %s: %s",
                 fsm_dir, flip_strerror(rv));
        return rv;
    }
    fsm_init(&n->fsm, n->store);
    n->fsm.gate = snapshot_gate;
    n->snapshot_hold_off = getenv("FLIP_NO_SNAPSHOT_HOLD") != NULL;
    n->fsm.gate_data = n;
    n->peers.transport.version = 1; /* 0.22: RAFT_INVALID otherwise */
    rv = raft_uv_tcp_init(&n->peers.transport, loop);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft transport: %s",
                 raft_strerror(rv));
        goto err_after_store;
    }
    /* raft_uv_tcp listens on raft's own address unless told otherwise, and
     * ours is an address field (RAFT/CLIENT): always name the port */
    bind = cfg->bind_address != NULL ? cfg->bind_address : self->raft_address;
    rv = raft_uv_tcp_set_bind_address(&n->peers.transport, bind);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft bind address %s: %s", bind,
                 raft_strerror(rv));
        raft_uv_tcp_close(&n->peers.transport);
        goto err_after_store;
    }
    peertcp_wrap(&n->peers, loop, peertcp_user_timeout_ms(cfg->election_ms));
    n->peers.reached_cb = peer_reached;
    rv = raft_uv_init(&n->io, loop, n->raft_dir, &n->peers.transport);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft io in %s: %s", n->raft_dir,
                 n->io.errmsg);
        goto err_after_transport;
    }
    n->retry_delay_ms =
        peertcp_retry_delay_ms(cfg->heartbeat_ms, cfg->election_ms);
    raft_uv_set_connect_retry_delay(&n->io, n->retry_delay_ms);
    if (cfg->segment_size != 0) {
        raft_uv_set_segment_size(&n->io, cfg->segment_size);
    }
    addrfield_encode(n->self_field, self->raft_address, self->client_address);
    rv = raft_init(&n->raft, &n->io, &n->fsm.raft_fsm, cfg->id, n->self_field);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft init: %s",
                 raft_errmsg(&n->raft));
        goto err_after_io;
    }
    n->fsm.raft = &n->raft;
    /* below the shim, so it counts a local snapshot from its start */
    fsm_offload_snapshots(&n->fsm, loop, &n->io);
    shim_install(n);
    raft_set_election_timeout(&n->raft, cfg->election_ms);
    raft_set_heartbeat_timeout(&n->raft, cfg->heartbeat_ms);
    raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing);
    raft_set_pre_vote(&n->raft, true);
    raft_set_capacity_threshold(&n->raft,
                                node_capacity_threshold(cfg->segment_size));
    if (getrandom(&seed, sizeof seed, 0) == (ssize_t)sizeof seed) {
        raft_seed(&n->raft, seed);
    }
    /* a joining node's configuration comes from the leader that adds it */
    rv = cfg->join ? 0 : bootstrap(n);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft bootstrap: %s",
                 raft_strerror(rv));
        goto err_after_raft;
    }
    return FLIP_OK;

err_after_raft:
    /* raft_init succeeded: raft_close stops the io (and its transport) on
     * the loop, and only then may they be freed (init_failed_closed).
     * Nothing else of ours is on the loop yet, and raft has not started, so
     * a few turns finish it; bounded all the same. */
    n->closing = 1;
    n->raft.data = n;
    raft_close(&n->raft, init_failed_closed);
    for (int turns = 0; turns < 1000 && !n->init_closed; turns++) {
        uv_run(loop, UV_RUN_ONCE);
    }
    store_close(n->store);
    n->store = NULL;
    return errmap_from_raft(rv);
err_after_io:
    raft_uv_close(&n->io);
err_after_transport:
    raft_uv_tcp_close(&n->peers.transport);
err_after_store:
    store_close(n->store);
    n->store = NULL;
    return errmap_from_raft(rv);
}

int node_start(struct node *n)
{
    int rv = raft_start(&n->raft);

    if (rv != 0) {
        /* raft leaves its message empty when it cannot listen (the raft
         * port taken): name the address and the code at least */
        const char *why = raft_errmsg(&n->raft);
        snprintf(n->errmsg, sizeof n->errmsg, "raft start on %s: %s",
                 n->config.bind_address != NULL
                     ? n->config.bind_address
                     : node_member_by_id(n, n->config.id)->raft_address,
                 why[0] != '\0' ? why : raft_strerror(rv));
        return errmap_from_raft(rv);
    }
    n->role = raft_state(&n->raft);
    n->last_contact = uv_now(n->loop);
    n->last_tick = uv_now(n->loop);
    hold_snapshots(n, uv_now(n->loop));
    uv_timer_init(n->loop, &n->monitor);
    n->monitor_started = 1;
    n->monitor.data = n;
    uv_timer_start(&n->monitor, monitor_tick, MONITOR_MS, MONITOR_MS);
    flip_infof("raft: started node %llu at %s, applied index %llu",
               (unsigned long long)n->config.id,
               node_member_by_id(n, n->config.id)->raft_address,
               (unsigned long long)store_applied_index(n->store));
    return FLIP_OK;
}

static void monitor_closed(uv_handle_t *h)
{
    struct node *n = h->data;
    void (*cb)(struct node *) = n->close_cb;

    store_close(n->store);
    n->store = NULL;
    flip_infof("raft: node closed");
    if (cb != NULL) {
        cb(n);
    }
}

static void raft_closed(struct raft *r)
{
    struct node *n = r->data;

    /* io and transport are fully stopped once raft's close callback runs */
    ioshim_close(&n->shim);
    flip_infof(
        "raft: libraft workarounds used: %llu snapshot terms fixed, "
        "%llu installs held back, %llu ignored installs kept, %llu "
        "answers repeated, %llu truncations checked for room",
        (unsigned long long)n->shim.n_terms_fixed,
        (unsigned long long)n->shim.n_deferred,
        (unsigned long long)n->shim.n_freed,
        (unsigned long long)n->shim.n_repeats,
        (unsigned long long)n->shim.n_room_checks);
    flip_infof(
        "raft: InstallSnapshot: %llu received; %llu snapshots loaded "
        "and %llu sent to followers, %llu rejections of followers "
        "waiting for one turned into contact, %llu ticks a quiet "
        "one was kept (known-issues #19)",
        (unsigned long long)n->shim.n_installs_in,
        (unsigned long long)n->shim.n_loads,
        (unsigned long long)n->shim.n_installs_out,
        (unsigned long long)n->shim.n_absorbed,
        (unsigned long long)n->shim.n_kept);
    flip_infof(
        "raft: TCP_NODELAY and a %u ms user timeout set on %llu peer "
        "connections (%llu refused)",
        n->peers.user_timeout_ms, (unsigned long long)n->peers.n_nodelay,
        (unsigned long long)n->peers.n_failed);
    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->peers.transport);
    if (n->monitor_started) {
        uv_close((uv_handle_t *)&n->monitor, monitor_closed);
    } else {
        n->monitor.data = n;
        monitor_closed((uv_handle_t *)&n->monitor);
    }
}

static void drain_tick(uv_timer_t *t);

static void do_close(struct node *n)
{
    if (n->raft_closing) {
        return;
    }
    n->raft_closing = 1;
    n->closing = 1;
    probe_drop(n);
    if (n->transfer_timer_started) {
        uv_close((uv_handle_t *)&n->transfer_timer, NULL);
        n->transfer_timer_started = 0;
    }
    if (n->monitor_started) {
        uv_timer_stop(&n->monitor);
    }
    n->raft.data = n;
    raft_close(&n->raft, raft_closed);
}

static void transfer_done(struct raft_transfer *req)
{
    struct node *n = req->data;
    raft_id id = 0;
    const char *addr = NULL;

    if (n->raft_closing) {
        return; /* fired by raft_close after our timeout */
    }
    raft_leader(&n->raft, &id, &addr);
    flip_infof("raft: leadership transfer %s (leader now %llu)",
               id != 0 && id != n->config.id ? "done" : "did not complete",
               (unsigned long long)id);
    if (n->outstanding != NULL && n->outstanding(n->outstanding_data)) {
        /* let the new leader commit what we proposed, and apply tell us */
        n->drain_deadline = uv_now(n->loop) + n->config.election_ms;
        uv_timer_stop(&n->transfer_timer);
        uv_timer_start(&n->transfer_timer, drain_tick, 5, 5);
        return;
    }
    do_close(n);
}

static void drain_tick(uv_timer_t *t)
{
    struct node *n = t->data;

    if (!n->outstanding(n->outstanding_data) ||
        uv_now(n->loop) >= n->drain_deadline) {
        do_close(n);
    }
}

/* A transfer to a peer that is itself stopping never completes; bound it. */
static void transfer_timeout(uv_timer_t *t)
{
    struct node *n = t->data;
    flip_infof("raft: leadership transfer timed out; closing anyway");
    do_close(n);
}

/* A planned stop first lets what this leader proposed commit while it
 * still leads (new work is refused meanwhile), bounded by an election
 * timeout, and only then hands leadership over: libraft 0.22.1 sends
 * TimeoutNow to a target that is still receiving entries, which ignores
 * it, and the transfer then hangs for an election timeout; writes still
 * in flight when it gave up failed LEADERSHIP_LOST (test_ops_writes_stop). */
static void predrain_tick(uv_timer_t *t)
{
    struct node *n = t->data;
    int leader = raft_state(&n->raft) == RAFT_LEADER;

    if (leader && n->outstanding != NULL &&
        n->outstanding(n->outstanding_data) &&
        uv_now(n->loop) < n->drain_deadline) {
        return;
    }
    uv_timer_stop(t);
    n->transfer.data = n;
    if (leader &&
        raft_transfer(&n->raft, &n->transfer, 0, transfer_done) == 0) {
        uv_timer_start(t, transfer_timeout, n->config.election_ms, 0);
        return;
    }
    /* no longer leader (or no transfer possible): what it proposed
     * drains as after a transfer */
    if (n->outstanding != NULL && n->outstanding(n->outstanding_data)) {
        n->drain_deadline = uv_now(n->loop) + n->config.election_ms;
        uv_timer_start(t, drain_tick, 5, 5);
        return;
    }
    do_close(n);
}

void node_close(struct node *n, void (*cb)(struct node *n))
{
    n->close_cb = cb;
    if (raft_state(&n->raft) == RAFT_LEADER && n->config.n_members > 1) {
        n->closing = 1; /* refuse new work while the stop runs */
        uv_timer_init(n->loop, &n->transfer_timer);
        n->transfer_timer.data = n;
        n->transfer_timer_started = 1;
        n->drain_deadline = uv_now(n->loop) + n->config.election_ms;
        uv_timer_start(&n->transfer_timer, predrain_tick, 0, 5);
        return;
    }
    do_close(n);
}
