/* Listening sockets for fake nodes; see fakelisten.h. */
#include "fakelisten.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "runner.h"

/* A socket bound to 127.0.0.1 at a port the kernel picks. */
static int bind_loopback(char *addr, size_t n)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    CHECK(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    snprintf(addr, n, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    return fd;
}

int fakelisten_open(char *addr, size_t n)
{
    int lfd = bind_loopback(addr, n);

    CHECK(listen(lfd, 8) == 0);
    return lfd;
}

int fakelisten_refusing(char *addr, size_t n)
{
    return bind_loopback(addr, n);
}

int fakelisten_accept(int lfd, int ms)
{
    struct pollfd p;

    p.fd = lfd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, ms) <= 0) {
        return -1;
    }
    return accept(lfd, NULL, NULL);
}
