// Boost.URL compiled into the fuzz target (instead of linking Debian's libboost_url), so that the parse
// the server does is instrumented for coverage and sanitized like the rest.
#include <boost/url/src.hpp>
