// sse_load: opens many concurrent Server-Sent Events streams to one URL and measures event delivery
// latency (receive time minus the event's own "at_ms", both Unix wall-clock on the same machine).
//
// One thread, one io_context, no allocation per event beyond the connection's buffers: the generator must
// cost far less than the server it loads, since both share the machine's two cores.
//
//   sse_load --port 8080 --path /api/videos/ID/events --connections 10000
//            [--host 127.0.0.1] [--sources 8] [--batch 512] [--timeout 300]
//
// Connections are spread over source addresses 127.0.0.2 … 127.0.0.(1+sources) so each has its own
// ephemeral port range. When every connection has its first event (the snapshot) or has failed, it prints
// one line "READY <connected> <failed> <ms>" and flushes; when every stream has ended (or at the time-out)
// it prints one line of JSON with the results. Progress goes to stderr.

#include <sys/resource.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio.hpp>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string path;
  int connections = 1000;
  int sources = 8;
  int batch = 512;
  int timeout_s = 300;
};

struct EventStat {
  std::int64_t at_ms = 0;
  std::string name;
  int received = 0;
  std::int64_t max_latency_us = 0;
};

struct Stats {
  int connected = 0;       // got the response head with 200
  int ready = 0;           // got the first event
  int failed = 0;          // could not connect, or not 200, or cut off before the end
  int ended = 0;           // stream ended properly (last chunk or EOF after a terminal event)
  int saw_terminal = 0;
  int finished = 0;        // ended + failed
  std::vector<std::int32_t> latencies_us;  // every non-snapshot event on every connection
  std::map<std::string, EventStat> by_id;  // per event id (or at_ms when no id)
  std::map<std::string, int> by_name;
  std::map<std::string, int> errors;
  bool ready_printed = false;
  std::int64_t start_us = 0;
};

bool is_terminal(std::string_view name) {
  return name == "completed" || name == "failed" || name == "cancelled" || name == "deleted";
}

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(asio::io_context& io, Stats& stats, const Options& opt, tcp::endpoint remote, asio::ip::address source,
       std::function<void()> on_done)
      : socket_(io), stats_(stats), opt_(opt), remote_(remote), source_(source), on_done_(std::move(on_done)) {}

  void start() {
    boost::system::error_code ec;
    socket_.open(tcp::v4(), ec);
    if (!ec) {
      // Let connect() pick the port for the (source, destination) pair rather than bind() for the source
      // alone: the same source address then serves far more connections.
      int one = 1;
      ::setsockopt(socket_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      socket_.bind(tcp::endpoint(source_, 0), ec);
    }
    if (ec) return fail("open/bind: " + ec.message());
    socket_.async_connect(remote_, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return self->fail("connect: " + ec.message());
      self->send_request();
    });
  }

 private:
  void send_request() {
    request_ = "GET " + opt_.path + " HTTP/1.1\r\nHost: " + opt_.host + ":" + std::to_string(opt_.port) +
               "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
    asio::async_write(socket_, asio::buffer(request_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      if (ec) return self->fail("write: " + ec.message());
      self->read();
    });
  }

  void read() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        if (ec == asio::error::eof && self->saw_terminal_) return self->end();
        return self->fail("read: " + ec.message());
      }
      const auto t = now_us();
      if (!self->feed(std::string_view(self->buf_.data(), n), t)) return;  // ended or failed
      self->read();
    });
  }

  // Returns false once the connection is finished.
  bool feed(std::string_view in, std::int64_t t) {
    if (!head_done_) {
      head_.append(in);
      const auto end = head_.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (head_.size() > 65536) { fail("response head too large"); return false; }
        return true;
      }
      const std::string head = head_.substr(0, end);
      std::string rest = head_.substr(end + 4);
      head_.clear();
      head_done_ = true;
      if (head.compare(0, 12, "HTTP/1.1 200") != 0) {
        fail("status: " + head.substr(0, head.find("\r\n")));
        return false;
      }
      std::string lower = head;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      chunked_ = lower.find("transfer-encoding: chunked") != std::string::npos;
      ++stats_.connected;
      return body(rest, t);
    }
    return body(in, t);
  }

  // De-chunks into sse_ and handles every complete event.
  bool body(std::string_view in, std::int64_t t) {
    if (!chunked_) {
      sse_.append(in);
      return events(t);
    }
    while (!in.empty()) {
      if (chunk_left_ > 0) {
        const auto take = std::min<std::size_t>(chunk_left_, in.size());
        sse_.append(in.substr(0, take));
        in.remove_prefix(take);
        chunk_left_ -= take;
        if (chunk_left_ == 0) skip_crlf_ = 2;
        continue;
      }
      if (skip_crlf_ > 0) {
        in.remove_prefix(1);
        --skip_crlf_;
        continue;
      }
      line_.push_back(in.front());
      in.remove_prefix(1);
      if (line_.size() >= 2 && line_.compare(line_.size() - 2, 2, "\r\n") == 0) {
        std::size_t size = 0;
        auto [p, ec] = std::from_chars(line_.data(), line_.data() + line_.size(), size, 16);
        (void)p;
        line_.clear();
        if (ec != std::errc()) { fail("bad chunk size"); return false; }
        if (size == 0) {  // last chunk: the stream has ended
          if (!events(t)) return false;
          end();
          return false;
        }
        chunk_left_ = size;
      }
    }
    return events(t);
  }

  bool events(std::int64_t t) {
    for (;;) {
      const auto end = sse_.find("\n\n");
      if (end == std::string::npos) return true;
      std::string_view block(sse_.data(), end);
      std::string_view name, id, data;
      while (!block.empty()) {
        const auto nl = block.find('\n');
        std::string_view line = block.substr(0, nl);
        block = nl == std::string_view::npos ? std::string_view() : block.substr(nl + 1);
        if (line.rfind("event: ", 0) == 0) name = line.substr(7);
        else if (line.rfind("id: ", 0) == 0) id = line.substr(4);
        else if (line.rfind("data: ", 0) == 0) data = line.substr(6);
      }
      if (!data.empty() || !name.empty()) on_event(name, id, data, t);
      sse_.erase(0, end + 2);
    }
  }

  void on_event(std::string_view name, std::string_view id, std::string_view data, std::int64_t t) {
    if (!got_first_) {
      got_first_ = true;
      ++stats_.ready;
    }
    ++stats_.by_name[std::string(name.empty() ? "message" : name)];
    if (is_terminal(name)) {
      if (!saw_terminal_) ++stats_.saw_terminal;
      saw_terminal_ = true;
    }
    if (name == "snapshot") return;
    const auto key = std::string_view("\"at_ms\":");
    const auto pos = data.find(key);
    if (pos == std::string_view::npos) return;
    std::int64_t at_ms = 0;
    const char* b = data.data() + pos + key.size();
    std::from_chars(b, data.data() + data.size(), at_ms);
    const auto lat = t - at_ms * 1000;
    stats_.latencies_us.push_back(static_cast<std::int32_t>(std::clamp<std::int64_t>(lat, INT32_MIN, INT32_MAX)));
    auto& e = stats_.by_id[id.empty() ? std::to_string(at_ms) : std::string(id)];
    e.at_ms = at_ms;
    e.name = name;
    ++e.received;
    e.max_latency_us = std::max(e.max_latency_us, lat);
  }

  void end() {
    if (done_) return;
    done_ = true;
    ++stats_.ended;
    finish();
  }

  void fail(const std::string& why) {
    if (done_) return;
    done_ = true;
    ++stats_.failed;
    auto k = why.substr(0, 60);
    ++stats_.errors[k];
    finish();
  }

  void finish() {
    ++stats_.finished;
    boost::system::error_code ignored;
    socket_.close(ignored);
    on_done_();
  }

  tcp::socket socket_;
  Stats& stats_;
  const Options& opt_;
  tcp::endpoint remote_;
  asio::ip::address source_;
  std::function<void()> on_done_;
  std::string request_;
  std::array<char, 4096> buf_{};
  std::string head_;
  bool head_done_ = false;
  bool chunked_ = false;
  std::size_t chunk_left_ = 0;
  int skip_crlf_ = 0;
  std::string line_;
  std::string sse_;
  bool got_first_ = false;
  bool saw_terminal_ = false;
  bool done_ = false;
};

double percentile(std::vector<std::int32_t>& v, double p) {
  if (v.empty()) return -1;
  const auto k = static_cast<std::size_t>(std::min<double>(v.size() - 1, p / 100.0 * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

void raise_nofile(int want) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rlimit next = rl;
  if (next.rlim_cur < static_cast<rlim_t>(want)) next.rlim_cur = want;
  if (next.rlim_max < next.rlim_cur) next.rlim_max = next.rlim_cur;  // works as root
  if (setrlimit(RLIMIT_NOFILE, &next) != 0) {
    next.rlim_cur = rl.rlim_max;
    next.rlim_max = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &next);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  std::fprintf(stderr, "sse_load: RLIMIT_NOFILE %llu\n", static_cast<unsigned long long>(rl.rlim_cur));
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") opt.host = v;
    else if (k == "--port") opt.port = static_cast<unsigned short>(std::stoi(v));
    else if (k == "--path") opt.path = v;
    else if (k == "--connections") opt.connections = std::stoi(v);
    else if (k == "--sources") opt.sources = std::stoi(v);
    else if (k == "--batch") opt.batch = std::stoi(v);
    else if (k == "--timeout") opt.timeout_s = std::stoi(v);
    else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
  }
  if (opt.port == 0 || opt.path.empty() || opt.connections <= 0 || opt.sources < 1 || opt.sources > 250) {
    std::fprintf(stderr, "usage: sse_load --port P --path PATH --connections N [--host H] [--sources S] "
                         "[--batch B] [--timeout SECONDS]\n");
    return 2;
  }
  raise_nofile(opt.connections + 1024);

  asio::io_context io(1);
  Stats stats;
  stats.latencies_us.reserve(static_cast<std::size_t>(opt.connections) * 64);
  stats.start_us = now_us();
  const tcp::endpoint remote(asio::ip::make_address(opt.host), opt.port);
  std::vector<asio::ip::address> sources;
  for (int s = 0; s < opt.sources; ++s) sources.push_back(asio::ip::make_address("127.0.0." + std::to_string(2 + s)));

  int launched = 0, in_flight_connects = 0;
  std::function<void()> launch_more;
  auto maybe_ready = [&] {
    if (!stats.ready_printed && stats.ready + stats.failed >= opt.connections) {
      stats.ready_printed = true;
      std::printf("READY %d %d %lld\n", stats.ready, stats.failed,
                  static_cast<long long>((now_us() - stats.start_us) / 1000));
      std::fflush(stdout);
    }
  };
  asio::steady_timer tick(io);
  std::function<void()> on_tick;
  int last_ready = -1;
  on_tick = [&] {
    // Keep at most `batch` connections between connect() and their first event, so the server's accept
    // backlog never overflows.
    in_flight_connects = launched - stats.ready - stats.failed;
    launch_more();
    maybe_ready();
    if (stats.ready != last_ready && !stats.ready_printed) {
      std::fprintf(stderr, "sse_load: %d ready, %d failed\n", stats.ready, stats.failed);
      last_ready = stats.ready;
    }
    if (stats.finished >= opt.connections) return;
    tick.expires_after(std::chrono::milliseconds(20));
    tick.async_wait([&](boost::system::error_code ec) { if (!ec) on_tick(); });
  };
  std::vector<std::shared_ptr<Conn>> conns;
  conns.reserve(opt.connections);
  launch_more = [&] {
    while (launched < opt.connections && launched - stats.ready - stats.failed < opt.batch) {
      auto c = std::make_shared<Conn>(io, stats, opt, remote, sources[launched % sources.size()], [&] {
        if (stats.finished >= opt.connections) io.stop();
      });
      conns.push_back(c);
      c->start();
      ++launched;
    }
  };
  on_tick();

  asio::steady_timer deadline(io);
  deadline.expires_after(std::chrono::seconds(opt.timeout_s));
  bool timed_out = false;
  deadline.async_wait([&](boost::system::error_code ec) {
    if (!ec) { timed_out = true; io.stop(); }
  });
  io.run();
  maybe_ready();

  auto& lat = stats.latencies_us;
  const auto n = lat.size();
  const double p50 = percentile(lat, 50), p90 = percentile(lat, 90), p99 = percentile(lat, 99),
               p999 = percentile(lat, 99.9), mx = percentile(lat, 100);
  std::string errors = "{";
  for (const auto& [k, v] : stats.errors) {
    std::string key;
    for (char c : k) key += (c == '"' || c == '\\') ? '\'' : c;
    errors += (errors.size() > 1 ? "," : "") + std::string("\"") + key + "\":" + std::to_string(v);
  }
  errors += "}";
  std::string names = "{";
  for (const auto& [k, v] : stats.by_name)
    names += (names.size() > 1 ? "," : "") + std::string("\"") + k + "\":" + std::to_string(v);
  names += "}";
  // Per event: how long until the last subscriber had it (the fan-out's tail for that one event).
  std::string per_event = "[";
  for (const auto& [id, e] : stats.by_id) {
    per_event += (per_event.size() > 1 ? "," : "") + std::string("{\"id\":\"") + id + "\",\"name\":\"" + e.name +
                 "\",\"at_ms\":" + std::to_string(e.at_ms) + ",\"received\":" + std::to_string(e.received) +
                 ",\"last_ms\":" + std::to_string(e.max_latency_us / 1000.0) + "}";
  }
  per_event += "]";
  std::printf("{\"connections\":%d,\"connected\":%d,\"ready\":%d,\"failed\":%d,\"ended\":%d,\"saw_terminal\":%d,"
              "\"timed_out\":%s,\"samples\":%zu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
              "\"max_ms\":%.3f,\"events_by_name\":%s,\"errors\":%s,\"per_event\":%s}\n",
              opt.connections, stats.connected, stats.ready, stats.failed, stats.ended, stats.saw_terminal,
              timed_out ? "true" : "false", n, p50, p90, p99, p999, mx, names.c_str(), errors.c_str(),
              per_event.c_str());
  std::fflush(stdout);
  return 0;
}
