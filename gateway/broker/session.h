#ifndef FMQ_SESSION_H
#define FMQ_SESSION_H

#include "buf.h"
#include "client_proto.h"
#include "mqtt.h"
#include "peer.h"
#include "publisher.h"
#include "snapshot.h"
#include "topic.h"

#include <jansson.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

/* The gateway's one shared broker session: which client holds which filter,
 * one broker subscription per distinct filter (reference-counted, at the
 * highest QoS any holder asked for), routing of each arriving message to
 * the clients whose filters match (once per client and delivery type, one
 * shared frame per type),
 * publishes awaiting the broker's ack, and the broker's up/down status.
 * Loop thread only. It knows its clients as peers (peer.h), whatever
 * carries them: attached when they open, released when they go, after
 * which nothing here points at them. */

struct fmq_filter;

/* A subscribe message waiting for its answer. */
struct fmq_reply {
  json_t *id;             /* owned reference, or NULL */
  uint32_t request;       /* the broker request that answers it; 0: not sent yet */
  uint8_t qos;            /* asked for */
};

/* One client's subscription to one filter through one source (a plain
 * subscribe, or one mapping). Owned by the session; listed both on its
 * filter and on its peer. */
struct fmq_sub {
  struct fmq_filter *filter;
  struct fmq_peer *peer;
  uint32_t source;        /* 0: a plain subscribe; else the mapping's index + 1 */
  uint32_t dtype;         /* delivery type: index into session->dtypes */
  LIST_ENTRY(fmq_sub) filter_link;
  LIST_ENTRY(fmq_sub) peer_link;
  struct fmq_reply *replies;
  uint32_t nreplies, replies_cap;
  uint32_t request;       /* the broker request it waits for; 0: none */
  uint32_t replay;        /* marker of the SUBACK whose retained messages it takes; 0: none */
  uint8_t qos;            /* the latest asked for */
  uint8_t live;           /* receives live messages (granted once) */
  uint8_t want_retained;  /* needs a SUBSCRIBE that sends the retained messages */
};

/* A connection to the broker, as the session sees it. */
enum fmq_link {
  FMQ_LINK_CONNECTING = 0,  /* not yet tried: neither up nor known to be down */
  FMQ_LINK_UP,
  FMQ_LINK_DOWN             /* an attempt failed or the connection dropped; retrying */
};

/* A QoS 1/2 publish awaiting the broker's ack. */
struct fmq_pub {
  uintptr_t token;
  struct fmq_peer *peer;  /* NULL once the client left */
  json_t *id;             /* owned reference, or NULL */
  int held;               /* waiting for the broker in the gateway: counts against offline_buffer */
  TAILQ_ENTRY(fmq_pub) link;      /* session->pubs */
  LIST_ENTRY(fmq_pub) peer_link;  /* peer->pubs */
};

struct fmq_session {
  struct fmq_snapshot *snapshot;      /* one reference: the mappings, limits and broker settings */
  struct fmq_mqtt mqtt;
  struct fmq_trie filters;            /* filter text -> struct fmq_filter */
  struct fmq_filter **by_subid;       /* index: subscription identifier */
  uint32_t subid_cap;
  uint32_t *free_subids;              /* identifiers to reuse */
  uint32_t nfree_subids, next_subid;
  uint32_t next_request;
  uint32_t next_marker, batch_marker; /* SUBACK audiences; see route_replay */
  uintptr_t next_pub_token;
  TAILQ_HEAD(, fmq_pub) pubs;         /* in sending order */
  uint64_t held;                      /* pubs with held set */
  struct fmq_publisher publisher;     /* the publishing connection */
  struct fmq_pubmsg_list queued;      /* accepted, not yet handed to it, in order */
  uint64_t queued_bytes, handed_bytes; /* their cost; handed: not yet back */
  TAILQ_HEAD(, fmq_peer) paused;      /* clients not read until the window drains */
  struct fmq_filter *last_suback;     /* whose retained replays follow (no identifiers) */
  /* The copies of one MQTT message, arriving back to back: one delivery. */
  struct fmq_mqtt_event *group;       /* the last message event, owned */
  struct fmq_buf **group_frames;      /* its encoded frame per delivery type, shared */
  uint32_t *group_subids;             /* identifiers seen in the group */
  uint32_t ngroup_subids, group_subids_cap;
  uint64_t delivery;                  /* serial of the message being routed */
  /* Delivery types: the "type" of delivered messages; 0 is "message",
   * then each distinct deliver_type of the mappings (borrowed). */
  const char **dtypes;
  uint32_t ndtypes;
  uint32_t *mapping_dtype;            /* per mapping: its delivery type */
  int depth;                          /* nesting of session work; see fmq_session_leave */
  LIST_HEAD(, fmq_peer) peers;        /* attached, not yet released */
  SLIST_HEAD(, fmq_peer) releasing;   /* peers to release when depth returns to 0 */
  enum fmq_link link, pub_link;       /* the subscribing and the publishing connection */
  uint32_t restoring;                 /* re-subscriptions unanswered since the last connect */
  int max_qos;                        /* the broker's Maximum QoS (MQTT 5 CONNACK) */
  int stopped;
  struct fmq_buf *status_up, *status_down;
};

/* Creates the MQTT client (not yet connected) on loop, with a reference to
 * snapshot. Returns 0 or nonzero after logging why. */
int fmq_session_init(struct fmq_session *s, uv_loop_t *loop, struct fmq_snapshot *snapshot);
int fmq_session_connect(struct fmq_session *s);
/* Disconnects from the broker; once done, the session's handles close and
 * the loop can end. Call when no client is left. Idempotent. */
void fmq_session_stop(struct fmq_session *s);
/* Frees what is left once uv_run has returned. */
void fmq_session_close(struct fmq_session *s);

/* c may receive messages from now on (its fields but ops and identity
 * are initialised here): it is told when the broker is down. */
void fmq_session_attach(struct fmq_session *s, struct fmq_peer *c);
/* Whether c may use topic (a publish's topic name) or, with filter set, a
 * subscription filter: not a shared subscription, within
 * broker.max_topic_levels (a broker drops a client past its own limit, and
 * the connection is shared), allowed by c's ACL. topic: a valid MQTT name
 * or filter, NUL-terminated. Returns 0, or -1 with *code (invalid_topic or
 * forbidden) and the reason in why. Used for every subscribe and publish,
 * and for the upgrade's topic= parameters. */
int fmq_session_check_topic(const struct fmq_session *s, const struct fmq_peer *c,
                            const char *topic, int filter, enum fmq_client_error_code *code,
                            char *why, size_t whylen);
/* protocol-v1 sections 3 and 6. filter/topic: passed
 * fmq_session_check_topic; id may be NULL (a reference is taken when
 * kept). Each answers the client itself. A subscription is one per filter
 * and source (0: plain, else a mapping's index + 1); the source's mapping
 * decides the delivery type. Unsubscribing a filter drops it from every
 * source. */
void fmq_session_subscribe(struct fmq_session *s, struct fmq_peer *c, const char *filter,
                           int qos, const json_t *id, uint32_t source);
void fmq_session_unsubscribe(struct fmq_session *s, struct fmq_peer *c, const char *filter,
                             const json_t *id);
/* An "undoes" mapping: drops every subscription c made through source and
 * answers {"type":"unsubscribed","topics":[…]}. */
void fmq_session_undo(struct fmq_session *s, struct fmq_peer *c, uint32_t source,
                      const json_t *id);
void fmq_session_publish(struct fmq_session *s, struct fmq_peer *c,
                         const struct fmq_client_msg *m);
/* The client is going: releases its subscriptions (the broker is
 * unsubscribed from filters no one holds) and forgets its pending acks. */
void fmq_session_release(struct fmq_session *s, struct fmq_peer *c);

#endif
