#pragma once
// The commit bookkeeping of one task partition, as plain data (no Kafka here, so it is tested alone).
//
// A worker runs several tasks at once, and tasks of one partition finish in any order. Kafka keeps one
// committed offset per partition and a group member's consumer restarts from it, so the committed offset
// may only move up to the lowest offset that is not finished yet. The finished offsets above it ride along
// in the commit's metadata string, so that whoever takes the partition next skips exactly those and redoes
// only what was unfinished.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace framepress::kafka {

class OffsetTracker {
 public:
  /// What a fetched offset is to the caller.
  enum class Fetched {
    fresh,  ///< new: it is open (in flight) until finish()
    seen,   ///< fetched before (librdkafka fetching again after a pause): ignore it
    done,   ///< finished by a previous owner (per the commit's metadata): skip it
  };

  struct Commit {
    std::int64_t offset = 0;  ///< the next offset to hand out after a restart
    std::string metadata;     ///< the finished offsets above it, for parse_metadata()
    bool operator==(const Commit&) const = default;
  };

  /// Metadata longer than this is cut (the broker refuses over 4096 bytes by default); offsets cut off
  /// are merely done again by the next owner, which is safe.
  static constexpr std::size_t max_metadata_bytes = 3000;

  /// A partition nobody committed yet: the first fetched offset is where it starts.
  OffsetTracker() = default;
  /// A partition whose group committed `committed` with `metadata` (written by commit()).
  OffsetTracker(std::int64_t committed, std::string_view metadata);
  /// A partition where everything below `start` (when known) and the offsets of `done` are finished.
  OffsetTracker(std::optional<std::int64_t> start, std::set<std::int64_t> done);

  Fetched fetched(std::int64_t offset);
  /// The open `offset` is finished. Offsets that are not open are ignored.
  void finish(std::int64_t offset);
  /// `offset` is finished, whether it is open or not fetched yet (a task that was running here when
  /// its partition was revoked, and that completed after the partition came back).
  void mark_done(std::int64_t offset);

  /// What may be committed now; nullopt before anything is known.
  std::optional<Commit> commit() const;

  bool is_open(std::int64_t offset) const { return open_.contains(offset); }
  std::size_t open_count() const { return open_.size(); }

  /// The finished offsets at or above `committed` that `metadata` lists; empty for foreign metadata.
  static std::set<std::int64_t> parse_metadata(std::string_view metadata, std::int64_t committed);

 private:
  std::optional<std::int64_t> next_fetch_;  // one past the highest offset fetched (or the committed offset)
  std::set<std::int64_t> open_;             // fetched and not finished
  std::set<std::int64_t> done_;             // finished, at or above the lowest open offset
};

}  // namespace framepress::kafka
