/* flipctl: the command-line client. Uses client/flip.h only: everything
 * it knows about the cluster comes through the public library, so it is
 * also the library's first user and example.
 *
 * Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 compare-and-set
 * conflict. Results go to stdout, diagnostics to stderr as
 * "flipctl: <what>: <reason>". */
#include "tools/flipctl/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/escape.h"
#include "client/flip.h"
#include "client/text.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/num.h"

#define DEFAULT_ENDPOINTS "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
#define TIMEOUT_MAX_MS    3600000u
#define STATUS_MAX        64 /* nodes shown by `status` */
#define ADDR_MAX          320

struct command
{
    const char *name;
    const char *alias;
    int min_args;
    int max_args;
    unsigned opts;
    int (*run)(struct cli *cli);
};

static const char usage_text[] =
    "usage: flipctl [--endpoints H:P,...] [--json] [--timeout MS] COMMAND\n"
    "\n"
    "commands:\n"
    "  set KEY VALUE [--type auto|bool|int|double|string|json]\n"
    "                [--change-type] [--reason TEXT] [--actor NAME]\n"
    "                [--if-revision N]\n"
    "        set a flag; prints its new revision. A flag's type is fixed\n"
    "        once it exists. --type auto (default): an existing flag's own\n"
    "        type (VALUE must read as one: for a bool true/false, yes/no,\n"
    "        on/off or 1/0, any case); for a new flag true/false (any\n"
    "        case) is a bool, an integer an int, another number a double,\n"
    "        a JSON object or array json, anything else a string.\n"
    "        --type T --change-type: give the flag type T even if it had\n"
    "        another. --if-revision N: only if the flag's revision is N (0:\n"
    "        only if it does not exist). Resent safely (same request id)\n"
    "        until --timeout if the outcome is unclear.\n"
    "  get KEY [--stale]\n"
    "        print a flag's value (a json value compacted on one line).\n"
    "        --stale: any node may answer from its own, possibly lagging,\n"
    "        state (default: the leader, up to date).\n"
    "  del KEY [--reason TEXT] [--actor NAME] [--if-revision N]\n"
    "        delete a flag; prints the revision of the delete.\n"
    "  list [PREFIX] [--stale]\n"
    "        one line per flag: KEY<TAB>VALUE<TAB>TYPE<TAB>REVISION.\n"
    "        Text is shown escaped, here and in get, watch and status, so\n"
    "        it cannot drive the terminal: tab, newline, CR and backslash\n"
    "        as \\t \\n \\r \\\\, other control characters and bytes that\n"
    "        are not UTF-8 as \\xHH or \\u{HHHH}. --json output is exact.\n"
    "  watch [PREFIX...] [--from-revision N] [--cache FILE] [--count N]\n"
    "        [--until-revision R]\n"
    "        follow the flags under the prefixes (default: all): each\n"
    "        snapshot item, then each change, one line each:\n"
    "        "
    "EVENT<TAB>KEY<TAB>VALUE<TAB>TYPE<TAB>REVISION<TAB>ACTOR<TAB>REASON\n"
    "        (EVENT snapshot, resync, change or delete; --json: one object\n"
    "        per line, the fields of get --json plus \"event\"). Connection\n"
    "        and state changes go to stderr; node failures are survived.\n"
    "        Runs until SIGINT/SIGTERM (exit 0), N changes (--count), a\n"
    "        change at revision >= R (--until-revision), or --timeout MS\n"
    "        (exit 1 if --count/--until-revision was not reached by then).\n"
    "        --from-revision N: only changes after N. --cache FILE: keep a\n"
    "        last-known-good copy there, and start from it.\n"
    "  eval KEY [--default V] [--type T] [--cache FILE] [--wait-ms N]\n"
    "       [--min-revision R]\n"
    "        what an application using the library would read for KEY:\n"
    "        waits up to N ms (default 2000) for a live subscription, then\n"
    "        prints the value, else the cached one (--cache FILE, read\n"
    "        only), else V. The reason (live, cached, default) and the\n"
    "        state go to stderr, or into the --json object. --type T: only\n"
    "        a value of that type counts. --min-revision R: also wait\n"
    "        until KEY's copy reaches revision R (what `set` printed: the\n"
    "        node answering may lag the leader by a moment). Exit 3 if\n"
    "        there is no value and no --default.\n";

/* Split in two: C11 promises string literals of 4095 bytes only. */
static const char usage_text_tail[] =
    "  status [--hash]\n"
    "        ask every endpoint, and every member they report, for its\n"
    "        state: LAG is how far its applied revision trails the commit\n"
    "        index its leader last told it; LIVE is \"no\" while it is\n"
    "        catching up (stuck, restoring, far behind) and serves no\n"
    "        subscriber as live. --hash: also a hash of each node's whole\n"
    "        store (equal on nodes at the same applied revision; costs a\n"
    "        full scan). Exit 0 only when every member answers, a leader\n"
    "        is known and every node is live; 5 degraded (a member down\n"
    "        or not live, or nodes of different clusters); 6 no leader\n"
    "        known; 1 no node answered.\n"
    "  member list\n"
    "        the raft configuration as the leader holds it, one line per\n"
    "        member: ID ROLE (voter, standby, spare) LEADER (*) REACHABLE\n"
    "        (the leader's last connect to it succeeded) MATCH (raft index\n"
    "        the leader knows it holds) LAG (commit index minus MATCH)\n"
    "        RAFT and CLIENT addresses (client \"-\" when unknown).\n"
    "  member add ID RAFT_ADDR CLIENT_ADDR [--role voter|standby|spare]\n"
    "        add node ID, started with flipd --join (never --cluster),\n"
    "        through raft: as a spare, caught up, then given --role\n"
    "        (default voter). Waits for it (use a --timeout above the\n"
    "        catch-up time for a large store). Safe to repeat.\n"
    "  member remove ID\n"
    "        remove node ID from the configuration, then stop it; its id\n"
    "        is never to be used again. Refused for the leader (transfer\n"
    "        first) and for a voter the cluster cannot spare.\n"
    "  member promote ID | member demote ID [--role standby|spare]\n"
    "        make a member a voter, or a standby (default) or spare.\n"
    "        A repeated add/remove/promote/demote says \"already\".\n"
    "  leader transfer [ID]\n"
    "        hand leadership to voter ID (default: the most up-to-date\n"
    "        voter) and wait until it leads; prints the new leader's id.\n"
    "        ID already leading is success (\"already\" on stderr).\n"
    "  help\n"
    "        this text.\n"
    "\n"
    "options:\n"
    "  --endpoints H:P,...  client addresses of the nodes; default\n"
    "                       $FLIPCTL_ENDPOINTS, else\n"
    "                       " DEFAULT_ENDPOINTS
    "\n"
    "  --json               machine-readable output (JSON)\n"
    "  --timeout MS         deadline of each request, retries included\n"
    "                       (default 5000)\n"
    "\n"
    "exit status: 0 ok, 1 failed, 2 usage, 3 not found, 4 compare-and-set\n"
    "conflict (the current revision is printed on stderr); status only:\n"
    "5 degraded, 6 no leader.\n";

/* ---- diagnostics ------------------------------------------------------- */

int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("flipctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\ntry 'flipctl --help'\n", stderr);
    return EXIT_USAGE;
}

const char *escaped_copy(char *out, size_t cap, const char *s)
{
    struct buf b; /* the escaped text, owned here */

    buf_init(&b);
    if (escape_text_into(&b, s) == FLIP_OK) {
        snprintf(out, cap, "%.*s", (int)buf_len(&b),
                 buf_len(&b) > 0 ? (const char *)buf_head(&b) : "");
    } else {
        snprintf(out, cap, "?");
    }
    buf_close(&b);
    return out;
}

/* Reports a failed library call and picks the exit code. */
int fail(const struct cli *cli, const char *what, int rv)
{
    char safe[1024];
    const char *msg = flip_client_errmsg(cli->client);

    /* the message may quote a server's text */
    msg = escaped_copy(safe, sizeof safe,
                       msg[0] != '\0' ? msg : flip_strerror(rv));
    if (rv == FLIP_CONFLICT) {
        fprintf(stderr, "flipctl: %s: %s (current revision %" PRIu64 ")\n",
                what, msg, flip_client_conflict_revision(cli->client));
        return EXIT_CONFLICT;
    }
    if (rv == FLIP_TYPEMISMATCH) {
        fprintf(stderr,
                "flipctl: %s: %s (use --type T --change-type to change "
                "the flag's type)\n",
                what, msg);
        return EXIT_FAIL;
    }
    fprintf(stderr, "flipctl: %s: %s\n", what, msg);
    return rv == FLIP_NOTFOUND ? EXIT_NOTFOUND : EXIT_FAIL;
}

int nomem(const char *what)
{
    fprintf(stderr, "flipctl: %s: %s\n", what, flip_strerror(FLIP_NOMEM));
    return EXIT_FAIL;
}

/* ---- output helpers ---------------------------------------------------- */

int put_json_str(const char *s)
{
    char *q = NULL;

    if (flip_json_quote(s, &q) != FLIP_OK) {
        return FLIP_NOMEM;
    }
    fputs(q, stdout);
    flip_text_free(q);
    return FLIP_OK;
}

int put_flag_json_fields(const struct flip_flag *f)
{
    char *value = NULL;
    char when[48];
    int rv = FLIP_OK;

    if (f->value.type != FLIP_TYPE_AUTO) {
        rv = flip_value_format(&f->value, 1, &value);
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    fputs("\"key\":", stdout);
    rv = put_json_str(f->key);
    if (value != NULL) {
        printf(",\"value\":%s,\"type\":\"%s\"", value,
               flip_type_name(f->value.type));
    } else {
        fputs(",\"value\":null,\"type\":null", stdout);
    }
    printf(",\"revision\":%" PRIu64 ",\"create_revision\":%" PRIu64
           ",\"actor\":",
           f->revision, f->create_revision);
    if (rv == FLIP_OK) {
        rv = put_json_str(f->actor);
    }
    fputs(",\"reason\":", stdout);
    if (rv == FLIP_OK) {
        rv = put_json_str(f->reason);
    }
    clock_format_utc(f->time_ms, when, sizeof when);
    printf(",\"time\":\"%s\",\"time_ms\":%" PRId64, when, f->time_ms);
    flip_text_free(value);
    return rv;
}

/* One flag as a JSON object on one line (get --json, list --json). */
static int put_flag_json(const struct flip_flag *f)
{
    int rv;

    fputs("{", stdout);
    rv = put_flag_json_fields(f);
    fputs("}\n", stdout);
    return rv;
}

int put_escaped(const char *text)
{
    struct buf b; /* the escaped text, owned here */
    int rv;

    buf_init(&b);
    rv = escape_text_into(&b, text);
    if (rv == FLIP_OK && buf_len(&b) > 0) { /* an empty buf has no head */
        fwrite(buf_head(&b), 1, buf_len(&b), stdout);
    }
    buf_close(&b);
    return rv;
}

int put_value_text(const struct flip_value *v)
{
    char *text = NULL;
    int rv;

    /* JSON compacted: valid JSON on one line, control characters in its
     * strings escaped the JSON way, so it still feeds a JSON parser */
    rv = flip_value_format(v, v->type == FLIP_TYPE_JSON, &text);
    if (rv != FLIP_OK) {
        return rv;
    }
    if (v->type == FLIP_TYPE_STRING) {
        rv = put_escaped(text);
    } else {
        fputs(text, stdout);
    }
    flip_text_free(text);
    return rv;
}

int put_list_value(const struct flip_value *v)
{
    char *text = NULL;
    int rv;

    rv = flip_value_format(v, v->type == FLIP_TYPE_JSON, &text);
    if (rv != FLIP_OK) {
        return rv;
    }
    rv = put_escaped(text); /* also the JSON: tabs and newlines split TSV */
    flip_text_free(text);
    return rv;
}

/* ---- commands: flags --------------------------------------------------- */

static struct flip_write_opts write_opts(const struct cli *cli)
{
    struct flip_write_opts o;

    memset(&o, 0, sizeof o);
    o.reason = cli->reason;
    o.actor = cli->actor;
    o.use_cas = (cli->given & OPT_IF_REVISION) != 0;
    o.expected_revision = cli->if_revision;
    return o;
}

static int cmd_set(struct cli *cli)
{
    const char *key = cli->pos[1];
    const char *text = cli->pos[2];
    enum flip_type type = FLIP_TYPE_AUTO;
    struct flip_value value;
    struct flip_write_opts o = write_opts(cli);
    char what[300];
    uint64_t rev = 0;
    int rv;

    if (cli->type != NULL && flip_type_parse(cli->type, &type) != FLIP_OK) {
        return usage_error("set: unknown --type '%s'", cli->type);
    }
    if (cli->change_type && type == FLIP_TYPE_AUTO) {
        return usage_error("set: --change-type needs --type T");
    }
    snprintf(what, sizeof what, "set %s", key);
    if (flip_value_parse(text, type, &value) != FLIP_OK) {
        return usage_error("set: '%s' is not a valid %s value", text,
                           flip_type_name(type));
    }
    o.change_type = cli->change_type;
    rv = flip_set(cli->client, key, &value, &o, &rev);
    /* --type auto on an existing flag means the flag's own type: text
     * that merely looks like another type must not turn a bool kill
     * switch into a string every service ignores. The server refused it
     * (nothing applied) and named the type: read the text as that. One
     * round trip when the guess is right, two when not. */
    if (rv == FLIP_TYPEMISMATCH && type == FLIP_TYPE_AUTO &&
        flip_client_conflict_type(cli->client) != FLIP_TYPE_AUTO) {
        type = flip_client_conflict_type(cli->client);
        if (flip_value_parse(text, type, &value) != FLIP_OK) {
            return usage_error(
                "set: %s is a %s flag and '%s' is not a %s "
                "value (--type T --change-type changes the "
                "type)",
                key, flip_type_name(type), text, flip_type_name(type));
        }
        rv = flip_set(cli->client, key, &value, &o, &rev);
    }
    if (rv != FLIP_OK) {
        return fail(cli, what, rv);
    }
    if (cli->json) {
        fputs("{\"key\":", stdout);
        if (put_json_str(key) != FLIP_OK) {
            return nomem(what);
        }
        printf(",\"revision\":%" PRIu64 "}\n", rev);
    } else {
        printf("%" PRIu64 "\n", rev);
    }
    return 0;
}

static int cmd_get(struct cli *cli)
{
    const char *key = cli->pos[1];
    struct flip_flag f;
    char what[300];
    int rv;

    snprintf(what, sizeof what, "get %s", key);
    rv = flip_get(cli->client, key, cli->stale, &f);
    if (rv != FLIP_OK) {
        return fail(cli, what, rv);
    }
    if (cli->json) {
        rv = put_flag_json(&f);
    } else {
        rv = put_value_text(&f.value);
        putchar('\n');
    }
    flip_flag_clear(&f);
    return rv == FLIP_OK ? 0 : nomem(what);
}

static int cmd_del(struct cli *cli)
{
    const char *key = cli->pos[1];
    struct flip_write_opts o = write_opts(cli);
    char what[300];
    uint64_t rev = 0;
    int existed = 0;
    int rv;

    snprintf(what, sizeof what, "del %s", key);
    rv = flip_delete(cli->client, key, &o, &rev, &existed);
    if (rv != FLIP_OK) {
        return fail(cli, what, rv);
    }
    if (!existed) {
        fprintf(stderr, "flipctl: %s: %s\n", what,
                flip_strerror(FLIP_NOTFOUND));
        return EXIT_NOTFOUND;
    }
    if (cli->json) {
        fputs("{\"key\":", stdout);
        if (put_json_str(key) != FLIP_OK) {
            return nomem(what);
        }
        printf(",\"revision\":%" PRIu64 "}\n", rev);
    } else {
        printf("%" PRIu64 "\n", rev);
    }
    return 0;
}

static int cmd_list(struct cli *cli)
{
    const char *prefix = cli->n_pos > 1 ? cli->pos[1] : "";
    struct flip_flag *flags = NULL;
    size_t n = 0;
    int rv;

    rv = flip_list(cli->client, prefix, cli->stale, &flags, &n);
    if (rv != FLIP_OK) {
        return fail(cli, "list", rv);
    }
    for (size_t i = 0; i < n && rv == FLIP_OK; i++) {
        if (cli->json) {
            rv = put_flag_json(&flags[i]);
            continue;
        }
        rv = put_escaped(flags[i].key);
        putchar('\t');
        if (put_list_value(&flags[i].value) != FLIP_OK) {
            rv = FLIP_NOMEM;
        }
        printf("\t%s\t%" PRIu64 "\n", flip_type_name(flags[i].value.type),
               flags[i].revision);
    }
    flip_flags_free(flags, n);
    return rv == FLIP_OK ? 0 : nomem("list");
}

/* ---- command: status --------------------------------------------------- */

/* One line of the status table: a node that answered (st set) or one we
 * only know of from the endpoint list or another node's member list. */
struct status_row
{
    uint64_t id;        /* 0: unknown */
    const char *raft;   /* borrowed from a status; "" when unknown */
    const char *client; /* borrowed from a status or status_run.addr */
    const struct flip_node_status *st;
    size_t rank; /* position in the user's endpoint list, else STATUS_MAX */
};

/* Everything `status` learns (~30 KiB, on cmd_status's stack). */
struct status_run
{
    char addr[STATUS_MAX][ADDR_MAX]; /* endpoints asked or to ask */
    int answered[STATUS_MAX];        /* per addr: 1 answered, -1 failed */
    size_t n_addr;
    size_t n_given; /* addr[0, n_given) came from --endpoints */
    struct flip_node_status st[STATUS_MAX]; /* owned; cleared at the end */
    size_t from[STATUS_MAX]; /* st[i] answered at addr[from[i]] */
    size_t n_st;
    struct status_row rows[STATUS_MAX];
    size_t n_rows;
};

static size_t find_addr(const struct status_run *r, const char *a, size_t len)
{
    for (size_t i = 0; i < r->n_addr; i++) {
        if (strlen(r->addr[i]) == len && memcmp(r->addr[i], a, len) == 0) {
            return i;
        }
    }
    return STATUS_MAX;
}

/* Queues an endpoint (len bytes of a; spaces trimmed) unless known. */
static void queue_addr(struct status_run *r, const char *a, size_t len)
{
    while (len > 0 && (*a == ' ' || *a == '\t')) {
        a++;
        len--;
    }
    while (len > 0 && (a[len - 1] == ' ' || a[len - 1] == '\t')) {
        len--;
    }
    if (len == 0 || len >= ADDR_MAX || r->n_addr == STATUS_MAX ||
        find_addr(r, a, len) != STATUS_MAX) {
        return;
    }
    memcpy(r->addr[r->n_addr], a, len);
    r->addr[r->n_addr][len] = '\0';
    r->answered[r->n_addr] = 0;
    r->n_addr++;
}

static struct status_row *find_row(struct status_run *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_rows && id != 0; i++) {
        if (r->rows[i].id == id) {
            return &r->rows[i];
        }
    }
    return NULL;
}

static void add_row(struct status_run *r,
                    uint64_t id,
                    const char *raft,
                    const char *client,
                    const struct flip_node_status *st)
{
    if (r->n_rows == STATUS_MAX) {
        return;
    }
    r->rows[r->n_rows].id = id;
    r->rows[r->n_rows].raft = raft;
    r->rows[r->n_rows].client = client;
    r->rows[r->n_rows].st = st;
    r->n_rows++;
}

/* Asks every queued endpoint, queueing the members each answer names. */
static void status_ask_all(struct cli *cli, struct status_run *r)
{
    struct flip_node_status *st;
    const char *self;

    for (size_t q = 0; q < r->n_addr && r->n_st < STATUS_MAX; q++) {
        st = &r->st[r->n_st];
        if (flip_status_node(cli->client, r->addr[q],
                             cli->hash ? FLIP_STATUS_HASH : 0, st) != FLIP_OK) {
            r->answered[q] = -1;
            if (!cli->json) {
                char safe[1024];
                fprintf(stderr, "flipctl: status: %s\n",
                        escaped_copy(safe, sizeof safe,
                                     flip_client_errmsg(cli->client)));
            }
            continue;
        }
        r->answered[q] = 1;
        r->from[r->n_st++] = q;
        /* The node may spell its own address differently from how we
         * reached it: do not ask it twice. */
        self = st->client_address;
        queue_addr(r, self, strlen(self));
        if (find_addr(r, self, strlen(self)) < STATUS_MAX) {
            r->answered[find_addr(r, self, strlen(self))] = 1;
        }
        for (size_t m = 0; m < st->n_members; m++) {
            queue_addr(r, st->members[m].client_address,
                       strlen(st->members[m].client_address));
        }
    }
}

/* The endpoints the user named come first, in the order named (so asking
 * one node puts that node first), then the rest by id. */
static int row_cmp(const void *a, const void *b)
{
    const struct status_row *x = a;
    const struct status_row *y = b;

    if (x->rank != y->rank) {
        return x->rank < y->rank ? -1 : 1;
    }
    if (x->id == y->id) {
        return strcmp(x->client, y->client);
    }
    if (x->id == 0 || y->id == 0) {
        return x->id == 0 ? 1 : -1; /* unknown ids last */
    }
    return x->id < y->id ? -1 : 1;
}

/* Rows: nodes that answered, then members nobody reached, then endpoints
 * that did not answer and match no member. */
static void status_build_rows(struct status_run *r)
{
    struct status_row *row;
    const struct flip_member *m;
    int known;

    for (size_t i = 0; i < r->n_st; i++) {
        if (find_row(r, r->st[i].id) == NULL) {
            add_row(r, r->st[i].id, r->st[i].raft_address,
                    r->st[i].client_address, &r->st[i]);
        }
    }
    for (size_t i = 0; i < r->n_st; i++) {
        for (size_t k = 0; k < r->st[i].n_members; k++) {
            m = &r->st[i].members[k];
            row = find_row(r, m->id);
            if (row == NULL) {
                add_row(r, m->id, m->raft_address, m->client_address, NULL);
            } else if (row->raft[0] == '\0') {
                row->raft = m->raft_address;
            }
        }
    }
    for (size_t q = 0; q < r->n_addr; q++) {
        known = r->answered[q] >= 0;
        for (size_t i = 0; i < r->n_rows && !known; i++) {
            known = strcmp(r->rows[i].client, r->addr[q]) == 0;
        }
        if (!known) {
            add_row(r, 0, "", r->addr[q], NULL);
        }
    }
    for (size_t i = 0; i < r->n_rows; i++) {
        row = &r->rows[i];
        row->rank = STATUS_MAX;
        for (size_t k = 0; k < r->n_st; k++) {
            if (row->st == &r->st[k] && r->from[k] < r->n_given) {
                row->rank = r->from[k];
            }
        }
        for (size_t q = 0; q < r->n_given && row->rank == STATUS_MAX; q++) {
            if (strcmp(row->client, r->addr[q]) == 0) {
                row->rank = q;
            }
        }
    }
    qsort(r->rows, r->n_rows, sizeof r->rows[0], row_cmp);
}

/* 1 when a node that answered says the cluster recorded member `id` as
 * holding its data. */
static int status_joined(const struct status_run *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_st; i++) {
        for (size_t k = 0; k < r->st[i].n_members; k++) {
            if (r->st[i].members[k].id == id && r->st[i].members[k].joined) {
                return 1;
            }
        }
    }
    return 0;
}

static int put_status_json(const struct status_run *r)
{
    const struct status_row *row;
    const struct flip_node_status *st;
    int rv = FLIP_OK;

    fputs("[", stdout);
    for (size_t i = 0; i < r->n_rows && rv == FLIP_OK; i++) {
        row = &r->rows[i];
        st = row->st;
        fputs(i == 0 ? "\n  {\"id\":" : ",\n  {\"id\":", stdout);
        if (row->id != 0) {
            printf("%" PRIu64, row->id);
        } else {
            fputs("null", stdout);
        }
        fputs(",\"raft_address\":", stdout);
        rv = put_json_str(row->raft);
        fputs(",\"client_address\":", stdout);
        if (rv == FLIP_OK) {
            rv = put_json_str(row->client);
        }
        printf(",\"joined\":%s", status_joined(r, row->id) ? "true" : "false");
        fputs(",\"role\":", stdout);
        if (st == NULL) {
            fputs(
                "null,\"term\":null,\"applied_revision\":null,"
                "\"commit_index\":null,\"leader_id\":null,"
                "\"last_contact_ms\":null,\"leader_commit\":null,"
                "\"lag\":null,\"live\":null,\"cluster_id\":null,"
                "\"reachable\":false}",
                stdout);
            continue;
        }
        if (rv == FLIP_OK) {
            rv = put_json_str(st->role);
        }
        printf(",\"term\":%" PRIu64 ",\"applied_revision\":%" PRIu64
               ",\"commit_index\":%" PRIu64 ",\"leader_id\":%" PRIu64
               ",\"last_contact_ms\":%" PRIu64,
               st->term, st->applied_revision, st->commit_index, st->leader_id,
               st->last_contact_ms);
        printf(",\"store_bytes\":%" PRIu64 ",\"max_store_bytes\":%" PRIu64,
               st->store_bytes, st->max_store_bytes);
        printf(",\"leader_commit\":%" PRIu64 ",\"lag\":%" PRIu64
               ",\"live\":%s,\"cluster_id\":",
               st->leader_commit, st->lag,
               st->has_live ? (st->live ? "true" : "false") : "null");
        if (rv == FLIP_OK) {
            rv = put_json_str(st->cluster_id);
        }
        fputs(",\"reachable\":true", stdout);
        if (st->has_state_hash) {
            /* A string: JSON numbers above 2^53 lose digits in many
             * parsers. */
            printf(",\"state_hash\":\"%016" PRIx64 "\"", st->state_hash);
        }
        fputs("}", stdout);
    }
    fputs(r->n_rows > 0 ? "\n]\n" : "]\n", stdout);
    return rv;
}

static int width(int w, const char *s)
{
    int n = (int)strlen(s);
    return n > w ? n : w;
}

/* A numeric table cell, "-" when unknown. */
static void put_cell(char cell[24], int known, uint64_t v)
{
    if (known) {
        snprintf(cell, 24, "%" PRIu64, v);
    } else {
        snprintf(cell, 24, "-");
    }
}

#define STATUS_COLS 11

/* One table line; right-aligns the numeric columns. The HASH column is
 * last and only shown with --hash. */
static void put_table_line(const char *const cell[STATUS_COLS],
                           const int w[STATUS_COLS],
                           int cols)
{
    static const int right[STATUS_COLS] = { 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0 };

    for (int k = 0; k < cols; k++) {
        if (k + 1 == cols) {
            printf("%s\n", cell[k]);
        } else {
            printf(right[k] ? "%*s  " : "%-*s  ", w[k], cell[k]);
        }
    }
}

static void put_status_table(const struct status_run *r, int hash)
{
    static const char *const head[STATUS_COLS] = {
        "ID",  "RAFT",   "CLIENT", "ROLE",      "TERM", "APPLIED",
        "LAG", "LEADER", "LIVE",   "REACHABLE", "HASH"
    };
    char num[STATUS_MAX][STATUS_COLS][24]; /* formatted numeric cells */
    char txt[STATUS_MAX][3][160];          /* escaped server-given text */
    const char *cell[STATUS_MAX][STATUS_COLS];
    int w[STATUS_COLS];
    int cols = hash ? STATUS_COLS : STATUS_COLS - 1;
    const struct status_row *row;
    const struct flip_node_status *st;

    for (int k = 0; k < STATUS_COLS; k++) {
        w[k] = (int)strlen(head[k]);
    }
    for (size_t i = 0; i < r->n_rows; i++) {
        row = &r->rows[i];
        st = row->st;
        put_cell(num[i][0], row->id != 0, row->id);
        put_cell(num[i][4], st != NULL, st ? st->term : 0);
        put_cell(num[i][5], st != NULL, st ? st->applied_revision : 0);
        put_cell(num[i][6], st != NULL, st ? st->lag : 0);
        put_cell(num[i][7], st && st->leader_id, st ? st->leader_id : 0);
        snprintf(num[i][10], sizeof num[i][10], "-");
        if (st != NULL && st->has_state_hash) {
            snprintf(num[i][10], sizeof num[i][10], "%016" PRIx64,
                     st->state_hash);
        }
        cell[i][0] = num[i][0];
        cell[i][1] = row->raft[0]
                         ? escaped_copy(txt[i][0], sizeof txt[i][0], row->raft)
                         : "-";
        cell[i][2] = row->client[0] ? escaped_copy(txt[i][1], sizeof txt[i][1],
                                                   row->client)
                                    : "-";
        cell[i][3] =
            st ? escaped_copy(txt[i][2], sizeof txt[i][2], st->role) : "-";
        cell[i][4] = num[i][4];
        cell[i][5] = num[i][5];
        cell[i][6] = num[i][6];
        cell[i][7] = num[i][7];
        cell[i][8] = st == NULL || !st->has_live ? "-"
                     : st->live                  ? "yes"
                                                 : "no";
        cell[i][9] = st ? "yes" : "no";
        cell[i][10] = num[i][10];
        for (int k = 0; k < STATUS_COLS; k++) {
            w[k] = width(w[k], cell[i][k]);
        }
    }
    put_table_line(head, w, cols);
    for (size_t i = 0; i < r->n_rows; i++) {
        put_table_line(cell[i], w, cols);
    }
}

/* The exit code of `status`, with a line on stderr when it is not 0. */
static int status_verdict(const struct status_run *r)
{
    const char *cid = NULL;
    int leader = 0;

    if (r->n_st == 0) {
        fprintf(stderr, "flipctl: status: no node answered\n");
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < r->n_st; i++) {
        leader |= r->st[i].leader_id != 0;
    }
    if (!leader) {
        fprintf(stderr, "flipctl: status: no node knows a leader\n");
        return EXIT_NOLEADER;
    }
    for (size_t i = 0; i < r->n_rows; i++) {
        const struct flip_node_status *st = r->rows[i].st;
        if (st == NULL) {
            fprintf(stderr, "flipctl: status: degraded: %s does not answer\n",
                    r->rows[i].client[0] ? r->rows[i].client : "a member");
            return EXIT_DEGRADED;
        }
        if (st->has_live && !st->live) {
            fprintf(stderr,
                    "flipctl: status: degraded: node %" PRIu64
                    " is not live (%" PRIu64 " behind its leader)\n",
                    st->id, st->lag);
            return EXIT_DEGRADED;
        }
        if (st->cluster_id[0] != '\0') {
            if (cid != NULL && strcmp(cid, st->cluster_id) != 0) {
                fprintf(stderr,
                        "flipctl: status: degraded: nodes of different "
                        "clusters answer (%s, %s)\n",
                        cid, st->cluster_id);
                return EXIT_DEGRADED;
            }
            cid = st->cluster_id;
        }
    }
    return 0;
}

static int cmd_status(struct cli *cli)
{
    struct status_run run;
    struct status_run *r = &run;
    const char *p = cli->endpoints;
    const char *comma;
    int rv = FLIP_OK;
    int code;

    memset(r, 0, sizeof *r);
    for (;; p = comma + 1) {
        comma = strchr(p, ',');
        queue_addr(r, p, comma ? (size_t)(comma - p) : strlen(p));
        if (comma == NULL) {
            break;
        }
    }
    r->n_given = r->n_addr;
    status_ask_all(cli, r);
    status_build_rows(r);
    if (cli->json) {
        rv = put_status_json(r);
    } else {
        put_status_table(r, cli->hash);
    }
    code = status_verdict(r);
    if (rv != FLIP_OK) {
        code = nomem("status");
    }
    for (size_t i = 0; i < r->n_st; i++) {
        flip_node_status_clear(&r->st[i]);
    }
    return code;
}

static int cmd_help(struct cli *cli)
{
    (void)cli;
    fputs(usage_text, stdout);
    fputs(usage_text_tail, stdout);
    return 0;
}

/* ---- argument parsing -------------------------------------------------- */

static const struct command commands[] = {
    { "set", NULL, 2, 2,
      OPT_TYPE | OPT_REASON | OPT_ACTOR | OPT_IF_REVISION | OPT_CHANGE_TYPE,
      cmd_set },
    { "get", NULL, 1, 1, OPT_STALE, cmd_get },
    { "del", "delete", 1, 1, OPT_REASON | OPT_ACTOR | OPT_IF_REVISION,
      cmd_del },
    { "list", "ls", 0, 1, OPT_STALE, cmd_list },
    { "status", NULL, 0, 0, OPT_HASH, cmd_status },
    { "watch", NULL, 0, CLI_MAX_ARGS - 1,
      OPT_FROM_REVISION | OPT_CACHE | OPT_COUNT | OPT_UNTIL, cmd_watch },
    { "eval", NULL, 1, 1,
      OPT_TYPE | OPT_DEFAULT | OPT_CACHE | OPT_WAIT | OPT_MIN_REVISION,
      cmd_eval },
    { "member", NULL, 1, 4, OPT_ROLE, cmd_member },
    { "leader", NULL, 1, 2, 0, cmd_leader },
    { "help", NULL, 0, 0, 0, cmd_help },
};

/* Every option; `val` identifies it to getopt_long. Options with a value
 * say so here only. */
enum
{
    O_ENDPOINTS = 256,
    O_TIMEOUT,
    O_TYPE,
    O_REASON,
    O_ACTOR,
    O_IF_REVISION,
    O_FROM_REVISION,
    O_MIN_REVISION,
    O_UNTIL_REVISION,
    O_COUNT,
    O_WAIT_MS,
    O_CACHE,
    O_DEFAULT,
    O_JSON,
    O_STALE,
    O_CHANGE_TYPE,
    O_HASH,
    O_ROLE,
    O_HELP
};

static const struct option long_opts[] = {
    { "endpoints", required_argument, NULL, O_ENDPOINTS },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "type", required_argument, NULL, O_TYPE },
    { "reason", required_argument, NULL, O_REASON },
    { "actor", required_argument, NULL, O_ACTOR },
    { "if-revision", required_argument, NULL, O_IF_REVISION },
    { "from-revision", required_argument, NULL, O_FROM_REVISION },
    { "min-revision", required_argument, NULL, O_MIN_REVISION },
    { "until-revision", required_argument, NULL, O_UNTIL_REVISION },
    { "count", required_argument, NULL, O_COUNT },
    { "wait-ms", required_argument, NULL, O_WAIT_MS },
    { "cache", required_argument, NULL, O_CACHE },
    { "default", required_argument, NULL, O_DEFAULT },
    { "json", no_argument, NULL, O_JSON },
    { "stale", no_argument, NULL, O_STALE },
    { "change-type", no_argument, NULL, O_CHANGE_TYPE },
    { "hash", no_argument, NULL, O_HASH },
    { "role", required_argument, NULL, O_ROLE },
    { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 },
};

/* A revision option's value into *out; `bit` marks it given. */
static int revision_opt(struct cli *cli,
                        const char *name,
                        const char *val,
                        uint64_t *out,
                        unsigned bit)
{
    if (num_parse_u64(val, 0, UINT64_MAX, out) != FLIP_OK) {
        return usage_error("--%s: '%s' is not a revision", name, val);
    }
    cli->given |= bit;
    return 0;
}

/* A string option's value into *out; `bit` marks it given. */
static int text_opt(struct cli *cli,
                    const char *val,
                    const char **out,
                    unsigned bit)
{
    *out = val;
    cli->given |= bit;
    return 0;
}

/* Applies the option `o` (an O_* value) with its value, if it takes one. */
static int apply_opt(struct cli *cli, int o, const char *val)
{
    uint64_t n;

    switch (o) {
    case O_ENDPOINTS:
        cli->endpoints = val;
        return 0;
    case O_TIMEOUT:
        if (num_parse_u64(val, 1, TIMEOUT_MAX_MS, &n) != FLIP_OK) {
            return usage_error(
                "--timeout: '%s' is not a number of ms "
                "between 1 and %u",
                val, TIMEOUT_MAX_MS);
        }
        cli->timeout_ms = (unsigned)n;
        return 0;
    case O_WAIT_MS:
        if (num_parse_u64(val, 0, TIMEOUT_MAX_MS, &n) != FLIP_OK) {
            return usage_error("--wait-ms: '%s' is not a number of ms up to %u",
                               val, TIMEOUT_MAX_MS);
        }
        cli->wait_ms = (unsigned)n;
        cli->given |= OPT_WAIT;
        return 0;
    case O_COUNT:
        if (num_parse_u64(val, 1, UINT64_MAX, &cli->count) != FLIP_OK) {
            return usage_error("--count: '%s' is not a positive number", val);
        }
        cli->given |= OPT_COUNT;
        return 0;
    case O_IF_REVISION:
        return revision_opt(cli, "if-revision", val, &cli->if_revision,
                            OPT_IF_REVISION);
    case O_FROM_REVISION:
        return revision_opt(cli, "from-revision", val, &cli->from_revision,
                            OPT_FROM_REVISION);
    case O_MIN_REVISION:
        return revision_opt(cli, "min-revision", val, &cli->min_revision,
                            OPT_MIN_REVISION);
    case O_UNTIL_REVISION:
        return revision_opt(cli, "until-revision", val, &cli->until_revision,
                            OPT_UNTIL);
    case O_TYPE:
        return text_opt(cli, val, &cli->type, OPT_TYPE);
    case O_REASON:
        return text_opt(cli, val, &cli->reason, OPT_REASON);
    case O_ACTOR:
        return text_opt(cli, val, &cli->actor, OPT_ACTOR);
    case O_CACHE:
        return text_opt(cli, val, &cli->cache, OPT_CACHE);
    case O_DEFAULT:
        return text_opt(cli, val, &cli->def, OPT_DEFAULT);
    case O_ROLE:
        return text_opt(cli, val, &cli->role, OPT_ROLE);
    case O_JSON:
        cli->json = 1;
        return 0;
    case O_STALE:
        cli->stale = 1;
        cli->given |= OPT_STALE;
        return 0;
    case O_CHANGE_TYPE:
        cli->change_type = 1;
        cli->given |= OPT_CHANGE_TYPE;
        return 0;
    case O_HASH:
        cli->hash = 1;
        cli->given |= OPT_HASH;
        return 0;
    default: /* O_HELP */
        cli->help = 1;
        return 0;
    }
}

static void add_word(struct cli *cli, const char *word)
{
    if (cli->n_pos == CLI_MAX_ARGS) {
        cli->too_many = 1; /* reported once the command is known */
        return;
    }
    cli->pos[cli->n_pos++] = word;
}

/* 1 when `token` names the long option `o` in full: getopt_long also takes
 * an unambiguous prefix, which flipctl does not, so that a later option
 * cannot change what an abbreviation in a script means. */
static int exact_name(const char *token, const struct option *o)
{
    size_t n = strlen(o->name);

    return strncmp(token + 2, o->name, n) == 0 &&
           (token[2 + n] == '\0' || token[2 + n] == '=');
}

/* getopt_long in order ("-": words come back as 1, so options may come
 * before or after the command, and "--" ends them). flipctl has no short
 * options but -h: any other "-word" ("-5", "-x", "-") is a word, which
 * getopt reports as one '?' per character, all with the same optind. */
static int parse_args(struct cli *cli, int argc, char **argv)
{
    int last_word = 0;
    int code;

    optind = 0; /* glibc: start over (tests run flipctl more than once) */
    opterr = 0;
    for (;;) {
        int at = optind == 0 ? 1 : optind;
        int index = -1;
        int ch = getopt_long(argc, argv, "-:", long_opts, &index);
        const char *token = argv[at];

        if (ch == -1) {
            break;
        }
        if (ch == 1) {
            add_word(cli, optarg);
            continue;
        }
        if (ch == ':') {
            return usage_error("option %s needs a value", token);
        }
        if (ch == '?' && token[1] != '-') {
            if (strcmp(token, "-h") == 0) {
                cli->help = 1;
            } else if (at != last_word) {
                add_word(cli, token);
            }
            last_word = at;
            continue;
        }
        if (ch == '?' || !exact_name(token, &long_opts[index])) {
            return usage_error("unknown option %s", token);
        }
        code = apply_opt(cli, ch, optarg);
        if (code != 0) {
            return code;
        }
    }
    for (int i = optind; i < argc; i++) {
        add_word(cli, argv[i]);
    }
    return 0;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(name, commands[i].name) == 0 ||
            (commands[i].alias && strcmp(name, commands[i].alias) == 0)) {
            return &commands[i];
        }
    }
    return NULL;
}

/* "flipctl:<user>" as the default actor; only characters any server takes,
 * so an odd $USER cannot make Hello fail. */
static void client_name(char *out, size_t len)
{
    const char *user = getenv("USER");
    size_t n;

    n = (size_t)snprintf(out, len, "flipctl");
    if (user == NULL || user[0] == '\0' || n + 2 >= len) {
        return;
    }
    out[n++] = ':';
    for (; *user != '\0' && n + 1 < len && n < 64; user++) {
        if ((*user >= 'a' && *user <= 'z') || (*user >= 'A' && *user <= 'Z') ||
            (*user >= '0' && *user <= '9') || strchr("._-@", *user)) {
            out[n++] = *user;
        }
    }
    out[n] = '\0';
}

/* code, unless stdout could not take the output: then 1 and a line. */
static int flushed(int code)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "flipctl: writing the output failed\n");
        return EXIT_FAIL;
    }
    return code;
}

int main(int argc, char **argv)
{
    struct cli cli;
    const struct command *cmd;
    const char *env;
    char name[80];
    int code;
    int rv;

    memset(&cli, 0, sizeof cli);
    code = parse_args(&cli, argc, argv);
    if (code != 0) {
        return code;
    }
    if (cli.help) {
        return flushed(cmd_help(&cli));
    }
    if (cli.n_pos == 0) {
        return usage_error("no command given");
    }
    cmd = find_command(cli.pos[0]);
    if (cmd == NULL) {
        return usage_error("unknown command '%s'", cli.pos[0]);
    }
    if (cmd->run == cmd_help) {
        return flushed(cmd_help(&cli));
    }
    if (cli.n_pos - 1 < cmd->min_args || cli.n_pos - 1 > cmd->max_args ||
        cli.too_many) {
        return usage_error("%s: expected %s%d argument%s, got %s%d", cmd->name,
                           cmd->min_args == cmd->max_args ? "" : "at most ",
                           cmd->max_args, cmd->max_args == 1 ? "" : "s",
                           cli.too_many ? "more than " : "", cli.n_pos - 1);
    }
    if ((cli.given & ~cmd->opts) != 0) {
        return usage_error(
            "%s: option not valid for this command "
            "(see 'flipctl --help')",
            cmd->name);
    }
    if (cli.endpoints == NULL) {
        env = getenv("FLIPCTL_ENDPOINTS");
        cli.endpoints = env != NULL && env[0] != '\0' ? env : DEFAULT_ENDPOINTS;
    }
    client_name(name, sizeof name);
    rv = flip_client_new(&cli.client, cli.endpoints, name);
    if (rv == FLIP_INVALID) {
        return usage_error(
            "invalid endpoint list '%s' (expected "
            "host:port[,host:port...], at most 16)",
            cli.endpoints);
    }
    if (rv != FLIP_OK) {
        return nomem("start");
    }
    flip_client_set_timeout(cli.client, cli.timeout_ms);
    code = cmd->run(&cli);
    flip_client_free(cli.client);
    return flushed(code);
}
