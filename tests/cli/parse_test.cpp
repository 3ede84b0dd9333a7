// ioasidctl's language: numbers, ranges, script lines, commands, whole
// scripts. No daemon involved.
#include <catch2/catch.hpp>

#include <cerrno>
#include <map>

#include "parse.h"

using namespace ioasid::ctl;

namespace {

std::vector<std::string> words(std::initializer_list<const char*> list)
{
    return {list.begin(), list.end()};
}

Command parse(std::initializer_list<const char*> list)
{
    auto w = words(list);
    return parse_command(w);
}

// Variables for parse_line: name -> (field -> value); field "" is the value.
struct Vars {
    std::map<std::string, std::map<std::string, std::string>> values;
    VariableLookup lookup()
    {
        return [this](std::string_view name, std::string_view field) -> std::optional<std::string> {
            auto var = values.find(std::string(name));
            if (var == values.end())
                return std::nullopt;
            auto value = var->second.find(std::string(field));
            if (value == var->second.end())
                return std::nullopt;
            return value->second;
        };
    }
};

ScriptLine line(std::string_view text)
{
    return parse_line(text, nullptr);
}

} // namespace

TEST_CASE("numbers: bases and binary suffixes")
{
    CHECK(parse_u64("0", "N") == 0);
    CHECK(parse_u64("4096", "N") == 4096);
    CHECK(parse_u64("0x1000", "N") == 0x1000);
    CHECK(parse_u64("0X1f", "N") == 0x1f);
    CHECK(parse_u64("0o17", "N") == 017);
    CHECK(parse_u64("0b101", "N") == 5);
    CHECK(parse_u64("4K", "N") == 4096);
    CHECK(parse_u64("2M", "N") == 2u << 20);
    CHECK(parse_u64("1GiB", "N") == 1u << 30);
    CHECK(parse_u64("3T", "N") == 3ull << 40);
    CHECK(parse_u64("1P", "N") == 1ull << 50);
    CHECK(parse_u64("0x10M", "N") == 16ull << 20);
    // Hex digits are never suffixes.
    CHECK(parse_u64("0x1E", "N") == 0x1e);
    CHECK(parse_u64("0x1B", "N") == 0x1b);
    CHECK(parse_u64("18446744073709551615", "N") == UINT64_MAX);
    CHECK(parse_u64("0xffffffffffffffff", "N") == UINT64_MAX);
    // A leading 0 is decimal, not octal.
    CHECK(parse_u64("010", "N") == 10);
}

TEST_CASE("numbers: what does not parse says so")
{
    CHECK_THROWS_WITH(parse_u64("", "--length"), Catch::Contains("--length") && Catch::Contains("not a number"));
    CHECK_THROWS_AS(parse_u64("abc", "N"), UsageError);
    CHECK_THROWS_AS(parse_u64("12abc", "N"), UsageError);
    CHECK_THROWS_AS(parse_u64("0x", "N"), UsageError);
    CHECK_THROWS_AS(parse_u64("K", "N"), UsageError);
    CHECK_THROWS_AS(parse_u64("-1", "N"), UsageError);
    CHECK_THROWS_AS(parse_u64("1.5M", "N"), UsageError);
    CHECK_THROWS_AS(parse_u64("4k", "N"), UsageError); // suffixes are upper case
    CHECK_THROWS_WITH(parse_u64("18446744073709551616", "N"), Catch::Contains("too large"));
    CHECK_THROWS_WITH(parse_u64("16384P", "N"), Catch::Contains("too large"));
    CHECK(parse_u64("16383P", "N") == 16383ull << 50);
}

TEST_CASE("ids are 32-bit numbers")
{
    CHECK(parse_id("7", "ID") == 7);
    CHECK(parse_id("4294967295", "ID") == UINT32_MAX);
    CHECK_THROWS_WITH(parse_id("4294967296", "ID"), Catch::Contains("32-bit"));
}

TEST_CASE("ranges: START-LAST and START+LENGTH")
{
    CHECK(parse_range("0x1000-0x1fff") == IovaRange{0x1000, 0x1fff});
    CHECK(parse_range("1M+1M") == IovaRange{1u << 20, (2u << 20) - 1});
    CHECK(parse_range("0-0xffffffffffffffff") == IovaRange{0, UINT64_MAX});
    CHECK(parse_range("0+16P") == IovaRange{0, (16ull << 50) - 1});
    CHECK(parse_range("5-5") == IovaRange{5, 5});
    CHECK_THROWS_WITH(parse_range("0x2000-0x1000"), Catch::Contains("ends before it starts"));
    CHECK_THROWS_WITH(parse_range("0x1000+0"), Catch::Contains("empty"));
    CHECK_THROWS_WITH(parse_range("0xffffffffffffffff+2"), Catch::Contains("past the end"));
    CHECK(parse_range("0xffffffffffffffff+1") == IovaRange{UINT64_MAX, UINT64_MAX});
    CHECK_THROWS_WITH(parse_range("0x1000"), Catch::Contains("START-LAST"));
    CHECK_THROWS_AS(parse_range("-5"), UsageError);
}

TEST_CASE("script lines: words, quotes, comments")
{
    CHECK(line("").words.empty());
    CHECK(line("   \t ").words.empty());
    CHECK(line("# just a comment").words.empty());
    CHECK(line("  map 1 --memfd 2M   # trailing comment").words == words({"map", "1", "--memfd", "2M"}));
    CHECK(line("map 1 --file 'a b#c'").words == words({"map", "1", "--file", "a b#c"}));
    CHECK(line("echo \"x  y\" z").words == words({"echo", "x  y", "z"}));
    CHECK(line("echo a\\ b").words == words({"echo", "a b"}));
    CHECK(line("echo '$a'").words == words({"echo", "$a"}));
    CHECK(line("echo \"\\$a \\\" \\\\\"").words == words({"echo", "$a \" \\"}));
    CHECK(line("echo a#b").words == words({"echo", "a#b"})); // '#' only starts a word
    CHECK(line("echo x\r").words == words({"echo", "x"}));   // CRLF scripts
    CHECK_THROWS_WITH(line("echo 'open"), Catch::Contains("unterminated"));
    CHECK_THROWS_WITH(line("echo \"open"), Catch::Contains("unterminated"));
}

TEST_CASE("script lines: expected failures")
{
    ScriptLine any = line("! destroy 7");
    CHECK(any.expect_failure);
    CHECK_FALSE(any.expected_errno);
    CHECK(any.words == words({"destroy", "7"}));

    ScriptLine named = line("  !EEXIST map 1 --memfd 4K --iova 0");
    CHECK(named.expect_failure);
    REQUIRE(named.expected_errno);
    CHECK(*named.expected_errno == EEXIST);
    CHECK(named.words.front() == "map");

    CHECK(*line("!ENOTSUP option rlimit-mode").expected_errno == EOPNOTSUPP);
    CHECK(*line("!EDEADLOCK unmap 1").expected_errno == EDEADLK);

    CHECK_THROWS_WITH(line("!map 1"), Catch::Contains("errno name"));
    CHECK_THROWS_WITH(line("!EBOGUS destroy 1"), Catch::Contains("errno name"));
    CHECK_THROWS_WITH(line("!"), Catch::Contains("needs a command"));
    CHECK_THROWS_WITH(line("! $a = ioas alloc"), Catch::Contains("cannot assign"));
}

TEST_CASE("script lines: assignment and variables")
{
    Vars vars;
    vars.values["a"] = {{"", "1"}, {"id", "1"}};
    vars.values["m"] = {{"", "8192"}, {"iova", "8192"}, {"length", "2097152"}};
    auto lookup = vars.lookup();

    ScriptLine assign = parse_line("$a = ioas alloc", lookup);
    REQUIRE(assign.assign);
    CHECK(*assign.assign == "a");
    CHECK(assign.words == words({"ioas", "alloc"}));
    CHECK(*parse_line("$x=ioas alloc", lookup).assign == "x");
    CHECK(*parse_line("  $under_score9 =   ioas alloc", lookup).assign == "under_score9");

    CHECK(parse_line("map $a --memfd 2M --iova $m", lookup).words ==
          words({"map", "1", "--memfd", "2M", "--iova", "8192"}));
    CHECK(parse_line("unmap $a $m.iova $m.length", lookup).words ==
          words({"unmap", "1", "8192", "2097152"}));
    CHECK(parse_line("echo ${a}x ${m.iova}y $a.", lookup).words == words({"echo", "1x", "8192y", "1."}));
    CHECK(parse_line("echo \"at $m.iova\"", lookup).words == words({"echo", "at 8192"}));
    CHECK(parse_line("allow $a $m.iova+$m.length", lookup).words == words({"allow", "1", "8192+2097152"}));
    // `$a == ...` or `$a` alone are not assignments.
    CHECK_FALSE(parse_line("echo $a", lookup).assign);

    CHECK_THROWS_WITH(parse_line("destroy $nope", lookup), Catch::Contains("undefined variable $nope"));
    CHECK_THROWS_WITH(parse_line("destroy $m.bogus", lookup), Catch::Contains("no field 'bogus'"));
    CHECK_THROWS_WITH(parse_line("echo $", lookup), Catch::Contains("variable name"));
    CHECK_THROWS_WITH(parse_line("echo ${a", lookup), Catch::Contains("missing '}'"));
    CHECK_THROWS_WITH(parse_line("$a =", lookup), Catch::Contains("nothing to assign"));
}

TEST_CASE("commands: ioas alloc, destroy")
{
    CHECK(std::holds_alternative<IoasAlloc>(parse({"ioas", "alloc"})));
    CHECK(std::get<Destroy>(parse({"destroy", "7"})).id == 7);
    CHECK_THROWS_WITH(parse({"ioas"}), Catch::Contains("missing subcommand"));
    CHECK_THROWS_WITH(parse({"ioas", "free"}), Catch::Contains("unknown subcommand"));
    CHECK_THROWS_WITH(parse({"ioas", "alloc", "1"}), Catch::Contains("too many"));
    CHECK_THROWS_WITH(parse({"destroy"}), Catch::Contains("missing arguments"));
    CHECK_THROWS_WITH(parse({"destroy", "x"}), Catch::Contains("ID"));
    CHECK_THROWS_WITH(parse({"frobnicate"}), Catch::Contains("unknown command 'frobnicate'"));
}

TEST_CASE("commands: map")
{
    Map memfd = std::get<Map>(parse({"map", "1", "--memfd", "2M"}));
    CHECK(memfd.ioas == 1);
    CHECK(std::get<MemfdSource>(memfd.source).size == 2u << 20);
    CHECK(memfd.offset == 0);
    CHECK_FALSE(memfd.length);
    CHECK_FALSE(memfd.iova);
    CHECK(memfd.readable);
    CHECK(memfd.writeable);

    Map file = std::get<Map>(parse({"map", "3", "--file=/tmp/x y", "--offset", "4K", "--length=8K",
                                    "--iova", "0x100000", "--readable"}));
    CHECK(std::get<FileSource>(file.source).path == "/tmp/x y");
    CHECK(file.offset == 4096);
    CHECK(*file.length == 8192);
    CHECK(*file.iova == 0x100000);
    CHECK(file.readable);
    CHECK_FALSE(file.writeable);

    Map w = std::get<Map>(parse({"map", "1", "--memfd", "4K", "--iova", "auto", "--writable"}));
    CHECK_FALSE(w.iova);
    CHECK_FALSE(w.readable);
    CHECK(w.writeable);

    CHECK_THROWS_WITH(parse({"map", "1"}), Catch::Contains("exactly one of --file"));
    CHECK_THROWS_WITH(parse({"map", "1", "--memfd", "4K", "--file", "x"}), Catch::Contains("exactly one"));
    CHECK_THROWS_WITH(parse({"map", "1", "--memfd", "0"}), Catch::Contains("must not be 0"));
    CHECK_THROWS_WITH(parse({"map", "1", "--memfd"}), Catch::Contains("needs a value"));
    CHECK_THROWS_WITH(parse({"map", "1", "--memfd", "4K", "--memfd", "8K"}), Catch::Contains("twice"));
    CHECK_THROWS_WITH(parse({"map", "1", "--memfd", "4K", "--fixed"}), Catch::Contains("unknown option --fixed"));
    CHECK_THROWS_WITH(parse({"map", "1", "--memfd", "4K", "--readable=yes"}), Catch::Contains("takes no value"));
    CHECK_THROWS_WITH(parse({"map", "--memfd", "4K"}), Catch::Contains("missing arguments"));
    CHECK_THROWS_WITH(parse({"map", "1", "2", "--memfd", "4K"}), Catch::Contains("too many"));
}

TEST_CASE("commands: unmap, copy")
{
    Unmap all = std::get<Unmap>(parse({"unmap", "1"}));
    CHECK(all.all);
    CHECK(all.iova == 0);
    CHECK(all.length == UINT64_MAX);
    CHECK(std::get<Unmap>(parse({"unmap", "1", "--all"})).all);

    Unmap range = std::get<Unmap>(parse({"unmap", "2", "0x1000", "4K"}));
    CHECK_FALSE(range.all);
    CHECK(range.ioas == 2);
    CHECK(range.iova == 0x1000);
    CHECK(range.length == 4096);
    CHECK_THROWS_WITH(parse({"unmap", "1", "0x1000"}), Catch::Contains("both IOVA and LENGTH"));
    CHECK_THROWS_WITH(parse({"unmap", "1", "0", "4K", "--all"}), Catch::Contains("exclude"));

    Copy copy = std::get<Copy>(parse({"copy", "2", "1", "0x2000", "2M", "--iova", "1G", "--readable"}));
    CHECK(copy.dst_ioas == 2);
    CHECK(copy.src_ioas == 1);
    CHECK(copy.src_iova == 0x2000);
    CHECK(copy.length == 2u << 20);
    CHECK(*copy.dst_iova == 1u << 30);
    CHECK(copy.readable);
    CHECK_FALSE(copy.writeable);
    CHECK_THROWS_WITH(parse({"copy", "2", "1", "0x2000"}), Catch::Contains("missing arguments"));
}

TEST_CASE("commands: ranges, allow, option, vfio-ioas, status, echo")
{
    CHECK(std::get<Ranges>(parse({"ranges", "4"})).ioas == 4);

    Allow none = std::get<Allow>(parse({"allow", "1"}));
    CHECK(none.ranges.empty());
    Allow two = std::get<Allow>(parse({"allow", "1", "0x1000-0x1fff", "1M+1M"}));
    REQUIRE(two.ranges.size() == 2);
    CHECK(two.ranges[1] == IovaRange{1u << 20, (2u << 20) - 1});

    Option get = std::get<Option>(parse({"option", "3", "huge-pages"}));
    CHECK(get.name == OptionName::huge_pages);
    CHECK(get.ioas == 3);
    CHECK_FALSE(get.value);
    CHECK(*std::get<Option>(parse({"option", "3", "huge-pages", "off"})).value == 0);
    CHECK(*std::get<Option>(parse({"option", "3", "huge-pages", "on"})).value == 1);
    Option mode = std::get<Option>(parse({"option", "rlimit-mode", "process"}));
    CHECK(mode.name == OptionName::rlimit_mode);
    CHECK(*mode.value == 1);
    CHECK(*std::get<Option>(parse({"option", "rlimit-mode", "user"})).value == 0);
    CHECK_FALSE(std::get<Option>(parse({"option", "rlimit-mode"})).value);
    CHECK_THROWS_WITH(parse({"option", "3", "huge-pages", "maybe"}), Catch::Contains("on or off"));
    CHECK_THROWS_WITH(parse({"option", "rlimit-mode", "group"}), Catch::Contains("user or process"));
    CHECK_THROWS_WITH(parse({"option", "3", "colour"}), Catch::Contains("unknown option 'colour'"));
    CHECK_THROWS_WITH(parse({"option", "rlimit-mode", "user", "x"}), Catch::Contains("too many"));

    CHECK(std::get<VfioIoas>(parse({"vfio-ioas", "get"})).op == VfioOp::get);
    VfioIoas set = std::get<VfioIoas>(parse({"vfio-ioas", "set", "5"}));
    CHECK(set.op == VfioOp::set);
    CHECK(set.ioas == 5);
    CHECK(std::get<VfioIoas>(parse({"vfio-ioas", "clear"})).op == VfioOp::clear);
    CHECK_THROWS_WITH(parse({"vfio-ioas", "set"}), Catch::Contains("missing"));
    CHECK_THROWS_WITH(parse({"vfio-ioas", "get", "1"}), Catch::Contains("too many"));
    CHECK_THROWS_WITH(parse({"vfio-ioas", "swap"}), Catch::Contains("unknown operation"));

    CHECK_FALSE(std::get<Status>(parse({"status"})).all);
    CHECK(std::get<Status>(parse({"status", "--all"})).all);
    CHECK_THROWS_AS(parse({"status", "1"}), UsageError);

    CHECK(std::get<Echo>(parse({"echo", "a", "--help", "b"})).text == "a --help b");
    CHECK(std::get<Echo>(parse({"echo"})).text.empty());
}

TEST_CASE("commands: help")
{
    CHECK(std::get<Help>(parse({"help"})).topic.empty());
    CHECK(std::get<Help>(parse({"help", "map"})).topic == "map");
    CHECK(std::get<Help>(parse({"help", "ioas", "alloc"})).topic == "ioas");
    CHECK(std::get<Help>(parse({"help", "run"})).topic == "run");
    CHECK(std::get<Help>(parse({"map", "--help"})).topic == "map");
    CHECK(std::get<Help>(parse({"ioas", "alloc", "-h"})).topic == "ioas");
    // --help wins over arguments that would not parse.
    CHECK(std::get<Help>(parse({"unmap", "x", "--help"})).topic == "unmap");
    CHECK_THROWS_WITH(parse({"help", "nothing"}), Catch::Contains("no command 'nothing'"));
}

TEST_CASE("commands: names and values")
{
    CHECK(command_name(parse({"ioas", "alloc"})) == "ioas alloc");
    CHECK(command_name(parse({"vfio-ioas", "get"})) == "vfio-ioas");
    CHECK(gives_value(parse({"ioas", "alloc"})));
    CHECK(gives_value(parse({"map", "1", "--memfd", "4K"})));
    CHECK(gives_value(parse({"unmap", "1"})));
    CHECK(gives_value(parse({"copy", "2", "1", "0", "4K"})));
    CHECK(gives_value(parse({"ranges", "1"})));
    CHECK(gives_value(parse({"option", "1", "huge-pages"})));
    CHECK_FALSE(gives_value(parse({"option", "1", "huge-pages", "on"})));
    CHECK(gives_value(parse({"vfio-ioas", "get"})));
    CHECK_FALSE(gives_value(parse({"vfio-ioas", "clear"})));
    CHECK_FALSE(gives_value(parse({"destroy", "1"})));
    CHECK_FALSE(gives_value(parse({"status"})));
    CHECK_FALSE(gives_value(parse({"echo", "x"})));
}

TEST_CASE("whole scripts are checked before they run")
{
    std::vector<std::string> good{
        "# set up",
        "$a = ioas alloc",
        "$m = map $a --memfd 2M",
        "!EEXIST map $a --memfd 4K --iova $m.iova",
        "",
        "unmap $a $m $m.length",
        "$a = ioas alloc   # assigned again",
        "destroy $a",
    };
    CHECK_FALSE(check_script(good));

    auto problem = [](std::vector<std::string> lines) { return check_script(lines); };
    auto undefined = problem({"ioas alloc", "map $a --memfd 4K", "$a = ioas alloc"});
    REQUIRE(undefined);
    CHECK(undefined->line == 2);
    CHECK_THAT(undefined->message, Catch::Contains("undefined variable $a"));

    auto no_value = problem({"$d = destroy 1"});
    REQUIRE(no_value);
    CHECK(no_value->line == 1);
    CHECK_THAT(no_value->message, Catch::Contains("destroy gives no value"));

    auto bad_word = problem({"ioas alloc", "", "map 1 --memfd 2X"});
    REQUIRE(bad_word);
    CHECK(bad_word->line == 3);
    CHECK_THAT(bad_word->message, Catch::Contains("--memfd"));

    auto bad_bang = problem({"!map 1 --memfd 4K"});
    REQUIRE(bad_bang);
    CHECK(bad_bang->line == 1);
}

TEST_CASE("errno names")
{
    CHECK(errno_from_name("EEXIST") == EEXIST);
    CHECK(errno_from_name("ENOENT") == ENOENT);
    CHECK(errno_from_name("EWOULDBLOCK") == EAGAIN);
    CHECK_FALSE(errno_from_name("EXIST"));
    CHECK_FALSE(errno_from_name("eexist"));
    CHECK_FALSE(errno_from_name("E"));
    CHECK(errno_name(EEXIST) == "EEXIST");
    CHECK(errno_name(EBUSY) == "EBUSY");
    CHECK(errno_name(4000) == "E4000");
}

TEST_CASE("commands: emulated hardware")
{
    CHECK(std::holds_alternative<Topology>(parse({"topology"})));
    CHECK_THROWS_AS(parse({"topology", "x"}), UsageError);

    CHECK(std::get<Bind>(parse({"bind", "nic0"})).name == "nic0");
    CHECK_THROWS_WITH(parse({"bind"}), Catch::Contains("usage: bind NAME"));
    CHECK_THROWS_WITH(parse({"bind", std::string(32, 'x').c_str()}), Catch::Contains("longer than 31"));
    CHECK(std::get<Unbind>(parse({"unbind", "3"})).dev == 3);

    auto attach = std::get<Attach>(parse({"attach", "1", "2"}));
    CHECK(attach.dev == 1);
    CHECK(attach.pt == 2);
    CHECK_FALSE(attach.pasid);
    CHECK(*std::get<Attach>(parse({"attach", "1", "2", "--pasid", "0x10"})).pasid == 16);
    CHECK_THROWS_WITH(parse({"attach", "1", "2", "--pasid", "4294967296"}), Catch::Contains("32-bit"));
    CHECK(*std::get<Detach>(parse({"detach", "1", "--pasid=5"})).pasid == 5);
    CHECK_FALSE(std::get<Detach>(parse({"detach", "1"})).pasid);

    auto hwpt = std::get<HwptAlloc>(parse({"hwpt", "alloc", "1", "2", "--dirty", "--nest-parent"}));
    CHECK(hwpt.dev == 1);
    CHECK(hwpt.pt == 2);
    CHECK(hwpt.dirty);
    CHECK(hwpt.nest_parent);
    CHECK_FALSE(hwpt.pasid);
    CHECK_THROWS_WITH(parse({"hwpt", "free", "1"}), Catch::Contains("unknown subcommand 'free'"));
    CHECK_THROWS_AS(parse({"hwpt", "alloc", "1"}), UsageError);
    CHECK(std::get<HwInfo>(parse({"hw-info", "4"})).dev == 4);

    auto enable = std::get<Dirty>(parse({"dirty", "enable", "3"}));
    CHECK(enable.op == DirtyOp::enable);
    CHECK(enable.hwpt == 3);
    CHECK(std::get<Dirty>(parse({"dirty", "disable", "3"})).op == DirtyOp::disable);
    auto read = std::get<Dirty>(parse({"dirty", "read", "3", "1M", "64K", "--page-size", "2M", "--no-clear"}));
    CHECK(read.op == DirtyOp::read);
    CHECK(read.iova == 1u << 20);
    CHECK(read.length == 64u << 10);
    CHECK(read.page_size == 2u << 20);
    CHECK_FALSE(read.clear);
    CHECK(std::get<Dirty>(parse({"dirty", "read", "3", "0", "4K"})).page_size == 4096);
    CHECK_THROWS_WITH(parse({"dirty", "read", "3", "0", "4K", "--page-size", "3000"}),
                      Catch::Contains("power of two"));
    CHECK_THROWS_AS(parse({"dirty", "enable", "3", "4"}), UsageError);

    CHECK(std::get<PtDump>(parse({"pt", "dump", "7"})).hwpt == 7);
    CHECK_THROWS_WITH(parse({"pt", "7"}), Catch::Contains("usage: pt dump HWPT"));

    auto dma_read = std::get<Dma>(parse({"dma", "read", "1", "0x1000", "16", "--pasid", "2"}));
    CHECK(dma_read.op == DmaOp::read);
    CHECK(dma_read.iova == 0x1000);
    CHECK(dma_read.length == 16);
    CHECK(*dma_read.pasid == 2);
    auto dma_write = std::get<Dma>(parse({"dma", "write", "1", "0x1000", "--data", "de:ad:BE:ef"}));
    CHECK(dma_write.op == DmaOp::write);
    CHECK(dma_write.data == std::vector<std::uint8_t>{0xde, 0xad, 0xbe, 0xef});
    CHECK(dma_write.length == 4);
    auto fill = std::get<Dma>(parse({"dma", "write", "1", "0", "--fill", "0xab", "--length", "3"}));
    CHECK(fill.data == std::vector<std::uint8_t>{0xab, 0xab, 0xab});
    CHECK_THROWS_WITH(parse({"dma", "write", "1", "0"}), Catch::Contains("exactly one of --data"));
    CHECK_THROWS_WITH(parse({"dma", "write", "1", "0", "--fill", "1"}), Catch::Contains("needs --length"));
    CHECK_THROWS_WITH(parse({"dma", "write", "1", "0", "--data", "00", "--length", "1"}),
                      Catch::Contains("--length goes with --fill"));
    CHECK_THROWS_WITH(parse({"dma", "write", "1", "0", "--fill", "256", "--length", "1"}),
                      Catch::Contains("one byte"));
    CHECK_THROWS_WITH(parse({"dma", "copy", "1"}), Catch::Contains("unknown subcommand 'copy'"));
    CHECK(std::get<Dma>(parse({"dma", "read", "1", "0", "1G"})).length == 1u << 30);
    CHECK_THROWS_WITH(parse({"dma", "read", "1", "0", "0x40000001"}), Catch::Contains("more than 1 GiB"));
    CHECK_THROWS_WITH(parse({"dma", "write", "1", "0", "--fill", "0", "--length", "2G"}),
                      Catch::Contains("more than 1 GiB"));

    CHECK(parse_hex_bytes("0x0102", "D") == std::vector<std::uint8_t>{1, 2});
    CHECK(parse_hex_bytes("01-02_03.04", "D") == std::vector<std::uint8_t>{1, 2, 3, 4});
    CHECK_THROWS_WITH(parse_hex_bytes("012", "D"), Catch::Contains("odd number"));
    CHECK_THROWS_WITH(parse_hex_bytes("0:12", "D"), Catch::Contains("separator inside a byte"));
    CHECK_THROWS_WITH(parse_hex_bytes("zz", "D"), Catch::Contains("not hex bytes"));
}

TEST_CASE("emulated hardware: names, values, help")
{
    CHECK(command_name(parse({"hwpt", "alloc", "1", "2"})) == "hwpt alloc");
    CHECK(command_name(parse({"dirty", "read", "1", "0", "4K"})) == "dirty read");
    CHECK(command_name(parse({"dirty", "enable", "1"})) == "dirty enable");
    CHECK(command_name(parse({"pt", "dump", "1"})) == "pt dump");
    CHECK(command_name(parse({"dma", "write", "1", "0", "--data", "00"})) == "dma write");
    CHECK(command_name(parse({"hw-info", "1"})) == "hw-info");
    CHECK(gives_value(parse({"bind", "nic0"})));
    CHECK(gives_value(parse({"attach", "1", "2"})));
    CHECK(gives_value(parse({"hwpt", "alloc", "1", "2"})));
    CHECK(gives_value(parse({"dirty", "read", "1", "0", "4K"})));
    CHECK(gives_value(parse({"dma", "read", "1", "0", "4"})));
    CHECK_FALSE(gives_value(parse({"dirty", "enable", "1"})));
    CHECK_FALSE(gives_value(parse({"unbind", "1"})));
    CHECK_FALSE(gives_value(parse({"detach", "1"})));
    CHECK_FALSE(gives_value(parse({"topology"})));

    CHECK(std::get<Help>(parse({"help", "dma", "read"})).topic == "dma");
    CHECK(std::get<Help>(parse({"hwpt", "alloc", "--help"})).topic == "hwpt");
    CHECK(std::get<Help>(parse({"help", "hw-info"})).topic == "hw-info");
    CHECK_THROWS_WITH(parse({"help", "nothing", "here"}), Catch::Contains("no command 'nothing here'"));

    std::vector<std::string> script{"$d = bind nic0", "$a = ioas alloc", "$h = attach $d $a",
                                    "$n = dma write $d 0x1000 --data 00", "echo $n $h.hwpt",
                                    "$x = dirty read $h 0 4K"};
    CHECK_FALSE(check_script(script));
    std::vector<std::string> bad{"$d = bind nic0", "$u = unbind $d"};
    auto problem = check_script(bad);
    REQUIRE(problem);
    CHECK(problem->line == 2);
    CHECK_THROWS_AS(parse({"hwpt", "alloc", "1", "2", "--bogus"}), UsageError);
}
