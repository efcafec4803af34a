#include "app/logging.h"

#include <unistd.h>

#include <memory>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace framepress::app {
namespace {

/// Writes the message as the rest of a JSON object: "message": …, and the job's fields when present.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string text(msg.payload.data(), msg.payload.size());
    nlohmann::json fields;
    if (text.size() > 2 && text.front() == '[') {
      auto close = text.find(']');
      if (close != std::string::npos) {
        std::string inside = text.substr(1, close - 1);
        auto space = inside.find(' ');
        fields["video_id"] = inside.substr(0, space);
        if (space != std::string::npos) fields["rendition"] = inside.substr(space + 1);
        text.erase(0, std::min(text.size(), close + 2));
      }
    }
    std::string out = "\"message\":" + nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (const auto& [key, value] : fields.items()) out += ",\"" + key + "\":" + value.dump();
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

}  // namespace

void setup_logging(const std::string& level, const std::string& format) {
  auto logger = spdlog::stderr_color_mt("framepress");
  bool json = format == "json" || (format == "auto" && !::isatty(STDERR_FILENO));
  if (json) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%*})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace framepress::app
