#!/usr/bin/env python3
"""Completeness check for the iommufd ABI test.

The layout test only compares what abi_items.def lists, so a struct, field,
enumerator or #define missing from the list would go unchecked. This parses
the kernel header (and ours) textually and fails on any difference in the
*set* of items. It also compares member type spellings, which the layout
test cannot see on x86-64 (e.g. __u64 vs __aligned_u64 only differ on i386).

usage: check_items.py KERNEL_HEADER OUR_HEADER ABI_ITEMS_DEF
"""
import re
import sys

GUARD = "_UAPI_IOMMUFD_H"
ALLOWED_INCLUDES = {"linux/types.h", "linux/ioctl.h"}
# Items of kernels newer than the reference header: our header may have
# them, the kernel header cannot. abi_ours.cpp asserts their layout.
NEWER = {
    "iommu_ioas_map_file": "6.13",
    "IOMMUFD_CMD_IOAS_MAP_FILE": "6.13",
    "IOMMU_IOAS_MAP_FILE": "6.13",
    "IOMMU_HWPT_ALLOC_PASID": "6.15",
    "iommufd_hw_info_flags": "6.17",
    "IOMMU_HW_INFO_FLAG_INPUT_TYPE": "6.17",
    "IOMMU_HW_INFO_TYPE_DEFAULT": "6.17",
    "iommu_hw_info_arm_smmuv3": "6.13",
    "IOMMU_HW_INFO_TYPE_ARM_SMMUV3": "6.13",
    "iommu_hw_info_amd": "6.18",
    "IOMMU_HW_INFO_TYPE_AMD": "6.18",
}


def fold_unions(text):
    """An unnamed union that gives one field a second name (as
    iommu_hw_info's in_data_type/out_data_type since 6.17) is, for the
    layout, the member the older kernel has: its last one."""
    def last_member(m):
        members = [x.strip() for x in m.group(1).split(";") if x.strip()]
        return members[-1] + ";"
    return re.sub(r"(?:__extension__\s+)?union\s*\{([^{}]*)\}\s*;", last_member, text)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_header(path):
    raw = open(path, encoding="utf-8").read()
    text = strip_comments(raw)
    # Join continuation lines so multi-line #defines are one line.
    text = text.replace("\\\n", " ")
    text = fold_unions(text)
    h = {"structs": {}, "enums": {}, "defines": set(), "includes": set(),
         "guard": None}
    m = re.search(r"#\s*ifndef\s+(\w+)\s*\n\s*#\s*define\s+(\w+)", text)
    if m and m.group(1) == m.group(2):
        h["guard"] = m.group(1)
    for m in re.finditer(r"#\s*include\s*[<\"]([^>\"]+)[>\"]", text):
        h["includes"].add(m.group(1))
    for m in re.finditer(r"#\s*define\s+(\w+)", text):
        if m.group(1) != h["guard"]:
            h["defines"].add(m.group(1))
    for m in re.finditer(r"\bstruct\s+(\w+)\s*\{(.*?)\}\s*;", text, re.S):
        fields = []
        for decl in m.group(2).split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            d = re.fullmatch(r"(.+?)\s*\b(\w+)\s*(\[\s*(\w+)\s*\])?", decl)
            if not d:
                raise SystemExit(f"{path}: cannot parse member '{decl}' "
                                 f"of struct {m.group(1)}")
            fields.append((d.group(2), d.group(1), d.group(4)))
        h["structs"][m.group(1)] = fields
    for m in re.finditer(r"\benum\s*(\w*)\s*\{(.*?)\}\s*;", text, re.S):
        names = [e.split("=")[0].strip() for e in m.group(2).split(",")]
        h["enums"][m.group(1)] = [n for n in names if n]
    return h


def parse_def(path):
    text = strip_comments(open(path, encoding="utf-8").read())
    d = {"structs": set(), "fields": {}, "enums": set(), "enumerators": {},
         "macros": set()}
    for m in re.finditer(r"\b(ABI_\w+)\s*\(([^)]*)\)", text):
        kind = m.group(1)
        args = [a.strip() for a in m.group(2).split(",")]
        if kind == "ABI_STRUCT":
            d["structs"].add(args[0])
        elif kind in ("ABI_FIELD", "ABI_ARRAY"):
            d["fields"].setdefault(args[0], []).append(
                (args[1], kind == "ABI_ARRAY"))
        elif kind == "ABI_ENUM":
            d["enums"].add(args[0])
        elif kind == "ABI_ENUMERATOR":
            d["enumerators"].setdefault(args[0], []).append(args[1])
        elif kind == "ABI_ANON_ENUMERATOR":
            d["enumerators"].setdefault("", []).append(args[0])
        elif kind == "ABI_MACRO":
            d["macros"].add(args[0])
        else:
            raise SystemExit(f"{path}: unknown item {kind}")
    return d


def diff_sets(problems, what, expected, actual, where):
    for name in sorted(set(expected) - set(actual)):
        problems.append(f"{where}: missing {what} {name}")
    for name in sorted(set(actual) - set(expected)):
        problems.append(f"{where}: {what} {name} is not in the kernel header")


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__)
    kern = parse_header(argv[1])
    ours = parse_header(argv[2])
    for name in NEWER:
        ours["structs"].pop(name, None)
        ours["defines"].discard(name)
    for tag in [t for t in ours["enums"] if t in NEWER]:
        del ours["enums"][tag]
    for tag, names in ours["enums"].items():
        ours["enums"][tag] = [n for n in names if n not in NEWER]
    items = parse_def(argv[3])
    problems = []

    if kern["guard"] != GUARD:
        problems.append(f"kernel header guard is {kern['guard']}, "
                        f"expected {GUARD}: update this script")
    if not kern["structs"] or not kern["enums"]:
        problems.append("kernel header parsed to nothing")

    # --- the .def list must cover the kernel header ---------------------
    where = "abi_items.def"
    diff_sets(problems, "struct", kern["structs"], items["structs"], where)
    for s, fields in kern["structs"].items():
        want = [(f, dim is not None) for f, _, dim in fields]
        got = items["fields"].get(s, [])
        if got != want:
            problems.append(f"{where}: struct {s} members should be "
                            f"{want}, list has {got}")
    for s in sorted(set(items["fields"]) - set(kern["structs"])):
        problems.append(f"{where}: fields listed for unknown struct {s}")
    diff_sets(problems, "enum", [t for t in kern["enums"] if t],
              items["enums"], where)
    for tag, names in kern["enums"].items():
        got = items["enumerators"].get(tag, [])
        if sorted(got) != sorted(names):
            problems.append(f"{where}: enum {tag or '(anonymous)'} should "
                            f"list {names}, has {got}")
    for tag in sorted(set(items["enumerators"]) - set(kern["enums"])):
        problems.append(f"{where}: enumerators listed for unknown enum {tag}")
    diff_sets(problems, "#define", kern["defines"], items["macros"], where)

    # --- our header must declare the same things, spelled the same way ---
    where = argv[2]
    if ours["guard"] != kern["guard"]:
        problems.append(f"{where}: include guard {ours['guard']}, "
                        f"kernel uses {kern['guard']}")
    extra = ours["includes"] - ALLOWED_INCLUDES
    if extra:
        problems.append(f"{where}: includes {sorted(extra)}; only "
                        f"{sorted(ALLOWED_INCLUDES)} are allowed")
    diff_sets(problems, "struct", kern["structs"], ours["structs"], where)
    for s, fields in kern["structs"].items():
        mine = ours["structs"].get(s)
        if mine is not None and mine != fields:
            problems.append(f"{where}: struct {s} members (name, type, "
                            f"array) are {mine}, kernel has {fields}")
    diff_sets(problems, "enum", kern["enums"], ours["enums"], where)
    for tag, names in kern["enums"].items():
        mine = ours["enums"].get(tag)
        if mine is not None and sorted(mine) != sorted(names):
            problems.append(f"{where}: enum {tag or '(anonymous)'} has "
                            f"{mine}, kernel has {names}")
    diff_sets(problems, "#define", kern["defines"], ours["defines"], where)

    for p in problems:
        print(p)
    nfields = sum(len(f) for f in kern["structs"].values())
    nenumerators = sum(len(e) for e in kern["enums"].values())
    print(f"abi-items-complete: kernel header has {len(kern['structs'])} "
          f"structs, {nfields} members, {len(kern['enums'])} enums "
          f"({nenumerators} enumerators), {len(kern['defines'])} #defines; "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
