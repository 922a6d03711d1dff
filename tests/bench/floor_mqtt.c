/* floor-mqtt: this machine's limit on the work of fan-in, without the
 * gateway. One thread publishes M messages of S bytes with Paho's fastest
 * call (the synchronous MQTTClient_publish, QoS 0) to the broker, as fast as
 * it returns; the same counting subscriber as in fanin (the minimal client
 * on the main loop) receives them. Reports the publish calls per second,
 * the publisher's CPU per message and what reached the subscriber. */

#include "bench.h"
#include "hist.h"
#include "mqtt_lite.h"
#include "net.h"
#include "payload.h"
#include "report.h"
#include "scenarios.h"
#include "seq.h"

#include <MQTTClient.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct floor_mqtt {
  const struct fmqb_opts *o;
  uv_loop_t loop;
  struct fmqb_mqtt sub;
  uv_async_t wake;
  uv_timer_t tick;
  char url[64], topic[128];
  pthread_t thread;
  atomic_int pub_done;
  int pub_rc, pub_started, done, wake_closed, sub_up;
  uint64_t published, t_pub0, t_pub1;
  double pub_cpu_s;
  uint64_t rx, stray, t_last_rx, progress, progress_ns;
  struct fmqb_seq seq;
  struct fmqb_hist lat;
  const char *failure;
  struct fmqb_procmon br;
};

static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *publisher(void *arg) {
  struct floor_mqtt *f = arg;
  MQTTClient client;
  MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
  char id[64];
  snprintf(id, sizeof id, "fmqb-floor-%d", (int)getpid());
  f->pub_rc = MQTTClient_create(&client, f->url, id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
  if (f->pub_rc != MQTTCLIENT_SUCCESS) {
    goto out;
  }
  co.keepAliveInterval = 60;
  co.cleansession = 1;
  f->pub_rc = MQTTClient_connect(client, &co);
  if (f->pub_rc == MQTTCLIENT_SUCCESS) {
    char *pl = malloc((size_t)f->o->size + FMQB_PAYLOAD_MAX_HEAD);
    double cpu0 = thread_cpu();
    f->t_pub0 = fmqb_now_ns();
    for (uint32_t s = 0; s < f->o->messages && pl != NULL; s++) {
      size_t n = fmqb_payload_write(pl, f->o->size, 0, s, fmqb_now_ns());
      int rc = MQTTClient_publish(client, f->topic, (int)n, pl, 0, 0, NULL);
      if (rc != MQTTCLIENT_SUCCESS) {
        f->pub_rc = rc;
        break;
      }
      f->published++;
    }
    f->t_pub1 = fmqb_now_ns();
    f->pub_cpu_s = thread_cpu() - cpu0;
    free(pl);
    MQTTClient_disconnect(client, 1000);
  }
  MQTTClient_destroy(&client);
out:
  atomic_store(&f->pub_done, 1);
  uv_async_send(&f->wake);
  return NULL;
}

static void finish(struct floor_mqtt *f);

static void close_wake(struct floor_mqtt *f) {
  if (!f->wake_closed && f->done && (!f->pub_started || atomic_load(&f->pub_done))) {
    f->wake_closed = 1;
    uv_close((uv_handle_t *)&f->wake, NULL);
  }
}

static void on_wake(uv_async_t *a) {
  struct floor_mqtt *f = a->data;
  if (atomic_load(&f->pub_done)) {
    f->progress_ns = fmqb_now_ns();
    if (f->pub_rc != MQTTCLIENT_SUCCESS) {
      f->failure = "Paho could not connect or publish";
      finish(f);
    }
  }
  close_wake(f);
}

static void sub_up(struct fmqb_mqtt *m) {
  struct floor_mqtt *f = m->data;
  fmqb_mqtt_subscribe(m, f->topic, 0);
}

static void sub_suback(struct fmqb_mqtt *m, uint16_t pid, int granted) {
  struct floor_mqtt *f = m->data;
  (void)pid;
  if (granted == 0x80) {
    f->failure = "the broker refused the subscription";
    finish(f);
    return;
  }
  f->sub_up = 1;
  fmqb_procmon_ready(&f->br);
  fmqb_procmon_start(&f->br);
  f->pub_started = 1;
  if (pthread_create(&f->thread, NULL, publisher, f) != 0) {
    f->pub_started = 0;
    f->failure = "pthread_create failed";
    finish(f);
  }
}

static void sub_publish(struct fmqb_mqtt *m, const char *topic, size_t tlen, const uint8_t *p,
                        size_t n, int qos) {
  struct floor_mqtt *f = m->data;
  struct fmqb_stamp st;
  (void)topic, (void)tlen, (void)qos;
  uint64_t now = fmqb_now_ns();
  if (fmqb_payload_parse((const char *)p, n, &st) != 0) {
    f->stray++;
    return;
  }
  f->rx++;
  f->t_last_rx = now;
  if (fmqb_seq_mark(&f->seq, st.s)) {
    fmqb_hist_add(&f->lat, now - st.t);
  }
}

static void sub_closed(struct fmqb_mqtt *m) {
  struct floor_mqtt *f = m->data;
  if (!f->done) {
    f->failure = f->sub_up ? "the broker closed the subscriber" : "could not connect";
    finish(f);
  }
}

static const struct fmqb_mqtt_ops sub_ops = {sub_up, sub_suback, sub_publish, NULL, sub_closed};

static void on_tick(uv_timer_t *t) {
  struct floor_mqtt *f = t->data;
  uint64_t now = fmqb_now_ns();
  if (f->rx != f->progress) {
    f->progress = f->rx;
    f->progress_ns = now;
  }
  if (!atomic_load(&f->pub_done)) {
    return;
  }
  if (f->seq.unique >= f->o->messages || fmqb_secs(now - f->progress_ns) > f->o->drain) {
    finish(f);
  }
}

static void finish(struct floor_mqtt *f) {
  if (f->done) {
    return;
  }
  f->done = 1;
  fmqb_procmon_end(&f->br);
  uv_close((uv_handle_t *)&f->tick, NULL);
  if (f->sub.state != FMQB_MQTT_CLOSED) {
    fmqb_mqtt_close(&f->sub);
  }
  close_wake(f);
}

int fmqb_floor_mqtt(const struct fmqb_opts *o, struct fmqb_json *j) {
  struct floor_mqtt *f = fmqb_calloc(1, sizeof *f);
  f->o = o;
  char addr[32];
  fmqb_addr_str(&o->mqtt, addr, sizeof addr);
  snprintf(f->url, sizeof f->url, "tcp://%s", addr);
  snprintf(f->topic, sizeof f->topic, "%s/floor", o->prefix);
  uv_loop_init(&f->loop);
  fmqb_seq_init(&f->seq, o->messages);
  fmqb_hist_init(&f->lat);
  fmqb_procmon_init(&f->br, o->broker_pid);
  fmqb_procmon_base(&f->br);
  uv_async_init(&f->loop, &f->wake, on_wake);
  uv_timer_init(&f->loop, &f->tick);
  f->wake.data = f->tick.data = f;
  uv_timer_start(&f->tick, on_tick, 50, 50);
  f->sub.ops = &sub_ops;
  f->sub.data = f;
  char id[64];
  snprintf(id, sizeof id, "fmqb-sub-%d", (int)getpid());
  fmqb_mqtt_connect(&f->sub, &f->loop, &o->mqtt, id, 60);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  if (f->pub_started) {
    pthread_join(f->thread, NULL);
  }

  int rc = 0;
  if (f->failure != NULL) {
    rc = fmqb_fail(j, "%s", f->failure);
  }
  double pub_s = fmqb_secs(f->t_pub1 - f->t_pub0);
  double secs = f->t_last_rx > f->t_pub0 ? fmqb_secs(f->t_last_rx - f->t_pub0) : 0;
  double calls = pub_s > 0 ? (double)f->published / pub_s : 0;
  double rate = secs > 0 ? (double)f->seq.unique / secs : 0;
  double cpu_us = f->published ? f->pub_cpu_s / (double)f->published * 1e6 : 0;
  fmqb_say("Paho MQTTClient_publish, QoS 0, one thread: %llu calls in %.3f s (%.0f/s, "
           "%.2f us each, %.2f us CPU each)", (unsigned long long)f->published, pub_s, calls,
           f->published ? pub_s / (double)f->published * 1e6 : 0, cpu_us);
  fmqb_say("delivered %u of %u to the subscriber in %.3f s: %.0f messages/s; lost %u, "
           "duplicates %u", f->seq.unique, o->messages, secs, rate,
           o->messages - f->seq.unique, f->seq.dups);
  fmqb_json_u64(j, "messages", o->messages);
  fmqb_json_u64(j, "size", o->size);
  fmqb_json_u64(j, "published", f->published);
  fmqb_json_num(j, "publish_s", pub_s);
  fmqb_json_num(j, "publish_calls_per_s", calls);
  fmqb_json_num(j, "publisher_cpu_us_per_msg", cpu_us);
  fmqb_json_u64(j, "delivered", f->rx);
  fmqb_json_u64(j, "lost", o->messages - f->seq.unique);
  fmqb_json_u64(j, "duplicates", f->seq.dups);
  fmqb_json_num(j, "seconds", secs);
  fmqb_json_num(j, "msgs_per_s", rate);
  fmqb_report_latency(j, "latency_us", "latency publish call -> MQTT subscriber", &f->lat);
  fmqb_report_proc(j, "broker", "broker", &f->br, f->seq.unique, "messages", 0);
  fmqb_seq_close(&f->seq);
  uv_loop_close(&f->loop);
  free(f);
  return rc;
}
