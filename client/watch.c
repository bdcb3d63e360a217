/* flip_watch: starting, stopping, and the reads any thread may make; see
 * client/flip.h ("Watching flags") for the contract and watch.h for who
 * may touch which field. The thread itself is wloop.c. */
#ifdef __linux__
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: writers first */
#endif
#include "client/watch.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client/endpoints.h"
#include "client/flag.h"
#include "client/lkg.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/heap.h"

/* ---- helpers for the thread ------------------------------------------- */

void watch_lock(struct flip_watch *w)
{
    pthread_rwlock_wrlock(&w->lock);
}

void watch_unlock(struct flip_watch *w)
{
    pthread_rwlock_unlock(&w->lock);
}

void watch_notify(struct flip_watch *w)
{
    uint64_t one = 1;

    /* EAGAIN: the counter is full, i.e. already readable. */
    if (write(w->notify_fd, &one, sizeof one) < 0) {
        return;
    }
}

void watch_emit(struct flip_watch *w, struct flip_watch_event *ev)
{
    ev->state = (enum flip_watch_state)atomic_load(&w->state);
    if (ev->node == NULL) {
        ev->node = "";
    }
    if (ev->detail == NULL) {
        ev->detail = "";
    }
    if (w->on_event != NULL) {
        w->on_event(w->data, ev);
    }
}

void watch_notice(struct flip_watch *w, const char *node, const char *fmt, ...)
{
    struct flip_watch_event ev;
    char text[WATCH_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memset(&ev, 0, sizeof ev);
    ev.type = FLIP_EV_NOTICE;
    ev.revision = w->live.revision;
    ev.node = node;
    ev.detail = text;
    watch_emit(w, &ev);
}

void watch_set_state(struct flip_watch *w,
                     enum flip_watch_state st,
                     const char *node,
                     const char *fmt,
                     ...)
{
    struct flip_watch_event ev;
    char text[WATCH_MSG_MAX];
    va_list ap;

    if (atomic_load(&w->state) == (int)st) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* Under the lock, so a reader sees a value and its reason together. */
    watch_lock(w);
    atomic_store(&w->state, (int)st);
    watch_unlock(w);
    watch_notify(w);
    memset(&ev, 0, sizeof ev);
    ev.type = FLIP_EV_STATE;
    ev.revision = w->live.revision;
    ev.node = node;
    ev.detail = text;
    watch_emit(w, &ev);
}

/* ---- names ------------------------------------------------------------- */

const char *flip_watch_state_name(enum flip_watch_state state)
{
    switch (state) {
    case FLIP_WATCH_CONNECTING:
        return "connecting";
    case FLIP_WATCH_LIVE:
        return "live";
    case FLIP_WATCH_STALE:
        return "stale";
    case FLIP_WATCH_DISCONNECTED:
        return "disconnected";
    }
    return "unknown";
}

const char *flip_reason_name(enum flip_reason why)
{
    switch (why) {
    case FLIP_REASON_LIVE:
        return "live";
    case FLIP_REASON_CACHED:
        return "cached";
    case FLIP_REASON_DEFAULT:
        return "default";
    }
    return "unknown";
}

/* ---- start and stop ---------------------------------------------------- */

/* Loads the last-known-good file into `live`. Never fails the start: a
 * problem becomes the thread's first notice. */
static void load_lkg(struct flip_watch *w)
{
    char msg[LKG_MSG_MAX];
    int resumable = 0;
    int rv;

    rv = lkg_load(w->cache_path, &w->prefixes, &w->live, &resumable, msg,
                  sizeof msg);
    if (rv == FLIP_OK) {
        w->has_state = resumable;
        w->complete = resumable;
        if (!resumable) {
            /* Its revision says nothing about our prefixes: values only. */
            w->live.revision = 0;
        }
        atomic_store(&w->revision, w->live.revision);
        w->exact_from = w->live.revision;
        if (!resumable) {
            snprintf(w->start_notice, sizeof w->start_notice,
                     "last-known-good file %s was written for other "
                     "prefixes: its %zu matching flags are served as cached "
                     "until a full snapshot replaces them",
                     w->cache_path, w->live.n);
        }
        return;
    }
    if (rv == FLIP_NOTFOUND) {
        snprintf(w->start_notice, sizeof w->start_notice,
                 "no last-known-good file at %s yet", w->cache_path);
        return;
    }
    snprintf(w->start_notice, sizeof w->start_notice, "%s",
             msg[0] != '\0' ? msg : flip_strerror(rv));
}

static void destroy(struct flip_watch *w)
{
    for (size_t i = 0; i < w->n_eps; i++) {
        wire_destroy(&w->eps[i]);
    }
    wcache_clear(&w->live);
    wcache_clear(&w->staging);
    wprefixes_clear(&w->prefixes);
    buf_close(&w->lkg_buf);
    flip_free(w->name);
    flip_free(w->cache_path);
    if (w->stop_fd >= 0) {
        close(w->stop_fd);
    }
    if (w->notify_fd >= 0) {
        close(w->notify_fd);
    }
    flip_free(w);
}

static int init_lock(struct flip_watch *w)
{
    pthread_rwlockattr_t attr;
    int rv;

    if (pthread_rwlockattr_init(&attr) != 0) {
        return FLIP_NOMEM;
    }
#ifdef __GLIBC__
    /* glibc prefers readers by default: a hot read path could starve the
     * thread applying changes. */
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    rv = pthread_rwlock_init(&w->lock, &attr) == 0 ? FLIP_OK : FLIP_NOMEM;
    pthread_rwlockattr_destroy(&attr);
    return rv;
}

static int start_thread(struct flip_watch *w)
{
    sigset_t all;
    sigset_t old;
    int err;

    /* The thread inherits this mask: process signals stay with the
     * application's threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&w->thread, NULL, wloop_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err == 0 ? FLIP_OK : (err == EAGAIN ? FLIP_IOERR : FLIP_NOMEM);
}

int flip_watch_start(struct flip_watch **out,
                     const struct flip_watch_options *o)
{
    struct flip_watch *w = NULL;
    const char *why = NULL;
    int rv;

    *out = NULL;
    if (o == NULL || o->endpoints == NULL ||
        (o->n_prefixes > 0 && o->prefixes == NULL)) {
        return FLIP_INVALID;
    }
    w = flip_calloc(1, sizeof *w);
    if (w == NULL) {
        return FLIP_NOMEM;
    }
    w->stop_fd = -1;
    w->notify_fd = -1;
    w->next_pick = WATCH_MAX_EPS;
    buf_init(&w->lkg_buf);
    wcache_init(&w->live);
    wcache_init(&w->staging);
    rv = wprefixes_make(&w->prefixes, o->prefixes, o->n_prefixes, &why);
    if (rv != FLIP_OK) {
        goto err;
    }
    w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->stop_fd < 0 || w->notify_fd < 0) {
        rv = FLIP_IOERR;
        goto err;
    }
    rv = endpoints_parse(o->endpoints, w->eps, WATCH_MAX_EPS, &w->n_eps);
    for (size_t i = 0; i < w->n_eps; i++) {
        w->eps[i].cancel_fd = w->stop_fd;
    }
    if (rv != FLIP_OK) {
        goto err;
    }
    w->name =
        flip_strdup(o->client_name != NULL ? o->client_name : "flip_watch");
    w->cache_path = o->cache_path != NULL ? flip_strdup(o->cache_path) : NULL;
    if (w->name == NULL || (o->cache_path != NULL && w->cache_path == NULL)) {
        rv = FLIP_NOMEM;
        goto err;
    }
    w->cache_readonly = o->cache_readonly != 0;
    w->stale_after_opt = o->stale_after_ms;
    w->on_event = o->on_event;
    w->data = o->data;
    w->rng = endpoints_seed(w);
    atomic_store(&w->state, FLIP_WATCH_CONNECTING);
    if (w->cache_path != NULL) {
        load_lkg(w);
    }
    if (o->from_revision != 0) {
        w->live.revision = o->from_revision;
        w->exact_from = o->from_revision;
        atomic_store(&w->revision, o->from_revision);
        w->has_state = 1;
        w->complete = 0; /* only what changes after it */
    }
    rv = init_lock(w);
    if (rv != FLIP_OK) {
        goto err;
    }
    rv = start_thread(w);
    if (rv != FLIP_OK) {
        pthread_rwlock_destroy(&w->lock);
        goto err;
    }
    *out = w;
    return FLIP_OK;

err:
    destroy(w);
    return rv;
}

void flip_watch_stop(struct flip_watch *w)
{
    uint64_t one = 1;

    if (w == NULL) {
        return;
    }
    atomic_store(&w->stopping, 1);
    /* Every wait of the thread polls stop_fd too. */
    while (write(w->stop_fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
    pthread_join(w->thread, NULL);
    pthread_rwlock_destroy(&w->lock);
    destroy(w);
}

/* ---- state ------------------------------------------------------------- */

enum flip_watch_state flip_watch_state(const struct flip_watch *w)
{
    return (enum flip_watch_state)atomic_load(&w->state);
}

uint64_t flip_watch_revision(const struct flip_watch *w)
{
    return atomic_load(&w->revision);
}

int flip_watch_fd(const struct flip_watch *w)
{
    return w->notify_fd;
}

/* ---- reads ------------------------------------------------------------- */

/* Looks key up under the read lock (held by the caller): the flag if it
 * has one of the two accepted types, with its reason, else NULL. */
static const struct flip_flag *lookup(struct flip_watch *w,
                                      const char *key,
                                      enum flip_type t1,
                                      enum flip_type t2,
                                      enum flip_reason *why)
{
    const struct flip_flag *f;

    *why = FLIP_REASON_DEFAULT;
    if (key == NULL) {
        return NULL;
    }
    f = wcache_get(&w->live, key);
    if (f == NULL || (f->value.type != t1 && f->value.type != t2)) {
        return NULL;
    }
    *why = atomic_load(&w->state) == FLIP_WATCH_LIVE ? FLIP_REASON_LIVE
                                                     : FLIP_REASON_CACHED;
    return f;
}

int flip_watch_bool(struct flip_watch *w,
                    const char *key,
                    int def,
                    enum flip_reason *why)
{
    const struct flip_flag *f;
    enum flip_reason r;
    int v = def;

    pthread_rwlock_rdlock(&w->lock);
    f = lookup(w, key, FLIP_TYPE_BOOL, FLIP_TYPE_BOOL, &r);
    if (f != NULL) {
        v = f->value.u.b != 0;
    }
    pthread_rwlock_unlock(&w->lock);
    if (why != NULL) {
        *why = r;
    }
    return v;
}

int64_t flip_watch_int(struct flip_watch *w,
                       const char *key,
                       int64_t def,
                       enum flip_reason *why)
{
    const struct flip_flag *f;
    enum flip_reason r;
    int64_t v = def;

    pthread_rwlock_rdlock(&w->lock);
    f = lookup(w, key, FLIP_TYPE_INT, FLIP_TYPE_INT, &r);
    if (f != NULL) {
        v = f->value.u.i;
    }
    pthread_rwlock_unlock(&w->lock);
    if (why != NULL) {
        *why = r;
    }
    return v;
}

double flip_watch_double(struct flip_watch *w,
                         const char *key,
                         double def,
                         enum flip_reason *why)
{
    const int64_t exact = (int64_t)1 << 53;
    const struct flip_flag *f;
    enum flip_reason r;
    double v = def;

    pthread_rwlock_rdlock(&w->lock);
    f = lookup(w, key, FLIP_TYPE_DOUBLE, FLIP_TYPE_INT, &r);
    if (f != NULL && f->value.type == FLIP_TYPE_DOUBLE) {
        v = f->value.u.d;
    } else if (f != NULL && f->value.u.i >= -exact && f->value.u.i <= exact) {
        v = (double)f->value.u.i;
    } else {
        r = FLIP_REASON_DEFAULT; /* an int a double cannot hold exactly */
    }
    pthread_rwlock_unlock(&w->lock);
    if (why != NULL) {
        *why = r;
    }
    return v;
}

/* Copies s into buf (len > 0), cut to fit. FLIP_TOOBIG when cut. */
static int copy_out(char *buf, size_t len, const char *s)
{
    size_t n = strlen(s);

    if (n < len) {
        memcpy(buf, s, n + 1);
        return FLIP_OK;
    }
    memcpy(buf, s, len - 1);
    buf[len - 1] = '\0';
    return FLIP_TOOBIG;
}

int flip_watch_string(struct flip_watch *w,
                      const char *key,
                      const char *def,
                      char *buf,
                      size_t len,
                      enum flip_reason *why)
{
    const struct flip_flag *f;
    enum flip_reason r = FLIP_REASON_DEFAULT;
    int rv = FLIP_OK;

    if (why != NULL) {
        *why = FLIP_REASON_DEFAULT;
    }
    if (buf == NULL || len == 0) {
        return FLIP_INVALID;
    }
    pthread_rwlock_rdlock(&w->lock);
    f = lookup(w, key, FLIP_TYPE_STRING, FLIP_TYPE_JSON, &r);
    if (f != NULL && strlen(f->value.u.s) < len) {
        memcpy(buf, f->value.u.s, strlen(f->value.u.s) + 1);
    } else if (f != NULL) {
        r = FLIP_REASON_DEFAULT;
        rv = FLIP_TOOBIG;
        f = NULL;
    }
    pthread_rwlock_unlock(&w->lock);
    if (f == NULL) {
        int cut = copy_out(buf, len, def != NULL ? def : "");
        rv = rv != FLIP_OK ? rv : cut;
    }
    if (why != NULL) {
        *why = r;
    }
    return rv;
}

int flip_watch_get(struct flip_watch *w,
                   const char *key,
                   struct flip_flag *out,
                   enum flip_reason *why)
{
    const struct flip_flag *f;
    enum flip_reason r = FLIP_REASON_DEFAULT;
    int rv = FLIP_NOTFOUND;

    memset(out, 0, sizeof *out);
    if (why != NULL) {
        *why = FLIP_REASON_DEFAULT;
    }
    if (key == NULL) {
        return FLIP_INVALID;
    }
    pthread_rwlock_rdlock(&w->lock);
    f = wcache_get(&w->live, key);
    if (f != NULL) {
        r = atomic_load(&w->state) == FLIP_WATCH_LIVE ? FLIP_REASON_LIVE
                                                      : FLIP_REASON_CACHED;
        rv = flag_copy(f, out);
    }
    pthread_rwlock_unlock(&w->lock);
    if (why != NULL) {
        *why = rv == FLIP_OK ? r : FLIP_REASON_DEFAULT;
    }
    return rv;
}
