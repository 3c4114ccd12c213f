#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <kainjow/mustache.hpp>

namespace handlers {

/// Thrown when a template file is missing or does not parse; what() names the file and line.
class TemplateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The reply and bulletin texts, compiled once at start-up from `<dir>/<name>.mustache`.
/// Output is chat markdown, not HTML, so values are inserted as they are (no HTML escaping).
/// Rendering is const and safe to call from several threads.
class Templates {
 public:
  /// Loads and compiles each named template. Throws TemplateError("FILE:LINE: reason").
  static Templates load(const std::string& dir, const std::vector<std::string>& names);
  /// Compiles templates given as (name, text) pairs, as load does (for tests and tools).
  static Templates from_strings(const std::map<std::string, std::string>& texts);

  /// Renders template `name` with `data`. Throws TemplateError for an unknown name.
  std::string render(const std::string& name, const kainjow::mustache::data& data) const;
  /// As render, without the blank lines and spaces around the text: for the templates that
  /// hold one short answer per section (error, service, bulletin_reply, reminder), where
  /// the sections not taken leave empty lines.
  std::string render_trimmed(const std::string& name, const kainjow::mustache::data& data) const;

  /// Whether `name` was loaded.
  bool has(const std::string& name) const { return compiled_.count(name) > 0; }

  /// The names every Dispatcher needs.
  static const std::vector<std::string>& reply_names();

 private:
  // Copies of compiled templates between renders (see render). Shared by copies of this
  // object, which hold the same compiled templates.
  struct Spares {
    std::mutex mu;
    std::map<std::string, std::vector<kainjow::mustache::mustache>, std::less<>> by_name;
  };
  std::map<std::string, kainjow::mustache::mustache> compiled_;
  std::shared_ptr<Spares> spares_ = std::make_shared<Spares>();
};

/// Masks a beneficiary's name for the group chat: 王秀英 → 王*英, 李明 → 李*, 欧阳小明 → 欧**明.
/// Works on UTF-8 code points.
std::string mask_name(const std::string& name);

}  // namespace handlers
