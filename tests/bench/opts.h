#ifndef FMQB_OPTS_H
#define FMQB_OPTS_H

/* The command line of ferrymq-bench: one scenario and its options (see
 * README.md for which scenario reads which). */

#include <netinet/in.h>
#include <stdint.h>

struct fmqb_opts {
  const char *scenario;
  struct sockaddr_in ws;        /* --ws: the gateway (or the Node.js peer) */
  char ws_path[256];
  int have_ws;
  struct sockaddr_in mqtt;      /* --mqtt: the broker */
  int have_mqtt;
  int gateway_pid;              /* --gateway-pid */
  int broker_pid;               /* --broker-pid */
  uint32_t clients;             /* --clients N */
  uint32_t messages;            /* --messages M (per publisher, client or topic) */
  uint32_t size;                /* --size S: payload bytes */
  double rate;                  /* --rate R: messages/s (0: as fast as possible) */
  int qos;                      /* --qos 0|1 */
  double duration;             /* --duration seconds */
  uint32_t topics;              /* --topics (streams) */
  uint32_t publishers;          /* --publishers (streams) */
  double slow_percent;          /* --slow-percent */
  uint32_t concurrency;         /* --concurrency: connections in their handshake at once */
  uint32_t subs;                /* --subs F (churn) */
  double ping_interval;         /* --ping-interval seconds (idle) */
  int ping_json;                /* --ping json|ws */
  int distinct;                 /* --distinct (idle: one topic per connection) */
  uint32_t per_source;          /* --per-source: connections per source address */
  double drain;                 /* --drain: seconds without progress before giving up */
  double timeout;               /* --timeout: the whole run */
  uint32_t batch;               /* --batch (floor-ws) */
  char prefix[64];              /* --prefix: topic prefix (default fmqb/PID) */
};

/* Parses argv into o. Returns 0, 1 after --help, or -1 (a message printed). */
int fmqb_opts_parse(struct fmqb_opts *o, int argc, char **argv);
void fmqb_usage(void);

#endif
