#include "e2e/framepress_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "e2e/http_client.h"

namespace framepress::e2e {

std::filesystem::path framepress_binary() { return FRAMEPRESS_BINARY; }

FramepressProcess::FramepressProcess(std::filesystem::path data_dir, std::vector<std::string> extra_args)
    : data_dir_(std::move(data_dir)), extra_args_(std::move(extra_args)) {
  start();
}

FramepressProcess::FramepressProcess(std::string role, std::filesystem::path data_dir,
                                     std::vector<std::string> extra_args, std::vector<std::string> environment)
    : role_(std::move(role)),
      data_dir_(std::move(data_dir)),
      extra_args_(std::move(extra_args)),
      environment_(std::move(environment)) {
  start();
}

FramepressProcess::~FramepressProcess() {
  if (pid_ > 0) kill_hard();
}

void FramepressProcess::start() {
  std::filesystem::create_directories(data_dir_);
  // A log of its own for every start: reading a previous process's log would find its (dead) port.
  static std::atomic<int> process_count{0};
  log_path_ = data_dir_ / (role_ + "-" + std::to_string(::getpid()) + "-" + std::to_string(++process_count) + ".log");
  ++starts_;
  std::vector<std::string> args{framepress_binary().string(), role_, "--data-dir", data_dir_.string()};
  // Text logs unless the test asks for another format (the JSON log test).
  if (std::find(extra_args_.begin(), extra_args_.end(), "--log-format") == extra_args_.end()) {
    args.insert(args.end(), {"--log-format", "text"});
  }
  if (role_ != "worker") args.insert(args.end(), {"--listen", "127.0.0.1:0"});
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    for (auto& variable : environment_) ::putenv(variable.data());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const std::regex listening(R"(listening on (http://127\.0\.0\.1:\d+))");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("framepress exited at start-up:\n" + log());
    }
    std::smatch m;
    std::string text = log();
    if (url_.empty() && std::regex_search(text, m, listening)) url_ = m[1];
    if (text.find("event log replayed") != std::string::npos) {
      if (role_ == "worker") return;
      if (!url_.empty() && http_get(url_ + "/readyz").status == 200) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("framepress did not become ready:\n" + log());
}

std::string FramepressProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void FramepressProcess::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int FramepressProcess::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void FramepressProcess::restart() {
  url_.clear();
  start();
}

namespace {

std::uint64_t status_field_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}

}  // namespace

std::uint64_t FramepressProcess::rss_bytes() const { return status_field_kib(pid_, "VmRSS") * 1024; }
std::uint64_t FramepressProcess::peak_rss_bytes() const { return status_field_kib(pid_, "VmHWM") * 1024; }

std::vector<pid_t> FramepressProcess::children() const {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    char state = 0;
    pid_t parent = 0;
    fields >> state >> parent;
    if (parent == pid_ && state != 'Z') out.push_back(std::stoi(name));
  }
  return out;
}

}  // namespace framepress::e2e
