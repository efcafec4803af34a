// Fuzzes the request routing: the request-target parse the server does (Boost.URL origin-form, percent-
// decoded path and query, '+' as space, NUL refused), Router::match (src/http/router.cpp) over
// framepress's own route table, Request::query_param, and the Range header parser of downloads
// (src/api/byte_range.cpp).
//
// The target parse lives in an anonymous namespace in src/http/server.cpp (parse_target), which cannot be
// called from outside; parse_target() below repeats its lines exactly, so what is fuzzed is the same
// Boost.URL parse with the same options. Keep the two in step.
//
// Input: line 1 the method, line 2 the request target ("/api/videos?limit=3"), line 3 a Range header
// (optional; absent when there is no third line).
// Properties: nothing crashes or trips a sanitizer; a matched route's placeholders are non-empty single
// path segments; a 405 lists methods; a satisfiable range lies inside the object.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <boost/url/parse.hpp>

#include "api/byte_range.h"
#include "fuzz_support.h"
#include "http/server.h"

namespace {

using framepress::http::Request;
using framepress::http::Router;

// A copy of parse_target() in src/http/server.cpp.
bool parse_target(Request& request) {
  const auto parsed = boost::urls::parse_origin_form(request.target);
  if (!parsed) return false;
  request.path = parsed->path();
  if (request.path.find('\0') != std::string::npos) return false;
  for (const auto& param : parsed->params(boost::urls::encoding_opts(true))) {
    request.query.emplace(param.key, param.value);
  }
  return true;
}

// The routes of src/api/video_api.cpp (VideoApi::add_routes), in the same order.
const Router& routes() {
  static const Router router = [] {
    Router r;
    const std::pair<const char*, const char*> table[] = {
        {"GET", "/healthz"},
        {"GET", "/readyz"},
        {"POST", "/api/videos"},
        {"GET", "/api/videos"},
        {"GET", "/api/videos/{id}"},
        {"DELETE", "/api/videos/{id}"},
        {"POST", "/api/videos/{id}/cancel"},
        {"GET", "/api/videos/{id}/source"},
        {"GET", "/api/videos/{id}/renditions/{name}"},
        {"GET", "/api/videos/{id}/events"},
        {"GET", "/api/events"},
        {"GET", "/api/presets"},
        {"POST", "/upload"},
        {"GET", "/compression-status/{id}"},
    };
    for (const auto& [method, pattern] : table) r.add(method, pattern, {});
    return r;
  }();
  return router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto [method, rest] = fuzz::first_line(input);
  auto [target, rest2] = fuzz::first_line(rest);
  const bool has_range = rest.find('\n') != std::string_view::npos;
  auto [range, ignored] = fuzz::first_line(rest2);
  (void)ignored;

  Request request;
  request.method = std::string(method);
  request.target = std::string(target);
  if (parse_target(request)) {
    FUZZ_CHECK(request.path.find('\0') == std::string::npos, "NUL in a path");
    const auto match = routes().match(request.method, request.path);
    if (match.handler) {
      FUZZ_CHECK(match.allowed_methods.empty(), "a match with an Allow list");
      for (const auto& [name, value] : match.params) {
        FUZZ_CHECK(name == "id" || name == "name", "an unknown placeholder");
        FUZZ_CHECK(!value.empty() && value.find('/') == std::string::npos, "a placeholder is one segment");
      }
    } else {
      FUZZ_CHECK(match.params.empty(), "parameters without a route");
    }
    for (const auto& [key, value] : request.query) {
      const auto first = request.query_param(key);
      FUZZ_CHECK(first.has_value(), "query_param() lost a parameter");
    }
  }

  // Range against an object whose size the input picks.
  const std::uint64_t sizes[] = {0, 1, 2, 1023, 1024, 1ULL << 32, UINT64_MAX - 1, UINT64_MAX};
  const std::uint64_t object_size = sizes[fuzz::hash(input) % 8];
  const auto header = has_range ? std::optional<std::string_view>(range) : std::nullopt;
  const auto result = framepress::api::parse_range(header, object_size);
  if (const auto* r = std::get_if<framepress::ByteRange>(&result)) {
    FUZZ_CHECK(r->first <= r->last && r->last < object_size, "a range outside the object");
  }
  return 0;
}
