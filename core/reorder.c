/* reorder.c - the reorder window of `fetchtree fetch --ordered`: a ring of size slots, record i in slot i % size (pure C). */
#include "reorder.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct ft_reorder_slot {
  char *data; /* the record, or NULL while it has not finished */
  size_t len;
} ft_reorder_slot;

int ft_reorder_init(ft_reorder *w, uint64_t size) {
  memset(w, 0, sizeof(*w));
  w->slots = calloc(size, sizeof(*w->slots));
  if (!w->slots)
    return FT_ENOMEM;
  w->size = size;
  return 0;
}

int ft_reorder_full(const ft_reorder *w, uint64_t i) {
  return i >= w->next + w->size;
}

int ft_reorder_put(ft_reorder *w, uint64_t i, const char *data, size_t len) {
  ft_reorder_slot *s = &w->slots[i % w->size];
  s->data = malloc(len ? len : 1); /* never NULL for a record held */
  if (!s->data)
    return FT_ENOMEM;
  memcpy(s->data, data, len);
  s->len = len;
  return 0;
}

const char *ft_reorder_peek(const ft_reorder *w, size_t *len) {
  const ft_reorder_slot *s = &w->slots[w->next % w->size];
  if (!s->data)
    return NULL;
  *len = s->len;
  return s->data;
}

void ft_reorder_pop(ft_reorder *w) {
  ft_reorder_slot *s = &w->slots[w->next % w->size];
  free(s->data);
  s->data = NULL;
  w->next++;
}

void ft_reorder_free(ft_reorder *w) {
  if (w->slots) {
    for (uint64_t i = 0; i < w->size; i++)
      free(w->slots[i].data);
    free(w->slots);
  }
  memset(w, 0, sizeof(*w));
}
