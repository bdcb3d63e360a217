/* flipctl watch and flipctl eval: the watch API of client/flip.h from the
 * shell, for operators and for tests of fail-static behaviour.
 *
 * Both run a flip_watch; its events arrive on the watch's thread, which
 * prints them (stdout is flushed per line, so a pipe sees each at once).
 * The main thread only waits: for SIGINT/SIGTERM, for the goal of
 * --count/--until-revision (the callback wakes it), or for the deadline. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/flip.h"
#include "client/text.h"
#include "lib/clock.h"
#include "tools/flipctl/cli.h"

#define EVAL_WAIT_MS 2000 /* eval --wait-ms default */

/* Self-pipe: written by the signal handler and by callbacks that reached
 * their goal; the main thread polls it. */
static int wake_fds[2] = { -1, -1 };
static volatile sig_atomic_t got_signal;

static void wake(void)
{
    char c = 'w';

    if (write(wake_fds[1], &c, 1) < 0) {
        return; /* full: already awake */
    }
}

static void on_signal(int sig)
{
    int saved = errno;

    (void)sig;
    got_signal = 1;
    wake();
    errno = saved;
}

static int setup_wake(void)
{
    struct sigaction sa;

    if (pipe(wake_fds) != 0) {
        return FLIP_IOERR;
    }
    for (int i = 0; i < 2; i++) {
        (void)fcntl(wake_fds[i], F_SETFL, O_NONBLOCK);
        (void)fcntl(wake_fds[i], F_SETFD, FD_CLOEXEC);
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return FLIP_OK;
}

/* Waits for a wakeup, or for `also` (a watch's descriptor, or -1) to be
 * readable, until `deadline` (clock_mono_ms clock; < 0: none). Drains both.
 * @return 0 when woken, 1 when the deadline passed. */
static int wait_wake(int64_t deadline, int also)
{
    struct pollfd p[2];
    char drain[64];
    int64_t left;

    p[0].fd = wake_fds[0];
    p[1].fd = also;
    for (int i = 0; i < 2; i++) {
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    left = deadline < 0 ? -1 : deadline - clock_mono_ms();
    if (deadline >= 0 && left <= 0) {
        return 1;
    }
    if (poll(p, also >= 0 ? 2 : 1, left > 3600000 ? 3600000 : (int)left) == 0) {
        return deadline >= 0 && clock_mono_ms() >= deadline;
    }
    while (read(wake_fds[0], drain, sizeof drain) > 0) {
    }
    while (also >= 0 && read(also, drain, sizeof drain) > 0) {
    }
    return 0;
}

/* ---- watch -------------------------------------------------------------- */

struct watch_out
{
    const struct cli *cli;
    uint64_t changes; /* CHANGE and DELETE events of changes, printed */
    int done;         /* goal reached: print nothing more */
};

static const char *event_name(const struct flip_watch_event *ev)
{
    switch (ev->type) {
    case FLIP_EV_SNAPSHOT_ITEM:
        return ev->resync ? "resync" : "snapshot";
    case FLIP_EV_DELETE:
        return "delete";
    default:
        return "change";
    }
}

static void print_flag(const struct watch_out *o,
                       const struct flip_watch_event *ev)
{
    struct flip_flag shown = *ev->flag; /* shallow: strings borrowed */
    int rv = FLIP_OK;

    if (ev->type == FLIP_EV_DELETE) {
        /* A key a resync found gone: deleted somewhere up to the
         * snapshot's revision. */
        shown.value.type = FLIP_TYPE_AUTO;
        shown.revision = ev->revision;
    }
    if (o->cli->json) {
        printf("{\"event\":\"%s\",", event_name(ev));
        rv = put_flag_json_fields(&shown);
        fputs(ev->type == FLIP_EV_DELETE ? ",\"deleted\":true}\n" : "}\n",
              stdout);
    } else {
        /* each part may fail for want of memory: any failure is told */
        printf("%s\t", event_name(ev));
        rv = put_escaped(shown.key);
        putchar('\t');
        if (shown.value.type != FLIP_TYPE_AUTO) {
            if (put_list_value(&shown.value) != FLIP_OK) {
                rv = FLIP_NOMEM;
            }
            printf("\t%s", flip_type_name(shown.value.type));
        } else {
            fputs("-\t-", stdout);
        }
        printf("\t%" PRIu64 "\t", shown.revision);
        if (put_escaped(shown.actor) != FLIP_OK) {
            rv = FLIP_NOMEM;
        }
        putchar('\t');
        if (put_escaped(shown.reason) != FLIP_OK) {
            rv = FLIP_NOMEM;
        }
        putchar('\n');
    }
    if (rv != FLIP_OK) {
        fprintf(stderr, "flipctl: watch: %s\n", flip_strerror(rv));
    }
    fflush(stdout);
}

static void goal(struct watch_out *o)
{
    o->done = 1;
    wake();
}

/* Runs on the watch's thread. */
static void on_watch_event(void *data, const struct flip_watch_event *ev)
{
    struct watch_out *o = data;
    const struct cli *cli = o->cli;
    int until = (cli->given & OPT_UNTIL) != 0;
    char detail[1024]; /* ev->detail may quote a server's text */
    char node[300];

    if (o->done) {
        return;
    }
    switch (ev->type) {
    case FLIP_EV_SNAPSHOT_BEGIN:
        if (ev->resync) {
            fprintf(stderr,
                    "flipctl: watch: resync: snapshot at revision %" PRIu64
                    " from %s replaces the state (%s)\n",
                    ev->revision, escaped_copy(node, sizeof node, ev->node),
                    ev->detail[0] != '\0'
                        ? escaped_copy(detail, sizeof detail, ev->detail)
                        : "no reason given");
        }
        break;
    case FLIP_EV_SNAPSHOT_ITEM:
        print_flag(o, ev);
        break;
    case FLIP_EV_SNAPSHOT_END:
        if (until && ev->revision >= cli->until_revision) {
            goal(o);
        }
        break;
    case FLIP_EV_CHANGE:
    case FLIP_EV_DELETE:
        print_flag(o, ev);
        if (ev->resync) {
            break; /* part of a snapshot: counted at its end */
        }
        o->changes++;
        if (((cli->given & OPT_COUNT) && o->changes >= cli->count) ||
            (until && ev->revision >= cli->until_revision)) {
            goal(o);
        }
        break;
    case FLIP_EV_STATE:
        fprintf(stderr, "flipctl: watch: %s: %s\n",
                flip_watch_state_name(ev->state),
                escaped_copy(detail, sizeof detail, ev->detail));
        break;
    case FLIP_EV_NOTICE:
        fprintf(stderr, "flipctl: watch: %s\n",
                escaped_copy(detail, sizeof detail, ev->detail));
        break;
    }
}

int cmd_watch(struct cli *cli)
{
    struct flip_watch_options opts;
    struct flip_watch *w = NULL;
    struct watch_out out;
    int64_t deadline = -1;
    int timed_out = 0;
    int rv;

    memset(&out, 0, sizeof out);
    out.cli = cli;
    memset(&opts, 0, sizeof opts);
    opts.endpoints = cli->endpoints;
    opts.client_name = "flipctl-watch";
    opts.prefixes = cli->pos + 1;
    opts.n_prefixes = (size_t)(cli->n_pos - 1);
    opts.cache_path = cli->cache;
    opts.from_revision = cli->from_revision;
    opts.on_event = on_watch_event;
    opts.data = &out;
    if (setup_wake() != FLIP_OK) {
        fprintf(stderr, "flipctl: watch: %s\n", flip_strerror(FLIP_IOERR));
        return EXIT_FAIL;
    }
    if (cli->timeout_ms != 0) {
        deadline = clock_mono_ms() + cli->timeout_ms;
    }
    rv = flip_watch_start(&w, &opts);
    if (rv == FLIP_INVALID) {
        return usage_error(
            "watch: invalid endpoint list or prefix (a prefix is up to 256 "
            "characters of A-Z a-z 0-9 . _ - / :)");
    }
    if (rv != FLIP_OK) {
        fprintf(stderr, "flipctl: watch: %s\n", flip_strerror(rv));
        return EXIT_FAIL;
    }
    while (!got_signal && !out.done && !timed_out) {
        timed_out = wait_wake(deadline, -1);
    }
    flip_watch_stop(w);
    if (timed_out && !out.done && !got_signal &&
        (cli->given & (OPT_COUNT | OPT_UNTIL)) != 0) {
        fprintf(stderr, "flipctl: watch: timed out after %u ms\n",
                cli->timeout_ms);
        return EXIT_FAIL;
    }
    return 0;
}

/* ---- eval --------------------------------------------------------------- */

/* Runs on the watch's thread: a state change or a new revision may be
 * the one awaited. */
static void on_eval_event(void *data, const struct flip_watch_event *ev)
{
    (void)data;
    if (ev->type == FLIP_EV_STATE || ev->type == FLIP_EV_CHANGE ||
        ev->type == FLIP_EV_DELETE || ev->type == FLIP_EV_SNAPSHOT_END) {
        wake();
    }
}

/* The value eval settles on. */
struct eval_result
{
    struct flip_flag flag; /* owned; flag.key NULL when none */
    struct flip_value value;
    int has_value;
    enum flip_reason why;
    enum flip_watch_state state;
    uint64_t watch_revision;
};

static void put_eval(const struct cli *cli,
                     const char *key,
                     const struct eval_result *r)
{
    char *text = NULL;
    int rv = FLIP_OK;

    if (r->has_value) {
        rv = flip_value_format(&r->value, cli->json, &text);
    }
    if (rv != FLIP_OK) {
        nomem("eval");
        return;
    }
    if (cli->json) {
        fputs("{\"key\":", stdout);
        rv = put_json_str(key);
        printf(",\"value\":%s,\"type\":", text != NULL ? text : "null");
        if (r->has_value) {
            printf("\"%s\"", flip_type_name(r->value.type));
        } else {
            fputs("null", stdout);
        }
        printf(",\"reason\":\"%s\",\"state\":\"%s\",\"revision\":",
               flip_reason_name(r->why), flip_watch_state_name(r->state));
        if (r->flag.key != NULL) {
            printf("%" PRIu64, r->flag.revision);
        } else {
            fputs("null", stdout);
        }
        printf(",\"watch_revision\":%" PRIu64 "}\n", r->watch_revision);
    } else {
        if (r->has_value) {
            put_value_text(&r->value);
            putchar('\n');
        }
        fprintf(stderr, "flipctl: eval %s: reason=%s state=%s", key,
                flip_reason_name(r->why), flip_watch_state_name(r->state));
        if (r->flag.key != NULL) {
            fprintf(stderr, " revision=%" PRIu64, r->flag.revision);
        }
        fputs(r->has_value ? "\n" : " (no value and no --default)\n", stderr);
    }
    if (rv != FLIP_OK) {
        nomem("eval");
    }
    flip_text_free(text);
}

int cmd_eval(struct cli *cli)
{
    const char *key = cli->pos[1];
    struct flip_watch_options opts;
    struct flip_watch *w = NULL;
    struct eval_result r;
    struct flip_value def;
    enum flip_type type = FLIP_TYPE_AUTO;
    unsigned wait = (cli->given & OPT_WAIT) ? cli->wait_ms : EVAL_WAIT_MS;
    int64_t deadline;
    int rv;

    memset(&r, 0, sizeof r);
    memset(&def, 0, sizeof def);
    if (cli->type != NULL && flip_type_parse(cli->type, &type) != FLIP_OK) {
        return usage_error("eval: unknown --type '%s'", cli->type);
    }
    if (cli->def != NULL && flip_value_parse(cli->def, type, &def) != FLIP_OK) {
        return usage_error("eval: --default '%s' is not a valid %s value",
                           cli->def, flip_type_name(type));
    }
    memset(&opts, 0, sizeof opts);
    opts.endpoints = cli->endpoints;
    opts.client_name = "flipctl-eval";
    opts.prefixes = &key;
    opts.n_prefixes = 1;
    opts.cache_path = cli->cache;
    opts.cache_readonly = 1; /* evaluate, never rewrite someone's file */
    opts.on_event = on_eval_event;
    if (setup_wake() != FLIP_OK) {
        fprintf(stderr, "flipctl: eval: %s\n", flip_strerror(FLIP_IOERR));
        return EXIT_FAIL;
    }
    rv = flip_watch_start(&w, &opts);
    if (rv == FLIP_INVALID) {
        return usage_error("eval: invalid endpoint list or key '%s'", key);
    }
    if (rv != FLIP_OK) {
        fprintf(stderr, "flipctl: eval: %s\n", flip_strerror(rv));
        return EXIT_FAIL;
    }
    deadline = clock_mono_ms() + wait;
    /* The watch's descriptor too: its revision also moves with heartbeats,
     * which raise no event. */
    while ((flip_watch_state(w) != FLIP_WATCH_LIVE ||
            flip_watch_revision(w) < cli->min_revision) &&
           !got_signal && !wait_wake(deadline, flip_watch_fd(w))) {
    }
    rv = flip_watch_get(w, key, &r.flag, &r.why);
    r.state = flip_watch_state(w);
    r.watch_revision = flip_watch_revision(w);
    flip_watch_stop(w);
    if (rv == FLIP_OK &&
        (type == FLIP_TYPE_AUTO || r.flag.value.type == type ||
         (type == FLIP_TYPE_DOUBLE && r.flag.value.type == FLIP_TYPE_INT))) {
        r.value = r.flag.value;
        r.has_value = 1;
        if (type == FLIP_TYPE_DOUBLE && r.value.type == FLIP_TYPE_INT) {
            r.value.type = FLIP_TYPE_DOUBLE;
            r.value.u.d = (double)r.flag.value.u.i;
        }
    } else {
        flip_flag_clear(&r.flag); /* another type: as good as absent */
        r.why = FLIP_REASON_DEFAULT;
        r.value = def;
        r.has_value = cli->def != NULL;
    }
    if (rv == FLIP_NOMEM) {
        return nomem("eval");
    }
    put_eval(cli, key, &r);
    flip_flag_clear(&r.flag);
    return r.has_value ? 0 : EXIT_NOTFOUND;
}
