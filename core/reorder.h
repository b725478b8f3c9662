/* reorder.h - the reorder window of `fetchtree fetch --ordered`: records that finish early wait until every earlier one is out. */
#ifndef FT_REORDER_H
#define FT_REORDER_H

#include <stddef.h>
#include <stdint.h>

/* Records are numbered 0, 1, 2, ... in input order; the window holds those
 * from `next` (the next to go out) to next + size - 1. The caller takes no
 * input past it (ft_reorder_full), so memory stays bounded by size records
 * however late one request comes back. */
typedef struct ft_reorder {
  struct ft_reorder_slot *slots;
  uint64_t size;
  uint64_t next; /* the number of the next record to go out */
} ft_reorder;

/* An empty window of size slots (size > 0). Returns 0 or FT_ENOMEM. */
int ft_reorder_init(ft_reorder *w, uint64_t size);

/* Whether record i would not fit: i is size or more past next. */
int ft_reorder_full(const ft_reorder *w, uint64_t i);

/* Keeps a copy of record i (len bytes at data), which must fit and not be
 * held already. Returns 0 or FT_ENOMEM (nothing kept). */
int ft_reorder_put(ft_reorder *w, uint64_t i, const char *data, size_t len);

/* The next record in order if it is held (its bytes, *len set), else NULL.
 * Valid until ft_reorder_pop, which the caller calls once it is out. */
const char *ft_reorder_peek(const ft_reorder *w, size_t *len);

/* Frees the record ft_reorder_peek returned and moves on to the next. */
void ft_reorder_pop(ft_reorder *w);

/* Frees the window and the records still held. */
void ft_reorder_free(ft_reorder *w);

#endif
