#include "media/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "support/test_media.h"

namespace framepress::media {
namespace {

using namespace std::chrono_literals;

struct Run {
  std::vector<std::string> lines;
  ExitStatus status;
  std::string stderr_tail;
};

Run run(std::vector<std::string> argv, ChildOptions options = {}) {
  Run r;
  ChildProcess child(std::move(argv), std::move(options));
  child.read_output([&](std::string_view line) { r.lines.emplace_back(line); });
  r.status = child.wait();
  r.stderr_tail = child.stderr_tail();
  return r;
}

Run sh(const std::string& script, ChildOptions options = {}) { return run({"sh", "-c", script}, std::move(options)); }

// Whether a process is gone or a zombie (reparented after its group was killed, waiting for init).
bool dead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string content((std::istreambuf_iterator<char>(stat)), {});
  auto paren = content.rfind(')');
  return paren != std::string::npos && paren + 2 < content.size() && content[paren + 2] == 'Z';
}

TEST(ChildProcess, DeliversStdoutLinesAndExitCode) {
  auto r = sh("printf 'one\\ntwo\\r\\n\\nthree'; exit 3");
  EXPECT_EQ(r.lines, (std::vector<std::string>{"one", "two", "", "three"}));
  EXPECT_EQ(r.status.exit_code, 3);
  EXPECT_EQ(r.status.signal, 0);
  EXPECT_FALSE(r.status.success());
  EXPECT_EQ(r.status.describe(), "exit status 3");
  EXPECT_TRUE(sh("true").status.success());
}

TEST(ChildProcess, KeepsOnlyTheTailOfStderrWhileReadingStdout) {
  ChildOptions options;
  options.stderr_tail_bytes = 1024;
  // Interleaved and far more than a pipe buffer on both: neither pipe may block the other.
  auto r = sh("i=0; while [ $i -lt 5000 ]; do i=$((i+1)); echo \"err $i\" >&2; echo \"out $i\"; done", options);
  ASSERT_EQ(r.lines.size(), 5000u);
  EXPECT_EQ(r.lines.back(), "out 5000");
  EXPECT_LE(r.stderr_tail.size(), 1024u);
  EXPECT_TRUE(r.stderr_tail.ends_with("err 4999\nerr 5000\n")) << r.stderr_tail;
  EXPECT_EQ(last_lines(r.stderr_tail, 2), "err 4999\nerr 5000");
}

TEST(ChildProcess, SplitsEndlessLines) {
  ChildOptions options;
  options.max_line_bytes = 100;
  auto r = run({"head", "-c", "250", "/dev/zero"}, options);
  ASSERT_EQ(r.lines.size(), 3u);
  EXPECT_EQ(r.lines[0].size(), 100u);
  EXPECT_EQ(r.lines[2].size(), 50u);
}

TEST(ChildProcess, OwnGroupDevNullStdinNoInheritedDescriptors) {
  // A descriptor of ours without O_CLOEXEC must still not reach the child.
  int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 3);
  auto r = sh("echo $$; cut -d' ' -f5 /proc/$$/stat; readlink /proc/$$/fd/0; ls /proc/$$/fd");
  ::close(leaky);
  ASSERT_GE(r.lines.size(), 3u);
  EXPECT_EQ(r.lines[0], r.lines[1]) << "the child leads its own process group";
  EXPECT_EQ(r.lines[2], "/dev/null");
  std::vector<std::string> fds(r.lines.begin() + 3, r.lines.end());
  EXPECT_EQ(fds, (std::vector<std::string>{"0", "1", "2"}));
}

TEST(ChildProcess, WorkingDirectory) {
  framepress::testing::TempDir dir;
  ChildOptions options;
  options.working_directory = dir.path();
  auto r = run({"pwd"}, options);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(std::filesystem::canonical(r.lines[0]), std::filesystem::canonical(dir.path()));
}

TEST(ChildProcess, AppliesResourceLimits) {
  ChildOptions options;
  options.cpu_seconds_limit = 7;
  options.memory_limit_bytes = 2ULL << 30;
  auto r = sh("ulimit -t; ulimit -v", options);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"7", std::to_string((2ULL << 30) / 1024)}));
}

TEST(ChildProcess, CpuLimitStopsABusyLoop) {
  ChildOptions options;
  options.cpu_seconds_limit = 1;
  options.timeout = 60s;  // only a safety net: the CPU limit ends it long before
  auto r = sh("while :; do :; done", options);
  EXPECT_FALSE(r.status.timed_out);
  EXPECT_TRUE(r.status.signal == SIGXCPU || r.status.signal == SIGKILL) << r.status.describe();
  // (wait4 counts a few per cent less than the limit does)
  EXPECT_GE(r.status.cpu_time, 900ms) << "the processor time it used is reported";
}

// A child that catches SIGXCPU and exits on its own (as ffmpeg does) is still known by its CPU time.
TEST(ChildProcess, ReportsTheProcessorTimeOfAChildThatCaughtSigxcpu) {
  ChildOptions options;
  options.cpu_seconds_limit = 1;
  options.timeout = 60s;
  auto r = sh("trap 'exit 255' XCPU; while :; do :; done", options);
  EXPECT_EQ(r.status.exit_code, 255) << r.status.describe();
  EXPECT_GE(r.status.cpu_time, 900ms);
}

TEST(ChildProcess, MissingProgramThrows) {
  EXPECT_THROW(ChildProcess({"framepress-no-such-program"}), std::system_error);
  EXPECT_THROW(ChildProcess({"/nonexistent/bin/tool"}), std::system_error);
  ChildOptions options;
  options.working_directory = "/nonexistent/dir";
  EXPECT_THROW(ChildProcess({"true"}, options), std::system_error);
}

TEST(ChildProcess, KillFromAnotherThreadTakesTheWholeGroup) {
  ChildProcess child({"sh", "-c", "sleep 60 & echo $!; wait"});
  std::promise<pid_t> grandchild;
  std::jthread killer([&, f = grandchild.get_future()]() mutable {
    f.wait();
    child.kill();
  });
  bool first = true;
  pid_t sleeper = -1;
  child.read_output([&](std::string_view line) {
    if (!first) return;
    first = false;
    sleeper = std::stoi(std::string(line));
    grandchild.set_value(sleeper);
  });
  auto status = child.wait();
  EXPECT_EQ(status.signal, SIGKILL);
  EXPECT_TRUE(status.killed);
  EXPECT_FALSE(status.timed_out);
  ASSERT_GT(sleeper, 0);
  // The background sleep was in the group: it dies too (it may linger as a zombie of init).
  for (int i = 0; i < 500 && !dead(sleeper); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(dead(sleeper));
  child.kill();  // after the end: nothing happens
}

TEST(ChildProcess, KillDoesNotHangOnAnEscapedGrandchild) {
  // A grandchild in its own session survives the group kill and keeps our pipes open: reading must
  // still end (after a short grace) and the child be reaped.
  ChildProcess child({"sh", "-c", "setsid sh -c 'echo $$; exec sleep 60' & sleep 60"});
  pid_t escaped = -1;
  child.read_output([&](std::string_view line) {
    escaped = std::stoi(std::string(line));
    child.kill();
  });
  auto status = child.wait();
  EXPECT_EQ(status.signal, SIGKILL);
  ASSERT_GT(escaped, 0);
  ::kill(escaped, SIGKILL);  // ours to clean up
}

TEST(ChildProcess, DeadlineKillsTheGroup) {
  ChildOptions options;
  options.timeout = 200ms;
  auto r = sh("echo started; sleep 60", options);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"started"}));
  EXPECT_TRUE(r.status.timed_out);
  EXPECT_EQ(r.status.signal, SIGKILL);
  EXPECT_FALSE(r.status.success());
}

TEST(ChildProcess, DeadlineHoldsWhenTheChildClosesItsPipes) {
  ChildOptions options;
  options.timeout = 200ms;
  auto r = sh("exec >&- 2>&-; sleep 60", options);
  EXPECT_TRUE(r.status.timed_out);
  EXPECT_EQ(r.status.signal, SIGKILL);
}

TEST(ChildProcess, DestructorKillsAndReaps) {
  pid_t pid;
  {
    ChildProcess child({"sleep", "60"});
    pid = child.pid();
    ASSERT_GT(pid, 0);
  }
  // Reaped by us: no such process at all (not even a zombie).
  EXPECT_NE(::kill(pid, 0), 0);
}

TEST(ChildProcess, WaitWithoutReadingDrainsOutput) {
  ChildProcess child({"head", "-c", "1000000", "/dev/zero"});
  auto status = child.wait();
  EXPECT_TRUE(status.success()) << status.describe();
  EXPECT_TRUE(child.wait().success());  // idempotent
}

TEST(ChildProcess, MovedChildIsStillOwned) {
  ChildProcess a({"sh", "-c", "echo hi"});
  ChildProcess b(std::move(a));
  std::vector<std::string> lines;
  b.read_output([&](std::string_view l) { lines.emplace_back(l); });
  EXPECT_TRUE(b.wait().success());
  EXPECT_EQ(lines, std::vector<std::string>{"hi"});
  a.kill();  // moved-from: harmless
}

TEST(ChildProcess, ManyThreadsEachWithTheirOwnChildren) {
  constexpr int kThreads = 6;
  constexpr int kRuns = 10;
  std::vector<std::jthread> threads;
  std::vector<int> good(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &good] {
      for (int i = 0; i < kRuns; ++i) {
        const std::string word = std::to_string(t) + ":" + std::to_string(i);
        auto r = sh("echo " + word + "; echo err >&2; sleep 0.01");
        if (r.status.success() && r.lines == std::vector<std::string>{word} && r.stderr_tail == "err\n") ++good[t];
      }
    });
  }
  threads.clear();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(good[t], kRuns) << "thread " << t;
}

}  // namespace
}  // namespace framepress::media
