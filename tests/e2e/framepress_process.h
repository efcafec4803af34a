#pragma once
// Runs the built `framepress serve` as a child process, as a user would, on a free port with its own data
// directory; kill -9 and restart keep the data directory.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace framepress::e2e {

class FramepressProcess {
 public:
  /// Starts `framepress serve` with `--data-dir data_dir --listen 127.0.0.1:0` plus `extra_args`, and waits
  /// until /readyz answers 200. Throws std::runtime_error (with the server's log) when it does not start.
  FramepressProcess(std::filesystem::path data_dir, std::vector<std::string> extra_args);
  /// Any role: "serve", "api" (both wait for /readyz) or "worker" (waits until its log is replayed).
  /// `environment` is added to the child's ("NAME=value").
  FramepressProcess(std::string role, std::filesystem::path data_dir, std::vector<std::string> extra_args,
                    std::vector<std::string> environment);
  ~FramepressProcess();
  FramepressProcess(const FramepressProcess&) = delete;
  FramepressProcess& operator=(const FramepressProcess&) = delete;

  /// "http://127.0.0.1:<port>"
  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  std::string log() const;

  void kill_hard();            // SIGKILL, as a crash or the OOM killer would
  int stop();                  // SIGTERM and wait; returns the exit status
  void restart();              // start again on the same data directory (a new port)
  /// Resident set size now and at its peak, from /proc, in bytes.
  std::uint64_t rss_bytes() const;
  std::uint64_t peak_rss_bytes() const;
  /// Pids of the server's child processes (ffmpeg, ffprobe) that are alive now.
  std::vector<pid_t> children() const;

 private:
  void start();
  std::string role_ = "serve";
  std::filesystem::path data_dir_;
  std::vector<std::string> extra_args_;
  std::vector<std::string> environment_;
  std::filesystem::path log_path_;
  pid_t pid_ = -1;
  std::string url_;
  int starts_ = 0;
};

/// The path of the built binary (set by CMake).
std::filesystem::path framepress_binary();

}  // namespace framepress::e2e
