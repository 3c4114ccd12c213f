// Boost.JSON's compiled part, built into this library (Debian's libboost1.81-dev ships the
// sources as <boost/json/src.hpp> for this use; the separate libboost-json binary is not needed).
#include <boost/json/src.hpp>
