#include "e2e/e2e_support.h"

#include <regex>
#include <sstream>

namespace framepress::e2e {

std::vector<std::string> fast_encoding_args() { return {"--encoder-preset", "ultrafast", "--workers", "2"}; }

SseResult follow_job(const std::string& url, const std::string& id, std::chrono::seconds timeout) {
  return read_sse(
      url + "/api/videos/" + id + "/events", {},
      [](const SseEvent& e) { return e.event == "completed" || e.event == "failed" || e.event == "cancelled"; },
      timeout);
}

std::map<std::string, double> metric_samples(const std::string& exposition) {
  static const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) (\S+)$)");
  std::map<std::string, double> samples;
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.front() == '#') continue;
    std::smatch m;
    if (!std::regex_match(line, m, sample)) {
      ADD_FAILURE() << "not a Prometheus sample: " << line;
      continue;
    }
    samples[m[1]] = std::stod(m[3]);
  }
  return samples;
}

double metric_value(const std::string& url, const std::string& series) {
  auto response = http_get(url + "/metrics");
  EXPECT_EQ(response.status, 200) << response.body;
  auto samples = metric_samples(response.body);
  auto it = samples.find(series);
  return it == samples.end() ? -1 : it->second;
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
