#ifndef FMQ_CONTAINER_H
#define FMQ_CONTAINER_H

#include <stddef.h>

/* The struct of type `type` whose member `member` is at ptr. */
#define fmq_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
