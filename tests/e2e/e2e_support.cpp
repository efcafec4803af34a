#include "e2e/e2e_support.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace framepress::e2e {

ScriptService::ScriptService(std::string script, std::filesystem::path dir)
    : script_(std::move(script)), dir_(std::move(dir)) {
  run("start");
  std::ifstream in(dir_ / "env");
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
  }
}

ScriptService::~ScriptService() { run("stop", false); }

void ScriptService::run(const std::string& verb, bool must_succeed) {
  // The scripts stop their server when this process dies, so a crashed test leaves nothing running.
  std::string owner = script_.find("kafka") != std::string::npos ? "KAFKA_OWNER_PID" : "S3_OWNER_PID";
  const auto log = dir_.parent_path() / (script_ + ".log");
  std::string command = owner + "=" + std::to_string(::getpid()) + " " + std::string(FRAMEPRESS_SOURCE_DIR) +
                        "/scripts/" + script_ + " " + verb + " " + dir_.string() + " >> " + log.string() + " 2>&1";
  int status = std::system(command.c_str());
  if (must_succeed && status != 0) {
    // The log lives in the test's temporary directory, gone after the test: its end goes in the message.
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (text.size() > 4000) text.erase(0, text.size() - 4000);
    throw std::runtime_error(command + " failed:\n" + text);
  }
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done();
}

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
