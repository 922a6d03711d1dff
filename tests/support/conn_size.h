#ifndef FMQT_CONN_SIZE_H
#define FMQT_CONN_SIZE_H

#include <stddef.h>

/* sizeof(struct fmq_conn), from gateway/conn.h as the gateway is built now
 * (conn_size.c is compiled with the gateway's include directories), so a
 * test that fails that allocation never drifts from the struct. */
size_t fmqt_conn_size(void);

#endif
