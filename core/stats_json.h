/* stats_json.h - the object tree's stats as JSON (what --stats writes). */
#ifndef FT_STATS_JSON_H
#define FT_STATS_JSON_H

#include "buf.h"
#include "tree.h"

/* Appends the whole tree as one JSON object (no newline):
 * {"name":"/","requests":n,"ok":n,"attempts":n,"retries":n,"bytes":n,
 *  "statuses":{"200":n,...,"other":n},"errors":{"timeout":n,...},
 *  "latency_ms":{"p50":x,"p90":x,"p99":x,"max":x},
 *  "limits":{"rps":x,"window_ms":x,"concurrency":n},"children":[...]}
 * statuses ascending, errors only non-zero kinds, limits only those set,
 * children sorted by name (bytewise). t or out NULL: nothing. Out of memory
 * sets out->oom. */
void ft_stats_tree_json(ft_tree *t, ft_buf *out);

#endif
