#pragma once
// Who may do what: optional bearer tokens with scopes. Tokens are never stored: the server's token file
// holds their SHA-256 hashes, and a presented token is hashed and compared in constant time.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace framepress::api {

enum class Scope { upload, read, admin };

/// The caller, once its token is checked (or everyone, when tokens are off).
struct Principal {
  std::string name;          // the token's name; recorded as the owner of what it uploads
  bool upload = false;
  bool read = false;
  bool admin = false;        // reads, cancels and deletes every job
  bool anonymous = false;    // tokens are off: may do anything

  bool may(Scope scope) const;
  /// Whether this caller may see or manage a job owned by `owner`.
  bool owns(std::string_view owner) const { return anonymous || admin || owner == name; }
};

struct TokenEntry {
  std::string name;
  std::string sha256_hex;    // lower-case hex of SHA-256(token)
  std::vector<Scope> scopes;
};

class AccessControl {
 public:
  /// Tokens off: everyone is an anonymous principal that may do anything.
  AccessControl() = default;
  explicit AccessControl(std::vector<TokenEntry> tokens);

  /// Reads a TOML file of `[[token]]` tables with `name`, `sha256` and `scopes = ["upload", "read"]`.
  /// Throws Error(bad_request, "bad_config") naming the file and the problem.
  static AccessControl from_file(const std::filesystem::path& path);

  bool enabled() const { return !tokens_.empty(); }

  /// The principal of a presented token (from `Authorization: Bearer …` or the `access_token` query
  /// parameter). Throws Error(unauthorized) when tokens are on and the token is missing or unknown.
  Principal authenticate(const std::optional<std::string>& token) const;

 private:
  std::vector<TokenEntry> tokens_;
};

/// Lower-case hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);
/// A new random token (32 bytes from the OS, URL-safe base64, "fp_" in front so it is recognisable).
std::string generate_token();
std::optional<Scope> parse_scope(std::string_view word);

}  // namespace framepress::api
