/* Subscription requests: hands Subscribe to the pubsub registry. */
#include "dispatch.h"
#include "proto/codec.h"
#include "pubsub.h"
#include "server.h"

void cmd_subscribe(struct conn *c, Flip__Request *req)
{
    pubsub_subscribe(&server_of(c)->pubsub, c, req->id, req->subscribe);
    codec_request_free(req);
}
