#ifndef FMQT_BROKER_PROC_H
#define FMQT_BROKER_PROC_H

/* A real Mosquitto broker for integration tests, and its command-line
 * clients (mosquitto_pub, mosquitto_sub) as independent MQTT peers.
 *
 * The broker listens on a free 127.0.0.1 port with anonymous access, no
 * persistence, $SYS every second and every log type written to a file in
 * its own temporary directory; the log is how tests observe what the broker
 * saw (SUBSCRIBE, UNSUBSCRIBE, PUBLISH ...). Processes are registered with
 * proc.h, so they die with the test program. Main thread only. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fmqt_broker {
  pid_t pid;            /* 0 while not running */
  uint16_t port;
  int frozen;           /* SIGSTOP'd */
  char dir[256];        /* temporary directory: conf, log, extra files */
  char conf_path[320];
  char log_path[320];
  char url[64];         /* "tcp://127.0.0.1:PORT" */
};

/* Writes name (a file name) with text into the broker's directory (before
 * or after start; e.g. an ACL file) and copies its path into path. */
void fmqt_broker_write_file(struct fmqt_broker *b, const char *name, const char *text,
                            char *path, size_t cap);
/* Prepares b (its directory) without starting anything; needed only to
 * write files before fmqt_broker_start. */
void fmqt_broker_prepare(struct fmqt_broker *b);
/* Starts mosquitto on a free port (retrying with another port when the
 * bind fails) with extra_conf (NULL, or configuration lines each ending in
 * "\n") appended to the generated configuration; waits until the port
 * accepts connections. Fails the test otherwise. */
void fmqt_broker_start(struct fmqt_broker *b, const char *extra_conf);
/* The same on a given port (retrying that port a few times). */
void fmqt_broker_start_on(struct fmqt_broker *b, uint16_t port, const char *extra_conf);
/* SIGTERM (after SIGCONT when frozen), SIGKILL when it does not exit
 * within 5 s. The directory stays (for a restart and the log). */
void fmqt_broker_stop(struct fmqt_broker *b);
/* SIGKILL and reap: the connections drop without DISCONNECT. */
void fmqt_broker_kill(struct fmqt_broker *b);
/* Starts it again on the same port with the same configuration (the log is
 * appended to); waits until the port accepts. */
void fmqt_broker_restart(struct fmqt_broker *b);
/* SIGSTOP / SIGCONT: a frozen broker reads and answers nothing. */
void fmqt_broker_freeze(struct fmqt_broker *b);
void fmqt_broker_thaw(struct fmqt_broker *b);
/* Stops it (when running) and removes its directory; the log is printed
 * to stderr first when print_log is set. Safe on a zeroed struct. */
void fmqt_broker_close(struct fmqt_broker *b, int print_log);

/* The whole log (malloc'd; the caller frees). */
char *fmqt_broker_log(const struct fmqt_broker *b);
/* The log's current size: a mark for the *_since functions. */
size_t fmqt_broker_log_mark(const struct fmqt_broker *b);
/* Occurrences of needle in the log after mark. */
size_t fmqt_broker_log_count_since(const struct fmqt_broker *b, size_t mark, const char *needle);
/* Waits up to timeout_ms until needle occurs at least count times after
 * mark; returns the number of occurrences seen last (>= count on success). */
size_t fmqt_broker_wait_log(const struct fmqt_broker *b, size_t mark, const char *needle,
                            size_t count, int timeout_ms);
/* Prints the log (after mark) to stderr, for failure reports. */
void fmqt_broker_print_log(const struct fmqt_broker *b, size_t mark, const char *why);

/* Log lines about client_id's subscriptions after mark: the number of
 * "<client_id> <qos> <filter>" lines (SUBSCRIBE; qos < 0: any QoS) and of
 * "<client_id> <filter>" lines (UNSUBSCRIBE). */
size_t fmqt_broker_subscribes_since(const struct fmqt_broker *b, size_t mark,
                                    const char *client_id, const char *filter, int qos);
size_t fmqt_broker_unsubscribes_since(const struct fmqt_broker *b, size_t mark,
                                      const char *client_id, const char *filter);

/* The path of Mosquitto's dynamic security plugin, or NULL when it is not
 * installed. */
const char *fmqt_dynsec_plugin(void);

/* --- mosquitto_pub --- */

/* Publishes one message of len bytes (any bytes; len 0: an empty payload)
 * with qos and retain, as MQTT version ("mqttv5", "mqttv311"; NULL:
 * mqttv311). Waits for mosquitto_pub to finish (10 s at most) and asserts
 * it exited 0. */
void fmqt_mqtt_pub(const struct fmqt_broker *b, const char *topic, const void *payload,
                   size_t len, int qos, int retain, const char *version);
/* The same for a text payload. */
void fmqt_mqtt_pub_text(const struct fmqt_broker *b, const char *topic, const char *text,
                        int qos, int retain);
/* Publishes every line of lines (n bytes, "\n"-separated, the last line
 * ending in "\n") as one message each, in order, through one mosquitto_pub
 * -l run; waits for it (timeout_ms) and asserts it exited 0. */
void fmqt_mqtt_pub_lines(const struct fmqt_broker *b, const char *topic, const char *lines,
                         size_t n, int qos, int timeout_ms);

/* --- mosquitto_sub --- */

struct fmqt_sub {
  pid_t pid;
  const struct fmqt_broker *broker;
  char client_id[64];
  char out_path[352];
};

/* One received message (as mosquitto_sub printed it). */
struct fmqt_sub_msg {
  char *topic;
  uint8_t *payload;
  size_t len;
  int qos, retain;
};

/* Starts mosquitto_sub on b for the NULL-terminated topics at qos, MQTT
 * version ("mqttv5", "mqttv311"; NULL: mqttv311), writing every message to
 * a file; returns once the broker has sent its SUBACK. */
void fmqt_sub_start(struct fmqt_sub *s, const struct fmqt_broker *b, const char *const *topics,
                    int qos, const char *version);
/* The messages received so far (malloc'd array; free with
 * fmqt_sub_msgs_free). Returns their number. */
size_t fmqt_sub_messages(const struct fmqt_sub *s, struct fmqt_sub_msg **out);
void fmqt_sub_msgs_free(struct fmqt_sub_msg *msgs, size_t n);
/* Waits up to timeout_ms until at least n messages arrived; returns how
 * many there are. */
size_t fmqt_sub_wait(const struct fmqt_sub *s, size_t n, int timeout_ms);
/* Stops it and removes its output. Safe on a zeroed struct. */
void fmqt_sub_stop(struct fmqt_sub *s);

/* One message a test expects mosquitto_sub to have received. */
struct fmqt_sub_want {
  const char *topic;
  const char *text;     /* the payload's bytes */
  int qos, retain;
};
/* Waits up to timeout_ms until s received n messages, then asserts they are
 * exactly want[0..n), in order (more messages than n fail too). */
void fmqt_sub_expect(const struct fmqt_sub *s, const struct fmqt_sub_want *want, size_t n,
                     int timeout_ms);
/* fmqt_sub_expect, then fails when one more message arrives within quiet_ms. */
void fmqt_sub_expect_only(const struct fmqt_sub *s, const struct fmqt_sub_want *want, size_t n,
                          int timeout_ms, int quiet_ms);

#endif
