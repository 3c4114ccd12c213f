// libFuzzer target: template compilation and rendering (handlers::Templates::from_strings,
// render) and the name mask. A bad template must be a TemplateError at load, never a crash at
// render time.
#include <cstddef>
#include <cstdint>
#include <string>

#include "handlers/templates.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  handlers::mask_name(text);
  // Harness bound: sections nested over the same list render list-size^depth times. Templates
  // are files the district office writes, so such blow-ups are out of scope here.
  size_t sections = 0;
  for (size_t p = text.find("{{#"); p != std::string::npos; p = text.find("{{#", p + 3)) ++sections;
  if (sections > 6) return 0;
  try {
    const auto t = handlers::Templates::from_strings({{"t", text}});
    using kainjow::mustache::data;
    data d;
    d.set("name", "王*英");
    d.set("count", "3");
    d.set("flag", true);
    data item;
    item.set("unit", "区财政局");
    item.set("percent", "87.5%");
    data items{data::type::list};
    items << item << item;
    d.set("items", items);
    data inner;
    inner.set("x", "<&\"'>");
    d.set("inner", inner);
    (void)t.render("t", d);
  } catch (const handlers::TemplateError&) {
  }
  return 0;
}
