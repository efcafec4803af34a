#pragma once

#include "app/config.h"

namespace framepress::app {

/// `framepress serve`: the API, the workers, the embedded bus and the store in one process, until SIGINT
/// or SIGTERM. Returns the exit code. Throws Error when a part cannot start.
int run_serve(const Config& config);

}  // namespace framepress::app
