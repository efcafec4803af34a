#pragma once

#include "app/config.h"

#include <signal.h>

namespace framepress::app {

/// Blocks SIGINT and SIGTERM in the calling thread (and every thread it starts later), so that only the
/// server's own signal thread takes them. Call first thing in main, before anything starts a thread.
sigset_t block_shutdown_signals();

/// `framepress serve`: the API, the workers, the embedded bus and the store in one process, until SIGINT
/// or SIGTERM. Returns the exit code. Throws Error when a part cannot start.
int run_serve(const Config& config);

}  // namespace framepress::app
