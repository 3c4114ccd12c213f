// Boost.URL's compiled part, built into this library (Debian's libboost1.81-dev ships the
// sources as <boost/url/src.hpp> for exactly this use, and no libboost_url binary).
#include <boost/url/src.hpp>
