#!/usr/bin/env python3
"""ioasidctl and libioasid against the real daemon.

Each case starts its own ioasidd on a socket in a fresh temporary directory,
waits until the socket answers, runs ioasidctl (or the libioasid test
program) with IOASID_SOCKET pointing there, checks output and exit status,
then stops the daemon with SIGTERM and requires exit status 0.

Expected text output lives beside the scripts (NAME.out). In it, {HEX}
matches a hex number and {NUM} a decimal one, for the IOVAs the daemon
picks (they depend on where the memory landed in ioasidctl).
"""

import argparse
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def show(result):
    return (f"exit status {result.returncode}\n--- stdout\n{result.stdout}"
            f"--- stderr\n{result.stderr}---")


class Daemon:
    """ioasidd --foreground on a socket of its own, for one case."""

    def __init__(self, ioasidd):
        self.ioasidd = ioasidd
        self.proc = None

    def __enter__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="ioasid-cli-")
        self.sock = os.path.join(self.dir.name, "sock")
        self.log_path = os.path.join(self.dir.name, "ioasidd.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [self.ioasidd, "--foreground", "--transport", "socket", "--socket", self.sock],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self):
        # The socket file appears at bind(); it answers after listen(). Only
        # a connection that succeeds means ready.
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise Failure(f"ioasidd exited with {self.proc.returncode} before it was ready\n"
                              + self.log_text())
            try:
                if stat.S_ISSOCK(os.stat(self.sock).st_mode):
                    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
                        probe.connect(self.sock)
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Failure("ioasidd: no socket after 20 s\n" + self.log_text())
            time.sleep(0.02)

    def log_text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return "--- ioasidd log\n" + f.read() + "---"

    def env(self):
        env = dict(os.environ)
        env["IOASID_SOCKET"] = self.sock
        env.pop("IOASID_DEVICE", None)
        # A device node wins over the socket in ioasid_open(NULL); on a
        # machine that has one, name the socket as the device instead.
        for node in ("/dev/ioasid", "/dev/iommu"):
            try:
                if stat.S_ISCHR(os.stat(node).st_mode):
                    env["IOASID_DEVICE"] = self.sock
            except OSError:
                pass
        return env

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("ioasidd did not exit within 20 s of SIGTERM\n" + self.log_text())
        check(rc == 0, f"ioasidd exited with {rc} after SIGTERM, not 0\n" + self.log_text())

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.proc and self.proc.poll() is None:
                if exc_type is None:
                    self.stop()
                else:
                    self.proc.kill()
                    self.proc.wait()
            elif self.proc and exc_type is None:
                raise Failure(f"ioasidd died during the case (status {self.proc.returncode})\n"
                              + self.log_text())
            if exc_type is not None:
                print(self.log_text(), file=sys.stderr)
        finally:
            self.log.close()
            self.dir.cleanup()
        return False


class Case:
    def __init__(self, args, daemon):
        self.args = args
        self.daemon = daemon

    def script(self, name):
        return os.path.join(self.args.scripts, name)

    def ctl(self, *argv, input=None, expect=0, cwd=None):
        result = subprocess.run([self.args.ioasidctl, *argv], input=input, capture_output=True,
                                text=True, env=self.daemon.env(), timeout=60, cwd=cwd)
        check(result.returncode == expect,
              f"ioasidctl {' '.join(argv)}: expected exit status {expect}\n{show(result)}")
        return result

    def json_lines(self, result):
        objects = []
        for line in result.stdout.splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise Failure(f"not a JSON line ({e}): {line!r}\n{show(result)}")
            check(isinstance(obj, dict), f"not a JSON object: {line!r}")
            check("command" in obj and "ok" in obj, f"no command/ok in {line!r}")
            objects.append(obj)
        return objects


def expect_text(actual, expected_path):
    """Compares line by line; {HEX} and {NUM} in the expected text match any
    hex / decimal number."""
    with open(expected_path) as f:
        expected = f.read().splitlines()
    lines = actual.splitlines()
    for i, (want, got) in enumerate(zip(expected, lines), 1):
        pattern = re.escape(want).replace(r"\{HEX\}", "0x[0-9a-f]+").replace(r"\{NUM\}", "[0-9]+")
        check(re.fullmatch(pattern, got),
              f"{os.path.basename(expected_path)} line {i}:\n  expected: {want}\n  actual:   {got}\n"
              f"--- whole output\n{actual}---")
    check(len(expected) == len(lines),
          f"{os.path.basename(expected_path)}: {len(expected)} lines expected, {len(lines)} printed\n"
          f"--- whole output\n{actual}---")


# ---- Cases -------------------------------------------------------------------

def case_basic_text(c):
    result = c.ctl("run", c.script("basic.ioasid"))
    check(result.stderr == "", show(result))
    expect_text(result.stdout, c.script("basic.out"))
    # --quiet prints nothing for a script that succeeds.
    quiet = c.ctl("-q", "run", c.script("basic.ioasid"))
    check(quiet.stdout == "" and quiet.stderr == "", show(quiet))


def case_basic_json(c):
    result = c.ctl("--json", "run", c.script("basic.ioasid"))
    objects = c.json_lines(result)
    with open(c.script("basic.ioasid")) as f:
        command_lines = [i for i, l in enumerate(f.read().splitlines(), 1)
                         if l.strip() and not l.strip().startswith("#")]
    check([o["line"] for o in objects] == command_lines,
          f"one object per command line expected: {[o['line'] for o in objects]} vs {command_lines}")
    check(all(o["ok"] for o in objects), result.stdout)
    by_var = {o["var"]: o for o in objects if "var" in o}
    check(by_var["a"] == {"command": "ioas alloc", "ok": True, "line": 4, "var": "a", "id": 1},
          f"ioas alloc: {by_var['a']}")
    m = by_var["m"]
    check(m["command"] == "map" and m["ioas"] == 1 and m["iova"] == 0x200000 and m["length"] == 2 << 20
          and m["readable"] and m["writeable"], f"map: {m}")
    f = by_var["f"]
    check(f["readable"] and not f["writeable"] and f["length"] == 64 << 10, f"map --readable: {f}")
    copy = next(o for o in objects if o["command"] == "copy")
    check(copy["ioas"] == 2 and copy["iova"] == 0x40000000 and copy["src_iova"] == 0x200000, f"copy: {copy}")
    allow = next(o for o in objects if o["command"] == "allow")
    check(allow["ranges"] == [{"start": 0x40000000, "last": 0x7fffffff},
                              {"start": 4 << 30, "last": (8 << 30) - 1}], f"allow: {allow}")
    # As in the kernel, IOVA_RANGES reports what is not reserved; the
    # allowed list does not narrow it.
    n = by_var["n"]
    check(n["ranges"] == [{"start": 0, "last": 2**64 - 1}] and n["count"] == 1 and n["alignment"] == 1,
          f"ranges after allow: {n}")
    check(by_var["h"]["value"] == 0 and by_var["h"]["setting"] == "off", f"huge-pages: {by_var['h']}")
    check(by_var["v"]["id"] == 2, f"vfio-ioas get: {by_var['v']}")
    check(by_var["u"]["unmapped"] == 2 << 20, f"unmap: {by_var['u']}")
    echoes = [o["text"] for o in objects if o["command"] == "echo"]
    check(echoes[0] == "mapped at 2097152 length 2097152 in ioas 1", f"echo: {echoes}")


def case_expected_failures(c):
    result = c.ctl("run", c.script("errors.ioasid"))
    check(result.stderr == "", show(result))
    expect_text(result.stdout, c.script("errors.out"))

    objects = c.json_lines(c.ctl("--json", "run", c.script("errors.ioasid")))
    failed = [o for o in objects if not o["ok"]]
    check(all(o.get("expected_failure") for o in failed), f"failures not marked expected: {failed}")
    check([o["errno"] for o in failed] ==
          ["EEXIST", "EEXIST", "ENOENT", "ENOENT", "ENOENT", "ENOENT", "ENOENT", "ENODEV", "EINVAL",
           "EINVAL", "EINVAL", "ENOENT", "ENOENT"], f"errnos: {[o['errno'] for o in failed]}")
    first = failed[0]
    check(first["errno_value"] == 17 and first["line"] == 5 and first["command"] == "map"
          and first["message"] == "IOVA 0x3ff000-0x3fffff overlaps area 0x200000-0x3fffff", f"{first}")


def case_failing_script(c):
    result = c.ctl("run", c.script("fail.ioasid"), expect=1)
    check("never printed" not in result.stdout, show(result))
    check(result.stderr.strip().endswith(
        "fail.ioasid:5: map: EEXIST: IOVA 0x200000-0x200fff overlaps area 0x200000-0x3fffff"),
        show(result))

    objects = c.json_lines(c.ctl("--json", "run", c.script("fail.ioasid"), expect=1))
    last = objects[-1]
    check(last["ok"] is False and last["line"] == 5 and last["errno"] == "EEXIST"
          and "expected_failure" not in last, f"last JSON line: {last}")

    result = c.ctl("run", c.script("bang-succeeds.ioasid"), expect=1)
    check("bang-succeeds.ioasid:2: map succeeded but was expected to fail" in result.stderr, show(result))
    check("never printed" not in result.stdout, show(result))

    result = c.ctl("run", c.script("wrong-errno.ioasid"), expect=1)
    check("wrong-errno.ioasid:2: destroy: ENOENT: no object 9 (expected EBUSY)" in result.stderr,
          show(result))

    # A script that is not there.
    result = c.ctl("run", c.script("no-such-script.ioasid"), expect=2)
    check("cannot read" in result.stderr, show(result))


def case_syntax_error(c):
    result = c.ctl("run", c.script("syntax.ioasid"), expect=2)
    # Checked before anything ran: line 1 would have printed "ioas 1".
    check(result.stdout == "", show(result))
    check("syntax.ioasid:3: undefined variable $a" in result.stderr, show(result))
    # Through standard input lines run as they come, so line 1 did run.
    with open(c.script("syntax.ioasid")) as f:
        result = c.ctl("-", input=f.read(), expect=2)
    check(result.stdout == "ioas 1\nfine so far\n", show(result))
    check("<stdin>:3: undefined variable $a" in result.stderr, show(result))


def case_one_shot(c):
    # Each command has a context of its own: ids start at 1 every time.
    for _ in range(2):
        result = c.ctl("ioas", "alloc")
        check(result.stdout == "ioas 1\n" and result.stderr == "", show(result))
    obj = c.json_lines(c.ctl("--json", "ioas", "alloc"))
    check(obj == [{"command": "ioas alloc", "ok": True, "id": 1}], f"{obj}")
    obj = c.json_lines(c.ctl("ioas", "alloc", "--json"))
    check(obj[0]["id"] == 1, f"--json after the command: {obj}")

    result = c.ctl("destroy", "1", expect=1)
    check(result.stdout == "" and result.stderr.strip() == "ioasidctl: destroy: ENOENT: no object 1",
          show(result))
    obj = c.json_lines(c.ctl("--json", "destroy", "1", expect=1))
    check(obj == [{"command": "destroy", "ok": False, "errno": "ENOENT", "errno_value": 2,
                   "message": "no object 1"}], f"{obj}")

    result = c.ctl("map", "1", "--memfd", "2M", expect=1)
    check("map: ENOENT: no object 1" in result.stderr, show(result))

    # status: the own context, empty; --all sees the daemon.
    result = c.ctl("status")
    check(re.search(r"^context \d+ \(this one\)  transport socket", result.stdout, re.M)
          and "(no objects)" in result.stdout, show(result))
    report = c.json_lines(c.ctl("--json", "status", "--all"))[0]["report"]
    check(report["daemon"]["pid"] == c.daemon.proc.pid, f"daemon pid: {report['daemon']}")
    check(report["daemon"]["socket"] == c.daemon.sock, f"daemon socket: {report['daemon']}")
    # Each ioasidctl run is a context the daemon served, counted at once.
    again = c.json_lines(c.ctl("--json", "status", "--all"))[0]["report"]
    check(again["daemon"]["contexts_opened"] == report["daemon"]["contexts_opened"] + 1,
          f"contexts_opened: {report['daemon']} then {again['daemon']}")
    check(any(ctx.get("own") for ctx in report["contexts"]), f"own context: {report}")

    # Help, usage errors, version.
    result = c.ctl("--help")
    check("Usage: ioasidctl" in result.stdout and "$a = ioas alloc" in result.stdout, show(result))
    result = c.ctl("map", "--help")
    check(result.stdout.startswith("Usage: map IOAS"), show(result))
    result = c.ctl("help", "run")
    check("the command must fail" in result.stdout, show(result))
    result = c.ctl("run", "--help")
    check(result.stdout.startswith("Usage: ioasidctl [OPTIONS] run SCRIPT"), show(result))
    result = c.ctl("frobnicate", expect=2)
    check("unknown command 'frobnicate'" in result.stderr, show(result))
    result = c.ctl("map", "1", "--memfd", "2X", expect=2)
    check("--memfd: '2X' is not a number" in result.stderr, show(result))
    result = c.ctl(expect=2)
    check("missing command" in result.stderr, show(result))
    result = c.ctl("--bogus", expect=2)
    check("unknown option --bogus" in result.stderr, show(result))
    result = c.ctl("--version")
    check(result.stdout.startswith("ioasidctl "), show(result))

    # No daemon there.
    env = c.daemon.env()
    env["IOASID_SOCKET"] = os.path.join(c.daemon.dir.name, "nothing-here")
    env.pop("IOASID_DEVICE", None)
    result = subprocess.run([c.args.ioasidctl, "ioas", "alloc"], capture_output=True, text=True,
                            env=env, timeout=60)
    check(result.returncode == 1 and "no daemon at" in result.stderr and "ENOENT" in result.stderr,
          show(result))
    # --device names the socket explicitly.
    result = subprocess.run([c.args.ioasidctl, "--device", c.daemon.sock, "ioas", "alloc"],
                            capture_output=True, text=True, env=env, timeout=60)
    check(result.returncode == 0 and result.stdout == "ioas 1\n", show(result))


def case_stdin(c):
    script = "\n".join([
        "$a = ioas alloc",
        "$m = map $a --memfd 1M --iova 16M",
        "map $a --memfd 8K --iova 0x2000 --readable",
        "status",
        "unmap $a $m $m.length",
        "status",
    ]) + "\n"
    result = c.ctl("-", input=script)
    out = result.stdout
    check(re.search(r"^    1   ioas  2 areas", out, re.M), show(result))
    check(re.search(r"^        0x2000-0x3fff +8 KiB +r-$", out, re.M), show(result))
    check(re.search(r"^        0x1000000-0x10fffff +1 MiB +rw$", out, re.M), show(result))
    check(re.search(r"^    1   ioas  1 area", out, re.M), show(result))

    objects = c.json_lines(c.ctl("--json", "-", input=script))
    reports = [o["report"] for o in objects if o["command"] == "status"]
    check(len(reports) == 2, f"{objects}")
    ctx = reports[0]["contexts"]
    check(len(ctx) == 1 and ctx[0]["own"] is True, f"status without --all shows the own context: {ctx}")
    objs = ctx[0]["objects"]
    check(len(objs) == 1 and objs[0]["type"] == "ioas" and objs[0]["id"] == 1, f"{objs}")
    areas = sorted((a["iova"], a["length"]) for a in objs[0]["areas"])
    check(areas == [(0x2000, 0x2000), (16 << 20, 1 << 20)], f"areas: {areas}")
    check(ctx[0]["pids"] and all(isinstance(p, int) for p in ctx[0]["pids"]), f"pids: {ctx[0]}")
    areas = reports[1]["contexts"][0]["objects"][0]["areas"]
    check([(a["iova"], a["length"]) for a in areas] == [(0x2000, 0x2000)], f"after unmap: {areas}")

    # `run -` reads standard input too.
    result = c.ctl("run", "-", input="ioas alloc\n")
    check(result.stdout == "ioas 1\n", show(result))


def case_file_map(c):
    with tempfile.TemporaryDirectory(prefix="ioasid-cli-file-") as tmp:
        path = os.path.join(tmp, "backing file")
        with open(path, "wb") as f:
            f.write(bytes(range(256)) * 256)  # 64 KiB
        script = "\n".join([
            "$a = ioas alloc",
            f"$w = map $a --file '{path}' --offset 4K --length 8K --iova 0x100000",
            f"$r = map $a --file \"{path}\" --readable --iova 0x200000",
            f"$o = map $a --file '{path}' --offset 0x1800 --length 0x800 --iova auto --readable",
            f"!EINVAL map $a --file '{path}' --offset 60K --length 8K",
            f"!EINVAL map $a --file '{path}' --offset 128K",
            "!ENOENT map $a --file /nonexistent/file",
            "status",
        ]) + "\n"
        objects = c.json_lines(c.ctl("--json", "-", input=script))
        by_var = {o["var"]: o for o in objects if "var" in o}
        check(by_var["w"]["length"] == 8192 and by_var["w"]["iova"] == 0x100000, f"{by_var['w']}")
        check(by_var["r"]["length"] == 65536 and not by_var["r"]["writeable"], f"{by_var['r']}")
        check(by_var["o"]["length"] == 0x800, f"{by_var['o']}")
        failures = [o for o in objects if not o["ok"]]
        check("runs past the end of" in failures[0]["message"], f"{failures[0]}")
        check("is past the end of" in failures[1]["message"], f"{failures[1]}")
        check(failures[2]["message"] == "open /nonexistent/file: No such file or directory", f"{failures[2]}")
        report = objects[-1]["report"]
        areas = {a["iova"]: a for a in report["contexts"][0]["objects"][0]["areas"]}
        check(areas[0x100000]["length"] == 8192 and areas[0x200000]["length"] == 65536, f"{areas}")

        # A device or pipe has no size: --length is needed.
        result = c.ctl("-", input="$a = ioas alloc\nmap $a --file /dev/zero --readable\n", expect=1)
        check("/dev/zero is not a regular file: give --length" in result.stderr, show(result))


def case_status_all(c):
    # One script stays open with an IOAS and 1 MiB mapped; another
    # ioasidctl sees it through status --all.
    holder = subprocess.Popen([c.args.ioasidctl, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=c.daemon.env())
    try:
        holder.stdin.write("$a = ioas alloc\nmap $a --memfd 1M --iova 1G\necho ready\n")
        holder.stdin.flush()
        lines = [holder.stdout.readline() for _ in range(3)]
        check(lines[2] == "ready\n", f"holder printed {lines}")

        report = c.json_lines(c.ctl("--json", "status", "--all"))[0]["report"]
        theirs = [ctx for ctx in report["contexts"] if holder.pid in ctx.get("pids", [])]
        check(len(theirs) == 1, f"the holder's context, by pid {holder.pid}: {report}")
        ctx = theirs[0]
        check(ctx["own"] is False and ctx["transport"] == "socket" and ctx["uid"] == os.getuid(), f"{ctx}")
        check([(a["iova"], a["length"]) for a in ctx["objects"][0]["areas"]] == [(1 << 30, 1 << 20)],
              f"{ctx}")
        mine = [c2 for c2 in report["contexts"] if c2.get("own")]
        check(len(mine) == 1 and mine[0]["objects"] == [], f"own context: {mine}")

        text = c.ctl("status", "--all").stdout
        check(re.search(rf"^context {ctx['id']}  transport socket  uid {os.getuid()}  pids {holder.pid}  ",
                        text, re.M), text)
        check(re.search(r"^        0x40000000-0x400fffff +1 MiB +rw$", text, re.M), text)
    finally:
        holder.stdin.close()
        rc = holder.wait(timeout=30)
    check(rc == 0, f"holder exited {rc}: {holder.stderr.read()}")
    holder.stdout.close()
    holder.stderr.close()

    # Its context goes with it.
    deadline = time.monotonic() + 10
    while True:
        report = c.json_lines(c.ctl("--json", "status", "--all"))[0]["report"]
        if not [ctx for ctx in report["contexts"] if holder.pid in ctx.get("pids", [])]:
            break
        check(time.monotonic() < deadline, f"the holder's context outlived it by 10 s: {report}")
        time.sleep(0.05)


# ---- Emulated hardware ---------------------------------------------------------

DEFAULT_DEVICES = ["mock-dev0", "mock-dev1", "nic0", "nvme0", "gpu0", "gpu0-audio", "accel0", "dsa0",
                   "arm-nic0", "arm-nvme0", "amd-gpu0", "amd-nic0", "ppc-nic0", "virtio-net0", "virtio-blk0"]
# VT-d second-stage leaf bits (hwmodels/vtd/vtd_second_stage.h).
VTD_R, VTD_W, VTD_SNP = 1 << 0, 1 << 1, 1 << 11
VTD_ADDR_MASK = ((1 << 52) - 1) & ~0xfff


def case_hardware_text(c):
    result = c.ctl("run", c.script("hardware.ioasid"))
    check(result.stderr == "", show(result))
    expect_text(result.stdout, c.script("hardware.out"))


def case_hardware_json(c):
    objects = c.json_lines(c.ctl("--json", "run", c.script("hardware.ioasid")))
    by_var = {o["var"]: o for o in objects if "var" in o}
    check(by_var["d"] == {"command": "bind", "ok": True, "line": 5, "var": "d", "name": "nic0", "id": 1},
          f"bind: {by_var['d']}")
    info = next(o for o in objects if o["command"] == "hw-info")
    check(info["type"] == 1 and info["type_name"] == "intel-vtd" and info["max_pasid_log2"] == 16
          and info["capability_names"] == ["dirty-tracking"], f"hw-info: {info}")
    decoded = info["vtd"]["decoded"]
    check(decoded["cap"]["SAGAW"] == 0b100 and decoded["cap"]["MGAW"] == 47 and decoded["cap"]["SLLPS"] == 3
          and decoded["ecap"]["PSS"] == 19 and decoded["ecap"]["SLADS"] == 1, f"hw-info decode: {decoded}")
    check(info["data"].startswith("01000000"), f"hw-info data (flags ERRATA_772415_SPR17): {info}")
    h = by_var["h"]
    check(h["hwpt"] == 3 and h["auto"] is True and h["pt"] == 2, f"attach: {h}")

    # The round trip: what the device wrote, it reads back.
    reads = [o for o in objects if o["command"] == "dma read" and o["ok"]]
    check(reads[0]["data"] == "48656c6c6f2c20444d4121" + "00" * 5 and reads[0]["done"] == 16, f"{reads[0]}")
    check(reads[1]["data"] == "00" * 16 + "5a" * 64 + "00" * 16, f"{reads[1]}")

    # The page table: one leaf per page of the 64 KiB map, each its page's
    # physical address with R, W and SNP, and nothing else set.
    dump = next(o for o in objects if o["command"] == "pt dump")
    check(dump["format"] == "vtd-second-stage" and dump["levels"] == 4 and dump["unit"] == "vtd0", f"{dump}")
    leaves = [e for e in dump["entries"] if e["leaf"]]
    tables = {e["raw"] & VTD_ADDR_MASK for e in dump["entries"] if not e["leaf"]} | {dump["root"]}
    check([(e["level"], e["iova"], e["size"]) for e in leaves] ==
          [(0, 0x100000 + i * 4096, 4096) for i in range(16)], f"leaves: {leaves}")
    base = leaves[0]["raw"] & VTD_ADDR_MASK
    for i, leaf in enumerate(leaves):
        want = (base + i * 4096) | VTD_R | VTD_W | VTD_SNP
        check(leaf["raw"] == want, f"leaf {i}: raw {leaf['raw']:#x}, expected {want:#x}")
        check("SNP" in leaf["fields"] and f"ADDR={base + i * 4096:#x}" in leaf["fields"], f"{leaf}")
    check(base not in tables and base >= 1 << 32, f"leaf address {base:#x} vs tables {sorted(tables)}")
    # In a fresh daemon: the SMMU's stream table takes the first 2 MiB block
    # (it is built with the unit), VT-d's tables the second, then the
    # pinned memory.
    check(leaves[0]["raw"] == 0x100400803, f"IOVA 0x100000: raw {leaves[0]['raw']:#x}, expected 0x100400803")
    check(dump["count"] == len(dump["entries"]) == 3 + 16, f"{dump['count']}")

    # Faults: where, why, the unit's code, the bytes moved before.
    faults = [o for o in objects if not o["ok"]]
    check([o["errno"] for o in faults] == ["EIO"] * 3 and all(o.get("expected_failure") for o in faults),
          f"{faults}")
    first = faults[0]
    check(first["done"] == 4096 and first["fault"] == {"reason": "not-present", "reason_value": 4, "code": 0x79,
                                                       "unit": "vtd0", "iova": 0x110000}, f"{first}")
    check("IOMMU fault on DMA write at IOVA 0x110000" in first["message"] and
          "4096 of 8192 bytes done" in first["message"], f"{first}")
    check(faults[2]["done"] == 0 and faults[2]["fault"]["iova"] == 0x100000
          and faults[2]["fault"]["reason"] == "not-present", f"after unmap: {faults[2]}")

    # Dirty tracking: exactly the pages written since it was turned on.
    n = by_var["n"]
    check(n["dirty"] == 3 and n["pages"] == [0x101000, 0x102000, 0x10f000]
          and n["ranges"] == [{"start": 0x101000, "last": 0x102fff, "pages": 2},
                              {"start": 0x10f000, "last": 0x10ffff, "pages": 1}], f"dirty read: {n}")
    again = [o for o in objects if o["command"] == "dirty read"][1]
    check(again["dirty"] == 0 and again["ranges"] == [], f"dirty read after a clearing read: {again}")


def case_topology(c):
    text = c.ctl("topology").stdout
    check(re.search(r"^UNIT +FAMILY +IOTLB HITS +MISSES +INVALIDATIONS +EVICTIONS +ENTRIES$", text, re.M), text)
    check(re.search(r"^vtd0 +vtd +0 +0 +0 +0 +0$", text, re.M), text)
    check(re.search(r"^nic0 +vtd0 +00:03\.0 +nic0 +16 bits +/dev/vfio/devices/vfio2 +free$", text, re.M), text)
    check(re.search(r"^gpu0-audio +vtd0 +00:05\.1 +gpu +- +/dev/vfio/devices/vfio5 +free$", text, re.M), text)
    check(re.search(r"^accel0 +vtd0 +00:06\.0 +accel0 +8 bits, only +", text, re.M), text)

    view = c.json_lines(c.ctl("--json", "topology"))[0]
    check([u["name"] for u in view["units"]] == ["mock0", "vtd0", "vtd1", "smmu0", "amd0", "tce0", "viommu0"]
          and [u["family"] for u in view["units"]] == ["mock", "vtd", "vtd", "smmuv3", "amd", "ppc_tce", "virtio"],
          f"units: {view['units']}")
    check([d["name"] for d in view["devices"]] == DEFAULT_DEVICES, f"devices: {view['devices']}")
    devices = {d["name"]: d for d in view["devices"]}
    check(all(d["state"] == "free" for d in view["devices"]), f"{view['devices']}")
    check(devices["nic0"]["bdf"] == "00:03.0" and devices["nic0"]["rid"] == 0x18
          and devices["nic0"]["pasid_bits"] == 16 and devices["nic0"]["node"] == "/dev/vfio/devices/vfio2",
          f"{devices['nic0']}")
    check(devices["gpu0"]["group"] == devices["gpu0-audio"]["group"] == "gpu", f"{devices}")
    check(devices["accel0"]["pasid_only"] is True and devices["dsa0"]["unit"] == "vtd1", f"{devices}")

    # Bound here: the dev id; the IOTLB counts in topology and status.
    script = ("$d = bind nic0\n$a = ioas alloc\nmap $a --memfd 8K --iova 0x10000\nattach $d $a\n"
              "dma write $d 0x10000 --fill 7 --length 8K\ndma read $d 0x10000 8K\ntopology\nstatus\n")
    text = c.ctl("-", input=script).stdout
    check(re.search(r"^nic0 +vtd0 +00:03\.0 .* bound here \(dev 1\)$", text, re.M), text)
    check(re.search(r"^vtd0 +vtd +2 +2 +0 +0 +2$", text, re.M), text)
    check(re.search(r"^unit vtd0  family vtd  iotlb hits 2  misses 2  invalidations 0  evictions 0  entries 2$",
                    text, re.M), text)
    check(re.search(r"^    1   device +users \d+  hwpt 3  name nic0$", text, re.M), text)

    # Help pages and usage errors of the new commands.
    for topic, start in [("dma", "Usage: dma read"), ("pt", "Usage: pt dump"), ("hwpt", "Usage: hwpt alloc"),
                         ("bind", "Usage: bind NAME"), ("attach", "Usage: attach DEV PT"),
                         ("dirty", "Usage: dirty enable"), ("hw-info", "Usage: hw-info DEV"),
                         ("topology", "Usage: topology")]:
        check(c.ctl(topic, "--help").stdout.startswith(start), f"{topic} --help")
    check(c.ctl("help", "dma", "write").stdout.startswith("Usage: dma read"), "help dma write")
    result = c.ctl("dma", "write", "1", "0", "--data", "abc", expect=2)
    check("odd number of hex digits" in result.stderr, show(result))
    result = c.ctl("dma", "write", "1", "0", "--fill", "0x100", "--length", "1", expect=2)
    check("--fill takes one byte" in result.stderr, show(result))
    result = c.ctl("bind", "x" * 32, expect=2)
    check("longer than 31 characters" in result.stderr, show(result))
    result = c.ctl("bind", "nosuch", expect=1)
    check("bind: ENODEV: no device 'nosuch' in the topology (it has: mock-dev0, " in result.stderr, show(result))
    result = c.ctl("attach", "1", "2", expect=1)
    check(result.stderr.strip() == "ioasidctl: attach: ENOENT: no object 1", show(result))


# One device of each family in the default topology: hw_info type and
# registers, the IOVA ranges the unit leaves an IOAS, and a DMA round trip.
FAMILY_CASES = [
    # device, hw_info type, type name, IOVA ranges after attach, a usable IOVA
    ("arm-nic0", 2, "arm-smmuv3", [(0, 0x7ffffff), (0x8100000, (1 << 48) - 1)], 0x200000),
    ("amd-gpu0", 4, "amd", [(0, 0xfedfffff), (0xfef00000, 0xfcffffffff), (0x10000000000, (1 << 64) - 1)],
     0x200000),
    ("ppc-nic0", 0, "none", [(0, 0x3fffffff), (1 << 59, (1 << 59) + (64 << 30) - 1)], (1 << 59) + 0x10000),
    ("virtio-net0", 0, "none", [(0, 0xfedfffff), (0xfef00000, (1 << 39) - 1)], 0x200000),
]


def case_families(c):
    for device, info_type, type_name, ranges, iova in FAMILY_CASES:
        script = (f"$d = bind {device}\nhw-info $d\n$a = ioas alloc\nattach $d $a\nranges $a\n"
                  f"map $a --memfd 64K --iova {iova:#x}\n"
                  f"dma write $d {iova + 0x1000:#x} --data 0123456789abcdef\n"
                  f"dma read $d {iova + 0x1000:#x} 8\n")
        objects = c.json_lines(c.ctl("--json", "-", input=script))
        by_command = {o["command"]: o for o in objects}
        check(all(o["ok"] for o in objects), f"{device}: {objects}")
        info = by_command["hw-info"]
        check(info["type"] == info_type and info["type_name"] == type_name, f"{device} hw-info: {info}")
        got = [(r["start"], r["last"]) for r in by_command["ranges"]["ranges"]]
        check(got == ranges, f"{device} ranges: {[(hex(a), hex(b)) for a, b in got]}")
        check(by_command["dma read"]["data"] == "0123456789abcdef", f"{device} dma read: {by_command['dma read']}")
        if info_type == 2:
            idr = info["smmuv3"]["decoded"]
            check(idr["IDR0"]["TTF"] == 2 and idr["IDR0"]["HTTU"] == 2 and idr["IDR1"]["SSIDSIZE"] == 20
                  and idr["IDR5"]["GRAN4K"] == 1 and info["max_pasid_log2"] == 20, f"{device}: {info}")
        if info_type == 4:
            efr = info["amd"]["decoded"]["EFR"]
            check(efr["HDSup"] == 1 and efr["GTSup"] == 1 and efr["PASmax"] == 15
                  and info["capability_names"] == ["dirty-tracking"], f"{device}: {info}")

    # POWER TCE: only the two windows can be mapped, and the 64 KiB window
    # only in whole 64 KiB pages.
    script = ("$d = bind ppc-nic0\n$a = ioas alloc\nattach $d $a\n"
              "!EINVAL map $a --memfd 64K --iova 0x40000000\n"
              "!EINVAL map $a --memfd 4K --iova 0x800000000001000\n"
              "map $a --memfd 4K --iova 0x3ffff000\n")
    result = c.ctl("-", input=script)
    check(result.stderr == "", show(result))


def case_device_busy(c):
    # One script holds gpu0-audio and nic0; another context cannot have
    # them, nor gpu0 (same IOMMU group), until the holder is gone.
    holder = subprocess.Popen([c.args.ioasidctl, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=c.daemon.env())
    try:
        holder.stdin.write("bind gpu0-audio\nbind nic0\necho ready\n")
        holder.stdin.flush()
        lines = [holder.stdout.readline() for _ in range(3)]
        check(lines == ["bound gpu0-audio: dev 1\n", "bound nic0: dev 2\n", "ready\n"], f"holder printed {lines}")
        view = c.json_lines(c.ctl("--json", "topology"))[0]
        devices = {d["name"]: d for d in view["devices"]}
        owner = devices["nic0"].get("context")
        check(devices["nic0"]["state"] == "bound" and owner is not None
              and devices["gpu0-audio"]["context"] == owner and devices["gpu0"]["state"] == "free", f"{devices}")

        result = c.ctl("bind", "nic0", expect=1)
        check(result.stderr.strip() == f"ioasidctl: bind: EBUSY: nic0 is already bound to context {owner}",
              show(result))
        result = c.ctl("bind", "gpu0", expect=1)
        check(result.stderr.strip() == f"ioasidctl: bind: EBUSY: gpu0 shares IOMMU group 'gpu' with gpu0-audio, "
                                       f"bound to context {owner}: a group belongs to one context at a time",
              show(result))
        obj = c.json_lines(c.ctl("--json", "bind", "gpu0", expect=1))[0]
        check(obj["errno"] == "EBUSY" and obj["errno_value"] == 16, f"{obj}")
        # Within one context a bound device cannot be bound twice either.
        result = c.ctl("-", input="bind nvme0\n!EBUSY bind nvme0\n")
        check("bind failed as expected: EBUSY: nvme0 is already bound to this context (dev 1)" in result.stdout,
              show(result))
        check(re.search(rf"^gpu0-audio .* bound to context {owner}$", c.ctl("topology").stdout, re.M),
              "topology shows the owner")
    finally:
        holder.stdin.close()
        rc = holder.wait(timeout=30)
    check(rc == 0, f"holder exited {rc}: {holder.stderr.read()}")
    holder.stdout.close()
    holder.stderr.close()

    # Its devices go back with its context.
    deadline = time.monotonic() + 10
    while True:
        result = subprocess.run([c.args.ioasidctl, "bind", "gpu0"], capture_output=True, text=True,
                                env=c.daemon.env(), timeout=60)
        if result.returncode == 0:
            break
        check("EBUSY" in result.stderr and time.monotonic() < deadline,
              f"gpu0 still busy 10 s after the holder exited\n{show(result)}")
        time.sleep(0.05)
    check(result.stdout == "bound gpu0: dev 1\n", show(result))


def case_libioasid(c):
    result = subprocess.run([c.args.libioasid_test, c.daemon.sock], capture_output=True, text=True,
                            env=c.daemon.env(), timeout=120)
    check(result.returncode == 0, show(result))


CASES = {
    "basic-text": case_basic_text,
    "basic-json": case_basic_json,
    "expected-failures": case_expected_failures,
    "failing-script": case_failing_script,
    "syntax-error": case_syntax_error,
    "one-shot": case_one_shot,
    "stdin": case_stdin,
    "file-map": case_file_map,
    "status-all": case_status_all,
    "libioasid": case_libioasid,
    "hardware-text": case_hardware_text,
    "hardware-json": case_hardware_json,
    "topology": case_topology,
    "families": case_families,
    "device-busy": case_device_busy,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ioasidd", required=True)
    parser.add_argument("--ioasidctl", required=True)
    parser.add_argument("--libioasid-test", required=True)
    parser.add_argument("--scripts", required=True)
    parser.add_argument("--case", required=True, choices=sorted(CASES))
    args = parser.parse_args()
    try:
        with Daemon(args.ioasidd) as daemon:
            CASES[args.case](Case(args, daemon))
    except Failure as e:
        print(f"FAIL {args.case}: {e}", file=sys.stderr)
        return 1
    print(f"ok {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
