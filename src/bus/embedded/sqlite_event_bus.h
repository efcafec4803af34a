#pragma once
// The embedded event bus: the event log and the task queues of one `framepress serve` process, kept in a
// SQLite database in WAL mode. See docs/ARCHITECTURE.md ("After kill -9") for what it guarantees.

#include <cstdint>
#include <filesystem>
#include <memory>

#include "bus/event_bus.h"

namespace framepress {
namespace detail {
struct SqliteBusState;  // the connection, its lock and the wake-ups; shared with subscriptions and task sources
}

/// An EventBus in one SQLite file, for a single process.
///
/// Durability: publish() and enqueue() return once their row is committed to the write-ahead log, which
/// survives the process being killed (kill -9, a crash). After a restart every event is replayed at the
/// same position, and every task that was leased but never completed is handed out again.
///
/// Exclusivity: the constructor takes an exclusive lock on "<db>.lock", so a second process (or a second
/// instance in the same process) cannot use the same database; it gets Error(unavailable).
///
/// Thread-safety: every method may be called from any thread. Subscriptions and task sources share the
/// bus's state and keep it alive, so they may outlive the SqliteEventBus object; the database (and its
/// lock) is closed when the last of them is gone.
///
/// Failures are thrown as framepress::Error: unavailable (retryable for transient SQLite errors such as a
/// busy or full disk), internal for what can only be a bug.
class SqliteEventBus final : public EventBus {
 public:
  /// Opens (creating it and its directory when missing) the database at `db_path`, e.g.
  /// "<data>/framepress.db", migrates its schema, and queues again every task that was leased when the
  /// previous process stopped. Throws Error(unavailable) when another framepress holds the data dir, or
  /// when the database cannot be opened or was written by a newer framepress.
  explicit SqliteEventBus(const std::filesystem::path& db_path);
  ~SqliteEventBus() override;

  SqliteEventBus(const SqliteEventBus&) = delete;
  SqliteEventBus& operator=(const SqliteEventBus&) = delete;

  /// Appends `event` to the log (position = its row's sequence number, increasing across all jobs) and
  /// wakes the subscriptions. Durable when it returns.
  void publish(const Event& event) override;

  /// Starts a dispatcher thread that delivers every event from the first, in position order, one call at
  /// a time; then `caught_up` once (on the same thread) after the events present now; then each new event.
  /// An exception from `handler` is logged and delivery goes on with the next event; a row that cannot be
  /// parsed is logged and skipped. Destroying the subscription stops delivery and waits for a handler call
  /// under way (unless it is destroyed from inside its own handler, where it just stops).
  std::unique_ptr<Subscription> subscribe(EventHandler handler, std::function<void()> caught_up) override;

  /// Queues `task` on the class of its rendition, due `not_before` from now. Durable when it returns.
  /// (The default repeats the interface's: default arguments follow the static type.)
  void enqueue(const RenditionTask& task,
               std::chrono::milliseconds not_before = std::chrono::milliseconds{0}) override;

  /// Queues every task in one transaction: none is visible to a task source before all are, so the
  /// worker that takes the first finds the rest (TaskSource::next_group). Durable when it returns.
  void enqueue_all(const std::vector<RenditionTask>& tasks,
                   std::chrono::milliseconds not_before = std::chrono::milliseconds{0}) override;

  /// A source of the due tasks of `classes` (empty: every class), oldest first. Each task is leased to
  /// exactly one next() caller until it is completed, or until the bus is reopened after a crash.
  /// next_group() leases a task and its job's other due tasks of these classes under one lock hold.
  std::unique_ptr<TaskSource> tasks(const std::vector<std::string>& classes) override;

  /// Deletes the job's events and tasks. Other jobs' events keep their positions.
  void forget(const VideoId& id) override;

  /// Row counts, for tests and diagnostics.
  struct Stats {
    std::uint64_t events = 0;
    std::uint64_t queued_tasks = 0;
    std::uint64_t leased_tasks = 0;
  };
  Stats stats() const;

 private:
  std::shared_ptr<detail::SqliteBusState> state_;
};

}  // namespace framepress
