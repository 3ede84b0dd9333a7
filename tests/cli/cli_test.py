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
