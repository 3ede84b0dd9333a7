#include "status_view.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <vector>

#include "format.h"
#include "hardware_view.h"

namespace ioasid::ctl {
namespace {

using Json = nlohmann::ordered_json;

// A scalar (or a list of them) as text; sizes and addresses in the units
// people read them in.
std::string value_text(std::string_view key, const Json& value)
{
    if (value.is_array()) {
        std::string out;
        for (const Json& item : value) {
            if (!out.empty())
                out += ",";
            out += value_text(key, item);
        }
        return out.empty() ? "-" : out;
    }
    if (value.is_string())
        return value.get<std::string>();
    if (value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0)) {
        auto n = value.get<std::uint64_t>();
        if (key.ends_with("bytes"))
            return human_size(n);
        if (key.find("iova") != std::string_view::npos || key == "length" || key == "alignment")
            return hex(n);
        return std::to_string(n);
    }
    if (value.is_null())
        return "-";
    return value.dump();
}

// A field's name as shown: "pinned_bytes" -> "pinned" (the value says
// "8 KiB"), other underscores as spaces.
std::string label(std::string_view key)
{
    std::string shown(key);
    if (shown.ends_with("_bytes"))
        shown.resize(shown.size() - 6);
    std::replace(shown.begin(), shown.end(), '_', ' ');
    return shown;
}

// key value pairs of the fields not in `skip`.
std::string other_fields(const Json& object, const std::set<std::string_view>& skip)
{
    std::string out;
    for (const auto& [key, value] : object.items()) {
        if (skip.contains(key))
            continue;
        if (!out.empty())
            out += "  ";
        out += label(key) + " " + value_text(key, value);
    }
    return out;
}

// "key value" for the fields of `object` named in `order` (those present),
// then every field in neither `order` nor `skip`.
std::string fields_in_order(const Json& object, std::initializer_list<std::string_view> order,
                            std::set<std::string_view> skip)
{
    std::string out;
    for (std::string_view key : order) {
        auto it = object.find(std::string(key));
        if (it == object.end())
            continue;
        if (!out.empty())
            out += "  ";
        out += label(key) + " " + value_text(key, *it);
        skip.insert(key);
    }
    std::string rest = other_fields(object, skip);
    if (!rest.empty())
        out += (out.empty() ? "" : "  ") + rest;
    return out;
}

std::string access_text(const Json& area)
{
    if (!area.contains("readable") && !area.contains("writable") && !area.contains("writeable"))
        return "-";
    bool r = area.value("readable", false);
    bool w = area.value("writable", area.value("writeable", false));
    return std::string(r ? "r" : "-") + (w ? "w" : "-");
}

void render_areas(const Json& areas, std::string& out)
{
    Table table("        ");
    bool pinned = std::any_of(areas.begin(), areas.end(),
                              [](const Json& a) { return a.contains("pinned_bytes"); });
    std::vector<std::string> head{"IOVA", "LENGTH", "ACCESS"};
    if (pinned)
        head.push_back("PINNED");
    head.push_back("");
    table.row(head);
    for (const Json& area : areas) {
        auto iova = area.value("iova", std::uint64_t{0});
        auto length = area.value("length", std::uint64_t{0});
        std::vector<std::string> row{iova_span(iova, length), human_size(length), access_text(area)};
        if (pinned)
            row.push_back(area.contains("pinned_bytes") ? value_text("pinned_bytes", area["pinned_bytes"])
                                                        : "-");
        row.push_back(other_fields(area, {"iova", "length", "pinned_bytes", "readable", "writable",
                                          "writeable"}));
        table.row(std::move(row));
    }
    table.render(out);
}

void render_context(const Json& context, std::string& out)
{
    std::string head = "context " + value_text("id", context.value("id", Json()));
    if (context.value("own", false))
        head += " (this one)";
    if (context.value("busy", false))
        head += " (busy: not described)";
    std::string rest = fields_in_order(context, {"transport", "uid", "pids", "opened", "pinned_bytes"},
                                       {"id", "own", "busy", "objects"});
    out += head + (rest.empty() ? "" : "  " + rest) + "\n";
    if (!context.contains("objects"))
        return;
    const Json objects = context.value("objects", Json::array());
    if (objects.empty()) {
        out += "    (no objects)\n";
        return;
    }
    // The object rows share column widths; an IOAS's areas go right under
    // its row.
    std::size_t id_width = 2;
    std::size_t type_width = 4;
    for (const Json& object : objects) {
        id_width = std::max(id_width, value_text("id", object.value("id", Json())).size());
        type_width = std::max(type_width, object.value("type", std::string("?")).size());
    }
    auto pad = [](std::string s, std::size_t width) {
        s.resize(std::max(s.size(), width), ' ');
        return s;
    };
    out += "    " + pad("ID", id_width) + "  " + pad("TYPE", type_width) + "  DETAILS\n";
    for (const Json& object : objects) {
        std::string details = fields_in_order(object, {"ioas", "users"}, {"id", "type", "areas"});
        const Json areas = object.value("areas", Json::array());
        if (object.contains("areas")) {
            std::string count = std::to_string(areas.size()) + (areas.size() == 1 ? " area" : " areas");
            details = details.empty() ? count : count + "  " + details;
        }
        std::string line = "    " + pad(value_text("id", object.value("id", Json())), id_width) + "  " +
                           pad(object.value("type", std::string("?")), type_width) + "  " + details;
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        out += line + "\n";
        if (!areas.empty())
            render_areas(areas, out);
    }
}

} // namespace

std::string render_status(const Json& report)
{
    std::string out;
    if (auto daemon = report.find("daemon"); daemon != report.end() && daemon->is_object())
        out += "daemon  " + fields_in_order(*daemon, {"pid", "version", "transports", "devname", "socket"}, {}) +
               "\n";
    const Json contexts = report.value("contexts", Json::array());
    if (contexts.empty())
        out += "(no contexts)\n";
    for (const Json& context : contexts)
        render_context(context, out);
    out += render_units(report);
    if (!out.empty() && out.back() == '\n')
        out.pop_back();
    return out;
}

} // namespace ioasid::ctl
