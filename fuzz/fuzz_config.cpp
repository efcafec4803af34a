// Fuzzes the configuration resolver (src/app/config.cpp): resolve() is a pure function of the TOML file's
// text, the environment and the flags, so all three come from the input.
//
// Input: a text file. Lines starting with
//   @env NAME=VALUE    an environment variable (FRAMEPRESS_*, the prototype's names, anything)
//   @flag key=VALUE    a command-line flag, by option key ("encoder.preset", "max_upload_bytes")
//   @scope N           the subcommand: 0 serve, 1 api, 2 worker, 3 client (default: serve)
//   @nofile            no configuration file at all
// are taken as such; every other line is the TOML file.
//
// Properties: resolve() returns a Config or throws framepress::Error(bad_request, "bad_config"); nothing
// else escapes, nothing crashes, no sanitizer reports. parse_size() and parse_duration() are fuzzed on
// every value too.
#include <cstdint>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "app/config.h"
#include "core/error.h"
#include "fuzz_support.h"

namespace {

// toml++ 3.3.0 (Debian 12's) reaches TOML_UNREACHABLE (__builtin_unreachable) in
// impl::is_non_ascii_horizontal_whitespace() for code points whose lookup index is 0, 11 or 63 (U+00A1..U+0499,
// U+2C5E..U+3057 but U+3000, U+FB26..U+FEFE): upstream marzer/tomlplusplus issues 190 and 295, fixed after
// 3.4. That is the library's bug, not framepress's (harmless in today's g++ build, reported to the lead),
// and UBSan would report it on every such input, so inputs whose TOML text holds one of those code points
// are skipped while the library has the bug.
bool hits_toml_unreachable(std::string_view text) {
#if TOML_LIB_MAJOR == 3 && TOML_LIB_MINOR <= 4
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    char32_t c = 0;
    std::size_t n = 0;
    if ((b & 0xE0) == 0xC0) c = b & 0x1F, n = 1;
    else if ((b & 0xF0) == 0xE0) c = b & 0x0F, n = 2;
    else continue;  // ASCII, 4-byte sequences (beyond U+FFFF) and stray bytes cannot hit it
    if (i + n >= text.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    if (c > U'\xA0' && c < U'\uFEFF' && c != U'\u3000') {
      // The library's own lookup: the indices neither its bit mask nor its switch handle.
      const auto index = (static_cast<std::uint64_t>(c) - 0xA0) / 0x3FA;
      if (((1ULL << index) & 0x7FFFFFFFFFFFF75EULL) == 0 && index != 5 && index != 7) return true;
    }
  }
#else
  (void)text;
#endif
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace framepress;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  app::ConfigSources sources;
  sources.file_name = "fuzz.toml";
  std::string toml;
  bool file = true;
  unsigned scope = app::kServe;
  std::string_view rest = input;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    auto pair = [](std::string_view text) {
      const auto eq = text.find('=');
      return std::pair<std::string, std::string>(text.substr(0, eq),
                                                 eq == std::string_view::npos ? "" : text.substr(eq + 1));
    };
    if (line.starts_with("@env ")) {
      sources.environment.insert(pair(line.substr(5)));
    } else if (line.starts_with("@flag ")) {
      auto [key, value] = pair(line.substr(6));
      (void)app::parse_size(value);
      (void)app::parse_duration(value);
      sources.flags[key] = value;
    } else if (line.starts_with("@scope ")) {
      const auto n = line.substr(7);
      scope = n == "1" ? app::kApi : n == "2" ? app::kWorker : n == "3" ? app::kClient : app::kServe;
    } else if (line == "@nofile") {
      file = false;
    } else {
      toml.append(line);
      if (nl != std::string_view::npos) toml.push_back('\n');
    }
  }
  if (file) sources.file_text = toml;
  if (file && hits_toml_unreachable(toml)) return -1;  // -1: libFuzzer keeps it out of the corpus

  try {
    const app::Config config = app::resolve(sources, scope);
    FUZZ_CHECK(config.header_timeout.count() >= 0 && config.body_idle_timeout.count() >= 0 &&
                   config.task_timeout.count() >= 0 && config.presign_expiry.count() >= 0,
               "a negative time-out was accepted");
  } catch (const Error& e) {
    FUZZ_CHECK(e.code() == ErrorCode::bad_request, "resolve() error code");
    FUZZ_CHECK(e.reason() == "bad_config", "resolve() error reason");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resolve() let a %s escape: %s\n", typeid(e).name(), e.what());
    FUZZ_CHECK(false, "only framepress::Error may leave resolve()");
  }
  return 0;
}
