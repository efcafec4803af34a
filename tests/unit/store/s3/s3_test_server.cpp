#include "unit/store/s3/s3_test_server.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>

namespace framepress::testing {
namespace {

const std::filesystem::path kScript = std::filesystem::path(FRAMEPRESS_SOURCE_DIR) / "scripts" / "seaweedfs.sh";

/// Runs `scripts/seaweedfs.sh <args>` and returns its exit status; its output (stdout and stderr) goes
/// to `output`. The server it starts is tied to this process (S3_OWNER_PID), so a test that crashes or
/// times out leaves no server running.
int run_script(const std::string& args, std::string& output) {
  const std::string command =
      "S3_OWNER_PID=" + std::to_string(::getpid()) + " bash '" + kScript.string() + "' " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  std::array<char, 4096> buffer{};
  std::size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void script_or_throw(const std::string& args) {
  std::string output;
  if (run_script(args, output) != 0) throw std::runtime_error("seaweedfs.sh " + args + " failed:\n" + output);
}

std::string quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

std::map<std::string, std::string> read_env_file(const std::filesystem::path& path) {
  std::map<std::string, std::string> values;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
}

std::mutex server_mutex;
std::optional<S3TestServer> server_instance;

/// Stops the server at the end of the run, if one was started.
class S3ServerEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override {
    std::lock_guard lock(server_mutex);
    if (!server_instance || !server_instance->owned()) return;
    // kill, not stop: the data is thrown away, and a graceful stop of weed server takes seconds.
    std::string output;
    if (run_script("kill " + quoted(server_instance->dir), output) != 0) {
      std::fprintf(stderr, "stopping the S3 test server failed:\n%s\n", output.c_str());
    }
    std::error_code ignored;
    std::filesystem::remove_all(server_instance->dir, ignored);
    server_instance.reset();
  }
};

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new S3ServerEnvironment);

std::size_t collect(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

std::size_t collect_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& headers = *static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * count);
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    headers[name] = value;
  }
  return size * count;
}

RawResponse perform(const std::string& method, const std::string& url, const std::string* sigv4,
                    const std::string* userpwd) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  RawResponse response;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &response.headers);
  if (method == "HEAD") {
    curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (sigv4 != nullptr) {
    curl_easy_setopt(curl.get(), CURLOPT_AWS_SIGV4, sigv4->c_str());
    curl_easy_setopt(curl.get(), CURLOPT_USERPWD, userpwd->c_str());
  }
  const CURLcode code = curl_easy_perform(curl.get());
  if (code != CURLE_OK) throw std::runtime_error(std::string("curl: ") + curl_easy_strerror(code) + " for " + url);
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace

void S3TestServer::kill() const { script_or_throw("kill " + quoted(dir)); }
void S3TestServer::restart() const { script_or_throw("restart " + quoted(dir)); }

const S3TestServer& s3_server() {
  std::lock_guard lock(server_mutex);
  if (server_instance) return *server_instance;

  S3TestServer server;
  if (const char* endpoint = std::getenv("FRAMEPRESS_TEST_S3_ENDPOINT"); endpoint != nullptr && *endpoint != '\0') {
    const auto get = [](const char* name) {
      const char* value = std::getenv(name);
      return std::string(value == nullptr ? "" : value);
    };
    server.endpoint = endpoint;
    server.access_key = get("FRAMEPRESS_TEST_S3_ACCESS_KEY");
    server.secret_key = get("FRAMEPRESS_TEST_S3_SECRET_KEY");
    if (!get("FRAMEPRESS_TEST_S3_REGION").empty()) server.region = get("FRAMEPRESS_TEST_S3_REGION");
  } else {
    std::string pattern = (std::filesystem::temp_directory_path() / "framepress-s3-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    server.dir = pattern;
    std::string output;
    if (run_script("start " + quoted(server.dir), output) != 0) {
      std::error_code ignored;
      std::filesystem::remove_all(server.dir, ignored);
      throw std::runtime_error("scripts/seaweedfs.sh start failed:\n" + output);
    }
    const auto env = read_env_file(server.dir / "env");
    server.endpoint = env.at("S3_ENDPOINT");
    server.access_key = env.at("S3_ACCESS_KEY");
    server.secret_key = env.at("S3_SECRET_KEY");
    server.region = env.at("S3_REGION");
  }
  server_instance = server;
  return *server_instance;
}

std::string random_bucket(std::string_view stem) {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  static constexpr char digits[] = "0123456789abcdef";
  std::string name = "fp-" + std::string(stem) + "-";
  for (int i = 0; i < 12; ++i) name.push_back(digits[engine() & 0xf]);
  return name;
}

S3Options options_for(const S3TestServer& server, const std::string& bucket, const std::string& extra) {
  S3Options options =
      parse_s3_url("s3://" + bucket + "?endpoint=" + server.endpoint + "&region=" + server.region + extra);
  // Short pauses keep failing tests quick; the restart test sets its own.
  options.retry.base_delay = std::chrono::milliseconds(50);
  options.retry.max_delay = std::chrono::milliseconds(1000);
  return options;
}

S3Credentials credentials_for(const S3TestServer& server) { return {server.access_key, server.secret_key}; }

RawResponse raw_signed(const S3TestServer& server, const std::string& method, const std::string& url) {
  const std::string sigv4 = "aws:amz:" + server.region + ":s3";
  const std::string userpwd = server.access_key + ":" + server.secret_key;
  return perform(method, url, &sigv4, &userpwd);
}

RawResponse raw_get(const std::string& url) { return perform("GET", url, nullptr, nullptr); }

int pending_uploads(const S3TestServer& server, const std::string& bucket) {
  const RawResponse response = raw_signed(server, "GET", server.endpoint + "/" + bucket + "?uploads=");
  if (response.status != 200) {
    throw std::runtime_error("ListMultipartUploads: HTTP " + std::to_string(response.status) + " " + response.body);
  }
  int count = 0;
  for (std::size_t at = 0; (at = response.body.find("<Upload>", at)) != std::string::npos; at += 8) ++count;
  return count;
}

}  // namespace framepress::testing
