#include "parse.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

namespace ioasid::ctl {
namespace {

// ---- Numbers ---------------------------------------------------------------

struct Suffix {
    std::string_view text;
    unsigned shift;
};

// Longest first, so "KiB" is tried before "K". No "E" or "B": both are hex
// digits, and "0x1E" must stay a number.
constexpr std::array kSuffixes{
    Suffix{"KiB", 10}, Suffix{"MiB", 20}, Suffix{"GiB", 30}, Suffix{"TiB", 40}, Suffix{"PiB", 50},
    Suffix{"K", 10},   Suffix{"M", 20},   Suffix{"G", 30},   Suffix{"T", 40},   Suffix{"P", 50},
};

[[noreturn]] void bad_number(std::string_view text, std::string_view what, std::string_view why)
{
    throw UsageError(std::string(what) + ": '" + std::string(text) + "' " + std::string(why));
}

// ---- Words of a command ----------------------------------------------------

struct OptionSpec {
    std::string_view name; // without the leading "--"
    bool takes_value;
};

// A command's words sorted into positionals and --options.
struct Args {
    std::string_view command;
    std::vector<std::string_view> positional;
    std::map<std::string_view, std::string_view> options; // flag: empty value

    [[nodiscard]] bool has(std::string_view name) const { return options.contains(name); }
    [[nodiscard]] std::optional<std::string_view> value(std::string_view name) const
    {
        auto it = options.find(name);
        if (it == options.end())
            return std::nullopt;
        return it->second;
    }

    void expect_positional(std::size_t min, std::size_t max, std::string_view synopsis) const
    {
        if (positional.size() < min || positional.size() > max)
            throw UsageError(std::string(command) + ": " +
                             (positional.size() < min ? "missing arguments" : "too many arguments") +
                             "; usage: " + std::string(synopsis));
    }
};

Args split_args(std::string_view command, std::span<const std::string> words,
                std::span<const OptionSpec> specs)
{
    Args args{.command = command};
    for (std::size_t i = 0; i < words.size(); ++i) {
        std::string_view word = words[i];
        if (!word.starts_with("--")) {
            args.positional.push_back(word);
            continue;
        }
        std::string_view name = word.substr(2);
        std::optional<std::string_view> inline_value;
        if (auto eq = name.find('='); eq != std::string_view::npos) {
            inline_value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        auto spec = std::find_if(specs.begin(), specs.end(),
                                 [&](const OptionSpec& s) { return s.name == name; });
        if (spec == specs.end())
            throw UsageError(std::string(command) + ": unknown option --" + std::string(name) +
                             " (see " + std::string(command) + " --help)");
        if (args.options.contains(spec->name))
            throw UsageError(std::string(command) + ": --" + std::string(name) + " given twice");
        std::string_view value;
        if (spec->takes_value) {
            if (inline_value)
                value = *inline_value;
            else if (i + 1 < words.size())
                value = words[++i];
            else
                throw UsageError(std::string(command) + ": --" + std::string(name) + " needs a value");
        } else if (inline_value) {
            throw UsageError(std::string(command) + ": --" + std::string(name) + " takes no value");
        }
        args.options.emplace(spec->name, value);
    }
    return args;
}

// --readable / --writeable: naming either narrows to what is named.
void access_flags(const Args& args, bool* readable, bool* writeable)
{
    bool r = args.has("readable");
    bool w = args.has("writeable") || args.has("writable");
    if (r || w) {
        *readable = r;
        *writeable = w;
    }
}

std::optional<std::uint64_t> iova_option(const Args& args)
{
    auto value = args.value("iova");
    if (!value || *value == "auto")
        return std::nullopt;
    return parse_u64(*value, "--iova");
}

// ---- One parser per command -------------------------------------------------

Command parse_ioas(std::span<const std::string> rest)
{
    if (rest.empty())
        throw UsageError("ioas: missing subcommand; usage: ioas alloc");
    if (rest[0] != "alloc")
        throw UsageError("ioas: unknown subcommand '" + rest[0] + "'; usage: ioas alloc");
    split_args("ioas alloc", rest.subspan(1), {}).expect_positional(0, 0, "ioas alloc");
    return IoasAlloc{};
}

Command parse_destroy(std::span<const std::string> rest)
{
    Args args = split_args("destroy", rest, {});
    args.expect_positional(1, 1, "destroy ID");
    return Destroy{parse_id(args.positional[0], "ID")};
}

Command parse_map(std::span<const std::string> rest)
{
    static constexpr std::array specs{
        OptionSpec{"file", true},       OptionSpec{"memfd", true},    OptionSpec{"offset", true},
        OptionSpec{"length", true},     OptionSpec{"iova", true},     OptionSpec{"readable", false},
        OptionSpec{"writeable", false}, OptionSpec{"writable", false},
    };
    Args args = split_args("map", rest, specs);
    args.expect_positional(1, 1, "map IOAS (--file PATH | --memfd SIZE) [OPTIONS]");
    Map map;
    map.ioas = parse_id(args.positional[0], "IOAS");
    auto file = args.value("file");
    auto memfd = args.value("memfd");
    if (file.has_value() == memfd.has_value())
        throw UsageError("map: give exactly one of --file PATH and --memfd SIZE");
    if (file) {
        if (file->empty())
            throw UsageError("map: --file needs a path");
        map.source = FileSource{std::string(*file)};
    } else {
        std::uint64_t size = parse_u64(*memfd, "--memfd");
        if (size == 0)
            throw UsageError("map: --memfd size must not be 0");
        map.source = MemfdSource{size};
    }
    if (auto offset = args.value("offset"))
        map.offset = parse_u64(*offset, "--offset");
    if (auto length = args.value("length"))
        map.length = parse_u64(*length, "--length");
    map.iova = iova_option(args);
    access_flags(args, &map.readable, &map.writeable);
    return map;
}

Command parse_unmap(std::span<const std::string> rest)
{
    static constexpr std::array specs{OptionSpec{"all", false}};
    Args args = split_args("unmap", rest, specs);
    constexpr std::string_view synopsis = "unmap IOAS [IOVA LENGTH | --all]";
    args.expect_positional(1, 3, synopsis);
    Unmap unmap;
    unmap.ioas = parse_id(args.positional[0], "IOAS");
    if (args.positional.size() == 2)
        throw UsageError("unmap: give both IOVA and LENGTH, or --all; usage: " + std::string(synopsis));
    if (args.positional.size() == 3) {
        if (args.has("all"))
            throw UsageError("unmap: IOVA LENGTH and --all exclude each other");
        unmap.all = false;
        unmap.iova = parse_u64(args.positional[1], "IOVA");
        unmap.length = parse_u64(args.positional[2], "LENGTH");
    }
    return unmap;
}

Command parse_copy(std::span<const std::string> rest)
{
    static constexpr std::array specs{
        OptionSpec{"iova", true}, OptionSpec{"readable", false}, OptionSpec{"writeable", false},
        OptionSpec{"writable", false},
    };
    Args args = split_args("copy", rest, specs);
    args.expect_positional(4, 4, "copy DST_IOAS SRC_IOAS SRC_IOVA LENGTH [OPTIONS]");
    Copy copy;
    copy.dst_ioas = parse_id(args.positional[0], "DST_IOAS");
    copy.src_ioas = parse_id(args.positional[1], "SRC_IOAS");
    copy.src_iova = parse_u64(args.positional[2], "SRC_IOVA");
    copy.length = parse_u64(args.positional[3], "LENGTH");
    copy.dst_iova = iova_option(args);
    access_flags(args, &copy.readable, &copy.writeable);
    return copy;
}

Command parse_ranges(std::span<const std::string> rest)
{
    Args args = split_args("ranges", rest, {});
    args.expect_positional(1, 1, "ranges IOAS");
    return Ranges{parse_id(args.positional[0], "IOAS")};
}

Command parse_allow(std::span<const std::string> rest)
{
    Args args = split_args("allow", rest, {});
    args.expect_positional(1, std::numeric_limits<std::size_t>::max(), "allow IOAS [RANGE...]");
    Allow allow;
    allow.ioas = parse_id(args.positional[0], "IOAS");
    for (std::string_view range : std::span(args.positional).subspan(1))
        allow.ranges.push_back(parse_range(range));
    return allow;
}

std::uint64_t on_off(std::string_view text)
{
    if (text == "on" || text == "1")
        return 1;
    if (text == "off" || text == "0")
        return 0;
    throw UsageError("option: huge-pages takes on or off, not '" + std::string(text) + "'");
}

Command parse_option(std::span<const std::string> rest)
{
    Args args = split_args("option", rest, {});
    constexpr std::string_view synopsis =
        "option IOAS huge-pages [on|off]  or  option rlimit-mode [user|process]";
    args.expect_positional(1, 3, synopsis);
    Option option;
    if (args.positional[0] == "rlimit-mode") {
        option.name = OptionName::rlimit_mode;
        args.expect_positional(1, 2, synopsis);
        if (args.positional.size() == 2) {
            std::string_view mode = args.positional[1];
            // The ABI's values: 0 charges the user, 1 the process (its mm).
            if (mode == "user" || mode == "0")
                option.value = 0;
            else if (mode == "process" || mode == "mm" || mode == "1")
                option.value = 1;
            else
                throw UsageError("option: rlimit-mode takes user or process, not '" +
                                 std::string(mode) + "'");
        }
        return option;
    }
    args.expect_positional(2, 3, synopsis);
    option.name = OptionName::huge_pages;
    option.ioas = parse_id(args.positional[0], "IOAS");
    if (args.positional[1] != "huge-pages")
        throw UsageError("option: unknown option '" + std::string(args.positional[1]) +
                         "' (known: huge-pages, rlimit-mode)");
    if (args.positional.size() == 3)
        option.value = on_off(args.positional[2]);
    return option;
}

Command parse_vfio_ioas(std::span<const std::string> rest)
{
    Args args = split_args("vfio-ioas", rest, {});
    constexpr std::string_view synopsis = "vfio-ioas get | set IOAS | clear";
    args.expect_positional(1, 2, synopsis);
    std::string_view op = args.positional[0];
    if (op == "set") {
        args.expect_positional(2, 2, synopsis);
        return VfioIoas{VfioOp::set, parse_id(args.positional[1], "IOAS")};
    }
    args.expect_positional(1, 1, synopsis);
    if (op == "get")
        return VfioIoas{VfioOp::get, 0};
    if (op == "clear")
        return VfioIoas{VfioOp::clear, 0};
    throw UsageError("vfio-ioas: unknown operation '" + std::string(op) + "'; usage: " +
                     std::string(synopsis));
}

Command parse_status(std::span<const std::string> rest)
{
    static constexpr std::array specs{OptionSpec{"all", false}};
    Args args = split_args("status", rest, specs);
    args.expect_positional(0, 0, "status [--all]");
    return Status{args.has("all")};
}

Command parse_echo(std::span<const std::string> rest)
{
    Echo echo;
    for (const std::string& word : rest) {
        if (!echo.text.empty())
            echo.text += ' ';
        echo.text += word;
    }
    return echo;
}

// ---- Emulated hardware -------------------------------------------------------

std::optional<std::uint32_t> pasid_option(const Args& args)
{
    auto value = args.value("pasid");
    if (!value)
        return std::nullopt;
    return parse_id(*value, "--pasid");
}

Command parse_topology(std::span<const std::string> rest)
{
    split_args("topology", rest, {}).expect_positional(0, 0, "topology");
    return Topology{};
}

// struct ioasid_emu_device_bind holds the name NUL-terminated in 32 bytes.
constexpr std::size_t kMaxDeviceName = 31;

Command parse_bind(std::span<const std::string> rest)
{
    Args args = split_args("bind", rest, {});
    args.expect_positional(1, 1, "bind NAME");
    std::string_view name = args.positional[0];
    if (name.empty())
        throw UsageError("bind: the device name is empty");
    if (name.size() > kMaxDeviceName)
        throw UsageError("bind: '" + std::string(name) + "' is longer than " +
                         std::to_string(kMaxDeviceName) + " characters, the most a name can have");
    return Bind{std::string(name)};
}

Command parse_unbind(std::span<const std::string> rest)
{
    Args args = split_args("unbind", rest, {});
    args.expect_positional(1, 1, "unbind DEV");
    return Unbind{parse_id(args.positional[0], "DEV")};
}

Command parse_attach(std::span<const std::string> rest)
{
    static constexpr std::array specs{OptionSpec{"pasid", true}};
    Args args = split_args("attach", rest, specs);
    args.expect_positional(2, 2, "attach DEV PT [--pasid N]");
    return Attach{parse_id(args.positional[0], "DEV"), parse_id(args.positional[1], "PT"),
                  pasid_option(args)};
}

Command parse_detach(std::span<const std::string> rest)
{
    static constexpr std::array specs{OptionSpec{"pasid", true}};
    Args args = split_args("detach", rest, specs);
    args.expect_positional(1, 1, "detach DEV [--pasid N]");
    return Detach{parse_id(args.positional[0], "DEV"), pasid_option(args)};
}

Command parse_hwpt(std::span<const std::string> rest)
{
    constexpr std::string_view synopsis = "hwpt alloc DEV PT [--nest-parent] [--dirty] [--pasid]";
    if (rest.empty())
        throw UsageError("hwpt: missing subcommand; usage: " + std::string(synopsis));
    if (rest[0] != "alloc")
        throw UsageError("hwpt: unknown subcommand '" + rest[0] + "'; usage: " + std::string(synopsis));
    static constexpr std::array specs{OptionSpec{"nest-parent", false}, OptionSpec{"dirty", false},
                                      OptionSpec{"pasid", false}};
    Args args = split_args("hwpt alloc", rest.subspan(1), specs);
    args.expect_positional(2, 2, synopsis);
    return HwptAlloc{parse_id(args.positional[0], "DEV"), parse_id(args.positional[1], "PT"),
                     args.has("nest-parent"), args.has("dirty"), args.has("pasid")};
}

Command parse_hw_info(std::span<const std::string> rest)
{
    Args args = split_args("hw-info", rest, {});
    args.expect_positional(1, 1, "hw-info DEV");
    return HwInfo{parse_id(args.positional[0], "DEV")};
}

Command parse_dirty(std::span<const std::string> rest)
{
    constexpr std::string_view synopsis =
        "dirty enable|disable HWPT  or  dirty read HWPT IOVA LENGTH [--page-size N] [--no-clear]";
    if (rest.empty())
        throw UsageError("dirty: missing subcommand; usage: " + std::string(synopsis));
    Dirty dirty;
    if (rest[0] == "enable" || rest[0] == "disable") {
        const std::string name = "dirty " + rest[0];
        Args args = split_args(name, rest.subspan(1), {});
        args.expect_positional(1, 1, synopsis);
        dirty.op = rest[0] == "enable" ? DirtyOp::enable : DirtyOp::disable;
        dirty.hwpt = parse_id(args.positional[0], "HWPT");
        return dirty;
    }
    if (rest[0] != "read")
        throw UsageError("dirty: unknown subcommand '" + rest[0] + "'; usage: " + std::string(synopsis));
    static constexpr std::array specs{OptionSpec{"page-size", true}, OptionSpec{"no-clear", false}};
    Args args = split_args("dirty read", rest.subspan(1), specs);
    args.expect_positional(3, 3, "dirty read HWPT IOVA LENGTH [--page-size N] [--no-clear]");
    dirty.op = DirtyOp::read;
    dirty.hwpt = parse_id(args.positional[0], "HWPT");
    dirty.iova = parse_u64(args.positional[1], "IOVA");
    dirty.length = parse_u64(args.positional[2], "LENGTH");
    if (auto size = args.value("page-size")) {
        dirty.page_size = parse_u64(*size, "--page-size");
        if (dirty.page_size == 0 || (dirty.page_size & (dirty.page_size - 1)))
            throw UsageError("dirty read: --page-size must be a power of two, not '" + std::string(*size) + "'");
    }
    dirty.clear = !args.has("no-clear");
    return dirty;
}

Command parse_pt(std::span<const std::string> rest)
{
    if (rest.empty() || rest[0] != "dump")
        throw UsageError(std::string("pt: ") + (rest.empty() ? "missing subcommand" : "unknown subcommand '" + rest[0] + "'") +
                         "; usage: pt dump HWPT");
    Args args = split_args("pt dump", rest.subspan(1), {});
    args.expect_positional(1, 1, "pt dump HWPT");
    return PtDump{parse_id(args.positional[0], "HWPT")};
}

// The most one `dma` command moves: its bytes live in ioasidctl's memory.
constexpr std::uint64_t kMaxDmaBytes = std::uint64_t{1} << 30;

Command parse_dma(std::span<const std::string> rest)
{
    constexpr std::string_view read_synopsis = "dma read DEV IOVA LENGTH [--pasid N]";
    constexpr std::string_view write_synopsis =
        "dma write DEV IOVA (--data HEX | --fill BYTE --length N) [--pasid N]";
    if (rest.empty() || (rest[0] != "read" && rest[0] != "write"))
        throw UsageError(std::string("dma: ") +
                         (rest.empty() ? "missing subcommand" : "unknown subcommand '" + rest[0] + "'") +
                         "; usage: " + std::string(read_synopsis) + "  or  " + std::string(write_synopsis));
    Dma dma;
    if (rest[0] == "read") {
        static constexpr std::array specs{OptionSpec{"pasid", true}};
        Args args = split_args("dma read", rest.subspan(1), specs);
        args.expect_positional(3, 3, read_synopsis);
        dma.op = DmaOp::read;
        dma.dev = parse_id(args.positional[0], "DEV");
        dma.iova = parse_u64(args.positional[1], "IOVA");
        dma.length = parse_u64(args.positional[2], "LENGTH");
        // The bytes come back into a buffer of ioasidctl's own.
        if (dma.length > kMaxDmaBytes)
            throw UsageError("dma read: LENGTH " + std::string(args.positional[2]) + " is more than 1 GiB");
        dma.pasid = pasid_option(args);
        return dma;
    }
    static constexpr std::array specs{OptionSpec{"data", true}, OptionSpec{"fill", true},
                                      OptionSpec{"length", true}, OptionSpec{"pasid", true}};
    Args args = split_args("dma write", rest.subspan(1), specs);
    args.expect_positional(2, 2, write_synopsis);
    dma.op = DmaOp::write;
    dma.dev = parse_id(args.positional[0], "DEV");
    dma.iova = parse_u64(args.positional[1], "IOVA");
    dma.pasid = pasid_option(args);
    auto data = args.value("data");
    auto fill = args.value("fill");
    if (data.has_value() == fill.has_value())
        throw UsageError("dma write: give exactly one of --data HEX and --fill BYTE; usage: " +
                         std::string(write_synopsis));
    if (data) {
        if (args.has("length"))
            throw UsageError("dma write: --length goes with --fill; --data has its own length");
        dma.data = parse_hex_bytes(*data, "--data");
        if (dma.data.empty())
            throw UsageError("dma write: --data is empty");
    } else {
        std::uint64_t byte = parse_u64(*fill, "--fill");
        if (byte > 0xff)
            throw UsageError("dma write: --fill takes one byte (0..255, 0x0..0xff), not '" + std::string(*fill) + "'");
        auto length = args.value("length");
        if (!length)
            throw UsageError("dma write: --fill needs --length N");
        std::uint64_t n = parse_u64(*length, "--length");
        if (n == 0)
            throw UsageError("dma write: --length must not be 0");
        // The bytes are built here; more than this is not a command line's job.
        if (n > kMaxDmaBytes)
            throw UsageError("dma write: --length " + std::string(*length) + " is more than 1 GiB");
        dma.data.assign(n, static_cast<std::uint8_t>(byte));
    }
    dma.length = dma.data.size();
    return dma;
}

using Parser = Command (*)(std::span<const std::string>);

struct CommandEntry {
    std::string_view name;
    Parser parse;
};

constexpr std::array kCommands{
    CommandEntry{"ioas", parse_ioas},     CommandEntry{"destroy", parse_destroy},
    CommandEntry{"map", parse_map},       CommandEntry{"unmap", parse_unmap},
    CommandEntry{"copy", parse_copy},     CommandEntry{"ranges", parse_ranges},
    CommandEntry{"allow", parse_allow},   CommandEntry{"option", parse_option},
    CommandEntry{"vfio-ioas", parse_vfio_ioas}, CommandEntry{"status", parse_status},
    CommandEntry{"echo", parse_echo},
    CommandEntry{"topology", parse_topology}, CommandEntry{"bind", parse_bind},
    CommandEntry{"unbind", parse_unbind},     CommandEntry{"attach", parse_attach},
    CommandEntry{"detach", parse_detach},     CommandEntry{"hwpt", parse_hwpt},
    CommandEntry{"hw-info", parse_hw_info},   CommandEntry{"dirty", parse_dirty},
    CommandEntry{"pt", parse_pt},             CommandEntry{"dma", parse_dma},
};

const CommandEntry* find_command(std::string_view name)
{
    auto it = std::find_if(kCommands.begin(), kCommands.end(),
                           [&](const CommandEntry& e) { return e.name == name; });
    return it == kCommands.end() ? nullptr : &*it;
}

// Help topics are command names; "ioas alloc" is also "ioas".
std::string help_topic(std::span<const std::string> words)
{
    std::string topic;
    for (const std::string& word : words) {
        if (word.starts_with("-"))
            break;
        if (!topic.empty())
            topic += ' ';
        topic += word;
    }
    // "ioas alloc", "dma read", "pt dump": the page is the first word's.
    if (auto space = topic.find(' '); space != std::string::npos && find_command(topic.substr(0, space)))
        topic.resize(space);
    if (!topic.empty() && !find_command(topic) && topic != "run" && topic != "script")
        throw UsageError("help: no command '" + topic + "'");
    return topic;
}

// ---- Script lines -----------------------------------------------------------

bool is_name_start(char c)
{
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}

bool is_name_char(char c)
{
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

class LineScanner {
public:
    LineScanner(std::string_view text, const VariableLookup& lookup) : text_(text), lookup_(lookup) {}

    void skip_space()
    {
        while (pos_ < text_.size() && is_space(text_[pos_]))
            ++pos_;
    }
    [[nodiscard]] bool at_end() const { return pos_ >= text_.size(); }
    [[nodiscard]] char peek(std::size_t ahead = 0) const
    {
        return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
    }
    std::string_view take_name()
    {
        std::size_t start = pos_;
        while (pos_ < text_.size() && is_name_char(text_[pos_]))
            ++pos_;
        return text_.substr(start, pos_ - start);
    }
    void advance(std::size_t n = 1) { pos_ += n; }
    [[nodiscard]] std::size_t pos() const { return pos_; }
    void seek(std::size_t pos) { pos_ = pos; }

    // Reads words up to the end of the line or a comment.
    std::vector<std::string> words()
    {
        std::vector<std::string> out;
        for (;;) {
            skip_space();
            if (at_end() || peek() == '#')
                return out;
            out.push_back(word());
        }
    }

private:
    std::string word()
    {
        std::string out;
        while (!at_end() && !is_space(peek())) {
            char c = peek();
            if (c == '\'') {
                advance();
                std::size_t close = text_.find('\'', pos_);
                if (close == std::string_view::npos)
                    throw UsageError("unterminated ' quote");
                out += text_.substr(pos_, close - pos_);
                seek(close + 1);
            } else if (c == '"') {
                advance();
                for (;;) {
                    if (at_end())
                        throw UsageError("unterminated \" quote");
                    char q = peek();
                    if (q == '"') {
                        advance();
                        break;
                    }
                    if (q == '\\' && (peek(1) == '"' || peek(1) == '\\' || peek(1) == '$')) {
                        out += peek(1);
                        advance(2);
                    } else if (q == '$') {
                        out += variable();
                    } else {
                        out += q;
                        advance();
                    }
                }
            } else if (c == '\\' && pos_ + 1 < text_.size()) {
                out += peek(1);
                advance(2);
            } else if (c == '$') {
                out += variable();
            } else {
                out += c;
                advance();
            }
        }
        return out;
    }

    // At a '$': $name, $name.field, ${name}, ${name.field}.
    std::string variable()
    {
        advance();
        bool braced = peek() == '{';
        if (braced)
            advance();
        if (!is_name_start(peek()))
            throw UsageError("'$' must start a variable name ($name); quote it as '$' for a literal");
        std::string_view name = take_name();
        std::string_view field;
        if (peek() == '.' && is_name_start(peek(1))) {
            advance();
            field = take_name();
        }
        if (braced) {
            if (peek() != '}')
                throw UsageError("missing '}' after ${" + std::string(name));
            advance();
        }
        auto value = lookup_ ? lookup_(name, field) : std::nullopt;
        if (!value) {
            std::string ref = "$" + std::string(name) + (field.empty() ? "" : "." + std::string(field));
            throw UsageError(field.empty() || !lookup_ || !lookup_(name, {})
                                 ? "undefined variable " + ref
                                 : "variable $" + std::string(name) + " has no field '" +
                                       std::string(field) + "'");
        }
        return *value;
    }

    std::string_view text_;
    const VariableLookup& lookup_;
    std::size_t pos_ = 0;
};

} // namespace

// ---- Numbers ---------------------------------------------------------------

std::uint64_t parse_u64(std::string_view text, std::string_view what)
{
    std::string_view digits = text;
    unsigned shift = 0;
    for (const Suffix& suffix : kSuffixes) {
        if (digits.size() > suffix.text.size() && digits.ends_with(suffix.text)) {
            digits.remove_suffix(suffix.text.size());
            shift = suffix.shift;
            break;
        }
    }
    int base = 10;
    if (digits.size() > 2 && digits[0] == '0') {
        switch (digits[1]) {
        case 'x': case 'X': base = 16; break;
        case 'o': case 'O': base = 8; break;
        case 'b': case 'B': base = 2; break;
        default: break;
        }
        if (base != 10)
            digits.remove_prefix(2);
    }
    if (digits.empty())
        bad_number(text, what, "is not a number");
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    if (ec == std::errc::result_out_of_range)
        bad_number(text, what, "is too large for 64 bits");
    if (ec != std::errc{} || end != digits.data() + digits.size())
        bad_number(text, what, "is not a number (try 4096, 0x1000 or 2M)");
    if (shift && value > (std::numeric_limits<std::uint64_t>::max() >> shift))
        bad_number(text, what, "is too large for 64 bits");
    return value << shift;
}

std::uint32_t parse_id(std::string_view text, std::string_view what)
{
    std::uint64_t value = parse_u64(text, what);
    if (value > std::numeric_limits<std::uint32_t>::max())
        bad_number(text, what, "is not a 32-bit object id");
    return static_cast<std::uint32_t>(value);
}

IovaRange parse_range(std::string_view text)
{
    if (auto plus = text.find('+'); plus != std::string_view::npos) {
        std::uint64_t start = parse_u64(text.substr(0, plus), "RANGE start");
        std::uint64_t length = parse_u64(text.substr(plus + 1), "RANGE length");
        if (length == 0)
            bad_number(text, "RANGE", "is empty");
        if (length - 1 > std::numeric_limits<std::uint64_t>::max() - start)
            bad_number(text, "RANGE", "runs past the end of the 64-bit IOVA space");
        return {start, start + (length - 1)};
    }
    // Skip the first character so that a leading '-' is not a separator.
    auto dash = text.find('-', 1);
    if (dash == std::string_view::npos)
        bad_number(text, "RANGE", "is not START-LAST or START+LENGTH");
    IovaRange range{parse_u64(text.substr(0, dash), "RANGE start"),
                    parse_u64(text.substr(dash + 1), "RANGE last")};
    if (range.last < range.start)
        bad_number(text, "RANGE", "ends before it starts");
    return range;
}

std::vector<std::uint8_t> parse_hex_bytes(std::string_view text, std::string_view what)
{
    std::string_view digits = text;
    if (digits.starts_with("0x") || digits.starts_with("0X"))
        digits.remove_prefix(2);
    std::vector<std::uint8_t> out;
    int high = -1;
    for (char c : digits) {
        if (c == ':' || c == '-' || c == '_' || c == '.') {
            if (high >= 0)
                bad_number(text, what, "has a separator inside a byte (give two hex digits per byte)");
            continue;
        }
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            bad_number(text, what, "is not hex bytes (try deadbeef or de:ad:be:ef)");
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(high << 4 | v));
            high = -1;
        }
    }
    if (high >= 0)
        bad_number(text, what, "has an odd number of hex digits");
    return out;
}

// ---- Commands --------------------------------------------------------------

std::string command_name(const Command& command)
{
    struct Namer {
        std::string operator()(const IoasAlloc&) const { return "ioas alloc"; }
        std::string operator()(const Destroy&) const { return "destroy"; }
        std::string operator()(const Map&) const { return "map"; }
        std::string operator()(const Unmap&) const { return "unmap"; }
        std::string operator()(const Copy&) const { return "copy"; }
        std::string operator()(const Ranges&) const { return "ranges"; }
        std::string operator()(const Allow&) const { return "allow"; }
        std::string operator()(const Option&) const { return "option"; }
        std::string operator()(const VfioIoas&) const { return "vfio-ioas"; }
        std::string operator()(const Status&) const { return "status"; }
        std::string operator()(const Echo&) const { return "echo"; }
        std::string operator()(const Help&) const { return "help"; }
        std::string operator()(const Topology&) const { return "topology"; }
        std::string operator()(const Bind&) const { return "bind"; }
        std::string operator()(const Unbind&) const { return "unbind"; }
        std::string operator()(const Attach&) const { return "attach"; }
        std::string operator()(const Detach&) const { return "detach"; }
        std::string operator()(const HwptAlloc&) const { return "hwpt alloc"; }
        std::string operator()(const HwInfo&) const { return "hw-info"; }
        std::string operator()(const Dirty& c) const
        {
            return c.op == DirtyOp::enable ? "dirty enable" : c.op == DirtyOp::disable ? "dirty disable" : "dirty read";
        }
        std::string operator()(const PtDump&) const { return "pt dump"; }
        std::string operator()(const Dma& c) const { return c.op == DmaOp::read ? "dma read" : "dma write"; }
    };
    return std::visit(Namer{}, command);
}

bool gives_value(const Command& command)
{
    if (const auto* option = std::get_if<Option>(&command))
        return !option->value; // a get
    if (const auto* vfio = std::get_if<VfioIoas>(&command))
        return vfio->op == VfioOp::get;
    if (const auto* dirty = std::get_if<Dirty>(&command))
        return dirty->op == DirtyOp::read;
    return std::holds_alternative<IoasAlloc>(command) || std::holds_alternative<Map>(command) ||
           std::holds_alternative<Unmap>(command) || std::holds_alternative<Copy>(command) ||
           std::holds_alternative<Ranges>(command) || std::holds_alternative<Bind>(command) ||
           std::holds_alternative<Attach>(command) || std::holds_alternative<HwptAlloc>(command) ||
           std::holds_alternative<HwInfo>(command) || std::holds_alternative<PtDump>(command) ||
           std::holds_alternative<Dma>(command);
}

Command parse_command(std::span<const std::string> words)
{
    if (words.empty())
        throw UsageError("missing command (see --help)");
    const bool wants_help = std::any_of(words.begin(), words.end(), [](const std::string& w) {
        return w == "--help" || w == "-h";
    });
    if (words[0] == "help")
        return Help{help_topic(words.subspan(1))};
    const CommandEntry* entry = find_command(words[0]);
    if (!entry)
        throw UsageError("unknown command '" + words[0] + "' (see --help)");
    if (wants_help && words[0] != "echo")
        return Help{help_topic(words.first(1))};
    return entry->parse(words.subspan(1));
}

// ---- Script lines ----------------------------------------------------------

ScriptLine parse_line(std::string_view text, const VariableLookup& lookup)
{
    ScriptLine line;
    LineScanner scan(text, lookup);
    scan.skip_space();

    if (scan.peek() == '!') {
        scan.advance();
        line.expect_failure = true;
        if (!scan.at_end() && !is_space(scan.peek())) {
            std::size_t start = scan.pos();
            std::string_view name = scan.take_name();
            auto err = errno_from_name(name);
            if (!err || (!scan.at_end() && !is_space(scan.peek()))) {
                std::string_view word = text.substr(start, text.find_first_of(" \t", start) - start);
                throw UsageError("after '!' comes a space or an errno name such as EEXIST, not '" +
                                 std::string(word) + "'");
            }
            line.expected_errno = *err;
        }
        scan.skip_space();
    }

    // `$name = ...` binds the command's value; anything else starting with
    // '$' is an ordinary word.
    if (scan.peek() == '$' && is_name_start(scan.peek(1))) {
        std::size_t start = scan.pos();
        scan.advance();
        std::string name(scan.take_name());
        scan.skip_space();
        if (scan.peek() == '=' && scan.peek(1) != '=') {
            scan.advance();
            if (line.expect_failure)
                throw UsageError("a line expected to fail ('!') cannot assign $" + name);
            line.assign = std::move(name);
        } else {
            scan.seek(start);
        }
    }

    line.words = scan.words();
    if (line.assign && line.words.empty())
        throw UsageError("nothing to assign to $" + *line.assign);
    if (line.expect_failure && line.words.empty())
        throw UsageError("'!' needs a command after it");
    return line;
}

std::optional<ScriptProblem> check_script(std::span<const std::string> lines)
{
    // Variables stand for numbers at run time; any number will do here.
    std::vector<std::string> assigned;
    VariableLookup placeholder = [&](std::string_view name, std::string_view) -> std::optional<std::string> {
        if (std::find(assigned.begin(), assigned.end(), name) == assigned.end())
            return std::nullopt;
        return "4096";
    };
    for (std::size_t i = 0; i < lines.size(); ++i) {
        try {
            ScriptLine line = parse_line(lines[i], placeholder);
            if (line.words.empty())
                continue;
            Command command = parse_command(line.words);
            if (line.assign) {
                if (!gives_value(command))
                    throw UsageError(command_name(command) + " gives no value to assign to $" + *line.assign);
                assigned.push_back(*line.assign);
            }
        } catch (const UsageError& e) {
            return ScriptProblem{static_cast<int>(i + 1), e.what()};
        }
    }
    return std::nullopt;
}

std::optional<int> errno_from_name(std::string_view name)
{
    if (name.size() < 2 || name[0] != 'E')
        return std::nullopt;
    for (int err = 1; err < 256; ++err) {
        const char* known = strerrorname_np(err);
        if (known && name == known)
            return err;
    }
    // Aliases glibc names by their other spelling.
    if (name == "EWOULDBLOCK")
        return EAGAIN;
    if (name == "EDEADLOCK")
        return EDEADLK;
    if (name == "ENOTSUP")
        return EOPNOTSUPP;
    return std::nullopt;
}

std::string errno_name(int err)
{
    const char* name = strerrorname_np(err);
    return name ? name : "E" + std::to_string(err);
}

} // namespace ioasid::ctl
