/* ferrymq-bench: a load generator for ferrymq (README.md beside this file).
 * Usage: ferrymq-bench SCENARIO [options]; the last line of its output is
 * "RESULT {json}". Exit status 0 when the run could be carried out, 1 when
 * it could not (connections failed, the broker or gateway went away), 2 on
 * a wrong command line. */

#include "bench.h"
#include "net.h"
#include "opts.h"
#include "scenarios.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fmqb_fail(struct fmqb_json *j, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fmqb_warn("run failed: %s", msg);
  fmqb_json_str(j, "failure", msg);
  return -1;
}

struct scenario {
  const char *name;
  int (*run)(const struct fmqb_opts *o, struct fmqb_json *j);
  int needs_ws, needs_mqtt;
  /* defaults: clients, messages, rate, duration */
  uint32_t clients, messages;
  double rate, duration;
};

static const struct scenario scenarios[] = {
    {"fanout", fmqb_fanout, 1, 1, 100, 1000, 0, 0},
    {"slow", fmqb_fanout, 1, 1, 100, 1000, 0, 0},
    {"streams", fmqb_streams, 1, 1, 0, 10, 0, 0},
    {"fanin", fmqb_fanin, 1, 1, 10, 1000, 0, 0},
    {"idle", fmqb_idle, 1, 0, 1000, 0, 0, 10},
    {"churn", fmqb_churn, 1, 0, 0, 0, 0, 5},
    {"rtt", fmqb_rtt, 1, 0, 1, 1000, 200, 0},
    {"floor-ws", fmqb_floor_ws, 0, 0, 100, 10000, 0, 0},
    {"floor-mqtt", fmqb_floor_mqtt, 0, 1, 1, 100000, 0, 0},
};

int main(int argc, char **argv) {
  struct fmqb_opts o;
  int rc = fmqb_opts_parse(&o, argc, argv);
  if (rc != 0) {
    return rc > 0 ? 0 : 2;
  }
  const struct scenario *sc = NULL;
  for (size_t i = 0; i < FMQB_ARRAY_LEN(scenarios); i++) {
    if (strcmp(scenarios[i].name, o.scenario) == 0) {
      sc = &scenarios[i];
    }
  }
  if (sc == NULL) {
    fmqb_warn("unknown scenario %s", o.scenario);
    fmqb_usage();
    return 2;
  }
  if ((sc->needs_ws && !o.have_ws) || (sc->needs_mqtt && !o.have_mqtt)) {
    fmqb_warn("%s needs%s%s", sc->name, sc->needs_ws && !o.have_ws ? " --ws" : "",
              sc->needs_mqtt && !o.have_mqtt ? " --mqtt" : "");
    return 2;
  }
  if (o.clients == 0) {
    o.clients = sc->clients;
  }
  if (o.messages == 0) {
    o.messages = sc->messages;
  }
  if (o.rate < 0) {
    o.rate = sc->rate;
  }
  if (o.duration < 0) {
    o.duration = sc->duration;
  }
  if (o.topics == 0) {
    o.topics = 1000;
  }
  if (o.publishers == 0) {
    o.publishers = 1;
  }
  if (o.slow_percent < 0) {
    o.slow_percent = strcmp(sc->name, "slow") == 0 ? 10 : 0;
  }
  if (o.ping_interval < 0) {
    o.ping_interval = 1;
  }
  if (o.concurrency == 0) {
    o.concurrency = strcmp(sc->name, "churn") == 0 ? 50 : 200;
  }
  if (o.subs == 0 && strcmp(sc->name, "churn") == 0) {
    o.subs = 5;
  }
  signal(SIGPIPE, SIG_IGN);
  /* Every connection is a descriptor (floor-ws: two), plus a few for the
   * loop, the broker connections and stdio. */
  uint64_t conns = strcmp(sc->name, "streams") == 0 ? o.topics
                   : strcmp(sc->name, "churn") == 0 ? o.concurrency + 1
                   : strcmp(sc->name, "floor-ws") == 0 ? 2 * (uint64_t)o.clients
                   : strcmp(sc->name, "floor-mqtt") == 0 ? 2
                   : o.clients;
  uint64_t want = conns + 64;
  uint64_t got = fmqb_raise_nofile(want);

  struct fmqb_json j;
  fmqb_json_init(&j);
  fmqb_json_open(&j, NULL);
  fmqb_json_str(&j, "scenario", sc->name);
  if (got < want) {
    /* Raising the hard limit needs CAP_SYS_RESOURCE (root usually has it;
     * a container may not): say so rather than fail connection by connection. */
    rc = fmqb_fail(&j, "RLIMIT_NOFILE is %llu and could not be raised to the %llu this run "
                   "needs (the hard limit needs CAP_SYS_RESOURCE to rise); the gateway "
                   "needs as many", (unsigned long long)got, (unsigned long long)want);
  } else {
    rc = sc->run(&o, &j);
  }
  fmqb_json_bool(&j, "ok", rc == 0);
  fmqb_json_end(&j);
  fmqb_json_print_result(&j);
  fmqb_json_close(&j);
  return rc == 0 ? 0 : 1;
}
