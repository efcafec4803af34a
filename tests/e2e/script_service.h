#pragma once
// The real servers of the distributed tests, started by the project's scripts (scripts/kafka.sh,
// scripts/seaweedfs.sh) in a directory of the test's own. Needs FRAMEPRESS_SOURCE_DIR (set by CMake).

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>

namespace framepress::e2e {

/// A service that one of scripts/*.sh starts in a directory and describes in DIR/env.
class ScriptService {
 public:
  ScriptService(std::string script, std::filesystem::path dir) : script_(std::move(script)), dir_(std::move(dir)) {
    run("start");
    std::ifstream in(dir_ / "env");
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  ~ScriptService() { run("stop", false); }
  const std::string& operator[](const std::string& name) const { return env_.at(name); }
  void kill() { run("kill"); }
  void restart() { run("restart"); }

 private:
  void run(const std::string& verb, bool must_succeed = true) {
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
  std::string script_;
  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

}  // namespace framepress::e2e
