// Fault tests (ctest label `faults`, `make test-faults`): many small jobs while processes are killed with
// SIGKILL at random moments and started again, then every job must have completed, no rendition may have
// been stored or reported twice, and SSE clients that reconnected with Last-Event-ID must have missed no
// event. The random choices come from one seed, printed first (FRAMEPRESS_FAULT_SEED=N repeats a run).
//
// Distributed: `framepress api` and three `framepress worker` processes over a real Kafka broker and a real
// SeaweedFS; the faults hit a worker, the API, the broker and the S3 store. Embedded: one `framepress
// serve` (API and workers in one process) killed and restarted. And a worker whose scratch disk is full
// fails its task cleanly, which is then retried on another worker.

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "e2e/e2e_support.h"

namespace framepress::e2e {
namespace {

using testing::TempDir;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kJobs = 20;
const std::string kRenditions = "144p,240p";
constexpr std::size_t kRenditionsPerJob = 2;

bool is_terminal(const std::string& event) {
  return event == "completed" || event == "failed" || event == "cancelled" || event == "deleted";
}

std::uint64_t fault_seed() {
  if (const char* given = std::getenv("FRAMEPRESS_FAULT_SEED"); given != nullptr && *given != '\0') {
    return std::stoull(given);
  }
  return std::random_device{}();
}

std::chrono::milliseconds random_pause(std::mt19937_64& rng, int min_ms, int max_ms) {
  return std::chrono::milliseconds(std::uniform_int_distribution<int>(min_ms, max_ms)(rng));
}

/// Where the API answers now: a restarted API process listens on a new port.
class ApiAddress {
 public:
  void set(std::string url) {
    std::lock_guard lock(mutex_);
    url_ = std::move(url);
  }
  std::string get() const {
    std::lock_guard lock(mutex_);
    return url_;
  }

 private:
  mutable std::mutex mutex_;
  std::string url_;
};

/// An SSE client of one job that behaves as a browser's EventSource: whenever the stream breaks it connects
/// again (to wherever the API is now), sending the id of the last event it got as Last-Event-ID, until the
/// job's terminal event.
class ReconnectingClient {
 public:
  ReconnectingClient(const ApiAddress& api, std::string id) : api_(api), id_(std::move(id)) {
    thread_ = std::thread([this] { run(); });
  }
  ~ReconnectingClient() {
    give_up_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  const std::string& id() const { return id_; }
  /// Whether an encode of the job has started and the job has not ended, as far as this client knows now.
  bool in_flight() const { return started_.load() && !ended_.load(); }
  // Read after join():
  std::vector<SseEvent> events;               // what it received, snapshots left out
  std::optional<std::uint64_t> snapshot_id;   // the id of its first snapshot: what it knew before `events`
  bool first_snapshot_after_the_end = false;  // its first snapshot came without an id: the job had ended
  bool ended = false;                         // it received the terminal event
  int connections = 0;

 private:
  void run() {
    const auto deadline = Clock::now() + 420s;
    std::string last_id;
    bool snapshot_seen = false;
    while (!ended && !give_up_.load() && Clock::now() < deadline) {
      HeaderList headers;
      if (!last_id.empty()) headers.push_back("Last-Event-ID: " + last_id);
      auto result = read_sse(api_.get() + "/api/videos/" + id_ + "/events", headers,
                             [this](const SseEvent& e) {
                               if (e.event == "started") started_.store(true);
                               if (is_terminal(e.event)) ended_.store(true);
                               return is_terminal(e.event) || give_up_.load();
                             },
                             120s);
      if (result.status == 200) ++connections;
      for (const auto& e : result.events) {
        if (!e.id.empty()) last_id = e.id;
        if (e.event == "snapshot") {
          // A client that gets through only after the end gets a snapshot without an id (the whole final
          // state) and the terminal event: that is all it is owed.
          if (!snapshot_seen && !e.id.empty()) snapshot_id = std::stoull(e.id);
          if (!snapshot_seen && e.id.empty()) first_snapshot_after_the_end = true;
          snapshot_seen = true;
          continue;
        }
        events.push_back(e);
        if (is_terminal(e.event)) ended = true;
      }
      if (result.status == 204) ended = true;  // nothing after the last event it got: that was the end
      if (!ended) std::this_thread::sleep_for(200ms);
    }
  }

  const ApiAddress& api_;
  std::string id_;
  std::atomic<bool> give_up_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> ended_{false};
  std::thread thread_;
};

/// What a fault run found.
struct Outcome {
  std::map<std::string, int> faults;  // by kind
  int completed = 0;
  int duplicates = 0;       // rendition.done seen more than once for one rendition, and extra stored objects
  int lost_events = 0;      // events of the full replay a reconnecting client did not get
  int reconnections = 0;
  int in_flight_when_hit = 0;  // jobs started and not ended at the moments of the faults, summed
  int late_clients = 0;        // clients that got through only after their job had ended

  void print(std::uint64_t seed) const {
    int total = 0;
    std::string kinds;
    for (const auto& [kind, n] : faults) {
      total += n;
      kinds += (kinds.empty() ? "" : ", ") + kind + " " + std::to_string(n);
    }
    std::printf("\n  fault run (seed %llu)\n", static_cast<unsigned long long>(seed));
    std::printf("  %-22s %d (%s)\n", "faults injected", total, kinds.c_str());
    std::printf("  %-22s %d of %d\n", "jobs completed", completed, kJobs);
    std::printf("  %-22s %d\n", "duplicates", duplicates);
    std::printf("  %-22s %d\n", "lost events", lost_events);
    std::printf("  %-22s %d\n", "jobs hit in flight", in_flight_when_hit);
    std::printf("  %-22s %d\n", "SSE reconnections", reconnections);
    std::printf("  %-22s %d\n\n", "clients in after end", late_clients);
    std::fflush(stdout);
  }
};

/// A deployment the fault run drives: it can be uploaded to, hurt, and asked what it stored.
class Deployment {
 public:
  virtual ~Deployment() = default;
  /// The faults to inject, in the order the run shuffles.
  virtual std::vector<std::string> fault_plan() const = 0;
  /// Kills the part `kind` names with SIGKILL, waits a moment, starts it again and waits until it is up.
  virtual void inject(const std::string& kind, std::mt19937_64& rng) = 0;
  /// The names of the rendition objects stored for job `id`.
  virtual std::vector<std::string> stored_renditions(const std::string& id) = 0;
  virtual std::string logs() const = 0;
  ApiAddress api;
};

std::string upload_until_accepted(const ApiAddress& api, const std::filesystem::path& clip) {
  // A part that was just restarted may still refuse for a moment (503 while the producer reconnects).
  HttpResponse response;
  for (auto until = Clock::now() + 120s; Clock::now() < until; std::this_thread::sleep_for(500ms)) {
    response = upload_file(api.get() + "/api/videos?renditions=" + kRenditions, clip);
    if (response.status == 201) return response.json()["id"];
    if (response.status != 0 && response.status != 503 && response.status != 500) break;
  }
  ADD_FAILURE() << "upload refused: " << response.status << " " << response.body;
  return "";
}

/// Uploads kJobs jobs in waves, a fault after each wave at a random moment, each job followed by a
/// reconnecting SSE client; then checks every job against the full replay of its events.
Outcome run_under_faults(Deployment& deployment, const std::filesystem::path& clip, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> plan = deployment.fault_plan();
  std::shuffle(plan.begin(), plan.end(), rng);
  std::cout << "fault run: seed " << seed << " (FRAMEPRESS_FAULT_SEED=" << seed << " repeats it), plan:";
  for (const auto& kind : plan) std::cout << " " << kind;
  std::cout << std::endl;

  Outcome outcome;
  std::vector<std::unique_ptr<ReconnectingClient>> clients;
  const std::size_t per_wave = (kJobs + plan.size() - 1) / plan.size();
  for (const auto& kind : plan) {
    for (std::size_t i = 0; i < per_wave && clients.size() < static_cast<std::size_t>(kJobs); ++i) {
      const std::string id = upload_until_accepted(deployment.api, clip);
      if (id.empty()) return outcome;
      clients.push_back(std::make_unique<ReconnectingClient>(deployment.api, id));
    }
    // A random moment while work is under way: once an encode of the wave has started, a little later.
    const std::size_t wave_begin = clients.size() - std::min(clients.size(), per_wave);
    for (auto until = Clock::now() + 60s; Clock::now() < until; std::this_thread::sleep_for(20ms)) {
      if (std::any_of(clients.begin() + static_cast<std::ptrdiff_t>(wave_begin), clients.end(),
                      [](const auto& c) { return c->in_flight(); }))
        break;
    }
    std::this_thread::sleep_for(random_pause(rng, 0, 400));
    const auto hit = std::count_if(clients.begin(), clients.end(), [](const auto& c) { return c->in_flight(); });
    outcome.in_flight_when_hit += static_cast<int>(hit);
    std::cout << "fault: kill -9 " << kind << " (" << hit << " job(s) in flight)" << std::endl;
    deployment.inject(kind, rng);
    ++outcome.faults[kind];
  }
  while (clients.size() < static_cast<std::size_t>(kJobs)) {
    const std::string id = upload_until_accepted(deployment.api, clip);
    if (id.empty()) return outcome;
    clients.push_back(std::make_unique<ReconnectingClient>(deployment.api, id));
  }
  for (auto& client : clients) client->join();

  for (auto& client : clients) {
    const std::string& id = client->id();
    outcome.reconnections += std::max(0, client->connections - 1);
    auto job = http_get(deployment.api.get() + "/api/videos/" + id);
    const bool completed = job.status == 200 && job.json()["state"] == "completed";
    if (completed) ++outcome.completed;
    EXPECT_TRUE(completed) << id << ": " << job.body;
    EXPECT_TRUE(client->ended) << id << ": the client never got the terminal event";

    // The whole log of the job, as a new client would read it from the start.
    auto replay = read_sse(deployment.api.get() + "/api/videos/" + id + "/events", {"Last-Event-ID: 0"},
                           [](const SseEvent&) { return false; }, 60s);
    std::map<std::string, int> done;
    std::set<std::string> expected;
    for (const auto& e : replay.events) {
      if (e.event == "rendition") ++done[e.json()["rendition"].get<std::string>()];
      if (e.event == "progress" || e.event == "snapshot") continue;  // progress is coalesced on reconnection
      if (client->snapshot_id && std::stoull(e.id) <= *client->snapshot_id) continue;  // known from its snapshot
      if (client->first_snapshot_after_the_end && !is_terminal(e.event)) continue;    // likewise
      expected.insert(e.id + " " + e.event);
    }
    std::set<std::string> received;
    for (const auto& e : client->events) {
      if (e.event != "progress") received.insert(e.id + " " + e.event);
    }
    for (const auto& e : expected) {
      if (!received.count(e)) {
        ++outcome.lost_events;
        std::string got;
        for (const auto& r : received) got += " [" + r + "]";
        ADD_FAILURE() << id << ": the reconnecting client missed event " << e << " (its first snapshot: "
                      << (client->snapshot_id ? "id " + std::to_string(*client->snapshot_id)
                                              : client->first_snapshot_after_the_end ? "after the end" : "none")
                      << ", " << client->connections << " connection(s), received" << got << ")";
      }
    }
    if (client->first_snapshot_after_the_end) ++outcome.late_clients;
    EXPECT_EQ(done.size(), kRenditionsPerJob) << id;
    for (const auto& [name, count] : done) {
      EXPECT_EQ(count, 1) << id << " " << name << " reported done " << count << " times";
      outcome.duplicates += std::max(0, count - 1);
    }
    const auto stored = deployment.stored_renditions(id);
    EXPECT_EQ(stored, (std::vector<std::string>{"144p.mp4", "240p.mp4"})) << id;
    if (stored.size() > kRenditionsPerJob) outcome.duplicates += static_cast<int>(stored.size() - kRenditionsPerJob);
  }
  return outcome;
}

// ---- distributed --------------------------------------------------------------------------------

class DistributedDeployment final : public Deployment {
 public:
  explicit DistributedDeployment(const std::filesystem::path& dir) : dir_(dir) {
    kafka = std::make_unique<ScriptService>("kafka.sh", dir_ / "kafka");
    s3 = std::make_unique<ScriptService>("seaweedfs.sh", dir_ / "s3");
    environment = {"FRAMEPRESS_S3_ACCESS_KEY=" + (*s3)["S3_ACCESS_KEY"],
                   "FRAMEPRESS_S3_SECRET_KEY=" + (*s3)["S3_SECRET_KEY"]};
    common = {"--bus", "kafka://" + (*kafka)["KAFKA_BOOTSTRAP"],
              "--storage", "s3://videos?endpoint=" + (*s3)["S3_ENDPOINT"] + "&presign=false",
              "--kafka-session-timeout", "6s", "--kafka-partitions", "12", "--encoder-preset", "ultrafast"};
    api_process = start("api", "api", {});
    api.set(api_process->url());
  }
  ~DistributedDeployment() override {
    workers.clear();
    api_process.reset();
    s3.reset();
    kafka.reset();
  }

  std::unique_ptr<FramepressProcess> start(const std::string& role, const std::string& name,
                                           std::vector<std::string> extra) {
    auto args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<FramepressProcess>(role, dir_ / name, args, environment);
  }
  FramepressProcess& add_worker(const std::string& name, std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--classes", "sd,hd,uhd", "--concurrency", "1"});
    workers.push_back(start("worker", name, extra));
    return *workers.back();
  }

  std::vector<std::string> fault_plan() const override {
    return {"worker", "worker", "worker", "api", "api", "broker", "store", "store"};
  }

  void inject(const std::string& kind, std::mt19937_64& rng) override {
    const auto down = random_pause(rng, 200, 1500);
    if (kind == "worker") {
      auto& victim = *workers[std::uniform_int_distribution<std::size_t>(0, workers.size() - 1)(rng)];
      victim.kill_hard();
      std::this_thread::sleep_for(down);
      victim.restart();
    } else if (kind == "api") {
      api_process->kill_hard();
      std::this_thread::sleep_for(down);
      api_process->restart();
      api.set(api_process->url());
    } else if (kind == "broker") {
      kafka->kill();
      std::this_thread::sleep_for(down);
      start_again(*kafka, "the broker");
    } else if (kind == "store") {
      s3->kill();
      std::this_thread::sleep_for(down);
      start_again(*s3, "the S3 store");
    } else {
      throw std::logic_error("no fault " + kind);
    }
  }

  // As a supervisor would (systemd's Restart=on-failure): a server that fails to come up right after a
  // crash is started once more. What went wrong is printed, so a pattern would show.
  static void start_again(ScriptService& service, const std::string& what) {
    for (int attempt = 1;; ++attempt) {
      try {
        service.restart();
        return;
      } catch (const std::runtime_error& e) {
        if (attempt == 3) throw;
        std::cout << what << " did not start again (attempt " << attempt << "); once more:\n" << e.what() << std::endl;
      }
    }
  }

  std::vector<std::string> stored_renditions(const std::string& id) override {
    // A ListObjectsV2 of the job's renditions, signed by curl (SigV4; the prefix's '/' percent-encoded, as
    // the signature's canonical query wants them).
    auto listing = testing::run_process({"curl", "-sS", "--fail-with-body", "--aws-sigv4", "aws:amz:us-east-1:s3",
                                         "--user", (*s3)["S3_ACCESS_KEY"] + ":" + (*s3)["S3_SECRET_KEY"],
                                         (*s3)["S3_ENDPOINT"] + "/videos?list-type=2&prefix=videos%2F" + id + "%2Frenditions%2F"});
    EXPECT_EQ(listing.exit_code, 0) << listing.err << listing.out;
    std::vector<std::string> names;
    const std::string prefix = "<Key>videos/" + id + "/renditions/";
    for (auto at = listing.out.find(prefix); at != std::string::npos; at = listing.out.find(prefix, at + 1)) {
      const auto begin = at + prefix.size();
      names.push_back(listing.out.substr(begin, listing.out.find("</Key>", begin) - begin));
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string logs() const override {
    std::string text = "---- api log ----\n" + api_process->log();
    for (const auto& w : workers) text += "\n---- worker log ----\n" + w->log();
    return text;
  }

  std::filesystem::path dir_;
  std::unique_ptr<ScriptService> kafka;
  std::unique_ptr<ScriptService> s3;
  std::vector<std::string> environment;
  std::vector<std::string> common;
  std::unique_ptr<FramepressProcess> api_process;
  std::vector<std::unique_ptr<FramepressProcess>> workers;
};

// ---- embedded -----------------------------------------------------------------------------------

class EmbeddedDeployment final : public Deployment {
 public:
  explicit EmbeddedDeployment(const std::filesystem::path& dir)
      : data_(dir / "serve"), server(data_, {"--encoder-preset", "ultrafast", "--workers", "2"}) {
    api.set(server.url());
  }
  // API and workers are one process: killing it is both faults at once.
  std::vector<std::string> fault_plan() const override { return {"server", "server", "server", "server", "server"}; }
  void inject(const std::string&, std::mt19937_64& rng) override {
    server.kill_hard();
    std::this_thread::sleep_for(random_pause(rng, 200, 1500));
    server.restart();
    api.set(server.url());
  }
  std::vector<std::string> stored_renditions(const std::string& id) override {
    return files_under(data_ / "objects" / "videos" / id / "renditions");
  }
  std::string logs() const override { return server.log(); }

 private:
  std::filesystem::path data_;

 public:
  FramepressProcess server;
};

/// A small tmpfs mounted on `dir` for as long as it lives.
class SmallTmpfs {
 public:
  SmallTmpfs(std::filesystem::path dir, const std::string& size) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, ("size=" + size).c_str()) != 0) {
      error_ = std::strerror(errno);
    }
  }
  ~SmallTmpfs() {
    if (error_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;
  /// Empty when mounted, else why not.
  const std::string& error() const { return error_; }
  /// Writes a file until the file system is full.
  void fill() const {
    std::ofstream filler(dir_ / "filler", std::ios::binary);
    const std::string block(4096, '\0');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) && filler.flush()) {
    }
  }

 private:
  std::filesystem::path dir_;
  std::string error_;
};

bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

}  // namespace

TEST(Faults, DistributedWorkersApiBrokerAndStoreKilledEveryJobCompletesOnce) {
  TempDir scratch;
  TempDir media;
  const auto seed = fault_seed();
  RecordProperty("seed", std::to_string(seed));
  auto clip = testing::make_clip(media.path(), "tiny", {.width = 426, .height = 240, .seconds = 2});
  DistributedDeployment deployment(scratch.path());
  for (int i = 0; i < 3; ++i) deployment.add_worker("worker" + std::to_string(i));
  const Outcome outcome = run_under_faults(deployment, clip, seed);
  outcome.print(seed);
  EXPECT_EQ(outcome.completed, kJobs);
  EXPECT_EQ(outcome.duplicates, 0);
  EXPECT_EQ(outcome.lost_events, 0);
  if (::testing::Test::HasFailure()) std::cerr << deployment.logs() << "\n";
}

TEST(Faults, EmbeddedServerKilledEveryJobCompletesOnce) {
  TempDir scratch;
  TempDir media;
  const auto seed = fault_seed();
  RecordProperty("seed", std::to_string(seed));
  auto clip = testing::make_clip(media.path(), "tiny", {.width = 426, .height = 240, .seconds = 2});
  EmbeddedDeployment deployment(scratch.path());
  const Outcome outcome = run_under_faults(deployment, clip, seed);
  outcome.print(seed);
  EXPECT_EQ(outcome.completed, kJobs);
  EXPECT_EQ(outcome.duplicates, 0);
  EXPECT_EQ(outcome.lost_events, 0);
  if (::testing::Test::HasFailure()) std::cerr << deployment.logs() << "\n";
}

}  // namespace framepress::e2e

namespace framepress::e2e {

// A worker whose scratch disk is full fails the task it took, cleanly (a reason that says so, nothing left
// behind, the worker still up), and the retry is taken by another worker, where the job completes.
// The full disk is a 1 MiB tmpfs on the worker's scratch directory, filled to the last byte: mounting
// needs root, which CI has; elsewhere the test is skipped, saying why.
TEST(Faults, AFullScratchDiskFailsTheTaskThereAndAnotherWorkerCompletesIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to mount a small tmpfs as a worker's scratch directory";
  TempDir scratch;
  TempDir media;
  auto clip = testing::make_clip(media.path(), "tiny", {.width = 426, .height = 240, .seconds = 2});
  const auto full_scratch = scratch.path() / "full" / "scratch";  // the worker "full"'s <data_dir>/scratch
  SmallTmpfs disk(full_scratch, "1m");
  ASSERT_EQ(disk.error(), "") << "cannot mount a tmpfs on " << full_scratch;
  disk.fill();

  DistributedDeployment deployment(scratch.path());
  // Alone in its group at first, so that the job's tasks come to it; retries enough to outlast the
  // moment the second worker needs to join.
  auto& full = deployment.add_worker("full", {"--max-retries", "8"});
  const std::string id = upload_until_accepted(deployment.api, clip);
  ASSERT_FALSE(id.empty());
  auto first = read_sse(deployment.api.get() + "/api/videos/" + id + "/events", {},
                        [](const SseEvent& e) { return e.event == "retrying" || is_terminal(e.event); }, 180s);
  ASSERT_FALSE(first.events.empty());
  ASSERT_EQ(first.events.back().event, "retrying") << first.events.back().data << deployment.logs();

  auto& good = deployment.add_worker("good");
  auto stream = follow_job(deployment.api.get(), id, std::chrono::seconds(400));
  ASSERT_FALSE(stream.events.empty());
  ASSERT_EQ(stream.events.back().event, "completed") << stream.events.back().data << deployment.logs();

  const std::string full_name = "/" + std::to_string(full.pid());
  const std::string good_name = "/" + std::to_string(good.pid());
  auto replay = read_sse(deployment.api.get() + "/api/videos/" + id + "/events", {"Last-Event-ID: 0"},
                         [](const SseEvent&) { return false; }, 60s);
  std::map<std::string, std::vector<std::string>> workers_of;  // rendition → the worker of each attempt
  int failures = 0;
  for (const auto& e : replay.events) {
    auto data = e.json();
    if (e.event == "started") workers_of[data["rendition"]].push_back(data["worker"]);
    if (e.event == "retrying") {
      ++failures;
      const std::string reason = data["reason"];
      std::cout << "attempt " << data["attempt"] << " of " << data["rendition"].get<std::string>() << " failed: " << reason
                << std::endl;
      EXPECT_NE(reason.find("No space left on device"), std::string::npos) << reason;
      EXPECT_EQ(reason.find(scratch.path().string()), std::string::npos) << "a server path reaches users: " << reason;
    }
  }
  EXPECT_GE(failures, 1);
  ASSERT_EQ(workers_of.size(), kRenditionsPerJob);
  // Where each rendition was made, by the workers' own words: a retry can still start on the full worker
  // (a partition it held when the retry was queued, or one that moved while the second worker joined) and
  // be handed back, so which worker started last says less than which one stored the output.
  const std::string full_log = full.log();
  const std::string good_log = good.log();
  for (const auto& [rendition, attempts] : workers_of) {
    ASSERT_FALSE(attempts.empty());
    EXPECT_TRUE(attempts.front().ends_with(full_name)) << rendition << ": first attempt on " << attempts.front();
    const std::string done = "[" + id + " " + rendition + "] done:";
    EXPECT_NE(good_log.find(done), std::string::npos) << rendition << " was not stored by the second worker";
    EXPECT_EQ(full_log.find(done), std::string::npos) << rendition << " was stored by the worker with a full disk";
  }
  // Cleanly: the full worker is still up, and its scratch directory holds nothing of the tasks.
  EXPECT_TRUE(alive(full.pid())) << full.log();
  EXPECT_EQ(files_under(full_scratch), std::vector<std::string>{"filler"});
  EXPECT_EQ(deployment.stored_renditions(id), (std::vector<std::string>{"144p.mp4", "240p.mp4"}));
}

}  // namespace framepress::e2e
