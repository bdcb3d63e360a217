/* Subscription requests: one subscription per session, handed to the
 * pubsub registry (which attaches it through the session's sink). */
#include "dispatch.h"
#include "pubsub.h"
#include "server.h"
#include "session.h"

void cmd_subscribe(struct conn *c, Flip__Request *req)
{
    if (session_of(c)->sub != NULL) {
        conn_send_error(c, req->id, FLIP__STATUS__INVALID_ARGUMENT,
                        "this connection is already subscribed; open another "
                        "connection for a second subscription");
    } else {
        pubsub_subscribe(&server_of(c)->pubsub, c, req->id, req->subscribe);
    }
}
