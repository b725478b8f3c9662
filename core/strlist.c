/* strlist.c - ft_strlist, a growable list of malloc'd strings. */
#include "strlist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"

int ft_strlist_push(ft_strlist *l, const char *s, size_t n) {
  if (l == NULL || (s == NULL && n > 0))
    return FT_EINVAL;
  if (n == SIZE_MAX)
    return FT_ENOMEM;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    if (cap > SIZE_MAX / sizeof(char *))
      return FT_ENOMEM;
    char **items = realloc(l->items, cap * sizeof(char *));
    if (items == NULL)
      return FT_ENOMEM;
    l->items = items;
    l->cap = cap;
  }
  char *copy = ft_bytes_dup(s, n);
  if (copy == NULL)
    return FT_ENOMEM;
  l->items[l->n++] = copy;
  return 0;
}

void ft_strlist_free(ft_strlist *l) {
  if (l == NULL)
    return;
  for (size_t i = 0; i < l->n; i++)
    free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
  l->cap = 0;
}

void ft_strlist_truncate(ft_strlist *l, size_t n) {
  while (l->n > n)
    free(l->items[--l->n]);
}
