/* flipctl itself (tools/flipctl/cli.c, cli_watch.c) in process: the
 * command line (exit code 2 and its exact message for every kind of bad
 * argument), the output helpers (exact text, and FLIP_NOMEM when an
 * allocation fails), the status table, JSON and verdict over hand-made
 * node answers, and the commands against endpoints where nothing listens
 * (exit 1, eval's --default, watch's --timeout).
 *
 * flipctl's main() is compiled in here as flipctl_main() (its status
 * table and watch helpers are static to the program); the library it
 * calls is linked into the unit binary as objects. Each test runs in its own
 * forked process, so the signal handlers and the self-pipe cli_watch.c
 * sets up stay there. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/fakewire.h"
#include "../lib/runner.h"
#include "lib/heap.h"
#include "lib/num.h"
#include "proto/codec.h"

int flipctl_main(int argc, char **argv);
#define main flipctl_main
#include "tools/flipctl/cli.c"
#undef main
#include "tools/flipctl/cli_member.c"
#include "tools/flipctl/cli_watch.c"

/* ---- capturing stdout and stderr ---------------------------------------- */

#define CAP 16384

struct out
{
    int code;
    char out[CAP];
    char err[CAP];
};

struct capture
{
    int saved[2];
    FILE *f[2];
};

static void capture_begin(struct capture *c)
{
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < 2; i++) {
        c->f[i] = tmpfile();
        CHECK(c->f[i] != NULL);
        c->saved[i] = dup(i + 1);
        CHECK(c->saved[i] >= 0);
        CHECK(dup2(fileno(c->f[i]), i + 1) == i + 1);
    }
}

static void capture_end(struct capture *c, char *out, char *err)
{
    char *dst[2] = { out, err };
    size_t n;

    fflush(stdout);
    fflush(stderr);
    clearerr(stdout);
    for (int i = 0; i < 2; i++) {
        CHECK(dup2(c->saved[i], i + 1) == i + 1);
        close(c->saved[i]);
        rewind(c->f[i]);
        n = fread(dst[i], 1, CAP - 1, c->f[i]);
        dst[i][n] = '\0';
        fclose(c->f[i]);
    }
}

/* Runs flipctl with the NULL-terminated arguments after argv[0]. */
static void run(struct out *o, ...)
{
    char *argv[400];
    int argc = 0;
    struct capture c;
    va_list ap;

    argv[argc++] = "flipctl";
    va_start(ap, o);
    while ((argv[argc] = va_arg(ap, char *)) != NULL) {
        argc++;
    }
    va_end(ap);
    capture_begin(&c);
    o->code = flipctl_main(argc, argv);
    capture_end(&c, o->out, o->err);
}

static void check_str(const char *got, const char *want, const char *what)
{
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "  %s: got [%s]\n  want [%s]\n", what, got, want);
    }
    CHECK(strcmp(got, want) == 0);
}

static void check_prefix(const char *got, const char *want, const char *what)
{
    if (strncmp(got, want, strlen(want)) != 0) {
        fprintf(stderr, "  %s: got [%s]\n  want prefix [%s]\n", what, got,
                want);
    }
    CHECK(strncmp(got, want, strlen(want)) == 0);
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s);
    size_t k = strlen(tail);

    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* Exit 2, nothing on stdout, "flipctl: <msg>" and the hint on stderr. */
static void check_usage(const struct out *o, const char *msg)
{
    char want[1024];

    snprintf(want, sizeof want, "flipctl: %s\ntry 'flipctl --help'\n", msg);
    CHECK_EQ_INT(o->code, EXIT_USAGE);
    check_str(o->out, "", "stdout");
    check_str(o->err, want, "stderr");
}

/* A TCP socket bound to a free port of 127.0.0.1, its "host:port" in
 * addr; listening or not (then a connect to it is refused at once). */
static int loopback(char addr[32], int listening)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    CHECK(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(!listening || listen(fd, 8) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    snprintf(addr, 32, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    return fd;
}

/* An endpoint where nothing listens; the socket stays open for the test. */
static const char *dead_endpoint(void)
{
    static char addr[32];

    (void)loopback(addr, 0);
    return addr;
}

/* ---- allocation faults (this thread only) -------------------------------- */

static pthread_t fault_thread;
static int fault_at; /* fail the allocation with this number; -1: none */
static int fault_seen;

static int fault_nth(void *data)
{
    (void)data;
    if (!pthread_equal(pthread_self(), fault_thread)) {
        return 0;
    }
    return fault_seen++ == fault_at;
}

static void fault_arm(int nth)
{
    fault_thread = pthread_self();
    fault_at = nth;
    fault_seen = 0;
    flip_heap_set_fault(fault_nth, NULL);
}

static void fault_off(void)
{
    flip_heap_set_fault(NULL, NULL);
}

/* ---- the command line -----------------------------------------------------
 */

/* Every malformed command line exits 2 with its own message, before any
 * connection is tried (the endpoint is a port where nothing listens). */
TEST(cli_usage_errors, 20)
{
    const char *ep = dead_endpoint();
    char *words[300];
    struct out o;
    char msg[256];

    run(&o, NULL);
    check_usage(&o, "no command given");
    run(&o, "frob", NULL);
    check_usage(&o, "unknown command 'frob'");
    run(&o, "--frob", "get", "k", NULL);
    check_usage(&o, "unknown option --frob");
    run(&o, "--frob=1", "get", "k", NULL);
    check_usage(&o, "unknown option --frob=1");
    run(&o, "--abcdefghijklmnopqrstuvwxyz0123456789", "get", "k", NULL);
    check_usage(&o, "unknown option --abcdefghijklmnopqrstuvwxyz0123456789");
    run(&o, "get", "k", "--endpoints", NULL);
    check_usage(&o, "option --endpoints needs a value");
    run(&o, "get", "k", "--timeout", NULL);
    check_usage(&o, "option --timeout needs a value");

    run(&o, "--timeout", "0", "get", "k", NULL);
    check_usage(&o,
                "--timeout: '0' is not a number of ms between 1 and "
                "3600000");
    run(&o, "--timeout=3600001", "get", "k", NULL);
    check_usage(&o,
                "--timeout: '3600001' is not a number of ms between 1 "
                "and 3600000");
    run(&o, "--timeout", "5s", "get", "k", NULL);
    check_usage(&o,
                "--timeout: '5s' is not a number of ms between 1 and "
                "3600000");
    run(&o, "--timeout", "-5", "get", "k", NULL);
    check_usage(&o,
                "--timeout: '-5' is not a number of ms between 1 and "
                "3600000");
    run(&o, "del", "k", "--if-revision", "x", NULL);
    check_usage(&o, "--if-revision: 'x' is not a revision");
    run(&o, "watch", "--from-revision", " 1", NULL);
    check_usage(&o, "--from-revision: ' 1' is not a revision");
    run(&o, "eval", "k", "--min-revision", "1x", NULL);
    check_usage(&o, "--min-revision: '1x' is not a revision");
    run(&o, "watch", "--until-revision", "", NULL);
    check_usage(&o, "--until-revision: '' is not a revision");
    run(&o, "watch", "--count", "0", NULL);
    check_usage(&o, "--count: '0' is not a positive number");
    run(&o, "watch", "--count=two", NULL);
    check_usage(&o, "--count: 'two' is not a positive number");
    run(&o, "eval", "k", "--wait-ms", "3600001", NULL);
    check_usage(&o,
                "--wait-ms: '3600001' is not a number of ms up to "
                "3600000");
    run(&o, "eval", "k", "--wait-ms", "+1", NULL);
    check_usage(&o, "--wait-ms: '+1' is not a number of ms up to 3600000");

    /* argument counts */
    run(&o, "set", "k", NULL);
    check_usage(&o, "set: expected 2 arguments, got 1");
    run(&o, "get", NULL);
    check_usage(&o, "get: expected 1 argument, got 0");
    run(&o, "ls", "a", "b", NULL);
    check_usage(&o, "list: expected at most 1 argument, got 2");
    run(&o, "status", "x", NULL);
    check_usage(&o, "status: expected 0 arguments, got 1");
    words[0] = "watch";
    for (int i = 1; i <= 257; i++) {
        words[i] = "p.";
    }
    {
        char *argv[260];
        struct capture c;

        argv[0] = "flipctl";
        memcpy(argv + 1, words, 258 * sizeof words[0]);
        capture_begin(&c);
        o.code = flipctl_main(259, argv);
        capture_end(&c, o.out, o.err);
    }
    check_usage(&o,
                "watch: expected at most 256 arguments, got more than "
                "256");

    /* options a command does not take */
    run(&o, "get", "k", "--hash", NULL);
    check_usage(&o,
                "get: option not valid for this command (see 'flipctl "
                "--help')");
    run(&o, "status", "--stale", NULL);
    check_usage(&o,
                "status: option not valid for this command (see "
                "'flipctl --help')");
    run(&o, "delete", "k", "--change-type", NULL);
    check_usage(&o,
                "del: option not valid for this command (see 'flipctl "
                "--help')");
    run(&o, "--endpoints", ep, "set", "k", "v", "--type", "float", NULL);
    check_usage(&o, "set: unknown --type 'float'");
    run(&o, "--endpoints", ep, "set", "k", "v", "--change-type", NULL);
    check_usage(&o, "set: --change-type needs --type T");
    run(&o, "--endpoints", ep, "set", "k", "abc", "--type=int", NULL);
    check_usage(&o, "set: 'abc' is not a valid int value");
    run(&o, "--endpoints", ep, "eval", "k", "--type", "float", NULL);
    check_usage(&o, "eval: unknown --type 'float'");
    run(&o, "--endpoints", ep, "eval", "k", "--type", "bool", "--default",
        "maybe", NULL);
    check_usage(&o, "eval: --default 'maybe' is not a valid bool value");
    run(&o, "--endpoints", ep, "eval", "bad key!", NULL);
    check_usage(&o, "eval: invalid endpoint list or key 'bad key!'");
    run(&o, "--endpoints", ep, "watch", "bad prefix!", NULL);
    check_usage(&o,
                "watch: invalid endpoint list or prefix (a prefix is up "
                "to 256 characters of A-Z a-z 0-9 . _ - / :)");

    /* endpoints: the option, else $FLIPCTL_ENDPOINTS, else the default */
    run(&o, "--endpoints", "nope", "get", "k", NULL);
    check_usage(&o,
                "invalid endpoint list 'nope' (expected "
                "host:port[,host:port...], at most 16)");
    CHECK(setenv("FLIPCTL_ENDPOINTS", "env-nope", 1) == 0);
    run(&o, "get", "k", NULL);
    check_usage(&o,
                "invalid endpoint list 'env-nope' (expected "
                "host:port[,host:port...], at most 16)");
    snprintf(msg, sizeof msg, "%s", ep);
    CHECK(setenv("FLIPCTL_ENDPOINTS", msg, 1) == 0);
    run(&o, "--timeout", "200", "get", "k", NULL);
    CHECK_EQ_INT(o.code, EXIT_FAIL);
    snprintf(msg, sizeof msg,
             "flipctl: get k: gave up after 200 ms: %s: connect: Connection "
             "refused\n",
             ep);
    check_str(o.err, msg, "get via $FLIPCTL_ENDPOINTS");
}

/* --help, -h and `help` print the whole usage text (both halves) and exit
 * 0, whatever else is on the line; "--" ends the options, so "-h" after it
 * is a word, and "-" and "-5" are words too. */
TEST(cli_help_and_words, 10)
{
    struct out o;
    char want[8192];

    snprintf(want, sizeof want, "%s%s", usage_text, usage_text_tail);
    run(&o, "--help", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, want, "--help");
    check_str(o.err, "", "--help stderr");
    run(&o, "get", "-h", "--frob=", NULL);
    check_usage(&o, "unknown option --frob="); /* parsed before help */
    run(&o, "bogus", "-h", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, want, "-h");
    run(&o, "help", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, want, "help");
    run(&o, "help", "extra", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, want, "help extra");
    CHECK(strstr(want, "5 degraded, 6 no leader.\n") != NULL);

    run(&o, "--", "-h", NULL);
    check_usage(&o, "unknown command '-h'");
    run(&o, "-", NULL);
    check_usage(&o, "unknown command '-'");
    run(&o, "get", "-5", "-x", NULL);
    check_usage(&o, "get: expected 1 argument, got 2");
    run(&o, "get", "--", "--json", "--endpoints", "x", NULL);
    check_usage(&o, "get: expected 1 argument, got 3");
}

/* Decimal digits only, up to 2^64-1, within the caller's range: no sign,
 * no blank, no "0x" (strtoull would take " 1", "+1" and "-1"). */
TEST(num_parse_u64_digits_only, 5)
{
    uint64_t v = 7;

    CHECK_EQ_INT(num_parse_u64("18446744073709551615", 0, UINT64_MAX, &v),
                 FLIP_OK);
    CHECK(v == UINT64_MAX);
    CHECK_EQ_INT(num_parse_u64("0", 0, UINT64_MAX, &v), FLIP_OK);
    CHECK(v == 0);
    CHECK_EQ_INT(num_parse_u64("0042", 0, 100, &v), FLIP_OK);
    CHECK(v == 42);
    v = 7;
    static const char *const bad[] = {
        "18446744073709551616",
        "99999999999999999999",
        "12x",
        "/1",
        ":1",
        "",
        " 1",
        "+1",
        "-1",
        "0x10",
        "1 ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(num_parse_u64(bad[i], 0, UINT64_MAX, &v), FLIP_INVALID);
    }
    CHECK_EQ_INT(num_parse_u64(NULL, 0, UINT64_MAX, &v), FLIP_INVALID);
    CHECK_EQ_INT(num_parse_u64("9", 10, 20, &v), FLIP_INVALID);
    CHECK_EQ_INT(num_parse_u64("21", 10, 20, &v), FLIP_INVALID);
    CHECK(v == 7);
    CHECK_EQ_INT(num_parse_u64("20", 10, 20, &v), FLIP_OK);
    CHECK(v == 20);
}

/* The client name is "flipctl:" and the characters of $USER a server
 * takes (letters, digits, . _ - @), at most 64 bytes; no $USER, an empty
 * one or no room: "flipctl". */
TEST(cli_client_name, 5)
{
    char name[80];
    char longuser[200];

    CHECK(unsetenv("USER") == 0);
    client_name(name, sizeof name);
    check_str(name, "flipctl", "no USER");
    CHECK(setenv("USER", "", 1) == 0);
    client_name(name, sizeof name);
    check_str(name, "flipctl", "empty USER");
    CHECK(setenv("USER", "Ann.o_b-9@x y!z\xc3\xa9/Z0~{", 1) == 0);
    client_name(name, sizeof name);
    check_str(name, "flipctl:Ann.o_b-9@xyzZ0", "odd USER");
    client_name(name, 9); /* "flipctl" + ':' + NUL: no room for more */
    check_str(name, "flipctl", "no room");
    client_name(name, 12);
    check_str(name, "flipctl:Ann", "cut to the buffer");
    memset(longuser, 'u', sizeof longuser - 1);
    longuser[sizeof longuser - 1] = '\0';
    CHECK(setenv("USER", longuser, 1) == 0);
    client_name(name, sizeof name);
    CHECK_EQ_INT(strlen(name), 64);
    check_prefix(name, "flipctl:uuuu", "long USER");
    CHECK(strspn(name + 8, "u") == 56);
}

/* ---- output helpers ------------------------------------------------------ */

static void flag_init(struct flip_flag *f)
{
    memset(f, 0, sizeof *f);
    f->key = "k\x01";
    f->actor = "ann";
    f->reason = "why \"so\"";
    f->revision = 12;
    f->create_revision = 3;
    f->time_ms = 1764142200123; /* 2025-11-26T07:30:00.123Z */
}

/* A flag's JSON fields, with and without a value; times before 1970 keep
 * a positive millisecond part. */
TEST(cli_flag_json_fields, 5)
{
    struct flip_flag f;
    struct capture c;
    char out[CAP];
    char err[CAP];
    char when[48];

    flag_init(&f);
    f.value.type = FLIP_TYPE_INT;
    f.value.u.i = -4;
    capture_begin(&c);
    CHECK_EQ_INT(put_flag_json_fields(&f), FLIP_OK);
    f.value.type = FLIP_TYPE_AUTO; /* a deleted flag: no value */
    f.time_ms = -1;
    fputs("|", stdout);
    CHECK_EQ_INT(put_flag_json_fields(&f), FLIP_OK);
    capture_end(&c, out, err);
    check_str(out,
              "\"key\":\"k\\u0001\",\"value\":-4,\"type\":\"int\","
              "\"revision\":12,\"create_revision\":3,\"actor\":\"ann\","
              "\"reason\":\"why \\\"so\\\"\","
              "\"time\":\"2025-11-26T07:30:00.123Z\","
              "\"time_ms\":1764142200123|"
              "\"key\":\"k\\u0001\",\"value\":null,\"type\":null,"
              "\"revision\":12,\"create_revision\":3,\"actor\":\"ann\","
              "\"reason\":\"why \\\"so\\\"\","
              "\"time\":\"1969-12-31T23:59:59.999Z\",\"time_ms\":-1",
              "json fields");
    clock_format_utc(-1000, when, sizeof when);
    check_str(when, "1969-12-31T23:59:59.000Z", "whole second before 1970");
    clock_format_utc(0, when, sizeof when);
    check_str(when, "1970-01-01T00:00:00.000Z", "epoch");
}

/* Text output: strings escaped, JSON compacted, an empty text writes
 * nothing, a list value escapes JSON too. */
TEST(cli_put_text, 5)
{
    struct flip_value v;
    struct capture c;
    char out[CAP];
    char err[CAP];
    char small[8];

    capture_begin(&c);
    CHECK_EQ_INT(put_escaped(""), FLIP_OK);
    fputs("|", stdout);
    v.type = FLIP_TYPE_STRING;
    v.u.s = "a\tb\x1b";
    CHECK_EQ_INT(put_value_text(&v), FLIP_OK);
    fputs("|", stdout);
    v.type = FLIP_TYPE_JSON;
    v.u.s = "{ \"a\" : [1, \"x\\ty\"] }";
    CHECK_EQ_INT(put_value_text(&v), FLIP_OK);
    fputs("|", stdout);
    CHECK_EQ_INT(put_list_value(&v), FLIP_OK);
    fputs("|", stdout);
    v.type = FLIP_TYPE_DOUBLE;
    v.u.d = 0.5;
    CHECK_EQ_INT(put_value_text(&v), FLIP_OK);
    capture_end(&c, out, err);
    check_str(out,
              "|a\\tb\\x1b|{\"a\":[1,\"x\\ty\"]}|{\"a\":[1,\"x\\\\ty\"]}|0.5",
              "text");
    check_str(escaped_copy(small, sizeof small, "a\nbcdefgh"), "a\\nbcde",
              "escaped_copy cut to fit");
    check_str(escaped_copy(small, sizeof small, ""), "",
              "escaped_copy of \"\"");
}

/* Each helper returns FLIP_NOMEM when any one of its allocations fails
 * (and OK once none does); escaped_copy gives "?". */
TEST(cli_put_nomem, 10)
{
    struct flip_flag f;
    struct flip_value v;
    struct capture c;
    char out[CAP];
    char err[CAP];
    char small[8];
    int rv;
    int n;

    flag_init(&f);
    f.value.type = FLIP_TYPE_STRING;
    f.value.u.s = "v";
    for (n = 0; n < 50; n++) {
        capture_begin(&c);
        fault_arm(n);
        rv = put_flag_json_fields(&f);
        fault_off();
        capture_end(&c, out, err);
        if (rv == FLIP_OK) {
            break;
        }
        CHECK_EQ_INT(rv, FLIP_NOMEM);
    }
    CHECK(n >= 4 && n < 50); /* value, key, actor, reason */

    v.type = FLIP_TYPE_STRING;
    v.u.s = "text";
    for (n = 0; n < 50; n++) {
        capture_begin(&c);
        fault_arm(n);
        rv = put_value_text(&v);
        fault_off();
        capture_end(&c, out, err);
        if (rv == FLIP_OK) {
            check_str(out, "text", "value once allocations succeed");
            break;
        }
        CHECK_EQ_INT(rv, FLIP_NOMEM);
        check_str(out, "", "value when an allocation fails");
    }
    CHECK(n >= 2 && n < 50);
    for (n = 0; n < 50; n++) {
        capture_begin(&c);
        fault_arm(n);
        rv = put_list_value(&v);
        fault_off();
        capture_end(&c, out, err);
        if (rv == FLIP_OK) {
            check_str(out, "text", "list value once allocations succeed");
            break;
        }
        CHECK_EQ_INT(rv, FLIP_NOMEM);
        check_str(out, "", "list value when an allocation fails");
    }
    CHECK(n >= 2 && n < 50);

    fault_arm(0);
    CHECK_EQ_INT(put_json_str("x"), FLIP_NOMEM);
    fault_off();
    fault_arm(0);
    check_str(escaped_copy(small, sizeof small, "abc"), "?", "escaped_copy");
    fault_off();
    capture_begin(&c);
    CHECK_EQ_INT(nomem("what"), EXIT_FAIL);
    capture_end(&c, out, err);
    check_str(err, "flipctl: what: out of memory\n", "nomem");
}

/* ---- status over hand-made answers ----------------------------------------
 */

static struct flip_member members3[3];

static void mk_node(struct flip_node_status *s,
                    uint64_t id,
                    const char *role,
                    uint64_t leader,
                    const char *raft,
                    const char *client)
{
    memset(s, 0, sizeof *s);
    s->id = id;
    s->role = (char *)role;
    s->term = 4;
    s->leader_id = leader;
    s->leader_address = "";
    s->applied_revision = 100 + id;
    s->commit_index = 200;
    s->raft_address = (char *)raft;
    s->client_address = (char *)client;
    s->cluster_id = "c1";
    s->has_live = 1;
    s->live = 1;
    s->leader_commit = 200;
    s->lag = id;
    s->members = members3;
    s->n_members = 3;
}

static void mk_members(void)
{
    static const char *const raft[3] = { "r:1", "r:2", "r:3" };
    static const char *const client[3] = { "c:1", "c:2", "" };

    for (int i = 0; i < 3; i++) {
        members3[i].id = (uint64_t)i + 1;
        members3[i].raft_address = (char *)raft[i];
        members3[i].client_address = (char *)client[i];
        members3[i].voter = 1;
        members3[i].joined = i != 2;
    }
}

static struct status_run *new_run(const char *endpoints)
{
    struct status_run *r = calloc(1, sizeof *r);
    const char *p = endpoints;
    const char *comma;

    CHECK(r != NULL);
    for (;; p = comma + 1) {
        comma = strchr(p, ',');
        queue_addr(r, p, comma ? (size_t)(comma - p) : strlen(p));
        if (comma == NULL) {
            break;
        }
    }
    r->n_given = r->n_addr;
    return r;
}

/* Records that addr[q] gave answer st (as status_ask_all does). */
static struct flip_node_status *answer_at(struct status_run *r, size_t q)
{
    r->answered[q] = 1;
    r->from[r->n_st] = q;
    return &r->st[r->n_st++];
}

static void put_status(const struct status_run *r,
                       int json,
                       int hash,
                       char *out,
                       char *err,
                       int *code)
{
    struct capture c;

    capture_begin(&c);
    if (json) {
        CHECK_EQ_INT(put_status_json(r), FLIP_OK);
    } else {
        put_status_table(r, hash);
    }
    *code = status_verdict(r);
    capture_end(&c, out, err);
}

/* Endpoints are trimmed of spaces and tabs, empty and over-long ones and
 * repeats are dropped, at most 64 are kept. */
TEST(cli_status_queue, 5)
{
    struct status_run *r;
    char lots[64 * 8 + 40];
    char longaddr[400];
    size_t n = 0;

    r = new_run(" \t127.0.0.1:1\t ,,127.0.0.1:10, ,127.0.0.1:1,127.0.0.1:2 ");
    CHECK_EQ_INT(r->n_addr, 3);
    check_str(r->addr[0], "127.0.0.1:1", "trimmed");
    check_str(r->addr[1], "127.0.0.1:10", "same length, other text");
    check_str(r->addr[2], "127.0.0.1:2", "second");
    CHECK_EQ_INT(find_addr(r, "127.0.0.1:3", 11), STATUS_MAX);
    CHECK_EQ_INT(find_addr(r, "127.0.0.1:2", 11), 2);
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    queue_addr(r, longaddr, ADDR_MAX);
    CHECK_EQ_INT(r->n_addr, 3);
    queue_addr(r, longaddr, ADDR_MAX - 1);
    CHECK_EQ_INT(r->n_addr, 4);
    free(r);

    for (int i = 0; i < 70; i++) {
        n += (size_t)snprintf(lots + n, sizeof lots - n, "%s%d", i ? "," : "",
                              i);
    }
    r = new_run(lots);
    CHECK_EQ_INT(r->n_addr, STATUS_MAX);
    check_str(r->addr[63], "63", "the 64th kept");
    for (int i = 0; i < 70; i++) {
        add_row(r, (uint64_t)i + 1, "", "x", NULL);
    }
    CHECK_EQ_INT(r->n_rows, STATUS_MAX);
    CHECK(find_row(r, 0) == NULL);
    CHECK(find_row(r, 64) == &r->rows[63]);
    CHECK(find_row(r, 65) == NULL);
    free(r);
}

/* A healthy cluster asked at two endpoints: rows in the order the user
 * named them, then the other member (known only from member lists, its
 * raft address filled in, no client address), then an endpoint that did
 * not answer and is no member; the table right-aligns numbers, shows "-"
 * for what is unknown and HASH only with --hash. */
TEST(cli_status_table, 5)
{
    struct status_run *r;
    struct flip_node_status *s;
    char out[CAP];
    char err[CAP];
    int code;

    mk_members();
    r = new_run("c:2,c:1,c:9");
    s = answer_at(r, 0);
    mk_node(s, 2, "follower", 1, "", "c:2"); /* raft address unknown */
    s->has_state_hash = 1;
    s->state_hash = 0xabc;
    s = answer_at(r, 1);
    mk_node(s, 1, "leader", 1, "r:1", "c:1");
    s->has_live = 0; /* an older server: does not say */
    s->cluster_id = "";
    s = answer_at(r, 0); /* the same node again, by another address */
    mk_node(s, 2, "follower", 1, "r:2", "c:2");
    r->answered[2] = -1;
    status_build_rows(r);
    CHECK_EQ_INT(r->n_rows, 4);

    put_status(r, 0, 1, out, err, &code);
    CHECK_EQ_INT(code, EXIT_DEGRADED);
    check_str(out,
              "ID  RAFT  CLIENT  ROLE      TERM  APPLIED  LAG  LEADER  LIVE  "
              "REACHABLE  HASH\n"
              "2   r:2   c:2     follower     4      102    2       1  yes   "
              "yes        0000000000000abc\n"
              "1   r:1   c:1     leader       4      101    1       1  -     "
              "yes        -\n"
              "-   -     c:9     -            -        -    -       -  -     "
              "no         -\n"
              "3   r:3   -       -            -        -    -       -  -     "
              "no         -\n",
              "table with --hash");
    check_str(err, "flipctl: status: degraded: c:9 does not answer\n",
              "verdict");

    put_status(r, 0, 0, out, err, &code);
    check_prefix(out,
                 "ID  RAFT  CLIENT  ROLE      TERM  APPLIED  LAG  LEADER  "
                 "LIVE  REACHABLE\n"
                 "2   r:2   c:2     follower     4      102    2       1  "
                 "yes   yes\n",
                 "table without --hash");

    put_status(r, 1, 0, out, err, &code);
    CHECK_EQ_INT(code, EXIT_DEGRADED);
    check_str(
        out,
        "[\n"
        "  {\"id\":2,\"raft_address\":\"r:2\",\"client_address\":\"c:2\","
        "\"joined\":true,\"role\":\"follower\",\"term\":4,"
        "\"applied_revision\":102,\"commit_index\":200,\"leader_id\":1,"
        "\"last_contact_ms\":0,\"store_bytes\":0,\"max_store_bytes\":0,"
        "\"leader_commit\":200,\"lag\":2,\"live\":true,\"cluster_id\":\"c1\","
        "\"reachable\":true,\"state_hash\":\"0000000000000abc\"},\n"
        "  {\"id\":1,\"raft_address\":\"r:1\",\"client_address\":\"c:1\","
        "\"joined\":true,\"role\":\"leader\",\"term\":4,"
        "\"applied_revision\":101,\"commit_index\":200,\"leader_id\":1,"
        "\"last_contact_ms\":0,\"store_bytes\":0,\"max_store_bytes\":0,"
        "\"leader_commit\":200,\"lag\":1,\"live\":null,\"cluster_id\":\"\","
        "\"reachable\":true},\n"
        "  {\"id\":null,\"raft_address\":\"\",\"client_address\":\"c:9\","
        "\"joined\":false,\"role\":null,\"term\":null,"
        "\"applied_revision\":null,\"commit_index\":null,\"leader_id\":null,"
        "\"last_contact_ms\":null,\"leader_commit\":null,\"lag\":null,"
        "\"live\":null,\"cluster_id\":null,\"reachable\":false},\n"
        "  {\"id\":3,\"raft_address\":\"r:3\",\"client_address\":\"\","
        "\"joined\":false,\"role\":null,\"term\":null,"
        "\"applied_revision\":null,\"commit_index\":null,\"leader_id\":null,"
        "\"last_contact_ms\":null,\"leader_commit\":null,\"lag\":null,"
        "\"live\":null,\"cluster_id\":null,\"reachable\":false}\n"
        "]\n",
        "json");
    free(r);
}

/* The verdict: 1 when nobody answered, 6 when nobody knows a leader, 5
 * for a member that does not answer (named, or "a member" without a
 * client address), a node not live, or two cluster ids; else 0. An empty
 * run prints "[]" in JSON. */
TEST(cli_status_verdict, 5)
{
    struct status_run *r;
    struct flip_node_status *s;
    char out[CAP];
    char err[CAP];
    int code;

    mk_members();
    r = new_run("c:1");
    r->answered[0] = -1;
    status_build_rows(r);
    put_status(r, 1, 0, out, err, &code);
    CHECK_EQ_INT(code, EXIT_FAIL);
    check_str(err, "flipctl: status: no node answered\n", "nobody");
    CHECK_EQ_INT(r->n_rows, 1);
    free(r);

    r = calloc(1, sizeof *r);
    CHECK(r != NULL);
    put_status(r, 1, 0, out, err, &code);
    check_str(out, "[]\n", "no rows");
    free(r);

    r = new_run("c:1");
    mk_node(answer_at(r, 0), 1, "candidate", 0, "r:1", "c:1");
    status_build_rows(r);
    put_status(r, 0, 0, out, err, &code);
    CHECK_EQ_INT(code, EXIT_NOLEADER);
    check_str(err, "flipctl: status: no node knows a leader\n", "no leader");
    free(r);

    /* members 1 and 2 answer; 3 (no client address) does not */
    r = new_run("c:1,c:2");
    mk_node(answer_at(r, 0), 1, "leader", 1, "r:1", "c:1");
    mk_node(answer_at(r, 1), 2, "follower", 1, "r:2", "c:2");
    status_build_rows(r);
    put_status(r, 0, 0, out, err, &code);
    CHECK_EQ_INT(code, EXIT_DEGRADED);
    check_str(err, "flipctl: status: degraded: a member does not answer\n",
              "member without address");
    free(r);

    members3[2].client_address = "c:3";
    r = new_run("c:1,c:2,c:3");
    mk_node(answer_at(r, 0), 1, "leader", 1, "r:1", "c:1");
    mk_node(answer_at(r, 1), 2, "follower", 1, "r:2", "c:2");
    s = answer_at(r, 2);
    mk_node(s, 3, "follower", 1, "r:3", "c:3");
    status_build_rows(r);
    put_status(r, 0, 0, out, err, &code);
    CHECK_EQ_INT(code, 0);
    check_str(err, "", "healthy");
    s->live = 0;
    s->lag = 900;
    put_status(r, 0, 0, out, err, &code);
    CHECK_EQ_INT(code, EXIT_DEGRADED);
    check_str(err,
              "flipctl: status: degraded: node 3 is not live (900 behind its "
              "leader)\n",
              "not live");
    CHECK(strstr(out,
                 "\n3   r:3   c:3     follower     4      103  900"
                 "       1  no    yes\n") != NULL);
    s->live = 1;
    s->cluster_id = "c2";
    put_status(r, 0, 0, out, err, &code);
    CHECK_EQ_INT(code, EXIT_DEGRADED);
    check_str(err,
              "flipctl: status: degraded: nodes of different clusters answer "
              "(c1, c2)\n",
              "two clusters");
    free(r);
}

/* Rows the user did not name sort by id, unknown ids last, equal ids by
 * client address. */
TEST(cli_status_row_order, 5)
{
    struct status_row a[5];

    memset(a, 0, sizeof a);
    a[0] = (struct status_row){ 0, "", "z", NULL, STATUS_MAX };
    a[1] = (struct status_row){ 7, "", "b", NULL, STATUS_MAX };
    a[2] = (struct status_row){ 0, "", "a", NULL, STATUS_MAX };
    a[3] = (struct status_row){ 7, "", "a", NULL, STATUS_MAX };
    a[4] = (struct status_row){ 9, "", "q", NULL, 0 };
    qsort(a, 5, sizeof a[0], row_cmp);
    CHECK(a[0].id == 9);
    CHECK(a[1].id == 7 && strcmp(a[1].client, "a") == 0);
    CHECK(a[2].id == 7 && strcmp(a[2].client, "b") == 0);
    CHECK(a[3].id == 0 && strcmp(a[3].client, "a") == 0);
    CHECK(a[4].id == 0 && strcmp(a[4].client, "z") == 0);
}

/* put_status_json returns FLIP_NOMEM when any one allocation fails. */
TEST(cli_status_json_nomem, 10)
{
    struct status_run *r;
    struct capture c;
    char out[CAP];
    char err[CAP];
    int rv;
    int n;

    mk_members();
    r = new_run("c:1");
    mk_node(answer_at(r, 0), 1, "leader", 1, "r:1", "c:1");
    status_build_rows(r);
    for (n = 0; n < 60; n++) {
        capture_begin(&c);
        fault_arm(n);
        rv = put_status_json(r);
        fault_off();
        capture_end(&c, out, err);
        if (rv == FLIP_OK) {
            break;
        }
        CHECK_EQ_INT(rv, FLIP_NOMEM);
    }
    CHECK(n >= 4 && n < 60); /* raft, client, role, cluster id */
    free(r);
}

/* ---- commands against endpoints where nothing listens ------------------- */

/* Each command exits 1 and says why; status lists the endpoint as not
 * reachable (--json: quietly); output that cannot be written (/dev/full)
 * exits 1, help's too. */
TEST(cli_commands_unreachable, 20)
{
    const char *ep = dead_endpoint();
    char want[512];
    struct out o;

    run(&o, "--endpoints", ep, "--timeout", "100", "list", "p.", NULL);
    CHECK_EQ_INT(o.code, EXIT_FAIL);
    snprintf(want, sizeof want,
             "flipctl: list: gave up after 100 ms: %s: connect: Connection "
             "refused\n",
             ep);
    check_str(o.err, want, "list");
    check_str(o.out, "", "list stdout");

    run(&o, "--endpoints", ep, "--json", "status", NULL);
    CHECK_EQ_INT(o.code, EXIT_FAIL);
    snprintf(want, sizeof want,
             "[\n  {\"id\":null,\"raft_address\":\"\",\"client_address\":"
             "\"%s\",\"joined\":false,\"role\":null,\"term\":null,"
             "\"applied_revision\":null,\"commit_index\":null,"
             "\"leader_id\":null,\"last_contact_ms\":null,"
             "\"leader_commit\":null,\"lag\":null,\"live\":null,"
             "\"cluster_id\":null,\"reachable\":false}\n]\n",
             ep);
    check_str(o.out, want, "status --json");
    check_str(o.err, "flipctl: status: no node answered\n", "status --json");

    /* eval's reason line comes first; help's output failed too (was:
     * exit 0) */
    for (int i = 0; i < 3; i++) {
        struct capture c;
        char *eval[] = {
            "flipctl",   "--endpoints", (char *)ep,  "eval", "k",
            "--default", "1",           "--wait-ms", "0",    NULL
        };
        char *help[] = { "flipctl", i == 1 ? "help" : "--help", NULL };
        int fd = open("/dev/full", O_WRONLY);

        if (fd < 0) {
            runner_skip("no /dev/full");
        }
        capture_begin(&c);
        CHECK(dup2(fd, 1) == 1);
        o.code = i == 0 ? flipctl_main(9, eval) : flipctl_main(2, help);
        capture_end(&c, o.out, o.err);
        close(fd);
        CHECK_EQ_INT(o.code, EXIT_FAIL);
        CHECK(ends_with(o.err, "flipctl: writing the output failed\n"));
        CHECK(i == 0 || strchr(o.err, '\n') == o.err + strlen(o.err) - 1);
    }
}

/* eval with no node: the default after --wait-ms, as text (reason on
 * stderr) or JSON; no default is exit 3. watch: --timeout without a goal
 * is exit 0, with --count unreached exit 1. */
TEST(cli_eval_watch_unreachable, 20)
{
    const char *ep = dead_endpoint();
    char want[512];
    struct out o;

    run(&o, "--endpoints", ep, "eval", "k", "--default", "5", "--type",
        "double", "--wait-ms", "50", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, "5\n", "eval default as text");
    check_prefix(
        o.err, "flipctl: eval k: reason=default state=", "eval default reason");
    CHECK(strchr(o.err, '\n') == o.err + strlen(o.err) - 1);
    CHECK(strstr(o.err, "revision=") == NULL);

    run(&o, "--endpoints", ep, "eval", "k", "--wait-ms", "0", NULL);
    CHECK_EQ_INT(o.code, EXIT_NOTFOUND);
    check_str(o.out, "", "eval without default");
    CHECK(strstr(o.err, " (no value and no --default)\n") != NULL);

    run(&o, "--endpoints", ep, "--json", "eval", "k", "--default", "x y",
        "--wait-ms", "0", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_prefix(o.out,
                 "{\"key\":\"k\",\"value\":\"x y\",\"type\":\"string\","
                 "\"reason\":\"default\",\"state\":\"",
                 "eval --json default");
    CHECK(strstr(o.out, "\",\"revision\":null,\"watch_revision\":0}\n") !=
          NULL);

    run(&o, "--endpoints", ep, "--timeout", "100", "watch", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, "", "watch without goal");
    run(&o, "--endpoints", ep, "--timeout", "100", "watch", "a.", "b.",
        "--until-revision", "9", NULL);
    CHECK_EQ_INT(o.code, EXIT_FAIL);
    check_str(o.out, "", "watch, goal not reached");
    snprintf(want, sizeof want,
             "flipctl: watch: %s: connect: Connection "
             "refused\n",
             ep);
    check_prefix(o.err, want, "watch notice");
    CHECK(strstr(o.err, "flipctl: watch: timed out after 100 ms\n") != NULL);
}

/* ---- watch and eval events ------------------------------------------------
 */

static struct flip_flag ev_flag(const char *key, int64_t v, uint64_t rev)
{
    struct flip_flag f;

    memset(&f, 0, sizeof f);
    f.key = (char *)key;
    f.actor = "ann";
    f.reason = "r\x1b";
    f.value.type = FLIP_TYPE_INT;
    f.value.u.i = v;
    f.revision = rev;
    f.create_revision = 1;
    f.time_ms = 0;
    return f;
}

static struct flip_watch_event ev(enum flip_watch_event_type type,
                                  int resync,
                                  const struct flip_flag *f,
                                  uint64_t rev,
                                  const char *detail)
{
    return (struct flip_watch_event){ .type = type,
                                      .resync = resync,
                                      .flag = f,
                                      .revision = rev,
                                      .state = FLIP_WATCH_LIVE,
                                      .node = "n\x1b:1",
                                      .detail = detail };
}

/* Bytes waiting in the self-pipe (drained). */
static int wakeups(void)
{
    char b[16];
    ssize_t n = read(wake_fds[0], b, sizeof b);

    return n < 0 ? 0 : (int)n;
}

/* What watch prints for each event: a resync announced on stderr (with
 * the node's reason, or "no reason given"), its items as "resync" and
 * its deletes uncounted; state and notices on stderr, escaped; --count
 * reached at the second change, after which nothing more is printed. */
TEST(cli_watch_events, 5)
{
    struct cli cli;
    struct watch_out o;
    struct flip_flag k1 = ev_flag("k1", 7, 40);
    struct flip_flag k2 = ev_flag("k2", 8, 30);
    struct flip_flag k1b = ev_flag("k1", 9, 41);
    struct flip_watch_event e[11];
    struct capture c;
    char out[CAP];
    char err[CAP];

    memset(&cli, 0, sizeof cli);
    cli.given = OPT_COUNT;
    cli.count = 2;
    memset(&o, 0, sizeof o);
    o.cli = &cli;
    CHECK_EQ_INT(setup_wake(), FLIP_OK);
    k2.value.type = FLIP_TYPE_AUTO; /* a resync delete: no value */
    e[0] = ev(FLIP_EV_SNAPSHOT_BEGIN, 1, NULL, 40, "gap\n");
    e[1] = ev(FLIP_EV_SNAPSHOT_BEGIN, 1, NULL, 40, "");
    e[2] = ev(FLIP_EV_SNAPSHOT_BEGIN, 0, NULL, 40, "");
    e[3] = ev(FLIP_EV_SNAPSHOT_ITEM, 1, &k1, 40, "");
    e[4] = ev(FLIP_EV_DELETE, 1, &k2, 40, "");
    e[5] = ev(FLIP_EV_SNAPSHOT_END, 1, NULL, 40, "");
    e[6] = ev(FLIP_EV_CHANGE, 0, &k1b, 41, "");
    e[7] = ev(FLIP_EV_STATE, 0, NULL, 41, "ok\t");
    e[8] = ev(FLIP_EV_NOTICE, 0, NULL, 41, "note\a");
    e[9] = ev(FLIP_EV_DELETE, 0, &k1b, 42, "");
    e[10] = ev(FLIP_EV_CHANGE, 0, &k1b, 43, "");
    capture_begin(&c);
    for (int i = 0; i < 11; i++) {
        on_watch_event(&o, &e[i]);
        if (i == 8) {
            CHECK_EQ_INT(wakeups(), 0);
        }
    }
    capture_end(&c, out, err);
    check_str(out,
              "resync\tk1\t7\tint\t40\tann\tr\\x1b\n"
              "delete\tk2\t-\t-\t40\tann\tr\\x1b\n"
              "change\tk1\t9\tint\t41\tann\tr\\x1b\n"
              "delete\tk1\t-\t-\t42\tann\tr\\x1b\n",
              "watch events");
    check_str(err,
              "flipctl: watch: resync: snapshot at revision 40 from n\\x1b:1 "
              "replaces the state (gap\\n)\n"
              "flipctl: watch: resync: snapshot at revision 40 from n\\x1b:1 "
              "replaces the state (no reason given)\n"
              "flipctl: watch: live: ok\\t\n"
              "flipctl: watch: note\\x07\n",
              "watch stderr");
    CHECK_EQ_INT(o.changes, 2);
    CHECK_EQ_INT(o.done, 1);
    CHECK_EQ_INT(wakeups(), 1);

    /* --until-revision: a snapshot end at R is the goal; --json names the
     * event, marks a delete. */
    memset(&o, 0, sizeof o);
    o.cli = &cli;
    cli.json = 1;
    cli.given = OPT_UNTIL;
    cli.until_revision = 41;
    k2.revision = 44;
    capture_begin(&c);
    on_watch_event(&o, &e[3]);
    on_watch_event(&o, &e[4]);
    on_watch_event(&o, &e[5]); /* revision 40: not yet */
    CHECK_EQ_INT(o.done, 0);
    e[5].revision = 41;
    on_watch_event(&o, &e[5]);
    capture_end(&c, out, err);
    CHECK_EQ_INT(o.done, 1);
    CHECK_EQ_INT(o.changes, 0);
    CHECK_EQ_INT(wakeups(), 1);
    check_str(
        out,
        "{\"event\":\"resync\",\"key\":\"k1\",\"value\":7,\"type\":\"int\","
        "\"revision\":40,\"create_revision\":1,\"actor\":\"ann\","
        "\"reason\":\"r\\u001b\",\"time\":\"1970-01-01T00:00:00.000Z\","
        "\"time_ms\":0}\n"
        "{\"event\":\"delete\",\"key\":\"k2\",\"value\":null,"
        "\"type\":null,\"revision\":40,\"create_revision\":1,"
        "\"actor\":\"ann\",\"reason\":\"r\\u001b\","
        "\"time\":\"1970-01-01T00:00:00.000Z\",\"time_ms\":0,"
        "\"deleted\":true}\n",
        "watch --json events");
    check_str(err, "", "watch --json stderr");
    /* a change at R is the goal too (not one before it) */
    memset(&o, 0, sizeof o);
    o.cli = &cli;
    cli.json = 0;
    capture_begin(&c);
    e[6].revision = 40;
    on_watch_event(&o, &e[6]);
    CHECK_EQ_INT(o.done, 0);
    e[6].revision = 41;
    on_watch_event(&o, &e[6]);
    capture_end(&c, out, err);
    CHECK_EQ_INT(o.done, 1);
    CHECK_EQ_INT(o.changes, 2);
    CHECK_EQ_INT(wakeups(), 1);
    check_str(out,
              "change\tk1\t9\tint\t41\tann\tr\\x1b\n"
              "change\tk1\t9\tint\t41\tann\tr\\x1b\n",
              "watch, change at R"); /* the flag's own revision */
}

/* A flag watch cannot render for want of memory is reported on stderr,
 * whichever part failed (key, value, actor, reason), as text and as
 * JSON. */
TEST(cli_watch_event_nomem, 5)
{
    struct cli cli;
    struct watch_out o;
    struct flip_flag f = ev_flag("k", 1, 5);
    struct flip_watch_event e;
    struct capture c;
    char out[CAP];
    char err[CAP];
    int n;

    f.value.type = FLIP_TYPE_STRING;
    f.value.u.s = "s";
    e = ev(FLIP_EV_CHANGE, 0, &f, 5, "");
    for (int json = 0; json < 2; json++) {
        memset(&cli, 0, sizeof cli);
        cli.json = json;
        for (n = 0; n < 40; n++) {
            memset(&o, 0, sizeof o);
            o.cli = &cli;
            capture_begin(&c);
            fault_arm(n);
            on_watch_event(&o, &e);
            fault_off();
            capture_end(&c, out, err);
            CHECK_EQ_INT(o.changes, 1);
            if (fault_seen <= n) { /* no allocation failed */
                check_str(err, "", "watch, enough memory");
                break;
            }
            check_str(err, "flipctl: watch: out of memory\n", "watch nomem");
        }
        CHECK(n >= 4 && n < 40);
        check_str(out,
                  json ? "{\"event\":\"change\",\"key\":\"k\",\"value\":"
                         "\"s\",\"type\":\"string\",\"revision\":5,"
                         "\"create_revision\":1,\"actor\":\"ann\","
                         "\"reason\":\"r\\u001b\",\"time\":"
                         "\"1970-01-01T00:00:00.000Z\",\"time_ms\":0}\n"
                       : "change\tk\ts\tstring\t5\tann\tr\\x1b\n",
                  "watch, enough memory");
    }
}

/* A wakeup never blocks: with the self-pipe full, wake() returns (the
 * reader is awake anyway); the pipe then holds exactly its capacity. */
#ifndef F_GETPIPE_SZ
#define F_GETPIPE_SZ 1032 /* Linux; hidden without _GNU_SOURCE */
#endif
TEST(cli_wake_pipe_full, 10)
{
    long cap;
    long got = 0;
    int n;

    CHECK_EQ_INT(setup_wake(), FLIP_OK);
    cap = fcntl(wake_fds[1], F_GETPIPE_SZ);
    CHECK(cap > 0 && cap <= 1 << 20);
    for (long i = 0; i < cap + 100; i++) {
        wake();
    }
    while ((n = wakeups()) > 0) {
        got += n;
    }
    CHECK_EQ_INT(got, cap);
}

/* Without a free descriptor for its self-pipe, watch and eval fail at
 * once: exit 1, "I/O error". */
TEST(cli_watch_eval_no_fds, 10)
{
    const char *ep = dead_endpoint();
    struct rlimit old;
    struct rlimit none;
    struct capture c;
    struct out o;
    char *watch[] = { "flipctl", "--endpoints", (char *)ep, "watch", NULL };
    char *eval[] = { "flipctl", "--endpoints", (char *)ep, "eval", "k", NULL };
    int fd;

    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    for (int i = 0; i < 2; i++) {
        capture_begin(&c);
        fd = dup(0); /* the lowest free descriptor: every one below is used */
        close(fd);
        none = old;
        none.rlim_cur = (rlim_t)fd;
        CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0);
        o.code = i == 0 ? flipctl_main(4, watch) : flipctl_main(5, eval);
        CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
        capture_end(&c, o.out, o.err);
        CHECK_EQ_INT(o.code, EXIT_FAIL);
        check_str(o.out, "", "no fds");
        check_str(o.err,
                  i == 0 ? "flipctl: watch: I/O error\n"
                         : "flipctl: eval: I/O error\n",
                  "no fds");
    }
}

/* eval wakes for a state change, a change, a delete and a snapshot's
 * end, for nothing else. */
TEST(cli_eval_wakeups, 5)
{
    static const int want[] = {
        [FLIP_EV_SNAPSHOT_BEGIN] = 0, [FLIP_EV_SNAPSHOT_ITEM] = 0,
        [FLIP_EV_SNAPSHOT_END] = 1,   [FLIP_EV_CHANGE] = 1,
        [FLIP_EV_DELETE] = 1,         [FLIP_EV_STATE] = 1,
        [FLIP_EV_NOTICE] = 0,
    };
    struct flip_watch_event e;

    CHECK_EQ_INT(setup_wake(), FLIP_OK);
    for (int t = FLIP_EV_SNAPSHOT_BEGIN; t <= FLIP_EV_NOTICE; t++) {
        e = ev((enum flip_watch_event_type)t, 0, NULL, 1, "");
        on_eval_event(NULL, &e);
        CHECK_EQ_INT(wakeups(), want[t]);
    }
}

/* eval's output when memory runs out: "out of memory" on stderr, and no
 * value on stdout when the value itself could not be rendered. */
TEST(cli_eval_put_nomem, 5)
{
    struct cli cli;
    struct eval_result r;
    struct capture c;
    char out[CAP];
    char err[CAP];

    memset(&cli, 0, sizeof cli);
    memset(&r, 0, sizeof r);
    r.has_value = 1;
    r.value.type = FLIP_TYPE_STRING;
    r.value.u.s = "v";
    r.why = FLIP_REASON_CACHED;
    r.state = FLIP_WATCH_STALE;
    capture_begin(&c);
    fault_arm(0);
    put_eval(&cli, "k", &r);
    fault_off();
    capture_end(&c, out, err);
    check_str(out, "", "eval nomem stdout");
    check_str(err, "flipctl: eval: out of memory\n", "eval nomem");

    cli.json = 1;
    capture_begin(&c);
    fault_arm(1); /* the value renders, the key does not */
    put_eval(&cli, "k", &r);
    fault_off();
    capture_end(&c, out, err);
    check_str(out,
              "{\"key\":,\"value\":\"v\",\"type\":\"string\",\"reason\":"
              "\"cached\",\"state\":\"stale\",\"revision\":null,"
              "\"watch_revision\":0}\n",
              "eval --json nomem stdout");
    check_str(err, "flipctl: eval: out of memory\n", "eval --json nomem");
}

/* SIGTERM (or SIGINT) ends watch and eval at once with exit 0, whatever
 * the goal or the wait: watch prints no "timed out", eval its default. */
static void *term_when_ready(void *arg)
{
    struct sigaction sa;

    (void)arg;
    for (int i = 0; i < 20000; i++) { /* 20 s */
        sigaction(SIGTERM, NULL, &sa);
        if (sa.sa_handler == on_signal) {
            kill(getpid(), SIGTERM);
            return NULL;
        }
        usleep(1000);
    }
    return NULL;
}

TEST(cli_watch_eval_signal, 30)
{
    const char *ep = dead_endpoint();
    pthread_t th;
    struct out o;

    CHECK(pthread_create(&th, NULL, term_when_ready, NULL) == 0);
    run(&o, "--endpoints", ep, "--timeout", "3600000", "watch", "--count", "5",
        NULL);
    pthread_join(th, NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, "", "watch, signalled");
    CHECK(strstr(o.err, "timed out") == NULL);

    signal(SIGTERM, SIG_DFL);
    got_signal = 0;
    CHECK(pthread_create(&th, NULL, term_when_ready, NULL) == 0);
    run(&o, "--endpoints", ep, "eval", "k", "--default", "on", "--type", "bool",
        "--wait-ms", "3600000", NULL);
    pthread_join(th, NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, "true\n", "eval, signalled");
}

/* ---- commands against a fake node ------------------------------------------
 */

/* One node on a loopback port, on its own thread, that answers every
 * request from a fixed script: Set gives revision 7 (key "mism": a type
 * mismatch that names no type), Get a string flag, Delete revision 8
 * ("gone": OK but existed false), List two flags, Status a one-member
 * cluster led by itself. */
struct fake
{
    int lfd;
    char addr[32];
    pthread_t th;
    volatile int stop;
};

static void fake_flag(Flip__Flag *f, Flip__Value *v, const char *key)
{
    v->kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    v->string_value = "v\x1b";
    f->key = (char *)key;
    f->value = v;
    f->has_revision = f->has_create_revision = f->has_time_ms = 1;
    f->revision = 7;
    f->create_revision = 2;
    f->time_ms = 1000;
    f->actor = "ann";
    f->reason = "";
}

static void fake_answer(struct fake *fk, int fd, Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__HelloResult h = FLIP__HELLO_RESULT__INIT;
    Flip__SetResult set = FLIP__SET_RESULT__INIT;
    Flip__DeleteResult del = FLIP__DELETE_RESULT__INIT;
    Flip__GetResult get = FLIP__GET_RESULT__INIT;
    Flip__ListResult list = FLIP__LIST_RESULT__INIT;
    Flip__StatusResult st = FLIP__STATUS_RESULT__INIT;
    Flip__Member m = FLIP__MEMBER__INIT;
    Flip__Member *ms[1] = { &m };
    Flip__Error e = FLIP__ERROR__INIT;
    Flip__Flag f[2] = { FLIP__FLAG__INIT, FLIP__FLAG__INIT };
    Flip__Flag *fs[2] = { &f[0], &f[1] };
    Flip__Value v[2] = { FLIP__VALUE__INIT, FLIP__VALUE__INIT };

    switch (req->op_case) {
    case FLIP__REQUEST__OP_HELLO:
        h.has_protocol_version = h.has_node_id = 1;
        h.protocol_version = 1;
        h.node_id = 1;
        r.result_case = FLIP__RESPONSE__RESULT_HELLO;
        r.hello = &h;
        break;
    case FLIP__REQUEST__OP_SET:
        if (strcmp(req->set->key, "mism") == 0) {
            e.status = FLIP__STATUS__TYPE_MISMATCH;
            e.message = "another type";
            break;
        }
        set.has_revision = 1;
        set.revision = 7;
        r.result_case = FLIP__RESPONSE__RESULT_SET;
        r.set = &set;
        break;
    case FLIP__REQUEST__OP_DELETE:
        del.has_revision = del.has_existed = 1;
        del.revision = 8;
        del.existed = strcmp(req->delete_->key, "gone") != 0;
        r.result_case = FLIP__RESPONSE__RESULT_DELETE;
        r.delete_ = &del;
        break;
    case FLIP__REQUEST__OP_GET:
        fake_flag(&f[0], &v[0], req->get->key);
        get.flag = &f[0];
        r.result_case = FLIP__RESPONSE__RESULT_GET;
        r.get = &get;
        break;
    case FLIP__REQUEST__OP_LIST:
        fake_flag(&f[0], &v[0], "a.1");
        fake_flag(&f[1], &v[1], "a.2");
        v[1].kind_case = FLIP__VALUE__KIND_JSON_VALUE;
        v[1].json_value = "[1, 2]";
        list.n_flags = 2;
        list.flags = fs;
        r.result_case = FLIP__RESPONSE__RESULT_LIST;
        r.list = &list;
        break;
    case FLIP__REQUEST__OP_STATUS:
        st.has_node_id = st.has_term = st.has_leader_id = 1;
        st.node_id = st.term = st.leader_id = 1;
        st.role = "leader";
        st.leader_address = fk->addr;
        st.raft_address = "r:1";
        st.client_address = fk->addr;
        st.cluster_id = "c1";
        st.has_live = st.live = 1;
        m.has_id = m.has_joined = 1;
        m.id = 1;
        m.joined = 1;
        m.raft_address = "r:1";
        m.client_address = fk->addr;
        st.n_members = 1;
        st.members = ms;
        r.result_case = FLIP__RESPONSE__RESULT_STATUS;
        r.status = &st;
        break;
    default:
        e.status = FLIP__STATUS__UNKNOWN_TYPE;
        break;
    }
    if (r.result_case == FLIP__RESPONSE__RESULT__NOT_SET) {
        e.has_status = 1;
        r.error = &e;
    }
    r.has_id = 1;
    r.id = req->id;
    fakewire_send(fd, &r);
}

static void *fake_main(void *arg)
{
    struct fake *fk = arg;
    struct pollfd p;
    Flip__Request *req;
    int fd;

    while (!fk->stop) {
        p.fd = fk->lfd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 20) <= 0) {
            continue;
        }
        fd = accept(fk->lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        while (!fk->stop && (req = fakewire_recv(fd)) != NULL) {
            fake_answer(fk, fd, req);
            codec_request_free(req);
        }
        close(fd);
    }
    return NULL;
}

static void fake_start(struct fake *fk)
{
    memset(fk, 0, sizeof *fk);
    fk->lfd = loopback(fk->addr, 1);
    CHECK(pthread_create(&fk->th, NULL, fake_main, fk) == 0);
}

static void fake_stop(struct fake *fk)
{
    fk->stop = 1;
    pthread_join(fk->th, NULL);
    close(fk->lfd);
}

/* What each command prints for the fake's answers, exactly. */
TEST(cli_fake_node_output, 20)
{
    struct fake fk;
    struct out o;
    char want[1024];

    fake_start(&fk);
    run(&o, "--endpoints", fk.addr, "--json", "set", "k", "1", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, "{\"key\":\"k\",\"revision\":7}\n", "set --json");
    run(&o, "--endpoints", fk.addr, "set", "mism", "1", NULL);
    CHECK_EQ_INT(o.code, EXIT_FAIL);
    check_str(o.err,
              "flipctl: set mism: another type (use --type T --change-type "
              "to change the flag's type)\n",
              "set, a mismatch naming no type: no second try");
    run(&o, "--endpoints", fk.addr, "get", "k", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, "v\\x1b\n", "get");
    run(&o, "--endpoints", fk.addr, "--json", "get", "k", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out,
              "{\"key\":\"k\",\"value\":\"v\\u001b\",\"type\":\"string\","
              "\"revision\":7,\"create_revision\":2,\"actor\":\"ann\","
              "\"reason\":\"\",\"time\":\"1970-01-01T00:00:01.000Z\","
              "\"time_ms\":1000}\n",
              "get --json");
    run(&o, "--endpoints", fk.addr, "--json", "del", "k", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out, "{\"key\":\"k\",\"revision\":8}\n", "del --json");
    run(&o, "--endpoints", fk.addr, "del", "gone", NULL);
    CHECK_EQ_INT(o.code, EXIT_NOTFOUND);
    check_str(o.out, "", "del, existed false");
    check_str(o.err, "flipctl: del gone: not found\n", "del, existed false");
    run(&o, "--endpoints", fk.addr, "list", NULL);
    CHECK_EQ_INT(o.code, 0);
    check_str(o.out,
              "a.1\tv\\x1b\tstring\t7\n"
              "a.2\t[1,2]\tjson\t7\n",
              "list");
    run(&o, "--endpoints", fk.addr, "status", NULL);
    CHECK_EQ_INT(o.code, 0);
    snprintf(want, sizeof want,
             "ID  RAFT  CLIENT%*s  ROLE    TERM  APPLIED  LAG  LEADER  LIVE  "
             "REACHABLE\n"
             "1   r:1   %s  leader     1        0    0       1  yes   yes\n",
             (int)strlen(fk.addr) - 6, "", fk.addr);
    check_str(o.out, want, "status");
    fake_stop(&fk);
}

/* got has the words of want, but for some that are "?". */
static int same_but_unknown(const char *got, const char *want)
{
    const char *sep = " \n";
    size_t g;
    size_t w;

    for (;;) {
        got += strspn(got, sep);
        want += strspn(want, sep);
        g = strcspn(got, sep);
        w = strcspn(want, sep);
        if (g == 0 || w == 0) {
            return g == w;
        }
        if ((g != w || memcmp(got, want, g) != 0) &&
            (g != 1 || got[0] != '?')) {
            return 0;
        }
        got += g;
        want += w;
    }
}

/* Whichever allocation of flipctl's own thread fails, each command exits
 * 1 with one "flipctl: ...: out of memory" line on stderr, or exits 0
 * with its whole answer (once none fails, or when the library's retry got
 * it; a status table cell it could not escape shows "?", as escaped_copy
 * says). The library cannot tell a response it had no memory to decode from
 * a malformed one: that is "undecodable response: protocol error". */
TEST(cli_fake_node_nomem, 60)
{
    static const char *const cmds[][3] = {
        { "--json", "set", "k" }, { "--json", "get", "k" },
        { "--json", "del", "k" }, { "--json", "list", NULL },
        { "list", NULL, NULL },   { "--json", "status", NULL },
        { "status", NULL, NULL },
    };
    struct fake fk;
    struct out o;
    struct out full;
    const char *oom = ": out of memory\n";
    const char *undecodable = ": undecodable response: protocol error\n";
    char *argv[10];
    int argc;
    int n;
    int status;
    size_t len;

    fake_start(&fk);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        argc = 0;
        argv[argc++] = "flipctl";
        argv[argc++] = "--endpoints";
        argv[argc++] = fk.addr;
        argv[argc++] = "--timeout";
        argv[argc++] = "5000";
        for (int k = 0; k < 3 && cmds[i][k] != NULL; k++) {
            argv[argc++] = (char *)cmds[i][k];
        }
        if (strcmp(argv[argc - 1], "set") == 0 ||
            strcmp(argv[argc - 2], "set") == 0) {
            argv[argc++] = "1";
        }
        argv[argc] = NULL;
        {
            struct capture c;
            capture_begin(&c);
            full.code = flipctl_main(argc, argv);
            capture_end(&c, full.out, full.err);
        }
        CHECK_EQ_INT(full.code, 0);
        for (n = 0; n < 400; n++) {
            struct capture c;

            capture_begin(&c);
            fault_arm(n);
            o.code = flipctl_main(argc, argv);
            fault_off();
            capture_end(&c, o.out, o.err);
            if (fault_seen <= n) {
                CHECK_EQ_INT(o.code, 0);
                check_str(o.out, full.out, "enough memory");
                break;
            }
            status = strcmp(argv[argc - 1], "status") == 0;
            if (o.code == 0) { /* the library tried again and got it */
                if (status && strcmp(argv[argc - 2], "--json") != 0) {
                    /* a table cell it could not escape shows "?" */
                    CHECK(same_but_unknown(o.out, full.out));
                    check_str(o.err, "", "recovered");
                    continue;
                }
                check_str(o.out, full.out, "recovered");
                check_str(o.err, "", "recovered");
                continue;
            }
            /* status asks each node in turn: one that fails (its
             * line, not with --json) is a node that did not answer */
            len = strlen(o.err);
            if (o.code != EXIT_FAIL ||
                (!ends_with(o.err, oom) && !ends_with(o.err, undecodable) &&
                 !(status && ends_with(o.err,
                                       "flipctl: status: no node "
                                       "answered\n"))) ||
                strncmp(o.err, "flipctl: ", 9) != 0 ||
                (!status && strchr(o.err, '\n') != o.err + len - 1)) {
                fprintf(stderr,
                        "  %s %s, allocation %d failed: exit %d, stderr "
                        "[%s]\n",
                        cmds[i][0], cmds[i][1] ? cmds[i][1] : "", n, o.code,
                        o.err);
                CHECK(0);
            }
        }
        CHECK(n > 0 && n < 400);
    }
    fake_stop(&fk);
}

/* getopt_long's extras that flipctl does not take: an abbreviation
 * ("--time", "--end") is an unknown option, not the option it would
 * complete to; a "-word" of several characters is one word, however
 * many characters it has; "--name=value" works for every valued option. */
TEST(cli_getopt_forms, 10)
{
    struct out o;

    run(&o, "--time", "5", "get", "k", NULL);
    check_usage(&o, "unknown option --time");
    run(&o, "--end=127.0.0.1:1", "get", "k", NULL);
    check_usage(&o, "unknown option --end=127.0.0.1:1");
    run(&o, "--st", "get", "k", NULL);
    check_usage(&o, "unknown option --st");
    run(&o, "get", "-12", "-hx", NULL);
    check_usage(&o, "get: expected 1 argument, got 2");
    run(&o, "get", "-12", "-h", NULL);
    CHECK_EQ_INT(o.code, 0);
    run(&o, "--json=1", "get", "k", NULL);
    check_usage(&o, "unknown option --json=1");
    run(&o, "--endpoints=nope", "get", "k", NULL);
    check_usage(&o,
                "invalid endpoint list 'nope' (expected "
                "host:port[,host:port...], at most 16)");
    run(&o, "--timeout=0", "get", "k", NULL);
    check_usage(&o,
                "--timeout: '0' is not a number of ms between 1 and "
                "3600000");
}
