#!/usr/bin/env python3
"""report_test.py REPORT_PY FIXTURE: tools/bench/report.py on a canned results file.

Runs the report generator on FIXTURE (tests/bench/report_fixture.jsonl, the records of a short
run_all.sh run) into a temporary directory and fails unless:
  - the markdown has the machine, summary, echo, HTTP, coil-run, memory, coil_bench and connect
    tables, every table's rows have as many cells as its header, and the summary's ratios and
    verdicts are the ones the fixture implies;
  - gnuplot drew the three PNGs it links to, each a non-empty PNG file;
  - a results file with a broken line is refused with that line's number.
When gnuplot is not installed the PNG check alone is skipped: the markdown is still checked, and
the test then exits 77 (ctest: skipped) with a message saying so.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

PLOTS = ("bench_echo_throughput.png", "bench_echo_latency.png", "bench_memory.png")


def fail(message, text=""):
    print(f"FAIL: {message}", file=sys.stderr)
    if text:
        print(text, file=sys.stderr)
    sys.exit(1)


def tables(markdown):
    """The markdown's tables, each a list of rows (lists of cells), header first."""
    found, rows = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            found.append(rows)
            rows = []
    return found


def main():
    report, fixture = sys.argv[1], sys.argv[2]
    gnuplot = shutil.which("gnuplot")
    with tempfile.TemporaryDirectory(prefix="coil-report-test.") as tmp:
        md, img = os.path.join(tmp, "docs", "benchmarks.md"), os.path.join(tmp, "docs", "img")
        p = subprocess.run([sys.executable, report, fixture, "--markdown", md, "--img-dir", img],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            fail(f"report.py exited {p.returncode}", p.stdout + p.stderr)
        text = open(md).read()

        for heading in ("## Machine", "## Summary", "## Echo", "## HTTP against nginx",
                        "## coil-run against native threads", "## Memory per connection",
                        "## coil_bench medians", "## Connect rate"):
            if heading not in text:
                fail(f"no '{heading}' section in the markdown", text)
        found = tables(text)
        if len(found) < 8:
            fail(f"{len(found)} tables in the markdown, expected 8", text)
        for t in found:
            if t[1] and not all(re.fullmatch(r"-+:?", c) for c in t[1]):
                fail(f"table {t[0]} has no separator row", text)
            widths = {len(row) for row in t}
            if len(widths) != 1:
                fail(f"table {t[0]} has rows of {sorted(widths)} cells", text)
        summary = next(t for t in found if t[0][0] == "Comparison")
        expect = {
            # ratio of the medians, and the verdict from the fixture's target records
            "context switch round trip (`BM_switch_asm`) vs Boost fcontext":
                ["21 ns", "23.1 ns", "0.91", "≤ 1.0", "PASS"],
            "RSS of an idle coroutine vs an idle Go goroutine (1M parked)":
                ["4,101 B", "2,713 B", "1.51", "≤ 4,608 B", "PASS"],
            "echo msgs/s at 1,000 connections vs epoll reactor (C)":
                ["61,762 /s", "115,030 /s", "0.54", "≥ 1.0"],
            "HTTP requests/s on `/file4k.html` vs nginx (1 worker)":
                ["89,548 /s", "57,380 /s", "1.56", "≥ 1.0", "PASS"],
            "coil-run msgs/s at 1,000 connections vs native threads":
                ["70,378 /s", "59,974 /s", "1.17", "≥ 1.3"],
            "coil-stress connect rate to c1m_server, 20,000 connections":
                ["18,441 /s", "", "", "≥ 50,000 /s"],
        }
        rows = {row[0]: row[1:] for row in summary[2:]}
        for what, cells in expect.items():
            if what not in rows:
                fail(f"no summary row '{what}'", text)
            if rows[what][:len(cells)] != cells:
                fail(f"summary row '{what}': {rows[what]}, expected {cells}", text)
        if "**MISS** ([why](bench_echo_http.md#" not in rows[
                "echo msgs/s at 1,000 connections vs epoll reactor (C)"][-1]:
            fail("the missed echo target does not link to bench_echo_http.md", text)
        for row in ("| 1,000 | coil | 61,762 | 11,222 | 22,419 | 171,197 |",
                    "| coil idle coroutine | 4,101 | 289 | 4,390 |"):
            if row not in text:
                fail(f"no row '{row}'", text)

        broken = os.path.join(tmp, "broken.jsonl")
        with open(fixture) as f, open(broken, "w") as out:
            lines = f.readlines()
            out.writelines(lines[:3] + ["{not json\n"] + lines[3:])
        p = subprocess.run([sys.executable, report, broken, "--markdown", md + ".2", "--no-plots"],
                           capture_output=True, text=True, timeout=60)
        if p.returncode == 0 or "broken.jsonl:4" not in p.stderr:
            fail("a broken results line was not refused with its line number",
                 p.stdout + p.stderr)

        if not gnuplot:
            if "(plot not drawn: gnuplot was not installed" not in text:
                fail("without gnuplot the markdown does not say the plots are missing", text)
            print("SKIP: gnuplot is not installed (Debian: gnuplot-nox), so the PNGs were not "
                  "checked; the markdown passed")
            sys.exit(77)
        for name in PLOTS:
            if f"](img/{name})" not in text:
                fail(f"the markdown does not link img/{name}", text)
            path = os.path.join(img, name)
            if not os.path.isfile(path) or os.path.getsize(path) < 1000:
                fail(f"{path} is missing or nearly empty")
            with open(path, "rb") as f:
                if f.read(8) != b"\x89PNG\r\n\x1a\n":
                    fail(f"{path} is not a PNG")

    print("ok: report.py wrote the tables and 3 PNGs, and refused a broken results file")


if __name__ == "__main__":
    main()
