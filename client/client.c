/* The flip_client handle: endpoint table, leader tracking, retry policy,
 * and the flag operations of client/flip.h built on client/wire.
 *
 * Happy path of one operation (client_call): pick a connection (the known
 * leader for writes and linearizable reads, else the last node that
 * answered), open it if needed, send, get an OK response, remember who
 * answered.
 *
 * Failure modes, and why each is handled the way it is:
 *   - transport failure before the request was fully written: the server
 *     cannot have acted on it, so any operation moves to the next
 *     endpoint; after a whole round of failures, back off.
 *   - transport failure after it was written: a read just moves on; a
 *     write with a request id (CLIENT_WRITE_ONCE: every flip_set and
 *     flip_delete) is resent with the same id, since the cluster applies
 *     an id at most once and answers a repeat with the first outcome; a
 *     write without one stops with "outcome unknown".
 *   - NOT_LEADER with an address: go there, learning the address if it is
 *     new. A few redirects in a row are normal during an election; past
 *     one per endpoint they back off so two nodes with stale views cannot
 *     bounce us in a tight loop.
 *   - UNAVAILABLE, NO_SPACE, NOT_LEADER without address: nothing
 *     happened, back off and try the next node.
 *   - LEADERSHIP_LOST, INTERNAL or an unknown status: a read, and a write
 *     with a request id, back off and retry; a write without one stops
 *     with "outcome unknown". An attempt of a write with an id waits at
 *     most CLIENT_ATTEMPT_MS, then the write is resent (a paused leader
 *     must not hold the whole deadline). Only when the deadline passes
 *     with the outcome still unknown does the caller see it.
 *   - any other status: final; mapped by status_to_flip.
 * These are the rules of docs/protocol.md section 6.
 * The deadline bounds everything, sleeps included. */
#include "client/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client/endpoints.h"
#include "lib/clock.h"
#include "lib/heap.h"
#include "proto/codec.h"
#include "proto/status.h"

/* ---- errors ------------------------------------------------------------ */

void client_set_err(struct flip_client *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
}

const char *flip_client_errmsg(const struct flip_client *c)
{
    return c->errmsg;
}

uint64_t flip_client_conflict_revision(const struct flip_client *c)
{
    return c->conflict_revision;
}

enum flip_type flip_client_conflict_type(const struct flip_client *c)
{
    return c->conflict_type;
}

/* ---- request ids ------------------------------------------------------- */

/* 128 random bits: two client processes must never share an id, or one's
 * write would be answered with the other's outcome. */
static void new_client_id(struct flip_client *c)
{
    size_t got = 0;

    while (got < sizeof c->client_id) {
        ssize_t n = getrandom(c->client_id + got, sizeof c->client_id - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    c->id_pid = (long)getpid();
    if (got < sizeof c->client_id) {
        /* no kernel randomness: clock, pid and address, mixed */
        uint64_t a =
            c->rng ^ ((uint64_t)clock_mono_ms() * 0x9e3779b97f4a7c15ull);
        uint64_t b = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
        memcpy(c->client_id, &a, 8);
        memcpy(c->client_id + 8, &b, 8);
    }
}

void client_next_request_id(struct flip_client *c, Flip__RequestId *rid)
{
    if (c->id_pid != (long)getpid()) {
        new_client_id(c);
        c->write_seq = 0;
    }
    flip__request_id__init(rid);
    rid->has_client_id = 1;
    rid->client_id.data = c->client_id;
    rid->client_id.len = sizeof c->client_id;
    rid->has_seq = 1;
    rid->seq = ++c->write_seq;
}

/* ---- lifecycle and endpoint table -------------------------------------- */

int flip_client_new(struct flip_client **out,
                    const char *endpoints_csv,
                    const char *client_name)
{
    struct flip_client *c = NULL;
    int rv;

    *out = NULL;
    if (endpoints_csv == NULL) {
        return FLIP_INVALID;
    }
    c = flip_calloc(1, sizeof *c);
    if (c == NULL) {
        return FLIP_NOMEM;
    }
    c->leader = CLIENT_NONE;
    c->timeout_ms = CLIENT_TIMEOUT_MS;
    rv = endpoints_parse(endpoints_csv, c->eps, CLIENT_MAX_GIVEN, &c->n_eps);
    if (rv != FLIP_OK) {
        goto err;
    }
    c->n_given = c->n_eps;
    c->next_evict = c->n_given;
    if (client_name != NULL) {
        c->name = flip_strdup(client_name);
        if (c->name == NULL) {
            rv = FLIP_NOMEM;
            goto err;
        }
    }
    c->rng = endpoints_seed(c);
    new_client_id(c);
    *out = c;
    return FLIP_OK;

err:
    flip_client_free(c);
    return rv;
}

void flip_client_free(struct flip_client *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_eps; i++) {
        wire_destroy(&c->eps[i]);
    }
    flip_free(c->name);
    flip_free(c);
}

void flip_client_set_timeout(struct flip_client *c, unsigned ms)
{
    c->timeout_ms = ms == 0 ? CLIENT_TIMEOUT_MS : ms;
}

size_t client_find_endpoint(const struct flip_client *c, const char *addr)
{
    for (size_t i = 0; i < c->n_eps; i++) {
        if (strcmp(c->eps[i].addr, addr) == 0) {
            return i;
        }
    }
    return CLIENT_NONE;
}

/* Index of `addr` in the table, adding it in a learned slot if new; never
 * recycles slot `busy`. CLIENT_NONE when addr is malformed or on NOMEM. */
static size_t learn_endpoint(struct flip_client *c,
                             const char *addr,
                             size_t busy)
{
    struct wire fresh;
    size_t i = client_find_endpoint(c, addr);

    if (i != CLIENT_NONE) {
        return i;
    }
    if (wire_init(&fresh, addr) != FLIP_OK) {
        return CLIENT_NONE;
    }
    if (c->n_eps < CLIENT_MAX_EPS) {
        i = c->n_eps++;
    } else {
        i = c->next_evict;
        if (i == busy) {
            i = i + 1 < CLIENT_MAX_EPS ? i + 1 : c->n_given;
        }
        c->next_evict = i + 1 < CLIENT_MAX_EPS ? i + 1 : c->n_given;
        wire_destroy(&c->eps[i]);
        if (c->leader == i) {
            c->leader = CLIENT_NONE;
        }
    }
    c->eps[i] = fresh;
    return i;
}

/* ---- the retry loop ---------------------------------------------------- */

struct retry
{
    int64_t deadline;
    unsigned backoff_ms; /* next sleep before jitter; 0 before the first */
    size_t failures;     /* transport failures since the last answer */
    unsigned hops;       /* redirects followed */
    int last_rv;         /* what to return if the deadline passes now */
    unsigned attempts;   /* CLIENT_WRITE_ONCE attempts sent */
    /* A write with a request id was sent and not answered for certain:
     * past the deadline its outcome is unknown, whatever came after. */
    int unknown_rv;
};

/* Sleeps a jittered backoff. FLIP_TIMEOUT when the deadline has passed. */
static int back_off(struct flip_client *c, struct retry *r)
{
    struct timespec ts;
    int64_t left = r->deadline - clock_mono_ms();
    int64_t ms;

    if (left <= 0) {
        return FLIP_TIMEOUT;
    }
    ms = endpoints_backoff(&c->rng, &r->backoff_ms, CLIENT_BACKOFF_MIN_MS,
                           CLIENT_BACKOFF_MAX_MS);
    if (ms > left) {
        ms = left;
    }
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return FLIP_OK;
}

static size_t pick(const struct flip_client *c, enum client_op kind)
{
    if (kind != CLIENT_STALE_READ && c->leader != CLIENT_NONE) {
        return c->leader;
    }
    return c->last_good;
}

/* Endpoint i failed us: stop preferring it. */
static void forget(struct flip_client *c, size_t i)
{
    if (c->leader == i) {
        c->leader = CLIENT_NONE;
    }
    if (c->last_good == i) {
        c->last_good = (i + 1) % c->n_eps;
    }
}

const char *client_err_text(const Flip__Error *e)
{
    if (e->message != NULL && e->message[0] != '\0') {
        return e->message;
    }
    return flip_strerror(status_to_flip(e->status));
}

/* What to do with an error status (protocol.md section 6): FLIP_AGAIN to
 * go round the loop again, FLIP_TIMEOUT if the deadline passed while
 * backing off, else the final code. */
static int on_status(struct flip_client *c,
                     struct retry *r,
                     enum client_op kind,
                     size_t i,
                     const Flip__Error *e)
{
    const char *addr = c->eps[i].addr;
    size_t j;

    switch (e->status) {
    case FLIP__STATUS__NOT_LEADER:
        if (e->leader_address != NULL && e->leader_address[0] != '\0') {
            j = learn_endpoint(c, e->leader_address, i);
            if (j != CLIENT_NONE && j != i) {
                c->leader = j;
                client_set_err(c, "%s: not leader; leader is %s", addr,
                               e->leader_address);
                if (++r->hops <= c->n_eps) {
                    return FLIP_AGAIN;
                }
                return back_off(c, r) == FLIP_OK ? FLIP_AGAIN : FLIP_TIMEOUT;
            }
        }
        client_set_err(c, "%s: not leader, and no leader known", addr);
        r->last_rv = FLIP_UNAVAILABLE;
        break;
    case FLIP__STATUS__UNAVAILABLE:
        client_set_err(c, "%s: %s", addr, client_err_text(e));
        r->last_rv = FLIP_UNAVAILABLE;
        break;
    case FLIP__STATUS__NO_SPACE:
        /* Refused before anything was proposed; an operator may free
         * space within the deadline. */
        client_set_err(c, "%s: %s", addr, client_err_text(e));
        r->last_rv = FLIP_NOSPACE;
        break;
    case FLIP__STATUS__TYPE_MISMATCH:
        c->conflict_revision =
            e->has_current_revision ? e->current_revision : 0;
        if (e->current_type == NULL ||
            flip_type_parse(e->current_type, &c->conflict_type) != FLIP_OK) {
            c->conflict_type = FLIP_TYPE_AUTO;
        }
        client_set_err(c, "%s", client_err_text(e));
        return FLIP_TYPEMISMATCH;
    case FLIP__STATUS__STORE_FULL:
        client_set_err(c, "%s", client_err_text(e));
        return FLIP_STOREFULL;
    case FLIP__STATUS__CAS_CONFLICT:
        c->conflict_revision =
            e->has_current_revision ? e->current_revision : 0;
        client_set_err(c, "%s", client_err_text(e));
        return FLIP_CONFLICT;
    case FLIP__STATUS__NOT_FOUND:
    case FLIP__STATUS__INVALID_ARGUMENT:
    case FLIP__STATUS__TOO_LARGE:
    case FLIP__STATUS__UNSUPPORTED_VERSION:
    case FLIP__STATUS__UNKNOWN_TYPE:
        client_set_err(c, "%s", client_err_text(e));
        return status_to_flip(e->status);
    case FLIP__STATUS__PROTOCOL_ERROR:
        wire_close(&c->eps[i]); /* the server is closing it anyway */
        client_set_err(c, "%s: %s", addr, client_err_text(e));
        return FLIP_PROTO;
    case FLIP__STATUS__LEADERSHIP_LOST:
    case FLIP__STATUS__INTERNAL:
    default: /* an unknown status counts as INTERNAL */
        if (kind == CLIENT_WRITE_ONCE) {
            /* the same id again: applied at most once, whatever happened */
            client_set_err(c,
                           "%s: %s; resending with the same request id "
                           "(outcome unknown until answered)",
                           addr, client_err_text(e));
            r->last_rv = FLIP_LEADERSHIPLOST;
            r->unknown_rv = FLIP_LEADERSHIPLOST;
            break;
        }
        if (kind == CLIENT_WRITE &&
            e->status == FLIP__STATUS__LEADERSHIP_LOST) {
            client_set_err(c,
                           "%s: leadership lost before the write committed; "
                           "it may or may not have been applied (re-read "
                           "before retrying)",
                           addr);
            return FLIP_LEADERSHIPLOST;
        }
        if (kind == CLIENT_WRITE) {
            client_set_err(c,
                           "%s: %s; the write may or may not have been "
                           "applied (re-read before retrying)",
                           addr, client_err_text(e));
            return FLIP_INTERNAL;
        }
        client_set_err(c, "%s: %s", addr, client_err_text(e));
        r->last_rv = e->status == FLIP__STATUS__LEADERSHIP_LOST
                         ? FLIP_UNAVAILABLE
                         : FLIP_INTERNAL;
        break;
    }
    /* Nothing happened on the server: try the next node after a pause. */
    forget(c, i);
    return back_off(c, r) == FLIP_OK ? FLIP_AGAIN : FLIP_TIMEOUT;
}

/* Final code once the deadline has passed; c->errmsg holds the last
 * reason, which is kept as the detail. */
static int give_up(struct flip_client *c, const struct retry *r)
{
    char last[sizeof c->errmsg];

    snprintf(last, sizeof last, "%s", c->errmsg);
    if (r->unknown_rv != FLIP_OK) {
        client_set_err(c,
                       "gave up after %u ms; the write was sent and may or "
                       "may not have been applied (resending it with the "
                       "same request id is safe): %s",
                       c->timeout_ms, last);
        return r->unknown_rv;
    }
    client_set_err(c, "gave up after %u ms: %s", c->timeout_ms,
                   last[0] != '\0' ? last : "no node answered");
    return r->last_rv != FLIP_OK ? r->last_rv : FLIP_UNAVAILABLE;
}

/* A write with a request id gives each attempt a bounded share of the
 * deadline, so it is resent elsewhere when a node stops answering. */
static int64_t attempt_deadline(enum client_op kind, const struct retry *r)
{
    unsigned shift = r->attempts < 4 ? r->attempts : 4;
    int64_t cap = clock_mono_ms() + ((int64_t)CLIENT_ATTEMPT_MS << shift);

    if (kind == CLIENT_WRITE_ONCE && cap < r->deadline) {
        return cap;
    }
    return r->deadline;
}

int client_call(struct flip_client *c,
                enum client_op kind,
                Flip__Request *req,
                Flip__Response **out)
{
    struct retry r;
    struct wire *w;
    Flip__Response *resp = NULL;
    int64_t open_deadline;
    size_t i;
    int sent;
    int rv;

    *out = NULL;
    memset(&r, 0, sizeof r);
    r.deadline = clock_mono_ms() + c->timeout_ms;
    c->errmsg[0] = '\0';
    c->conflict_revision = 0;
    c->conflict_type = FLIP_TYPE_AUTO;
    for (;;) {
        if (clock_mono_ms() >= r.deadline) {
            return give_up(c, &r);
        }
        i = pick(c, kind);
        w = &c->eps[i];
        sent = 0;
        open_deadline = clock_mono_ms() + CLIENT_CONNECT_MS;
        rv = wire_open(w, c->name,
                       open_deadline < r.deadline ? open_deadline : r.deadline);
        if (rv == FLIP_OK) {
            rv = wire_call(w, req, attempt_deadline(kind, &r), &resp, &sent);
            r.attempts += sent != 0;
        }
        /* Local or definitive failures: another node would say the same. */
        if (rv == FLIP_NOMEM || rv == FLIP_TOOBIG || rv == FLIP_UNSUPPORTED ||
            rv == FLIP_INVALID || (rv == FLIP_PROTO && sent)) {
            if (r.unknown_rv != FLIP_OK) {
                /* an earlier attempt may have applied: say so, not this */
                client_set_err(c,
                               "%s; an earlier attempt was sent, so the "
                               "write may or may not have been applied",
                               w->errmsg);
                return r.unknown_rv;
            }
            client_set_err(c, "%s", w->errmsg);
            return rv;
        }
        if (rv != FLIP_OK) {
            client_set_err(c, "%s", w->errmsg);
            r.last_rv = rv == FLIP_TIMEOUT ? FLIP_TIMEOUT : FLIP_UNAVAILABLE;
            if (kind == CLIENT_WRITE_ONCE && sent) {
                /* a late answer on this connection would be taken for the
                 * next request's: start the resend on a fresh one */
                wire_close(w);
                client_set_err(c,
                               "%s; the write was sent, resending it with "
                               "the same request id",
                               w->errmsg[0] != '\0' ? w->errmsg : "no answer");
                r.last_rv = FLIP_TIMEOUT;
                if (r.unknown_rv == FLIP_OK) {
                    r.unknown_rv = FLIP_TIMEOUT;
                }
            }
            if (kind == CLIENT_WRITE && sent) {
                client_set_err(c,
                               "%s; the write was sent, so it may or may not "
                               "have been applied (re-read before retrying)",
                               w->errmsg);
                return rv == FLIP_TIMEOUT ? FLIP_TIMEOUT : FLIP_UNAVAILABLE;
            }
            forget(c, i);
            if (++r.failures >= c->n_eps) {
                r.failures = 0;
                if (back_off(c, &r) != FLIP_OK) {
                    return give_up(c, &r);
                }
            }
            continue;
        }
        r.failures = 0;
        if (resp->error == NULL || resp->error->status == FLIP__STATUS__OK) {
            c->last_good = i;
            if (kind != CLIENT_STALE_READ) {
                c->leader = i; /* only the leader serves these */
            }
            c->errmsg[0] = '\0';
            *out = resp;
            return FLIP_OK;
        }
        c->last_good = i; /* it answered; on_status may still move on */
        rv = on_status(c, &r, kind, i, resp->error);
        codec_response_free(resp);
        resp = NULL;
        if (rv == FLIP_TIMEOUT) {
            return give_up(c, &r);
        }
        if (rv != FLIP_AGAIN) {
            return rv;
        }
    }
}

int client_expect(struct flip_client *c,
                  const Flip__Response *resp,
                  Flip__Response__ResultCase want)
{
    if (resp->result_case != want) {
        client_set_err(c, "server answered with result %d, expected %d",
                       (int)resp->result_case, (int)want);
        return FLIP_PROTO;
    }
    return FLIP_OK;
}
