#include "media/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

extern char** environ;

namespace framepress::media {

namespace {

using Clock = std::chrono::steady_clock;

// After the deadline kill, how long we keep reading for the last words of a dying group. A grandchild
// that left the group could hold the pipes open for ever; we stop waiting for it.
constexpr auto kDrainAfterKill = std::chrono::seconds(2);
constexpr int kPollSlice = 250;  // ms

// What the child reports through the status pipe when a step before exec fails.
enum class Step : int { setup = 1, chdir, rlimit_cpu, rlimit_as, exec };

struct ChildFailure {
  Step step;
  int error;
};

const char* step_name(Step step) {
  switch (step) {
    case Step::setup: return "setting up the child";
    case Step::chdir: return "changing directory";
    case Step::rlimit_cpu: return "setting the CPU limit";
    case Step::rlimit_as: return "setting the memory limit";
    case Step::exec: return "exec";
  }
  return "starting";
}

/// A descriptor closed on scope exit unless released.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

std::system_error errno_error(int error, const std::string& what) {
  return std::system_error(error, std::generic_category(), what);
}

// O_CLOEXEC on both ends: another thread may fork at any moment, and its child must not inherit our
// pipes (a leaked write end would keep our reader from ever seeing end-of-file).
std::pair<UniqueFd, UniqueFd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw errno_error(errno, "pipe2");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// The PATH search happens in the parent: execvp may allocate, which is not safe in the child of a
// multi-threaded process (another thread may have held the allocator's lock at fork time).
std::string resolve_program(const std::string& name) {
  if (name.empty()) throw errno_error(ENOENT, "empty program name");
  if (name.find('/') != std::string::npos) return name;
  const char* env = std::getenv("PATH");
  std::string_view path = env && *env ? env : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    auto colon = path.find(':');
    std::string dir(path.substr(0, colon));
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  throw errno_error(ENOENT, "cannot find '" + name + "' on PATH");
}

// Limits are computed before fork. We never ask for a hard limit above the current one: an
// unprivileged process may only lower it.
rlimit lowered(int resource, rlim_t soft, rlim_t hard) {
  rlimit current{};
  ::getrlimit(resource, &current);
  if (current.rlim_max != RLIM_INFINITY) {
    soft = std::min(soft, current.rlim_max);
    hard = std::min(hard, current.rlim_max);
  }
  return rlimit{soft, hard};
}

int ms_until(Clock::time_point t) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

[[noreturn]] void child_fail(int report_fd, Step step, int error) {
  ChildFailure failure{step, error};
  // Nothing to do when this fails; the parent then sees the exit status 127.
  [[maybe_unused]] auto n = ::write(report_fd, &failure, sizeof failure);
  ::_exit(127);
}

void close_from(int first, int last_inclusive, int max_fd) {
  if (first > last_inclusive) return;
  if (::close_range(static_cast<unsigned>(first), static_cast<unsigned>(last_inclusive), 0) == 0) return;
  // Kernels before 5.9 have no close_range.
  for (int fd = first; fd <= std::min(last_inclusive, max_fd); ++fd) ::close(fd);
}

}  // namespace

// ---- ExitStatus ----------------------------------------------------------------------------------

std::string ExitStatus::describe() const {
  if (timed_out) return "timed out and was killed";
  if (signal != 0) {
    const char* name = ::sigdescr_np(signal);
    return "killed by signal " + std::to_string(signal) + (name ? " (" + std::string(name) + ")" : "");
  }
  if (exit_code >= 0) return "exit status " + std::to_string(exit_code);
  return "unknown exit status";
}

std::string last_lines(std::string_view text, std::size_t max_lines) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  std::string out;
  std::size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (std::size_t i = first; i < lines.size(); ++i) {
    if (!out.empty()) out += '\n';
    out += lines[i];
  }
  return out;
}

// ---- ChildProcess --------------------------------------------------------------------------------

struct ChildProcess::State {
  pid_t pid = -1;
  int out_fd = -1;
  int err_fd = -1;
  int pidfd = -1;  // -1 when the kernel has no pidfd_open; we then poll for the exit
  ChildOptions options;
  std::optional<Clock::time_point> deadline;

  std::string stdout_partial;
  std::string stderr_buffer;
  bool timed_out = false;
  std::optional<ExitStatus> status;

  // kill() may run on another thread: it must never signal a process group whose leader we have
  // already reaped, because its id may then belong to somebody else. `reaped` and `killed` change only
  // under this mutex, and the leader is reaped only under it.
  std::mutex mutex;
  bool reaped = false;
  std::atomic<bool> killed{false};  // also read without the lock by read_output()

  ~State() {
    for (int fd : {out_fd, err_fd, pidfd})
      if (fd >= 0) ::close(fd);
  }

  void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  void deliver_lines(const LineHandler& on_line) {
    std::size_t start = 0;
    try {
      while (true) {
        auto nl = stdout_partial.find('\n', start);
        if (nl == std::string::npos) break;
        std::string_view line(stdout_partial.data() + start, nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        start = nl + 1;
        if (on_line) on_line(line);
      }
    } catch (...) {
      stdout_partial.erase(0, start);  // a line is delivered once, even when its handler threw
      throw;
    }
    stdout_partial.erase(0, start);
    while (stdout_partial.size() >= options.max_line_bytes && options.max_line_bytes > 0) {
      std::string piece = stdout_partial.substr(0, options.max_line_bytes);
      stdout_partial.erase(0, options.max_line_bytes);
      if (on_line) on_line(piece);
    }
  }

  void append_stderr(const char* data, std::size_t n) {
    stderr_buffer.append(data, n);
    // Trim only when twice the size, so the copy is amortised.
    if (stderr_buffer.size() > 2 * options.stderr_tail_bytes)
      stderr_buffer.erase(0, stderr_buffer.size() - options.stderr_tail_bytes);
  }

  // Whether the leader has exited (left as a zombie: WNOWAIT keeps its id reserved until reap()).
  // With a time limit, waits at most until then.
  bool wait_exited(std::optional<Clock::time_point> until) {
    while (true) {
      siginfo_t info{};
      int flags = WEXITED | WNOWAIT | (until ? WNOHANG : 0);
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, flags) == 0) {
        if (info.si_pid == pid) return true;
      } else if (errno == ECHILD) {
        return true;  // reaped behind our back (SIGCHLD ignored): reap() records an unknown status
      } else if (errno != EINTR) {
        throw errno_error(errno, "waitid");
      }
      if (!until) continue;
      if (Clock::now() >= *until) return false;
      if (pidfd >= 0) {
        pollfd p{pidfd, POLLIN, 0};
        ::poll(&p, 1, ms_until(*until));
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }

  ExitStatus reap() {
    std::lock_guard lock(mutex);
    ExitStatus result;
    // wait4 rather than waitid: it also tells the processor time the child used, which is how a failure
    // at RLIMIT_CPU is recognised when the child caught SIGXCPU and exited on its own (ffmpeg does).
    int wstatus = 0;
    rusage usage{};
    pid_t rc;
    do {
      rc = ::wait4(pid, &wstatus, 0, &usage);
    } while (rc < 0 && errno == EINTR);
    reaped = true;
    if (rc == pid) {
      if (WIFEXITED(wstatus)) {
        result.exit_code = WEXITSTATUS(wstatus);
      } else if (WIFSIGNALED(wstatus)) {
        result.signal = WTERMSIG(wstatus);
      }
      auto ms = [](const timeval& t) { return std::chrono::milliseconds(t.tv_sec * 1000LL + t.tv_usec / 1000); };
      result.cpu_time = ms(usage.ru_utime) + ms(usage.ru_stime);
    }
    result.killed = killed;
    result.timed_out = timed_out;
    return result;
  }

  void kill_group() noexcept {
    std::lock_guard lock(mutex);
    if (pid <= 0 || reaped) return;
    killed = true;
    // The group id is the leader's pid (setpgid in both parent and child before exec). Fall back to
    // the leader alone should the group somehow not exist.
    if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);
  }
};

ChildProcess::ChildProcess(std::vector<std::string> argv, ChildOptions options) : state_(std::make_unique<State>()) {
  if (argv.empty()) throw errno_error(EINVAL, "no program to run");
  const std::string program = resolve_program(argv[0]);

  // Everything the child needs is prepared here: after fork, in a multi-threaded process, the child
  // may only make async-signal-safe calls (no allocation, no locks) until exec.
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const std::string workdir = options.working_directory.string();

  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) throw errno_error(errno, "open /dev/null");
  auto [out_r, out_w] = make_pipe();
  auto [err_r, err_w] = make_pipe();
  auto [report_r, report_w] = make_pipe();

  const bool limit_cpu = options.cpu_seconds_limit > 0;
  // The soft limit sends SIGXCPU; the hard limit one second later is SIGKILL for a child that ignores it.
  const rlimit cpu = lowered(RLIMIT_CPU, options.cpu_seconds_limit, options.cpu_seconds_limit + 1);
  const bool limit_as = options.memory_limit_bytes > 0;
  const rlimit as = lowered(RLIMIT_AS, options.memory_limit_bytes, options.memory_limit_bytes);
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  const int max_fd =
      nofile.rlim_cur == RLIM_INFINITY ? 65536 : static_cast<int>(std::min<rlim_t>(nofile.rlim_cur, 1 << 20));
  const pid_t parent = ::getpid();
  const bool kill_with_parent = options.kill_with_parent;

  const pid_t pid = ::fork();
  if (pid < 0) throw errno_error(errno, "fork");

  if (pid == 0) {
    // ---- the child: async-signal-safe calls only ----
    const int report = report_w.get();
    ::setpgid(0, 0);
    if (kill_with_parent) {
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(report, Step::setup, errno);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    }
    // Dispositions set to "ignore" and blocked signals survive exec; the server may have either.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    if (::dup2(devnull.get(), STDIN_FILENO) < 0 || ::dup2(out_w.get(), STDOUT_FILENO) < 0 ||
        ::dup2(err_w.get(), STDERR_FILENO) < 0) {
      child_fail(report, Step::setup, errno);
    }
    // dup2 onto itself keeps O_CLOEXEC (possible only if our own 0..2 were closed).
    for (int fd = 0; fd <= 2; ++fd) ::fcntl(fd, F_SETFD, 0);
    // Close everything else but the report pipe, which closes itself at exec (O_CLOEXEC).
    close_from(3, report - 1, max_fd);
    close_from(report + 1, max_fd > report ? INT32_MAX : report, max_fd);

    if (!workdir.empty() && ::chdir(workdir.c_str()) != 0) child_fail(report, Step::chdir, errno);
    if (limit_cpu && ::setrlimit(RLIMIT_CPU, &cpu) != 0) child_fail(report, Step::rlimit_cpu, errno);
    if (limit_as && ::setrlimit(RLIMIT_AS, &as) != 0) child_fail(report, Step::rlimit_as, errno);
    ::execve(program.c_str(), cargv.data(), environ);
    child_fail(report, Step::exec, errno);
  }

  // ---- the parent ----
  // Also set the group here, so kill() works even before the child has run setpgid itself. EACCES
  // (the child already exec'd, having set it) is fine.
  ::setpgid(pid, pid);
  auto& s = *state_;
  s.pid = pid;
  s.options = std::move(options);
  out_w.reset();
  err_w.reset();
  report_w.reset();
  devnull.reset();

  // The report pipe closes at exec (nothing read) or carries why the child gave up before it.
  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(report_r.get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    s.reap();
    s.pid = -1;
    throw errno_error(failure.error, "cannot start '" + argv[0] + "': " + step_name(failure.step));
  }

  s.out_fd = out_r.release();
  s.err_fd = err_r.release();
  // Through syscall(): glibc 2.36's <sys/pidfd.h> lacks extern "C" and does not link from C++.
  // A pidfd is always close-on-exec. -1 (kernel before 5.3, or a seccomp filter) is handled.
  s.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  for (int fd : {s.out_fd, s.err_fd}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (s.options.timeout.count() > 0) s.deadline = Clock::now() + s.options.timeout;
}

ChildProcess::~ChildProcess() {
  if (!state_ || state_->pid <= 0) return;
  auto& s = *state_;
  if (!s.reaped) {
    s.kill_group();
    // Close our ends first so a child blocked on a full pipe gets EPIPE rather than waiting.
    s.close_fd(s.out_fd);
    s.close_fd(s.err_fd);
    try {
      s.reap();
    } catch (...) {
      // Destructors do not throw; SIGKILL has been sent, the kernel does the rest.
    }
  }
}

ChildProcess::ChildProcess(ChildProcess&&) noexcept = default;

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    ChildProcess old(std::move(*this));  // kills and reaps what we held
    state_ = std::move(other.state_);
  }
  return *this;
}

void ChildProcess::read_output(const LineHandler& on_stdout_line) {
  if (!state_) return;
  auto& s = *state_;
  std::optional<Clock::time_point> drain_until;
  char buffer[64 * 1024];

  while (s.out_fd >= 0 || s.err_fd >= 0) {
    const auto now = Clock::now();
    int timeout_ms = -1;
    if (s.deadline && !s.timed_out) {
      if (now >= *s.deadline) {
        s.timed_out = true;
        s.kill_group();
        drain_until = now + kDrainAfterKill;
      } else {
        timeout_ms = ms_until(*s.deadline);
      }
    }
    // After any kill (the deadline's, or a cancel from another thread) the pipes normally close at
    // once; we stop waiting for them after a grace period.
    if (!drain_until && s.killed.load()) drain_until = now + kDrainAfterKill;
    if (drain_until) {
      if (now >= *drain_until) break;
      timeout_ms = ms_until(*drain_until);
    }
    // Wake now and then even without a deadline, to notice a kill() from another thread.
    timeout_ms = timeout_ms < 0 ? kPollSlice : std::min(timeout_ms, kPollSlice);

    pollfd fds[2];
    nfds_t count = 0;
    for (int fd : {s.out_fd, s.err_fd})
      if (fd >= 0) fds[count++] = pollfd{fd, POLLIN, 0};
    int ready = ::poll(fds, count, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw errno_error(errno, "poll");
    }
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      const bool is_out = fds[i].fd == s.out_fd;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        if (is_out) {
          s.stdout_partial.append(buffer, static_cast<std::size_t>(n));
          s.deliver_lines(on_stdout_line);
        } else {
          s.append_stderr(buffer, static_cast<std::size_t>(n));
        }
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        s.close_fd(is_out ? s.out_fd : s.err_fd);
      }
    }
  }
  s.close_fd(s.out_fd);
  s.close_fd(s.err_fd);
  if (!s.stdout_partial.empty()) {
    std::string last = std::move(s.stdout_partial);
    s.stdout_partial.clear();
    if (!last.empty() && last.back() == '\r') last.pop_back();
    if (on_stdout_line) on_stdout_line(last);
  }
}

ExitStatus ChildProcess::wait() {
  if (!state_ || state_->pid <= 0) return ExitStatus{};
  auto& s = *state_;
  if (s.status) return *s.status;
  read_output(nullptr);
  // The pipes are closed, but the child may still run (it closed them itself, or left them to a
  // grandchild): the deadline holds for this wait too.
  std::optional<Clock::time_point> until;
  if (s.deadline && !s.timed_out) until = s.deadline;
  if (!s.wait_exited(until)) {
    s.timed_out = true;
    s.kill_group();
    s.wait_exited(std::nullopt);
  }
  s.status = s.reap();
  return *s.status;
}

void ChildProcess::kill() noexcept {
  if (state_) state_->kill_group();
}

std::string ChildProcess::stderr_tail() const {
  if (!state_) return {};
  const auto& buffer = state_->stderr_buffer;
  const std::size_t cap = state_->options.stderr_tail_bytes;
  return buffer.size() > cap ? buffer.substr(buffer.size() - cap) : buffer;
}

pid_t ChildProcess::pid() const noexcept { return state_ ? state_->pid : -1; }

}  // namespace framepress::media
