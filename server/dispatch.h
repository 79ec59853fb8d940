/*
 * dispatch.h -- runs parsed requests against the store and queues their
 * replies: a table maps each protocol command to its handler.
 */
#ifndef CACHED_DISPATCH_H
#define CACHED_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"
#include "store.h"

struct conn;

/* Runs one parsed request on connection c. */
void	dispatch_request(struct conn *c, const struct proto_req *req);
/* Answers keys of a get/gets/gat/gats request from *cursor on until the
 * output queue is full; returns true once every key and END are queued. */
bool	dispatch_retrieve(struct conn *c, const struct proto_req *req,
	    size_t *cursor);
/* Completes a storage command once its value is in it and the 2 bytes
 * that followed it on the wire are in c->nread_end. */
void	dispatch_value(struct conn *c, item_t *it, enum proto_cmd cmd,
	    uint64_t cas);

#endif
