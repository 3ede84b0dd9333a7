// ioasidctl's language: the words of one command, and the lines of a script
// that carry them. Pure text in, typed commands out: no fd, no daemon, so the
// unit tests can cover all of it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ioasid::ctl {

// Bad syntax: a word the grammar does not take, a number that does not
// parse, an undefined variable. Exit status 2, as for any usage error.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// ---- Commands --------------------------------------------------------------

struct IoasAlloc {};

struct Destroy {
    std::uint32_t id = 0;
};

// Where the memory of a map comes from. The CLI maps it into its own
// address space and hands that address to the daemon.
struct FileSource {
    std::string path;
};
struct MemfdSource {
    std::uint64_t size = 0;
};

struct Map {
    std::uint32_t ioas = 0;
    std::variant<FileSource, MemfdSource> source;
    std::uint64_t offset = 0;              // into the file or memfd
    std::optional<std::uint64_t> length;   // default: the rest of the source
    std::optional<std::uint64_t> iova;     // nullopt: the daemon picks
    bool readable = true;
    bool writeable = true;
};

struct Unmap {
    std::uint32_t ioas = 0;
    // iova 0 with length UINT64_MAX is the ABI's "everything".
    std::uint64_t iova = 0;
    std::uint64_t length = UINT64_MAX;
    bool all = true;
};

struct Copy {
    std::uint32_t dst_ioas = 0;
    std::uint32_t src_ioas = 0;
    std::uint64_t src_iova = 0;
    std::uint64_t length = 0;
    std::optional<std::uint64_t> dst_iova;
    bool readable = true;
    bool writeable = true;
};

struct Ranges {
    std::uint32_t ioas = 0;
};

struct IovaRange {
    std::uint64_t start = 0;
    std::uint64_t last = 0; // inclusive, as the ABI has it
    bool operator==(const IovaRange&) const = default;
};

struct Allow {
    std::uint32_t ioas = 0;
    std::vector<IovaRange> ranges; // empty: lift the restriction
};

enum class OptionName { huge_pages, rlimit_mode };

struct Option {
    OptionName name = OptionName::huge_pages;
    std::uint32_t ioas = 0;             // huge-pages only
    std::optional<std::uint64_t> value; // nullopt: get
};

enum class VfioOp { get, set, clear };

struct VfioIoas {
    VfioOp op = VfioOp::get;
    std::uint32_t ioas = 0; // set only
};

struct Status {
    bool all = false;
};

struct Echo {
    std::string text;
};

// ---- Emulated hardware (uapi/ioasid/emu.h and the HWPT ioctls) ---------------

// The units and devices of the daemon's topology, from the status report.
struct Topology {};

struct Bind {
    std::string name; // as the topology names the device
};

struct Unbind {
    std::uint32_t dev = 0;
};

struct Attach {
    std::uint32_t dev = 0;
    std::uint32_t pt = 0;                // an IOAS or a HWPT
    std::optional<std::uint32_t> pasid;  // nullopt: the RID
};

struct Detach {
    std::uint32_t dev = 0;
    std::optional<std::uint32_t> pasid;
};

struct HwptAlloc {
    std::uint32_t dev = 0;
    std::uint32_t pt = 0;
    bool nest_parent = false;
    bool dirty = false;
    bool pasid = false;
};

struct HwInfo {
    std::uint32_t dev = 0;
};

enum class DirtyOp { enable, disable, read };

struct Dirty {
    DirtyOp op = DirtyOp::read;
    std::uint32_t hwpt = 0;
    std::uint64_t iova = 0;          // read only
    std::uint64_t length = 0;        // read only
    std::uint64_t page_size = 4096;  // read only
    bool clear = true;               // read only: false with --no-clear
};

struct PtDump {
    std::uint32_t hwpt = 0;
};

enum class DmaOp { read, write };

struct Dma {
    DmaOp op = DmaOp::read;
    std::uint32_t dev = 0;
    std::uint64_t iova = 0;
    std::uint64_t length = 0;               // read; write: data.size()
    std::vector<std::uint8_t> data;         // write: the bytes the device writes
    std::optional<std::uint32_t> pasid;
};

struct Help {
    std::string topic; // empty: the overview
};

using Command = std::variant<IoasAlloc, Destroy, Map, Unmap, Copy, Ranges, Allow, Option,
                             VfioIoas, Status, Echo, Help, Topology, Bind, Unbind, Attach, Detach,
                             HwptAlloc, HwInfo, Dirty, PtDump, Dma>;

// The command's name as help and JSON output spell it ("ioas alloc", "map").
[[nodiscard]] std::string command_name(const Command& command);

// Whether the command gives a value a script can name (`$x = ...`).
[[nodiscard]] bool gives_value(const Command& command);

// Parses the words of one command (no script syntax: no `!`, no `$x =`).
// `--help` anywhere gives Help for that command.
[[nodiscard]] Command parse_command(std::span<const std::string> words);

// ---- Numbers ---------------------------------------------------------------

// Decimal, 0x hex, 0o octal or 0b binary, with an optional binary suffix
// K/M/G/T/P/E (or KiB, MiB, ...): "4096", "0x1000", "2M", "1GiB".
[[nodiscard]] std::uint64_t parse_u64(std::string_view text, std::string_view what);
// An object id: a plain number that fits 32 bits.
[[nodiscard]] std::uint32_t parse_id(std::string_view text, std::string_view what);
// START-LAST (inclusive) or START+LENGTH.
[[nodiscard]] IovaRange parse_range(std::string_view text);
// Bytes in hex: "deadbeef", "0xdeadbeef", "de:ad:be:ef" (':', '-', '_' and
// '.' between pairs are ignored). An odd number of digits is an error.
[[nodiscard]] std::vector<std::uint8_t> parse_hex_bytes(std::string_view text, std::string_view what);

// ---- Script lines ----------------------------------------------------------

// Resolves `$name` (field empty) or `$name.field` to its text, or nullopt
// when there is no such variable or field.
using VariableLookup =
    std::function<std::optional<std::string>(std::string_view name, std::string_view field)>;

struct ScriptLine {
    // `!` before the command: it must fail. `!EEXIST`: with that errno.
    bool expect_failure = false;
    std::optional<int> expected_errno;
    std::optional<std::string> assign; // `$name = command`
    std::vector<std::string> words;    // after quotes and variables; empty: blank line
};

// Splits one line of a script into words. `#` starts a comment, '...'
// quotes literally, "..." quotes with variables expanded, `$name`,
// `${name}` and `$name.field` are replaced through `lookup`.
[[nodiscard]] ScriptLine parse_line(std::string_view text, const VariableLookup& lookup);

struct ScriptProblem {
    int line; // from 1
    std::string message;
};

// Checks a whole script's syntax before anything runs: words, commands and
// their arguments, and that each variable used was assigned on an earlier
// line by a command that gives a value. Returns the first problem, if any.
[[nodiscard]] std::optional<ScriptProblem> check_script(std::span<const std::string> lines);

// "EEXIST" -> 17, and back. nullopt / "E?" for what this libc does not know.
[[nodiscard]] std::optional<int> errno_from_name(std::string_view name);
[[nodiscard]] std::string errno_name(int err);

} // namespace ioasid::ctl
