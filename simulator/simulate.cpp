#include "simulator/simulate.h"
#include "simulator/corpus_data.h"
#include "storage/roster_csv.h"

#include "handlers/text.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <tuple>
#include <variant>

namespace simulator {

using storage::Date;
using storage::Ledger;
using storage::LocalTime;
using storage::Mode;
using storage::Month;
using storage::Pairing;

uint64_t SimRandom::below(uint64_t n) {
  // [0, limit) holds a whole number of copies of [0, n), so x % n is uniform there.
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  const uint64_t limit = max - max % n;
  for (;;) {
    const uint64_t x = gen_();
    if (x < limit) return x % n;
  }
}

int SimRandom::between(int lo, int hi) {
  return lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo) + 1));
}

namespace {

// --- names and places ------------------------------------------------------------------------

struct Weighted {
  std::string_view text;
  int weight;
};

// Common surnames with rough frequencies (per mille of the population), so that 王, 李 and 张
// dominate as they do in a real roster and full names collide now and then.
constexpr Weighted kSurnames[] = {
    {"王", 72}, {"李", 72}, {"张", 68}, {"刘", 54}, {"陈", 45}, {"杨", 32}, {"黄", 23}, {"赵", 22},
    {"吴", 20}, {"周", 19}, {"徐", 15}, {"孙", 14}, {"马", 13}, {"朱", 12}, {"胡", 12}, {"郭", 11},
    {"何", 10}, {"高", 10}, {"林", 9},  {"罗", 9},  {"郑", 8},  {"梁", 8},  {"谢", 7},  {"宋", 7},
    {"唐", 6},  {"许", 6},  {"韩", 6},  {"冯", 6},  {"邓", 6},  {"曹", 5},  {"彭", 5},  {"曾", 5},
    {"肖", 5},  {"田", 5},  {"董", 5},  {"袁", 4},  {"潘", 4},  {"于", 4},  {"蒋", 4},  {"蔡", 4},
    {"余", 4},  {"杜", 4},  {"叶", 4},  {"程", 4},  {"苏", 3},  {"魏", 3},  {"吕", 3},  {"丁", 3},
    {"任", 3},  {"沈", 3},
};

// Given names. None holds a numeral, a date or place word or a particle, so a name never reads
// as a date or a keyword, and one the parser does not know still looks like a name to it.
constexpr std::string_view kElderWomen[] = {
    "秀英", "桂英", "秀兰", "玉兰", "桂兰", "凤英", "玉珍", "秀珍", "淑珍", "玉英", "桂珍", "兰英",
    "翠花", "春梅", "金凤", "秀云", "玉梅", "桂芳", "秀芳", "凤兰", "素英", "淑英", "玉华", "秀华"};
constexpr std::string_view kElderMen[] = {
    "德明", "大海", "建国", "建华", "国强", "志强", "建军", "国华", "文明", "德胜",
    "长林", "福生", "永生", "金山", "树林", "富贵", "德福", "振华", "学文", "保国",
    "红军", "玉山", "春生", "长顺", "德山", "宝山", "汉民", "志刚", "洪亮", "永福"};
constexpr std::string_view kAdults[] = {
    "建平", "海燕", "丽娟", "红梅", "晓东", "志华", "丽华", "建峰", "海涛", "春燕",
    "秀梅", "晓燕", "卫东", "建新", "立新", "小红", "亚军", "伟",   "芳",   "娜",
    "敏",   "静",   "丽",   "强",   "磊",   "军",   "洋",   "勇",   "艳",   "杰",
    "娟",   "涛",   "明",   "超",   "霞",   "平",   "刚",   "辉",   "鹏",   "飞"};
constexpr std::string_view kChildren[] = {"浩然", "子涵", "雨轩", "欣怡", "梓涵", "宇航", "思琪",
                                          "俊杰", "佳怡", "子轩", "雨涵", "诗涵", "博文", "梓萱",
                                          "浩宇", "嘉怡", "紫涵", "语桐", "晨曦", "若曦", "梦瑶",
                                          "俊熙", "雅琪", "子豪", "洋",   "磊",   "鑫",   "悦"};

// A character typed for another that sounds alike (王秀英 → 王秀瑛).
constexpr std::pair<std::string_view, std::string_view> kHomophones[] = {
    {"英", "瑛"}, {"兰", "岚"}, {"珍", "贞"}, {"明", "铭"}, {"华", "骅"}, {"军", "君"},
    {"伟", "玮"}, {"芳", "方"}, {"梅", "玫"}, {"强", "蔷"}, {"国", "帼"}, {"林", "霖"},
    {"山", "珊"}, {"生", "升"}, {"云", "芸"}, {"涵", "晗"}, {"然", "冉"}, {"轩", "萱"},
    {"怡", "仪"}, {"杰", "洁"}, {"娟", "鹃"}, {"琪", "淇"}, {"文", "雯"}, {"福", "富"},
    {"贵", "桂"}, {"平", "萍"}, {"刚", "钢"}, {"勇", "永"}, {"霞", "夏"}, {"亮", "靓"},
    {"民", "敏"}, {"花", "华"}, {"胜", "盛"}, {"顺", "舜"}, {"海", "凯"}, {"燕", "艳"}};

constexpr std::string_view kDistricts[] = {"高新区", "东城区", "西湖区", "南山区", "北林区",
                                           "临江区", "青山区", "新城区", "河东区", "河西区",
                                           "滨湖区", "江北区", "开元区", "长安区", "永宁区",
                                           "太平区", "宝山区", "金川区", "龙泉区", "明水区"};
constexpr std::string_view kStreets[] = {"高新", "城关", "东湖", "桥西", "凤凰",
                                         "龙山", "锦江", "金水", "白云", "清河"};
// The 37 district departments ("{}" is the district: 高新区财政局, 共青团高新区委).
constexpr std::string_view kDepartments[] = {
    "{}委办公室",       "{}政府办公室",   "{}纪委监委",
    "{}委组织部",       "{}委宣传部",     "{}委统战部",
    "{}委政法委",       "{}发展和改革局", "{}科技局",
    "{}工业和信息化局", "{}公安分局",     "{}民政局",
    "{}司法局",         "{}财政局",       "{}人力资源和社会保障局",
    "{}自然资源分局",   "{}生态环境分局", "{}住房和城乡建设局",
    "{}交通运输局",     "{}水务局",       "{}农业农村局",
    "{}商务局",         "{}文化和旅游局", "{}卫生健康局",
    "{}退役军人事务局", "{}应急管理局",   "{}审计局",
    "{}市场监督管理局", "{}统计局",       "{}医疗保障局",
    "{}城市管理局",     "{}信访局",       "{}行政审批服务局",
    "{}总工会",         "共青团{}委",     "{}妇联",
    "{}供销合作社"};
constexpr std::string_view kHospitals[] = {"{}人民医院", "{}中医医院", "{}妇幼保健院",
                                           "{}第二人民医院", "{}社区卫生服务中心"};
constexpr std::string_view kSchools[] = {"{}第一中学", "{}第二中学", "{}实验中学",
                                         "{}实验小学", "{}第一小学", "{}职业中学"};
// Villages are <prefix><suffix>村; a surname prefix makes that surname common among its heads.
constexpr std::string_view kVillagePrefixes[] = {
    "张", "王", "李", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马", "朱", "胡",
    "郭", "高", "何", "林", "罗", "郑", "河", "柳", "桃", "杏", "枣", "石", "白", "东",
    "西", "南", "北", "大", "小", "新", "双", "沙", "柏", "松", "榆", "槐"};
constexpr std::string_view kVillageSuffixes[] = {"庄", "营", "寨", "集", "店", "湾", "沟",
                                                 "坡", "岭", "桥", "园", "洼", "堡", "围"};
constexpr std::string_view kCommunities[] = {"新华社区", "光明社区", "和平社区", "幸福社区",
                                             "阳光社区", "朝阳社区", "团结社区", "胜利社区"};

std::string fill(std::string_view pattern, std::string_view value) {
  std::string out(pattern);
  const auto at = out.find("{}");
  if (at != std::string::npos) out.replace(at, 2, value);
  return out;
}

std::string district_name(int k) {
  constexpr int n = static_cast<int>(std::size(kDistricts));
  if (k < n) return std::string(kDistricts[k]);
  std::string base(kDistricts[k % n]);
  base.resize(base.size() - std::string_view("区").size());
  return base + std::to_string(k / n + 1) + "区";
}

std::string_view surname(SimRandom& r) {
  int total = 0;
  for (const auto& s : kSurnames) total += s.weight;
  int x = static_cast<int>(r.below(static_cast<uint64_t>(total)));
  for (const auto& s : kSurnames) {
    if (x < s.weight) return s.text;
    x -= s.weight;
  }
  return kSurnames[0].text;
}

template <std::size_t N>
std::string_view pick(SimRandom& r, const std::string_view (&list)[N]) {
  return list[r.below(N)];
}

std::string elder_name(SimRandom& r, std::string_view family) {
  return std::string(family) +
         std::string(r.per_mille(500) ? pick(r, kElderWomen) : pick(r, kElderMen));
}

std::string adult_name(SimRandom& r) {
  return std::string(surname(r)) + std::string(pick(r, kAdults));
}

std::string phone(SimRandom& r) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "1%d%d%08d", r.between(3, 9), r.between(0, 9),
                static_cast<int>(r.below(100000000)));
  return buf;
}

std::string numbered(char prefix, int n, int width) {
  std::string digits = std::to_string(n);
  if (static_cast<int>(digits.size()) < width)
    digits.insert(0, static_cast<std::size_t>(width) - digits.size(), '0');
  return std::string(1, prefix) + digits;
}

// Splits `total` into `parts` sizes of at least `floor_size`, at most `cap` where possible,
// spread at random.
std::vector<int> spread(SimRandom& r, int total, int parts, int floor_size, int cap) {
  std::vector<int> sizes(static_cast<std::size_t>(parts), floor_size);
  int left = total - floor_size * parts;
  while (left > 0) {
    auto& s = sizes[r.below(sizes.size())];
    if (s < cap) {
      ++s;
      --left;
    }
  }
  return sizes;
}

template <class T>
void shuffle(SimRandom& r, std::vector<T>& v) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[r.below(i)]);
}

struct Village {
  std::string name;
  std::string street;
  std::string_view family;  // a surname common in this village, or ""
};

struct Household {
  std::string id;
  std::size_t village = 0;
  std::string head;
  std::vector<std::string> members;  // names of paired persons, head included when paired
  std::optional<Date> start;         // newly identified: the cadre pairing starts then
};

bool name_taken(const Household& h, const std::string& name) {
  return name == h.head || std::find(h.members.begin(), h.members.end(), name) != h.members.end();
}

// A day from the 10th to the 25th of one of the three months up to `as_of`, not after it.
Date mid_month_start(SimRandom& r, Date as_of) {
  Month m = Month::of(as_of);
  for (int back = r.between(0, 2); back > 0; --back) m = m.prev();
  Date d{m.year, m.month, r.between(10, 25)};
  if (d > as_of) d = Date{m.prev().year, m.prev().month, d.day};
  return d;
}

void add_district(SimRandom& r, int k, Date as_of, std::vector<Pairing>& cadre_rows,
                  std::vector<Pairing>& doctor_rows, std::vector<Pairing>& teacher_rows,
                  int& household_seq, int& cadre_seq, int& doctor_seq, int& teacher_seq) {
  const DistrictShape& s = kDistrictShape;
  const std::string district = district_name(k);

  std::vector<std::string> streets;
  for (int i = 0; i < s.streets; ++i)
    streets.push_back(
        std::string(kStreets[(static_cast<std::size_t>(k) + i) % std::size(kStreets)]) + "街道");

  std::vector<Village> villages;
  std::set<std::string> village_names;
  while (static_cast<int>(villages.size()) < s.villages) {
    Village v;
    if (r.per_mille(40)) {
      v.name = std::string(pick(r, kCommunities));
    } else {
      const std::string_view prefix = pick(r, kVillagePrefixes);
      v.name = std::string(prefix) + std::string(pick(r, kVillageSuffixes)) + "村";
      for (const auto& sn : kSurnames)
        if (sn.text == prefix) v.family = prefix;
    }
    if (!village_names.insert(v.name).second) continue;
    v.street = streets[villages.size() * streets.size() / static_cast<std::size_t>(s.villages)];
    villages.push_back(std::move(v));
  }

  // Households, every village with at least one, numbered in village order.
  std::vector<std::size_t> village_of(static_cast<std::size_t>(s.households));
  for (std::size_t i = 0; i < village_of.size(); ++i)
    village_of[i] = i < villages.size() ? i : r.below(villages.size());
  std::sort(village_of.begin(), village_of.end());
  std::vector<Household> households;
  for (std::size_t v : village_of) {
    Household h;
    h.id = numbered('H', ++household_seq, 7);
    h.village = v;
    const std::string_view family =
        !villages[v].family.empty() && r.per_mille(450) ? villages[v].family : surname(r);
    h.head = elder_name(r, family);
    households.push_back(std::move(h));
  }
  {
    std::vector<std::size_t> order(households.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    shuffle(r, order);
    for (int i = 0; i < s.new_households; ++i)
      households[order[i]].start = mid_month_start(r, as_of);
  }

  // Cadres: every unit has some; consecutive cadres of a unit take neighbouring households
  // (a unit is assigned villages, 包村), two or three each.
  std::vector<std::size_t> unit_of(static_cast<std::size_t>(s.cadres));
  for (std::size_t i = 0; i < unit_of.size(); ++i)
    unit_of[i] = i < std::size(kDepartments) ? i : r.below(std::size(kDepartments));
  std::sort(unit_of.begin(), unit_of.end());
  const std::vector<int> per_cadre =
      spread(r, s.households, s.cadres, s.households / s.cadres, s.households / s.cadres + 2);
  std::size_t next_household = 0;
  for (std::size_t c = 0; c < unit_of.size(); ++c) {
    Pairing base;
    base.helper_id = numbered('c', ++cadre_seq, 5);
    base.helper_name = adult_name(r);
    base.phone = phone(r);
    base.ledger = Ledger::Cadre;
    base.unit = fill(kDepartments[unit_of[c]], district);
    for (int j = 0; j < per_cadre[c]; ++j) {
      const Household& h = households[next_household++];
      Pairing p = base;
      p.household_id = h.id;
      p.household_head = h.head;
      p.village = villages[h.village].name;
      p.street = villages[h.village].street;
      p.start_date = h.start;
      cadre_rows.push_back(std::move(p));
    }
  }

  // Ill and disabled persons in the households: the head in about a third of cases, else a
  // spouse, parent or child, often of the same family name.
  struct Patient {
    std::size_t household;
    std::string name;
    const char* category;
  };
  std::vector<Patient> patients;
  for (int i = 0; i < s.ill + s.disabled; ++i) {
    const std::size_t hi = r.below(households.size());
    Household& h = households[hi];
    const bool head_free = std::find(h.members.begin(), h.members.end(), h.head) == h.members.end();
    std::string name;
    if (head_free && r.per_mille(350)) {
      name = h.head;
    } else {
      while (name.empty() || name_taken(h, name)) {
        const std::string_view family =
            r.per_mille(600) ? std::string_view(h.head).substr(0, 3) : surname(r);
        name = r.per_mille(700) ? elder_name(r, family)
                                : std::string(family) + std::string(pick(r, kAdults));
      }
    }
    h.members.push_back(name);
    patients.push_back({hi, name, i < s.ill ? "患病" : "残疾"});
  }
  std::stable_sort(patients.begin(), patients.end(),
                   [](const Patient& a, const Patient& b) { return a.household < b.household; });
  const std::vector<int> per_doctor = spread(r, s.ill + s.disabled, s.doctors, 3, 10);
  std::size_t next_patient = 0;
  for (int d = 0; d < s.doctors; ++d) {
    Pairing base;
    base.helper_id = numbered('d', ++doctor_seq, 5);
    base.helper_name = adult_name(r);
    base.phone = phone(r);
    base.ledger = Ledger::Health;
    // Every hospital has doctors; the clinic is the first street's.
    const std::size_t unit = static_cast<std::size_t>(d) < std::size(kHospitals)
                                 ? static_cast<std::size_t>(d)
                                 : r.below(std::size(kHospitals));
    base.unit = fill(kHospitals[unit], unit + 1 == std::size(kHospitals) ? streets[0] : district);
    const std::size_t first = next_patient;
    next_patient += static_cast<std::size_t>(per_doctor[static_cast<std::size_t>(d)]);
    // Now and then two of one doctor's patients share a full name (in different households).
    if (next_patient - first >= 2 && r.per_mille(60)) {
      Patient& a = patients[first];
      Patient& b = patients[first + 1 + r.below(next_patient - first - 1)];
      Household& hb = households[b.household];
      if (a.household != b.household && b.name != hb.head && !name_taken(hb, a.name)) {
        std::replace(hb.members.begin(), hb.members.end(), b.name, a.name);
        b.name = a.name;
      }
    }
    for (std::size_t i = first; i < next_patient; ++i) {
      const Household& h = households[patients[i].household];
      Pairing p = base;
      p.household_id = h.id;
      p.household_head = h.head;
      p.person = patients[i].name;
      p.person_category = patients[i].category;
      p.village = villages[h.village].name;
      p.street = villages[h.village].street;
      doctor_rows.push_back(std::move(p));
    }
  }

  // Students, each in a different household, the first 44 with a second teacher.
  std::vector<std::size_t> student_homes(households.size());
  for (std::size_t i = 0; i < student_homes.size(); ++i) student_homes[i] = i;
  shuffle(r, student_homes);
  student_homes.resize(static_cast<std::size_t>(s.students));
  std::vector<std::string> student_names;
  for (std::size_t hi : student_homes) {
    Household& h = households[hi];
    std::string name;
    while (name.empty() || name_taken(h, name))
      name = std::string(std::string_view(h.head).substr(0, 3)) + std::string(pick(r, kChildren));
    h.members.push_back(name);
    student_names.push_back(name);
  }
  std::vector<std::size_t> teacher_student(static_cast<std::size_t>(s.teachers));
  for (std::size_t t = 0; t < teacher_student.size(); ++t)
    teacher_student[t] = t < student_homes.size() ? t : t - student_homes.size();
  for (std::size_t t = 0; t < teacher_student.size(); ++t) {
    const std::size_t st = teacher_student[t];
    const Household& h = households[student_homes[st]];
    Pairing p;
    p.helper_id = numbered('t', ++teacher_seq, 5);
    p.helper_name = adult_name(r);
    p.phone = phone(r);
    p.ledger = Ledger::Education;
    p.unit = fill(kSchools[t < std::size(kSchools) ? t : r.below(std::size(kSchools))], district);
    p.household_id = h.id;
    p.household_head = h.head;
    p.person = student_names[st];
    p.person_category = "学生";
    p.village = villages[h.village].name;
    p.street = villages[h.village].street;
    teacher_rows.push_back(std::move(p));
  }
}

}  // namespace

std::vector<Pairing> simulate_roster(const RosterOptions& options) {
  if (options.scale < 1 || options.scale > 1000)
    throw std::invalid_argument("scale must be between 1 and 1000");
  SimRandom r(options.seed);
  std::vector<Pairing> cadres, doctors, teachers;
  int household_seq = 0, cadre_seq = 0, doctor_seq = 0, teacher_seq = 0;
  for (int k = 0; k < options.scale; ++k)
    add_district(r, k, options.as_of, cadres, doctors, teachers, household_seq, cadre_seq,
                 doctor_seq, teacher_seq);
  std::vector<Pairing> rows = std::move(cadres);
  rows.insert(rows.end(), std::make_move_iterator(doctors.begin()),
              std::make_move_iterator(doctors.end()));
  rows.insert(rows.end(), std::make_move_iterator(teachers.begin()),
              std::make_move_iterator(teachers.end()));
  return rows;
}

std::string roster_csv(const std::vector<Pairing>& rows) {
  std::string out =
      "帮扶人ID,帮扶人,手机,台账,单位,户编号,户主,帮扶对象,对象类别,村居,街道,结对日期,结束日期\n";
  out.reserve(rows.size() * 160);
  for (const Pairing& p : rows) {
    const std::string cells[] = {p.helper_id,
                                 p.helper_name,
                                 p.phone,
                                 std::string(storage::ledger_label(p.ledger)),
                                 p.unit,
                                 p.household_id,
                                 p.household_head,
                                 p.person,
                                 p.person_category,
                                 p.village,
                                 p.street,
                                 p.start_date ? p.start_date->iso() : std::string(),
                                 p.end_date ? p.end_date->iso() : std::string()};
    for (std::size_t i = 0; i < std::size(cells); ++i) {
      if (i) out += ',';
      out += storage::csv_quote(cells[i]);
    }
    out += '\n';
  }
  return out;
}

RosterIndex::RosterIndex(std::vector<Pairing> pairings) : pairings_(std::move(pairings)) {
  for (std::size_t i = 0; i < pairings_.size(); ++i) {
    Pairing& p = pairings_[i];
    if (p.id == 0) p.id = static_cast<int64_t>(i) + 1;
    auto [it, fresh] = by_helper_.try_emplace(p.helper_id);
    if (fresh) helpers_.push_back(p.helper_id);
    it->second.push_back(i);
  }
}

std::vector<const Pairing*> RosterIndex::of(const std::string& helper_id) const {
  std::vector<const Pairing*> out;
  if (auto it = by_helper_.find(helper_id); it != by_helper_.end())
    for (std::size_t i : it->second) out.push_back(&pairings_[i]);
  return out;
}

handlers::SenderContext RosterIndex::sender(const std::string& helper_id, Date on) const {
  handlers::SenderContext c;
  c.helper_id = helper_id;
  auto it = by_helper_.find(helper_id);
  c.known = it != by_helper_.end();
  if (!c.known) return c;
  for (std::size_t i : it->second)
    if (pairings_[i].active_on(on)) c.pairings.push_back(pairings_[i]);
  // As Store::pairings_of orders them.
  std::stable_sort(c.pairings.begin(), c.pairings.end(), [](const Pairing& a, const Pairing& b) {
    return std::tie(a.household_head, a.person) < std::tie(b.household_head, b.person);
  });
  return c;
}

std::string_view intent_code(Intent i) {
  switch (i) {
    case Intent::Checkin:
      return "checkin";
    case Intent::Command:
      return "command";
    case Intent::Chatter:
      return "chatter";
    case Intent::Mistake:
      return "mistake";
  }
  return "checkin";
}

namespace {

// --- traffic ---------------------------------------------------------------------------------

enum class Behaviour { Diligent, Lagging, Absent };

struct Festival {
  Date date;
  std::string_view phrase;  // what a helper writes about the visit
};

// Gregorian dates of the lunar festivals (春节, 元宵, 端午, 中秋, 重阳) and 清明, 2025–2028.
std::vector<Festival> festivals() {
  std::vector<Festival> f;
  const auto add = [&](int y, int m, int d, std::string_view phrase) {
    f.push_back({Date{y, m, d}, phrase});
  };
  const int table[][6][2] = {
      {{1, 29}, {2, 12}, {4, 4}, {5, 31}, {10, 6}, {10, 29}},  // 2025
      {{2, 17}, {3, 3}, {4, 5}, {6, 19}, {9, 25}, {10, 18}},   // 2026
      {{2, 6}, {2, 20}, {4, 5}, {6, 9}, {9, 15}, {10, 8}},     // 2027
      {{1, 26}, {2, 9}, {4, 4}, {5, 28}, {10, 3}, {10, 26}},   // 2028
  };
  constexpr std::string_view phrases[] = {"春节前送去年货", "元宵节送汤圆", "清明节前送去鸡蛋",
                                          "端午节送粽子",   "中秋节送月饼", "重阳节送去牛奶"};
  for (int y = 0; y < 4; ++y)
    for (int i = 0; i < 6; ++i) add(2025 + y, table[y][i][0], table[y][i][1], phrases[i]);
  return f;
}

// Phrases for the parts of a check-in. None holds a keyword it is not listed for, a date, a
// name marker (户主, 学生 …) or a "X家" that could read as someone's home.
constexpr std::string_view kCadreNotes[] = {
    "送去棉被",           "送去米面油",       "了解生产生活情况", "宣讲惠民政策",
    "帮忙打扫院子",       "询问身体状况",     "老人身体还好",     "一切正常",
    "核实收入情况",       "讲解产业扶持政策", "庄稼长势不错",     "鼓励孩子好好学习",
    "老人腿疼已联系村医", "帮助联系务工岗位", "检查用电安全",     "送去食用油和大米"};
constexpr std::string_view kCadrePhoneNotes[] = {"询问近况", "提醒注意防暑", "了解务工情况"};
constexpr std::string_view kDoctorNotes[] = {"测血压130/80", "血糖7.8，嘱按时服药", "用药指导",
                                             "康复训练",     "查体未见异常",        "健康咨询",
                                             "指导康复训练", "量血压，正常",        "换药"};
constexpr std::string_view kDoctorPhoneNotes[] = {"询问服药情况", "提醒按时复查", "了解恢复进展"};
constexpr std::string_view kTeacherNotes[] = {"辅导数学一小时",   "辅导英语作文", "心理状态良好",
                                              "了解在校学习情况", "与班主任交流", "送去学习用品",
                                              "学习积极性有提高", "心理疏导"};
constexpr std::string_view kTeacherPhoneNotes[] = {"了解学习情况", "提醒按时完成作业"};

struct CodedPhrase {
  std::string_view text;
  std::string_view code;
};
constexpr CodedPhrase kIllness[] = {{"生病住院必访", "illness"},
                                    {"老人住院了，送去水果", "illness"},
                                    {"刚出院，恢复良好", "illness"},
                                    {"做完手术恢复中", "illness"}};
constexpr CodedPhrase kAccident[] = {{"不慎摔伤，已无大碍", "accident"},
                                     {"干活受伤，伤口好转", "accident"},
                                     {"意外伤害必访", "accident"}};
constexpr CodedPhrase kWeddingFuneral[] = {{"孩子结婚，送去贺礼", "wedding_funeral"},
                                           {"老人去世，帮忙料理后事", "wedding_funeral"},
                                           {"红白喜事必访", "wedding_funeral"}};
constexpr CodedPhrase kExam[] = {
    {"孩子中考结束", "exam"}, {"考上高中了", "exam"}, {"升学考试必访", "exam"}};
constexpr CodedPhrase kPolicies[] = {
    {"落实医疗救助", "medical_aid"},   {"帮助办理大病救助", "medical_aid"},
    {"落实助学金", "education_aid"},   {"申请雨露计划", "education_aid"},
    {"危房改造已完工", "housing"},     {"帮助申请低保", "minimum_living"},
    {"兜底保障到位", "minimum_living"}};
struct ProblemPhrase {
  std::string_view text;
  std::string_view policy;  // "" when it names none
};
constexpr ProblemPhrase kProblems[] = {{"发现应享未享低保，已报民政", "minimum_living"},
                                       {"住房困难，已上报", "housing"},
                                       {"孩子上学缺学费", ""},
                                       {"医疗救助未落实", "medical_aid"},
                                       {"反映饮水困难", ""}};

constexpr std::string_view kChatter[] = {"收到",   "好的", "谢谢", "好的，谢谢！",
                                         "辛苦了", "👍",    "明白", "怎么撤销打卡？"};

template <std::size_t N>
std::string_view pick_text(SimRandom& r, const std::string_view (&list)[N]) {
  return list[r.below(N)];
}

LocalTime at(Date d, int minute_of_day, int second, int offset) {
  return LocalTime{d.days() * 86400 + minute_of_day * 60 + second - offset, offset};
}

std::string cn_number(int n) {
  constexpr std::string_view digits[] = {"", "一", "二", "三", "四", "五", "六", "七", "八", "九"};
  if (n < 10) return std::string(digits[n]);
  std::string out = n / 10 == 1 ? "" : std::string(digits[n / 10]);
  out += "十";
  out += digits[n % 10];
  return out;
}

std::string full_width_digits(std::string_view s) {
  std::string out;
  for (char c : s) {
    if ((c >= '0' && c <= '9') || c == '.' || c == '/' || c == '-') {
      const char32_t w = static_cast<char32_t>(c) + 0xFEE0;
      out += static_cast<char>(0xE0 | (w >> 12));
      out += static_cast<char>(0x80 | ((w >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (w & 0x3F));
    } else {
      out += c;
    }
  }
  return out;
}

int weekday_of(Date d) {
  const int64_t w = (d.days() + 3) % 7;  // Monday = 0; 1970-01-01 was a Thursday
  return static_cast<int>(w < 0 ? w + 7 : w);
}

constexpr std::string_view kWeekdayChars[] = {"一", "二", "三", "四", "五", "六", "日"};

// A written date that means `v` to someone reading it on `t` (v <= t), or "" for "today" left
// unsaid. `form` names the way it was written.
std::string date_phrase(SimRandom& r, Date v, Date t, std::string& form) {
  const int64_t gap = t.days() - v.days();
  const int roll = static_cast<int>(r.below(1000));
  const auto relative = [&](std::string_view word) {
    form = word.empty() ? "date_omitted" : "date_relative";
    return std::string(word);
  };
  if (gap == 0 && roll < 350) return relative("");
  if (gap == 0 && roll < 700) return relative(roll < 650 ? "今天" : "今日");
  if (gap == 1 && roll < 700) return relative(roll < 600 ? "昨天" : "昨日");
  if (gap == 2 && roll < 600) return relative("前天");
  if (gap == 3 && roll < 250) return relative("大前天");
  if (gap >= 1 && gap <= 6 && roll < 850) {
    const int wd = weekday_of(v);
    const Date monday = t.plus_days(-weekday_of(t));
    form = "date_weekday";
    if (v < monday && v >= monday.plus_days(-7)) return "上周" + std::string(kWeekdayChars[wd]);
    if (v >= monday && roll % 2 == 0) return "本周" + std::string(kWeekdayChars[wd]);
    return (roll % 3 == 0 ? "星期" : "周") + std::string(kWeekdayChars[wd]);
  }
  // Explicit. The year is left out unless written in full; a month after t's means last year,
  // which is right since v is at most a few weeks before t.
  const std::string m = std::to_string(v.month), d = std::to_string(v.day);
  std::string out;
  switch (r.below(10)) {
    case 0:
      out = m + "月" + d + "日", form = "date_md";
      break;
    case 1:
      out = m + "月" + d + "号", form = "date_md";
      break;
    case 2:
      out = m + "." + d, form = "date_dotted";
      break;
    case 3:
      out = m + "/" + d, form = "date_slashed";
      break;
    case 4:
      out = v.iso(), form = "date_iso";
      break;
    case 5:
      out = std::to_string(v.year) + "年" + m + "月" + d + "日", form = "date_ymd";
      break;
    case 6:
      out = cn_number(v.month) + "月" + cn_number(v.day) + "日", form = "date_chinese";
      break;
    case 7:
      if ((Month::of(v) == Month::of(t) && v.day <= t.day) ||
          (Month::of(v) == Month::of(t).prev() && v.day > t.day)) {
        out = d + "号", form = "date_bare_day";
      } else {
        out = m + "月" + d + "日", form = "date_md";
      }
      break;
    case 8:
      out = m + "月" + d, form = "date_md_no_suffix";
      break;
    default:
      out = full_width_digits(m + "月" + d + "日"), form = "date_full_width";
      break;
  }
  return out;
}

std::string_view village_stem(std::string_view village) {
  for (std::string_view suffix : {std::string_view("社区"), std::string_view("村")}) {
    if (village.ends_with(suffix) && village.size() - suffix.size() >= 6)
      return village.substr(0, village.size() - suffix.size());
  }
  return village;
}

bool contains(std::string_view text, std::string_view part) {
  return !part.empty() && text.find(part) != std::string_view::npos;
}

// True when `text` names none of `pairings` (by person, head or household number).
bool names_none(std::string_view text, const std::vector<Pairing>& pairings) {
  return std::none_of(pairings.begin(), pairings.end(), [&](const Pairing& p) {
    return contains(text, p.person) || contains(text, p.household_head) ||
           contains(text, p.household_id);
  });
}

// The sender's pairings a person reading `text` (normalized) would take it to mean when it names
// `p` by its name: a household pairing is known by its head, a person pairing by its person;
// several of one name are told apart by a village or household number in the text.
std::vector<const Pairing*> readings(std::string_view text, const Pairing& p,
                                     const std::vector<Pairing>& active) {
  const std::string& name = p.display_name();
  std::vector<const Pairing*> same;
  for (const Pairing& q : active)
    if (q.display_name() == name) same.push_back(&q);
  if (same.size() <= 1) return same;
  std::vector<const Pairing*> placed;
  for (const Pairing* q : same)
    if (contains(text, village_stem(q->village)) || contains(text, q->household_id))
      placed.push_back(q);
  return placed.size() == 1 ? placed : same;
}

// How a check-in names its pairing: by name, by village and name, by name and household number
// (to tell two of the same name apart), or not at all (a sender with one pairing).
enum class Naming { Plain, Village, Id, None };

struct Line {
  std::string text;
  Expected expect;
};

struct Episode {
  std::string userid;
  Date day;
  int earliest_minute = 0;
  std::vector<Line> lines;
};

struct VisitPlan {
  const Pairing* pairing = nullptr;
  Date date;
  Mode mode = Mode::Visit;
  std::vector<std::string> occasion_phrases;
  std::vector<std::string> occasions;  // codes, in kOccasionCodes order
  std::vector<std::string> policies;   // codes, in kPolicyCodes order
  std::vector<std::string> extras;     // policy and problem phrases
  bool problem = false;
};

void add_code(std::vector<std::string>& codes, std::string_view code, const std::string_view* order,
              std::size_t n) {
  if (std::find(codes.begin(), codes.end(), code) != codes.end()) return;
  codes.emplace_back(code);
  std::sort(codes.begin(), codes.end(), [&](const std::string& a, const std::string& b) {
    return std::find(order, order + n, a) < std::find(order, order + n, b);
  });
}

// ---------------------------------------------------------------------------------------------
// Check-in wordings from the hand-written corpus (tests/data/understanding_corpus.jsonl,
// embedded at build time), so that "0 mismatches" measures the parser against how helpers
// write, not against its own tables. Only single check-ins whose day is said relative to the
// day sent (今天, 昨天, 前天, 大前天, or nothing) are used: those shift to any simulated day.

struct CorpusWording {
  std::string text;  // with kNameSlot, kHeadSlot, kVillageSlot, kIdSlot where the pairing was
  Ledger ledger = Ledger::Cadre;
  int offset = 0;  // the visit's day minus the day the message was sent
  Mode mode = Mode::Visit;
  std::vector<std::string> occasions, policies;
  bool problem = false;
};

constexpr std::string_view kNameSlot = "\x01", kHeadSlot = "\x02", kVillageSlot = "\x03",
                           kIdSlot = "\x04";

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

// A day written in absolute or weekday terms does not shift with the day sent.
bool says_a_fixed_day(std::string_view text) {
  for (char c : text)
    if (c >= '0' && c <= '9') return true;
  for (std::string_view w : {"月", "周", "星期", "礼拜", "号"})
    if (text.find(w) != std::string_view::npos) return true;
  std::string rest(text);
  for (std::string_view w : {"大前日", "今日", "昨日", "前日"}) replace_all(rest, w, "");
  return rest.find("日") != std::string::npos;
}

std::vector<CorpusWording> corpus_wordings() {
  const auto roster = storage::parse_roster_csv(understanding_roster_csv());
  std::vector<CorpusWording> out;
  std::string_view all = understanding_corpus_jsonl();
  while (!all.empty()) {
    const std::size_t nl = all.find('\n');
    const std::string_view line = all.substr(0, nl);
    all = nl == std::string_view::npos ? std::string_view() : all.substr(nl + 1);
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.at("expect").at("kind") != "checkin" ||
        j.at("expect").at("checkins").size() != 1)
      continue;
    const auto& c = j.at("expect").at("checkins").at(0);
    const std::string from = j.at("from").get<std::string>();
    const std::string household = c.at("household").get<std::string>();
    const Pairing* p = nullptr;
    for (const Pairing& q : roster.rows)
      if (q.helper_id == from && q.household_id == household) p = &q;
    std::string text = j.at("text").get<std::string>();
    if (!p || says_a_fixed_day(text) || text.find(p->display_name()) == std::string::npos) continue;
    const auto sent = storage::LocalTime::parse(j.at("now").get<std::string>(), 8 * 3600);
    const auto visit = Date::parse_iso(c.at("date").get<std::string>());
    if (!sent || !visit) continue;
    CorpusWording w;
    w.ledger = p->ledger;
    w.offset = static_cast<int>(visit->days() - sent->date().days());
    if (w.offset < -3 || w.offset > 0) continue;
    replace_all(text, p->household_id, kIdSlot);
    std::string lower_id = p->household_id;
    for (char& ch : lower_id) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    replace_all(text, lower_id, kIdSlot);
    replace_all(text, p->village, kVillageSlot);
    replace_all(text, village_stem(p->village), kVillageSlot);
    replace_all(text, p->display_name(), kNameSlot);
    if (p->household_head != p->display_name()) replace_all(text, p->household_head, kHeadSlot);
    w.text = std::move(text);
    w.mode = storage::mode_from(c.at("mode").get<std::string>()).value_or(Mode::Visit);
    w.occasions = c.at("occasions").get<std::vector<std::string>>();
    w.policies = c.at("policies").get<std::vector<std::string>>();
    w.problem = c.at("problem").get<bool>();
    out.push_back(std::move(w));
  }
  return out;
}

class TrafficBuilder {
 public:
  TrafficBuilder(const RosterIndex& roster, const TrafficOptions& o)
      : roster_(roster), o_(o), r_(o.seed), festivals_(festivals()), wordings_(corpus_wordings()) {}

  std::vector<SimMessage> build() {
    if (o_.to < o_.from) throw std::invalid_argument("--to is before --from");
    std::vector<Behaviour> behaviour;
    for (std::size_t i = 0; i < roster_.helpers().size(); ++i) {
      const int x = static_cast<int>(r_.below(1000));
      behaviour.push_back(x < 650   ? Behaviour::Diligent
                          : x < 920 ? Behaviour::Lagging
                                    : Behaviour::Absent);
    }
    const std::size_t strangers =
        std::max<std::size_t>(1, roster_.pairings().size() / 600);  // about 3 per district
    bool first_month = true;
    for (Month m = Month::of(o_.from); m <= Month::of(o_.to); m = m.next()) {
      const Date lo = std::max(m.first(), o_.from), hi = std::min(m.last(), o_.to);
      for (std::size_t h = 0; h < roster_.helpers().size(); ++h)
        helper_month(roster_.helpers()[h], behaviour[h], m, lo, hi, first_month);
      for (std::size_t s = 0; s < strangers; ++s) stranger_month(s, lo, hi);
      first_month = false;
    }
    return lay_out();
  }

 private:
  // --- planning ------------------------------------------------------------------------------

  void helper_month(const std::string& helper, Behaviour b, Month m, Date lo, Date hi,
                    bool first_month) {
    const auto pairings = roster_.of(helper);
    for (const Pairing* p : pairings) {
      Date plo = lo, phi = hi;
      if (p->start_date && *p->start_date > plo) plo = *p->start_date;
      if (p->end_date && *p->end_date < phi) phi = *p->end_date;
      if (phi < plo) continue;
      if (b == Behaviour::Lagging && phi.days() - plo.days() > 11) plo = phi.plus_days(-11);
      const int visits = b == Behaviour::Diligent  ? 1 + r_.per_mille(150)
                         : b == Behaviour::Lagging ? r_.per_mille(550)
                                                   : r_.per_mille(100);
      for (int v = 0; v < visits; ++v) {
        VisitPlan plan = plan_visit(*p, b, m, plo, phi, v == 0);
        report(helper, plan, b);
      }
      const bool summer = m.month == 7 || m.month == 8 || m.month == 2;
      if (p->ledger == Ledger::Education && visits > 0 && !summer &&
          r_.per_mille(b == Behaviour::Diligent ? 450 : 200)) {
        VisitPlan plan = plan_visit(*p, b, m, plo, phi, false);
        plan.mode = Mode::SchoolVisit;
        report(helper, plan, b);
      }
      if (p->ledger == Ledger::Health && r_.per_mille(b == Behaviour::Diligent ? 250 : 120)) {
        VisitPlan plan = plan_visit(*p, b, m, plo, phi, false);
        plan.mode = Mode::Phone;
        plan.occasions.clear();
        plan.occasion_phrases.clear();
        report(helper, plan, b);
      }
    }
    // Commands.
    const int progress = b == Behaviour::Lagging ? 250 : b == Behaviour::Diligent ? 80 : 60;
    if (r_.per_mille(progress)) {
      const Date day = random_day(std::max(lo, hi.plus_days(-9)), hi);
      const std::string_view words[] = {"本月进度", "本月进度？", "进度"};
      command(helper, day, std::string(words[r_.below(3)]), "progress");
    }
    if (r_.per_mille(first_month ? 100 : 40)) {
      command(helper, random_day(lo, hi), "我的结对", "my_pairings");
    }
    if (r_.per_mille(first_month ? 60 : 15)) {
      // Drawn one after the other: the order in which a call's arguments are evaluated is
      // unspecified (g++ and clang differ), and the same seed must give the same messages.
      const bool plain = r_.per_mille(800);
      command(helper, random_day(lo, hi), plain ? "帮助" : "帮助？", "help");
    }
  }

  // Someone not on the roster (a new colleague, a leader) tries the bot.
  void stranger_month(std::size_t s, Date lo, Date hi) {
    const std::string userid = numbered('x', static_cast<int>(s) + 1, 5);
    const int n = r_.between(0, 2);
    for (int i = 0; i < n; ++i) {
      Episode e{userid, random_day(lo, hi), r_.between(8 * 60, 21 * 60), {}};
      if (r_.per_mille(300)) {
        e.lines.push_back(
            {with_mention("本月进度"), command_expect("progress", "stranger_command")});
      } else {
        const Pairing& p = roster_.pairings()[r_.below(roster_.pairings().size())];
        Expected x;
        x.intent = Intent::Mistake;
        x.error_code = "unknown_sender";
        x.form = "stranger";
        e.lines.push_back({with_mention("走访 " + p.household_head + "户 今天 " +
                                        std::string(pick_text(r_, kCadreNotes))),
                           x});
      }
      episodes_.push_back(std::move(e));
    }
  }

  Date random_day(Date lo, Date hi) {
    Date d = lo.plus_days(
        static_cast<int64_t>(r_.below(static_cast<uint64_t>(hi.days() - lo.days() + 1))));
    if (weekday_of(d) >= 5 && r_.per_mille(600))
      d = lo.plus_days(
          static_cast<int64_t>(r_.below(static_cast<uint64_t>(hi.days() - lo.days() + 1))));
    return d;
  }

  VisitPlan plan_visit(const Pairing& p, Behaviour b, Month m, Date lo, Date hi, bool first) {
    VisitPlan plan;
    plan.pairing = &p;
    plan.date = random_day(lo, hi);
    switch (p.ledger) {
      case Ledger::Cadre:
        plan.mode = r_.per_mille(b == Behaviour::Diligent ? 30 : 120) ? Mode::Phone : Mode::Visit;
        break;
      case Ledger::Health:
        plan.mode = Mode::Service;
        break;
      case Ledger::Education:
        plan.mode = r_.per_mille(60) ? Mode::Phone : Mode::HomeVisit;
        break;
    }
    const auto occasion = [&](const CodedPhrase* list, std::size_t n) {
      const CodedPhrase& c = list[r_.below(n)];
      plan.occasion_phrases.emplace_back(c.text);
      add_code(plan.occasions, c.code, handlers::kOccasionCodes.data(),
               handlers::kOccasionCodes.size());
    };
    // A festival in the month: many visit in the week before it (节日必访).
    if (first && p.ledger != Ledger::Education && plan.mode != Mode::Phone) {
      for (const Festival& f : festivals_) {
        if (Month::of(f.date) != m || f.date < lo) continue;
        const Date from = std::max(lo, f.date.plus_days(-6)), to = std::min(hi, f.date);
        if (to < from || !r_.per_mille(500)) continue;
        plan.date = random_day(from, to);
        plan.occasion_phrases.emplace_back(f.phrase);
        add_code(plan.occasions, "festival", handlers::kOccasionCodes.data(),
                 handlers::kOccasionCodes.size());
      }
    }
    const int illness = p.ledger == Ledger::Health ? 80 : p.ledger == Ledger::Cadre ? 30 : 10;
    if (plan.mode != Mode::Phone) {
      if (r_.per_mille(illness)) occasion(kIllness, std::size(kIllness));
      if (r_.per_mille(10)) occasion(kAccident, std::size(kAccident));
      if (p.ledger == Ledger::Cadre && r_.per_mille(8))
        occasion(kWeddingFuneral, std::size(kWeddingFuneral));
      const bool exam_season = m.month == 6 || m.month == 7;
      if (p.ledger == Ledger::Education && exam_season && r_.per_mille(300))
        occasion(kExam, std::size(kExam));
    }
    const int policy = p.ledger == Ledger::Cadre ? 40 : 30;
    if (r_.per_mille(policy)) {
      // Doctors deliver medical aid, teachers schooling aid, cadres any of them.
      std::vector<const CodedPhrase*> fit;
      for (const CodedPhrase& c : kPolicies) {
        if ((p.ledger == Ledger::Health && c.code != "medical_aid") ||
            (p.ledger == Ledger::Education && c.code != "education_aid"))
          continue;
        fit.push_back(&c);
      }
      const CodedPhrase& c = *fit[r_.below(fit.size())];
      plan.extras.emplace_back(c.text);
      add_code(plan.policies, c.code, handlers::kPolicyCodes.data(), handlers::kPolicyCodes.size());
    }
    if (r_.per_mille(p.ledger == Ledger::Cadre ? 30 : 15)) {
      const ProblemPhrase& pp = kProblems[r_.below(std::size(kProblems))];
      plan.extras.emplace_back(pp.text);
      plan.problem = true;
      if (!pp.policy.empty())
        add_code(plan.policies, pp.policy, handlers::kPolicyCodes.data(),
                 handlers::kPolicyCodes.size());
    }
    return plan;
  }

  // When the visit is reported, and the messages around it (mistakes, undo, chatter).
  void report(const std::string& helper, const VisitPlan& plan, Behaviour b) {
    const int roll = static_cast<int>(r_.below(1000));
    int delay = roll < 620   ? 0
                : roll < 820 ? 1
                : roll < 890 ? 2
                : roll < 970 ? r_.between(3, 6)
                             : r_.between(7, 20);
    if (b == Behaviour::Lagging && delay == 0 && r_.per_mille(200)) delay = r_.between(1, 4);
    Date t = plan.date.plus_days(delay);
    if (t > o_.to) t = plan.date;
    const int earliest =
        t == plan.date ? r_.between(11 * 60, 21 * 60 + 30) : r_.between(7 * 60 + 30, 22 * 60);
    Episode e{helper, t, earliest, {}};
    const handlers::SenderContext ctx = roster_.sender(helper, t);

    const int mistake = static_cast<int>(r_.below(1000));
    if (mistake < 25) {
      // Wrong date sent, undone, then sent right.
      const Date lowest = std::max(o_.from, plan.pairing->start_date.value_or(o_.from));
      const Date wrong = plan.date.plus_days(-r_.between(1, 3));
      if (wrong >= lowest) {
        VisitPlan w = plan;
        w.date = wrong;
        Line first = checkin_line(w, t, ctx);
        if (first.expect.intent == Intent::Checkin) {
          first.expect.undone_later = true;
          e.lines.push_back(std::move(first));
          e.lines.push_back(
              {with_mention(r_.per_mille(850) ? "撤销" : "撤回"), command_expect("undo", "undo")});
        }
      }
    } else if (mistake < 45) {
      mistaken_date(e, plan, t, ctx, true);
    } else if (mistake < 53) {
      mistaken_date(e, plan, t, ctx, false);
    } else if (mistake < 68) {
      wrong_name(e, plan, t, ctx, true);
    } else if (mistake < 76) {
      wrong_name(e, plan, t, ctx, false);
    } else if (mistake < 88 && ctx.pairings.size() > 1) {
      forgotten_name(e, plan, t);
    }
    e.lines.push_back(checkin_line(plan, t, ctx));
    if (r_.per_mille(30)) {
      Expected x;
      x.intent = Intent::Chatter;
      x.error_code = "not_understood";
      x.form = "chatter";
      e.lines.push_back({with_mention(std::string(pick_text(r_, kChatter))), x});
    }
    episodes_.push_back(std::move(e));
  }

  Expected command_expect(std::string code, std::string form) {
    Expected x;
    x.intent = Intent::Command;
    x.command = std::move(code);
    x.form = std::move(form);
    return x;
  }

  void command(const std::string& helper, Date day, std::string text, std::string code) {
    Episode e{helper, day, r_.between(7 * 60 + 30, 22 * 60), {}};
    e.lines.push_back({with_mention(text), command_expect(std::move(code), "command")});
    episodes_.push_back(std::move(e));
  }

  // A date in the future (明天, or a later day this month) or one that does not exist.
  void mistaken_date(Episode& e, const VisitPlan& plan, Date t, const handlers::SenderContext& ctx,
                     bool future) {
    std::string date;
    if (future) {
      const int dim = storage::days_in_month(t.year, t.month);
      date =
          t.day < dim && r_.per_mille(600)
              ? std::to_string(t.month) + "月" + std::to_string(r_.between(t.day + 1, dim)) + "日"
              : "明天";
    } else {
      const Date v = plan.date;
      const int dim = storage::days_in_month(v.year, v.month);
      date = std::to_string(v.month) + "月" + std::to_string(dim < 31 ? dim + 1 : 32) + "日";
    }
    Line l = checkin_line(plan, t, ctx, date);
    if (l.expect.intent != Intent::Checkin) return;
    l.expect = Expected{};
    l.expect.intent = Intent::Mistake;
    // "明天去了X家" reads as a plan, and a plan is answered as one (issue 9).
    l.expect.error_code = !future                                      ? "invalid_date"
                          : l.text.find("明天去") != std::string::npos ? "not_done"
                                                                       : "future_date";
    l.expect.form = future ? "future_date" : "invalid_date";
    e.lines.push_back(std::move(l));
  }

  // A name the sender is not paired with: their own pairing's name mistyped, or a neighbour's.
  void wrong_name(Episode& e, const VisitPlan& plan, Date t, const handlers::SenderContext& ctx,
                  bool typo) {
    std::string name;
    if (typo) {
      name = plan.pairing->display_name();
      bool changed = false;
      for (const auto& [from, to] : kHomophones) {
        if (name.size() > 3 && std::string_view(name).substr(name.size() - 3) == from) {
          name = name.substr(0, name.size() - 3) + std::string(to);
          changed = true;
          break;
        }
      }
      if (!changed) return;
    } else {
      name = roster_.pairings()[r_.below(roster_.pairings().size())].display_name();
    }
    if (!names_none(name, ctx.pairings)) return;
    for (const Pairing& q : ctx.pairings)
      if (contains(q.display_name(), name) || contains(q.household_head, name)) return;
    std::string text;
    std::string date_form;
    const std::string date = date_phrase(r_, plan.date, t, date_form);
    switch (plan.pairing->ledger) {
      case Ledger::Cadre:
        text = "走访 " + name + "户 " + date;
        break;
      case Ledger::Health:
        text = "上门服务 患者" + name + " " + date;
        break;
      case Ledger::Education:
        text = "家访 学生" + name + " " + date;
        break;
    }
    text += " " + std::string(note_for(*plan.pairing, plan.mode));
    if (!names_none(text, ctx.pairings)) return;
    Expected x;
    x.intent = Intent::Mistake;
    // One character off one of the sender's own names: asked "是不是…" (issue 9).
    const bool near = std::any_of(ctx.pairings.begin(), ctx.pairings.end(), [&](const Pairing& q) {
      const std::string& n = q.display_name();
      return handlers::code_points(n) == handlers::code_points(name) &&
             handlers::edit_distance(n, name) == 1 &&
             (handlers::code_points(n) > 2 || n.substr(0, 3) == name.substr(0, 3));
    });
    x.error_code = near ? "did_you_mean" : "not_paired";
    x.form = typo ? "typo_name" : "neighbour_name";
    e.lines.push_back({with_mention(text), x});
  }

  void forgotten_name(Episode& e, const VisitPlan& plan, Date t) {
    std::string date_form;
    const std::string date = date_phrase(r_, plan.date, t, date_form);
    std::string mode;
    switch (plan.pairing->ledger) {
      case Ledger::Cadre:
        mode = "走访";
        break;
      case Ledger::Health:
        mode = "上门服务";
        break;
      case Ledger::Education:
        mode = "家访";
        break;
    }
    Expected x;
    x.intent = Intent::Mistake;
    x.error_code = "ambiguous";
    x.form = "forgotten_name";
    e.lines.push_back(
        {with_mention(mode + " " + date + " " + std::string(note_for(*plan.pairing, plan.mode))),
         x});
  }

  std::string_view note_for(const Pairing& p, Mode mode) {
    const bool phone = mode == Mode::Phone;
    switch (p.ledger) {
      case Ledger::Cadre:
        return phone ? pick_text(r_, kCadrePhoneNotes) : pick_text(r_, kCadreNotes);
      case Ledger::Health:
        return phone ? pick_text(r_, kDoctorPhoneNotes) : pick_text(r_, kDoctorNotes);
      case Ledger::Education:
        return phone ? pick_text(r_, kTeacherPhoneNotes) : pick_text(r_, kTeacherNotes);
    }
    return "";
  }

  std::string mode_word(const Pairing& p, Mode mode) {
    switch (mode) {
      case Mode::Visit: {
        const std::string_view w[] = {"走访", "走访", "入户走访", "入户", "看望", "慰问", "上门"};
        return std::string(w[r_.below(std::size(w))]);
      }
      case Mode::Service: {
        const std::string_view w[] = {"上门服务", "上门服务", "入户服务", "上门巡诊", ""};
        return std::string(w[r_.below(std::size(w))]);
      }
      case Mode::HomeVisit:
        return r_.per_mille(300) ? "#家访" : r_.per_mille(200) ? "" : "家访";
      case Mode::SchoolVisit:
        return r_.per_mille(300) ? "#校访" : "校访";
      case Mode::Phone:
        if (p.ledger == Ledger::Cadre) return r_.per_mille(500) ? "电话慰问" : "电话联系";
        if (p.ledger == Ledger::Health) return r_.per_mille(700) ? "电话随访" : "微信视频随访";
        return "电话联系";
    }
    return "";
  }

  // The check-in for `plan` written on `t`; `forced_date` replaces the date phrase. When the
  // name cannot be told apart from another pairing of the sender even with the village and
  // household number, the line is expected to be refused as ambiguous.
  // The visit of `plan` in the words of a corpus message of the same ledger, relative day, mode
  // and findings,
  // with this pairing's name, head, village and household number put in; nullopt when none fits
  // or the result would not name the pairing alone.
  std::optional<Line> corpus_line(const VisitPlan& plan, Date t,
                                  const handlers::SenderContext& ctx) {
    const Pairing& p = *plan.pairing;
    const int offset = static_cast<int>(plan.date.days() - t.days());
    std::vector<const CorpusWording*> fits;
    for (const CorpusWording& w : wordings_)
      // Same ledger, day, mode and findings: the plan keeps the traffic's stated mix.
      if (w.ledger == p.ledger && w.offset == offset && w.mode == plan.mode &&
          w.occasions == plan.occasions && w.policies == plan.policies && w.problem == plan.problem)
        fits.push_back(&w);
    if (fits.empty()) return std::nullopt;
    const CorpusWording& w = *fits[r_.below(fits.size())];
    std::string text = w.text;
    replace_all(text, kIdSlot, p.household_id);
    replace_all(text, kVillageSlot, p.village);
    replace_all(text, kHeadSlot, p.household_head);
    replace_all(text, kNameSlot, p.display_name());
    const auto meant = readings(handlers::normalize(text, o_.bot_name), p, ctx.pairings);
    if (meant.size() != 1 || meant.front()->id != p.id) return std::nullopt;
    for (const Pairing& q : ctx.pairings)
      if (q.id != p.id && (contains(text, q.display_name()) || contains(text, q.household_head)))
        return std::nullopt;
    Expected x;
    x.intent = Intent::Checkin;
    x.household_id = p.household_id;
    x.person = p.person;
    x.visit_date = plan.date;
    x.mode = w.mode;
    x.occasions = w.occasions;
    x.policies = w.policies;
    x.problem = w.problem;
    x.form = "corpus";
    return Line{text, x};
  }

  Line checkin_line(const VisitPlan& plan, Date t, const handlers::SenderContext& ctx,
                    const std::optional<std::string>& forced_date = std::nullopt) {
    if (!forced_date && !wordings_.empty() && r_.per_mille(o_.corpus_per_mille)) {
      if (auto l = corpus_line(plan, t, ctx)) return *l;
    }
    const Pairing& p = *plan.pairing;
    Expected x;
    x.intent = Intent::Checkin;
    x.household_id = p.household_id;
    x.person = p.person;
    x.visit_date = plan.date;
    x.mode = plan.mode;
    x.occasions = plan.occasions;
    x.policies = plan.policies;
    x.problem = plan.problem;

    std::string date_form;
    const std::string date = forced_date ? *forced_date : date_phrase(r_, plan.date, t, date_form);
    std::string mode = mode_word(p, plan.mode);
    const bool alone = ctx.pairings.size() == 1;

    std::vector<std::string> extras = plan.occasion_phrases;
    extras.insert(extras.end(), plan.extras.begin(), plan.extras.end());
    std::string note(note_for(p, plan.mode));
    std::string slip;
    if (r_.per_mille(60)) {  // a typo in the note that changes nothing
      const std::pair<std::string_view, std::string_view> slips[] = {
          {"棉被", "棉背"}, {"身体", "生体"}, {"情况", "清况"}, {"政策", "正策"}, {"学习", "学系"}};
      for (const auto& [from, to] : slips) {
        if (const auto at = note.find(from); at != std::string::npos) {
          note.replace(at, from.size(), to);
          slip = "+typo_note";
          break;
        }
      }
    }
    if (!note.empty() && r_.per_mille(extras.empty() ? 850 : 400)) extras.push_back(note);
    if (mode.empty() && extras.empty()) mode = p.ledger == Ledger::Health ? "上门服务" : "家访";

    // How the pairing is named, narrowed by village or household number when needed.
    Naming naming =
        alone && r_.per_mille(p.ledger == Ledger::Education ? 600 : 300) && !mode.empty()
            ? Naming::None
            : Naming::Plain;
    std::string text, form;
    for (int attempt = 0; attempt < 3; ++attempt) {
      text = compose(p, plan.mode, mode, date, extras, naming, form);
      if (naming == Naming::None) break;
      const auto meant = readings(handlers::normalize(text, o_.bot_name), p, ctx.pairings);
      if (meant.size() == 1 && meant.front()->id == p.id) break;
      if (naming == Naming::Plain) {
        naming = Naming::Village;
      } else if (naming == Naming::Village) {
        naming = Naming::Id;
      } else {
        Expected amb;
        amb.intent = Intent::Mistake;
        amb.error_code = "ambiguous";
        amb.form = "same_name_same_household";
        return {with_mention(text), amb};
      }
    }
    x.form = form + (date_form.empty() ? "" : "+" + date_form) + slip;
    return {with_mention(text), x};
  }

  // The text of a check-in from its parts, in one of the orders helpers use; `form` gets tags
  // for how the pairing was named and any harmless slip.
  std::string compose(const Pairing& p, Mode mode, const std::string& mode_text,
                      const std::string& date, const std::vector<std::string>& extras,
                      Naming naming, std::string& form) {
    const std::string& name = p.display_name();
    const bool phone = mode == Mode::Phone;
    std::string who;
    if (naming == Naming::None) {
      who = "";
      form = "no_name";
    } else if (naming == Naming::Village) {
      who = p.village + name + (p.ledger == Ledger::Cadre ? "家" : "");
      form = "name_village";
    } else if (naming == Naming::Id) {
      who = name + "（户编号" + p.household_id + "）";
      form = "name_household_id";
    } else {
      switch (p.ledger) {
        case Ledger::Cadre: {
          const std::string_view f[] = {"户", "家", "户主", "", "家里"};
          const std::size_t k = r_.below(std::size(f));
          who = k == 2 ? "户主" + name : name + std::string(f[k]);
          form = k == 0   ? "name_hu"
                 : k == 1 ? "name_jia"
                 : k == 2 ? "name_huzhu"
                 : k == 3 ? "name_bare"
                          : "name_jiali";
          break;
        }
        case Ledger::Health: {
          const std::size_t k = r_.below(3);
          who = k == 0 ? name : k == 1 ? "患者" + name : name + "家";
          form = k == 0 ? "name_bare" : k == 1 ? "name_patient" : "name_jia";
          break;
        }
        case Ledger::Education: {
          const std::size_t k = r_.below(3);
          who = k == 0 ? "学生" + name : k == 1 ? name + "同学" : name;
          form = k == 0 ? "name_student" : k == 1 ? "name_tongxue" : "name_bare";
          break;
        }
      }
    }
    const std::string sep = r_.per_mille(700) ? " " : r_.per_mille(700) ? "，" : ",";
    std::vector<std::string> parts;
    const int order = static_cast<int>(r_.below(10));
    const bool cadre_visit = p.ledger == Ledger::Cadre && mode == Mode::Visit;
    if (cadre_visit && order == 0 && (naming == Naming::Plain || naming == Naming::Village)) {
      // 昨天去了陈玉兰家 / 到张庄村孙大海家
      std::string home = (naming == Naming::Village ? p.village : "") + name + "家";
      parts.push_back(date + (r_.per_mille(500) ? "去了" : "到") + home);
      form = "going_home";
    } else if (order <= 2 && naming != Naming::Id) {
      // 昨天走访张庄村孙大海家
      parts.push_back(date + mode_text + who);
    } else if (order <= 4 && !phone) {
      // 打卡：户主李德明，11月26日，…，走访
      parts.push_back("打卡：" + (who.empty() ? mode_text : who));
      parts.push_back(date);
      if (!who.empty()) parts.push_back(mode_text);
    } else if (order <= 6) {
      parts.push_back(who);
      parts.push_back(date);
      parts.push_back(mode_text);
    } else {
      parts.push_back(mode_text);
      parts.push_back(who);
      parts.push_back(date);
    }
    parts.insert(parts.end(), extras.begin(), extras.end());
    std::string text;
    for (const auto& part : parts) {
      if (part.empty()) continue;
      if (!text.empty()) text += sep;
      text += part;
    }
    if (r_.per_mille(40)) {
      text += r_.per_mille(500) ? "。。" : "！";
      form += "+typo_punctuation";
    } else if (r_.per_mille(30)) {
      std::string wide;
      for (char c : text) wide += c == ' ' ? std::string("\xE3\x80\x80") : std::string(1, c);
      text = full_width_digits(wide);
      form += "+full_width";
    }
    return text;
  }

  std::string with_mention(std::string text) {
    const int roll = static_cast<int>(r_.below(1000));
    const std::string& bot = o_.bot_name;
    if (roll < 550) return "@" + bot + " " + text;
    if (roll < 750) return "@" + bot + "\xE2\x80\x85" + text;  // WeCom puts U+2005 after a mention
    if (roll < 800) return "\xEF\xBC\xA0" + bot + " " + text;  // full-width ＠
    if (roll < 850) return text + " @" + bot;
    if (roll < 900) return "@" + bot + text;
    return text;
  }

  // --- layout --------------------------------------------------------------------------------

  // Each helper's episodes of a day run one after another, a few minutes apart, so an undo
  // always follows the check-in it undoes.
  std::vector<SimMessage> lay_out() {
    std::stable_sort(episodes_.begin(), episodes_.end(), [](const Episode& a, const Episode& b) {
      return std::tie(a.userid, a.day, a.earliest_minute) <
             std::tie(b.userid, b.day, b.earliest_minute);
    });
    struct Timed {
      SimMessage m;
      std::size_t seq;
    };
    std::vector<Timed> out;
    std::string user;
    Date day;
    int cursor = 0;
    for (Episode& e : episodes_) {
      if (e.userid != user || e.day != day) {
        user = e.userid;
        day = e.day;
        cursor = 0;
      }
      cursor = std::max(cursor, e.earliest_minute);
      for (Line& l : e.lines) {
        const int minute = std::min(cursor, 23 * 60 + 59);
        out.push_back({SimMessage{at(e.day, minute, r_.between(0, 59), o_.utc_offset_seconds),
                                  e.userid, std::move(l.text), std::move(l.expect)},
                       out.size()});
        cursor += r_.between(1, 5);
      }
      cursor += r_.between(3, 40);
    }
    std::stable_sort(out.begin(), out.end(), [](const Timed& a, const Timed& b) {
      return std::tie(a.m.time.unix_seconds, a.seq) < std::tie(b.m.time.unix_seconds, b.seq);
    });
    std::vector<SimMessage> messages;
    messages.reserve(out.size());
    for (Timed& t : out) messages.push_back(std::move(t.m));
    return messages;
  }

  const RosterIndex& roster_;
  const TrafficOptions& o_;
  SimRandom r_;
  std::vector<Festival> festivals_;
  std::vector<CorpusWording> wordings_;
  std::vector<Episode> episodes_;
};

}  // namespace

std::vector<SimMessage> simulate_traffic(const RosterIndex& roster, const TrafficOptions& options) {
  return TrafficBuilder(roster, options).build();
}

std::string traffic_json_line(const SimMessage& m) {
  nlohmann::ordered_json j;
  j["time"] = m.time.iso();
  j["userid"] = m.userid;
  j["text"] = m.text;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::optional<std::string> mismatch(const SimMessage& m, const handlers::Understanding& u) {
  const Expected& x = m.expect;
  const auto got = [&] { return ", got " + handlers::to_json(u); };
  switch (x.intent) {
    case Intent::Checkin: {
      const std::string want = "wanted checkin " + x.household_id + "/" + x.person + " on " +
                               x.visit_date.iso() + " " + std::string(storage::mode_code(x.mode));
      const auto* c = std::get_if<handlers::Checkin>(&u);
      if (!c) return want + got();
      if (c->household_id != x.household_id || c->person != x.person ||
          c->visit_date != x.visit_date || c->mode != x.mode || c->occasions != x.occasions ||
          c->policies != x.policies || c->problems.empty() == x.problem)
        return want + (x.problem ? " with a problem" : "") + got();
      return std::nullopt;
    }
    case Intent::Command: {
      const auto* c = std::get_if<handlers::CommandMsg>(&u);
      if (!c || handlers::command_code(c->command) != x.command)
        return "wanted command " + x.command + got();
      return std::nullopt;
    }
    case Intent::Chatter:
    case Intent::Mistake: {
      const auto* e = std::get_if<handlers::ParseError>(&u);
      if (!e || e->code != x.error_code) return "wanted error " + x.error_code + got();
      return std::nullopt;
    }
  }
  return std::nullopt;
}

TrafficMix traffic_mix(const std::vector<SimMessage>& messages) {
  TrafficMix mix;
  mix.messages = messages.size();
  for (const SimMessage& m : messages) {
    const Expected& x = m.expect;
    for (std::size_t b = 0; b < x.form.size();) {
      const std::size_t e = std::min(x.form.find('+', b), x.form.size());
      ++mix.forms[x.form.substr(b, e - b)];
      b = e + 1;
    }
    switch (x.intent) {
      case Intent::Checkin:
        ++mix.checkins;
        if (!x.occasions.empty()) ++mix.with_occasion;
        if (!x.policies.empty()) ++mix.with_policy;
        if (x.problem) ++mix.with_problem;
        if (x.mode == Mode::Phone) ++mix.phone;
        if (x.undone_later) ++mix.undone;
        if (m.time.date().days() - x.visit_date.days() >= 2) ++mix.late;
        break;
      case Intent::Command:
        ++mix.commands;
        ++mix.commands_by[x.command];
        break;
      case Intent::Chatter:
        ++mix.chatter;
        ++mix.errors[x.error_code];
        break;
      case Intent::Mistake:
        ++mix.mistakes;
        ++mix.errors[x.error_code];
        break;
    }
  }
  return mix;
}

}  // namespace simulator
