#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarises the TAP the kernel's kselftest harness writes.

    tap_summary.py --expected EXPECTED.md --transport shim|cuse
                   [--problem TEXT]... LABEL=TAPFILE...

Prints pass/fail/skip per fixture and per fixture.variant for each TAP file,
the failures (with the harness's first diagnostic line), the expected
failures that passed, and ends with exactly "N passed, N failed, N skipped"
over all files. Exit status 0 only when every failure is listed in
EXPECTED.md, every planned test has a result, at least one test ran and no
--problem was given (the run script reports a dead daemon, a leak or a
timeout that way).

EXPECTED.md lists a test as a line of the form

    - `fixture.variant.test`: why it cannot pass
    - [cuse] `fixture.variant.test`: why it cannot pass through CUSE

(an untagged line holds for every transport; a tagged one only for that
transport). Everything else in the file is prose for people.
"""

import argparse
import os
import re
import sys
from collections import defaultdict

RESULT_RE = re.compile(r'^(not ok|ok) (\d+) (\S+)(?:\s+#\s*(\w+)\s*(.*))?$')
PLAN_RE = re.compile(r'^1\.\.(\d+)\s*$')
RUN_RE = re.compile(r'^#\s+RUN\s+(\S+) \.\.\.')
DIAG_RE = re.compile(r'^# (\S+:\d+:.*)$')
EXPECTED_RE = re.compile(r'^- (?:\[([\w-]+)\] )?`([^`\s]+)`:')


class Result:
    def __init__(self, name, status, note):
        self.name = name
        self.status = status  # 'pass', 'fail', 'skip'
        self.note = note


class TapFile:
    def __init__(self, label, path):
        self.label = label
        self.path = path
        self.plan = None
        self.results = []
        self.started_without_result = []


def parse_tap(label, path):
    tap = TapFile(label, path)
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            lines = f.read().splitlines()
    except OSError as e:
        tap.plan = 0
        tap.error = str(e)
        return tap
    running = None
    diag = []
    for line in lines:
        m = PLAN_RE.match(line)
        if m and tap.plan is None:
            tap.plan = int(m.group(1))
            continue
        m = RUN_RE.match(line)
        if m:
            if running is not None:
                tap.started_without_result.append(running)
            running, diag = m.group(1), []
            continue
        m = DIAG_RE.match(line)
        if m:
            diag.append(m.group(1))
            continue
        m = RESULT_RE.match(line)
        if not m:
            continue
        verdict, _, name, directive, reason = m.groups()
        directive = (directive or '').upper()
        if directive == 'SKIP':
            status, note = 'skip', reason.strip()
        elif verdict == 'ok' and directive != 'XPASS':
            # XFAIL is the harness's own "failed as it should".
            status, note = 'pass', ''
        else:
            status = 'fail'
            note = diag[0] if diag else (f'# {directive} {reason}'.strip() if directive else '')
        tap.results.append(Result(name, status, note))
        if running == name:
            running, diag = None, []
    if running is not None:
        tap.started_without_result.append(running)
    tap.error = None
    return tap


def read_expected(path, tags):
    """The entries that hold for this run: untagged ones, and those tagged
    with the transport or with a condition the runner found on the host."""
    expected = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            m = EXPECTED_RE.match(line)
            if m and (m.group(1) is None or m.group(1) in tags):
                expected[m.group(2)] = line.split(':', 1)[1].strip()
    return expected


def split_name(name):
    parts = name.split('.')
    fixture = parts[0]
    variant = '.'.join(parts[:2]) if len(parts) == 3 else None
    return fixture, variant


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--expected', required=True)
    ap.add_argument('--transport', required=True)
    ap.add_argument('--problem', action='append', default=[])
    ap.add_argument('--condition', action='append', default=[],
                    help='a property of the host that EXPECTED.md entries may be tagged with')
    ap.add_argument('taps', nargs='+', metavar='LABEL=TAPFILE')
    args = ap.parse_args()

    expected = read_expected(args.expected, {args.transport, *args.condition})
    listed_in = os.path.basename(args.expected)
    problems = list(args.problem)
    totals = {'pass': 0, 'fail': 0, 'skip': 0}
    failures = []      # (name, note, expected reason or None)
    unexpected_pass = []
    skips = defaultdict(list)  # reason -> names
    seen = set()

    for spec in args.taps:
        label, _, path = spec.partition('=')
        tap = parse_tap(label, path)
        if tap.error:
            problems.append(f'{label}: cannot read {path}: {tap.error}')
            continue
        if tap.plan is None:
            problems.append(f'{label}: no TAP plan in {path} (did it start?)')
        rows = defaultdict(lambda: {'pass': 0, 'fail': 0, 'skip': 0})
        order = []
        for r in tap.results:
            seen.add(r.name)
            totals[r.status] += 1
            fixture, variant = split_name(r.name)
            for key in filter(None, (fixture, variant)):
                if key not in rows:
                    order.append(key)
                rows[key][r.status] += 1
            if r.status == 'fail':
                failures.append((r.name, r.note, expected.get(r.name)))
            elif r.status == 'pass' and r.name in expected:
                unexpected_pass.append(r.name)
            elif r.status == 'skip':
                skips[r.note].append(r.name)
        missing = (tap.plan or 0) - len(tap.results)
        if missing > 0:
            # A crash or the run's time limit: each unreported test is a failure.
            totals['fail'] += missing
            named = tap.started_without_result[:missing]
            for name in named:
                failures.append((name, 'started, never reported (crash or time limit)', None))
            if missing > len(named):
                failures.append((f'{label}: {missing - len(named)} more test(s)',
                                 'never started (the binary ended early)', None))

        print(f'== {label}: {len(tap.results)} of {tap.plan or 0} planned tests reported ==')
        width = max([len(k) + 2 for k in order] + [len('fixture')])
        print(f'{"fixture[.variant]":<{width}}  {"pass":>5} {"fail":>5} {"skip":>5}')
        for key in order:
            shown = key if '.' not in key else '  ' + key
            c = rows[key]
            print(f'{shown:<{width}}  {c["pass"]:>5} {c["fail"]:>5} {c["skip"]:>5}')
        print()

    unexpected = [f for f in failures if f[2] is None]
    if failures:
        print(f'Failures ({len(failures)}; {len(unexpected)} not in {listed_in}):')
        for name, note, why in failures:
            tag = 'expected' if why is not None else 'FAIL'
            if len(note) > 160:
                note = note[:157] + '...'
            print(f'  {tag:<8} {name}' + (f'  -- {note}' if note else ''))
        print()
    if skips:
        print(f'Skipped ({totals["skip"]}):')
        for reason, names in skips.items():
            print(f'  {", ".join(names)}  -- {reason or "no reason given"}')
        print()
    if unexpected_pass:
        print(f'Unexpectedly passed ({len(unexpected_pass)}; '
              f'take them out of {listed_in}):')
        for name in unexpected_pass:
            print(f'  {name}')
        print()
    if totals['pass'] + totals['fail'] == 0:
        problems.append('no test ran')
    for p in problems:
        print(f'PROBLEM: {p}')

    ok = not unexpected and not problems
    print(f'conformance ({args.transport}): ' + ('OK' if ok else
          f'FAILED: {len(unexpected)} unexpected failure(s), {len(problems)} problem(s)'))
    print(f'{totals["pass"]} passed, {totals["fail"]} failed, {totals["skip"]} skipped')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
