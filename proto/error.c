#include "error.h"

#include <string.h>

const char *fmq_strerror(int err) {
  switch (err) {
  case FMQ_OK: return "ok";
  case FMQ_ENEEDMORE: return "need more input";
  case FMQ_EPROTO: return "protocol error";
  case FMQ_EUTF8: return "invalid UTF-8";
  case FMQ_EHTTP: return "malformed HTTP request";
  case FMQ_ETOPIC: return "invalid topic";
  case FMQ_EEXIST: return "already exists";
  case FMQ_EFIELD: return "missing or unusable field";
  case FMQ_EAUTH: return "credentials refused";
  case FMQ_ETOOBIG: return "message too big";
  case FMQ_EBASE64: return "not valid base64";
  case FMQ_EHEADERS: return "request header fields too large";
  case FMQ_EFRAGMENTS: return "too many fragments";
  case FMQ_ENOMEM: return "out of memory";
  case FMQ_ESPACE: return "buffer too small";
  }
  return err < 0 ? strerror(-err) : "unknown error";
}
