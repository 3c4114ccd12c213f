#include "handlers/templates.h"

#include <fstream>
#include <optional>
#include <sstream>

namespace handlers {
namespace {

using kainjow::mustache::mustache;

// kainjow reports errors as "... at <byte offset>"; turn the offset into a 1-based line.
std::string locate(const std::string& file, const std::string& text, const std::string& error) {
  int line = 1;
  const auto at = error.rfind(" at ");
  if (at != std::string::npos) {
    size_t offset = 0;
    try {
      offset = std::stoul(error.substr(at + 4));
    } catch (const std::exception&) {
      offset = 0;
    }
    for (size_t i = 0; i < offset && i < text.size(); ++i)
      if (text[i] == '\n') ++line;
  }
  return file + ":" + std::to_string(line) + ": " + error;
}

mustache compile(const std::string& label, const std::string& text) {
  mustache m(text);
  if (!m.is_valid()) throw TemplateError(locate(label, text, m.error_message()));
  m.set_custom_escape([](const std::string& s) { return s; });
  return m;
}

}  // namespace

Templates Templates::load(const std::string& dir, const std::vector<std::string>& names) {
  Templates t;
  for (const auto& name : names) {
    const std::string file = dir + "/" + name + ".mustache";
    std::ifstream in(file, std::ios::binary);
    if (!in) throw TemplateError(file + ":0: cannot read template");
    std::stringstream ss;
    ss << in.rdbuf();
    t.compiled_.insert_or_assign(name, compile(file, ss.str()));
  }
  return t;
}

Templates Templates::from_strings(const std::map<std::string, std::string>& texts) {
  Templates t;
  for (const auto& [name, text] : texts) {
    t.compiled_.insert_or_assign(name, compile(name, text));
  }
  return t;
}

std::string Templates::render(const std::string& name, const kainjow::mustache::data& data) const {
  auto it = compiled_.find(name);
  if (it == compiled_.end()) throw TemplateError(name + ":0: no such template");
  // kainjow's render is not const (it records an error in the object), so each render works on
  // a copy of its own, which keeps this const and safe from several threads. A copy is kept for
  // the next render of the same template when its render went well (an error would stay in it
  // and fail every later render): copying the parsed tree each time was over a third of a
  // render's time, on the writer thread.
  std::optional<mustache> m;
  {
    std::lock_guard lock(spares_->mu);
    auto spare = spares_->by_name.find(name);
    if (spare != spares_->by_name.end() && !spare->second.empty()) {
      m.emplace(std::move(spare->second.back()));
      spare->second.pop_back();
    }
  }
  if (!m) m.emplace(it->second);
  std::string out = m->render(data);
  if (m->is_valid()) {
    std::lock_guard lock(spares_->mu);
    spares_->by_name[name].push_back(std::move(*m));
  }
  return out;
}

std::string Templates::render_trimmed(const std::string& name,
                                      const kainjow::mustache::data& data) const {
  const std::string out = render(name, data);
  const size_t first = out.find_first_not_of("\n ");
  if (first == std::string::npos) return {};
  return out.substr(first, out.find_last_not_of("\n ") - first + 1);
}

const std::vector<std::string>& Templates::reply_names() {
  static const std::vector<std::string> kNames = {
      "ask", "checkin", "error", "help", "my_pairings", "progress", "undo", "unknown_sender",
      // 更正 and 撤销 <whom> <date> (handlers/corrections)
      "correct", "undo_named",
      // #12 已解决 …, 我的问题 (handlers/problem_commands)
      "problem", "my_problems",
      // 通报 / 点评 asked in the chat (handlers/dispatcher), and the HTTP endpoint's own answers:
      // welcome, rate limit, non-text (bot/wecom/callback)
      "bulletin_reply", "service"};
  return kNames;
}

std::string mask_name(const std::string& name) {
  std::vector<std::string> cps;
  for (size_t i = 0; i < name.size();) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    const size_t len = c < 0x80           ? 1
                       : (c >> 5) == 0x6  ? 2
                       : (c >> 4) == 0xE  ? 3
                       : (c >> 3) == 0x1E ? 4
                                          : 1;
    cps.push_back(name.substr(i, len));
    i += len;
  }
  if (cps.empty()) return name;
  if (cps.size() == 1) return "*";
  std::string out = cps.front();
  if (cps.size() == 2) return out + "*";
  for (size_t i = 1; i + 1 < cps.size(); ++i) out += "*";
  return out + cps.back();
}

}  // namespace handlers
