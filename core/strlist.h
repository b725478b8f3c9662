/* strlist.h - ft_strlist, a growable list of malloc'd strings. */
#ifndef FT_STRLIST_H
#define FT_STRLIST_H

#include <stddef.h>

/* A growable list of malloc'd, NUL-terminated strings. Start from a zeroed
 * struct ({0}); release with ft_strlist_free. */
typedef struct ft_strlist {
  char **items;
  size_t n, cap;
} ft_strlist;

/* Appends a copy of the n bytes at s (plus a NUL; s may hold NUL bytes and
 * may be NULL when n is 0). Returns 0, FT_EINVAL (l NULL, or s NULL with
 * n > 0) or FT_ENOMEM; on error l is unchanged. */
int ft_strlist_push(ft_strlist *l, const char *s, size_t n);

/* Frees every item and the array, and zeroes *l; NULL is allowed. */
void ft_strlist_free(ft_strlist *l);

/* Frees the items past the first n, bringing the list back to length n
 * (n >= l->n: nothing to do). */
void ft_strlist_truncate(ft_strlist *l, size_t n);

#endif
