/* The shared broker session (gateway/broker/session.c) through its seams:
 * fake peers (gateway/broker/peer.h) that record every frame they are
 * handed and every pause, a fake MQTT client (fake_mqtt.c) that records
 * every request, and a fake publishing connection (fake_publisher.c) that
 * records and keeps every message handed to it; with both, each test plays
 * the broker's side. No sockets, no broker, no Paho, no thread; nothing
 * runs on the loop. Run under ASan too (build-asan). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bridge_client.h"
#include "container.h"
#include "fake_mqtt.h"
#include "fake_publisher.h"
#include "log.h"
#include "session.h"
#include "ws_frame.h"
#include "wsclient.h"

#include <stdlib.h>
#include <string.h>

/* --- fake peers --- */

struct frame_rec {
  struct fmq_buf *buf;    /* the reference the peer was handed */
  json_t *json;           /* its payload, parsed */
};

struct fake_peer {
  struct fmq_peer peer;
  const char *name;
  struct fmq_session *s;
  struct frame_rec *frames;
  size_t nframes, cap, next;   /* next: the first frame no expectation took yet */
  size_t nnull;                /* NULL frames (encoding failed) */
  int going;                   /* released by its transport: drops what it is handed */
  size_t dropped;              /* frames handed to it while going */
  /* On receiving its frame number release_at (1-based), it releases each
   * victim (itself included, if listed), as a transport does when a frame
   * overflows its queue. */
  size_t release_at;
  struct fake_peer *victims[4];
  size_t nvictims;
  size_t paused, resumed;      /* pause(1) and pause(0) calls */
  /* When resumed, it publishes this many messages at once (messages it had
   * read), each made by resume_publish. */
  size_t resume_publishes;
  void (*resume_publish)(struct fake_peer *p);
};

/* Every pause call, in order, over all peers. */
static struct {
  const struct fake_peer *peer;
  int paused;
} pause_log[64];
static size_t npause_log, pause_log_next;
/* The first message handed to the publisher no expectation took yet. */
static size_t handed_next;

/* The transport lets go of p: it drops what it is handed from now on. */
static void peer_go(struct fake_peer *p) {
  p->going = 1;
  fmq_session_release(p->s, &p->peer);
}

/* The payload of one complete unmasked text frame, parsed by jansson. */
static json_t *frame_json(const struct fmq_buf *b) {
  uint8_t *copy = malloc(b->len);
  assert_non_null(copy);
  memcpy(copy, b->data, b->len);
  struct fmq_frame_decoder d;
  struct fmq_frame_event ev;
  size_t used, off = 0;
  fmq_frame_decoder_init(&d, UINT64_MAX >> 1, 0);
  assert_int_equal(fmq_frame_decode(&d, copy, b->len, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_FRAME_HEADER);
  assert_true(d.header.fin);
  assert_int_equal(d.header.opcode, FMQ_WS_TEXT);
  assert_false(d.header.masked);
  off += used;
  const uint8_t *payload = copy + off;
  size_t len = 0;
  for (;;) {
    assert_int_equal(fmq_frame_decode(&d, copy + off, b->len - off, &used, &ev), 0);
    off += used;
    if (ev.type == FMQ_FRAME_END)
      break;
    assert_int_equal(ev.type, FMQ_FRAME_PAYLOAD);
    len += ev.len;
  }
  assert_int_equal(off, b->len);
  json_t *v = json_loadb((const char *)payload, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES,
                         NULL);
  assert_non_null(v);
  free(copy);
  return v;
}

static void peer_send(struct fmq_peer *pp, struct fmq_buf *frame) {
  struct fake_peer *p = fmq_container_of(pp, struct fake_peer, peer);
  if (frame == NULL) {
    p->nnull++;
    return;
  }
  if (p->going) {
    p->dropped++;
    fmq_buf_unref(frame);
    return;
  }
  if (p->nframes == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    struct frame_rec *f = realloc(p->frames, cap * sizeof(*f));
    assert_non_null(f);
    p->frames = f;
    p->cap = cap;
  }
  p->frames[p->nframes++] = (struct frame_rec){.buf = frame, .json = frame_json(frame)};
  if (p->release_at != 0 && p->nframes == p->release_at) {
    p->release_at = 0;
    for (size_t i = 0; i < p->nvictims; i++)
      peer_go(p->victims[i]);
  }
}

static void peer_pause(struct fmq_peer *pp, int paused) {
  struct fake_peer *p = fmq_container_of(pp, struct fake_peer, peer);
  /* Released, it is not paused any more; one paused when it goes is
   * resumed then, to read its close frame. */
  assert_false(p->going && paused);
  assert_true(npause_log < sizeof(pause_log) / sizeof(pause_log[0]));
  pause_log[npause_log].peer = p;
  pause_log[npause_log++].paused = paused;
  /* Paused and resumed alternately, starting paused. */
  if (paused) {
    assert_int_equal(p->paused, p->resumed);
    p->paused++;
    return;
  }
  assert_int_equal(p->paused, p->resumed + 1);
  p->resumed++;
  size_t n = p->resume_publishes;
  p->resume_publishes = 0;
  for (size_t i = 0; i < n; i++)
    p->resume_publish(p);
}

static const struct fmq_peer_ops fake_peer_ops = {.send = peer_send, .pause = peer_pause};
/* A transport without backpressure. */
static const struct fmq_peer_ops fake_peer_ops_no_pause = {.send = peer_send};

/* The next pause call no expectation took yet is p's with paused. */
static void expect_pause(const struct fake_peer *p, int paused) {
  if (pause_log_next >= npause_log)
    fail_msg("%s: expected pause(%d), got nothing", p->name, paused);
  if (pause_log[pause_log_next].peer != p || pause_log[pause_log_next].paused != paused)
    fail_msg("expected %s pause(%d), got %s pause(%d)", p->name, paused,
             pause_log[pause_log_next].peer->name, pause_log[pause_log_next].paused);
  pause_log_next++;
}

static void expect_no_pause(void) {
  if (pause_log_next < npause_log)
    fail_msg("expected no pause call, got %s pause(%d)", pause_log[pause_log_next].peer->name,
             pause_log[pause_log_next].paused);
}

/* The next frame p was handed that no expectation took yet. */
static const json_t *take(struct fake_peer *p, const char *what) {
  if (p->next >= p->nframes)
    fail_msg("%s: expected %s, got nothing", p->name, what);
  return p->frames[p->next++].json;
}

/* The buffer of the frame take() returned last. */
static const struct fmq_buf *taken_buf(const struct fake_peer *p) {
  assert_true(p->next > 0);
  return p->frames[p->next - 1].buf;
}

static void expect_nothing(struct fake_peer *p) {
  if (p->next < p->nframes)
    fail_msg("%s: expected nothing more, got %s (and %zu more)", p->name,
             fmqt_dump(p->frames[p->next].json), p->nframes - p->next - 1);
}

static void expect_status(struct fake_peer *p, const char *state) {
  fmqt_assert_status(take(p, "a status"), state);
}

static void expect_subscribed(struct fake_peer *p, const char *topic, int qos, const char *id) {
  const json_t *v = take(p, "subscribed");
  const char *t = fmqt_json_str(v, "topic"), *type = fmqt_json_str(v, "type");
  json_t *q = json_object_get(v, "qos");
  if (type == NULL || strcmp(type, "subscribed") != 0 || t == NULL || strcmp(t, topic) != 0 ||
      !json_is_integer(q) || json_integer_value(q) != qos)
    fail_msg("%s: expected subscribed %s at qos %d, got %s", p->name, topic, qos, fmqt_dump(v));
  fmqt_assert_id(v, id, p->name);
}

static void expect_unsubscribed(struct fake_peer *p, const char *topic, const char *id) {
  const json_t *v = take(p, "unsubscribed");
  const char *t = fmqt_json_str(v, "topic"), *type = fmqt_json_str(v, "type");
  if (type == NULL || strcmp(type, "unsubscribed") != 0 || t == NULL || strcmp(t, topic) != 0)
    fail_msg("%s: expected unsubscribed %s, got %s", p->name, topic, fmqt_dump(v));
  fmqt_assert_id(v, id, p->name);
}

/* {"type":"unsubscribed","topics":[...]} holding exactly the n topics, in
 * any order. */
static void expect_unsubscribed_topics(struct fake_peer *p, const char *const *topics, size_t n,
                                       const char *id) {
  const json_t *v = take(p, "unsubscribed topics");
  json_t *list = json_object_get(v, "topics");
  const char *type = fmqt_json_str(v, "type");
  if (type == NULL || strcmp(type, "unsubscribed") != 0 || !json_is_array(list) ||
      json_array_size(list) != n)
    fail_msg("%s: expected unsubscribed with %zu topics, got %s", p->name, n, fmqt_dump(v));
  for (size_t i = 0; i < n; i++) {
    size_t found = 0;
    for (size_t k = 0; k < n; k++)
      found += strcmp(json_string_value(json_array_get(list, k)), topics[i]) == 0;
    if (found != 1)
      fail_msg("%s: %s should be listed once in %s", p->name, topics[i], fmqt_dump(v));
  }
  fmqt_assert_id(v, id, p->name);
}

static void expect_error(struct fake_peer *p, const char *code, const char *id) {
  fmqt_assert_error(take(p, code), code, id, p->name);
}

static void expect_puback(struct fake_peer *p, const char *id) {
  const json_t *v = take(p, "puback");
  const char *type = fmqt_json_str(v, "type");
  if (type == NULL || strcmp(type, "puback") != 0 || json_object_size(v) != 2)
    fail_msg("%s: expected puback, got %s", p->name, fmqt_dump(v));
  fmqt_assert_id(v, id, p->name);
}

/* A delivery of type ("message" or a mapping's deliver_type). */
static void expect_msg(struct fake_peer *p, const char *type, const char *topic,
                       const char *text, int qos, int retain) {
  fmqt_assert_typed_message(take(p, topic), type, topic, text, strlen(text), qos, retain);
}

/* n deliveries of topic/text (QoS 0, not retained), one per type in types,
 * in any order. */
static void expect_msg_types(struct fake_peer *p, const char *const *types, size_t n,
                             const char *topic, const char *text) {
  int seen[8] = {0};
  assert_true(n <= 8);
  for (size_t i = 0; i < n; i++) {
    const json_t *v = take(p, topic);
    const char *type = fmqt_json_str(v, "type");
    size_t k = 0;
    while (k < n && (type == NULL || strcmp(type, types[k]) != 0))
      k++;
    if (k == n || seen[k]++)
      fail_msg("%s: unexpected or repeated %s", p->name, fmqt_dump(v));
    fmqt_assert_typed_message(v, types[k], topic, text, strlen(text), 0, 0);
  }
}

/* --- the fixture --- */

#define MAX_PEERS 16

struct fixture {
  uv_loop_t loop;
  struct fmq_config config;      /* until fx_start moves it into the snapshot */
  struct fmq_snapshot *snapshot;
  struct fmq_session s;
  struct fake_peer *peers[MAX_PEERS];
  size_t npeers;
};

/* The loop, the default configuration and a fresh fake. Change the
 * configuration, then fx_start. */
static void fx_init(struct fixture *fx) {
  memset(fx, 0, sizeof(*fx));
  fmqt_fake_reset();
  fmqt_pub_reset();
  npause_log = pause_log_next = 0;
  handed_next = 0;
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  assert_int_equal(fmq_config_init(&fx->config), 0);
}

struct mapping_spec {
  const char *type;
  enum fmq_mapping_action action;
  const char *deliver_type;   /* subscribe: NULL for "message" */
  int undoes;                 /* unsubscribe: the index of the mapping it undoes; -1: none */
};

/* Replaces the configuration's mappings (source i + 1 is spec[i]). Only
 * what the session reads is set: the topic templates stay empty. */
static void fx_mappings(struct fixture *fx, const struct mapping_spec *spec, size_t n) {
  assert_int_equal(fx->config.nmappings, 0);
  free(fx->config.mappings);
  fx->config.mappings = calloc(n, sizeof(*fx->config.mappings));
  assert_non_null(fx->config.mappings);
  fx->config.nmappings = n;
  for (size_t i = 0; i < n; i++) {
    struct fmq_mapping_config *m = &fx->config.mappings[i];
    m->type = strdup(spec[i].type);
    m->action = spec[i].action;
    m->deliver_type = spec[i].deliver_type ? strdup(spec[i].deliver_type) : NULL;
    if (spec[i].undoes >= 0) {
      m->undoes = strdup(spec[spec[i].undoes].type);
      m->undoes_index = (size_t)spec[i].undoes;
    }
  }
}

/* Both connections come up: the session's (CONNECTED) and the publishing
 * one. */
static void fx_up(void) {
  fmqt_fake_connected();
  fmqt_pub_connected();
}

/* Creates the session and starts connecting (both connections CONNECTING:
 * no event yet); with connected, both come up. */
static void fx_start(struct fixture *fx, int connected) {
  char err[256];
  fx->snapshot = fmq_snapshot_new(&fx->config, err, sizeof(err));
  if (fx->snapshot == NULL)
    fail_msg("%s", err);
  assert_int_equal(fmq_session_init(&fx->s, &fx->loop, fx->snapshot), 0);
  assert_int_equal(fmqt_fake.inits, 1);
  assert_ptr_equal(fmqt_fake.m, &fx->s.mqtt);
  assert_int_equal(fmqt_pub.inits, 1);
  assert_ptr_equal(fmqt_pub.p, &fx->s.publisher);
  assert_int_equal(fmq_session_connect(&fx->s), 0);
  assert_int_equal(fmqt_fake.connects, 1);
  assert_int_equal(fmqt_pub.starts, 1);
  assert_int_equal(fx->s.link, FMQ_LINK_CONNECTING);
  assert_int_equal(fx->s.pub_link, FMQ_LINK_CONNECTING);
  if (connected)
    fx_up();
}

/* A new attached peer with acl (owned from now on; NULL: everything is
 * allowed, as in auth.mode none). */
static struct fake_peer *fx_peer_acl(struct fixture *fx, const char *name,
                                     const struct fmq_acl *acl) {
  assert_true(fx->npeers < MAX_PEERS);
  struct fake_peer *p = calloc(1, sizeof(*p));
  assert_non_null(p);
  p->name = name;
  p->s = &fx->s;
  p->peer.ops = &fake_peer_ops;
  if (acl != NULL)
    p->peer.identity.acl = *acl;
  else
    p->peer.identity.acl.subscribe.any = p->peer.identity.acl.publish.any = 1;
  fmq_session_attach(&fx->s, &p->peer);
  assert_true(p->peer.attached);
  fx->peers[fx->npeers++] = p;
  return p;
}

static struct fake_peer *fx_peer(struct fixture *fx, const char *name) {
  return fx_peer_acl(fx, name, NULL);
}

/* Frees a released peer, as the transport does once it has gone: the
 * session must not touch it again (ASan watches). */
static void fx_free_peer(struct fixture *fx, struct fake_peer *p) {
  assert_false(p->peer.attached);
  assert_int_equal(p->nnull, 0);
  for (size_t i = 0; i < p->nframes; i++) {
    fmq_buf_unref(p->frames[i].buf);
    json_decref(p->frames[i].json);
  }
  free(p->frames);
  fmq_acl_close(&p->peer.identity.acl);
  for (size_t i = 0; i < fx->npeers; i++)
    if (fx->peers[i] == p) {
      fx->peers[i] = fx->peers[--fx->npeers];
      break;
    }
  free(p);
}

/* Releases every peer, stops and closes the session (the fakes' STOPPED
 * close the MQTT side and the publisher, which gives back what it held
 * first) and checks the loop has nothing left open. */
static void fx_end(struct fixture *fx) {
  for (size_t i = 0; i < fx->npeers; i++)
    if (fx->peers[i]->peer.attached)
      peer_go(fx->peers[i]);
  fmq_session_stop(&fx->s);
  fmq_session_stop(&fx->s);
  assert_int_equal(fmqt_fake.stops, 1);
  assert_int_equal(fmqt_pub.stops, 1);
  fmqt_fake_stopped();
  assert_int_equal(fmqt_fake.closes, 1);
  assert_int_equal(fmqt_pub.closes, 0);
  fmqt_pub_stopped();
  assert_int_equal(fmqt_pub.closes, 1);
  assert_true(fx->s.publisher.closed);
  assert_int_equal(fmqt_pub.nheld, 0);
  fmq_session_close(&fx->s);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
  while (fx->npeers > 0)
    fx_free_peer(fx, fx->peers[0]);
  fmq_snapshot_unref(fx->snapshot);
  fmqt_fake_reset();
}

/* --- the session's entry points, with string ids --- */

static void subscribe(struct fake_peer *p, const char *filter, int qos, const char *id,
                      uint32_t source) {
  json_t *j = id ? json_string(id) : NULL;
  fmq_session_subscribe(p->s, &p->peer, filter, qos, j, source);
  json_decref(j);
}

static void unsubscribe(struct fake_peer *p, const char *filter, const char *id) {
  json_t *j = id ? json_string(id) : NULL;
  fmq_session_unsubscribe(p->s, &p->peer, filter, j);
  json_decref(j);
}

static void undo(struct fake_peer *p, uint32_t source, const char *id) {
  json_t *j = id ? json_string(id) : NULL;
  fmq_session_undo(p->s, &p->peer, source, j);
  json_decref(j);
}

static void publish(struct fake_peer *p, const char *topic, const char *text, int qos,
                    int retain, const char *id) {
  json_t *j = id ? json_string(id) : NULL;
  struct fmq_client_msg m = {
      .kind = FMQ_CLIENT_PUBLISH,
      .type = "publish",
      .type_len = 7,
      .id = j,
      .topic = topic,
      .topic_len = strlen(topic),
      .qos = qos,
      .retain = retain,
      .payload = (const uint8_t *)text,
      .payload_len = strlen(text),
  };
  fmq_session_publish(p->s, &p->peer, &m);
  json_decref(j);
}

/* --- the broker's side --- */

/* Checks the latest SUBSCRIBE of filter; returns its identifier. */
static uint32_t expect_subscribe_call(const char *filter, int qos, int retain_handling) {
  const struct fmqt_mqtt_call *c = fmqt_fake_last(FMQT_CALL_SUBSCRIBE, filter);
  assert_int_equal(c->qos, qos);
  assert_int_equal(c->retain_handling, retain_handling);
  assert_true(c->subid >= 1 && c->subid <= 268435455u);
  return c->subid;
}

static size_t nsubscribes(const char *filter) {
  return fmqt_fake_count(FMQT_CALL_SUBSCRIBE, filter);
}

static size_t nunsubscribes(const char *filter) {
  return fmqt_fake_count(FMQT_CALL_UNSUBSCRIBE, filter);
}

/* The broker grants the latest SUBSCRIBE of filter at qos. */
static void grant(const char *filter, int qos) {
  fmqt_fake_answer_last(FMQT_CALL_SUBSCRIBE, filter, FMQ_MQTT_DONE, qos);
}

/* p subscribes filter (source) and the broker grants it; returns the
 * filter's subscription identifier. */
static uint32_t hold(struct fake_peer *p, const char *filter, int qos, uint32_t source) {
  size_t before = nsubscribes(filter);
  subscribe(p, filter, qos, NULL, source);
  assert_int_equal(nsubscribes(filter), before + 1);
  uint32_t subid = expect_subscribe_call(filter, qos, 0);
  grant(filter, qos);
  expect_subscribed(p, filter, qos, NULL);
  return subid;
}

/* One copy of a QoS 0 message, live or retained, through subid. */
static void message(const char *topic, const char *text, uint32_t subid) {
  fmqt_fake_message_text(topic, text, 0, 0, &subid, 1);
}

static void retained(const char *topic, const char *text, uint32_t subid) {
  fmqt_fake_message_text(topic, text, 0, 1, &subid, 1);
}

/* ===================================================================== */
/* Attach and status                                                     */
/* ===================================================================== */

/* Attaching while the broker is down greets with status down; changes go
 * to every attached peer and to no released one. */
static void test_attach_and_status(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 0);
  struct fake_peer *a = fx_peer(&fx, "a");
  expect_status(a, "down");
  expect_nothing(a);
  /* fx_start called fmq_session_connect: no event yet. */
  assert_int_equal(fmqt_fake.connects, 1);
  assert_int_equal(fmqt_pub.starts, 1);
  fmqt_fake_connected();
  expect_status(a, "up");
  struct fake_peer *b = fx_peer(&fx, "b");
  expect_nothing(b);

  fmqt_fake_lost("gone");
  expect_status(a, "down");
  expect_status(b, "down");
  /* A second loss changes nothing. */
  fmqt_fake_lost("gone again");
  expect_nothing(a);
  struct fake_peer *c = fx_peer(&fx, "c");
  expect_status(c, "down");

  /* Every peer gets the very same status frame. */
  fmqt_fake_connected();
  expect_status(a, "up");
  expect_status(b, "up");
  expect_status(c, "up");
  assert_ptr_equal(taken_buf(a), taken_buf(b));
  assert_ptr_equal(taken_buf(b), taken_buf(c));

  peer_go(a);
  assert_false(a->peer.attached);
  fmqt_fake_lost("gone");
  expect_status(b, "down");
  expect_status(c, "down");
  assert_int_equal(a->nframes, a->next);
  assert_int_equal(a->dropped, 0);
  fx_end(&fx);
}

/* ===================================================================== */
/* Reference counts                                                      */
/* ===================================================================== */

/* One broker subscription per distinct filter, whoever holds it; a late
 * joiner's SUBSCRIBE waits for the one in flight; UNSUBSCRIBE only when the
 * last holder leaves. */
static void test_refcount_subscribe_unsubscribe(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c");

  subscribe(a, "a/b", 1, "s1", 0);
  assert_int_equal(nsubscribes("a/b"), 1);
  uint32_t sid = expect_subscribe_call("a/b", 1, 0);
  uintptr_t first_token = fmqt_fake_last(FMQT_CALL_SUBSCRIBE, "a/b")->token;
  expect_nothing(a);

  /* b joins while a's SUBSCRIBE is in flight: it waits for the SUBACK. */
  subscribe(b, "a/b", 1, "s2", 0);
  assert_int_equal(nsubscribes("a/b"), 1);
  grant("a/b", 1);
  expect_subscribed(a, "a/b", 1, "s1");
  expect_nothing(b);
  /* Then its own SUBSCRIBE (same filter, same identifier, new token), so
   * that it gets the retained messages. */
  assert_int_equal(nsubscribes("a/b"), 2);
  assert_int_equal(expect_subscribe_call("a/b", 1, 0), sid);
  assert_true(fmqt_fake_last(FMQT_CALL_SUBSCRIBE, "a/b")->token != first_token);
  grant("a/b", 1);
  expect_subscribed(b, "a/b", 1, "s2");
  expect_nothing(a);

  /* Another filter: its own subscription and identifier. */
  uint32_t sid2 = hold(c, "a/+", 0, 0);
  assert_true(sid2 != sid);

  /* The same client subscribing again: still one hold, a new SUBSCRIBE for
   * the retained messages, one answer per request. */
  subscribe(a, "a/b", 1, "s3", 0);
  assert_int_equal(a->peer.nsubs, 1);
  assert_int_equal(nsubscribes("a/b"), 3);
  expect_subscribe_call("a/b", 1, 0);
  grant("a/b", 1);
  expect_subscribed(a, "a/b", 1, "s3");
  expect_nothing(b);

  unsubscribe(a, "a/b", "u1");
  expect_unsubscribed(a, "a/b", "u1");
  assert_int_equal(a->peer.nsubs, 0);
  assert_int_equal(nunsubscribes("a/b"), 0);
  assert_int_equal(nsubscribes("a/b"), 3);

  /* Unsubscribing what one does not hold is answered and changes nothing. */
  unsubscribe(a, "a/b", "u2");
  expect_unsubscribed(a, "a/b", "u2");
  assert_int_equal(nunsubscribes(NULL), 0);

  unsubscribe(b, "a/b", NULL);
  expect_unsubscribed(b, "a/b", NULL);
  assert_int_equal(nunsubscribes("a/b"), 1);
  assert_int_equal(nunsubscribes(NULL), 1);
  fmqt_fake_answer_last(FMQT_CALL_UNSUBSCRIBE, "a/b", FMQ_MQTT_DONE, 0);

  /* Release: c's filter is unsubscribed as c goes. */
  peer_go(c);
  assert_int_equal(nunsubscribes("a/+"), 1);
  assert_int_equal(nunsubscribes(NULL), 2);
  assert_int_equal(fmqt_pub.nsends, 0);
  fx_end(&fx);
}

/* A holder arriving while the last one's UNSUBSCRIBE is in flight gets a
 * new SUBSCRIBE after the UNSUBACK; a subscribe not yet granted when its
 * client unsubscribes is answered as asked, and the broker is unsubscribed
 * after the SUBACK. */
static void test_refcount_unsubscribe_in_flight(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c");

  uint32_t sid = hold(a, "x", 0, 0);
  unsubscribe(a, "x", NULL);
  expect_unsubscribed(a, "x", NULL);
  assert_int_equal(nunsubscribes("x"), 1);

  subscribe(b, "x", 1, "s", 0);
  assert_int_equal(nsubscribes("x"), 1);
  expect_nothing(b);
  fmqt_fake_answer_last(FMQT_CALL_UNSUBSCRIBE, "x", FMQ_MQTT_DONE, 0);
  assert_int_equal(nsubscribes("x"), 2);
  assert_int_equal(expect_subscribe_call("x", 1, 0), sid);
  grant("x", 1);
  expect_subscribed(b, "x", 1, "s");
  assert_int_equal(nunsubscribes("x"), 1);

  subscribe(c, "y", 2, "s1", 0);
  unsubscribe(c, "y", "u1");
  expect_subscribed(c, "y", 2, "s1");
  expect_unsubscribed(c, "y", "u1");
  assert_int_equal(nunsubscribes("y"), 0);
  grant("y", 2);
  expect_nothing(c);
  assert_int_equal(nunsubscribes("y"), 1);
  fmqt_fake_answer_last(FMQT_CALL_UNSUBSCRIBE, "y", FMQ_MQTT_DONE, 0);
  assert_int_equal(nsubscribes("y"), 1);

  /* A refused UNSUBSCRIBE keeps the filter and its identifier: a later
   * holder subscribes it again under the same one. */
  unsubscribe(b, "x", NULL);
  expect_unsubscribed(b, "x", NULL);
  fmqt_fake_answer_last(FMQT_CALL_UNSUBSCRIBE, "x", FMQ_MQTT_REFUSED, 0x80);
  assert_int_equal(nsubscribes("x"), 2);
  uint32_t other = hold(c, "z", 0, 0);
  assert_true(other != sid);
  subscribe(b, "x", 0, NULL, 0);
  assert_int_equal(nsubscribes("x"), 3);
  assert_int_equal(expect_subscribe_call("x", 0, 0), sid);
  fx_end(&fx);
}

static const struct mapping_spec watch_mappings[] = {
    {"watch", FMQ_MAPPING_SUBSCRIBE, "event", -1},
    {"unwatch", FMQ_MAPPING_UNSUBSCRIBE, NULL, 0},
    {"follow", FMQ_MAPPING_SUBSCRIBE, "note", -1},
};
#define WATCH 1u   /* source of the "watch" mapping: deliver_type "event" */
#define FOLLOW 3u  /* source of the "follow" mapping: deliver_type "note" */

/* A session with the watch mappings and the broker up. */
static void fx_open_watch(struct fixture *fx) {
  fx_init(fx);
  fx_mappings(fx, watch_mappings, 3);
  fx_start(fx, 1);
}

/* Holds through mappings count like plain ones: an undo drops only its
 * source's, a plain unsubscribe drops the filter from every source. */
static void test_refcount_mapped_origins(void **state) {
  (void)state;
  struct fixture fx;
  fx_open_watch(&fx);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b");

  uint32_t ab = hold(a, "a/b", 0, 0);
  assert_int_equal(hold(a, "a/b", 1, WATCH), ab);
  hold(a, "c/d", 0, WATCH);
  hold(b, "c/d", 0, WATCH);
  assert_int_equal(a->peer.nsubs, 3);
  assert_int_equal(nsubscribes("a/b"), 2);
  assert_int_equal(nsubscribes("c/d"), 2);

  undo(a, WATCH, "u");
  static const char *const both[] = {"a/b", "c/d"};
  expect_unsubscribed_topics(a, both, 2, "u");
  assert_int_equal(a->peer.nsubs, 1);
  assert_int_equal(nunsubscribes(NULL), 0);
  /* a's plain hold is at QoS 0: the watch at QoS 1 was the highest. */
  assert_int_equal(nsubscribes("a/b"), 3);
  expect_subscribe_call("a/b", 0, 2);
  grant("a/b", 0);
  expect_nothing(a);

  undo(b, WATCH, NULL);
  static const char *const cd[] = {"c/d"};
  expect_unsubscribed_topics(b, cd, 1, NULL);
  assert_int_equal(nunsubscribes("c/d"), 1);
  undo(b, WATCH, NULL);
  expect_unsubscribed_topics(b, NULL, 0, NULL);
  assert_int_equal(nunsubscribes(NULL), 1);

  hold(a, "a/b", 0, FOLLOW);
  assert_int_equal(a->peer.nsubs, 2);
  unsubscribe(a, "a/b", "u2");
  expect_unsubscribed(a, "a/b", "u2");
  expect_nothing(a);
  assert_int_equal(a->peer.nsubs, 0);
  assert_int_equal(nunsubscribes("a/b"), 1);
  fx_end(&fx);
}

/* The broker's QoS is the highest asked for: a higher one re-subscribes
 * (Retain Handling 0, for the new holder's retained messages); when it
 * drops, the filter is subscribed again with Retain Handling 2. */
static void test_qos_change_resubscribes(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b");

  uint32_t sid = hold(a, "x", 0, 0);
  subscribe(b, "x", 2, "s", 0);
  assert_int_equal(nsubscribes("x"), 2);
  assert_int_equal(expect_subscribe_call("x", 2, 0), sid);
  /* The grant may be lower than asked: the answer says so. */
  grant("x", 1);
  expect_subscribed(b, "x", 1, "s");
  expect_nothing(a);

  size_t mark = fmqt_fake.ncalls;
  unsubscribe(b, "x", NULL);
  expect_unsubscribed(b, "x", NULL);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "x"), 1);
  assert_int_equal(expect_subscribe_call("x", 0, 2), sid);
  assert_int_equal(nunsubscribes(NULL), 0);
  /* Nobody waits for that SUBACK and nobody gets a retained copy after it. */
  grant("x", 0);
  retained("x", "r", sid);
  expect_nothing(a);
  expect_nothing(b);

  /* A raised QoS while a request is in flight waits for it. */
  subscribe(a, "x", 1, "up", 0);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "x"), 2);
  expect_subscribe_call("x", 1, 0);
  subscribe(a, "x", 2, "up2", 0);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "x"), 2);
  grant("x", 1);
  expect_subscribed(a, "x", 1, "up");
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "x"), 3);
  expect_subscribe_call("x", 2, 0);
  grant("x", 2);
  expect_subscribed(a, "x", 2, "up2");
  expect_nothing(a);

  /* A refused upgrade: the newcomer is told, the holder keeps receiving. */
  uint32_t y = hold(a, "y", 0, 0);
  subscribe(b, "y", 2, "sy", 0);
  expect_subscribe_call("y", 2, 0);
  fmqt_fake_answer_last(FMQT_CALL_SUBSCRIBE, "y", FMQ_MQTT_REFUSED, 0x9e);
  expect_error(b, "forbidden", "sy");
  assert_int_equal(b->peer.nsubs, 0);
  assert_int_equal(a->peer.nsubs, 2);
  assert_int_equal(nunsubscribes(NULL), 0);
  message("y", "still", y);
  expect_msg(a, "message", "y", "still", 0, 0);
  expect_nothing(a);
  expect_nothing(b);
  fx_end(&fx);
}

/* websocket.max_subscriptions counts holds (filter and source). */
static void test_max_subscriptions(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx.config.websocket.max_subscriptions = 2;
  fx_mappings(&fx, watch_mappings, 3);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a");

  hold(a, "a", 0, 0);
  hold(a, "b", 0, 0);
  subscribe(a, "c", 0, "s3", 0);
  expect_error(a, "too_many_subscriptions", "s3");
  subscribe(a, "a", 0, "s4", WATCH);
  expect_error(a, "too_many_subscriptions", "s4");
  assert_int_equal(nsubscribes("c"), 0);
  assert_int_equal(a->peer.nsubs, 2);
  /* Subscribing again to a held filter is no new hold. */
  hold(a, "a", 1, 0);
  unsubscribe(a, "b", NULL);
  expect_unsubscribed(a, "b", NULL);
  hold(a, "c", 0, 0);
  fx_end(&fx);
}

/* What the broker or the client library refuses is answered to the waiting
 * client, and leaves nothing behind. */
static void test_subscribe_failures(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b");

  subscribe(a, "secret/#", 1, "s1", 0);
  fmqt_fake_answer_last(FMQT_CALL_SUBSCRIBE, "secret/#", FMQ_MQTT_REFUSED, 0x87);
  expect_error(a, "forbidden", "s1");
  assert_int_equal(a->peer.nsubs, 0);
  assert_int_equal(nunsubscribes(NULL), 0);

  /* Dropped while the connection is up: answered, not retried. */
  subscribe(a, "lost", 0, "s2", 0);
  fmqt_fake_answer_last(FMQT_CALL_SUBSCRIBE, "lost", FMQ_MQTT_NOT_SENT, 0);
  expect_error(a, "unavailable", "s2");
  assert_int_equal(nsubscribes("lost"), 1);
  assert_int_equal(a->peer.nsubs, 0);

  /* Refused by the client library. */
  fmqt_fake.subscribe_rc = UV_ENOBUFS;
  subscribe(a, "full", 0, "s3", 0);
  expect_error(a, "internal", "s3");
  assert_int_equal(a->peer.nsubs, 0);

  /* Paho says disconnected before the LOST event came: the subscribe waits
   * for the reconnect. */
  fmqt_fake.subscribe_rc = UV_ENOTCONN;
  subscribe(b, "later", 1, "s4", 0);
  expect_nothing(b);
  assert_int_equal(b->peer.nsubs, 1);
  fmqt_fake.subscribe_rc = 0;
  fmqt_fake_lost("down");
  expect_status(a, "down");
  expect_status(b, "down");
  /* While down nothing is sent. */
  subscribe(a, "a/down", 0, "s5", 0);
  assert_int_equal(nsubscribes("a/down"), 0);
  fmqt_fake_connected();
  expect_status(a, "up");
  expect_status(b, "up");
  assert_int_equal(nsubscribes("later"), 2);
  assert_int_equal(nsubscribes("a/down"), 1);
  grant("later", 1);
  grant("a/down", 0);
  expect_subscribed(b, "later", 1, "s4");
  expect_subscribed(a, "a/down", 0, "s5");
  expect_nothing(a);
  expect_nothing(b);
  fx_end(&fx);
}

/* ===================================================================== */
/* Exactly once                                                          */
/* ===================================================================== */

/* MQTT 5: one copy per matching subscription, back to back, each with its
 * identifier; each client gets one delivery per delivery type, through its
 * designated filter (the lowest identifier). */
static void test_exactly_once_mqtt5(void **state) {
  (void)state;
  struct fixture fx;
  fx_open_watch(&fx);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c"),
                   *d = fx_peer(&fx, "d");

  uint32_t all = hold(a, "a/#", 0, 0);
  uint32_t ab = hold(a, "a/b", 0, 0);
  assert_int_equal(hold(b, "a/b", 0, 0), ab);
  uint32_t plus = hold(c, "a/+", 0, 0);
  assert_int_equal(hold(c, "a/b", 0, WATCH), ab);
  assert_true(all < ab && ab < plus);
  /* d holds its filters in the other order than their identifiers. */
  hold(d, "a/+", 0, 0);
  hold(d, "a/#", 0, 0);

  message("a/b", "m1", all);
  message("a/b", "m1", ab);
  message("a/b", "m1", plus);
  expect_msg(a, "message", "a/b", "m1", 0, 0);
  expect_msg(b, "message", "a/b", "m1", 0, 0);
  expect_msg(c, "event", "a/b", "m1", 0, 0);   /* a/b's copy */
  expect_msg(c, "message", "a/b", "m1", 0, 0); /* a/+'s */
  expect_msg(d, "message", "a/b", "m1", 0, 0);
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);
  expect_nothing(d);

  /* Which copy each takes: a/b's copy is not a's (a/# is lower), but is
   * b's and c's "event" one. */
  message("a/b", "m2", ab);
  expect_nothing(a);
  expect_msg(b, "message", "a/b", "m2", 0, 0);
  expect_msg(c, "event", "a/b", "m2", 0, 0);
  expect_nothing(c);
  fmqt_fake_connack(2); /* any other event ends a group */
  message("a/b", "m3", all);
  expect_msg(a, "message", "a/b", "m3", 0, 0);
  expect_msg(d, "message", "a/b", "m3", 0, 0);
  expect_nothing(b);
  expect_nothing(c);
  message("a/b", "m3b", plus);
  expect_msg(c, "message", "a/b", "m3b", 0, 0);
  expect_nothing(a);
  expect_nothing(d);
  /* Topics only some filters match. */
  message("a/c", "m4", all);
  message("a/c", "m4", plus);
  expect_msg(a, "message", "a/c", "m4", 0, 0);
  expect_msg(d, "message", "a/c", "m4", 0, 0);
  expect_msg(c, "message", "a/c", "m4", 0, 0);
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);

  /* One copy carrying every identifier. */
  const uint32_t ids[] = {ab, all, plus};
  fmqt_fake_message_text("a/b", "m5", 1, 0, ids, 3);
  expect_msg(a, "message", "a/b", "m5", 1, 0);
  expect_msg(b, "message", "a/b", "m5", 1, 0);
  expect_msg(c, "event", "a/b", "m5", 1, 0);
  expect_msg(c, "message", "a/b", "m5", 1, 0);
  expect_msg(d, "message", "a/b", "m5", 1, 0);
  expect_nothing(d);

  /* The same message published twice: an identifier seen again starts the
   * second delivery. */
  for (int round = 0; round < 2; round++) {
    message("a/b", "m6", all);
    message("a/b", "m6", ab);
    message("a/b", "m6", plus);
  }
  for (int round = 0; round < 2; round++) {
    expect_msg(a, "message", "a/b", "m6", 0, 0);
    expect_msg(b, "message", "a/b", "m6", 0, 0);
    expect_msg(d, "message", "a/b", "m6", 0, 0);
    expect_msg(c, "event", "a/b", "m6", 0, 0);
    expect_msg(c, "message", "a/b", "m6", 0, 0);
  }
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);
  expect_nothing(d);

  /* Another payload or topic right after is another message, not a copy,
   * even with an identifier not seen yet. */
  message("a/b", "p", all);
  message("a/b", "q", ab);
  message("a/c", "q", plus);
  expect_msg(a, "message", "a/b", "p", 0, 0);
  expect_msg(d, "message", "a/b", "p", 0, 0);
  expect_msg(b, "message", "a/b", "q", 0, 0);
  expect_msg(c, "event", "a/b", "q", 0, 0);
  expect_msg(c, "message", "a/c", "q", 0, 0);
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);
  expect_nothing(d);

  /* A client whose filters change between two copies still gets one. */
  message("a/b", "m7", all);
  expect_msg(a, "message", "a/b", "m7", 0, 0);
  unsubscribe(a, "a/#", NULL);
  expect_unsubscribed(a, "a/#", NULL);
  message("a/b", "m7", ab);
  expect_nothing(a);
  expect_msg(b, "message", "a/b", "m7", 0, 0);
  fx_end(&fx);
}

/* MQTT 3.1.1: no identifiers and one copy per message, routed through the
 * trie to every client whose filters match, once each (per type). */
static void test_exactly_once_mqtt311(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx.config.broker.protocol = FMQ_MQTT_311;
  fx_mappings(&fx, watch_mappings, 3);
  fx_start(&fx, 1);
  assert_int_equal(fx.s.mqtt.version, MQTTVERSION_3_1_1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c");

  hold(a, "a/#", 0, 0);
  hold(a, "a/b", 0, 0);
  hold(a, "+/b", 0, WATCH);
  hold(b, "a/+", 0, 0);
  hold(c, "c/#", 0, 0);

  fmqt_fake_message_text("a/b", "m1", 0, 0, NULL, 0);
  /* The trie's order decides which type comes first. */
  static const char *const types[] = {"message", "event"};
  expect_msg_types(a, types, 2, "a/b", "m1");
  expect_msg(b, "message", "a/b", "m1", 0, 0);
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);

  /* Without identifiers two equal messages are two deliveries. */
  fmqt_fake_message_text("a/b/c", "m2", 0, 0, NULL, 0);
  fmqt_fake_message_text("a/b/c", "m2", 0, 0, NULL, 0);
  expect_msg(a, "message", "a/b/c", "m2", 0, 0);
  expect_msg(a, "message", "a/b/c", "m2", 0, 0);
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);
  fx_end(&fx);
}

/* Each arriving message is encoded once per delivery type: every
 * recipient, through whichever copy, gets the same buffer. */
static void test_encode_once(void **state) {
  (void)state;
  struct fixture fx;
  fx_open_watch(&fx);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c"),
                   *d = fx_peer(&fx, "d");

  uint32_t all = hold(a, "e/#", 0, 0);
  hold(b, "e/#", 0, 0);
  uint32_t one = hold(c, "e/1", 0, 0);
  hold(d, "e/1", 0, WATCH);

  message("e/1", "x", all);
  message("e/1", "x", one);
  expect_msg(a, "message", "e/1", "x", 0, 0);
  const struct fmq_buf *first = taken_buf(a);
  expect_msg(b, "message", "e/1", "x", 0, 0);
  assert_ptr_equal(taken_buf(b), first);
  expect_msg(c, "message", "e/1", "x", 0, 0);
  assert_ptr_equal(taken_buf(c), first);
  expect_msg(d, "event", "e/1", "x", 0, 0);
  assert_ptr_not_equal(taken_buf(d), first);
  /* Each recipient holds its own reference (the test keeps them); the
   * session lets go of its own when the group ends. */
  fmqt_fake_connack(2);
  assert_int_equal(atomic_load(&first->refs), 3);

  message("e/1", "x", all);
  expect_msg(a, "message", "e/1", "x", 0, 0);
  expect_msg(b, "message", "e/1", "x", 0, 0);
  assert_ptr_equal(taken_buf(a), taken_buf(b));
  assert_ptr_not_equal(taken_buf(a), first);
  expect_nothing(c);
  expect_nothing(d);
  fx_end(&fx);
}

/* ===================================================================== */
/* Retained messages                                                     */
/* ===================================================================== */

/* A retained copy belongs to the latest SUBACK of its filter: only the
 * holders that SUBSCRIBE was for get it. */
static void test_retained_to_suback_audience_mqtt5(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c");

  uint32_t all = hold(a, "r/#", 0, 0);
  retained("r/1", "old", all);
  expect_msg(a, "message", "r/1", "old", 0, 1);

  /* The late joiner's SUBSCRIBE (Retain Handling 0) replays them for it
   * alone. */
  subscribe(b, "r/#", 0, NULL, 0);
  assert_int_equal(expect_subscribe_call("r/#", 0, 0), all);
  grant("r/#", 0);
  expect_subscribed(b, "r/#", 0, NULL);
  retained("r/1", "old", all);
  retained("r/2", "old2", all);
  expect_msg(b, "message", "r/1", "old", 0, 1);
  expect_msg(b, "message", "r/2", "old2", 0, 1);
  expect_nothing(a);
  expect_nothing(b);

  message("r/1", "new", all);
  expect_msg(a, "message", "r/1", "new", 0, 0);
  expect_msg(b, "message", "r/1", "new", 0, 0);

  /* Another filter's SUBACK does not change r/#'s audience, and its
   * retained copies go to its own holders only. */
  uint32_t one = hold(c, "r/1", 0, 0);
  retained("r/1", "new", one);
  expect_msg(c, "message", "r/1", "new", 0, 1);
  expect_nothing(a);
  expect_nothing(b);
  retained("r/2", "old2", all);
  expect_msg(b, "message", "r/2", "old2", 0, 1);
  expect_nothing(a);
  expect_nothing(c);

  /* a adds r/1 beside r/# (lower identifier, other SUBACK): it asked for
   * r/1's retained messages and gets them, through r/1. */
  subscribe(a, "r/1", 0, NULL, 0);
  grant("r/1", 0);
  expect_subscribed(a, "r/1", 0, NULL);
  retained("r/1", "new", one);
  expect_msg(a, "message", "r/1", "new", 0, 1);
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);
  fx_end(&fx);
}

/* The same on 3.1.1, where a retained copy follows the latest SUBACK of
 * any filter. */
static void test_retained_to_suback_audience_mqtt311(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx.config.broker.protocol = FMQ_MQTT_311;
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c");

  hold(a, "r/#", 0, 0);
  fmqt_fake_message_text("r/1", "old", 1, 1, NULL, 0);
  expect_msg(a, "message", "r/1", "old", 1, 1);

  hold(b, "r/#", 1, 0);
  fmqt_fake_message_text("r/1", "old", 1, 1, NULL, 0);
  expect_msg(b, "message", "r/1", "old", 1, 1);
  expect_nothing(a);

  hold(c, "x/#", 0, 0);
  fmqt_fake_message_text("r/1", "old", 1, 1, NULL, 0);
  fmqt_fake_message_text("x/1", "xo", 0, 1, NULL, 0);
  expect_msg(c, "message", "x/1", "xo", 0, 1);
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);

  /* A QoS drop re-subscribes; 3.1.1 replays the retained messages anyway,
   * and they go to nobody. */
  unsubscribe(b, "r/#", NULL);
  expect_unsubscribed(b, "r/#", NULL);
  expect_subscribe_call("r/#", 0, 2);
  grant("r/#", 0);
  fmqt_fake_message_text("r/1", "old", 0, 1, NULL, 0);
  expect_nothing(a);
  expect_nothing(b);
  assert_int_equal(nunsubscribes(NULL), 0);
  fx_end(&fx);
}

/* ===================================================================== */
/* Publishing                                                            */
/* ===================================================================== */

/* --- the publishing connection's side --- */

/* The next message handed to the publisher that no expectation took yet
 * is topic/text at qos (QoS 0 without a token, QoS 1/2 with one). */
static const struct fmqt_pub_send *expect_handed(const char *topic, const char *text, int qos) {
  if (handed_next >= fmqt_pub.nsends)
    fail_msg("expected %s \"%.8s\" handed to the publisher, got nothing", topic, text);
  const struct fmqt_pub_send *m = &fmqt_pub.sends[handed_next++];
  if (strcmp(m->topic, topic) != 0 || m->len != strlen(text) ||
      memcmp(m->payload, text, m->len) != 0 || m->qos != qos)
    fail_msg("expected %s \"%.8s\" at QoS %d handed, got %s \"%.8s\" at QoS %d", topic, text, qos,
             m->topic, (const char *)m->payload, m->qos);
  if ((qos == 0) != (m->token == 0))
    fail_msg("%s \"%.8s\" at QoS %d handed with token %ju", topic, text, qos,
             (uintmax_t)m->token);
  assert_false(m->after_stop);
  return m;
}

static void expect_nothing_handed(void) {
  if (handed_next < fmqt_pub.nsends)
    fail_msg("expected nothing more handed to the publisher, got %s \"%.8s\" (and %zu more)",
             fmqt_pub.sends[handed_next].topic, (const char *)fmqt_pub.sends[handed_next].payload,
             fmqt_pub.nsends - handed_next - 1);
}

/* Messages that weigh BIG_COST each against broker.publish_window: WINDOW
 * (the configuration's minimum) holds four. */
#define BIG_TOPIC "big"
#define BIG_COST 1024u
#define WINDOW 4096u

/* tag, padded so that a message of it on BIG_TOPIC weighs BIG_COST as the
 * real fmq_pubmsg_new counts. Valid until 7 more calls. */
static const char *big(const char *tag) {
  static char bufs[8][BIG_COST];
  static unsigned next;
  struct fmq_pubmsg *m = fmq_pubmsg_new(BIG_TOPIC, "", 0, 0, 0, 0);
  assert_non_null(m);
  size_t len = BIG_COST - m->cost;
  free(m);
  assert_true(len < BIG_COST && strlen(tag) <= len);
  char *b = bufs[next++ % 8];
  memset(b, '.', len);
  memcpy(b, tag, strlen(tag));
  b[len] = '\0';
  return b;
}

/* The session's accounting agrees with where the messages are: its queued
 * bytes are those of its queue, its handed bytes those the publisher holds,
 * its held count that of its pending publishes marked held. */
static void check_window(const struct fixture *fx) {
  uint64_t queued = 0, handed = 0, held = 0;
  const struct fmq_pubmsg *m;
  STAILQ_FOREACH(m, &fx->s.queued, link)
    queued += m->cost;
  STAILQ_FOREACH(m, &fmqt_pub.held, link)
    handed += m->cost;
  const struct fmq_pub *p;
  TAILQ_FOREACH(p, &fx->s.pubs, link)
    held += (uint64_t)(p->held != 0);
  assert_int_equal(fx->s.queued_bytes, queued);
  assert_int_equal(fx->s.handed_bytes, handed);
  assert_int_equal(fx->s.held, held);
}

/* Everything is answered: nothing queued, handed, held, pending or paused;
 * the window is back at zero. */
static void expect_all_done(const struct fixture *fx) {
  check_window(fx);
  assert_int_equal(fx->s.queued_bytes, 0);
  assert_int_equal(fx->s.handed_bytes, 0);
  assert_int_equal(fx->s.held, 0);
  assert_true(STAILQ_EMPTY(&fx->s.queued));
  assert_int_equal(fmqt_pub.nheld, 0);
  assert_true(TAILQ_EMPTY(&fx->s.pubs));
  assert_true(TAILQ_EMPTY(&fx->s.paused));
}

/* Each ack goes to the client that published, with its id, by token
 * whatever the order the publisher gives messages back in; refusals map to
 * the protocol's codes; a client gone before its ack is not touched. */
static void test_publish_acks(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c");

  publish(a, "t/a", "hello", 1, 0, "p1");
  const struct fmqt_pub_send *sent = expect_handed("t/a", "hello", 1);
  assert_int_equal(sent->retain, 0);
  uintptr_t t1 = sent->token;
  publish(b, "t/b", "", 2, 1, "p2");
  sent = expect_handed("t/b", "", 2);
  assert_int_equal(sent->retain, 1);
  uintptr_t t2 = sent->token;
  assert_true(t1 != t2);
  expect_nothing(a);
  expect_nothing(b);
  check_window(&fx);

  fmqt_pub_done_token(t2, FMQ_MQTT_DONE, 0);
  expect_puback(b, "p2");
  expect_nothing(a);
  fmqt_pub_done_token(t1, FMQ_MQTT_DONE, 0);
  expect_puback(a, "p1");
  expect_nothing(a);
  expect_nothing(b);

  /* Several in one DONE, in another order than they were handed. */
  publish(a, "t/a", "x", 1, 0, "p3");
  publish(b, "t/b", "y", 1, 0, "p4");
  publish(a, "t/a", "z", 2, 0, "p5");
  expect_handed("t/a", "x", 1);
  expect_handed("t/b", "y", 1);
  expect_handed("t/a", "z", 2);
  static const struct fmqt_pub_answer three[] = {
      {2, FMQ_MQTT_DONE, 0}, {0, FMQ_MQTT_DONE, 0}, {1, FMQ_MQTT_DONE, 0}};
  fmqt_pub_done(three, 3);
  expect_puback(a, "p5");
  expect_puback(a, "p3");
  expect_puback(b, "p4");
  expect_nothing(a);
  expect_nothing(b);

  static const struct {
    int reason;
    const char *code;
  } refusals[] = {{0x87, "forbidden"}, {0x90, "invalid_topic"}, {0x80, "internal"},
                  {0x97, "internal"}};
  for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
    publish(a, "t/r", "x", 1 + (int)(i % 2), 0, "pr");
    expect_handed("t/r", "x", 1 + (int)(i % 2));
    fmqt_pub_done_oldest(1, FMQ_MQTT_REFUSED, refusals[i].reason);
    expect_error(a, refusals[i].code, "pr");
    expect_nothing(a);
    expect_nothing(b);
  }

  /* QoS 0 is acknowledged when the gateway takes it (token 0: the DONE
   * that gives it back says nothing more); without an id nothing is said. */
  publish(a, "t/0", "z", 0, 0, "p0");
  expect_puback(a, "p0");
  expect_handed("t/0", "z", 0);
  publish(a, "t/0", "z", 0, 0, NULL);
  publish(a, "t/1", "z", 1, 0, NULL);
  expect_handed("t/0", "z", 0);
  expect_handed("t/1", "z", 1);
  fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
  expect_nothing(a);
  expect_nothing_handed();

  /* The publisher went (and its memory with it) before the answers. */
  publish(c, "t/c", "z", 1, 0, "pc");
  publish(c, "t/c", "r", 2, 0, "pr");
  uintptr_t tc = expect_handed("t/c", "z", 1)->token;
  uintptr_t tr = expect_handed("t/c", "r", 2)->token;
  peer_go(c);
  fx_free_peer(&fx, c);
  fmqt_pub_done_token(tc, FMQ_MQTT_DONE, 0);
  fmqt_pub_done_token(tr, FMQ_MQTT_REFUSED, 0x87);
  expect_nothing(a);
  expect_nothing(b);
  expect_all_done(&fx);
  fx_end(&fx);
}

/* While the broker is known to be away (an attempt failed, or the
 * connection dropped): QoS 0 is unavailable, QoS 1/2 is held up to
 * broker.offline_buffer, counting what the publisher gave back not sent
 * (what it holds is not held in the gateway); once both connections are
 * back, what was held goes, in order. */
static void test_publish_while_down(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx.config.broker.offline_buffer = 2;
  fx_start(&fx, 0);
  struct fake_peer *a = fx_peer(&fx, "a");
  expect_status(a, "down");
  fmqt_fake_connect_failed("connection refused");
  expect_nothing(a);

  publish(a, "t", "q0", 0, 0, "q0");
  expect_error(a, "unavailable", "q0");
  publish(a, "t", "h1", 1, 0, "h1");
  publish(a, "t", "h2", 2, 0, "h2");
  publish(a, "t", "h3", 1, 0, "h3");
  expect_error(a, "unavailable", "h3");
  expect_nothing(a);
  expect_nothing_handed();
  assert_int_equal(fx.s.held, 2);
  check_window(&fx);

  /* The publishing connection alone is not enough. */
  fmqt_pub_connected();
  expect_nothing_handed();
  fmqt_fake_connected();
  expect_status(a, "up");
  expect_handed("t", "h1", 1);
  expect_handed("t", "h2", 2);
  expect_nothing_handed();
  assert_int_equal(fx.s.held, 0);
  fmqt_pub_done_oldest(1, FMQ_MQTT_DONE, 0);
  expect_puback(a, "h1");
  /* While up there is no bound of the session's own. */
  for (int i = 0; i < 4; i++)
    publish(a, "t", "u", 1, 0, NULL);
  for (int i = 0; i < 4; i++)
    expect_handed("t", "u", 1);
  check_window(&fx);

  /* h2 and the four are with the publisher, not held here: two more fit. */
  fmqt_fake_lost("down");
  expect_status(a, "down");
  publish(a, "t", "h4", 1, 0, "h4");
  publish(a, "t", "h5", 2, 0, "h5");
  publish(a, "t", "h6", 1, 0, "h6");
  expect_error(a, "unavailable", "h6");
  assert_int_equal(fx.s.held, 2);
  /* The publishing connection drops too: what it had comes back not sent
   * and is held again, ahead of h4 and h5, now beyond the bound. */
  fmqt_pub_done_all(FMQ_MQTT_NOT_SENT, 0);
  fmqt_pub_lost("gone");
  expect_nothing(a);
  assert_int_equal(fx.s.held, 7);
  check_window(&fx);
  publish(a, "t", "h7", 1, 0, "h7");
  expect_error(a, "unavailable", "h7");
  publish(a, "t", "q1", 0, 0, "q1");
  expect_error(a, "unavailable", "q1");
  expect_nothing_handed();

  fmqt_fake_connected();
  expect_status(a, "up");
  expect_nothing_handed();
  fmqt_pub_connected();
  expect_handed("t", "h2", 2);
  for (int i = 0; i < 4; i++)
    expect_handed("t", "u", 1);
  expect_handed("t", "h4", 1);
  expect_handed("t", "h5", 2);
  expect_nothing_handed();
  fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
  expect_puback(a, "h2");
  expect_puback(a, "h4");
  expect_puback(a, "h5");
  expect_nothing(a);
  expect_all_done(&fx);
  fx_end(&fx);
}

/* broker.offline_buffer 0: nothing is held, whichever connection failed. */
static void test_publish_while_down_no_buffer(void **state) {
  (void)state;
  for (int pub = 0; pub < 2; pub++) {
    struct fixture fx;
    fx_init(&fx);
    fx.config.broker.offline_buffer = 0;
    fx_start(&fx, 0);
    struct fake_peer *a = fx_peer(&fx, "a");
    expect_status(a, "down");
    if (pub)
      fmqt_pub_connect_failed("refused");
    else
      fmqt_fake_connect_failed("refused");
    publish(a, "t", "x", 1, 0, "p");
    expect_error(a, "unavailable", "p");
    publish(a, "t", "x", 0, 0, "p0");
    expect_error(a, "unavailable", "p0");
    expect_nothing(a);
    expect_nothing_handed();
    expect_all_done(&fx);
    fx_end(&fx);
  }
}

/* The broker's Maximum QoS (CONNACK) caps publishes. */
static void test_publish_max_qos(void **state) {
  (void)state;
  static const struct {
    int max, asked, sent;
  } cases[] = {{2, 2, 2}, {1, 2, 1}, {1, 1, 1}, {1, 0, 0}, {0, 2, 0}, {0, 1, 0}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct fixture fx;
    fx_init(&fx);
    fx_start(&fx, 0);
    fmqt_fake_connack(cases[i].max);
    fx_up();
    struct fake_peer *a = fx_peer(&fx, "a");
    publish(a, "t", "x", cases[i].asked, 0, "p");
    expect_handed("t", "x", cases[i].sent);
    if (cases[i].sent == 0) {
      expect_puback(a, "p");
      fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
    } else {
      expect_nothing(a);
      fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
      expect_puback(a, "p");
    }
    expect_nothing(a);
    expect_all_done(&fx);
    fx_end(&fx);
  }
}

/* What a resumed client had read: one big QoS 1 message. */
static void publish_big_r(struct fake_peer *p) {
  publish(p, BIG_TOPIC, big("R"), 1, 0, NULL);
}

/* broker.publish_window: the client whose publish fills the window is
 * paused, once (what it had read still comes in); so is every client that
 * publishes while it is full (not one without a pause operation). Once the
 * messages given back bring it under half, the paused clients are resumed,
 * oldest first, each once; a client released while paused is resumed as
 * it goes, and not again. A
 * client resumed may publish at once and fill the window again: it is
 * paused again (now the newest) and those behind it wait. */
static void test_publish_backpressure(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx.config.broker.publish_window = WINDOW;
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c"),
                   *d = fx_peer(&fx, "d"), *e = fx_peer(&fx, "e");
  e->peer.ops = &fake_peer_ops_no_pause;

  publish(a, BIG_TOPIC, big("a1"), 1, 0, "a1");
  publish(a, BIG_TOPIC, big("a2"), 0, 0, NULL);
  publish(a, BIG_TOPIC, big("a3"), 1, 0, "a3");
  expect_no_pause();
  expect_handed(BIG_TOPIC, big("a1"), 1);
  expect_handed(BIG_TOPIC, big("a2"), 0);
  expect_handed(BIG_TOPIC, big("a3"), 1);
  assert_int_equal(fx.s.handed_bytes, 3 * BIG_COST);
  check_window(&fx);
  /* a4 fits exactly, and fills the window. */
  publish(a, BIG_TOPIC, big("a4"), 1, 0, "a4");
  expect_handed(BIG_TOPIC, big("a4"), 1);
  expect_pause(a, 1);
  expect_no_pause();
  publish(a, BIG_TOPIC, big("a5"), 1, 0, "a5");
  expect_nothing_handed();
  expect_no_pause();
  publish(b, BIG_TOPIC, big("b1"), 0, 0, "b1");
  expect_puback(b, "b1");
  expect_pause(b, 1);
  publish(c, BIG_TOPIC, big("c1"), 1, 0, "c1");
  expect_pause(c, 1);
  publish(e, BIG_TOPIC, big("e1"), 1, 0, "e1");
  expect_no_pause();
  assert_false(e->peer.paused);
  expect_nothing_handed();
  assert_int_equal(fx.s.handed_bytes, 4 * BIG_COST);
  assert_int_equal(fx.s.queued_bytes, 4 * BIG_COST);
  check_window(&fx);

  /* c goes while paused: it reads again (for its close frame), and its
   * message still goes (it was accepted). */
  peer_go(c);
  expect_pause(c, 0);
  fx_free_peer(&fx, c);
  expect_no_pause();

  /* Room for one: a5 goes; the window is still full. */
  fmqt_pub_done_oldest(1, FMQ_MQTT_DONE, 0);
  expect_puback(a, "a1");
  expect_handed(BIG_TOPIC, big("a5"), 1);
  expect_no_pause();
  fmqt_pub_done_oldest(2, FMQ_MQTT_DONE, 0);
  expect_puback(a, "a3");
  expect_handed(BIG_TOPIC, big("b1"), 0);
  expect_handed(BIG_TOPIC, big("c1"), 1);
  expect_no_pause();
  fmqt_pub_done_oldest(2, FMQ_MQTT_DONE, 0);
  expect_puback(a, "a4");
  expect_puback(a, "a5");
  expect_handed(BIG_TOPIC, big("e1"), 1);
  expect_nothing_handed();
  expect_no_pause();
  check_window(&fx);
  /* Half full is not under half. */
  fmqt_pub_done_oldest(1, FMQ_MQTT_DONE, 0);
  assert_int_equal(fx.s.handed_bytes + fx.s.queued_bytes, WINDOW / 2);
  expect_no_pause();
  fmqt_pub_done_oldest(1, FMQ_MQTT_DONE, 0);
  expect_pause(a, 0);
  expect_pause(b, 0);
  expect_no_pause();
  fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
  expect_puback(e, "e1");
  expect_no_pause();
  expect_all_done(&fx);

  /* Once more: a fills the window, b waits behind it; a, resumed, at once
   * publishes four it had read, fills the window again and is paused again,
   * so b stays paused, and is resumed first next time. */
  for (int i = 0; i < 4; i++)
    publish(a, BIG_TOPIC, big("A"), 1, 0, NULL);
  expect_pause(a, 1);
  publish(b, BIG_TOPIC, big("B"), 1, 0, NULL);
  expect_pause(b, 1);
  expect_no_pause();
  for (int i = 0; i < 4; i++)
    expect_handed(BIG_TOPIC, big("A"), 1);
  a->resume_publishes = 4;
  a->resume_publish = publish_big_r;
  fmqt_pub_done_oldest(4, FMQ_MQTT_DONE, 0);
  expect_pause(a, 0);
  expect_pause(a, 1);
  expect_no_pause();
  expect_handed(BIG_TOPIC, big("B"), 1);
  for (int i = 0; i < 3; i++)
    expect_handed(BIG_TOPIC, big("R"), 1);
  expect_nothing_handed();
  assert_int_equal(fx.s.queued_bytes, BIG_COST);
  check_window(&fx);
  fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
  expect_handed(BIG_TOPIC, big("R"), 1);
  expect_pause(b, 0);
  expect_pause(a, 0);
  expect_no_pause();
  fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
  expect_no_pause();
  assert_int_equal(a->paused, 3);
  assert_int_equal(a->resumed, 3);
  assert_int_equal(b->paused, 2);
  assert_int_equal(b->resumed, 2);
  assert_int_equal(d->paused + d->resumed, 0);
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(d);
  expect_nothing(e);
  expect_all_done(&fx);
  fx_end(&fx);
}

/* At start-up, before any connection event (both connections CONNECTING),
 * publishes are accepted: QoS 0 answered at once, QoS 1/2 waiting, none
 * held against broker.offline_buffer, nothing handed. They are handed, in
 * order, once the session's connection is up, the publishing one too, and
 * the subscriptions made meanwhile are answered, in either order. */
static void test_publish_startup(void **state) {
  (void)state;
  for (int order = 0; order < 2; order++) {
    struct fixture fx;
    fx_init(&fx);
    fx.config.broker.offline_buffer = 1;
    fx_start(&fx, 0);
    struct fake_peer *a = fx_peer(&fx, "a");
    expect_status(a, "down");
    subscribe(a, "s/#", 0, "s0", 0);
    assert_int_equal(nsubscribes(NULL), 0);

    publish(a, "t", "z1", 0, 0, "z1");
    expect_puback(a, "z1");
    publish(a, "t", "o1", 1, 0, "o1");
    publish(a, "t", "z2", 0, 0, NULL);
    publish(a, "t", "o2", 2, 0, "o2");
    expect_nothing(a);
    expect_nothing_handed();
    assert_int_equal(fx.s.held, 0);
    assert_true(fx.s.queued_bytes > 0);
    check_window(&fx);

    if (order == 0) {
      fmqt_pub_connected();
      expect_nothing_handed();
      fmqt_fake_connected();
      expect_status(a, "up");
      assert_int_equal(nsubscribes("s/#"), 1);
      expect_nothing_handed();
      grant("s/#", 0);
      expect_subscribed(a, "s/#", 0, "s0");
    } else {
      fmqt_fake_connected();
      expect_status(a, "up");
      expect_nothing_handed();
      grant("s/#", 0);
      expect_subscribed(a, "s/#", 0, "s0");
      expect_nothing_handed();
      fmqt_pub_connected();
    }
    expect_handed("t", "z1", 0);
    expect_handed("t", "o1", 1);
    expect_handed("t", "z2", 0);
    expect_handed("t", "o2", 2);
    expect_nothing_handed();
    expect_nothing(a);
    fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
    expect_puback(a, "o1");
    expect_puback(a, "o2");
    expect_nothing(a);
    expect_all_done(&fx);
    fx_end(&fx);
  }
}

/* After a reconnect, what waits is handed only once every re-subscription
 * is answered (so that the gateway's own subscribers get it), not at the
 * first SUBACK; a new client's subscribe meanwhile is not waited for; a
 * loss during the restore starts it again, and a stale SUBACK from before
 * counts for nothing. */
static void test_publish_restore_gating(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c");
  hold(a, "x/#", 1, 0);
  hold(b, "y", 0, 0);

  size_t mark = fmqt_fake.ncalls;
  fmqt_fake_lost("gone");
  expect_status(a, "down");
  expect_status(b, "down");
  expect_status(c, "down");
  publish(c, "x/1", "h1", 1, 0, "h1");
  publish(c, "y", "h2", 2, 0, "h2");
  assert_int_equal(fx.s.held, 2);
  expect_nothing_handed();

  fmqt_fake_connected();
  expect_status(a, "up");
  expect_status(b, "up");
  expect_status(c, "up");
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, NULL), 2);
  expect_nothing_handed();
  /* Not a re-subscription: not waited for. */
  subscribe(c, "z", 0, "sz", 0);
  assert_int_equal(nsubscribes("z"), 1);
  publish(c, "x/1", "h3", 1, 0, "h3");
  publish(c, "x/1", "z0", 0, 0, "z0");
  expect_puback(c, "z0");
  expect_nothing_handed();
  grant("x/#", 1);
  expect_nothing_handed();
  grant("z", 0);
  expect_subscribed(c, "z", 0, "sz");
  expect_nothing_handed();
  check_window(&fx);

  /* Lost again before y's SUBACK: z0 (QoS 0, waiting) is dropped, h3
   * held. */
  uintptr_t old_y = fmqt_fake_last(FMQT_CALL_SUBSCRIBE, "y")->token;
  mark = fmqt_fake.ncalls;
  fmqt_fake_lost("again");
  expect_status(a, "down");
  expect_status(b, "down");
  expect_status(c, "down");
  assert_int_equal(fx.s.held, 3);
  check_window(&fx);
  fmqt_fake_connected();
  expect_status(a, "up");
  expect_status(b, "up");
  expect_status(c, "up");
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, NULL), 3);
  publish(c, "x/1", "z1", 0, 0, "z1");
  expect_puback(c, "z1");
  fmqt_fake_answer(FMQ_MQTT_SUBACK, old_y, FMQ_MQTT_NOT_SENT, 0);
  expect_nothing_handed();
  grant("x/#", 1);
  grant("z", 0);
  expect_nothing_handed();
  grant("y", 0);
  expect_handed("x/1", "h1", 1);
  expect_handed("y", "h2", 2);
  expect_handed("x/1", "h3", 1);
  expect_handed("x/1", "z1", 0);
  expect_nothing_handed();
  fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
  expect_puback(c, "h1");
  expect_puback(c, "h2");
  expect_puback(c, "h3");
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);
  expect_all_done(&fx);
  fx_end(&fx);
}

/* Messages handed, then given back not sent (the publishing connection
 * dropped): QoS 1/2 go back to the front of the queue, in their order,
 * before messages queued earlier or later, to be handed again; QoS 0 are
 * dropped without a word to the client (it had its answer). The real
 * thread gives them back before it reports the loss, so they are handed
 * again at once (order 0) and it sends them once reconnected; given back
 * after the loss (order 1) they wait for the reconnect. */
static void test_publish_not_sent_requeue(void **state) {
  (void)state;
  for (int order = 0; order < 2; order++) {
    struct fixture fx;
    fx_init(&fx);
    fx.config.broker.publish_window = WINDOW;
    fx_start(&fx, 1);
    struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b");

    publish(a, BIG_TOPIC, big("A1"), 1, 0, "A1");
    publish(a, BIG_TOPIC, big("A2"), 0, 0, "A2");
    expect_puback(a, "A2");
    publish(a, BIG_TOPIC, big("A3"), 2, 0, "A3");
    publish(a, BIG_TOPIC, big("A4"), 1, 0, "A4");
    expect_pause(a, 1);
    publish(b, BIG_TOPIC, big("B0"), 0, 0, "B0");
    expect_puback(b, "B0");
    expect_pause(b, 1);
    publish(b, BIG_TOPIC, big("B1"), 1, 0, "B1");
    expect_handed(BIG_TOPIC, big("A1"), 1);
    expect_handed(BIG_TOPIC, big("A2"), 0);
    expect_handed(BIG_TOPIC, big("A3"), 2);
    expect_handed(BIG_TOPIC, big("A4"), 1);
    expect_nothing_handed();
    check_window(&fx);

    if (order == 0) {
      fmqt_pub_done_all(FMQ_MQTT_NOT_SENT, 0);
      expect_handed(BIG_TOPIC, big("A1"), 1);
      expect_handed(BIG_TOPIC, big("A3"), 2);
      expect_handed(BIG_TOPIC, big("A4"), 1);
      expect_handed(BIG_TOPIC, big("B0"), 0);
      expect_nothing_handed();
      expect_no_pause();
      fmqt_pub_lost("gone");
      expect_pause(a, 0);
      expect_pause(b, 0);
      /* B1 waits, held. */
      assert_int_equal(fx.s.held, 1);
    } else {
      /* B0, queued, is dropped at the loss; B1 is held. */
      fmqt_pub_lost("gone");
      expect_pause(a, 0);
      expect_pause(b, 0);
      assert_int_equal(fx.s.held, 1);
      fmqt_pub_done_all(FMQ_MQTT_NOT_SENT, 0);
      expect_nothing_handed();
      assert_int_equal(fx.s.held, 4);
      struct fmq_pubmsg *m = STAILQ_FIRST(&fx.s.queued);
      static const char *const again[] = {"A1", "A3", "A4", "B1"};
      for (size_t i = 0; i < 4; i++, m = STAILQ_NEXT(m, link)) {
        assert_non_null(m);
        assert_memory_equal(m->payload, again[i], 2);
      }
      assert_null(m);
    }
    expect_nothing(a);
    expect_nothing(b);
    check_window(&fx);
    /* Queued later, behind them. */
    publish(a, BIG_TOPIC, big("A5"), 1, 0, "A5");
    expect_no_pause();
    expect_nothing_handed();
    fmqt_pub_connected();
    if (order == 0) {
      expect_nothing_handed();
      fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
      expect_puback(a, "A1");
      expect_puback(a, "A3");
      expect_puback(a, "A4");
    } else {
      expect_handed(BIG_TOPIC, big("A1"), 1);
      expect_handed(BIG_TOPIC, big("A3"), 2);
      expect_handed(BIG_TOPIC, big("A4"), 1);
    }
    expect_handed(BIG_TOPIC, big("B1"), 1);
    if (order == 1) {
      expect_nothing_handed();
      fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
      expect_puback(a, "A1");
      expect_puback(a, "A3");
      expect_puback(a, "A4");
      expect_puback(b, "B1");
    }
    expect_handed(BIG_TOPIC, big("A5"), 1);
    expect_nothing_handed();
    fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
    if (order == 0)
      expect_puback(b, "B1");
    expect_puback(a, "A5");
    expect_nothing(a);
    expect_nothing(b);
    expect_no_pause();
    expect_all_done(&fx);
    fx_end(&fx);
  }
}

/* The broker known to be away, whichever connection says so (a failed
 * first attempt, or a loss, of the session's connection or of the
 * publishing one): QoS 0 is refused (unavailable); QoS 1/2 held up to
 * broker.offline_buffer, then refused; QoS 0 messages still queued are
 * dropped (answered already); paused clients read again. What is held goes
 * once the broker is back. */
static void test_publish_broker_away(void **state) {
  (void)state;
  for (int cause = 0; cause < 4; cause++) {
    struct fixture fx;
    fx_init(&fx);
    fx.config.broker.publish_window = WINDOW;
    fx.config.broker.offline_buffer = 2;
    fx_start(&fx, cause >= 2);
    struct fake_peer *a = fx_peer(&fx, "a");
    if (cause < 2) {
      expect_status(a, "down");
    } else {
      /* Up, the window full. */
      for (int i = 0; i < 4; i++)
        publish(a, BIG_TOPIC, big("F"), 1, 0, NULL);
      for (int i = 0; i < 4; i++)
        expect_handed(BIG_TOPIC, big("F"), 1);
      expect_pause(a, 1);
    }
    publish(a, BIG_TOPIC, big("Z0"), 0, 0, "z0");
    expect_puback(a, "z0");
    publish(a, BIG_TOPIC, big("Z1"), 1, 0, "z1");
    expect_nothing_handed();
    assert_int_equal(fx.s.queued_bytes, 2 * BIG_COST);
    assert_int_equal(fx.s.held, 0);

    switch (cause) {
    case 0:
      fmqt_fake_connect_failed("refused");
      break;
    case 1:
      fmqt_pub_connect_failed("refused");
      break;
    case 2:
      fmqt_fake_lost("gone");
      expect_status(a, "down");
      break;
    default:
      /* As the thread does: what it held back not sent, then the loss. */
      fmqt_pub_done_all(FMQ_MQTT_NOT_SENT, 0);
      for (int i = 0; i < 4; i++)
        expect_handed(BIG_TOPIC, big("F"), 1);
      fmqt_pub_lost("gone");
      break;
    }
    if (cause >= 2)
      expect_pause(a, 0);
    expect_no_pause();
    expect_nothing(a);
    /* Z0 dropped, Z1 held. */
    assert_int_equal(fx.s.queued_bytes, BIG_COST);
    assert_int_equal(fx.s.held, 1);
    check_window(&fx);

    publish(a, "t", "n0", 0, 0, "n0");
    expect_error(a, "unavailable", "n0");
    publish(a, "t", "h2", 2, 0, "h2");
    expect_nothing(a);
    publish(a, "t", "h3", 1, 0, "h3");
    expect_error(a, "unavailable", "h3");
    assert_int_equal(fx.s.held, 2);
    expect_nothing_handed();
    expect_no_pause();
    check_window(&fx);

    switch (cause) {
    case 0:
      fmqt_pub_connected();
      expect_nothing_handed();
      fmqt_fake_connected();
      expect_status(a, "up");
      break;
    case 1:
      fmqt_fake_connected();
      expect_status(a, "up");
      expect_nothing_handed();
      fmqt_pub_connected();
      break;
    case 2:
      fmqt_fake_connected();
      expect_status(a, "up");
      break;
    default:
      fmqt_pub_connected();
      break;
    }
    if (cause >= 2) {
      expect_nothing_handed();
      fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
    }
    expect_handed(BIG_TOPIC, big("Z1"), 1);
    expect_handed("t", "h2", 2);
    expect_nothing_handed();
    fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
    expect_puback(a, "z1");
    expect_puback(a, "h2");
    expect_nothing(a);
    expect_no_pause();
    expect_all_done(&fx);
    fx_end(&fx);
  }
}

/* Each client's messages are handed in the order it sent them, whatever
 * their QoS, whether they go at once or wait for room, and whatever the
 * order the publisher gives earlier ones back in. */
/* A client whose publish fills the window but which is going (its
 * puback overflowed its transport, which released it) is not paused: it
 * must read its close frame. The fake peer fails the test on a pause after
 * its release. */
static void test_publish_going_client_not_paused(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx.config.broker.publish_window = WINDOW;
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a");
  for (int i = 0; i < 3; i++)
    publish(a, BIG_TOPIC, big("a"), 1, 0, NULL);
  expect_no_pause();
  a->release_at = a->nframes + 1;
  a->victims[a->nvictims++] = a;
  publish(a, BIG_TOPIC, big("a4"), 0, 0, "a4");
  assert_false(a->peer.attached);
  expect_no_pause();
  fx_free_peer(&fx, a);
  fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
  expect_all_done(&fx);
  fx_end(&fx);
}

/* A QoS 1 message that went out on three connections, each dropped
 * before the broker's ack, is given up (the broker is likely dropping the
 * connection because of it): unavailable, and nothing more is handed.
 * Messages given back without going out (written unset) do not count. */
static void test_publish_given_up_after_attempts(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a");
  publish(a, "t/x", "m", 1, 0, "x");
  expect_handed("t/x", "m", 1);
  fmqt_pub_done_all(FMQ_MQTT_NOT_SENT, 0);
  expect_handed("t/x", "m", 1);
  for (int attempt = 1; attempt <= 3; attempt++) {
    fmqt_pub_held_at(0)->written = 1;
    fmqt_pub_done_all(FMQ_MQTT_NOT_SENT, 0);
    fmqt_pub_lost("gone");
    fmqt_pub_connected();
    if (attempt < 3)
      expect_handed("t/x", "m", 1);
  }
  expect_error(a, "unavailable", "x");
  expect_nothing_handed();
  expect_all_done(&fx);
  fx_end(&fx);
}

static void test_publish_order_across_qos(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx.config.broker.publish_window = WINDOW;
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b");

  publish(a, BIG_TOPIC, big("A1"), 1, 0, "A1");
  publish(b, BIG_TOPIC, big("B1"), 0, 0, NULL);
  publish(a, BIG_TOPIC, big("A2"), 0, 0, NULL);
  publish(a, BIG_TOPIC, big("A3"), 2, 0, "A3");
  expect_pause(a, 1);
  publish(a, "t", "A4", 0, 0, NULL);
  publish(a, "t", "A5", 1, 0, "A5");
  publish(b, "t", "B2", 1, 0, "B2");
  expect_pause(b, 1);
  publish(a, "t", "A6", 0, 0, NULL);
  publish(a, "t", "A7", 2, 0, "A7");
  publish(b, "t", "B3", 0, 0, NULL);
  expect_no_pause();
  expect_handed(BIG_TOPIC, big("A1"), 1);
  expect_handed(BIG_TOPIC, big("B1"), 0);
  expect_handed(BIG_TOPIC, big("A2"), 0);
  expect_handed(BIG_TOPIC, big("A3"), 2);
  expect_nothing_handed();
  check_window(&fx);

  static const struct fmqt_pub_answer back[] = {{3, FMQ_MQTT_DONE, 0}, {0, FMQ_MQTT_DONE, 0}};
  fmqt_pub_done(back, 2);
  expect_puback(a, "A3");
  expect_puback(a, "A1");
  expect_handed("t", "A4", 0);
  expect_handed("t", "A5", 1);
  expect_handed("t", "B2", 1);
  expect_handed("t", "A6", 0);
  expect_handed("t", "A7", 2);
  expect_handed("t", "B3", 0);
  expect_nothing_handed();
  expect_no_pause();
  check_window(&fx);
  fmqt_pub_done_all(FMQ_MQTT_DONE, 0);
  expect_pause(a, 0);
  expect_pause(b, 0);
  expect_no_pause();
  expect_puback(a, "A5");
  expect_puback(a, "A7");
  expect_puback(b, "B2");
  expect_nothing(a);
  expect_nothing(b);
  expect_all_done(&fx);
  fx_end(&fx);
}

/* Stopping with publishes pending (queued, handed, from a client gone):
 * the publisher gives back what it held, not sent, then STOPPED, and only
 * then is it closed; nothing is leaked or freed twice (ASan watches). */
static void test_publish_pending_at_stop(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx.config.broker.publish_window = WINDOW;
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b");
  for (int i = 0; i < 3; i++)
    publish(a, BIG_TOPIC, big("P"), 1, 0, "p");
  publish(a, BIG_TOPIC, big("Q"), 0, 0, NULL);
  expect_pause(a, 1);
  publish(b, BIG_TOPIC, big("Q"), 0, 0, NULL);
  publish(b, BIG_TOPIC, big("P"), 2, 0, NULL);
  expect_pause(b, 1);
  assert_int_equal(fmqt_pub.nheld, 4);
  assert_int_equal(fx.s.queued_bytes, 2 * BIG_COST);
  peer_go(b);
  fx_end(&fx);
}

/* The publisher is made first: when it cannot be, the session is not made
 * (and the MQTT client never was). When its thread cannot start, connect
 * fails without connecting the MQTT client, and stop closes it at once. */
static void test_publisher_init_and_start_fail(void **state) {
  (void)state;
  struct fixture fx;
  char err[256];
  fx_init(&fx);
  fmqt_pub.init_rc = -1;
  fx.snapshot = fmq_snapshot_new(&fx.config, err, sizeof(err));
  assert_non_null(fx.snapshot);
  assert_int_not_equal(fmq_session_init(&fx.s, &fx.loop, fx.snapshot), 0);
  assert_int_equal(fmqt_pub.inits, 1);
  assert_int_equal(fmqt_fake.inits, 0);
  assert_int_equal(fmqt_pub.starts, 0);
  assert_int_equal(uv_loop_close(&fx.loop), 0);
  fmq_snapshot_unref(fx.snapshot);

  fx_init(&fx);
  fmqt_pub.start_rc = UV_EAGAIN;
  fx.snapshot = fmq_snapshot_new(&fx.config, err, sizeof(err));
  assert_non_null(fx.snapshot);
  assert_int_equal(fmq_session_init(&fx.s, &fx.loop, fx.snapshot), 0);
  assert_int_not_equal(fmq_session_connect(&fx.s), 0);
  assert_int_equal(fmqt_pub.starts, 1);
  assert_int_equal(fmqt_fake.connects, 0);
  fmq_session_stop(&fx.s);
  assert_int_equal(fmqt_pub.stops, 0);
  assert_int_equal(fmqt_pub.closes, 1);
  assert_int_equal(fmqt_fake.stops, 1);
  fmqt_fake_stopped();
  fmq_session_close(&fx.s);
  assert_int_equal(uv_loop_close(&fx.loop), 0);
  fmq_snapshot_unref(fx.snapshot);
  fmqt_fake_reset();
  fmqt_pub_reset();
}

/* ===================================================================== */
/* Outages                                                               */
/* ===================================================================== */

/* LOST: status down to every peer; CONNECTED: status up, every filter
 * subscribed again (Retain Handling 0), and holders get the retained
 * messages again, once each even through overlapping filters. */
static void test_outage_resubscribes(void **state) {
  (void)state;
  struct fixture fx;
  fx_open_watch(&fx);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c"),
                   *d = fx_peer(&fx, "d"), *e = fx_peer(&fx, "e");

  uint32_t all = hold(a, "x/#", 1, 0);
  uint32_t one = hold(a, "x/1", 0, 0);
  assert_int_equal(hold(b, "x/1", 0, 0), one);
  /* e takes x/1 through a mapping too: its own delivery type. */
  hold(e, "x/#", 1, 0);
  hold(e, "x/1", 0, WATCH);
  /* d's subscribe is in flight when the connection drops; then Paho gives
   * up on it. */
  subscribe(d, "z", 0, "sz", 0);
  uintptr_t old_z = fmqt_fake_last(FMQT_CALL_SUBSCRIBE, "z")->token;
  subscribe(d, "w", 1, "sw", 0);
  uintptr_t old_w = fmqt_fake_last(FMQT_CALL_SUBSCRIBE, "w")->token;

  size_t mark = fmqt_fake.ncalls;
  fmqt_fake_lost("broker went away");
  expect_status(a, "down");
  expect_status(b, "down");
  expect_status(c, "down");
  expect_status(d, "down");
  expect_status(e, "down");
  fmqt_fake_answer(FMQ_MQTT_SUBACK, old_z, FMQ_MQTT_NOT_SENT, 0);
  expect_nothing(d);
  subscribe(c, "y", 2, "sy", 0);
  assert_int_equal(fmqt_fake.ncalls, mark);

  fmqt_fake_connected();
  expect_status(a, "up");
  expect_status(b, "up");
  expect_status(c, "up");
  expect_status(d, "up");
  expect_status(e, "up");
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, NULL), 5);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_UNSUBSCRIBE, NULL), 0);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "w"), 1);
  /* w's old request fails only now: too late to matter. */
  assert_true(fmqt_fake_last(FMQT_CALL_SUBSCRIBE, "w")->token != old_w);
  fmqt_fake_answer(FMQ_MQTT_SUBACK, old_w, FMQ_MQTT_NOT_SENT, 0);
  expect_nothing(d);
  grant("w", 1);
  expect_subscribed(d, "w", 1, "sw");
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "x/#"), 1);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "x/1"), 1);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "y"), 1);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "z"), 1);
  assert_int_equal(expect_subscribe_call("x/#", 1, 0), all);
  assert_int_equal(expect_subscribe_call("x/1", 0, 0), one);
  expect_subscribe_call("y", 2, 0);
  expect_subscribe_call("z", 0, 0);

  /* As the broker answers: each SUBACK, then its retained messages. */
  grant("x/#", 1);
  retained("x/1", "r", all);
  expect_msg(a, "message", "x/1", "r", 0, 1);
  expect_msg(e, "message", "x/1", "r", 0, 1);
  grant("x/1", 0);
  retained("x/1", "r", one);
  expect_msg(b, "message", "x/1", "r", 0, 1);
  expect_msg(e, "event", "x/1", "r", 0, 1);
  expect_nothing(a);
  expect_nothing(e);
  grant("y", 2);
  expect_subscribed(c, "y", 2, "sy");
  grant("z", 0);
  expect_subscribed(d, "z", 0, "sz");
  /* The stale answer again, now that z is granted: dropped. */
  fmqt_fake_answer(FMQ_MQTT_SUBACK, old_z, FMQ_MQTT_DONE, 0);
  expect_nothing(d);

  message("x/1", "live", all);
  message("x/1", "live", one);
  expect_msg(a, "message", "x/1", "live", 0, 0);
  expect_msg(b, "message", "x/1", "live", 0, 0);
  expect_msg(e, "message", "x/1", "live", 0, 0);
  expect_msg(e, "event", "x/1", "live", 0, 0);
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(c);
  expect_nothing(d);
  expect_nothing(e);

  /* A filter whose last holder left while down is forgotten, not
   * unsubscribed. */
  fmqt_fake_lost("again");
  unsubscribe(c, "y", NULL);
  mark = fmqt_fake.ncalls;
  fmqt_fake_connected();
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, "y"), 0);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_UNSUBSCRIBE, NULL), 0);
  assert_int_equal(fmqt_fake_count_since(mark, FMQT_CALL_SUBSCRIBE, NULL), 4);
  /* x/1 is granted before x/#: until x/# is, live copies come through x/1
   * alone, and a takes them there. */
  for (int i = 0; i < 2; i++) {
    struct fake_peer *p = i ? b : a;
    expect_status(p, "down");
    expect_status(p, "up");
    expect_nothing(p);
  }
  grant("x/1", 0);
  expect_nothing(a);
  message("x/1", "early", one);
  expect_msg(a, "message", "x/1", "early", 0, 0);
  expect_msg(b, "message", "x/1", "early", 0, 0);
  fx_end(&fx);
}

/* ===================================================================== */
/* Releases during session work                                          */
/* ===================================================================== */

/* A peer whose send releases itself or another (its queue overflowed)
 * must not crash the delivery in progress: the release waits for the
 * outermost leave. The released peers' memory is freed right after. */
static void test_release_during_delivery(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c"),
                   *d = fx_peer(&fx, "d"), *e = fx_peer(&fx, "e");
  uint32_t sid = hold(a, "q/#", 0, 0);
  hold(b, "q/#", 0, 0);
  hold(c, "q/#", 0, 0);
  hold(d, "q/#", 0, 0);
  hold(e, "q/#", 0, 0);
  uint32_t one = hold(b, "q/1", 0, 0);

  /* The holders are walked newest first (e, d, c, b, a): d releases itself
   * (twice), c releases a and b, which it has not been handed yet. */
  d->release_at = d->nframes + 1;
  d->victims[d->nvictims++] = d;
  d->victims[d->nvictims++] = d;
  c->release_at = c->nframes + 1;
  c->victims[c->nvictims++] = a;
  c->victims[c->nvictims++] = b;
  message("q/1", "m", sid);
  message("q/1", "m", one);
  assert_false(a->peer.attached);
  assert_false(b->peer.attached);
  assert_false(d->peer.attached);
  assert_true(c->peer.attached);
  assert_true(e->peer.attached);
  assert_int_equal(a->peer.nsubs, 0);
  assert_int_equal(b->peer.nsubs, 0);
  expect_msg(c, "message", "q/1", "m", 0, 0);
  expect_msg(d, "message", "q/1", "m", 0, 0);
  expect_msg(e, "message", "q/1", "m", 0, 0);
  expect_nothing(c);
  expect_nothing(e);
  /* Still listed until the outermost leave, a and b were handed the first
   * copy (their transport dropped it), not the second. */
  assert_int_equal(a->dropped, 1);
  assert_int_equal(b->dropped, 1);
  assert_int_equal(d->dropped, 0);
  /* q/1 lost its only holder; q/# has two left. */
  assert_int_equal(nunsubscribes("q/1"), 1);
  assert_int_equal(nunsubscribes("q/#"), 0);
  fx_free_peer(&fx, a);
  fx_free_peer(&fx, b);
  fx_free_peer(&fx, d);

  message("q/2", "n", sid);
  expect_msg(c, "message", "q/2", "n", 0, 0);
  expect_msg(e, "message", "q/2", "n", 0, 0);

  /* The last two holders go in one delivery: one UNSUBSCRIBE. */
  e->release_at = e->nframes + 1;
  e->victims[e->nvictims++] = e;
  e->victims[e->nvictims++] = c;
  message("q/3", "o", sid);
  assert_false(c->peer.attached);
  assert_false(e->peer.attached);
  assert_int_equal(c->dropped, 1);
  assert_int_equal(nunsubscribes("q/#"), 1);
  fx_free_peer(&fx, c);
  fx_free_peer(&fx, e);
  message("q/4", "p", sid);
  fmqt_fake_answer_last(FMQT_CALL_UNSUBSCRIBE, "q/#", FMQ_MQTT_DONE, 0);
  assert_int_equal(nsubscribes(NULL), 6);
  fx_end(&fx);
}

/* The same from a status broadcast and from a SUBACK's answers. */
static void test_release_during_status_and_suback(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx, 1);
  struct fake_peer *a = fx_peer(&fx, "a"), *b = fx_peer(&fx, "b"), *c = fx_peer(&fx, "c"),
                   *d = fx_peer(&fx, "d");

  hold(c, "w", 0, 0);
  b->release_at = 1;
  b->victims[b->nvictims++] = b;
  b->victims[b->nvictims++] = a;
  fmqt_fake_lost("down");
  assert_false(a->peer.attached);
  assert_false(b->peer.attached);
  expect_status(c, "down");
  expect_status(d, "down");
  fx_free_peer(&fx, a);
  fx_free_peer(&fx, b);
  fmqt_fake_connected();
  expect_status(c, "up");
  expect_status(d, "up");
  grant("w", 0);

  /* d goes when told it is subscribed: w's last holder leaves as its
   * SUBACK is answered. */
  d->release_at = d->nframes + 1;
  d->victims[d->nvictims++] = d;
  d->victims[d->nvictims++] = c;
  subscribe(d, "v", 0, "sv", 0);
  grant("v", 0);
  assert_false(d->peer.attached);
  assert_false(c->peer.attached);
  assert_int_equal(nunsubscribes("v"), 1);
  assert_int_equal(nunsubscribes("w"), 1);
  fx_free_peer(&fx, d);
  fx_free_peer(&fx, c);
  fx_end(&fx);
}

/* ===================================================================== */
/* fmq_session_check_topic                                               */
/* ===================================================================== */

static void check(const struct fixture *fx, const struct fake_peer *p, const char *topic,
                  int filter, const char *code, const char *why_has) {
  enum fmq_client_error_code got = FMQ_CE_BAD_JSON;
  char why[160] = "";
  int rc = fmq_session_check_topic(&fx->s, &p->peer, topic, filter, &got, why, sizeof(why));
  if (code == NULL) {
    if (rc != 0)
      fail_msg("%s %s: refused (%s)", filter ? "filter" : "topic", topic, why);
    return;
  }
  if (rc != -1 || strcmp(fmq_client_error_name(got), code) != 0)
    fail_msg("%s %s: expected %s, got %d %s (%s)", filter ? "filter" : "topic", topic, code, rc,
             rc ? fmq_client_error_name(got) : "", why);
  if (strstr(why, why_has) == NULL)
    fail_msg("%s %s: \"%s\" does not say \"%s\"", filter ? "filter" : "topic", topic, why,
             why_has);
}

static void acl_list(struct fmq_acl_list *l, const char *const *patterns, size_t n) {
  assert_int_equal(fmq_acl_list_init(l, patterns, n, 0, "alice", "c1"), 0);
}

static void test_check_topic(void **state) {
  (void)state;
  struct fixture fx;
  fx_init(&fx);
  fx.config.broker.max_topic_levels = 3;
  fx_start(&fx, 1);
  struct fake_peer *any = fx_peer(&fx, "any");

  static const char *const sub[] = {"devices/%u/#"};
  static const char *const pub[] = {"devices/%u/out", "cmd/+"};
  struct fmq_acl acl;
  acl_list(&acl.subscribe, sub, 1);
  acl_list(&acl.publish, pub, 2);
  struct fake_peer *alice = fx_peer_acl(&fx, "alice", &acl);
  struct fmq_acl none;
  acl_list(&none.subscribe, NULL, 0);
  acl_list(&none.publish, NULL, 0);
  struct fake_peer *nobody = fx_peer_acl(&fx, "nobody", &none);

  check(&fx, any, "#", 1, NULL, "");
  check(&fx, any, "a/b/c", 1, NULL, "");
  check(&fx, any, "a/b/c", 0, NULL, "");
  check(&fx, any, "a/+/#", 1, NULL, "");
  check(&fx, any, "$share/g/a", 1, "invalid_topic", "shared");
  check(&fx, any, "$share/g/#", 1, "invalid_topic", "shared");
  check(&fx, any, "a/b/c/d", 1, "invalid_topic", "3 levels");
  check(&fx, any, "a/b/c/#", 1, "invalid_topic", "3 levels");
  check(&fx, any, "a/b/c/d", 0, "invalid_topic", "3 levels");

  check(&fx, alice, "devices/alice/#", 1, NULL, "");
  check(&fx, alice, "devices/alice/+", 1, NULL, "");
  check(&fx, alice, "devices/alice/out", 1, NULL, "");
  check(&fx, alice, "devices/bob/#", 1, "forbidden", "subscribe");
  check(&fx, alice, "devices/+/x", 1, "forbidden", "subscribe");
  check(&fx, alice, "#", 1, "forbidden", "subscribe");
  check(&fx, alice, "devices/alice/out", 0, NULL, "");
  check(&fx, alice, "cmd/go", 0, NULL, "");
  check(&fx, alice, "devices/alice/in", 0, "forbidden", "publish");
  check(&fx, alice, "cmd/go", 1, "forbidden", "subscribe");
  /* Shape and depth come before the ACL. */
  check(&fx, alice, "$share/g/devices/alice/x", 1, "invalid_topic", "shared");
  check(&fx, alice, "devices/alice/x/y", 1, "invalid_topic", "levels");
  check(&fx, alice, "devices/bob/x/y", 0, "invalid_topic", "levels");

  check(&fx, nobody, "a", 1, "forbidden", "subscribe");
  check(&fx, nobody, "a", 0, "forbidden", "publish");
  fx_end(&fx);
}

/* A client re-subscribes a filter it already holds (for the retained
 * messages again, or another QoS) and that SUBSCRIBE fails: dropped while
 * connected (NOT_SENT) or refused. The broker still has the old
 * subscription: the client gets the error for its new request and keeps
 * the hold it had (it once lost it, and the broker was unsubscribed when it
 * was the last holder). */
static void test_failed_resubscribe_keeps_hold(void **state) {
  (void)state;
  static const struct {
    enum fmq_mqtt_outcome outcome;
    int reason;
    const char *code;
  } failures[] = {{FMQ_MQTT_NOT_SENT, 0x80, "unavailable"}, {FMQ_MQTT_REFUSED, 0x87, "forbidden"}};
  for (size_t i = 0; i < 2; i++) {
    struct fixture fx;
    fx_init(&fx);
    fx_start(&fx, 1);
    struct fake_peer *a = fx_peer(&fx, "a");
    uint32_t sid = hold(a, "x", 0, 0);
    subscribe(a, "x", 1, "again", 0);
    expect_subscribe_call("x", 1, 0);
    fmqt_fake_answer_last(FMQT_CALL_SUBSCRIBE, "x", failures[i].outcome, failures[i].reason);
    expect_error(a, failures[i].code, "again");
    assert_int_equal(a->peer.nsubs, 1);
    assert_int_equal(nunsubscribes("x"), 0);
    /* Nor is the QoS it could not get asked for again. */
    assert_int_equal(nsubscribes("x"), 2);
    message("x", "still", sid);
    expect_msg(a, "message", "x", "still", 0, 0);

    /* A subscribe made while the failed one was on its way waits for the
     * next SUBSCRIBE, and is answered by it. */
    subscribe(a, "x", 1, "again", 0);
    size_t sent = nsubscribes("x");
    subscribe(a, "x", 1, "third", 0);
    assert_int_equal(nsubscribes("x"), sent);
    fmqt_fake_answer_last(FMQT_CALL_SUBSCRIBE, "x", failures[i].outcome, failures[i].reason);
    expect_error(a, failures[i].code, "again");
    assert_int_equal(nsubscribes("x"), sent + 1);
    expect_subscribe_call("x", 1, 0);
    grant("x", 1);
    expect_subscribed(a, "x", 1, "third");
    assert_int_equal(a->peer.nsubs, 1);
    fx_end(&fx);
  }
}

int main(void) {
  fmq_log_set_level(FMQ_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_attach_and_status),
      cmocka_unit_test(test_refcount_subscribe_unsubscribe),
      cmocka_unit_test(test_refcount_unsubscribe_in_flight),
      cmocka_unit_test(test_refcount_mapped_origins),
      cmocka_unit_test(test_qos_change_resubscribes),
      cmocka_unit_test(test_max_subscriptions),
      cmocka_unit_test(test_subscribe_failures),
      cmocka_unit_test(test_exactly_once_mqtt5),
      cmocka_unit_test(test_exactly_once_mqtt311),
      cmocka_unit_test(test_encode_once),
      cmocka_unit_test(test_retained_to_suback_audience_mqtt5),
      cmocka_unit_test(test_retained_to_suback_audience_mqtt311),
      cmocka_unit_test(test_publish_acks),
      cmocka_unit_test(test_publish_while_down),
      cmocka_unit_test(test_publish_while_down_no_buffer),
      cmocka_unit_test(test_publish_max_qos),
      cmocka_unit_test(test_publish_backpressure),
      cmocka_unit_test(test_publish_startup),
      cmocka_unit_test(test_publish_restore_gating),
      cmocka_unit_test(test_publish_not_sent_requeue),
      cmocka_unit_test(test_publish_broker_away),
      cmocka_unit_test(test_publish_order_across_qos),
      cmocka_unit_test(test_publish_given_up_after_attempts),
      cmocka_unit_test(test_publish_going_client_not_paused),
      cmocka_unit_test(test_publish_pending_at_stop),
      cmocka_unit_test(test_publisher_init_and_start_fail),
      cmocka_unit_test(test_outage_resubscribes),
      cmocka_unit_test(test_release_during_delivery),
      cmocka_unit_test(test_release_during_status_and_suback),
      cmocka_unit_test(test_check_topic),
      cmocka_unit_test(test_failed_resubscribe_keeps_hold),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
