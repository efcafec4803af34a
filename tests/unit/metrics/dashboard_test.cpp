// deploy/grafana-dashboard.json charts only metrics that Metrics exposes, and charts every one of them.

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "metrics/metrics.h"

namespace framepress::metrics {
namespace {

using namespace std::chrono_literals;

nlohmann::json dashboard() {
  std::ifstream in(FRAMEPRESS_DASHBOARD_JSON);
  if (!in) throw std::runtime_error("cannot read " FRAMEPRESS_DASHBOARD_JSON);
  return nlohmann::json::parse(in);
}

/// Every "expr" (panel targets) and "query"/"definition" (template variables) string in the dashboard.
void queries(const nlohmann::json& node, std::vector<std::string>& out) {
  if (node.is_object()) {
    for (const auto& [key, child] : node.items()) {
      if ((key == "expr" || key == "definition") && child.is_string()) out.push_back(child.get<std::string>());
      if (key == "query" && child.is_string()) out.push_back(child.get<std::string>());
      if (key == "query" && child.is_object() && child.contains("query") && child["query"].is_string()) {
        out.push_back(child["query"].get<std::string>());
      }
      queries(child, out);
    }
  } else if (node.is_array()) {
    for (const auto& child : node) queries(child, out);
  }
}

/// The sample names and family names of a Metrics on which every kind of observation was made once.
void exposed(std::set<std::string>& sample_names, std::set<std::string>& family_names) {
  Metrics metrics("test", "serve");
  metrics.upload_accepted(1);
  metrics.upload_rejected();
  metrics.job_created();
  metrics.job_ended("completed");
  metrics.set_jobs({{"queued", 1}});
  metrics.http_response(500);
  auto sse = metrics.sse_client();
  metrics.start_task("hd", 1s).end(TaskOutcome::done);
  metrics.frames_encoded("hd", 10);
  metrics.encode_finished("hd", 30);
  metrics.set_consumer_lag("hd", 2);
  std::istringstream in(metrics.exposition());
  static const std::regex type(R"(^# TYPE (\S+) (\S+)$)");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, type)) {
      family_names.insert(m[1]);
      if (m[2] == "histogram") {
        for (const char* suffix : {"_bucket", "_sum", "_count"}) sample_names.insert(std::string(m[1]) + suffix);
      } else {
        sample_names.insert(m[1]);
      }
    }
  }
}

TEST(GrafanaDashboard, IsADashboardWithPanels) {
  auto d = dashboard();
  EXPECT_TRUE(d.contains("title"));
  ASSERT_TRUE(d.contains("panels"));
  EXPECT_GE(d["panels"].size(), 8u);
  std::set<int> ids;
  for (const auto& panel : d["panels"]) {
    ASSERT_TRUE(panel.contains("id")) << panel.dump();
    EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << "duplicate panel id " << panel["id"];
    EXPECT_TRUE(panel.contains("gridPos")) << panel.value("title", "?");
  }
}

TEST(GrafanaDashboard, ChartsOnlyExposedMetricsAndEveryOne) {
  std::set<std::string> sample_names;
  std::set<std::string> family_names;
  exposed(sample_names, family_names);
  std::vector<std::string> all;
  queries(dashboard(), all);
  ASSERT_FALSE(all.empty());

  static const std::regex metric_name(R"(\bframepress_[a-z0-9_]+)");
  std::set<std::string> charted_families;
  for (const auto& query : all) {
    for (std::sregex_iterator it(query.begin(), query.end(), metric_name), end; it != end; ++it) {
      const std::string name = it->str();
      EXPECT_TRUE(sample_names.count(name)) << "the dashboard queries " << name << ", which framepress does not expose ("
                                            << query << ")";
      for (const auto& family : family_names) {
        if (name == family || name == family + "_bucket" || name == family + "_sum" || name == family + "_count") {
          charted_families.insert(family);
        }
      }
    }
  }
  for (const auto& family : family_names) {
    EXPECT_TRUE(charted_families.count(family)) << family << " is exposed but not charted in the dashboard";
  }
}

}  // namespace
}  // namespace framepress::metrics
