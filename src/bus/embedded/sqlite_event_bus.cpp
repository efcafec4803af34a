#include "bus/embedded/sqlite_event_bus.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/error.h"

namespace framepress {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

/// Bump when the schema changes, and add the step that migrates the previous version to kMigrations.
constexpr int kSchemaVersion = 1;

/// kMigrations[v] takes a database at user_version v to v + 1.
constexpr const char* kMigrations[kSchemaVersion] = {
    // 0 → 1: the event log and the task queues.
    // AUTOINCREMENT (not a plain rowid) so that a sequence number is never reused, even after forget()
    // deletes the newest rows: positions only ever grow, which is what readers of the log rely on.
    R"sql(
      CREATE TABLE events (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        video_id TEXT NOT NULL,
        type     TEXT NOT NULL,
        body     TEXT NOT NULL
      );
      CREATE INDEX events_by_video ON events (video_id);
      CREATE TABLE tasks (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        video_id    TEXT NOT NULL,
        rendition   TEXT NOT NULL,
        class       TEXT NOT NULL,
        body        TEXT NOT NULL,
        state       TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'leased')),
        not_before  INTEGER NOT NULL,
        enqueued_at INTEGER NOT NULL
      );
      CREATE INDEX tasks_due ON tasks (state, class, not_before);
      CREATE INDEX tasks_by_video ON tasks (video_id);
    )sql",
};

/// How long a statement waits for a lock held by another connection (an operator's sqlite3 shell; our own
/// process uses one connection) before failing with SQLITE_BUSY.
constexpr int kBusyTimeoutMs = 5000;
/// Events read from the database per lock hold while a subscription catches up, so that a long replay
/// does not keep publishers waiting.
constexpr std::size_t kDeliveryBatch = 256;
/// How long a dispatcher waits before reading again after the database failed.
constexpr milliseconds kReadRetryDelay{1000};

/// How long next() waits at most in one call, so that now + wait cannot overflow (milliseconds::max()).
constexpr milliseconds kLongestWait = std::chrono::hours(24);

std::string describe_errno(int error) { return std::generic_category().message(error); }

/// The JSON text of a row. Invalid UTF-8 (a filename from some old filesystem) is replaced rather than
/// thrown: nlohmann would throw a type_error, and the event matters more than one odd character.
std::string to_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

[[noreturn]] void throw_sqlite(int rc, std::string_view what, const char* detail) {
  std::string message = "event bus: " + std::string(what) + ": " + (detail ? detail : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    // What goes away by itself: a lock held elsewhere, a full disk, a failed read or write.
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_PROTOCOL:
    case SQLITE_INTERRUPT:
      throw Error(ErrorCode::unavailable, std::move(message), "bus_error", true);
    // What needs an operator: the file cannot be opened or written, or is not a (sound) database.
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_AUTH:
      throw Error(ErrorCode::unavailable, std::move(message), "bus_error", false);
    // Anything else (a constraint, a malformed statement, misuse) is a bug of ours.
    default:
      throw Error(ErrorCode::internal, std::move(message), "bus_error", false);
  }
}

// ---- RAII over the SQLite C API ----------------------------------------------------------------------

/// One prepared statement. Not copyable: it is finalized exactly once.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) : db_(db) {
    // PERSISTENT: these statements are cached for the life of the connection.
    int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt_,
                                nullptr);
    if (rc != SQLITE_OK) throw_sqlite(rc, "prepare", sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value), "bind");
    return *this;
  }
  Statement& bind(int index, std::string_view value) {
    // SQLITE_TRANSIENT: SQLite copies the text, so the caller's string need not outlive the statement use.
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT), "bind");
    return *this;
  }

  /// Runs the statement to its next row; false when it is done.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_sqlite(rc, "step", sqlite3_errmsg(db_));
  }
  /// Runs a statement that returns no rows.
  void run() {
    while (step()) {
    }
  }

  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return data ? std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
  }

  /// Ready for the next use: no pending row, no bindings. Never fails (an error of the last step was
  /// already thrown by step()).
  void reset() noexcept {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  void check(int rc, std::string_view what) {
    if (rc != SQLITE_OK) throw_sqlite(rc, what, sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

/// One use of a cached statement: resets it when the scope ends, even by an exception, so the next use
/// starts clean and no read transaction stays open.
class Query {
 public:
  explicit Query(Statement& statement) : statement_(&statement) {}
  ~Query() { statement_->reset(); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Statement* operator->() const { return statement_; }

 private:
  Statement* statement_;
};

/// One connection and its statement cache. Not thread-safe: the bus guards it with its mutex.
class Database {
 public:
  explicit Database(const fs::path& path) {
    // NOMUTEX: the bus serialises every use of the connection with its own mutex, so SQLite's would only
    // be taken twice. EXRESCODE: extended codes in errors, e.g. SQLITE_IOERR_FSYNC rather than SQLITE_IOERR.
    int rc = sqlite3_open_v2(path.c_str(), &db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             nullptr);
    if (rc != SQLITE_OK) {
      std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      throw_sqlite(rc, "cannot open " + path.string(), detail.c_str());
    }
  }
  ~Database() {
    statements_.clear();  // every statement must be finalized before the connection can close
    sqlite3_close(db_);
  }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Runs one or more statements that return no rows (schema, pragmas, transactions).
  void exec(const char* sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
      std::string detail = error ? error : sqlite3_errstr(rc);
      sqlite3_free(error);
      throw_sqlite(rc, "exec", detail.c_str());
    }
  }

  /// The statement for `sql`, prepared on first use and kept for the life of the connection.
  Query query(const std::string& sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) it = statements_.emplace(sql, std::make_unique<Statement>(db_, sql)).first;
    return Query(*it->second);
  }

  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  std::int64_t changes() const { return sqlite3_changes64(db_); }
  sqlite3* handle() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> statements_;
};

/// BEGIN IMMEDIATE … COMMIT, rolled back when the scope ends without commit().
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
  ~Transaction() {
    // After a failed statement the transaction may already be gone; ROLLBACK then fails harmlessly.
    if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    db_.exec("COMMIT");
    done_ = true;
  }

 private:
  Database& db_;
  bool done_ = false;
};

/// An exclusive flock(2) on "<db>.lock" for the life of the bus, so that two servers never share one
/// database (SQLite would let them, and each would hand out the other's tasks). The kernel drops the lock
/// when the process dies however it dies, so a kill -9 never leaves a stale lock behind.
class DataDirLock {
 public:
  explicit DataDirLock(const fs::path& lock_path) {
    // O_CLOEXEC: a child (ffmpeg) must not inherit the descriptor, or the lock would outlive the server.
    fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      int error = errno;
      throw Error(ErrorCode::unavailable, "event bus: cannot open " + lock_path.string() + ": " + describe_errno(error),
                  "bus_error");
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      int error = errno;
      std::string holder = read_holder();
      ::close(fd_);
      auto dir = lock_path.parent_path().string();
      if (error == EWOULDBLOCK) {
        throw Error(ErrorCode::unavailable,
                    "another framepress" + (holder.empty() ? std::string() : " (pid " + holder + ")") +
                        " is using " + dir + ": stop it, or give this one another data directory",
                    "data_dir_locked");
      }
      throw Error(ErrorCode::unavailable, "event bus: cannot lock " + lock_path.string() + ": " + describe_errno(error),
                  "bus_error");
    }
    // For the message a second instance prints; the lock itself is the flock, not the content.
    auto pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
      int error = errno;
      spdlog::warn("event bus: cannot write the pid to {}: {}", lock_path.string(), describe_errno(error));
    }
  }
  ~DataDirLock() { ::close(fd_); }  // closing the descriptor releases the lock
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  std::string read_holder() const {
    char buffer[32];
    auto n = ::pread(fd_, buffer, sizeof buffer - 1, 0);
    if (n <= 0) return {};
    std::string text(buffer, static_cast<std::size_t>(n));
    text.erase(std::find_if(text.begin(), text.end(), [](char c) { return c < '0' || c > '9'; }), text.end());
    return text;
  }

  int fd_ = -1;
};

}  // namespace

// ---- the shared state ----------------------------------------------------------------------------------

namespace detail {

struct SqliteBusState {
  explicit SqliteBusState(const fs::path& db_path) : lock(fs::path(db_path.string() + ".lock")), db(db_path) {
    std::lock_guard guard(mutex);
    configure();
    migrate();
    // Whoever leased these is gone: only one process uses the database (the lock), and it just started.
    // This is the recovery after a kill -9: the interrupted encodes are handed out again.
    db.query("UPDATE tasks SET state = 'queued' WHERE state = 'leased'")->run();
    if (auto requeued = db.changes(); requeued > 0) {
      spdlog::info("event bus: {} task(s) leased by a previous run are queued again", requeued);
    }
    auto q = db.query("SELECT coalesce(max(seq), 0) FROM events");
    q->step();
    last_seq = static_cast<LogPosition>(q->int64(0));
  }

  void configure() {
    // WAL: readers never block the writer, and a commit appends to the log instead of rewriting pages.
    auto q = db.query("PRAGMA journal_mode = WAL");
    if (!q->step() || q->text(0) != "wal") {
      throw Error(ErrorCode::unavailable,
                  "event bus: the database cannot use write-ahead logging (is the data dir on a network "
                  "filesystem?)",
                  "bus_error");
    }
    // NORMAL in WAL mode writes each commit to the WAL file before COMMIT returns but fsyncs only at
    // checkpoints. A committed row is then in the kernel's page cache, which outlives the process: it
    // survives kill -9 and crashes of framepress, the durability the architecture promises. Only a power
    // loss or kernel crash can drop the last commits (never corrupting the database); FULL would add a
    // disk flush to every progress event for that.
    db.exec("PRAGMA synchronous = NORMAL");
    // Nothing relies on foreign keys; spelled out so a build default cannot change behaviour.
    db.exec("PRAGMA foreign_keys = OFF");
    sqlite3_busy_timeout(db.handle(), kBusyTimeoutMs);
  }

  void migrate() {
    auto read_version = [&] {
      auto q = db.query("PRAGMA user_version");
      q->step();
      return static_cast<int>(q->int64(0));
    };
    int version = read_version();
    if (version > kSchemaVersion) {
      throw Error(ErrorCode::unavailable,
                  "event bus: the database has schema version " + std::to_string(version) + " but this framepress "
                      "knows up to " + std::to_string(kSchemaVersion) + ": it was written by a newer framepress",
                  "bus_error");
    }
    if (version == kSchemaVersion) return;
    Transaction transaction(db);
    for (int v = version; v < kSchemaVersion; ++v) db.exec(kMigrations[v]);
    db.exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    transaction.commit();
    spdlog::info("event bus: schema migrated from version {} to {}", version, kSchemaVersion);
  }

  // Declaration order matters: the lock is taken before the database opens and released after it closes.
  DataDirLock lock;
  std::mutex mutex;
  Database db;                      // guarded by mutex
  LogPosition last_seq = 0;         // guarded by mutex: the newest position in the log
  std::condition_variable events;   // with mutex: a publish, or a subscription stopping
  std::condition_variable tasks;    // with mutex: an enqueue
};

}  // namespace detail

namespace {

using State = detail::SqliteBusState;

// ---- subscriptions ---------------------------------------------------------------------------------------

class SqliteSubscription final : public Subscription {
 public:
  SqliteSubscription(std::shared_ptr<State> state, EventBus::EventHandler handler, std::function<void()> caught_up)
      : control_(std::make_shared<Control>()) {
    control_->state = std::move(state);
    LogPosition caught_up_at;
    {
      std::lock_guard guard(control_->state->mutex);
      caught_up_at = control_->state->last_seq;
    }
    thread_ = std::thread(&SqliteSubscription::dispatch, control_, std::move(handler), std::move(caught_up),
                          caught_up_at);
  }

  ~SqliteSubscription() override {
    {
      // Set under the mutex so that a dispatcher about to wait cannot miss it.
      std::lock_guard guard(control_->state->mutex);
      control_->stop = true;
    }
    control_->state->events.notify_all();
    if (thread_.get_id() == std::this_thread::get_id()) {
      // Destroyed from inside its own handler: joining would wait for ourselves. The thread owns what it
      // uses (control_), and it stops as soon as the handler returns.
      thread_.detach();
    } else {
      thread_.join();
    }
  }

 private:
  struct Control {
    std::shared_ptr<State> state;
    std::atomic<bool> stop{false};  // written under state->mutex; also read without it between events
  };

  static void dispatch(std::shared_ptr<Control> control, EventBus::EventHandler handler,
                       std::function<void()> caught_up, LogPosition caught_up_at) {
    State& state = *control->state;
    LogPosition cursor = 0;  // every row at or below it has been delivered (or no longer exists)
    bool announced = false;
    std::vector<std::pair<LogPosition, std::string>> rows;
    for (;;) {
      rows.clear();
      {
        std::unique_lock lock(state.mutex);
        state.events.wait(lock, [&] {
          return control->stop || state.last_seq > cursor || (!announced && cursor >= caught_up_at);
        });
        if (control->stop) return;
        // Every row up to `upto` is committed, so a batch shorter than asked means none is left below it
        // (forget() may have deleted some): the cursor moves past the gap.
        LogPosition upto = state.last_seq;
        try {
          auto q = state.db.query("SELECT seq, body FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3");
          q->bind(1, static_cast<std::int64_t>(cursor))
              .bind(2, static_cast<std::int64_t>(upto))
              .bind(3, static_cast<std::int64_t>(kDeliveryBatch));
          while (q->step()) rows.emplace_back(static_cast<LogPosition>(q->int64(0)), q->text(1));
        } catch (const std::exception& e) {
          spdlog::error("event bus: cannot read the event log (trying again): {}", e.what());
          rows.clear();
          state.events.wait_for(lock, kReadRetryDelay, [&] { return control->stop.load(); });
          continue;
        }
        cursor = rows.size() < kDeliveryBatch ? upto : rows.back().first;
      }
      // Handlers run outside the lock: they may publish, enqueue or take a while.
      for (auto& [position, body] : rows) {
        if (control->stop) return;
        deliver(handler, position, body);
      }
      if (!announced && cursor >= caught_up_at) {
        announced = true;
        if (caught_up) {
          try {
            caught_up();
          } catch (const std::exception& e) {
            spdlog::error("event bus: the caught-up callback failed: {}", e.what());
          }
        }
      }
    }
  }

  static void deliver(const EventBus::EventHandler& handler, LogPosition position, const std::string& body) {
    Event event;
    try {
      event = event_from_json(nlohmann::json::parse(body));
    } catch (const std::exception& e) {
      // A row this version cannot read (written by a newer framepress, or damaged): the rest of the log
      // is still worth delivering.
      spdlog::warn("event bus: skipping event {} that cannot be parsed: {}", position, e.what());
      return;
    }
    try {
      handler(position, event);
    } catch (const std::exception& e) {
      spdlog::error("event bus: a subscriber failed on event {} ({} of {}): {}", position, event_type(event),
                    event.video_id.str(), e.what());
    } catch (...) {
      spdlog::error("event bus: a subscriber failed on event {} ({} of {}) with an unknown exception", position,
                    event_type(event), event.video_id.str());
    }
  }

  std::shared_ptr<Control> control_;
  std::thread thread_;
};

// ---- task sources ----------------------------------------------------------------------------------------

class SqliteTaskSource final : public TaskSource {
 public:
  SqliteTaskSource(std::shared_ptr<State> state, std::vector<std::string> classes)
      : state_(std::move(state)), classes_(std::move(classes)) {
    std::sort(classes_.begin(), classes_.end());
    classes_.erase(std::unique(classes_.begin(), classes_.end()), classes_.end());
    // ?1 is the current time; the classes follow from ?2.
    std::string filter;
    if (!classes_.empty()) {
      filter = " AND class IN (";
      for (std::size_t i = 0; i < classes_.size(); ++i) filter += (i ? ", ?" : "?") + std::to_string(i + 2);
      filter += ")";
    }
    // One statement, so the choice and the lease cannot be separated (the mutex makes that true anyway).
    lease_sql_ =
        "UPDATE tasks SET state = 'leased' WHERE id = (SELECT id FROM tasks WHERE state = 'queued' AND "
        "not_before <= ?1" + filter + " ORDER BY id LIMIT 1) RETURNING id, body, enqueued_at";
    next_due_sql_ = "SELECT min(not_before) FROM tasks WHERE state = 'queued'" + filter;
    const std::string video = "?" + std::to_string(classes_.size() + 2);
    const std::string limit = "?" + std::to_string(classes_.size() + 3);
    siblings_sql_ =
        "UPDATE tasks SET state = 'leased' WHERE id IN (SELECT id FROM tasks WHERE state = 'queued' AND "
        "not_before <= ?1" + filter + " AND video_id = " + video + " ORDER BY id LIMIT " + limit +
        ") RETURNING id, body, enqueued_at";
  }

  std::optional<TaskLease> next(milliseconds wait) override {
    std::unique_lock lock(state_->mutex);
    return next_locked(lock, wait);
  }

  std::vector<TaskLease> next_group(milliseconds wait, std::size_t max_siblings) override {
    std::vector<TaskLease> group;
    // One lock hold for the first task and its siblings: a second worker woken by the same enqueue
    // cannot lease part of the job in between.
    std::unique_lock lock(state_->mutex);
    auto first = next_locked(lock, wait);
    if (!first) return group;
    group.push_back(std::move(*first));
    for (auto& sibling : claim_locked(group.front(), max_siblings)) group.push_back(std::move(sibling));
    return group;
  }

  std::vector<TaskLease> claim_siblings(const TaskLease& first, std::size_t max) override {
    std::lock_guard guard(state_->mutex);
    return claim_locked(first, max);
  }

  void complete(const TaskLease& lease) override {
    std::lock_guard guard(state_->mutex);
    state_->db.query("DELETE FROM tasks WHERE id = ?1")->bind(1, static_cast<std::int64_t>(lease.handle)).run();
    if (state_->db.changes() == 0) {
      spdlog::debug("event bus: completed task {} was already gone (its job was deleted)", lease.handle);
    }
  }

 private:
  // Called with the mutex held (by `lock`), which it releases while it waits.
  std::optional<TaskLease> next_locked(std::unique_lock<std::mutex>& lock, milliseconds wait) {
    auto deadline = std::chrono::steady_clock::now() + std::clamp(wait, milliseconds{0}, kLongestWait);
    for (;;) {
      if (auto lease = try_lease()) return lease;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return std::nullopt;
      auto wake = deadline;
      if (auto due = next_due()) {
        // not_before is wall-clock time (it must survive a restart); the wait is on the steady clock.
        wake = std::min(wake, now + std::max(milliseconds{*due - wall_ms()}, milliseconds{1}));
      }
      // An enqueue wakes us earlier; the loop then looks again.
      state_->tasks.wait_until(lock, wake);
    }
  }

  // Called with the mutex held.
  std::vector<TaskLease> claim_locked(const TaskLease& first, std::size_t max) {
    std::vector<TaskLease> leases;
    if (max == 0) return leases;
    std::vector<std::pair<std::int64_t, std::pair<std::string, std::int64_t>>> rows;
    {
      auto q = state_->db.query(siblings_sql_);
      q->bind(1, wall_ms());
      bind_classes(q);
      q->bind(static_cast<int>(classes_.size() + 2), first.task.video_id.str());
      q->bind(static_cast<int>(classes_.size() + 3), static_cast<std::int64_t>(max));
      while (q->step()) rows.push_back({q->int64(0), {q->text(1), q->int64(2)}});
    }
    for (auto& [id, row] : rows) {
      try {
        TaskLease lease;
        lease.task = task_from_json(nlohmann::json::parse(row.first));
        lease.handle = static_cast<std::uint64_t>(id);
        lease.enqueued_at = std::chrono::system_clock::time_point(milliseconds{row.second});
        leases.push_back(std::move(lease));
      } catch (const std::exception& e) {
        spdlog::error("event bus: dropping task {} that cannot be parsed: {}", id, e.what());
        state_->db.query("DELETE FROM tasks WHERE id = ?1")->bind(1, id).run();
      }
    }
    std::sort(leases.begin(), leases.end(), [](const TaskLease& a, const TaskLease& b) { return a.handle < b.handle; });
    return leases;
  }

  void bind_classes(const Query& q) const {
    for (std::size_t i = 0; i < classes_.size(); ++i) q->bind(static_cast<int>(i + 2), classes_[i]);
  }

  // Called with the mutex held.
  std::optional<TaskLease> try_lease() {
    for (;;) {
      std::int64_t id = 0;
      std::int64_t enqueued_at = 0;
      std::string body;
      {
        auto q = state_->db.query(lease_sql_);
        q->bind(1, wall_ms());
        bind_classes(q);
        if (!q->step()) return std::nullopt;
        id = q->int64(0);
        body = q->text(1);
        enqueued_at = q->int64(2);
        q->run();  // finish the UPDATE … RETURNING before the next statement
      }
      try {
        TaskLease lease;
        lease.task = task_from_json(nlohmann::json::parse(body));
        lease.handle = static_cast<std::uint64_t>(id);
        lease.enqueued_at = std::chrono::system_clock::time_point(milliseconds{enqueued_at});
        return lease;
      } catch (const std::exception& e) {
        // It could never run: drop it rather than hand it out (and fail on it) after every restart.
        spdlog::error("event bus: dropping task {} that cannot be parsed: {}", id, e.what());
        state_->db.query("DELETE FROM tasks WHERE id = ?1")->bind(1, id).run();
      }
    }
  }

  // Called with the mutex held. The earliest not_before among the queued tasks of these classes.
  std::optional<std::int64_t> next_due() {
    auto q = state_->db.query(next_due_sql_);
    bind_classes(q);
    if (!q->step() || q->is_null(0)) return std::nullopt;
    return q->int64(0);
  }

  std::shared_ptr<State> state_;
  std::vector<std::string> classes_;
  std::string lease_sql_;
  std::string next_due_sql_;
  std::string siblings_sql_;
};

}  // namespace

// ---- the bus ---------------------------------------------------------------------------------------------

SqliteEventBus::SqliteEventBus(const fs::path& db_path) {
  if (auto dir = db_path.parent_path(); !dir.empty()) {
    std::error_code error;
    fs::create_directories(dir, error);
    if (error) {
      throw Error(ErrorCode::unavailable, "event bus: cannot create " + dir.string() + ": " + error.message(),
                  "bus_error");
    }
  }
  state_ = std::make_shared<State>(db_path);
}

SqliteEventBus::~SqliteEventBus() = default;

void SqliteEventBus::publish(const Event& event) {
  auto body = to_text(to_json(event));
  {
    std::lock_guard guard(state_->mutex);
    state_->db.query("INSERT INTO events (video_id, type, body) VALUES (?1, ?2, ?3)")
        ->bind(1, event.video_id.str())
        .bind(2, event_type(event))
        .bind(3, body)
        .run();
    state_->last_seq = static_cast<LogPosition>(state_->db.last_insert_rowid());
  }
  state_->events.notify_all();
}

std::unique_ptr<Subscription> SqliteEventBus::subscribe(EventHandler handler, std::function<void()> caught_up) {
  return std::make_unique<SqliteSubscription>(state_, std::move(handler), std::move(caught_up));
}

void SqliteEventBus::enqueue(const RenditionTask& task, milliseconds not_before) { enqueue_all({task}, not_before); }

void SqliteEventBus::enqueue_all(const std::vector<RenditionTask>& tasks, milliseconds not_before) {
  if (tasks.empty()) return;
  std::vector<std::string> bodies;
  bodies.reserve(tasks.size());
  for (const auto& task : tasks) bodies.push_back(to_text(to_json(task)));
  auto now = wall_ms();
  {
    std::lock_guard guard(state_->mutex);
    // One transaction: the rows become visible (and durable) together, and cost one WAL commit.
    Transaction transaction(state_->db);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      state_->db
          .query(
              "INSERT INTO tasks (video_id, rendition, class, body, state, not_before, enqueued_at) "
              "VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6)")
          ->bind(1, tasks[i].video_id.str())
          .bind(2, tasks[i].rendition.name)
          .bind(3, tasks[i].rendition.worker_class)
          .bind(4, bodies[i])
          .bind(5, now + std::max(not_before, milliseconds{0}).count())
          .bind(6, now)
          .run();
    }
    transaction.commit();
  }
  // Every waiting source looks again: the tasks may be theirs, or due earlier than what they wait for.
  state_->tasks.notify_all();
}

std::unique_ptr<TaskSource> SqliteEventBus::tasks(const std::vector<std::string>& classes) {
  return std::make_unique<SqliteTaskSource>(state_, classes);
}

void SqliteEventBus::forget(const VideoId& id) {
  std::lock_guard guard(state_->mutex);
  Transaction transaction(state_->db);
  state_->db.query("DELETE FROM events WHERE video_id = ?1")->bind(1, id.str()).run();
  auto events = state_->db.changes();
  state_->db.query("DELETE FROM tasks WHERE video_id = ?1")->bind(1, id.str()).run();
  auto tasks = state_->db.changes();
  transaction.commit();
  spdlog::debug("event bus: forgot {} ({} events, {} tasks)", id.str(), events, tasks);
}

SqliteEventBus::Stats SqliteEventBus::stats() const {
  std::lock_guard guard(state_->mutex);
  Stats stats;
  {
    auto q = state_->db.query("SELECT count(*) FROM events");
    q->step();
    stats.events = static_cast<std::uint64_t>(q->int64(0));
  }
  auto q = state_->db.query(
      "SELECT coalesce(sum(state = 'queued'), 0), coalesce(sum(state = 'leased'), 0) FROM tasks");
  q->step();
  stats.queued_tasks = static_cast<std::uint64_t>(q->int64(0));
  stats.leased_tasks = static_cast<std::uint64_t>(q->int64(1));
  return stats;
}

}  // namespace framepress
