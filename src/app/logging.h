#pragma once

#include <string>

namespace framepress::app {

/// Sets up spdlog: human-readable text on a terminal, one JSON object a line otherwise ("auto"), or as
/// `format` says. In JSON, a message that starts with "[<video id> <rendition>]" (the convention of every
/// log line about a job) has them as the fields `video_id` and `rendition`.
void setup_logging(const std::string& level, const std::string& format);

}  // namespace framepress::app
