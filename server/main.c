/* flipd: argv -> config -> server -> uv_run -> orderly exit. No logic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <uv.h>

#include "lib/err.h"
#include "lib/log.h"
#include "raft/aiodefer.h"
#include "raft/bigfree.h"
#include "server.h"

/* The process's server: the one piece of global mutable state. */
static struct server server;

/* Every subscriber is a socket: take all the descriptors we may have. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct config config;
    char err[512] = "";
    char tag[24];
    uv_loop_t loop;
    struct bigfree bigfree = { 0 };
    uint64_t big_deferred;
    uint64_t big_freed;
    int help = 0;
    int rv;

    rv = config_parse(&config, argc, argv, &help, err, sizeof err);
    if (help) {
        fputs(config_usage, stdout);
        fputs(config_usage_limits, stdout);
        return 0;
    }
    if (rv != FLIP_OK) {
        fprintf(stderr, "flipd: %s\n", err);
        return 2;
    }
    raise_fd_limit();
    /* libuv's thread pool (4 threads unless told) carries every raft log
     * write (raft/aiodefer.c sends them there), snapshot files, LMDB syncs,
     * state-hash walks and the store file's preallocation: with four, a
     * hash walk and a snapshot could leave log writes queued. Read once, at its
     * first use; an operator's own setting wins. */
    (void)setenv("UV_THREADPOOL_SIZE", "8", 0);
    snprintf(tag, sizeof tag, "n%llu", (unsigned long long)config.id);
    flip_log_init(tag);
    uv_loop_init(&loop);
    /* libraft's frees of whole snapshots go to a thread (raft/bigfree.h) */
    if (bigfree_start(&bigfree) != 0) {
        flip_errorf("flipd: big buffers are freed on the loop (no thread)");
    }
    rv = server_start(&server, &loop, &config);
    if (rv != FLIP_OK) {
        /* Let raft and handles finish closing before exiting. */
        if (!server.stopping && server.node.store != NULL) {
            server_stop(&server);
            uv_run(&loop, UV_RUN_DEFAULT);
        }
        fprintf(stderr, "flipd: failed to start: %s\n", flip_strerror(rv));
        uv_loop_close(&loop); /* frees it when nothing was left open */
        return 1;             /* bigfree's thread ends with the process */
    }
    /* raft runs: segment closes now destroy their AIO context off the loop
     * (known-issues #11); server_stop disarms it before raft closes */
    aiodefer_start();
    uv_run(&loop, UV_RUN_DEFAULT);
    aiodefer_stop();
    uv_loop_close(&loop);
    bigfree_stop(&bigfree);
    bigfree_counts(&bigfree, &big_deferred, &big_freed);
    flip_infof(
        "flipd: stopped (big buffers freed off the loop: %llu of "
        "%llu)",
        (unsigned long long)big_freed, (unsigned long long)big_deferred);
    return 0;
}
