/* limiter.h - an exact sliding-window rate limiter (sliding log), pure C, clock
 * injected. */
#ifndef FT_LIMITER_H
#define FT_LIMITER_H

#include <stddef.h>
#include <stdint.h>

/* Largest window capacity K accepted; larger configurations get FT_ERANGE.
 * The limiter keeps K timestamps (8 bytes each). */
#define FT_LIMITER_MAX_CAPACITY 50000000u

/* A limiter configured with R requests per second and a window W (ns).
 * K = floor(R * W / 1e9); when K < 1 it uses K = 1 and W = 1e9 / R ns.
 * Guarantee: every half-open interval [t, t + W) holds at most K recorded
 * starts, provided the caller only calls take() when delay() returned 0.
 * An unlimited limiter (rps <= 0) always allows and records nothing.
 * Timestamps are nanoseconds on any monotonic clock the caller chooses. */
typedef struct ft_limiter ft_limiter;

/* Creates a limiter in *out. rps <= 0 means unlimited. Returns 0, FT_EINVAL
 * (out NULL, rps NaN or infinite), FT_ERANGE (K > FT_LIMITER_MAX_CAPACITY or
 * W not representable) or FT_ENOMEM; on error *out is left untouched. */
int ft_limiter_new(ft_limiter **out, double rps, uint64_t window_ns);

/* Would ft_limiter_new(&l, rps, window_ns) and ft_limiter_set accept this
 * configuration? Returns 0, or the FT_EINVAL / FT_ERANGE they would return
 * (never FT_ENOMEM). For callers that must refuse a rate before storing it. */
int ft_limiter_check(double rps, uint64_t window_ns);

/* Frees the limiter; NULL is allowed. */
void ft_limiter_free(ft_limiter *l);

/* Returns 0 if a start is allowed at now_ns, else the number of ns to wait
 * until one is (assuming no other start is recorded meanwhile). NULL or
 * unlimited: always 0. */
uint64_t ft_limiter_delay(const ft_limiter *l, uint64_t now_ns);

/* Records one start at now_ns. Precondition: delay(now_ns) == 0 and now_ns
 * is not earlier than the previous take(); an earlier now_ns is recorded as
 * the previous time (which only makes the limiter stricter). NULL or
 * unlimited: no-op. */
void ft_limiter_take(ft_limiter *l, uint64_t now_ns);

/* A grant: up to want start times for l, each the earliest the limiter
 * allows, taken in order (as many ft_limiter_delay/ft_limiter_take), none
 * before now_ns or *last (the last start granted before, updated: starts
 * never go back in time, so the limiter's log stays ordered) and none
 * after now_ns + horizon_ns. With rps <= 0 (no limit) every start is
 * now_ns and l may be NULL. Returns how many were written to starts. Used
 * by the state backends' limiter_grant (state.h). */
int ft_limiter_grant(ft_limiter *l, double rps, uint64_t *last,
                     uint64_t now_ns, uint64_t horizon_ns, int want,
                     uint64_t *starts);

/* Changes the limit live. The most recent starts are kept so the new limit
 * is enforced against real history: lowering keeps the newest K' starts;
 * raising also fills the larger ring with safe upper bounds for starts the
 * old ring had already forgotten. Going to or from unlimited resets history.
 * Returns 0 or the errors of ft_limiter_new; on error l is unchanged. */
int ft_limiter_set(ft_limiter *l, double rps, uint64_t window_ns);

/* The configured rps (0 when unlimited), the effective window W in ns and
 * the capacity K (both 0 when unlimited). */
double ft_limiter_rps(const ft_limiter *l);
uint64_t ft_limiter_window(const ft_limiter *l);
uint32_t ft_limiter_capacity(const ft_limiter *l);

/* A limiter's whole state as 64-bit words, to keep it in a store shared by
 * processes (state_redis.c) and make it again there, exactly: the rate's
 * bits, W, K, the recorded starts' count, the history's counts (what
 * ft_limiter_set reads), then the starts, oldest first.
 * ft_limiter_saved_words is the number ft_limiter_save writes (6 + the
 * recorded starts); ft_limiter_load makes the limiter saved in n words
 * into *out: 0, FT_EINVAL (words no save wrote) or FT_ENOMEM. */
size_t ft_limiter_saved_words(const ft_limiter *l);
void ft_limiter_save(const ft_limiter *l, uint64_t *words);
int ft_limiter_load(ft_limiter **out, const uint64_t *words, size_t n);

/* Stacking (e.g. global + per-host): a start is allowed when every limiter
 * allows it. delay_all returns the largest delay over the n limiters (NULL
 * entries and unlimited limiters allow); take_all records the start on each.
 * Call take_all only after delay_all returned 0. */
uint64_t ft_limiter_delay_all(ft_limiter *const *ls, size_t n, uint64_t now_ns);
void ft_limiter_take_all(ft_limiter *const *ls, size_t n, uint64_t now_ns);

#endif
