#include "payload.h"

#include <string.h>

size_t fmqb_utoa(char *out, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++) {
    out[i] = tmp[n - 1 - i];
  }
  return n;
}

size_t fmqb_digits(uint64_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

size_t fmqb_payload_len(size_t size, uint32_t c, uint32_t s, uint64_t t) {
  size_t head = 2 + fmqb_digits(c) + 3 + fmqb_digits(s) + 3 + fmqb_digits(t);
  return size > head ? size : head;
}

size_t fmqb_payload_write(char *out, size_t size, uint32_t c, uint32_t s, uint64_t t) {
  size_t n = 0;
  out[n++] = 'c';
  out[n++] = '=';
  n += fmqb_utoa(out + n, c);
  memcpy(out + n, " s=", 3);
  n += 3;
  n += fmqb_utoa(out + n, s);
  memcpy(out + n, " t=", 3);
  n += 3;
  n += fmqb_utoa(out + n, t);
  if (size > n) {
    memset(out + n, 'x', size - n);
    n = size;
  }
  return n;
}

/* Reads "KEY=DIGITS" at *p; advances past the digits. */
static int field(const char **p, const char *end, char key, uint64_t *v) {
  const char *q = *p;
  if (end - q < 3 || q[0] != key || q[1] != '=') {
    return -1;
  }
  q += 2;
  if (q >= end || *q < '0' || *q > '9') {
    return -1;
  }
  uint64_t x = 0;
  while (q < end && *q >= '0' && *q <= '9') {
    x = x * 10 + (uint64_t)(*q - '0');
    q++;
  }
  *v = x;
  *p = q;
  return 0;
}

int fmqb_payload_parse(const char *p, size_t n, struct fmqb_stamp *st) {
  const char *end = p + n;
  uint64_t c, s, t;
  if (field(&p, end, 'c', &c) != 0 || p >= end || *p++ != ' ' ||
      field(&p, end, 's', &s) != 0 || p >= end || *p++ != ' ' ||
      field(&p, end, 't', &t) != 0 || c > UINT32_MAX || s > UINT32_MAX) {
    return -1;
  }
  st->c = (uint32_t)c;
  st->s = (uint32_t)s;
  st->t = t;
  return 0;
}
