#include "store/fs/fs_object_store.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "core/error.h"

namespace framepress {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  explicit TempDir(const fs::path& parent = fs::temp_directory_path()) {
    std::string pattern = (parent / "framepress-store-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string pattern_bytes(std::size_t size) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  return bytes;
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Reads a reader to its end through a small buffer, so that reads stop mid-range.
std::string drain(ObjectReader& reader, std::size_t chunk = 7) {
  std::string out;
  std::string buffer(chunk, '\0');
  while (auto n = reader.read(std::span<char>(buffer.data(), buffer.size()))) out.append(buffer.data(), n);
  return out;
}

/// Every file (not directory) under `dir`, relative to it.
std::set<std::string> files_under(const fs::path& dir) {
  std::set<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_directory()) files.insert(fs::relative(entry.path(), dir).string());
  }
  return files;
}

class FsObjectStoreTest : public ::testing::Test {
 protected:
  void put(const ObjectKey& key, const std::string& bytes) {
    auto writer = store_.create(key, "application/octet-stream");
    writer->write(bytes);
    writer->commit();
  }
  std::string get(const ObjectKey& key) {
    auto reader = store_.open(key, std::nullopt);
    return drain(*reader, 64 * 1024);
  }

  TempDir dir_;
  fs::path root_ = dir_.path() / "objects";
  FsObjectStore store_{root_};
  VideoId id_ = VideoId::generate();
};

TEST_F(FsObjectStoreTest, RoundTrip) {
  EXPECT_TRUE(fs::is_directory(root_));
  EXPECT_EQ(store_.describe(), "file://" + fs::canonical(root_).string());
  auto key = ObjectKey::rendition_of(id_, "720p");
  auto bytes = pattern_bytes(3 * 1024 * 1024 + 17);  // more than the writer's buffer, not a multiple of it
  {
    auto writer = store_.create(key, "video/mp4");
    std::size_t offset = 0;
    for (std::size_t chunk : {std::size_t{1}, std::size_t{1000}, std::size_t{2 * 1024 * 1024}, std::size_t{5}}) {
      writer->write(std::span<const char>(bytes.data() + offset, chunk));
      offset += chunk;
    }
    writer->write(std::span<const char>(bytes.data() + offset, bytes.size() - offset));
    writer->commit();
    EXPECT_THROW(writer->write(std::span<const char>(bytes.data(), 1)), Error);
  }
  auto info = store_.stat(key);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, bytes.size());
  EXPECT_EQ(get(key), bytes);
  EXPECT_EQ(store_.local_path(key), fs::canonical(root_) / key.str());
  EXPECT_EQ(read_file(store_.local_path(key)), bytes);
  EXPECT_EQ(files_under(root_), std::set<std::string>{key.str()});  // no temporary file left

  // An empty object is an object.
  auto empty = ObjectKey::rendition_of(id_, "144p");
  put(empty, "");
  ASSERT_TRUE(store_.stat(empty));
  EXPECT_EQ(store_.stat(empty)->size, 0u);
  EXPECT_EQ(get(empty), "");
}

TEST_F(FsObjectStoreTest, MissingObjects) {
  auto key = ObjectKey::source_of(id_);
  EXPECT_FALSE(store_.stat(key));
  try {
    store_.open(key, std::nullopt);
    FAIL() << "opened a missing object";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_found);
  }
  try {
    store_.fetch_to_file(key, dir_.path() / "copy");
    FAIL() << "fetched a missing object";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_found);
  }
  EXPECT_FALSE(fs::exists(dir_.path() / "copy"));
  // A directory of keys is not an object.
  put(ObjectKey::rendition_of(id_, "360p"), "x");
  EXPECT_FALSE(store_.stat(ObjectKey("videos/" + id_.str() + "/renditions")));
  EXPECT_THROW(store_.open(ObjectKey("videos/" + id_.str()), std::nullopt), Error);
}

TEST_F(FsObjectStoreTest, AnUncommittedWriterLeavesNothing) {
  auto key = ObjectKey::source_of(id_);
  {
    auto writer = store_.create(key, "video/mp4");
    writer->write(pattern_bytes(3 * 1024 * 1024));
    EXPECT_FALSE(store_.stat(key));
  }
  EXPECT_FALSE(store_.stat(key));
  EXPECT_TRUE(files_under(root_).empty());
}

TEST_F(FsObjectStoreTest, ReadersSeeTheOldObjectUntilCommit) {
  auto key = ObjectKey::source_of(id_);
  auto old_bytes = pattern_bytes(100000);
  std::string new_bytes(2 * 1024 * 1024, 'n');
  put(key, old_bytes);

  auto writer = store_.create(key, "video/mp4");
  writer->write(new_bytes);
  EXPECT_EQ(get(key), old_bytes);
  EXPECT_EQ(store_.stat(key)->size, old_bytes.size());

  auto open_before_commit = store_.open(key, std::nullopt);
  writer->commit();
  EXPECT_EQ(drain(*open_before_commit, 4096), old_bytes);  // an open reader keeps its object whole
  EXPECT_EQ(get(key), new_bytes);
  EXPECT_EQ(files_under(root_), std::set<std::string>{key.str()});

  // A discarded replacement leaves the committed object as it was.
  {
    auto discarded = store_.create(key, "video/mp4");
    discarded->write(old_bytes);
  }
  EXPECT_EQ(get(key), new_bytes);
}

TEST_F(FsObjectStoreTest, RangesReadExactlyTheirBytes) {
  auto key = ObjectKey::rendition_of(id_, "480p");
  auto bytes = pattern_bytes(1000);
  put(key, bytes);
  struct Case {
    std::uint64_t first, last;
  };
  for (auto [first, last] : {Case{0, 0}, Case{1, 1}, Case{500, 599}, Case{999, 999}, Case{0, 999}, Case{990, 999}}) {
    auto reader = store_.open(key, ByteRange{first, last});
    EXPECT_EQ(drain(*reader), bytes.substr(first, last - first + 1)) << first << "-" << last;
    char more;
    EXPECT_EQ(reader->read(std::span<char>(&more, 1)), 0u);  // and nothing after
  }
  // One big buffer gets the range and no byte beyond it.
  auto reader = store_.open(key, ByteRange{10, 19});
  std::string buffer(100, '#');
  EXPECT_EQ(reader->read(std::span<char>(buffer.data(), buffer.size())), 10u);
  EXPECT_EQ(buffer.substr(0, 10), bytes.substr(10, 10));
  EXPECT_EQ(buffer.substr(10), std::string(90, '#'));

  for (auto [first, last] : {Case{0, 1000}, Case{1000, 1000}, Case{5, 4}}) {
    try {
      store_.open(key, ByteRange{first, last});
      FAIL() << "opened " << first << "-" << last << " of 1000 bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::bad_request);
      EXPECT_EQ(e.reason(), "range_not_satisfiable");
    }
  }
}

TEST_F(FsObjectStoreTest, PutFileConsumedIsMovedNotCopied) {
  auto scratch = dir_.path() / "scratch";
  fs::create_directories(scratch);
  auto upload = scratch / "upload-1";
  auto bytes = pattern_bytes(200000);
  write_file(upload, bytes);
  struct stat before {};
  ASSERT_EQ(::stat(upload.c_str(), &before), 0);

  auto key = ObjectKey::source_of(id_);
  store_.put_file(key, upload, "video/mp4", true);
  EXPECT_FALSE(fs::exists(upload));
  EXPECT_EQ(get(key), bytes);
  struct stat after {};
  ASSERT_EQ(::stat(store_.local_path(key).c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);  // the same file: renamed, not copied

  // Again over an existing object: replaced whole.
  write_file(upload, "second");
  store_.put_file(key, upload, "video/mp4", true);
  EXPECT_EQ(get(key), "second");
  EXPECT_EQ(files_under(root_), std::set<std::string>{key.str()});
}

TEST_F(FsObjectStoreTest, PutFileWithoutConsumeCopies) {
  auto local = dir_.path() / "local.bin";
  auto bytes = pattern_bytes(3 * 1024 * 1024 + 1);
  write_file(local, bytes);
  auto key = ObjectKey::rendition_of(id_, "1080p");
  store_.put_file(key, local, "video/mp4", false);
  EXPECT_EQ(read_file(local), bytes);
  EXPECT_EQ(get(key), bytes);
  struct stat a {}, b {};
  ASSERT_EQ(::stat(local.c_str(), &a), 0);
  ASSERT_EQ(::stat(store_.local_path(key).c_str(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);
  EXPECT_EQ(files_under(root_), std::set<std::string>{key.str()});

  EXPECT_THROW(store_.put_file(key, dir_.path() / "missing", "video/mp4", false), Error);
  EXPECT_EQ(get(key), bytes);
}

TEST_F(FsObjectStoreTest, PutFileConsumedAcrossFilesystemsCopiesAndRemoves) {
  // /dev/shm is a tmpfs on Linux: a rename from it into the store fails with EXDEV.
  fs::path shm = "/dev/shm";
  struct stat shm_info {}, root_info {};
  if (::stat(shm.c_str(), &shm_info) != 0 || ::access(shm.c_str(), W_OK) != 0 ||
      ::stat(root_.c_str(), &root_info) != 0 || shm_info.st_dev == root_info.st_dev) {
    GTEST_SKIP() << "no second writable filesystem to move from";
  }
  TempDir other(shm);
  auto upload = other.path() / "upload";
  auto bytes = pattern_bytes(1500000);
  write_file(upload, bytes);
  auto key = ObjectKey::source_of(id_);
  store_.put_file(key, upload, "video/mp4", true);
  EXPECT_FALSE(fs::exists(upload));
  EXPECT_EQ(get(key), bytes);
  EXPECT_EQ(files_under(root_), std::set<std::string>{key.str()});
}

TEST_F(FsObjectStoreTest, AdoptsFilesOnlyFromItsOwnFilesystem) {
  // The API asks this to choose between handing its spool file over (a rename) and streaming a copy.
  fs::create_directories(dir_.path() / "scratch");
  EXPECT_TRUE(store_.adopts_files_from(dir_.path() / "scratch"));
  EXPECT_TRUE(store_.adopts_files_from(root_));
  EXPECT_FALSE(store_.adopts_files_from("/proc"));  // procfs: never the store's filesystem
  EXPECT_FALSE(store_.adopts_files_from(dir_.path() / "missing"));
}

TEST_F(FsObjectStoreTest, FetchToFileCopies) {
  auto key = ObjectKey::source_of(id_);
  auto bytes = pattern_bytes(2500000);
  put(key, bytes);
  auto scratch = dir_.path() / "worker-scratch";
  fs::create_directories(scratch);
  store_.fetch_to_file(key, scratch / "source");
  EXPECT_EQ(read_file(scratch / "source"), bytes);
  EXPECT_EQ(files_under(scratch), std::set<std::string>{"source"});
  // A copy: changing the scratch file leaves the object alone.
  write_file(scratch / "source", "scribbled");
  EXPECT_EQ(get(key), bytes);
}

TEST_F(FsObjectStoreTest, RemovePrefixRemovesOneJob) {
  auto other = VideoId::generate();
  put(ObjectKey::source_of(id_), "source");
  put(ObjectKey::rendition_of(id_, "360p"), "360");
  put(ObjectKey::rendition_of(id_, "720p"), "720");
  put(ObjectKey::source_of(other), "other");
  {
    auto pending = store_.create(ObjectKey::rendition_of(id_, "1080p"), "video/mp4");  // a temp file too
    pending->write(std::string("partial"));
    store_.remove_prefix(ObjectKey::prefix_of(id_));
  }
  EXPECT_FALSE(store_.stat(ObjectKey::source_of(id_)));
  EXPECT_FALSE(store_.stat(ObjectKey::rendition_of(id_, "720p")));
  EXPECT_FALSE(fs::exists(root_ / "videos" / id_.str()));  // and its directories
  EXPECT_EQ(get(ObjectKey::source_of(other)), "other");
  EXPECT_EQ(files_under(root_), std::set<std::string>{ObjectKey::source_of(other).str()});

  // Nothing to remove is no error.
  EXPECT_NO_THROW(store_.remove_prefix(ObjectKey::prefix_of(id_)));
  EXPECT_NO_THROW(store_.remove_prefix("nothing/here/"));

  // A prefix that ends within a name.
  put(ObjectKey("logs/a-1"), "1");
  put(ObjectKey("logs/a-2"), "2");
  put(ObjectKey("logs/b-1"), "3");
  store_.remove_prefix("logs/a-");
  EXPECT_FALSE(store_.stat(ObjectKey("logs/a-1")));
  EXPECT_FALSE(store_.stat(ObjectKey("logs/a-2")));
  EXPECT_TRUE(store_.stat(ObjectKey("logs/b-1")));
}

TEST_F(FsObjectStoreTest, HostileKeysAreRefusedAndNothingIsWrittenOutside) {
  auto outside_before = files_under(dir_.path());
  auto local = dir_.path() / "local.bin";
  write_file(local, "payload");
  outside_before.insert("local.bin");
  const std::vector<std::string> hostile{
      "",           "/etc/passwd",  "../escape",     "videos/../../escape", "videos/..",   "..",
      ".",          "videos/./x",   "./x",           "videos//x",           "videos/x/",   "videos\\..\\x",
      "videos/\nx", "videos/x\x7f", std::string("videos/a\0b", 10), "videos/\x1b[31mred", std::string(300, 'a'),
  };
  for (const auto& text : hostile) {
    ObjectKey key(text);
    auto expect_refused = [&](auto&& call, const char* what) {
      try {
        call();
        ADD_FAILURE() << what << " accepted key \"" << text << "\"";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::bad_request) << what << ": " << e.what();
        EXPECT_EQ(e.reason(), "bad_key");
        for (char c : std::string(e.what())) EXPECT_FALSE(c == '\n' || c == '\x1b') << "control characters in message";
      }
    };
    expect_refused([&] { store_.create(key, "video/mp4"); }, "create");
    expect_refused([&] { store_.put_file(key, local, "video/mp4", false); }, "put_file");
    expect_refused([&] { store_.fetch_to_file(key, dir_.path() / "fetched"); }, "fetch_to_file");
    expect_refused([&] { store_.stat(key); }, "stat");
    expect_refused([&] { store_.open(key, std::nullopt); }, "open");
    expect_refused([&] { store_.local_path(key); }, "local_path");
  }
  for (std::string prefix : {"", "/", "../", "videos/../", "..", "a\\b", "x/./"}) {
    EXPECT_THROW(store_.remove_prefix(prefix), Error) << prefix;
  }
  EXPECT_EQ(files_under(dir_.path()), outside_before);
  EXPECT_EQ(read_file(local), "payload");
}

TEST_F(FsObjectStoreTest, ReopeningTheStoreKeepsObjects) {
  put(ObjectKey::source_of(id_), "kept");
  FsObjectStore again(root_);
  EXPECT_EQ(drain(*again.open(ObjectKey::source_of(id_), std::nullopt)), "kept");
}

long resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST_F(FsObjectStoreTest, A64MiBObjectStreamsInLittleMemory) {
  constexpr std::size_t kSize = 64u << 20;
  auto chunk = pattern_bytes(256 * 1024);
  auto key = ObjectKey::rendition_of(id_, "2160p");
  long before = resident_kib();
  ASSERT_GT(before, 0);
  {
    auto writer = store_.create(key, "video/mp4");
    for (std::size_t written = 0; written < kSize; written += chunk.size()) writer->write(chunk);
    writer->commit();
  }
  {
    auto reader = store_.open(key, ByteRange{kSize - 1000, kSize - 1});
    EXPECT_EQ(drain(*reader, 4096).size(), 1000u);
  }
  long growth_kib = resident_kib() - before;
  EXPECT_LT(growth_kib, 16 * 1024) << "RSS grew by " << growth_kib << " KiB writing 64 MiB";
  EXPECT_EQ(store_.stat(key)->size, kSize);
}

}  // namespace
}  // namespace framepress
