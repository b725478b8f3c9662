/* dedupe.h - the crawl's "seen" set: (method, url, body) keys stored as
 * 128-bit hashes (pure C). */
#ifndef FT_DEDUPE_H
#define FT_DEDUPE_H

#include <stddef.h>

/* A set of request keys. Only a 128-bit hash of each key is kept (16 bytes
 * per entry in an open-addressing table kept at most 70% full), so two
 * different keys are confused with probability about n^2 / 2^129: nil in
 * practice. Ten million keys take a 2^24-slot table, 256 MiB (the resize
 * into it briefly holds the old 128 MiB table as well). Not thread-safe. */
typedef struct ft_dedupe ft_dedupe;

/* Creates an empty set in *out. Returns 0, FT_EINVAL (out NULL) or
 * FT_ENOMEM; on error *out is untouched. */
int ft_dedupe_new(ft_dedupe **out);

/* Frees the set; NULL is allowed. */
void ft_dedupe_free(ft_dedupe *d);

/* Adds the key (method, url, body): method NULL means "GET" (methods are
 * compared as given, so "get" is another method); body may hold NUL bytes,
 * and may be NULL when body_len is 0 (the same key as an empty body).
 * Returns 1 if the key is new (and is now remembered), 0 if it was already
 * there, FT_ENOMEM (the set is unchanged) or FT_EINVAL (d or url NULL, or
 * body NULL with body_len > 0). */
int ft_dedupe_add(ft_dedupe *d, const char *method, const char *url,
                  const void *body, size_t body_len);

/* The 16-byte key of (method, url, body), as ft_dedupe_add computes it:
 * what a durable run stores so the set can be rebuilt on resume. */
void ft_dedupe_hash_key(const char *method, const char *url, const void *body,
                        size_t body_len, unsigned char key[16]);

/* Adds a key made by ft_dedupe_hash_key. Returns like ft_dedupe_add. */
int ft_dedupe_add_key(ft_dedupe *d, const unsigned char key[16]);

/* The number of keys in the set (0 for NULL). */
size_t ft_dedupe_count(const ft_dedupe *d);

#endif
