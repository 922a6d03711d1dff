#ifndef FMQ_BASE64_H
#define FMQ_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Strict base64 decoding (RFC 4648) on top of OpenSSL's EVP_DecodeBlock,
 * which alone is too lenient: it trims whitespace at either end, reads '='
 * anywhere as zero bits and counts padding as decoded bytes. Pure code, no
 * state: any thread may call it.
 *
 * Standard (section 4, the default): '+' and '/', the length a multiple of
 * 4, '=' only at the end and at most two of them. Url (section 5 without
 * padding, as RFC 7515 section 2 uses it): '-' and '_', no '+', '/' or '=',
 * the length not 1 more than a multiple of 4. Either way nothing else (no
 * whitespace, no NUL) is accepted. Unless FMQ_BASE64_CANONICAL is given, the
 * unused bits of the last character ("QR==") are ignored, as section 3.5
 * allows. Texts whose padded length exceeds INT_MAX are refused. */
enum fmq_base64_flags {
  FMQ_BASE64_STD = 0,
  FMQ_BASE64_URL = 1u << 0,
  FMQ_BASE64_CANONICAL = 1u << 1 /* the unused bits must be zero */
};

/* Decodes in[0..len) into out (cap bytes, owned by the caller; may be NULL
 * when cap is 0). Returns the decoded length, FMQ_EBASE64 when the text is
 * not valid base64 or FMQ_ESPACE when it would decode to more than cap bytes
 * (the length and padding are checked before that, the characters after). */
int fmq_base64_decode(const char *in, size_t len, unsigned flags, uint8_t *out, size_t cap);

/* As fmq_base64_decode into *out, a new buffer (one byte longer than the
 * decoded length, so never NULL on success) that the caller frees; on
 * failure *out is NULL. FMQ_ENOMEM only for a text whose length and padding
 * are valid. */
int fmq_base64_decode_new(const char *in, size_t len, unsigned flags, uint8_t **out);

#endif
