// Hostile media and hostile clients against one running `framepress serve`: a corpus of broken and
// malicious files (made at test time by scripts/make-bad-inputs.sh) and abuse of HTTP itself (names,
// multipart, framing, slowness). Every case must end in a clear answer: a 4xx with a JSON error code, or a
// job that ends `failed` with a reason (or, for a file only damaged in the middle, `completed`). After all
// of them the server still serves, nothing was written outside its data directory, no scratch file is
// left, no network listener was contacted, and every stored file name is clean.
//
// Prints a table: case → answer → outcome.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <utility>

#include "e2e/e2e_support.h"

namespace framepress::e2e {
namespace {

using testing::TempDir;

// ---- what a case may end in -----------------------------------------------------------------------------

enum Accept : unsigned {
  kRefused = 1u << 0,    // a 4xx with a JSON error code
  kFailed = 1u << 1,     // a job that ends `failed`, with a reason
  kCompleted = 1u << 2,  // a job that completes (only where the damage may be decodable)
};

struct Outcome {
  long status = 0;         // the HTTP status of the answer; 0: none (the connection just ended)
  std::string code;        // the JSON error code of a refusal
  std::string job_id;      // the job made, when one was
  std::string job_state;   // its final state
  std::string reason;      // why it failed
  nlohmann::json job;      // its final JSON

  bool acceptable(unsigned accept) const {
    if (status >= 400 && status < 500) return (accept & kRefused) && !code.empty();
    if (status == 201 || status == 200) {
      if (job_state == "failed") return (accept & kFailed) && !reason.empty();
      if (job_state == "completed") return (accept & kCompleted) != 0;
    }
    return false;
  }
  std::string answer() const {
    if (status == 0) return "(no answer)";
    return std::to_string(status) + (code.empty() ? "" : " " + code);
  }
  std::string result() const {
    if (job_state.empty()) return status >= 400 && status < 500 ? "refused" : "?";
    std::string text = "job " + job_state;
    if (!reason.empty()) text += ": " + reason.substr(0, 60);
    if (job.is_object() && job["filename"].is_string()) {
      // As JSON, so that whatever it holds prints as one readable line.
      std::string name = nlohmann::json(job["filename"]).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
      if (name.size() > 40) name = name.substr(0, 37) + "...";
      text += ", stored as " + name;
    }
    return text;
  }
};

std::string error_code_of(const std::string& body) {
  const auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("error") || !parsed["error"].is_object()) return {};
  const auto& code = parsed["error"]["code"];
  const auto& message = parsed["error"]["message"];
  if (!code.is_string() || !message.is_string() || message.get<std::string>().empty()) return {};
  return code.get<std::string>();
}

// ---- raw HTTP, for what libcurl would not send ----------------------------------------------------------

/// A blocking TCP connection to the server. Reads give up after a minute: a hang guard, not a time limit.
class RawConnection {
 public:
  explicit RawConnection(unsigned short port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    timeval patience{60, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect() failed");
    }
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  /// False once the server has closed or reset the connection.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  /// Everything until the server closes (or resets) the connection.
  std::string read_to_end() {
    while (fill()) {
    }
    return std::exchange(received_, {});
  }
  /// What arrived up to and including `marker` (or until the connection ended).
  std::string read_until(std::string_view marker) {
    std::size_t at;
    while ((at = received_.find(marker)) == std::string::npos) {
      if (!fill()) return std::exchange(received_, {});
    }
    std::string out = received_.substr(0, at + marker.size());
    received_.erase(0, at + marker.size());
    return out;
  }

 private:
  bool fill() {
    char buffer[16384];
    for (;;) {
      const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      received_.append(buffer, static_cast<std::size_t>(n));
      return true;
    }
  }
  int fd_ = -1;
  std::string received_;
};

/// The status and JSON of the first response in `raw`; the job when it made one.
Outcome parse_raw(const std::string& raw) {
  Outcome outcome;
  if (raw.size() < 12 || raw.rfind("HTTP/1.", 0) != 0) return outcome;
  outcome.status = std::stol(raw.substr(9, 3));
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return outcome;
  std::string body = raw.substr(head_end + 4);
  const std::string head = raw.substr(0, head_end);
  std::string lower = head;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (const auto at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
    body = body.substr(0, std::stoul(head.substr(at + 17)));
  }
  if (outcome.status >= 400) outcome.code = error_code_of(body);
  if (outcome.status == 201) {
    const auto job = nlohmann::json::parse(body, nullptr, false);
    if (job.is_object() && job.contains("id")) outcome.job_id = job["id"];
  }
  return outcome;
}

/// Sends `request` whole, then reads the answer to its end (requests carry Connection: close).
Outcome raw_exchange(unsigned short port, const std::string& request) {
  RawConnection connection(port);
  connection.send(request);
  return parse_raw(connection.read_to_end());
}

std::string multipart_part(const std::string& boundary, const std::string& disposition, const std::string& type,
                           const std::string& content) {
  return "--" + boundary + "\r\nContent-Disposition: " + disposition + "\r\n" +
         (type.empty() ? "" : "Content-Type: " + type + "\r\n") + "\r\n" + content + "\r\n";
}

std::string post(const std::string& target, const std::string& content_type, const std::string& body,
                 const std::string& extra_headers = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// ---- checks -----------------------------------------------------------------------------------------------

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto lead = static_cast<unsigned char>(s[i]);
    const std::size_t length = lead < 0x80             ? 1
                               : (lead >> 5) == 0x6    ? 2
                               : (lead >> 4) == 0xE    ? 3
                               : (lead >> 3) == 0x1E   ? 4
                                                       : 0;
    if (length == 0 || i + length > s.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

/// What is wrong with a stored file name ("" when nothing).
std::string filename_problem(const std::string& name) {
  if (name.empty()) return "empty";
  if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos) return "has a slash";
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7F) return "has a control character";
  }
  if (!valid_utf8(name)) return "is not UTF-8";
  if (name.size() > 255) return "is longer than 255 bytes";
  if (name.front() == '.') return "starts with a dot";
  return {};
}

/// Every path under `root` (directories too, with the size of files), except under `skip`.
std::vector<std::string> listing(const std::filesystem::path& root, const std::filesystem::path& skip) {
  std::vector<std::string> out;
  using Walk = std::filesystem::recursive_directory_iterator;
  for (auto it = Walk(root); it != Walk(); ++it) {
    if (it->path() == skip) {
      it.disable_recursion_pending();
      continue;
    }
    std::string entry = std::filesystem::relative(it->path(), root).string();
    if (it->is_regular_file()) entry += " " + std::to_string(it->file_size());
    else if (it->is_directory()) entry += "/";
    out.push_back(entry);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// A TCP listener on loopback that counts who connects: what the network-reaching cases point at, and
/// must never reach.
class Tripwire {
 public:
  Tripwire() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd_, 16) != 0) {
      throw std::runtime_error("cannot listen on loopback");
    }
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) == 1) {
          const int client = ::accept(fd_, nullptr, nullptr);
          if (client >= 0) {
            ++connections_;
            ::close(client);
          }
        }
      }
    });
  }
  ~Tripwire() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  unsigned short port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/segment.ts"; }
  int connections() const { return connections_; }

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stop_ = false;
  std::atomic<int> connections_ = 0;
  std::thread thread_;
};

unsigned short port_of(const std::string& url) {
  return static_cast<unsigned short>(std::stoi(url.substr(url.rfind(':') + 1)));
}

// ---- the test ---------------------------------------------------------------------------------------------

struct Case {
  std::string name;
  unsigned accept;
  std::string code;  // the JSON error code a refusal must carry; "": any
  std::function<Outcome()> run;
};

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    corpus_ = sandbox_.path() / "corpus";
    data_ = sandbox_.path() / "data";
    std::filesystem::create_directories(sandbox_.path() / "cwd");
    std::filesystem::create_directories(sandbox_.path() / "tmp");

    const auto script = std::filesystem::path(FRAMEPRESS_SOURCE_DIR) / "scripts" / "make-bad-inputs.sh";
    const auto made = testing::run_process({"bash", script.string(), corpus_.string(), tripwire_.url()});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    std::istringstream names(made.out);
    for (std::string name; std::getline(names, name);) {
      if (!name.empty()) corpus_files_.push_back(name);
    }

    // The server works in the sandbox, with its temporary files there too: whatever it (or an ffmpeg it
    // runs) writes outside its data directory shows up in the sandbox's listing.
    const auto here = std::filesystem::current_path();
    const char* tmpdir = std::getenv("TMPDIR");
    const std::string saved_tmpdir = tmpdir ? tmpdir : "";
    std::filesystem::current_path(sandbox_.path() / "cwd");
    ::setenv("TMPDIR", (sandbox_.path() / "tmp").c_str(), 1);
    auto args = fast_encoding_args();
    // Small enough for the 1080p case to be over it, large enough for the 320x180 clips.
    args.insert(args.end(), {"--limits-max-pixels", "1000000", "--header-timeout", "3s", "--body-idle-timeout", "5s"});
    try {
      server_ = std::make_unique<FramepressProcess>(data_, args);
    } catch (...) {
      std::filesystem::current_path(here);
      throw;
    }
    std::filesystem::current_path(here);
    if (tmpdir) ::setenv("TMPDIR", saved_tmpdir.c_str(), 1);
    else ::unsetenv("TMPDIR");
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << "---- server log ----\n" << server_->log() << "\n";
  }

  std::string url() const { return server_->url(); }
  unsigned short port() const { return port_of(server_->url()); }

  /// Follows a job the server made to its end.
  void finish(Outcome& outcome) {
    if (outcome.job_id.empty()) return;
    follow_job(url(), outcome.job_id, std::chrono::seconds(300));
    const auto job = http_get(url() + "/api/videos/" + outcome.job_id);
    if (job.status != 200) return;
    outcome.job = nlohmann::json::parse(job.body, nullptr, false);
    if (!outcome.job.is_object()) return;
    outcome.job_state = outcome.job.value("state", "");
    if (outcome.job["error"].is_string()) outcome.reason = outcome.job["error"];
  }

  Outcome upload(const std::filesystem::path& file) {
    const auto response = upload_file(url() + "/api/videos?renditions=144p", file);
    Outcome outcome;
    outcome.status = response.status;
    if (response.status >= 400) outcome.code = error_code_of(response.body);
    if (response.status == 201) outcome.job_id = response.json().value("id", "");
    finish(outcome);
    return outcome;
  }

  /// Uploads the good clip as multipart under the file name `filename` (raw bytes, as sent).
  Outcome upload_named(const std::string& filename) {
    const std::string boundary = "framepress-hostile-boundary";
    const std::string body =
        multipart_part(boundary, "form-data; name=\"video\"; filename=\"" + filename + "\"", "video/mp4",
                       read_file(corpus_ / "good.mp4")) +
        "--" + boundary + "--\r\n";
    auto outcome =
        raw_exchange(port(), post("/api/videos?renditions=144p", "multipart/form-data; boundary=" + boundary, body));
    finish(outcome);
    return outcome;
  }

  std::vector<Case> media_cases() {
    std::vector<Case> cases;
    const std::map<std::string, std::pair<unsigned, std::string>> expected{
        {"empty.mp4", {kRefused, "empty"}},
        {"audio-only.mp4", {kRefused, "audio_only"}},
        {"still-png.mp4", {kRefused, "still_image"}},
        {"still-frame.mp4", {kRefused, "still_image"}},
        {"huge-declared-15360.avi", {kRefused, "too_many_pixels"}},
        {"huge-declared-30000.avi", {kRefused, ""}},
        {"big-1080p.mp4", {kRefused, "too_many_pixels"}},
        {"corrupted-mid.mp4", {kRefused | kFailed | kCompleted, ""}},
        // What refers to other files or the network must never become a job.
        {"playlist-local.mp4", {kRefused, "unsupported_format"}},
        {"playlist-traversal.mp4", {kRefused, "unsupported_format"}},
        {"playlist-file-url.mp4", {kRefused, "unsupported_format"}},
        {"playlist-http.mp4", {kRefused, "unsupported_format"}},
        {"concat.mp4", {kRefused, "unsupported_format"}},
        {"dash-http.mp4", {kRefused, "unsupported_format"}},
        {"sdp.mp4", {kRefused, "unsupported_format"}},
    };
    for (const auto& name : corpus_files_) {
      auto it = expected.find(name);
      const auto [accept, code] =
          it == expected.end() ? std::pair<unsigned, std::string>{kRefused | kFailed, ""} : it->second;
      cases.push_back({name, accept, code, [this, name] { return upload(corpus_ / name); }});
    }
    return cases;
  }

  std::vector<Case> http_cases() {
    std::vector<Case> cases;
    const unsigned kNamed = kRefused | kCompleted;  // a bad name is cleaned (the clip is good) or refused
    // From the scratch directory (data/scratch), this is the sandbox: a write there shows in its listing.
    cases.push_back({"filename ../../outside.mp4", kNamed, "", [this] { return upload_named("../../outside.mp4"); }});
    cases.push_back({"filename with NUL", kNamed, "",
                     [this] { return upload_named(std::string("clip\0../../x.mp4", 16)); }});
    cases.push_back({"filename with control characters", kNamed, "",
                     [this] { return upload_named("a\x01" "b\x1b[31mred\x7f\tc\x08.mp4"); }});
    cases.push_back({"filename of 1000 bytes", kNamed, "",
                     [this] { return upload_named(std::string(996, 'n') + ".mp4"); }});
    cases.push_back({"filename not UTF-8", kNamed, "",
                     [this] { return upload_named("\xff\xfe\xc0\xaf\xed\xa0\x80 caf\xe9.mp4"); }});

    cases.push_back({"multipart without a file", kRefused, "no_file", [this] {
                       const std::string body =
                           multipart_part("b0", "form-data; name=\"preset\"", "", "fast") + "--b0--\r\n";
                       return raw_exchange(port(), post("/api/videos", "multipart/form-data; boundary=b0", body));
                     }});
    cases.push_back({"multipart with two files", kRefused, "multiple_files", [this] {
                       const auto clip = read_file(corpus_ / "good.mp4");
                       const std::string body =
                           multipart_part("b2", "form-data; name=\"video\"; filename=\"one.mp4\"", "video/mp4", clip) +
                           multipart_part("b2", "form-data; name=\"video\"; filename=\"two.mp4\"", "video/mp4", clip) +
                           "--b2--\r\n";
                       return raw_exchange(port(), post("/api/videos", "multipart/form-data; boundary=b2", body));
                     }});
    cases.push_back({"multipart with a wrong boundary", kRefused, "", [this] {
                       const std::string body =
                           multipart_part("actual", "form-data; name=\"video\"; filename=\"x.mp4\"", "video/mp4",
                                          read_file(corpus_ / "good.mp4")) +
                           "--actual--\r\n";
                       return raw_exchange(port(), post("/api/videos", "multipart/form-data; boundary=declared", body));
                     }});
    cases.push_back({"body shorter than its Content-Length", kRefused, "incomplete_body", [this] {
                       RawConnection connection(port());
                       const std::string part = read_file(corpus_ / "good.mp4").substr(0, 4096);
                       connection.send("POST /api/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
                                       "Content-Length: 1000000\r\n\r\n" +
                                       part);
                       connection.shutdown_write();  // the client is done: the rest never comes
                       return parse_raw(connection.read_to_end());
                     }});
    const std::string chunked_head =
        "POST /api/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\nTransfer-Encoding: chunked\r\n\r\n";
    cases.push_back({"chunked: a chunk of a terabyte", kRefused, "payload_too_large", [this, chunked_head] {
                       return raw_exchange(port(), chunked_head + "FFFFFFFFFFFF\r\n" + std::string(1000, 'x'));
                     }});
    cases.push_back({"chunked: a size line past 64 bits", kRefused, "bad_body", [this, chunked_head] {
                       return raw_exchange(port(), chunked_head + std::string(40, 'F') + "\r\nabc\r\n0\r\n\r\n");
                     }});
    cases.push_back({"chunked: invalid hex", kRefused, "bad_body", [this, chunked_head] {
                       return raw_exchange(port(), chunked_head + "zz\r\nabc\r\n0\r\n\r\n");
                     }});
    cases.push_back({"chunked: endless chunk extensions", kRefused, "bad_body", [this, chunked_head] {
                       RawConnection connection(port());
                       connection.send(chunked_head + "10");
                       std::string block;
                       while (block.size() < 64 * 1024) block += ";ext=value";
                       // 1 MiB: far past any bound, and less than the server drains from a connection it
                       // closes, so its answer is not lost to a reset.
                       for (int i = 0; i < 16 && connection.send(block); ++i) {
                       }
                       return parse_raw(connection.read_to_end());
                     }});
    cases.push_back({"a head of 64 KiB", kRefused, "header_too_large", [this] {
                       return raw_exchange(port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " +
                                                       std::string(64 * 1024, 'c') + "\r\n\r\n");
                     }});
    cases.push_back({"slow loris: a head that never ends", kRefused, "request_timeout", [this] {
                       RawConnection connection(port());
                       connection.send("POST /api/videos HTTP/1.1\r\nHost: 127.0.0.1\r\n");
                       // A line every half second, for as long as the server listens (--header-timeout 3s),
                       // from another thread while this one waits for the answer.
                       std::atomic<bool> answered = false;
                       std::thread trickle([&] {
                         for (int i = 0; i < 120 && !answered; ++i) {
                           if (!connection.send("X-Slow-" + std::to_string(i) + ": y\r\n")) break;
                           std::this_thread::sleep_for(std::chrono::milliseconds(500));
                         }
                       });
                       auto outcome = parse_raw(connection.read_to_end());
                       answered = true;
                       trickle.join();
                       return outcome;
                     }});
    return cases;
  }

  TempDir sandbox_;
  Tripwire tripwire_;
  std::filesystem::path corpus_;
  std::filesystem::path data_;
  std::vector<std::string> corpus_files_;
  std::unique_ptr<FramepressProcess> server_;
};

TEST(HostileChecks, TheFileNameCheckCatchesWhatItMust) {
  EXPECT_EQ(filename_problem("clip.mp4"), "");
  EXPECT_EQ(filename_problem("caf\xc3\xa9 \xef\xbf\xbd.mp4"), "");
  EXPECT_NE(filename_problem("../x.mp4"), "");
  EXPECT_NE(filename_problem("a\\b.mp4"), "");
  EXPECT_NE(filename_problem(std::string("a\0b", 3)), "");
  EXPECT_NE(filename_problem("a\x1b[31m.mp4"), "");
  EXPECT_NE(filename_problem("caf\xe9.mp4"), "");
  EXPECT_NE(filename_problem(std::string(300, 'a')), "");
  EXPECT_NE(filename_problem(""), "");
}

TEST_F(HostileTest, EveryCaseGetsAClearAnswerAndTheServerLivesOn) {
  ASSERT_GE(corpus_files_.size(), 20u);
  // The tripwire counts: one connection of our own proves it (and is the baseline).
  { RawConnection probe(tripwire_.port()); }
  for (int i = 0; i < 500 && tripwire_.connections() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(tripwire_.connections(), 1);
  const auto before = listing(sandbox_.path(), data_);
  const auto good_before = read_file(corpus_ / "good.mp4");

  auto cases = media_cases();
  for (auto& c : http_cases()) cases.push_back(std::move(c));
  ASSERT_GE(cases.size(), 25u);

  struct Row {
    std::string name;
    std::string answer;
    std::string result;
    bool ok;
  };
  std::vector<Row> rows;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Outcome outcome = c.run();
    bool ok = outcome.acceptable(c.accept);
    EXPECT_TRUE(ok) << "answer " << outcome.answer() << ", " << outcome.result();
    if (!c.code.empty() && outcome.status >= 400) {
      EXPECT_EQ(outcome.code, c.code);
      ok = ok && outcome.code == c.code;
    }
    if (outcome.job.is_object()) {
      // A name the server keeps is clean, whatever was sent.
      const std::string filename = outcome.job.value("filename", "");
      const auto problem = filename_problem(filename);
      EXPECT_EQ(problem, "") << "stored file name "
                             << nlohmann::json(filename).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
      ok = ok && problem.empty();
    }
    rows.push_back({c.name, outcome.answer(), outcome.result(), ok});
    // Never a crash: the server answers after every case.
    ASSERT_EQ(http_get(url() + "/healthz").status, 200) << "the server stopped answering after " << c.name;
  }

  std::size_t width = 0;
  for (const auto& row : rows) width = std::max(width, row.name.size());
  std::cout << "\n" << std::left << std::setw(static_cast<int>(width)) << "case" << "  " << std::setw(28) << "answer"
            << "outcome\n";
  for (const auto& row : rows) {
    std::cout << std::setw(static_cast<int>(width)) << row.name << "  " << std::setw(28) << row.answer << row.result
              << (row.ok ? "" : "   <-- NOT ACCEPTABLE") << "\n";
  }
  std::cout << rows.size() << " cases, "
            << std::count_if(rows.begin(), rows.end(), [](const Row& r) { return r.ok; }) << " handled as required\n\n";

  // After all of it: the server still serves, and a good upload still goes all the way.
  EXPECT_EQ(http_get(url() + "/healthz").status, 200);
  auto good = upload(corpus_ / "good.mp4");
  EXPECT_EQ(good.status, 201);
  EXPECT_EQ(good.job_state, "completed") << good.reason;

  // Nothing reached the network, nothing was written outside the data directory, nothing was changed on
  // the disk a playlist pointed at, and no scratch file was left behind.
  EXPECT_EQ(tripwire_.connections(), 1) << "a case reached the network";
  EXPECT_EQ(listing(sandbox_.path(), data_), before);
  EXPECT_FALSE(std::filesystem::exists(sandbox_.path().parent_path() / "outside.mp4"));
  EXPECT_EQ(read_file(corpus_ / "good.mp4"), good_before);
  EXPECT_EQ(files_under(data_ / "scratch"), std::vector<std::string>{});

  EXPECT_EQ(server_->stop(), 0);
  // Hostile input is the expected kind: none of it may look like a fault of the server's own.
  const auto log = server_->log();
  EXPECT_EQ(log.find("[error]"), std::string::npos) << log;
  EXPECT_EQ(log.find("[critical]"), std::string::npos) << log;
}

// The admission limits as an operator sets them: flags reach the server, and the server keeps to them.
TEST(HostileLimits, TheLimitFlagsReachTheServer) {
  TempDir media;
  TempDir data;
  auto args = fast_encoding_args();
  args.insert(args.end(), {"--max-uploads-per-ip", "1", "--max-streams-per-ip", "1", "--retry-after", "9s",
                           "--max-header-bytes", "2KiB"});
  FramepressProcess server(data.path(), args);
  const auto port = port_of(server.url());
  auto expect_refused = [](const Outcome& outcome, long status, const std::string& code) {
    EXPECT_EQ(outcome.status, status);
    EXPECT_EQ(outcome.code, code);
  };

  // One upload in flight: its handler has asked for the body (100 Continue), which is then held back.
  RawConnection first(port);
  first.send("POST /api/videos HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 1000\r\n"
             "Expect: 100-continue\r\n\r\n");
  ASSERT_NE(first.read_until("\r\n\r\n").find("100 Continue"), std::string::npos);
  RawConnection second(port);
  second.send("POST /api/videos HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 1000\r\n"
              "Expect: 100-continue\r\n\r\n");
  const auto raw = second.read_to_end();
  expect_refused(parse_raw(raw), 429, "too_many_uploads");
  EXPECT_NE(raw.find("\r\nRetry-After: 9\r\n"), std::string::npos) << raw;
  first.shutdown_write();
  expect_refused(parse_raw(first.read_to_end()), 400, "incomplete_body");

  // One stream open (the prototype's never ends by itself); a second is refused.
  auto clip = testing::make_clip(media.path(), "limits", {.width = 320, .height = 180, .seconds = 1});
  auto uploaded = upload_file(server.url() + "/api/videos?renditions=144p", clip);
  ASSERT_EQ(uploaded.status, 201) << uploaded.body;
  const std::string id = uploaded.json()["id"];
  const std::string stream_request = "GET /compression-status/" + id + " HTTP/1.1\r\nHost: x\r\n\r\n";
  RawConnection stream(port);
  stream.send(stream_request);
  ASSERT_NE(stream.read_until("\r\n\r\n").find(" 200 "), std::string::npos);
  const auto refused = raw_exchange(port, "GET /compression-status/" + id +
                                              " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  expect_refused(refused, 429, "too_many_streams");

  expect_refused(raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " + std::string(4096, 'c') +
                                        "\r\n\r\n"),
                 431, "header_too_large");
  EXPECT_EQ(http_get(server.url() + "/healthz").status, 200);
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace framepress::e2e
