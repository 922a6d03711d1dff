#ifndef FMQB_PAYLOAD_H
#define FMQB_PAYLOAD_H

/* The payload of every bench message: "c=ID s=SEQ t=NS" (the sending
 * stream, its sequence number, the CLOCK_MONOTONIC time of sending in ns)
 * padded with 'x' to the requested size. Plain ASCII, so it travels as a
 * JSON string without escapes and the receivers find it with a scan. */

#include <stddef.h>
#include <stdint.h>

/* The longest header: three 20-digit numbers and the separators. */
#define FMQB_PAYLOAD_MAX_HEAD 72

struct fmqb_stamp {
  uint32_t c;
  uint32_t s;
  uint64_t t;
};

/* The payload's length for a requested size: size, or the header's length
 * when size is smaller (the header is never cut). */
size_t fmqb_payload_len(size_t size, uint32_t c, uint32_t s, uint64_t t);
/* Writes the payload into out (room for fmqb_payload_len bytes); returns
 * its length. */
size_t fmqb_payload_write(char *out, size_t size, uint32_t c, uint32_t s, uint64_t t);
/* Reads the header of p (n bytes). Returns 0, or -1 when p is not one. */
int fmqb_payload_parse(const char *p, size_t n, struct fmqb_stamp *st);

/* How many decimal digits v has. */
size_t fmqb_digits(uint64_t v);
/* Decimal digits of v into out (no NUL); returns the count. */
size_t fmqb_utoa(char *out, uint64_t v);

#endif
