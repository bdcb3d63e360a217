/* One blocking TCP connection from the client library to one flipd node.
 *
 * Owns the socket, the Hello handshake, framing and request ids; knows
 * nothing about leaders, retries or which node to ask (client.c) and is
 * reused by the watch's subscription stream (client/wloop.c, which
 * polls the socket itself and reads with wire_recv(WIRE_NO_WAIT)).
 *
 * Every call takes an absolute deadline (clock_mono_ms() clock) and never
 * blocks past it: the socket is non-blocking and every wait is a poll().
 *
 * Failure contract: whenever a call fails for a reason that leaves the
 * byte stream in an unknown state (I/O error, timeout, bad frame), the
 * connection is closed before returning, so the next wire_open reconnects.
 * w->errmsg then says why, prefixed with the address. */
#ifndef FLIP_CLIENT_WIRE_H
#define FLIP_CLIENT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "flip.pb-c.h"
#include "lib/buf.h"

/* Frame limit, both directions (protocol.md section 1): FRAME_MAX_DEFAULT
 * until HelloResult.max_frame says otherwise, never above WIRE_FRAME_CAP
 * whatever a server claims. */
#define WIRE_FRAME_CAP (64u * 1024u * 1024u)
#define WIRE_ADDR_MAX  300 /* longest "host:port" accepted */

struct wire
{
    char *addr;          /* "host:port" as given; owned */
    int fd;              /* -1 while closed */
    uint64_t next_id;    /* id of the next request on this socket */
    uint64_t node_id;    /* from HelloResult; 0 when unknown */
    char cluster_id[65]; /* from HelloResult; "" when unknown */
    size_t max_frame;    /* frame limit agreed in Hello, both directions */
    /* -1, or a descriptor the owner makes readable to abandon every wait
     * of this connection at once (a watch being stopped): the waiting call
     * then fails with FLIP_CLOSED ("cancelled") and closes the socket.
     * Borrowed, never closed here; wire_init sets -1. */
    int cancel_fd;
    struct buf in;    /* received bytes not yet decoded; owned */
    struct buf out;   /* scratch for one encoded request; owned */
    char errmsg[320]; /* why the last failing call failed */
};

/* Prepares a closed connection to `addr` (copied).
 * @return FLIP_OK, FLIP_INVALID (not "host:port"), FLIP_NOMEM; on failure
 *         nothing needs freeing. */
int wire_init(struct wire *w, const char *addr);

/* Closes the socket if open and drops buffered input. Keeps the address;
 * safe to call on a closed connection. */
void wire_close(struct wire *w);

/* Closes and frees everything wire_init allocated. */
void wire_destroy(struct wire *w);

/* Makes sure the connection is open and greeted: reuses the socket if it
 * still looks healthy (an idle socket that became readable was closed or
 * reset by the server and is replaced), else resolves, connects (trying
 * every resolved address) and exchanges Hello.
 *
 * @return FLIP_OK; FLIP_IOERR (resolve/connect/reset), FLIP_CLOSED,
 *         FLIP_TIMEOUT, FLIP_PROTO, FLIP_UNSUPPORTED (the server refused
 *         protocol version 1), another mapped status when the server
 *         refused Hello, FLIP_NOMEM. Closed on failure. */
int wire_open(struct wire *w, const char *client_name, int64_t deadline);

/* Sends one request on an open connection and waits for its response.
 * Sets req->id. *sent becomes 1 once the whole request frame has been
 * written, i.e. from when the server may have acted on it. A
 * connection-level error (id 0: oversized or malformed frame, connection
 * limit) counts as the response; the connection is then closed, as the
 * server closes it too.
 *
 * @param[out] out the response, owned by the caller (codec_response_free),
 *                 whatever its error status. NULL on failure.
 * @return FLIP_OK; FLIP_TOOBIG (request over the server's frame limit:
 *         nothing sent, connection kept; or response over
 *         max_frame), FLIP_IOERR, FLIP_CLOSED, FLIP_TIMEOUT,
 *         FLIP_PROTO (bad frame or wrong id), FLIP_NOMEM. */
int wire_call(struct wire *w,
              Flip__Request *req,
              int64_t deadline,
              Flip__Response **out,
              int *sent);

/* The deadline of wire_recv for callers that poll() the socket
 * themselves: no wait at all. */
#define WIRE_NO_WAIT INT64_MIN

/* The two halves of wire_call, for streams that read more than one
 * response per request. wire_send sets req->id and writes the whole frame;
 * wire_recv returns the next response frame, whatever its id. Same codes as
 * wire_call; with WIRE_NO_WAIT it returns a frame already buffered, else
 * reads what the socket has right now, and says FLIP_AGAIN (connection
 * kept, nothing in errmsg) when no whole frame is there yet. */
int wire_send(struct wire *w, Flip__Request *req, int64_t deadline);
int wire_recv(struct wire *w, int64_t deadline, Flip__Response **out);

/* Splits "host:port" or "[v6]:port" into NUL-terminated parts.
 * @return FLIP_OK or FLIP_INVALID (empty host, port not 1..65535, too
 *         long). */
int wire_addr_split(const char *addr,
                    char *host,
                    size_t host_len,
                    char *port,
                    size_t port_len);

#endif
