#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tap_summary.py decides whether the conformance run passes: these cases
pin down that verdict (exit status) and the closing totals line."""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARY = os.path.join(HERE, 'tap_summary.py')

EXPECTED = """# prose
    - `indented.example.line`: not an entry
- `iommufd_ioas.mock_domain.fork_gone`: listed everywhere
- [cuse] `iommufd_ioas.no_domain.access_rw`: listed for CUSE only
- [no-cap-sys-resource] `iommufd.global_options`: listed on hosts without it
"""

HEADER = 'TAP version 13\n'


def tap(*lines, plan=None):
    n = plan if plan is not None else sum(1 for l in lines if l.startswith(('ok ', 'not ok ')))
    return HEADER + f'1..{n}\n' + ''.join(l + '\n' for l in lines)


class Run:
    def __init__(self, rc, out):
        self.rc = rc
        self.out = out
        self.last = out.rstrip('\n').splitlines()[-1]


class TapSummaryTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.expected = self.write('EXPECTED.md', EXPECTED)

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def run_summary(self, taps, transport='shim', problems=(), conditions=()):
        args = [sys.executable, SUMMARY, '--expected', self.expected, '--transport', transport]
        for p in problems:
            args += ['--problem', p]
        for c in conditions:
            args += ['--condition', c]
        for label, text in taps.items():
            args.append(f'{label}={self.write(label + ".tap", text)}')
        p = subprocess.run(args, capture_output=True, text=True)
        return Run(p.returncode, p.stdout)

    def test_only_listed_failures_pass_the_run(self):
        r = self.run_summary({'iommufd': tap(
            'ok 1 iommufd.simple_close',
            '#  RUN           iommufd_ioas.mock_domain.fork_gone ...',
            '# iommufd.c:1118:fork_gone:Expected 0 (0) == ioctl(...) (-1)',
            'not ok 2 iommufd_ioas.mock_domain.fork_gone',
            'ok 3 basic_fail_nth.basic # SKIP fault injection is not enabled in the kernel')})
        self.assertEqual(r.rc, 0, r.out)
        self.assertEqual(r.last, '1 passed, 1 failed, 1 skipped')
        self.assertIn('expected iommufd_ioas.mock_domain.fork_gone  -- iommufd.c:1118', r.out)

    def test_an_unlisted_failure_fails_the_run(self):
        r = self.run_summary({'iommufd': tap('ok 1 iommufd.simple_close',
                                             'not ok 2 iommufd_ioas.no_domain.area')})
        self.assertEqual(r.rc, 1, r.out)
        self.assertEqual(r.last, '1 passed, 1 failed, 0 skipped')
        self.assertIn('FAIL     iommufd_ioas.no_domain.area', r.out)

    def test_an_indented_example_is_not_an_entry(self):
        r = self.run_summary({'iommufd': tap('not ok 1 indented.example.line')})
        self.assertEqual(r.rc, 1, r.out)

    def test_a_listed_test_that_passes_is_reported_not_failed(self):
        r = self.run_summary({'iommufd': tap('ok 1 iommufd_ioas.mock_domain.fork_gone')})
        self.assertEqual(r.rc, 0, r.out)
        self.assertIn('Unexpectedly passed (1', r.out)

    def test_a_tagged_entry_holds_only_for_its_transport(self):
        text = tap('ok 1 iommufd.simple_close', 'not ok 2 iommufd_ioas.no_domain.access_rw')
        self.assertEqual(self.run_summary({'iommufd': text}, transport='cuse').rc, 0)
        self.assertEqual(self.run_summary({'iommufd': text}, transport='shim').rc, 1)

    def test_a_condition_tag_holds_only_when_the_runner_names_it(self):
        text = tap('ok 1 iommufd.simple_close', 'not ok 2 iommufd.global_options')
        self.assertEqual(self.run_summary({'iommufd': text}).rc, 1)
        self.assertEqual(self.run_summary({'iommufd': text},
                                          conditions=['no-cap-sys-resource']).rc, 0)

    def test_tests_without_a_result_count_as_failures(self):
        r = self.run_summary({'iommufd': tap(
            'ok 1 iommufd.simple_close',
            '#  RUN           iommufd.cmd_fail ...', plan=4)})
        self.assertEqual(r.rc, 1, r.out)
        self.assertEqual(r.last, '1 passed, 3 failed, 0 skipped')
        self.assertIn('iommufd.cmd_fail  -- started, never reported', r.out)
        self.assertIn('2 more test(s)', r.out)

    def test_a_problem_fails_the_run(self):
        r = self.run_summary({'iommufd': tap('ok 1 iommufd.simple_close')},
                             problems=['ioasidd died'])
        self.assertEqual(r.rc, 1, r.out)
        self.assertIn('PROBLEM: ioasidd died', r.out)
        self.assertEqual(r.last, '1 passed, 0 failed, 0 skipped')

    def test_no_test_run_fails(self):
        self.assertEqual(self.run_summary({'iommufd': tap()}).rc, 1)
        self.assertEqual(self.run_summary({'iommufd': 'garbage\n'}).rc, 1)
        self.assertEqual(self.run_summary(
            {'iommufd': tap('ok 1 basic_fail_nth.basic # SKIP no fault injection')}).rc, 1)

    def test_harness_xfail_passes_and_xpass_fails(self):
        r = self.run_summary({'iommufd': tap('ok 1 a.b.c # XFAIL known', 'ok 2 a.b.d # XPASS oops')})
        self.assertEqual(r.rc, 1, r.out)
        self.assertEqual(r.last, '1 passed, 1 failed, 0 skipped')

    def test_totals_and_tables_cover_every_file(self):
        r = self.run_summary({
            'iommufd': tap('ok 1 iommufd_ioas.no_domain.area', 'ok 2 iommufd_ioas.mock_domain.area',
                           'not ok 3 iommufd_ioas.mock_domain.fork_gone'),
            'iommufd_fail_nth': tap('ok 1 basic_fail_nth.basic # SKIP no fault injection')})
        self.assertEqual(r.rc, 0, r.out)
        self.assertEqual(r.last, '2 passed, 1 failed, 1 skipped')
        rows = {l.split()[0]: l.split()[1:] for l in r.out.splitlines()
                if l.strip() and l.split()[0].startswith(('iommufd_ioas', 'basic_fail_nth'))}
        self.assertEqual(rows['iommufd_ioas'], ['2', '1', '0'])
        self.assertEqual(rows['iommufd_ioas.mock_domain'], ['1', '1', '0'])
        self.assertEqual(rows['basic_fail_nth'], ['0', '0', '1'])


if __name__ == '__main__':
    unittest.main()
