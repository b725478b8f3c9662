/* engine.h - the fetch engine: one libuv loop driving one curl multi handle. */
#ifndef FT_ENGINE_H
#define FT_ENGINE_H

/* The engine's API (ft_config, ft_engine_new, _submit, _run, _stop, _free
 * and the rest) is public: it is defined in fetchtree.h. What follows is
 * for fetchtree's own layers (the CLI and scripts). */
#include "fetchtree.h"
#include "request.h"
#include "retry.h"

struct ft_tree;

/* The object tree requests are routed into (ft_request.obj); "/" carries
 * the engine's own rate limit. */
struct ft_tree *ft_engine_tree(ft_engine *e);

#endif
