// link_all_hooks(): see link_all.cpp.
#pragma once

namespace coil::hook {

// link_all_hooks() makes a static link take every hook; it returns 0.
int link_all_hooks() noexcept;

}  // namespace coil::hook
