#pragma once
// A child process run without a shell: its own process group, stdin on /dev/null, stdout and stderr on
// pipes, every other descriptor closed, optional resource limits and a wall-clock deadline.
//
// Why hand-written rather than Boost.Process or posix_spawn: we need setrlimit (CPU seconds, address
// space) applied inside the child before exec, a fresh process group so that one kill() also takes any
// helper processes, a parent-death signal, and a guarantee that no descriptor of ours (sockets, the
// SQLite database, other children's pipes) leaks into ffmpeg. posix_spawn cannot set limits, and
// Boost.Process gives neither the limits nor the descriptor hygiene without reimplementing its
// internals through "initializers"; the fork/exec below is about as long as that glue would be.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace framepress::media {

/// How to run a child. Every limit is off at zero.
struct ChildOptions {
  /// The child's working directory; empty keeps ours.
  std::filesystem::path working_directory;
  /// RLIMIT_CPU in seconds: the kernel sends SIGXCPU at the limit and SIGKILL a second later.
  std::uint64_t cpu_seconds_limit = 0;
  /// RLIMIT_AS in bytes: allocations beyond it fail inside the child.
  std::uint64_t memory_limit_bytes = 0;
  /// Wall-clock time from start() after which the whole process group is killed.
  std::chrono::milliseconds timeout{0};
  /// How much of the end of stderr to keep (see ChildProcess::stderr_tail()).
  std::size_t stderr_tail_bytes = 16 * 1024;
  /// A stdout line longer than this is delivered in pieces of this size, so a child that never writes
  /// a newline cannot make us buffer without bound.
  std::size_t max_line_bytes = 64 * 1024;
  /// Have the kernel SIGKILL the child when the thread that started it ends (PR_SET_PDEATHSIG), so an
  /// encoder never outlives a crashed server. Linux ties this to the starting *thread*: keep the
  /// ChildProcess on the thread that started it, or turn this off.
  bool kill_with_parent = true;
};

/// How a child ended.
struct ExitStatus {
  int exit_code = -1;      ///< the exit status when it exited normally, else -1
  int signal = 0;          ///< the signal that ended it, else 0
  bool timed_out = false;  ///< we killed it because the deadline passed
  bool killed = false;     ///< kill() was called before it ended
  std::chrono::milliseconds cpu_time{0};  ///< processor time it used, all its threads (user + system)

  /// Exited normally with status 0.
  bool success() const noexcept { return signal == 0 && exit_code == 0; }
  /// "exit status 1", "killed by signal 9 (Killed)", "timed out after the deadline", …
  std::string describe() const;
};

/// One running child process.
///
/// Lifecycle: the constructor starts the child; read_output() pumps its pipes until both close (or the
/// deadline passes); wait() reaps it and returns how it ended. The destructor of a child that was not
/// waited for kills its process group and reaps it, so a ChildProcess never leaves a zombie or a
/// runaway encoder behind, also when an exception unwinds past it.
///
/// Thread-safety: kill() may be called from any thread at any time (e.g. from a std::stop_callback)
/// while another thread is in read_output() or wait(); every other member is for one thread at a time.
/// Separate ChildProcess objects are independent and may be used from as many threads as you like.
///
/// Movable (kill() must then be called on the new object), not copyable.
class ChildProcess {
 public:
  using LineHandler = std::function<void(std::string_view line)>;

  /// Starts `argv[0]` (searched on PATH when it has no '/') with `argv` as its arguments.
  /// Throws std::system_error when the program cannot be found or started (the error code is the
  /// errno of the step that failed: fork, pipe, chdir, setrlimit, exec).
  ChildProcess(std::vector<std::string> argv, ChildOptions options = {});
  ~ChildProcess();

  ChildProcess(ChildProcess&&) noexcept;
  ChildProcess& operator=(ChildProcess&&) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// Reads stdout and stderr until both are closed by the child, calling `on_stdout_line` for each
  /// stdout line (without its newline; a trailing '\r' is removed) on this thread, and keeping the
  /// last `stderr_tail_bytes` of stderr. Enforces the deadline: when it passes, the process group is
  /// killed and reading stops soon after. An exception thrown by the handler propagates (the child
  /// keeps running until kill() or destruction).
  void read_output(const LineHandler& on_stdout_line);

  /// Waits for the child to end (reading and discarding any output still pending, so it cannot block
  /// on a full pipe) and reaps it. Enforces the deadline. Idempotent: a second call returns the same.
  ExitStatus wait();

  /// Sends SIGKILL to the child's whole process group. Safe from any thread, any number of times, also
  /// after the child ended (then it does nothing).
  void kill() noexcept;

  /// The last bytes the child wrote to stderr (at most ChildOptions::stderr_tail_bytes).
  std::string stderr_tail() const;

  /// The child's process id, which is also its process group id.
  pid_t pid() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The last `max_lines` non-empty lines of `text`, joined with '\n'.
std::string last_lines(std::string_view text, std::size_t max_lines);

}  // namespace framepress::media
