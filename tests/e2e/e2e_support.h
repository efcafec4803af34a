#pragma once
// What the end-to-end tests share: a server for the suite, clips, and following a job to its end.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "e2e/framepress_process.h"
#include "e2e/http_client.h"
#include "support/test_media.h"

namespace framepress::e2e {

/// A service that one of scripts/*.sh (kafka.sh, seaweedfs.sh) starts in `dir` and describes in
/// `dir`/env; stopped on destruction. The scripts stop their server when this process dies, so a crashed
/// test leaves nothing running. Its output goes to `dir`/../<script>.log.
class ScriptService {
 public:
  /// Throws std::runtime_error when the script cannot start it.
  ScriptService(std::string script, std::filesystem::path dir);
  ~ScriptService();
  ScriptService(const ScriptService&) = delete;
  ScriptService& operator=(const ScriptService&) = delete;
  /// A value of `dir`/env ("S3_ENDPOINT", "KAFKA_BOOTSTRAP", …).
  const std::string& operator[](const std::string& name) const { return env_.at(name); }
  void kill() { run("kill"); }
  void restart() { run("restart"); }

 private:
  void run(const std::string& verb, bool must_succeed = true);
  std::string script_;
  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

/// The flags every test server gets: the fastest x264 preset, so tests measure behaviour, not encoding.
std::vector<std::string> fast_encoding_args();

/// Follows a job's SSE stream from the start to its terminal event (or `timeout`) and returns everything
/// the stream said.
SseResult follow_job(const std::string& url, const std::string& id, std::chrono::seconds timeout = std::chrono::seconds(300));

/// The names of the events in order.
std::vector<std::string> event_names(const SseResult& result);

/// The samples of a Prometheus text exposition (GET /metrics): "name{labels}" (as written) → value.
/// Fails the test on a line that is neither a comment nor a sample.
std::map<std::string, double> metric_samples(const std::string& exposition);

/// The value of one series of GET `url`/metrics, or -1 when the process does not expose it.
double metric_value(const std::string& url, const std::string& series);

/// Asks `done` every 200 ms until it says yes or `timeout` has passed; returns its last answer. For
/// what settles a moment after a client has seen a job end (a worker removes its scratch files and ends its
/// task metrics just after publishing), never as a measure of speed.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Regular files under `dir`, recursively, relative to it.
std::vector<std::string> files_under(const std::filesystem::path& dir);

}  // namespace framepress::e2e
