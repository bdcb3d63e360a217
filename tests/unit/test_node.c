/* raft/node.c and the read barriers of raft/propose.c: the capacity
 * threshold rule, a failed node_init, and a real single-node raft (raft_uv
 * on a temporary directory, TCP on 127.0.0.1) closing with reads waiting. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "lib/err.h"
#include "lib/queue.h"
#include "raft/node.h"
#include "raft/propose.h"
#include "raft/propose_uv.h"

/* raft_uv 0.22 reports its reserved log space as (unsigned short)(KiB) of
 * up to 4 segments, and at least about 2 segments on a healthy node:
 * wherever flipd keeps libraft's capacity check on, that counter can neither
 * wrap nor read below the threshold on a healthy node (known-issues #14).
 * Every size --segment-size accepts is checked, in 4 KiB steps. */
TEST(node_capacity_threshold_never_wraps, 10)
{
    const size_t mib = 1024u * 1024u;
    unsigned on = 0;

    for (size_t size = mib; size <= 64u * mib; size += 4096u) {
        unsigned short t = node_capacity_threshold(size);
        if (t == 0) {
            continue;
        }
        on++;
        CHECK(4u * size / 1024u <= 65535u);
        CHECK(2u * size / 1024u >= 2u * (size_t)t);
    }
    CHECK(on > 0);
    /* the default segment size keeps the check: a full disk is refused
     * with NO_SPACE rather than left to time out */
    CHECK_EQ_INT(node_capacity_threshold(0), 4096);
    CHECK_EQ_INT(node_capacity_threshold(8u * mib), 4096);
    CHECK_EQ_INT(node_capacity_threshold(24u * mib), 0);
    CHECK_EQ_INT(node_capacity_threshold(32u * mib), 0);
    CHECK_EQ_INT(node_capacity_threshold(64u * mib), 0);
}

/* ---- a real single-node raft over raft_uv, on 127.0.0.1 ------------------ */

/* A free TCP port on 127.0.0.1 (bound to port 0 and released). */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    CHECK(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void one_node_config(struct node_config *cfg, const char *dir)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->id = 1;
    cfg->data_dir = dir;
    cfg->n_members = 1;
    cfg->members[0].id = 1;
    snprintf(cfg->members[0].raft_address, NODE_ADDR_MAX, "127.0.0.1:%d",
             free_port());
    snprintf(cfg->members[0].client_address, NODE_ADDR_MAX, "127.0.0.1:%d",
             free_port());
    cfg->election_ms = 1000;
    cfg->heartbeat_ms = 100;
    cfg->snapshot_threshold = 4096;
    cfg->snapshot_trailing = 1024;
    cfg->segment_size = 1024u * 1024u;
}

/* A node_init that fails after raft_init (here: the member list names id 1
 * twice, so bootstrapping fails) releases everything itself: raft_uv and
 * its transport are closed and freed, and no handle is left on the loop
 * (correctness review L8: they were left to a loop run the caller never
 * made, and their memory was never freed). */
TEST(node_init_failure_releases_io_and_transport, 30)
{
    char dir[256];
    uv_loop_t loop;
    struct node_config cfg;
    static struct node n;

    tmpdir_make(dir, sizeof dir);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    one_node_config(&cfg, dir);
    cfg.n_members = 2;
    cfg.members[1] = cfg.members[0];
    snprintf(cfg.members[1].raft_address, NODE_ADDR_MAX, "127.0.0.1:%d",
             free_port());
    CHECK(node_init(&n, &loop, &cfg) != FLIP_OK);
    CHECK(strstr(n.errmsg, "bootstrap") != NULL);
    CHECK(n.store == NULL);
    /* nothing of raft_uv's is left open or pending */
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    tmpdir_remove(dir);
}

struct read_result
{
    struct read_wait w;
    int calls;
    int status;
};

static void read_done(struct read_wait *w, int status)
{
    struct read_result *r = CONTAINER_OF(w, struct read_result, w);
    r->calls++;
    r->status = status;
}

static int node_closed_flag;

static void on_node_closed(struct node *n)
{
    (void)n;
    node_closed_flag = 1;
}

/* Reads waiting for the next barrier when raft closes are answered
 * LEADERSHIP_LOST, once; no barrier is started on the closing raft
 * (correctness review L4: barrier_done, fired inside raft_close, started
 * one, which libraft 0.22.1 takes with an uninitialised result and never
 * answers). */
TEST(propose_reads_answered_when_raft_closes, 30)
{
    char dir[256];
    uv_loop_t loop;
    struct node_config cfg;
    static struct node n;
    static struct propose pr;
    static struct propose_uv host;
    struct read_result first = { 0 };
    struct read_result second = { 0 };
    int turns;

    if (runner_under_valgrind()) {
        /* raft_barrier leaves its 8-byte entry uninitialised (legacy.c),
         * and raft_uv checksums and writes it: memcheck reports libraft,
         * not flipd. ASan builds run this test. */
        runner_skip(
            "under valgrind: libraft's barrier entries are "
            "uninitialised bytes");
    }
    tmpdir_make(dir, sizeof dir);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    one_node_config(&cfg, dir);
    CHECK_EQ_INT(node_init(&n, &loop, &cfg), FLIP_OK);
    CHECK_EQ_INT(node_start(&n), FLIP_OK);
    propose_uv_init(&host, &pr, &n, 100);
    for (turns = 0; turns < 1000 && !node_is_leader(&n); turns++) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK(node_is_leader(&n));
    /* the first read starts a barrier; the second waits for the next one */
    CHECK_EQ_INT(propose_read(&pr, &first.w, read_done), FLIP_OK);
    CHECK_EQ_INT(propose_read(&pr, &second.w, read_done), FLIP_OK);
    node_closed_flag = 0;
    node_close(&n, on_node_closed);
    for (turns = 0; turns < 1000 && !node_closed_flag; turns++) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK(node_closed_flag);
    propose_close(&pr);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(first.calls, 1);
    CHECK_EQ_INT(first.status, FLIP_LEADERSHIPLOST);
    CHECK_EQ_INT(second.calls, 1);
    CHECK_EQ_INT(second.status, FLIP_LEADERSHIPLOST);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    tmpdir_remove(dir);
}
