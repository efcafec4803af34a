#include <gtest/gtest.h>

#include "http/server.h"

namespace framepress::http {
namespace {

// A handler that says which route it is, so a match can be checked without running it.
struct Tagged {
  int id;
  asio::awaitable<void> operator()(Exchange&) const { co_return; }
};

int id_of(const Router::Match& match) {
  if (!match.handler) return -1;
  const auto* tagged = match.handler->target<Tagged>();
  return tagged ? tagged->id : -2;
}

Router sample() {
  Router router;
  router.add("GET", "/api/videos", Tagged{1});
  router.add("POST", "/api/videos", Tagged{2});
  router.add("GET", "/api/videos/{id}", Tagged{3});
  router.add("DELETE", "/api/videos/{id}", Tagged{4});
  router.add("POST", "/api/videos/{id}/cancel", Tagged{5});
  router.add("GET", "/api/videos/{id}/renditions/{name}", Tagged{6});
  router.add("GET", "/", Tagged{7});
  return router;
}

TEST(Router, MatchesLiteralPaths) {
  const auto router = sample();
  EXPECT_EQ(id_of(router.match("GET", "/api/videos")), 1);
  EXPECT_EQ(id_of(router.match("POST", "/api/videos")), 2);
  EXPECT_EQ(id_of(router.match("GET", "/")), 7);
}

TEST(Router, FillsPlaceholders) {
  const auto router = sample();
  const auto match = router.match("GET", "/api/videos/01J9/renditions/720p");
  EXPECT_EQ(id_of(match), 6);
  EXPECT_EQ(match.params.at("id"), "01J9");
  EXPECT_EQ(match.params.at("name"), "720p");
  EXPECT_EQ(match.params.size(), 2u);
  EXPECT_TRUE(match.allowed_methods.empty());
}

TEST(Router, PlaceholderNeedsOneNonEmptySegment) {
  const auto router = sample();
  EXPECT_EQ(id_of(router.match("GET", "/api/videos//renditions/720p")), -1);
  EXPECT_EQ(id_of(router.match("GET", "/api/videos/")), -1);
  EXPECT_EQ(id_of(router.match("GET", "/api/videos/a/b")), -1);
  EXPECT_EQ(id_of(router.match("GET", "/api/videos/a/renditions/720p/x")), -1);
}

TEST(Router, IsExactAboutSlashesAndCase) {
  const auto router = sample();
  EXPECT_EQ(id_of(router.match("GET", "/api/videos/")), -1);
  EXPECT_EQ(id_of(router.match("GET", "//api/videos")), -1);
  EXPECT_EQ(id_of(router.match("GET", "/API/videos")), -1);
  EXPECT_EQ(id_of(router.match("get", "/api/videos")), -1);
  EXPECT_EQ(id_of(router.match("GET", "api/videos")), -1);
  EXPECT_EQ(id_of(router.match("GET", "")), -1);
}

TEST(Router, FirstAddedWins) {
  Router router;
  router.add("GET", "/api/videos/{id}", Tagged{1});
  router.add("GET", "/api/videos/latest", Tagged{2});
  EXPECT_EQ(id_of(router.match("GET", "/api/videos/latest")), 1);

  Router reversed;
  reversed.add("GET", "/api/videos/latest", Tagged{2});
  reversed.add("GET", "/api/videos/{id}", Tagged{1});
  EXPECT_EQ(id_of(reversed.match("GET", "/api/videos/latest")), 2);
  EXPECT_EQ(id_of(reversed.match("GET", "/api/videos/other")), 1);
  EXPECT_EQ(reversed.match("GET", "/api/videos/other").params.at("id"), "other");
}

TEST(Router, ListsTheMethodsOfAPathMatchedOnlyUnderOthers) {
  const auto router = sample();
  auto match = router.match("PUT", "/api/videos/abc");
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_EQ(match.allowed_methods, (std::vector<std::string>{"GET", "DELETE", "HEAD"}));

  match = router.match("GET", "/api/videos/abc/cancel");
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_EQ(match.allowed_methods, (std::vector<std::string>{"POST"}));

  match = router.match("DELETE", "/api/videos");
  EXPECT_EQ(match.allowed_methods, (std::vector<std::string>{"GET", "POST", "HEAD"}));
}

TEST(Router, ListsEachMethodOnce) {
  Router router;
  router.add("POST", "/x/{a}", Tagged{1});
  router.add("POST", "/x/{b}", Tagged{2});
  router.add("POST", "/x/y", Tagged{3});
  EXPECT_EQ(router.match("GET", "/x/y").allowed_methods, (std::vector<std::string>{"POST"}));
}

TEST(Router, NoMatchAtAllListsNothing) {
  const auto router = sample();
  const auto match = router.match("GET", "/nowhere");
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_TRUE(match.allowed_methods.empty());
  EXPECT_TRUE(match.params.empty());
}

TEST(Router, HeadIsServedByGet) {
  const auto router = sample();
  EXPECT_EQ(id_of(router.match("HEAD", "/api/videos/x")), 3);
  EXPECT_EQ(router.match("HEAD", "/api/videos/x/cancel").allowed_methods, (std::vector<std::string>{"POST"}));

  Router explicit_head;
  explicit_head.add("HEAD", "/f", Tagged{1});
  explicit_head.add("GET", "/f", Tagged{2});
  EXPECT_EQ(id_of(explicit_head.match("HEAD", "/f")), 1);
  EXPECT_EQ(id_of(explicit_head.match("GET", "/f")), 2);
}

TEST(Router, Fallback) {
  Router router;
  EXPECT_EQ(router.fallback(), nullptr);
  router.set_fallback(Tagged{9});
  ASSERT_NE(router.fallback(), nullptr);
  EXPECT_EQ(router.fallback()->target<Tagged>()->id, 9);
  // The fallback is the server's last resort, not a route: match() does not return it.
  EXPECT_EQ(router.match("GET", "/anything").handler, nullptr);
}

TEST(Router, RefusesPatternsThatAreNotPaths) {
  Router router;
  EXPECT_THROW(router.add("GET", "api/videos", Tagged{1}), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "", Tagged{1}), std::invalid_argument);
}

TEST(Request, HeaderIsCaseInsensitiveAndFirstWins) {
  Request request;
  request.headers = {{"Content-Type", "video/mp4"}, {"X-Twice", "first"}, {"x-twice", "second"}};
  EXPECT_EQ(request.header("content-type"), "video/mp4");
  EXPECT_EQ(request.header("CONTENT-TYPE"), "video/mp4");
  EXPECT_EQ(request.header("X-TWICE"), "first");
  EXPECT_EQ(request.header("Content-Length"), std::nullopt);
  EXPECT_EQ(request.header("Content-Typ"), std::nullopt);
}

TEST(Request, QueryParam) {
  Request request;
  request.query = {{"ids", "a,b"}, {"limit", "20"}, {"limit", "30"}, {"empty", ""}};
  EXPECT_EQ(request.query_param("ids"), "a,b");
  EXPECT_EQ(request.query_param("limit"), "20");
  EXPECT_EQ(request.query_param("empty"), "");
  EXPECT_EQ(request.query_param("before"), std::nullopt);
  EXPECT_EQ(request.query_param("LIMIT"), std::nullopt);  // parameter names are case-sensitive
}

}  // namespace
}  // namespace framepress::http
