#include "cli/job.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <sstream>

namespace framepress::cli {
namespace {

using nlohmann::json;

const json* field(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string text(const json& j, std::string_view key, std::string fallback = {}) {
  const json* v = field(j, key);
  if (v == nullptr) return fallback;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number()) return v->dump();  // ids are strings in the API, numbers would be fine too
  return fallback;
}

double number(const json& j, std::string_view key, double fallback = 0) {
  const json* v = field(j, key);
  return v != nullptr && v->is_number() ? v->get<double>() : fallback;
}

template <typename Int>
Int integer(const json& j, std::string_view key, Int fallback = 0) {
  const json* v = field(j, key);
  if (v == nullptr || !v->is_number()) return fallback;
  if (v->is_number_float()) return static_cast<Int>(v->get<double>());
  return v->get<Int>();
}

bool boolean(const json& j, std::string_view key, bool fallback = false) {
  const json* v = field(j, key);
  return v != nullptr && v->is_boolean() ? v->get<bool>() : fallback;
}

bool is_terminal_rendition(std::string_view state) {
  return state == "done" || state == "failed" || state == "cancelled";
}

RenditionInfo parse_rendition(const json& j) {
  RenditionInfo r;
  r.name = text(j, "name");
  r.width = integer<int>(j, "width");
  r.height = integer<int>(j, "height");
  r.state = text(j, "state", "queued");
  r.attempt = integer<int>(j, "attempt");
  r.percent = number(j, "percent");
  r.fps = number(j, "fps");
  r.speed = number(j, "speed");
  r.eta_seconds = number(j, "eta_seconds", -1);
  r.size = integer<std::uint64_t>(j, "size");
  r.bit_rate = integer<std::int64_t>(j, "bit_rate");
  r.duration = number(j, "duration");
  r.url = text(j, "url");
  r.error = text(j, "error");
  return r;
}

std::string printf_string(const char* format, double value) {
  std::array<char, 64> buffer{};
  std::snprintf(buffer.data(), buffer.size(), format, value);
  return buffer.data();
}

std::string first_line(std::string_view s, std::size_t max) {
  s = s.substr(0, s.find('\n'));
  if (s.size() <= max) return std::string(s);
  return std::string(s.substr(0, max - 3)) + "...";
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string dimensions(int width, int height) {
  return width > 0 && height > 0 ? std::to_string(width) + "x" + std::to_string(height) : std::string("-");
}

std::string absolute(std::string_view server, std::string_view path) {
  if (path.starts_with("http://") || path.starts_with("https://")) return std::string(path);
  std::string url(server);
  if (!path.starts_with('/')) url.push_back('/');
  url.append(path);
  return url;
}

std::string describe_source(const json& source) {
  if (!source.is_object() || source.empty()) return "-";
  std::string out;
  int width = integer<int>(source, "display_width");
  int height = integer<int>(source, "display_height");
  if (width == 0 || height == 0) {
    width = integer<int>(source, "width");
    height = integer<int>(source, "height");
  }
  out = dimensions(width, height);
  if (auto codec = text(source, "video_codec"); !codec.empty()) out += " " + codec;
  if (double d = number(source, "duration"); d > 0) out += ", " + format_clock(d);
  if (double fps = number(source, "frame_rate"); fps > 0) out += ", " + printf_string("%.4g fps", fps);
  if (double br = number(source, "bit_rate"); br > 0) out += ", " + human_bitrate(br);
  if (int rotation = integer<int>(source, "rotation"); rotation != 0) {
    out += ", rotated " + std::to_string(rotation) + "°";
  }
  if (const json* audio = field(source, "audio"); audio != nullptr && audio->is_object()) {
    out += "; audio " + text(*audio, "codec", "?");
    if (int ch = integer<int>(*audio, "channels"); ch > 0) out += " " + std::to_string(ch) + " ch";
    if (int rate = integer<int>(*audio, "sample_rate"); rate > 0) out += " " + std::to_string(rate) + " Hz";
  } else {
    out += "; no audio";
  }
  return out;
}

}  // namespace

RenditionInfo* JobInfo::rendition(std::string_view name) {
  auto it = std::find_if(renditions.begin(), renditions.end(), [&](const auto& r) { return r.name == name; });
  return it == renditions.end() ? nullptr : &*it;
}

const RenditionInfo* JobInfo::rendition(std::string_view name) const {
  return const_cast<JobInfo*>(this)->rendition(name);
}

JobInfo parse_job(const json& j) {
  if (!j.is_object()) throw json::type_error::create(302, "a job is a JSON object, got " + std::string(j.type_name()), &j);
  JobInfo job;
  job.id = text(j, "id");
  job.state = text(j, "state", "queued");
  job.filename = text(j, "filename");
  job.created_at = text(j, "created_at");
  job.updated_at = text(j, "updated_at");
  job.preset = text(j, "preset");
  if (const json* s = field(j, "source"); s != nullptr && s->is_object()) job.source = *s;
  if (const json* e = field(j, "encoding"); e != nullptr && e->is_object()) job.encoding = *e;
  if (const json* rs = field(j, "renditions"); rs != nullptr && rs->is_array()) {
    for (const auto& r : *rs) {
      if (r.is_object()) job.renditions.push_back(parse_rendition(r));
    }
  }
  job.error = text(j, "error");
  job.last_event_id = text(j, "last_event_id");
  return job;
}

bool is_terminal_state(std::string_view state) {
  return state == "completed" || state == "failed" || state == "cancelled" || state == "deleted";
}

EventEffect apply_event(JobInfo& job, std::string_view event, const json& data) {
  EventEffect effect;
  if (event == "snapshot") {
    const std::string id = job.id;
    job = parse_job(data);
    if (job.id.empty()) job.id = id;
    for (const auto& r : job.renditions) effect.changed.push_back(r.name);
    effect.terminal = is_terminal_state(job.state);
    return effect;
  }
  if (event == "completed") {
    job.state = "completed";
    effect.terminal = true;
    return effect;
  }
  if (event == "failed") {
    job.state = "failed";
    const auto name = text(data, "rendition");
    const auto reason = text(data, "reason");
    job.error = name.empty() ? reason : name + ": " + reason;
    if (auto* r = job.rendition(name); r != nullptr && r->state != "failed") {
      r->state = "failed";
      r->error = reason;
      effect.changed.push_back(name);
    }
    effect.terminal = true;
    return effect;
  }
  if (event == "cancelled" || event == "deleted") {
    job.state = event == "cancelled" ? "cancelled" : "deleted";
    for (auto& r : job.renditions) {
      if (!is_terminal_rendition(r.state)) {
        r.state = "cancelled";
        effect.changed.push_back(r.name);
      }
    }
    effect.message = "the job was " + job.state;
    effect.terminal = true;
    return effect;
  }
  if (event == "created") {
    // The snapshot normally has all of this; a stream that starts at the very beginning may not.
    if (job.renditions.empty()) {
      if (const json* rs = field(data, "renditions"); rs != nullptr && rs->is_array()) {
        for (const auto& spec : *rs) {
          RenditionInfo r;
          r.name = text(spec, "name");
          r.width = integer<int>(spec, "width");
          r.height = integer<int>(spec, "height");
          job.renditions.push_back(std::move(r));
          effect.changed.push_back(job.renditions.back().name);
        }
      }
    }
    if (job.filename.empty()) job.filename = text(data, "filename");
    return effect;
  }

  const auto name = text(data, "rendition");
  RenditionInfo* r = job.rendition(name);
  if (r == nullptr || is_terminal_rendition(r->state)) return effect;  // unknown, or too late to matter

  if (event == "started") {
    r->state = "encoding";
    r->attempt = std::max(r->attempt, integer<int>(data, "attempt", 1));
    r->percent = 0;
    r->fps = 0;
    r->speed = 0;
    r->eta_seconds = -1;
    r->error.clear();
    if (job.state == "queued") job.state = "processing";
  } else if (event == "progress") {
    // A reconnection coalesces progress; a progress without its start still means the encode runs.
    r->state = "encoding";
    r->percent = std::clamp(number(data, "percent", r->percent), 0.0, 100.0);
    r->fps = number(data, "fps", r->fps);
    r->speed = number(data, "speed", r->speed);
    r->eta_seconds = number(data, "eta_seconds", -1);
    if (job.state == "queued") job.state = "processing";
  } else if (event == "rendition") {
    r->state = "done";
    r->percent = 100;
    r->eta_seconds = -1;
    r->size = integer<std::uint64_t>(data, "size", r->size);
    r->bit_rate = integer<std::int64_t>(data, "bit_rate", r->bit_rate);
    r->duration = number(data, "duration", r->duration);
    r->width = integer<int>(data, "width", r->width);
    r->height = integer<int>(data, "height", r->height);
    r->error.clear();
    // The event has the store key, not the URL: until the final job JSON says otherwise, the URL is the
    // API's download route (docs/ARCHITECTURE.md).
    if (r->url.empty()) r->url = "/api/videos/" + job.id + "/renditions/" + r->name;
  } else if (event == "retrying" || event == "rendition_failed") {
    const bool will_retry = boolean(data, "will_retry", event == "retrying");
    const int attempt = integer<int>(data, "attempt", r->attempt);
    r->attempt = std::max(r->attempt, attempt);
    r->error = text(data, "reason");
    r->fps = 0;
    r->speed = 0;
    r->eta_seconds = -1;
    if (will_retry) {
      r->state = "queued";
      effect.message = name + ": attempt " + std::to_string(attempt) + " failed (" + first_line(r->error, 100) +
                       "); it will be retried";
    } else {
      r->state = "failed";
      effect.message = name + " failed: " + first_line(r->error, 200);
    }
  } else {
    return effect;
  }
  effect.changed.push_back(name);
  return effect;
}

ProgressRow rendition_row(const RenditionInfo& r) {
  ProgressRow row;
  row.label = r.name;
  row.state = r.state;
  if (r.state == "done") {
    row.fraction = 1;
    row.detail = human_bytes(r.size);
    if (r.bit_rate > 0) row.detail += "  " + human_bitrate(static_cast<double>(r.bit_rate));
  } else if (r.state == "encoding") {
    row.fraction = r.percent / 100;
    std::string detail;
    if (r.fps > 0) detail += printf_string("%.1f fps  ", r.fps);
    if (r.speed > 0) detail += printf_string("%.2fx  ", r.speed);
    detail += "ETA " + format_clock(r.eta_seconds);
    row.detail = std::move(detail);
  } else if (r.state == "queued") {
    row.fraction = 0;
    if (!r.error.empty()) row.detail = "to be retried";
  } else {  // failed, cancelled: no bar, the reason if any
    row.detail = first_line(r.error, 80);
  }
  return row;
}

std::string format_job(const JobInfo& job, std::string_view server) {
  std::ostringstream out;
  out << "video    " << job.id << "  " << job.state << '\n';
  std::string file = job.filename.empty() ? "-" : job.filename;
  if (auto size = integer<std::uint64_t>(job.source, "size"); size > 0) file += " (" + human_bytes(size) + ")";
  out << "file     " << file << '\n';
  out << "source   " << describe_source(job.source) << '\n';
  std::string preset = job.preset.empty() ? "-" : job.preset;
  if (!job.encoding.empty()) {
    preset += " (" + text(job.encoding, "video_codec", "?") + " " + text(job.encoding, "preset", "?");
    if (const json* crf = field(job.encoding, "crf"); crf != nullptr && crf->is_number()) {
      preset += " crf " + crf->dump();
    }
    preset += ")";
  }
  out << "preset   " << preset << '\n';
  if (!job.created_at.empty()) {
    out << "created  " << job.created_at;
    if (!job.updated_at.empty() && job.updated_at != job.created_at) out << ", updated " << job.updated_at;
    out << '\n';
  }
  if (!job.error.empty()) out << "error    " << first_line(job.error, 500) << '\n';

  std::size_t name_width = 4;
  std::size_t size_width = 1;
  for (const auto& r : job.renditions) {
    name_width = std::max(name_width, r.name.size());
    if (r.state == "done") size_width = std::max(size_width, human_bytes(r.size).size());
  }
  if (!job.renditions.empty()) out << "renditions\n";
  for (const auto& r : job.renditions) {
    std::string percent = format_percent(r.percent / 100);
    std::string line = "  " + pad(r.name, name_width) + "  " + pad(dimensions(r.width, r.height), 9) + "  " +
                       pad(r.state, 9) + "  " + percent + "  " +
                       pad(r.state == "done" ? human_bytes(r.size) : std::string("-"), size_width);
    if (r.state == "encoding") {
      line += "  ETA " + format_clock(r.eta_seconds);
    } else if (r.state == "done" && !r.url.empty()) {
      line += "  " + absolute(server, r.url);
    } else if (!r.error.empty()) {
      line += "  " + first_line(r.error, 200);
    }
    out << line << '\n';
  }
  return out.str();
}

std::string format_job_list(const json& list) {
  const json* videos = field(list, "videos");
  if (videos == nullptr || !videos->is_array() || videos->empty()) return "no videos\n";

  struct Line {
    std::string id, state, created, done, file;
  };
  std::vector<Line> lines;
  Line header{"ID", "STATE", "CREATED", "DONE", "FILE"};
  std::array<std::size_t, 4> widths{header.id.size(), header.state.size(), header.created.size(), header.done.size()};
  for (const auto& v : *videos) {
    if (!v.is_object()) continue;
    const JobInfo job = parse_job(v);
    const auto done = std::count_if(job.renditions.begin(), job.renditions.end(),
                                    [](const auto& r) { return r.state == "done"; });
    Line line{job.id, job.state, job.created_at,
              std::to_string(done) + "/" + std::to_string(job.renditions.size()), job.filename};
    widths[0] = std::max(widths[0], line.id.size());
    widths[1] = std::max(widths[1], line.state.size());
    widths[2] = std::max(widths[2], line.created.size());
    widths[3] = std::max(widths[3], line.done.size());
    lines.push_back(std::move(line));
  }

  std::ostringstream out;
  auto print = [&](const Line& l) {
    out << pad(l.id, widths[0]) << "  " << pad(l.state, widths[1]) << "  " << pad(l.created, widths[2]) << "  "
        << pad(l.done, widths[3]) << "  " << l.file << '\n';
  };
  print(header);
  for (const auto& l : lines) print(l);
  const auto total = integer<std::uint64_t>(list, "total", lines.size());
  if (total > lines.size()) out << "(" << lines.size() << " of " << total << " shown)\n";
  return out.str();
}

}  // namespace framepress::cli
