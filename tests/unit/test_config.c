/* flipd's command line: the resource-bound options parse into the config
 * with their documented defaults, and out-of-range values are refused. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../lib/runner.h"
#include "lib/err.h"
#include "server/config.h"

#define BASE_ARGS                                                  \
    "flipd", "--id", "1", "--data", "/nonexistent", "--client",    \
        "127.0.0.1:7001", "--raft", "127.0.0.1:9001", "--cluster", \
        "1=127.0.0.1:9001/127.0.0.1:7001"

static int parse(struct config *c, char **argv, int argc)
{
    char err[256];
    int help = 0;
    return config_parse(c, argc, argv, &help, err, sizeof err);
}

/* Without the options, every bound has the default docs/protocol.md
 * section 10 gives. */
TEST(config_bound_defaults, 10)
{
    char *argv[] = { BASE_ARGS };
    struct config c;

    CHECK_EQ_INT(parse(&c, argv, (int)(sizeof argv / sizeof argv[0])), FLIP_OK);
    CHECK_EQ_INT(c.max_inflight, 64);
    CHECK_EQ_INT(c.node_inflight, 16384);
    CHECK(c.output_budget == 256u * 1024u * 1024u);
    CHECK(c.input_budget == 256u * 1024u * 1024u);
    CHECK(c.sub_budget == 256u * 1024u * 1024u);
    CHECK_EQ_INT(c.idle_timeout_ms, 300000);
    CHECK_EQ_INT(c.frame_timeout_ms, 30000);
    CHECK_EQ_INT(c.sub_snapshot_ms, 30000);
    CHECK(c.sub_snapshot_pin == 64u * 1024u * 1024u);
    CHECK_EQ_INT(c.fd_reserve, 64);
}

/* Each option lands in its field; 0 turns the idle timeout off. */
TEST(config_bound_options, 10)
{
    char *argv[] = {
        BASE_ARGS, "--max-inflight",    "8",       "--max-inflight-node",
        "100",     "--output-budget",   "2097152", "--sub-budget",
        "3145728", "--idle-timeout-ms", "0",       "--frame-timeout-ms",
        "500",     "--sub-snapshot-ms", "700",     "--sub-snapshot-pin",
        "1048576", "--fd-reserve",      "100"
    };
    struct config c;

    CHECK_EQ_INT(parse(&c, argv, (int)(sizeof argv / sizeof argv[0])), FLIP_OK);
    CHECK_EQ_INT(c.max_inflight, 8);
    CHECK_EQ_INT(c.node_inflight, 100);
    CHECK(c.output_budget == 2097152);
    CHECK(c.sub_budget == 3145728);
    CHECK_EQ_INT(c.idle_timeout_ms, 0);
    CHECK_EQ_INT(c.frame_timeout_ms, 500);
    CHECK_EQ_INT(c.sub_snapshot_ms, 700);
    CHECK(c.sub_snapshot_pin == 1048576);
    CHECK_EQ_INT(c.fd_reserve, 100);
}

/* A bound of 0 in-flight requests (or a reserve too small for raft) would
 * wedge the node: refused at start. */
TEST(config_bound_ranges, 10)
{
    static const char *bad[][2] = {
        { "--max-inflight", "0" },       { "--max-inflight-node", "0" },
        { "--output-budget", "1000" },   { "--sub-budget", "1000" },
        { "--frame-timeout-ms", "10" },  { "--sub-snapshot-ms", "0" },
        { "--sub-snapshot-pin", "100" }, { "--fd-reserve", "4" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = { BASE_ARGS, (char *)bad[i][0], (char *)bad[i][1] };
        struct config c;
        CHECK_EQ_INT(parse(&c, argv, (int)(sizeof argv / sizeof argv[0])),
                     FLIP_INVALID);
    }
}

/* Parses BASE_ARGS with argv[k] replaced by `val` when k > 0, then the
 * `extra` arguments; returns config_parse's result, its message in err. */
static int parse_edit(struct config *c,
                      int k,
                      const char *val,
                      const char *const *extra,
                      int n_extra,
                      char *err,
                      size_t errlen)
{
    char *argv[32] = { BASE_ARGS };
    int argc = 11;
    int help = -1;
    int rv;

    if (k > 0) {
        argv[k] = (char *)(uintptr_t)val;
    }
    for (int i = 0; i < n_extra; i++) {
        argv[argc++] = (char *)(uintptr_t)extra[i];
    }
    err[0] = '\0';
    rv = config_parse(c, argc, argv, &help, err, errlen);
    CHECK_EQ_INT(help, 0);
    return rv;
}

#define CHECK_REFUSED(k, val, extra, n, msg)                           \
    do {                                                               \
        struct config c_;                                              \
        char e_[512];                                                  \
        CHECK_EQ_INT(parse_edit(&c_, k, val, extra, n, e_, sizeof e_), \
                     FLIP_INVALID);                                    \
        if (strcmp(e_, msg) != 0) {                                    \
            fprintf(stderr, "  got '%s'\n  want '%s'\n", e_,           \
                    (const char *)msg);                                \
        }                                                              \
        CHECK(strcmp(e_, msg) == 0);                                   \
    } while (0)

/* argv positions in BASE_ARGS */
#define A_ID      2
#define A_DATA    4
#define A_CLIENT  6
#define A_RAFT    8
#define A_CLUSTER 10

/* Numbers: empty, signed, trailing junk, below and above the range are
 * each refused with the option and value named. */
TEST(config_numbers_refused, 10)
{
    static const char *const bad[] = {
        "",    "-1", "-18446744073709551615", "+",
        "12x", "0",  "9223372036854775808",   " 5",
        "+5",  "0x5"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "bad value for --id: '%s'", bad[i]);
        CHECK_REFUSED(A_ID, bad[i], NULL, 0, want);
    }
    {
        const char *const e[] = { "--election-ms", "600001" };
        CHECK_REFUSED(0, NULL, e, 2, "bad value for --election-ms: '600001'");
    }
    {
        const char *const e[] = { "--election-ms", "49" };
        CHECK_REFUSED(0, NULL, e, 2, "bad value for --election-ms: '49'");
    }
    {
        /* the largest id and each bound's ends are accepted */
        const char *const e[] = { "--election-ms", "600000", "--heartbeat-ms",
                                  "60000" };
        struct config c;
        char err[256];
        CHECK_EQ_INT(parse_edit(&c, 0, NULL, e, 4, err, sizeof err), FLIP_OK);
        CHECK_EQ_INT(c.election_ms, 600000);
        CHECK_EQ_INT(c.heartbeat_ms, 60000);
    }
}

/* --client, --raft and --raft-bind take an IPv4 literal HOST:PORT only. */
TEST(config_addresses_refused, 10)
{
    static const char *const bad[] = {
        "127.0.0.1",
        ":7001",
        "localhost:7001",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:",
        "1.2.3:7001",
        "127.0.0.1:7001127.0.0.1:7001127.0.0.1:7001127.0.0.1:7001127.0.0.1:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[160];
        snprintf(want, sizeof want, "bad value for --client: '%s'", bad[i]);
        CHECK_REFUSED(A_CLIENT, bad[i], NULL, 0, want);
        snprintf(want, sizeof want, "bad value for --raft: '%s'", bad[i]);
        CHECK_REFUSED(A_RAFT, bad[i], NULL, 0, want);
        {
            const char *const e[] = { "--raft-bind", bad[i] };
            snprintf(want, sizeof want, "bad value for --raft-bind: '%s'",
                     bad[i]);
            CHECK_REFUSED(0, NULL, e, 2, want);
        }
    }
}

/* config_split_address: host and port apart; a host that does not fit
 * the caller's buffer is refused, not cut. */
TEST(config_split_address_edges, 10)
{
    char host[16];
    int port = 0;

    CHECK_EQ_INT(
        config_split_address("10.1.2.3:65535", host, sizeof host, &port),
        FLIP_OK);
    CHECK(strcmp(host, "10.1.2.3") == 0);
    CHECK_EQ_INT(port, 65535);
    /* 15 characters need 16 bytes: fits exactly, one byte less does not */
    CHECK_EQ_INT(
        config_split_address("255.255.255.255:1", host, sizeof host, &port),
        FLIP_OK);
    CHECK(strcmp(host, "255.255.255.255") == 0);
    CHECK_EQ_INT(port, 1);
    port = 7;
    CHECK_EQ_INT(config_split_address("255.255.255.255:1", host, 15, &port),
                 FLIP_INVALID);
    CHECK_EQ_INT(port, 7);
}

/* --data: empty or longer than the buffer is refused. */
TEST(config_data_refused, 10)
{
    char longdir[600];
    char want[700];

    memset(longdir, 'd', sizeof longdir - 1);
    longdir[sizeof longdir - 1] = '\0';
    CHECK_REFUSED(A_DATA, "", NULL, 0, "bad value for --data: ''");
    snprintf(want, sizeof want, "bad value for --data: '%.*s", 511, longdir);
    {
        struct config c;
        char err[1024];
        CHECK_EQ_INT(parse_edit(&c, A_DATA, longdir, NULL, 0, err, sizeof err),
                     FLIP_INVALID);
        CHECK(strncmp(err, want, strlen(want)) == 0);
    }
    /* 511 characters fit */
    longdir[511] = '\0';
    {
        struct config c;
        char err[256];
        CHECK_EQ_INT(parse_edit(&c, A_DATA, longdir, NULL, 0, err, sizeof err),
                     FLIP_OK);
        CHECK_EQ_INT(strlen(c.data_dir), 511);
    }
}

/* The command line's shape: help, an option without value, an unknown
 * option, each missing required option. */
TEST(config_command_line_shape, 10)
{
    static const int required[] = { A_ID, A_DATA, A_CLIENT, A_RAFT, A_CLUSTER };
    static const char *const names[] = { "--id", "--data", "--client", "--raft",
                                         "--cluster" };
    struct config c;
    char err[256] = "untouched";
    int help = 0;

    {
        char *argv[] = { "flipd", "--id", "1", "-h", "--bogus" };
        CHECK_EQ_INT(config_parse(&c, 5, argv, &help, err, sizeof err),
                     FLIP_OK);
        CHECK_EQ_INT(help, 1);
        CHECK(strcmp(err, "untouched") == 0);
    }
    {
        char *argv[] = { "flipd", "--help" };
        help = 0;
        CHECK_EQ_INT(config_parse(&c, 2, argv, &help, err, sizeof err),
                     FLIP_OK);
        CHECK_EQ_INT(help, 1);
    }
    {
        const char *const e[] = { "--max-conns" };
        CHECK_REFUSED(0, NULL, e, 1, "--max-conns needs a value");
    }
    {
        const char *const e[] = { "--bogus", "1" };
        CHECK_REFUSED(0, NULL, e, 2, "unknown option --bogus (see --help)");
    }
    /* each required option renamed into an unknown-to-nobody duplicate of
     * --max-conns: it is then missing */
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char *argv[] = { BASE_ARGS };
        help = 0;
        argv[required[i] - 1] = "--max-conns";
        argv[required[i]] = "5";
        CHECK_EQ_INT(config_parse(&c, 11, argv, &help, err, sizeof err),
                     FLIP_INVALID);
        if (strcmp(err,
                   "--id, --data, --client, --raft and one of --cluster or "
                   "--join are required (see --help)") != 0) {
            fprintf(stderr, "  without %s: '%s'\n", names[i], err);
        }
        CHECK(strcmp(err,
                     "--id, --data, --client, --raft and one of --cluster or "
                     "--join are required (see --help)") == 0);
    }
}

/* Cross-option rules: heartbeat below election, --raft-bind on --raft's
 * port. */
TEST(config_cross_checks, 10)
{
    {
        const char *const e[] = { "--heartbeat-ms", "500" };
        CHECK_REFUSED(0, NULL, e, 2,
                      "--heartbeat-ms must be below --election-ms");
    }
    {
        const char *const e[] = { "--heartbeat-ms", "499" };
        struct config c;
        char err[256];
        CHECK_EQ_INT(parse_edit(&c, 0, NULL, e, 2, err, sizeof err), FLIP_OK);
        CHECK_EQ_INT(c.heartbeat_ms, 499);
    }
    {
        const char *const e[] = { "--raft-bind", "0.0.0.0:9002" };
        CHECK_REFUSED(0, NULL, e, 2, "--raft-bind must use the port of --raft");
    }
    {
        const char *const e[] = { "--raft-bind", "0.0.0.0:9001" };
        struct config c;
        char err[256];
        CHECK_EQ_INT(parse_edit(&c, 0, NULL, e, 2, err, sizeof err), FLIP_OK);
        CHECK(strcmp(c.raft_bind, "0.0.0.0:9001") == 0);
        CHECK(strcmp(c.raft_address, "127.0.0.1:9001") == 0);
    }
}

/* --cluster: each malformed item is refused with what is wrong with it. */
TEST(config_cluster_refused, 10)
{
    static const char *const cases[][2] = {
        { "1=127.0.0.1:9001/127.0.0.1:7001,2",
          "--cluster: '2' is not ID=RAFT_HOST:PORT/CLIENT_HOST:PORT" },
        { "1=127.0.0.1:9001/127.0.0.1:7001,2=127.0.0.1:9002",
          "--cluster: '2=127.0.0.1:9002' is not "
          "ID=RAFT_HOST:PORT/CLIENT_HOST:PORT" },
        { "x=127.0.0.1:9001/127.0.0.1:7001", "--cluster: bad node id 'x'" },
        { "0=127.0.0.1:9001/127.0.0.1:7001", "--cluster: bad node id '0'" },
        { "1=127.0.0.1:9001/127.0.0.1:7001,3=127.0.0.1/127.0.0.1:7003",
          "--cluster: node 3: addresses must be IPv4 HOST:PORT" },
        { "1=127.0.0.1:9001/127.0.0.1:7001,3=127.0.0.1:9003/host:7003",
          "--cluster: node 3: addresses must be IPv4 HOST:PORT" },
        { "1=127.0.0.1:9001/127.0.0.1:7001,1=127.0.0.1:9002/127.0.0.1:7002",
          "--cluster: node id 1 twice" },
        { "2=127.0.0.1:9002/127.0.0.1:7002",
          "--cluster does not list this node (--id 1)" },
        { "1=127.0.0.1:9009/127.0.0.1:7001",
          "--cluster lists node 1 as 127.0.0.1:9009/127.0.0.1:7001 but "
          "--raft/--client say 127.0.0.1:9001/127.0.0.1:7001" },
        { "1=127.0.0.1:9001/127.0.0.1:7009",
          "--cluster lists node 1 as 127.0.0.1:9001/127.0.0.1:7009 but "
          "--raft/--client say 127.0.0.1:9001/127.0.0.1:7001" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_REFUSED(A_CLUSTER, cases[i][0], NULL, 0, cases[i][1]);
    }
}

/* --cluster holds at most NODE_MAX_MEMBERS members and 4095 characters;
 * exactly the maximum is accepted, in order. */
TEST(config_cluster_limits, 10)
{
    char list[4200];
    size_t n = 0;
    struct config c;
    char err[256];

    for (int i = 1; i <= NODE_MAX_MEMBERS; i++) {
        n += (size_t)snprintf(list + n, sizeof list - n,
                              "%s%d=127.0.0.1:%d/127.0.0.1:%d",
                              i > 1 ? "," : "", i, 9000 + i, 7000 + i);
    }
    CHECK_EQ_INT(parse_edit(&c, A_CLUSTER, list, NULL, 0, err, sizeof err),
                 FLIP_OK);
    CHECK_EQ_INT(c.n_members, NODE_MAX_MEMBERS);
    CHECK(c.members[15].id == 16);
    CHECK(strcmp(c.members[15].raft_address, "127.0.0.1:9016") == 0);
    CHECK(strcmp(c.members[15].client_address, "127.0.0.1:7016") == 0);
    snprintf(list + n, sizeof list - n, ",17=127.0.0.1:9017/127.0.0.1:7017");
    CHECK_REFUSED(A_CLUSTER, list, NULL, 0, "--cluster: at most 16 members");

    /* 4095 characters: empty items (",,,") are skipped */
    memset(list, ',', 4095);
    list[4095] = '\0';
    memcpy(list, "1=127.0.0.1:9001/127.0.0.1:7001",
           strlen("1=127.0.0.1:9001/127.0.0.1:7001"));
    CHECK_EQ_INT(parse_edit(&c, A_CLUSTER, list, NULL, 0, err, sizeof err),
                 FLIP_OK);
    CHECK_EQ_INT(c.n_members, 1);
    list[4095] = ',';
    list[4096] = '\0';
    CHECK_REFUSED(A_CLUSTER, list, NULL, 0, "--cluster is too long");
}

/* getopt_long's forms: "--name=value" is the same as "--name value"; an
 * abbreviation ("--elec"), a short option other than -h, an argument that
 * is no option and a value-less "--help=x" are refused with the token
 * named; a value may begin with "-" (it is then judged as a value). */
TEST(config_getopt_forms, 10)
{
    {
        const char *const e[] = { "--election-ms=700", "--max-conns=9" };
        struct config c;
        char err[256];
        CHECK_EQ_INT(parse_edit(&c, 0, NULL, e, 2, err, sizeof err), FLIP_OK);
        CHECK_EQ_INT(c.election_ms, 700);
        CHECK_EQ_INT(c.max_conns, 9);
    }
    {
        const char *const e[] = { "--elec", "700" };
        CHECK_REFUSED(0, NULL, e, 2, "unknown option --elec (see --help)");
    }
    {
        const char *const e[] = { "--max", "7" };
        CHECK_REFUSED(0, NULL, e, 2, "unknown option --max (see --help)");
    }
    {
        const char *const e[] = { "-x" };
        CHECK_REFUSED(0, NULL, e, 1, "unknown option -x (see --help)");
    }
    {
        const char *const e[] = { "stray" };
        CHECK_REFUSED(0, NULL, e, 1, "unknown option stray (see --help)");
    }
    {
        const char *const e[] = { "--help=yes" };
        CHECK_REFUSED(0, NULL, e, 1, "unknown option --help=yes (see --help)");
    }
    {
        const char *const e[] = { "--election-ms=" };
        CHECK_REFUSED(0, NULL, e, 1, "bad value for --election-ms: ''");
    }
    {
        const char *const e[] = { "--raft-bind" };
        CHECK_REFUSED(0, NULL, e, 1, "--raft-bind needs a value");
    }
    CHECK_REFUSED(A_DATA - 1, "--election-ms", NULL, 0,
                  "bad value for --election-ms: '/nonexistent'");
    CHECK_REFUSED(A_ID, "--help", NULL, 0, "bad value for --id: '--help'");
}

/* --join instead of --cluster: the node is its own only configured
 * member (raft's configuration comes from the leader), and it is marked
 * to never bootstrap; both options, or neither, are refused. */
TEST(config_join, 10)
{
    char *join[] = { "flipd",
                     "--id",
                     "4",
                     "--data",
                     "/nonexistent",
                     "--client",
                     "127.0.0.1:7004",
                     "--raft",
                     "127.0.0.1:9004",
                     "--join",
                     "127.0.0.1:7001,127.0.0.1:7002" };
    char *both[] = { BASE_ARGS, "--join", "127.0.0.1:7001" };
    struct config c;

    CHECK_EQ_INT(parse(&c, join, (int)(sizeof join / sizeof join[0])), FLIP_OK);
    CHECK(c.join[0] != '\0');
    CHECK_EQ_INT(c.n_members, 1);
    CHECK(c.members[0].id == 4);
    CHECK(strcmp(c.members[0].raft_address, "127.0.0.1:9004") == 0);
    CHECK(strcmp(c.members[0].client_address, "127.0.0.1:7004") == 0);
    CHECK_EQ_INT(parse(&c, both, (int)(sizeof both / sizeof both[0])),
                 FLIP_INVALID);
}
