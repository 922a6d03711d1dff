/* Compiled into the tests that need it with fmq_gateway's include
 * directories; see conn_size.h. */

#include "conn_size.h"

#include "conn.h"

size_t fmqt_conn_size(void) {
  return sizeof(struct fmq_conn);
}
