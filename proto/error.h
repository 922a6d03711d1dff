#ifndef FMQ_ERROR_H
#define FMQ_ERROR_H

/* 0 is success, a negative value an error, a positive value a count.
 * libuv's codes (-1 .. -4095) pass through unchanged, so ours start at -10000
 * and come in bands: input, protocol, limit, resource. */
enum fmq_err {
  FMQ_OK = 0,

  FMQ_ENEEDMORE = -10001,        /* input ended before the unit was complete */

  FMQ_EPROTO = -10100,           /* WebSocket protocol violation (close 1002) */
  FMQ_EUTF8 = -10101,            /* invalid UTF-8 in text or close reason (1007) */
  FMQ_EHTTP = -10102,            /* malformed HTTP request (400) */
  FMQ_ETOPIC = -10103,           /* invalid MQTT topic name or filter */
  FMQ_EEXIST = -10104,           /* already present */
  FMQ_EFIELD = -10105,           /* a message field is missing or unusable (bad_request) */
  FMQ_EAUTH = -10106,            /* credentials refused (401) */
  FMQ_EBASE64 = -10107,          /* not valid base64 */

  FMQ_ETOOBIG = -10200,          /* message over max_message_size (1009) */
  FMQ_EHEADERS = -10201,         /* header block over max_header_size (431) */
  FMQ_EFRAGMENTS = -10202,       /* message of more than max_fragments frames (1009) */

  FMQ_ENOMEM = -10300,
  FMQ_ESPACE = -10301            /* caller's buffer too small */
};

/* Returns a static string; for codes outside our bands, strerror(-err). */
const char *fmq_strerror(int err);

#endif
