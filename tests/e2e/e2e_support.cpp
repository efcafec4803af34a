#include "e2e/e2e_support.h"

namespace framepress::e2e {

std::vector<std::string> fast_encoding_args() { return {"--encoder-preset", "ultrafast", "--workers", "2"}; }

SseResult follow_job(const std::string& url, const std::string& id, std::chrono::seconds timeout) {
  return read_sse(
      url + "/api/videos/" + id + "/events", {},
      [](const SseEvent& e) { return e.event == "completed" || e.event == "failed" || e.event == "cancelled"; },
      timeout);
}

std::vector<std::string> event_names(const SseResult& result) {
  std::vector<std::string> names;
  for (const auto& e : result.events) names.push_back(e.event);
  return names;
}

std::vector<std::string> files_under(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) out.push_back(std::filesystem::relative(entry.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace framepress::e2e
