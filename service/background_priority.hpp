// Work that must never hold back the live path (stress jobs, epoch trees and their
// publication) runs at the lowest CPU priority: on a host with few cores the engine
// thread, which values ticks and trades, wins every contest for a core.
#pragma once

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace vaultrisk::service {

// Lowers the calling thread (only) to nice 19.
inline void lower_this_thread_priority() { setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19); }

}  // namespace vaultrisk::service
