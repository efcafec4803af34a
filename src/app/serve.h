#pragma once
// The roles of the one binary. Each builds its parts from the configuration, runs until SIGINT or
// SIGTERM, and returns the exit code; a part that cannot start throws Error.

#include <signal.h>

#include "app/config.h"

namespace framepress::app {

/// Blocks SIGINT and SIGTERM in the calling thread (and every thread it starts later), so that only the
/// server's own signal thread takes them. Call first thing in main, before anything starts a thread.
sigset_t block_shutdown_signals();

/// `framepress serve`: the API, the workers, the bus and the store in one process.
int run_serve(const Config& config);
/// `framepress api`: the HTTP API (and the web page) over a shared bus and store; no encoding.
int run_api(const Config& config);
/// `framepress worker`: a pool of workers for some classes over a shared bus and store; no HTTP.
int run_worker(const Config& config);

}  // namespace framepress::app
