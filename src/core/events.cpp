#include "core/events.h"

#include <chrono>
#include <ctime>

#include "core/error.h"

namespace framepress {

TimestampMs now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string format_iso8601(TimestampMs at) {
  std::time_t seconds = static_cast<std::time_t>(at / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buffer + n, sizeof buffer - n, ".%03dZ", static_cast<int>(at % 1000));
  return buffer;
}

void to_json(nlohmann::json& j, const EncodingSettings& e) {
  j = nlohmann::json{{"video_codec", e.video_codec}, {"preset", e.preset}, {"crf", e.crf},
                     {"audio_codec", e.audio_codec}, {"audio_bitrate_kbps", e.audio_bitrate_kbps}};
}

void from_json(const nlohmann::json& j, EncodingSettings& e) {
  EncodingSettings defaults;
  e.video_codec = j.value("video_codec", defaults.video_codec);
  e.preset = j.value("preset", defaults.preset);
  e.crf = j.value("crf", defaults.crf);
  e.audio_codec = j.value("audio_codec", defaults.audio_codec);
  e.audio_bitrate_kbps = j.value("audio_bitrate_kbps", defaults.audio_bitrate_kbps);
}

namespace {

struct TypeName {
  std::string_view operator()(const JobCreated&) const { return "job.created"; }
  std::string_view operator()(const RenditionStarted&) const { return "rendition.started"; }
  std::string_view operator()(const RenditionProgress&) const { return "rendition.progress"; }
  std::string_view operator()(const RenditionDone&) const { return "rendition.done"; }
  std::string_view operator()(const RenditionFailed&) const { return "rendition.failed"; }
  std::string_view operator()(const JobCancelled&) const { return "job.cancelled"; }
  std::string_view operator()(const JobDeleted&) const { return "job.deleted"; }
  std::string_view operator()(const JobCompleted&) const { return "job.completed"; }
  std::string_view operator()(const JobFailed&) const { return "job.failed"; }
};

struct SseName {
  std::string_view operator()(const JobCreated&) const { return "created"; }
  std::string_view operator()(const RenditionStarted&) const { return "started"; }
  std::string_view operator()(const RenditionProgress&) const { return "progress"; }
  std::string_view operator()(const RenditionDone&) const { return "rendition"; }
  std::string_view operator()(const RenditionFailed& e) const { return e.will_retry ? "retrying" : "rendition_failed"; }
  std::string_view operator()(const JobCancelled&) const { return "cancelled"; }
  std::string_view operator()(const JobDeleted&) const { return "deleted"; }
  std::string_view operator()(const JobCompleted&) const { return "completed"; }
  std::string_view operator()(const JobFailed&) const { return "failed"; }
};

struct PayloadToJson {
  nlohmann::json& j;
  void operator()(const JobCreated& e) const {
    j["filename"] = e.filename;
    j["source_key"] = e.source_key.str();
    j["source"] = e.source;
    j["renditions"] = e.renditions;
    j["encoding"] = e.encoding;
    j["preset"] = e.preset_name;
    j["owner"] = e.owner;
  }
  void operator()(const RenditionStarted& e) const {
    j["rendition"] = e.rendition;
    j["attempt"] = e.attempt;
    j["worker"] = e.worker;
  }
  void operator()(const RenditionProgress& e) const {
    j["rendition"] = e.rendition;
    j["percent"] = e.percent;
    j["fps"] = e.fps;
    j["speed"] = e.speed;
    j["eta_seconds"] = e.eta_seconds;
  }
  void operator()(const RenditionDone& e) const {
    j["rendition"] = e.rendition;
    j["key"] = e.key.str();
    j["size"] = e.size;
    j["bit_rate"] = e.bit_rate;
    j["duration"] = e.duration;
    j["width"] = e.width;
    j["height"] = e.height;
  }
  void operator()(const RenditionFailed& e) const {
    j["rendition"] = e.rendition;
    j["attempt"] = e.attempt;
    j["reason"] = e.reason;
    j["will_retry"] = e.will_retry;
  }
  void operator()(const JobCancelled&) const {}
  void operator()(const JobDeleted&) const {}
  void operator()(const JobCompleted&) const {}
  void operator()(const JobFailed& e) const {
    j["rendition"] = e.rendition;
    j["reason"] = e.reason;
  }
};

EventPayload payload_from_json(std::string_view type, const nlohmann::json& j) {
  if (type == "job.created") {
    JobCreated e;
    e.filename = j.at("filename").get<std::string>();
    e.source_key = ObjectKey(j.at("source_key").get<std::string>());
    e.source = j.at("source").get<SourceInfo>();
    e.renditions = j.at("renditions").get<std::vector<RenditionSpec>>();
    e.encoding = j.at("encoding").get<EncodingSettings>();
    e.preset_name = j.value("preset", "");
    e.owner = j.value("owner", "");
    return e;
  }
  if (type == "rendition.started") {
    return RenditionStarted{j.at("rendition").get<std::string>(), j.value("attempt", 1), j.value("worker", "")};
  }
  if (type == "rendition.progress") {
    return RenditionProgress{j.at("rendition").get<std::string>(), j.value("percent", 0.0), j.value("fps", 0.0),
                             j.value("speed", 0.0), j.value("eta_seconds", -1.0)};
  }
  if (type == "rendition.done") {
    return RenditionDone{j.at("rendition").get<std::string>(), ObjectKey(j.at("key").get<std::string>()),
                         j.value("size", std::uint64_t{0}), j.value("bit_rate", std::int64_t{0}),
                         j.value("duration", 0.0), j.value("width", 0), j.value("height", 0)};
  }
  if (type == "rendition.failed") {
    return RenditionFailed{j.at("rendition").get<std::string>(), j.value("attempt", 1), j.value("reason", ""),
                           j.value("will_retry", false)};
  }
  if (type == "job.cancelled") return JobCancelled{};
  if (type == "job.deleted") return JobDeleted{};
  if (type == "job.completed") return JobCompleted{};
  if (type == "job.failed") return JobFailed{j.value("rendition", ""), j.value("reason", "")};
  throw Error(ErrorCode::bad_request, "unknown event type '" + std::string(type) + "'", "unknown_event");
}

}  // namespace

std::string_view event_type(const Event& event) { return std::visit(TypeName{}, event.payload); }
std::string_view sse_name(const Event& event) { return std::visit(SseName{}, event.payload); }
bool is_state_change(const Event& event) { return !std::holds_alternative<RenditionProgress>(event.payload); }

nlohmann::json to_json(const Event& event) {
  nlohmann::json j{{"type", event_type(event)}, {"video_id", event.video_id.str()}, {"at", format_iso8601(event.at)},
                   {"at_ms", event.at}};
  std::visit(PayloadToJson{j}, event.payload);
  return j;
}

Event event_from_json(const nlohmann::json& j) {
  try {
    auto id = VideoId::parse(j.at("video_id").get<std::string>());
    if (!id) throw Error(ErrorCode::bad_request, "event with a malformed video_id", "bad_event");
    Event event;
    event.video_id = *id;
    event.at = j.value("at_ms", TimestampMs{0});
    event.payload = payload_from_json(j.at("type").get<std::string>(), j);
    return event;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::bad_request, std::string("malformed event: ") + e.what(), "bad_event");
  }
}

nlohmann::json to_json(const RenditionTask& task) {
  return nlohmann::json{{"video_id", task.video_id.str()}, {"source_key", task.source_key.str()},
                        {"source", task.source},           {"rendition", task.rendition},
                        {"encoding", task.encoding},       {"output_key", task.output_key.str()},
                        {"attempt", task.attempt}};
}

RenditionTask task_from_json(const nlohmann::json& j) {
  try {
    RenditionTask task;
    auto id = VideoId::parse(j.at("video_id").get<std::string>());
    if (!id) throw Error(ErrorCode::bad_request, "task with a malformed video_id", "bad_task");
    task.video_id = *id;
    task.source_key = ObjectKey(j.at("source_key").get<std::string>());
    task.source = j.at("source").get<SourceInfo>();
    task.rendition = j.at("rendition").get<RenditionSpec>();
    task.encoding = j.at("encoding").get<EncodingSettings>();
    task.output_key = ObjectKey(j.at("output_key").get<std::string>());
    task.attempt = j.value("attempt", 1);
    return task;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::bad_request, std::string("malformed task: ") + e.what(), "bad_task");
  }
}

}  // namespace framepress
