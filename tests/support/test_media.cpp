#include "support/test_media.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

extern char** environ;

namespace framepress::testing {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

std::string number(double value) {
  std::array<char, 32> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%g", value);
  return buffer.data();
}

void run_or_throw(const std::vector<std::string>& argv) {
  CommandResult r = run_process(argv);
  if (r.exit_code != 0) {
    throw std::runtime_error("command failed (exit " + std::to_string(r.exit_code) + "): " + join(argv) + "\n" + r.err);
  }
}

double json_number(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return 0;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) return std::strtod(it->get<std::string>().c_str(), nullptr);
  return 0;
}

}  // namespace

// ---- run_process -----------------------------------------------------------------------------------

CommandResult run_process(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::runtime_error("run_process: empty argv");
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, cargv[0], &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }

  CommandResult result;
  std::array<pollfd, 2> fds{pollfd{out[0], POLLIN, 0}, pollfd{err[0], POLLIN, 0}};
  int open = 2;
  std::array<char, 16384> buffer{};
  while (open > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer.data(), buffer.size());
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buffer.data(), static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;  // poll ignores negative descriptors
        --open;
      }
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) ::close(p.fd);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string run_command(const std::vector<std::string>& argv, int* exit_code) {
  CommandResult r = run_process(argv);
  if (!r.err.empty()) std::cerr << r.err;
  if (exit_code) *exit_code = r.exit_code;
  return r.out;
}

// ---- TempDir -----------------------------------------------------------------------------------------

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/framepress-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    TempDir old(std::move(*this));
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

// ---- make_clip -------------------------------------------------------------------------------------

fs::path make_clip(const fs::path& dir, const std::string& name, const ClipSpec& spec) {
  const fs::path out = dir / (name + "." + spec.extension);
  const fs::path encoded = spec.rotation != 0 ? dir / (name + ".unrotated." + spec.extension) : out;
  const std::string seconds = number(spec.seconds);

  std::vector<std::string> argv{"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                                "-f", "lavfi", "-i",
                                "testsrc2=size=" + std::to_string(spec.width) + "x" + std::to_string(spec.height) +
                                    ":rate=" + number(spec.fps) + ":duration=" + seconds};
  if (spec.audio) {
    argv.insert(argv.end(), {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=" + seconds});
  }
  if (spec.extension == "webm") {
    argv.insert(argv.end(), {"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k"});
    if (spec.audio) argv.insert(argv.end(), {"-c:a", "libopus"});
  } else {
    argv.insert(argv.end(), {"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"});
    if (spec.audio) argv.insert(argv.end(), {"-c:a", spec.extension == "avi" ? "libmp3lame" : "aac"});
  }
  if (spec.audio) argv.push_back("-shortest");
  argv.push_back(encoded.string());
  run_or_throw(argv);

  if (spec.rotation != 0) {
    run_or_throw({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", encoded.string(), "-map",
                  "0", "-c", "copy", "-metadata:s:v:0", "rotate=" + std::to_string(spec.rotation), out.string()});
    fs::remove(encoded);
  }
  return out;
}

// ---- inspect ---------------------------------------------------------------------------------------

bool moov_before_mdat(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  in.seekg(0, std::ios::end);
  const std::uint64_t size = static_cast<std::uint64_t>(in.tellg());
  std::uint64_t offset = 0;
  while (offset + 8 <= size) {
    in.seekg(static_cast<std::streamoff>(offset));
    unsigned char header[16];
    if (!in.read(reinterpret_cast<char*>(header), 8)) return false;
    std::uint64_t box = (std::uint64_t{header[0]} << 24) | (header[1] << 16) | (header[2] << 8) | header[3];
    const std::string type(reinterpret_cast<char*>(header) + 4, 4);
    if (box == 1) {  // 64-bit size follows the type
      if (!in.read(reinterpret_cast<char*>(header) + 8, 8)) return false;
      box = 0;
      for (int i = 8; i < 16; ++i) box = (box << 8) | header[i];
    } else if (box == 0) {  // extends to the end of the file
      box = size - offset;
    }
    if (type == "moov") return true;
    if (type == "mdat") return false;
    if (box < 8) return false;  // corrupt
    offset += box;
  }
  return false;
}

MediaFacts inspect(const fs::path& file) {
  CommandResult probe = run_process({"ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                                     "-show_streams", "-count_packets", file.string()});
  if (probe.exit_code != 0) {
    throw std::runtime_error("ffprobe cannot read " + file.string() + ":\n" + probe.err);
  }
  const json j = json::parse(probe.out);
  MediaFacts facts;
  for (const auto& stream : j.value("streams", json::array())) {
    const std::string type = stream.value("codec_type", "");
    if (type == "video" && facts.video_codec.empty()) {
      facts.video_codec = stream.value("codec_name", "");
      facts.width = stream.value("width", 0);
      facts.height = stream.value("height", 0);
      facts.frames = static_cast<std::int64_t>(json_number(stream, "nb_read_packets"));
      for (const auto& sd : stream.value("side_data_list", json::array())) {
        if (sd.contains("rotation")) {
          long quarter = std::lround(json_number(sd, "rotation") / 90.0);
          facts.rotation = static_cast<int>(((quarter % 4) + 4) % 4) * 90;
        }
      }
    } else if (type == "audio" && facts.audio_codec.empty()) {
      facts.audio_codec = stream.value("codec_name", "");
    }
  }
  facts.duration = json_number(j.value("format", json::object()), "duration");
  facts.faststart = moov_before_mdat(file);

  CommandResult decode =
      run_process({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", file.string(), "-f", "null", "-"});
  facts.decodes_cleanly = decode.exit_code == 0 && decode.err.empty();
  return facts;
}

}  // namespace framepress::testing
