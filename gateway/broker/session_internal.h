#ifndef FMQ_SESSION_INTERNAL_H
#define FMQ_SESSION_INTERNAL_H

/* What the session's files (session.c, filters.c, route.c, publish.c)
 * share, and nothing else includes: the broker-side filter record and the
 * calls one file makes into another. Loop thread only. */

#include "session.h"

enum filter_request { FILTER_IDLE = 0, FILTER_SUBSCRIBING, FILTER_UNSUBSCRIBING };

/* One distinct filter some client holds: one broker subscription. */
struct fmq_filter {
  char *text;
  uint32_t subid;
  LIST_HEAD(, fmq_sub) holders;
  size_t nholders;
  int broker_qos;                  /* as last requested (the grant may be lower); -1: none */
  enum filter_request request;
  uint32_t request_serial;
  int request_qos;
  uint32_t request_marker;         /* given to the holders its SUBACK answers */
  uint8_t restoring;               /* its SUBSCRIBE re-subscribes after a connect */
};

/* session.c: every entry point and event handler runs between these two;
 * a release requested meanwhile waits for the outermost leave. */
void fmq_session_enter(struct fmq_session *s);
void fmq_session_leave(struct fmq_session *s);

/* filters.c */
struct fmq_filter *fmq_filter_by_subid(const struct fmq_session *s, uint32_t subid);
void fmq_filters_on_suback(struct fmq_session *s, const struct fmq_mqtt_event *ev);
void fmq_filters_on_unsuback(struct fmq_session *s, const struct fmq_mqtt_event *ev);
/* Drops c's subscriptions (the broker is unsubscribed from filters no one
 * holds). */
void fmq_filters_release_peer(struct fmq_session *s, struct fmq_peer *c);
/* The broker connection is up: subscribes every filter again, as one batch. */
void fmq_filters_resubscribe(struct fmq_session *s);
/* The broker connection is lost: forgets what the broker held. */
void fmq_filters_forget_broker(struct fmq_session *s);
/* Frees every filter and the identifier index. */
void fmq_filters_close(struct fmq_session *s);

/* route.c */
/* Routes an arriving message to its recipients. Takes ownership of ev. */
void fmq_route_message(struct fmq_session *s, struct fmq_mqtt_event *ev);
/* Ends the current group of copies (any event but a message does). */
void fmq_route_reset(struct fmq_session *s);

/* publish.c */
/* The QoS 1/2 publish with token, or NULL. */
struct fmq_pub *fmq_publish_find(const struct fmq_session *s, uintptr_t token);
/* Messages back from the publishing connection (done is emptied). */
void fmq_publish_on_done(struct fmq_session *s, struct fmq_pubmsg_list *done);
/* A connection changed state, or the subscriptions are restored. */
void fmq_publish_on_link(struct fmq_session *s);
/* c is going: its pending publishes are answered to no one, and it is no
 * longer paused. */
void fmq_publish_forget_peer(struct fmq_session *s, struct fmq_peer *c);
/* Frees every queued message and pending publish. */
void fmq_publish_close(struct fmq_session *s);

#endif
