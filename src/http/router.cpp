#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "http/server.h"

namespace framepress::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// "/a/b" → {"a","b"}; "/" → {""}. Empty segments are kept so that "/a//b" and "/a/b/" do not match "/a/b":
// a route has exactly one spelling.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  path.remove_prefix(1);
  for (;;) {
    const auto slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

bool is_placeholder(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// HEAD is served by the GET route unless a route names HEAD itself (RFC 9110 §9.3.2).
bool method_matches(std::string_view route_method, std::string_view method) {
  return route_method == method || (method == "HEAD" && route_method == "GET");
}

}  // namespace

std::optional<std::string> Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return std::nullopt;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  // lower_bound, not find: multimap::find may return any of several equal keys, and equal keys keep the
  // order they were inserted in, which is the order of the query string.
  const std::string key(name);
  const auto it = query.lower_bound(key);
  if (it == query.end() || it->first != key) return std::nullopt;
  return it->second;
}

void Router::add(std::string method, std::string pattern, Handler handler, RouteKind kind) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  }
  Route route{std::move(method), {}, std::move(handler), kind};
  for (auto segment : split_path(pattern)) route.segments.emplace_back(segment);
  routes_.push_back(std::move(route));
}

void Router::set_fallback(Handler handler) { fallback_ = std::move(handler); }

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match result;
  if (path.empty() || path.front() != '/') return result;
  const auto segments = split_path(path);

  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool matches = true;
    for (std::size_t i = 0; i < segments.size() && matches; ++i) {
      const std::string& want = route.segments[i];
      if (is_placeholder(want)) {
        if (segments[i].empty()) matches = false;
        else params.emplace(want.substr(1, want.size() - 2), segments[i]);
      } else {
        matches = want == segments[i];
      }
    }
    if (!matches) continue;

    if (method_matches(route.method, method)) {
      result.handler = &route.handler;
      result.kind = route.kind;
      result.params = std::move(params);
      result.allowed_methods.clear();
      return result;
    }
    auto& allowed = result.allowed_methods;
    if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end()) allowed.push_back(route.method);
  }
  // A GET route also answers HEAD, so the Allow list of a 405 says so.
  auto& allowed = result.allowed_methods;
  if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end() &&
      std::find(allowed.begin(), allowed.end(), "HEAD") == allowed.end()) {
    allowed.push_back("HEAD");
  }
  return result;
}

}  // namespace framepress::http
