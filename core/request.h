/* request.h - what the engine fetches (ft_request) and what it hands back (ft_response). */
#ifndef FT_REQUEST_H
#define FT_REQUEST_H

/* ft_request, ft_response, ft_errkind and their functions (ft_request_new,
 * ft_request_free, ft_request_set, ft_request_add_header, ft_errkind_name)
 * are public: they are defined in fetchtree.h. */
#include "fetchtree.h"

#endif
