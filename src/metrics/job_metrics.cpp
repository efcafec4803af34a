#include "metrics/job_metrics.h"

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace framepress::metrics {

void count_job_events(Metrics& metrics, const std::vector<VisibleEvent>& visible) {
  for (const auto& v : visible) {
    std::visit(
        [&](const auto& payload) {
          using Payload = std::decay_t<decltype(payload)>;
          if constexpr (std::is_same_v<Payload, JobCreated>) {
            metrics.job_created();
          } else if constexpr (std::is_same_v<Payload, JobCompleted>) {
            metrics.job_ended("completed");
          } else if constexpr (std::is_same_v<Payload, JobFailed>) {
            metrics.job_ended("failed");
          } else if constexpr (std::is_same_v<Payload, JobCancelled>) {
            metrics.job_ended("cancelled");
          } else if constexpr (std::is_same_v<Payload, JobDeleted>) {
            metrics.job_ended("deleted");
          }
        },
        v.event.payload);
  }
}

void set_jobs_from(Metrics& metrics, const JobBook& book) {
  std::vector<std::pair<std::string, std::int64_t>> counts;
  for (const auto& [state, count] : book.count_by_state()) {
    counts.emplace_back(std::string(to_string(state)), static_cast<std::int64_t>(count));
  }
  metrics.set_jobs(counts);
}

}  // namespace framepress::metrics
