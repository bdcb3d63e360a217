/* The proposal path's libuv host; see propose_uv.h. */
#include "propose_uv.h"

#include "lib/clock.h"

static uint64_t host_now(void *data)
{
    struct propose_uv *h = data;
    return uv_now(h->node->loop);
}

/* The wall clock stamped into entries (Command.time_ms). */
static int64_t host_wall_ms(void *data)
{
    (void)data;
    return clock_real_ms();
}

static void flush_cb(uv_check_t *h)
{
    struct propose_uv *u = h->data;
    uv_check_stop(h);
    propose_fire(u->propose, PROPOSE_FLUSH);
}

static void defer_cb(uv_idle_t *h)
{
    struct propose_uv *u = h->data;
    uv_idle_stop(h);
    propose_fire(u->propose, PROPOSE_DEFER);
}

static void nudge_cb(uv_timer_t *t)
{
    struct propose_uv *u = t->data;
    propose_fire(u->propose, PROPOSE_NUDGE);
}

static void limbo_cb(uv_timer_t *t)
{
    struct propose_uv *u = t->data;
    propose_fire(u->propose, PROPOSE_LIMBO);
}

static void host_arm(void *data, enum propose_timer t, uint64_t ms)
{
    struct propose_uv *h = data;

    switch (t) {
    case PROPOSE_FLUSH:
        uv_check_start(&h->flush, flush_cb);
        break;
    case PROPOSE_DEFER:
        uv_idle_start(&h->defer, defer_cb);
        break;
    case PROPOSE_NUDGE:
        uv_timer_start(&h->nudge, nudge_cb, ms, 0);
        break;
    case PROPOSE_LIMBO:
        uv_timer_start(&h->limbo, limbo_cb, ms, 0);
        break;
    default:
        break;
    }
}

static void host_disarm(void *data, enum propose_timer t)
{
    struct propose_uv *h = data;

    switch (t) {
    case PROPOSE_FLUSH:
        uv_check_stop(&h->flush);
        break;
    case PROPOSE_DEFER:
        uv_idle_stop(&h->defer);
        break;
    case PROPOSE_NUDGE:
        uv_timer_stop(&h->nudge);
        break;
    case PROPOSE_LIMBO:
        uv_timer_stop(&h->limbo);
        break;
    default:
        break;
    }
}

static int host_closing(void *data)
{
    return ((struct propose_uv *)data)->node->closing;
}

static int host_raft_closing(void *data)
{
    return ((struct propose_uv *)data)->node->raft_closing;
}

static void host_release(void *data)
{
    struct propose_uv *h = data;

    uv_close((uv_handle_t *)&h->flush, NULL);
    uv_close((uv_handle_t *)&h->defer, NULL);
    uv_close((uv_handle_t *)&h->nudge, NULL);
    uv_close((uv_handle_t *)&h->limbo, NULL);
}

void propose_uv_init(struct propose_uv *h,
                     struct propose *pr,
                     struct node *n,
                     uint64_t keep)
{
    struct propose_env env = {
        .raft = &n->raft,
        .id = n->config.id,
        .limbo_ms = n->config.election_ms,
        .data = h,
        .now = host_now,
        .wall_ms = host_wall_ms,
        .arm = host_arm,
        .disarm = host_disarm,
        .closing = host_closing,
        .raft_closing = host_raft_closing,
        .release = host_release,
    };

    h->node = n;
    h->propose = pr;
    uv_check_init(n->loop, &h->flush);
    uv_idle_init(n->loop, &h->defer);
    uv_timer_init(n->loop, &h->nudge);
    uv_timer_init(n->loop, &h->limbo);
    h->flush.data = h;
    h->defer.data = h;
    h->nudge.data = h;
    h->limbo.data = h;
    propose_init(pr, &env, keep);
}
