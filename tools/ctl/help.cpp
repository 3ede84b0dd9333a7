#include "help.h"

#include <array>

namespace ioasid::ctl {
namespace {

constexpr std::string_view kOverview = R"(Usage: ioasidctl [OPTIONS] COMMAND [ARGS...]     one command, its own context
       ioasidctl [OPTIONS] run SCRIPT               a script, one context for all of it
       ioasidctl [OPTIONS] -                        the script on standard input
       ioasidctl help [COMMAND]                     this text, or a command's

Talks to ioasidd (or any iommufd) through libioasid. Objects live as long
as the file they were made on, so a one-shot command's IOAS is gone when
the command exits: do real work in a script, where every line shares one
context and its memory stays mapped until the end.

Options:
  --json            one JSON object per command on stdout (JSON Lines)
  -q, --quiet       print nothing for commands that succeed (errors still)
  --device PATH     a device node or the daemon's socket; default: as
                    ioasid_open(NULL) picks (see ENVIRONMENT)
  -h, --help        this text; COMMAND --help for one command
  --version         the version

Commands:
  ioas alloc                                   a new IOAS; value: its id
  destroy ID                                   destroy an object
  map IOAS (--file PATH [--offset N] | --memfd SIZE) [--length N]
      [--iova N | auto] [--readable] [--writeable]
                                               map memory; value: the IOVA
  unmap IOAS [IOVA LENGTH | --all]             value: the bytes unmapped
  copy DST SRC SRC_IOVA LENGTH [--iova N | auto] [--readable] [--writeable]
                                               value: the destination IOVA
  ranges IOAS                                  usable IOVA ranges; value: count
  allow IOAS [RANGE...]                        set the allowed ranges
  option IOAS huge-pages [on|off]              get or set; value: 1 or 0
  option rlimit-mode [user|process]            get or set; value: 0 or 1
  vfio-ioas get | set IOAS | clear             the VFIO compatibility IOAS
  status [--all]                               what the daemon holds
  echo WORDS...                                print (scripts)

Emulated hardware:
  topology                                     units (IOTLB counters) and devices
  bind NAME                                    bind a device; value: its dev id
  unbind DEV                                   unbind it
  attach DEV PT [--pasid N]                    attach to an IOAS or HWPT; value:
                                               the HWPT used
  detach DEV [--pasid N]                       block its DMA again
  hwpt alloc DEV PT [--nest-parent] [--dirty] [--pasid]
                                               a HWPT; value: its id
  hw-info DEV                                  IOMMU_GET_HW_INFO, decoded
  dirty enable|disable HWPT                    dirty tracking on or off
  dirty read HWPT IOVA LENGTH [--page-size N] [--no-clear]
                                               dirty pages; value: their count
  pt dump HWPT                                 the page table as the IOMMU reads it
  dma read DEV IOVA LENGTH [--pasid N]         the device reads memory (hexdump)
  dma write DEV IOVA (--data HEX | --fill BYTE --length N) [--pasid N]
                                               the device writes memory

Numbers: decimal, 0x hex, 0o octal or 0b binary, with an optional binary
suffix K, M, G, T, P (or KiB, MiB, ...): 4096, 0x1000, 2M, 1GiB.
RANGE: START-LAST (inclusive, as `ranges` prints) or START+LENGTH.

Scripts (`ioasidctl help run` for more):
  # a comment                         blank lines and comments are skipped
  $a = ioas alloc                     name a command's value...
  $m = map $a --memfd 2M              ...and use it: $a, ${a}, $m.iova
  echo mapped at $m.iova length $m.length
  ! map $a --memfd 4K --iova $m       must fail (any errno)
  !EEXIST map $a --memfd 4K --iova $m must fail with EEXIST
  unmap $a --all
A failing line stops the script: exit 1, with the line number on stderr.

Output: text for people; with --json one object per command:
  {"command":"map","ok":true,"ioas":1,"iova":...,"length":...}
  {"command":"map","ok":false,"errno":"EEXIST","errno_value":17,
   "message":"IOVA 0x1000-0x1fff overlaps area 0x0-0x1fff"}
In scripts each object also has "line", and "var" when the value was named,
and "expected_failure":true on '!' lines.

Exit status: 0 success, 1 a command failed (or an expected failure did not
happen), 2 usage or syntax error.

ENVIRONMENT
  IOASID_DEVICE     the device (or socket) to open
  IOASID_SOCKET     the daemon's socket, used when no device node exists
                    (default /run/ioasid/ioasid.sock)
)";

constexpr std::string_view kRun = R"(Usage: ioasidctl [OPTIONS] run SCRIPT
       ioasidctl [OPTIONS] -

Runs the commands of SCRIPT (or standard input) one per line, all on one
context: objects and mapped memory last until the script ends.

Lines:
  COMMAND ARGS...            any command of `ioasidctl help`
  $name = COMMAND ARGS...    also keeps the command's result as $name
  ! COMMAND ARGS...          the command must fail; the script goes on
  !ENAME COMMAND ARGS...     it must fail with errno ENAME (e.g. !EBUSY)
  # ...                      a comment, here or after a command

Words are split at blanks. '...' quotes literally; "..." quotes and still
expands variables; \ escapes one character.

Variables: $name (or ${name}) is the command's value, in decimal:
  ioas alloc -> the id          map, copy -> the IOVA
  unmap      -> bytes unmapped  ranges    -> the number of ranges
  option (get) -> the value     vfio-ioas get -> the id
  bind       -> the dev id      attach    -> the HWPT id
  hwpt alloc -> the HWPT id     hw-info   -> the hw_info type
  dirty read -> dirty pages     pt dump   -> the number of entries
  dma read/write -> bytes moved
$name.field is one field of the result, as --json shows it:
  map/copy: .iova .length .ioas    ranges: .count .alignment
  attach: .hwpt .auto              hw-info: .max_pasid_log2 .capabilities
A variable may be assigned again; the newest value counts.

A command that fails stops the script with exit status 1 and
"SCRIPT:LINE: COMMAND: ENAME: cause" on stderr. So does a '!' line whose
command succeeds or fails with another errno. A syntax error stops it with
exit status 2; in a SCRIPT file it is found before any line runs, while
standard input runs each line as it comes.
)";

constexpr std::string_view kIoas = R"(Usage: ioas alloc

Allocates an empty IO address space. Prints its id; the value is the id.
)";

constexpr std::string_view kDestroy = R"(Usage: destroy ID

Destroys object ID (an IOAS or any other). Fails with EBUSY while another
object uses it and ENOENT when there is no such object.
)";

constexpr std::string_view kMap = R"(Usage: map IOAS (--file PATH | --memfd SIZE) [OPTIONS]

Maps memory of ioasidctl's own process into IOAS. The memory stays mapped in
ioasidctl until it exits, so in a script the daemon can use it all along.

  --file PATH      mmap the file (shared); read-only when only --readable
  --memfd SIZE     a new memfd of SIZE bytes (zeroed)
  --offset N       start N bytes into the file or memfd (default 0)
  --length N       bytes to map (default: from --offset to the end)
  --iova N | auto  the IOVA to map at (IOMMU_IOAS_MAP_FIXED_IOVA), or let
                   the daemon pick one (default: auto)
  --readable       the device may read the memory
  --writeable      the device may write it (also --writable)
                   Without either, both; naming one gives only that one.

Value: the IOVA; fields .iova .length .ioas.
)";

constexpr std::string_view kUnmap = R"(Usage: unmap IOAS [IOVA LENGTH | --all]

Unmaps the mappings that lie wholly in [IOVA, IOVA+LENGTH); a range that
would cut a mapping in two fails with ENOENT. Without a range, or with
--all, unmaps everything. Value: the bytes unmapped.
)";

constexpr std::string_view kCopy = R"(Usage: copy DST_IOAS SRC_IOAS SRC_IOVA LENGTH [OPTIONS]

Maps the pages behind [SRC_IOVA, SRC_IOVA+LENGTH) of SRC_IOAS into DST_IOAS
as well, without pinning them again. The source range must be exactly one
earlier map.

  --iova N | auto  where in DST_IOAS (default: auto)
  --readable, --writeable  as for map

Value: the destination IOVA; fields .iova .length .ioas.
)";

constexpr std::string_view kRanges = R"(Usage: ranges IOAS

Prints the IOVA ranges of IOAS that are not reserved (IOMMU_IOAS_IOVA_RANGES),
and the IOVA alignment maps need. As in the kernel, the list set by `allow`
does not narrow them. Value: the number of ranges; fields .count .alignment.
)";

constexpr std::string_view kAllow = R"(Usage: allow IOAS [RANGE...]

Replaces the list of IOVA ranges IOAS must keep usable
(IOMMU_IOAS_ALLOW_IOVAS): IOVAs the daemon picks come from them, and
reserved regions that would cover them are refused. Maps at a fixed IOVA
are not limited to them. No RANGE clears the list. RANGE is START-LAST
(inclusive) or START+LENGTH, e.g. 0x100000-0x1fffff or 1M+1M.
)";

constexpr std::string_view kOption = R"(Usage: option IOAS huge-pages [on|off]
       option rlimit-mode [user|process]

Without a value, prints the current one (the command's value: 1/0 for
huge-pages, 0 for user and 1 for process). huge-pages lets the IOAS use
large IO pages. rlimit-mode picks whose RLIMIT_MEMLOCK pinned memory is
charged to; changing it needs CAP_SYS_RESOURCE and a context without
objects.
)";

constexpr std::string_view kVfioIoas = R"(Usage: vfio-ioas get | set IOAS | clear

The IOAS that the VFIO container compatibility API uses. get fails with
ENODEV when none is set; its value is the id.
)";

constexpr std::string_view kStatus = R"(Usage: status [--all]

What the daemon holds for this context: its processes, objects (IOAS with
their areas, HWPTs, bound devices, accesses) and pinned bytes, then one
line per emulated IOMMU unit with its IOTLB counters (hits, misses,
invalidation requests, evictions, entries cached now). --all shows every
context the caller may see (all of them for root, those of its own uid
otherwise). With --json, the daemon's report as it is, under "report"
(the units and devices under "hardware").
)";

constexpr std::string_view kEcho = R"(Usage: echo WORDS...

Prints its words, after variables are expanded. For scripts.
)";

constexpr std::string_view kTopology = R"(Usage: topology

The emulated machine the daemon serves (its --topology file, or the
built-in default): each IOMMU unit with its family and IOTLB counters
(hits, misses, invalidation requests, evictions, entries cached now), and
each device with its unit, requester id as PCI bus:device.function, IOMMU
group, PASID width ("only" for a device that issues only PASID-tagged
DMA), VFIO node, and whether it is free, bound to this context (with its
dev id) or bound to another context. --json: "units" and "devices" as the
status report has them, each device with "bdf", "node" and "state"
(free, bound-here, bound).
)";

constexpr std::string_view kBind = R"(Usage: bind NAME
       unbind DEV

bind makes the device NAME of the topology (see `topology`) a DEVICE object
of this context (IOASID_EMU_DEVICE_BIND, what VFIO_DEVICE_BIND_IOMMUFD does
for a VFIO cdev) and prints its id; the value is the id. Its DMA is
blocked until it is attached. EBUSY when it, or another device of its IOMMU
group, is bound to another context; ENODEV for a name the topology does not
have. unbind (or the end of the context) detaches it and gives it back.
)";

constexpr std::string_view kAttach = R"(Usage: attach DEV PT [--pasid N]
       detach DEV [--pasid N]

attach points DEV's DMA (its RID, or PASID N) at PT: an IOAS, for which
the daemon finds or makes an automatic HWPT, or a HWPT from `hwpt alloc`.
Attaching again replaces what is attached. Prints the HWPT used; the value
is its id, and .auto says whether it was made for the IOAS.
detach blocks DEV's DMA (or PASID N's) again.

Devices of one IOMMU group share one page table. A PASID needs a HWPT
allocated with --pasid; a device that issues only PASID-tagged DMA refuses
a RID attach (EINVAL).
)";

constexpr std::string_view kHwpt = R"(Usage: hwpt alloc DEV PT [--nest-parent] [--dirty] [--pasid]

IOMMU_HWPT_ALLOC: a paging HWPT on IOAS PT, in the format of DEV's unit,
filled with PT's mappings. The value is its id.

  --nest-parent    may be the parent stage of a nested HWPT
  --dirty          with dirty tracking (see `dirty`)
  --pasid          may be attached to PASIDs (IOMMU_HWPT_ALLOC_PASID)

EOPNOTSUPP when DEV's unit cannot honour a flag.
)";

constexpr std::string_view kHwInfo = R"(Usage: hw-info DEV

IOMMU_GET_HW_INFO for DEV: the type of its IOMMU, the generic capabilities
(dirty-tracking, pasid-exec, pasid-priv) and the PASID width. For Intel
VT-d also the raw CAP_REG and ECAP_REG and a few fields decoded:
  SAGAW  second-stage table depths    MGAW   maximum address width - 1
  SLLPS  second-stage large pages     PSS    PASID width - 1 (with PASID)
  SLADS  second-stage accessed/dirty  NEST   nested translation
  FLTS   first-stage translation
For ARM SMMUv3 (type 2) the ID registers IDR0-IDR5, IIDR and AIDR, with
the fields a VMM mirrors into a guest SMMU (ST_LEVEL, TTF, HTTU, CD2L,
ASID16, SIDSIZE, SSIDSIZE, OAS, granules, ...); for AMD (type 4) EFR and
EFR2 with PASmax, GTSup, GLXSup, HASup, HDSup and others. Units without
hw_info (POWER TCE, virtio-iommu) report type 0 and no data, as their
kernel drivers do.
The value is the type (1 for VT-d); --json adds "data" (hex) and "vtd",
"smmuv3" or "amd".
)";

constexpr std::string_view kDirty = R"(Usage: dirty enable HWPT
       dirty disable HWPT
       dirty read HWPT IOVA LENGTH [--page-size N] [--no-clear]

Dirty tracking of a HWPT allocated with `hwpt alloc ... --dirty`
(IOMMU_HWPT_SET_DIRTY_TRACKING, IOMMU_HWPT_GET_DIRTY_BITMAP). While it is
on, DMA writes set the dirty bits of the leaves they go through.

read prints the pages of [IOVA, IOVA+LENGTH) written since the last read,
as ranges, and clears their dirty bits (not with --no-clear). IOVA and
LENGTH must be multiples of the page size (--page-size, default 4096).
The value is the number of dirty pages; --json lists "ranges" and the
IOVA of each page ("pages", the first 4096).
)";

constexpr std::string_view kPt = R"(Usage: pt dump HWPT

The page table of HWPT as the IOMMU reads it (IOASID_EMU_PT_DUMP): a line
with its format, unit, depth, root address, aperture and page sizes, then
one line per valid entry, indented by depth:

  L<level>[<index>]  IOVA range it covers  raw entry  leaf|table  fields

Level 0 is the last level. The raw entry is the 64-bit value in memory;
the fields are its bits in the specification's names (ADDR, R, W, SNP,
A, D, PS, ...). The value is the number of entries; --json gives the
daemon's dump as it is ("entries": level, index, table, iova, size, raw,
leaf, fields).
)";

constexpr std::string_view kDma = R"(Usage: dma read DEV IOVA LENGTH [--pasid N]
       dma write DEV IOVA (--data HEX | --fill BYTE --length N) [--pasid N]

The device DEV reads (read) or writes (write) LENGTH bytes at IOVA, as its
IOMMU translates them (IOASID_EMU_DMA): through the IOTLB and the page
table of what is attached, to the memory mapped there. read prints the
bytes as a hexdump addressed by IOVA; write takes them from --data (hex:
deadbeef, 0xdeadbeef or de:ad:be:ef) or repeats --fill BYTE --length N
times. --pasid N tags the requests with PASID N.

When the IOMMU refuses a page the transfer stops there and the command
fails with EIO, naming the reason (blocked, pasid-range, address-size,
not-present, permission), the unit's own fault code (VT-d's fault reason),
the faulting IOVA and the bytes moved before it; --json has them under
"fault" and "done". The value is the bytes moved; a read's --json has the
bytes under "data" (hex).
)";

struct Page {
    std::string_view topic;
    std::string_view text;
};

constexpr std::array kPages{
    Page{"run", kRun},       Page{"script", kRun},       Page{"ioas", kIoas},
    Page{"destroy", kDestroy}, Page{"map", kMap},        Page{"unmap", kUnmap},
    Page{"copy", kCopy},     Page{"ranges", kRanges},    Page{"allow", kAllow},
    Page{"option", kOption}, Page{"vfio-ioas", kVfioIoas}, Page{"status", kStatus},
    Page{"echo", kEcho},     Page{"topology", kTopology}, Page{"bind", kBind},
    Page{"unbind", kBind},   Page{"attach", kAttach},    Page{"detach", kAttach},
    Page{"hwpt", kHwpt},     Page{"hw-info", kHwInfo},   Page{"dirty", kDirty},
    Page{"pt", kPt},         Page{"dma", kDma},
};

} // namespace

std::string_view help_text(std::string_view topic)
{
    for (const Page& page : kPages)
        if (page.topic == topic)
            return page.text;
    return kOverview;
}

} // namespace ioasid::ctl
