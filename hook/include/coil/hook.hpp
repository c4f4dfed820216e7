// coil's hook layer: interposed blocking libc calls. Coming with the hooks
// issue; today this header only marks where its public interface will live.
#pragma once
