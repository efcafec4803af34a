#include "bus/kafka/offset_tracker.h"

#include <charconv>

namespace framepress::kafka {
namespace {

// "fp1:" then comma-separated runs of finished offsets, relative to the committed offset: "2,4-6".
constexpr std::string_view metadata_prefix = "fp1:";
// A run longer than this in foreign or damaged metadata is not believed (and would cost memory).
constexpr std::int64_t max_run = 100000;

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

}  // namespace

OffsetTracker::OffsetTracker(std::int64_t committed, std::string_view metadata)
    : OffsetTracker(committed, parse_metadata(metadata, committed)) {}

OffsetTracker::OffsetTracker(std::optional<std::int64_t> start, std::set<std::int64_t> done)
    : next_fetch_(start), done_(std::move(done)) {
  if (next_fetch_) done_.erase(done_.begin(), done_.lower_bound(*next_fetch_));
}

OffsetTracker::Fetched OffsetTracker::fetched(std::int64_t offset) {
  // Below the fetch position means fetched before (or committed): librdkafka may fetch a partition again
  // from an older position after pause/resume, and such a copy must not become a second lease.
  if (next_fetch_ && offset < *next_fetch_) return Fetched::seen;
  next_fetch_ = offset + 1;
  if (done_.contains(offset)) return Fetched::done;
  open_.insert(offset);
  return Fetched::fresh;
}

void OffsetTracker::finish(std::int64_t offset) {
  if (open_.erase(offset) == 0) return;
  done_.insert(offset);
  // What lies below the lowest unfinished offset is covered by the committed offset itself.
  const std::int64_t lowest = open_.empty() ? *next_fetch_ : *open_.begin();
  done_.erase(done_.begin(), done_.lower_bound(lowest));
}

void OffsetTracker::mark_done(std::int64_t offset) {
  if (open_.contains(offset)) {
    finish(offset);
  } else if (!next_fetch_ || offset >= *next_fetch_) {
    done_.insert(offset);  // skipped when it is fetched
  }
  // Otherwise it was fetched and finished already, or lies below the commit point.
}

std::optional<OffsetTracker::Commit> OffsetTracker::commit() const {
  if (!next_fetch_) return std::nullopt;
  std::int64_t point = open_.empty() ? *next_fetch_ : *open_.begin();
  auto it = done_.lower_bound(point);
  // Offsets a previous owner finished, right at the point, need not be fetched again.
  while (it != done_.end() && *it == point) {
    ++point;
    ++it;
  }
  Commit commit{point, std::string(metadata_prefix)};
  bool first = true;
  while (it != done_.end()) {
    const std::int64_t start = *it;
    std::int64_t end = start;
    for (++it; it != done_.end() && *it == end + 1; ++it) ++end;
    std::string run = std::to_string(start - point);
    if (end != start) run += "-" + std::to_string(end - point);
    if (commit.metadata.size() + run.size() + 1 > max_metadata_bytes) break;
    if (!first) commit.metadata += ',';
    commit.metadata += run;
    first = false;
  }
  return commit;
}

std::set<std::int64_t> OffsetTracker::parse_metadata(std::string_view metadata, std::int64_t committed) {
  std::set<std::int64_t> done;
  if (metadata.substr(0, metadata_prefix.size()) != metadata_prefix) return done;
  metadata.remove_prefix(metadata_prefix.size());
  while (!metadata.empty()) {
    const auto comma = metadata.find(',');
    const std::string_view item = metadata.substr(0, comma);
    metadata = comma == std::string_view::npos ? std::string_view{} : metadata.substr(comma + 1);
    const auto dash = item.find('-');
    const auto first = parse_int(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : parse_int(item.substr(dash + 1));
    if (!first || !last || *last < *first || *last - *first > max_run) continue;
    for (std::int64_t d = *first; d <= *last; ++d) done.insert(committed + d);
  }
  return done;
}

}  // namespace framepress::kafka
