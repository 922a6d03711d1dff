#include "opts.h"

#include "bench.h"
#include "net.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fmqb_usage(void) {
  fputs(
      "usage: ferrymq-bench SCENARIO [options]\n"
      "scenarios: fanout streams fanin idle churn slow rtt floor-ws floor-mqtt\n"
      "  --ws HOST:PORT[/PATH]   the gateway (ws://127.0.0.1:PORT/mqtt also accepted)\n"
      "  --mqtt HOST:PORT        the broker\n"
      "  --gateway-pid PID       report the gateway's CPU and memory\n"
      "  --broker-pid PID        report the broker's CPU and memory\n"
      "  --clients N             subscribers (fanout, slow), publishers (fanin),\n"
      "                          connections (idle), sockets (floor-ws)\n"
      "  --messages M            per publisher (fanout, slow, floor-mqtt), per client\n"
      "                          (fanin), per topic (streams), per socket (floor-ws), rtt\n"
      "  --size S                payload bytes (default 64)\n"
      "  --rate R                messages/s: the publisher's (fanout, slow, rtt), all\n"
      "                          publishers' (streams), each client's (fanin); 0: flat out\n"
      "  --qos 0|1               fanin, rtt\n"
      "  --topics T              streams: topics, one subscriber each\n"
      "  --publishers P          streams: MQTT publishing connections\n"
      "  --slow-percent P        slow: share of subscribers that stop reading\n"
      "  --duration SECONDS      idle: hold time; churn: run time\n"
      "  --ping-interval SECONDS idle: ping every connection this often (0: never)\n"
      "  --ping ws|json          idle: WebSocket pings or {\"type\":\"ping\"}\n"
      "  --distinct              idle: each connection subscribes its own topic\n"
      "  --concurrency C         connections in their handshake at once; churn: clients\n"
      "  --subs F                churn: topics subscribed per cycle\n"
      "  --per-source N          connections per source address 127.0.0.2, .3, ...\n"
      "  --drain SECONDS         give up after this long without progress (default 3)\n"
      "  --timeout SECONDS       bound the whole run (default 300)\n"
      "  --batch B               floor-ws: frames per write (default 16)\n"
      "  --prefix P              topic prefix (default fmqb/PID)\n",
      stderr);
}

static int num(const char *name, const char *v, double lo, double hi, double *out) {
  char *end;
  double d = strtod(v, &end);
  if (end == v || *end != '\0' || d < lo || d > hi) {
    fmqb_warn("--%s %s: want a number in [%g, %g]", name, v, lo, hi);
    return -1;
  }
  *out = d;
  return 0;
}

int fmqb_opts_parse(struct fmqb_opts *o, int argc, char **argv) {
  static const struct option longs[] = {
      {"ws", 1, 0, 'w'},           {"mqtt", 1, 0, 'm'},         {"gateway-pid", 1, 0, 'g'},
      {"broker-pid", 1, 0, 'b'},   {"clients", 1, 0, 'n'},      {"messages", 1, 0, 'M'},
      {"size", 1, 0, 's'},         {"rate", 1, 0, 'r'},         {"qos", 1, 0, 'q'},
      {"topics", 1, 0, 't'},       {"publishers", 1, 0, 'P'},   {"slow-percent", 1, 0, 'S'},
      {"duration", 1, 0, 'd'},     {"ping-interval", 1, 0, 'i'}, {"ping", 1, 0, 'p'},
      {"distinct", 0, 0, 'D'},     {"concurrency", 1, 0, 'c'},  {"subs", 1, 0, 'F'},
      {"per-source", 1, 0, 'A'},   {"drain", 1, 0, 'W'},        {"timeout", 1, 0, 'T'},
      {"batch", 1, 0, 'B'},        {"prefix", 1, 0, 'x'},       {"help", 0, 0, 'h'},
      {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->size = 64;
  o->drain = 3;
  o->timeout = 300;
  o->batch = 16;
  o->ping_interval = -1;
  o->slow_percent = -1;
  o->rate = -1;
  o->duration = -1;
  snprintf(o->prefix, sizeof o->prefix, "fmqb/%d", (int)getpid());
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      fmqb_usage();
      return 1;
    }
    fmqb_usage();
    return -1;
  }
  o->scenario = argv[1];
  optind = 2;
  int c;
  double d = 0;
  while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
    int rc = 0;
    switch (c) {
    case 'w':
      rc = fmqb_parse_target(optarg, &o->ws, o->ws_path, sizeof o->ws_path);
      o->have_ws = 1;
      break;
    case 'm':
      rc = fmqb_parse_target(optarg, &o->mqtt, NULL, 0);
      o->have_mqtt = 1;
      break;
    case 'g':
      rc = num("gateway-pid", optarg, 1, 1 << 30, &d);
      o->gateway_pid = (int)d;
      break;
    case 'b':
      rc = num("broker-pid", optarg, 1, 1 << 30, &d);
      o->broker_pid = (int)d;
      break;
    case 'n':
      rc = num("clients", optarg, 1, 10000000, &d);
      o->clients = (uint32_t)d;
      break;
    case 'M':
      rc = num("messages", optarg, 1, 4e9, &d);
      o->messages = (uint32_t)d;
      break;
    case 's':
      rc = num("size", optarg, 0, 60000, &d);
      o->size = (uint32_t)d;
      break;
    case 'r':
      rc = num("rate", optarg, 0, 1e9, &o->rate);
      break;
    case 'q':
      rc = num("qos", optarg, 0, 1, &d);
      o->qos = (int)d;
      break;
    case 't':
      rc = num("topics", optarg, 1, 10000000, &d);
      o->topics = (uint32_t)d;
      break;
    case 'P':
      rc = num("publishers", optarg, 1, 64, &d);
      o->publishers = (uint32_t)d;
      break;
    case 'S':
      rc = num("slow-percent", optarg, 0, 100, &o->slow_percent);
      break;
    case 'd':
      rc = num("duration", optarg, 0, 86400, &o->duration);
      break;
    case 'i':
      rc = num("ping-interval", optarg, 0, 3600, &o->ping_interval);
      break;
    case 'p':
      if (strcmp(optarg, "json") == 0) {
        o->ping_json = 1;
      } else if (strcmp(optarg, "ws") != 0) {
        fmqb_warn("--ping %s: want ws or json", optarg);
        rc = -1;
      }
      break;
    case 'D':
      o->distinct = 1;
      break;
    case 'c':
      rc = num("concurrency", optarg, 1, 1000000, &d);
      o->concurrency = (uint32_t)d;
      break;
    case 'F':
      rc = num("subs", optarg, 0, 100000, &d);
      o->subs = (uint32_t)d;
      break;
    case 'A':
      rc = num("per-source", optarg, 1, 60000, &d);
      o->per_source = (uint32_t)d;
      break;
    case 'W':
      rc = num("drain", optarg, 0.1, 3600, &o->drain);
      break;
    case 'T':
      rc = num("timeout", optarg, 1, 86400, &o->timeout);
      break;
    case 'B':
      rc = num("batch", optarg, 1, 4096, &d);
      o->batch = (uint32_t)d;
      break;
    case 'x':
      if (strlen(optarg) >= sizeof o->prefix || strpbrk(optarg, "#+") != NULL) {
        fmqb_warn("--prefix %s: too long or has wildcards", optarg);
        rc = -1;
      } else {
        snprintf(o->prefix, sizeof o->prefix, "%s", optarg);
      }
      break;
    case 'h':
      fmqb_usage();
      return 1;
    default:
      fmqb_usage();
      return -1;
    }
    if (rc != 0) {
      return -1;
    }
  }
  if (optind < argc) {
    fmqb_warn("unexpected argument %s", argv[optind]);
    return -1;
  }
  return 0;
}
