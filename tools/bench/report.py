#!/usr/bin/env python3
"""report.py RESULTS [--markdown FILE] [--img-dir DIR] [--no-plots]

Turns the results of tools/bench/run_all.sh (RESULTS: its results.jsonl, or the directory holding
it; the records are described in tools/bench/lib/bench_results.py) into the markdown report
(default docs/benchmarks.md) and its plots, PNGs drawn by gnuplot into DIR (default docs/img/):

  bench_echo_throughput.png  echo msgs/s against connections: coil, the epoll reactor, Go
  bench_echo_latency.png     echo latency p50/p90/p99 per server, one panel per connection count
  bench_memory.png           memory per connection or idle coroutine: coil, Go, native threads,
                             coil-run, c1m_server and coil-stress

It can be run again on a saved file at any time (run_all.sh --report-only RESULTS). Without
gnuplot (Debian: gnuplot-nox) it writes the markdown without the plots and says so. Exits 1 if
the results cannot be read. python3's standard library only.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import bench_results  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Where the explanations are, per script: what is measured, and why a target is missed.
WHY = {
    "switch": "bench_switch.md#targets",
    "idle_go": "bench_switch.md",
    "echo": "bench_echo_http.md#where-the-rest-of-the-echo-gap-is-2026-11-22-echo_pairsh",
    "http": "bench_echo_http.md#http-http_ratiosh",
    "coil_run": "bench_echo_http.md#coil-run-on-an-unmodified-thread-per-connection-server-"
                "coil_run_echosh",
    "connect": "c1m.md#cpu-connects-and-heartbeats",
}
ECHO_SERVERS = ("coil", "reactor", "go")
ECHO_TITLES = {"coil": "coil (echo_server)", "reactor": "epoll reactor (C)",
               "go": "Go (GOMAXPROCS=1)"}
PLOTS = ("bench_echo_throughput.png", "bench_echo_latency.png", "bench_memory.png")


def num(value, digits=3):
    """A number for a table: thousands separators for large values, `digits` significant digits
    for small ones, an em dash for None."""
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    return text if "e" not in text else f"{value:.{digits}f}"


def short(text, width):
    """text cut at a word boundary to at most width characters, with an ellipsis if cut."""
    if len(text) <= width:
        return text
    return text[:width].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def latency(us):
    """A latency for a table: echo_load keeps latencies in 32-bit nanoseconds, so 4.29 s is its
    ceiling, shown as a lower bound."""
    return "≥ 4,294,967" if us is not None and us >= 4294967 else num(us)


def ratio(a, b):
    return a / b if a is not None and b else None


class Results:
    """The records of one results file, indexed the ways the report looks them up."""

    def __init__(self, records):
        self.records = records
        self.machine = next((r for r in records if r["bench"] == "machine"), {})
        self.stages = [r for r in records if r["bench"] == "stage"]
        self.targets = {(r["bench"], r["name"]): r for r in records if r.get("type") == "target"}
        rows = [r for r in records if r.get("type") != "target"]
        self.switch = {r["case"].split("/iterations:")[0]: r for r in rows
                       if r["bench"] == "switch"}
        self.idle_go = next((r for r in rows if r["bench"] == "idle_go"), None)
        self.echo = {(r["server"], r["connections"]): r for r in rows if r["bench"] == "echo"}
        self.http = {(r["server"], r["url"]): r for r in rows if r["bench"] == "http"}
        self.coil_run = {(r["server"], r["connections"]): r for r in rows
                         if r["bench"] == "coil_run"}
        self.connect = next((r for r in rows if r["bench"] == "connect"), None)

    def switch_case(self, *names):
        """The first median of benchmark family names[i], with or without its arguments."""
        for name in names:
            for case, r in self.switch.items():
                if case == name or case.startswith(name + "/"):
                    return r
        return None

    def echo_counts(self):
        return sorted({n for _, n in self.echo})

    def http_urls(self):
        return list(dict.fromkeys(url for _, url in self.http))


def verdict(results, bench, name, unit):
    """The target column of the summary: `op limit [unit]` (no unit: a ratio's target) and PASS,
    or MISS with a link to why."""
    t = results.targets.get((bench, name))
    if t is None:
        return "", ""
    limit = f"{num(t['limit'])} {unit}" if unit else f"{t['limit']:.1f}"
    text = f"{t['op'].replace('<=', '≤').replace('>=', '≥')} {limit}"
    if t["met"]:
        return text, "PASS"
    return text, f"**MISS** ([why]({WHY[bench]}))"


def summary(results):
    """The summary table: one row per comparison of coil against a peer (or against a target
    alone), from the medians."""
    rows = []

    def add(what, coil, peer, unit, bench=None, target=None, scale=1.0, target_unit=None):
        """One row; target_unit says the target is on coil's value (in that unit), not on the
        ratio."""
        coil_v = coil * scale if coil is not None else None
        peer_v = peer * scale if peer is not None else None
        limit, mark = verdict(results, bench, target, target_unit) if target else ("", "")
        r = ratio(coil, peer)
        rows.append([what, f"{num(coil_v)} {unit}" if coil is not None else "—",
                     f"{num(peer_v)} {unit}" if peer is not None else "",
                     "" if r is None else f"{r:.2f}" if r >= 0.1 else num(r),
                     limit, mark])

    sw = results.switch
    fctx = sw.get("BM_switch_boost_fcontext")
    ucx = sw.get("BM_switch_ucontext")
    coil_switch = results.switch_case("BM_switch_asm", "BM_switch_coil_asm",
                                      "BM_switch_coil_boost")
    get = lambda r, k: r.get(k) if r else None  # noqa: E731
    if coil_switch:
        add(f"context switch round trip (`{coil_switch['case']}`) vs Boost fcontext",
            get(coil_switch, "real_ns"), get(fctx, "real_ns"), "ns", "switch", "switch/fcontext")
        add("context switch round trip vs ucontext (`swapcontext`)",
            get(coil_switch, "real_ns"), get(ucx, "real_ns"), "ns")
    if "BM_yield_scheduler" in sw:
        add("`coil::yield()` to another coroutine vs fcontext round trip",
            sw["BM_yield_scheduler"]["real_ns"], get(fctx, "real_ns"), "ns", "switch",
            "yield/fcontext")
    if "BM_spawn_run_exit" in sw:
        add("spawn + run + exit + join, warm pool", sw["BM_spawn_run_exit"]["real_ns"], None,
            "ns", "switch", "spawn", target_unit="ns")
    idle = results.switch_case("BM_idle_coroutines")
    if idle or results.idle_go:
        add("RSS of an idle coroutine vs an idle Go goroutine (1M parked)",
            get(idle, "rss_per_coroutine_bytes"),
            get(results.idle_go, "rss_per_goroutine_bytes"), "B", "switch", "idle-rss",
            target_unit="B")
    for n in results.echo_counts():
        coil = get(results.echo.get(("coil", n)), "msgs_per_sec")
        for peer in ("reactor", "go"):
            if (peer, n) in results.echo:
                add(f"echo msgs/s at {n:,} connections vs {ECHO_TITLES[peer]}", coil,
                    results.echo[(peer, n)]["msgs_per_sec"], "/s", "echo",
                    f"coil/{peer}@{n}")
    if 1000 in results.echo_counts():
        coil = get(results.echo.get(("coil", 1000)), "us_per_msg")
        for peer in ("reactor", "go"):
            if (peer, 1000) in results.echo:
                add(f"echo server CPU time per message at 1,000 connections vs "
                    f"{ECHO_TITLES[peer]}", coil, results.echo[(peer, 1000)]["us_per_msg"], "µs")
    for url in results.http_urls():
        coil = get(results.http.get(("coil", url)), "rps")
        nginx = get(results.http.get(("nginx", url)), "rps")
        add(f"HTTP requests/s on `{url}` vs nginx (1 worker)", coil, nginx, "/s", "http",
            f"coil/nginx{url}")
    for url in results.http_urls():
        if "*" not in url:
            add(f"HTTP server CPU time per request on `{url}` vs nginx",
                get(results.http.get(("coil", url)), "us_per_req"),
                get(results.http.get(("nginx", url)), "us_per_req"), "µs")
    native = {n: r for (who, n), r in results.coil_run.items() if who == "native"}
    for n in sorted(native):
        under = results.coil_run.get(("coil-run", n))
        coil = results.coil_run.get(("coil", n))
        add(f"coil-run msgs/s at {n:,} connections vs native threads", get(under, "msgs_per_sec"),
            native[n]["msgs_per_sec"], "/s", "coil_run", f"coil-run/native@{n}")
        add(f"coil-run msgs/s at {n:,} connections vs echo_server (coil directly)",
            get(under, "msgs_per_sec"), get(coil, "msgs_per_sec"), "/s", "coil_run",
            f"coil-run/coil@{n}")
        add(f"coil-run RSS at {n:,} connections vs native threads", get(under, "rss_kb"),
            native[n]["rss_kb"], "MiB", "coil_run", f"coil-run/native-rss@{n}", 1 / 1024)
        if under and native[n].get("kernel_kb", 0) > 0:
            add(f"coil-run RSS + kernel stacks and page tables at {n:,} connections vs native "
                "threads", under["rss_kb"] + max(under.get("kernel_kb", 0), 0),
                native[n]["rss_kb"] + native[n]["kernel_kb"], "MiB", scale=1 / 1024)
    c = results.connect
    if c:
        add(f"coil-stress connect rate to c1m_server, {c['connections']:,} connections",
            c["connects_per_s"], None, "/s", "connect", "connect-rate", target_unit="/s")
    head = ["Comparison", "coil", "peer", "coil / peer", "target", ""]
    return table(head, rows, "lrrrll")


def table(head, rows, align):
    marks = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_table(results):
    m = results.machine
    if not m:
        return "(no machine record in the results)"
    cores = f", {m['cores']} cores" if m.get("cores") else ""
    stages = ", ".join(f"{s['name']} {s['seconds']:.0f} s" +
                       ("" if s.get("status", 0) == 0 else f" (**exit {s['status']}**)")
                       for s in results.stages)
    total = sum(s["seconds"] for s in results.stages)
    rows = [
        ["CPU", f"{m.get('cpu')}: {m.get('cpus')} logical CPUs usable{cores}"],
        ["Memory", f"{m.get('memory_gib')} GiB"],
        ["Kernel, OS", f"Linux {m.get('kernel')}, {m.get('os')}"],
        ["Compiler, build", f"{m.get('compiler')}; {m.get('build_type')}, "
                            f"COIL_CONTEXT={m.get('coil_context')}"],
        ["Peers", "; ".join(m.get("peers", {}).values()) or "—"],
        ["Source", f"`{m.get('revision')}` ({short(m.get('subject', ''), 90)})"],
        ["Date", m.get("date")],
        ["Load average before the run", f"{m.get('loadavg')} (1, 5, 15 min)"],
    ]
    if results.stages:
        rows.append(["Wall time", f"{total / 60:.1f} min: {stages}"])
    return table(["", ""], rows, "ll")


def echo_table(results):
    rows = []
    for n in results.echo_counts():
        for who in ECHO_SERVERS:
            r = results.echo.get((who, n))
            if r:
                rows.append([f"{n:,}", who, num(r["msgs_per_sec"]), latency(r["p50_us"]),
                             latency(r.get("p90_us")), latency(r["p99_us"]),
                             num(r["server_cpu_pct"]),
                             num(r["us_per_msg"]), num(r["wait_pct"]), r["runs"]])
    return table(["conns", "server", "msgs/s", "p50 µs", "p90 µs", "p99 µs", "srv CPU %",
                  "srv µs/msg", "wait %", "runs"], rows, "rlrrrrrrrr")


def http_table(results):
    rows = []
    for url in results.http_urls():
        for who in ("nginx", "coil"):
            r = results.http.get((who, url))
            if r:
                # wrk times a pipelined batch as one request: its percentiles mean nothing.
                lat = (None,) * 3 if "*" in url else (r["p50_us"], r.get("p90_us"), r["p99_us"])
                rows.append([f"`{url}`", who, num(r["rps"]), *map(num, lat),
                             num(r["server_cpu_pct"]),
                             num(r["us_per_req"]), num(r["wrk_cpu_pct"]), num(r["others_pct"]),
                             r["runs"]])
    return table(["URL", "server", "requests/s", "p50 µs", "p90 µs", "p99 µs", "srv CPU %",
                  "srv µs/req", "wrk CPU %", "others %", "runs"], rows, "llrrrrrrrrr")


def coil_run_table(results):
    rows = []
    for (who, n), r in sorted(results.coil_run.items(), key=lambda i: (i[0][1],
                              ["native", "coil-run", "coil"].index(i[0][0]))):
        rows.append([f"{n:,}", who, num(r["msgs_per_sec"]), latency(r["p99_us"]),
                     num(r["us_per_msg"]), num(r["rss_kb"] / 1024), num(r["kb_per_conn"]),
                     num(r["kernel_kb"] / 1024), num(r["threads"]), r["runs"]])
    return table(["conns", "server", "msgs/s", "p99 µs", "srv µs/msg", "RSS MiB", "KB/conn",
                  "kernel MiB", "OS threads", "runs"], rows, "rlrrrrrrrr")


def switch_table(results):
    rows = []
    for case, r in results.switch.items():
        extra = ", ".join(f"{k} {num(v)}" for k, v in r.items()
                          if k not in ("bench", "case", "runs", "real_ns", "cpu_ns"))
        rows.append([f"`{case}`", num(r["real_ns"]), num(r["cpu_ns"]), extra, r["runs"]])
    if results.idle_go:
        g = results.idle_go
        rows.append([f"Go: {g['goroutines']:,} idle goroutines (`idle_go`)", "", "",
                     f"rss_per_goroutine_bytes {num(g['rss_per_goroutine_bytes'])}, "
                     f"pte_per_goroutine_bytes {num(g['pte_per_goroutine_bytes'])}", g["runs"]])
    return table(["Benchmark", "real ns", "CPU ns", "counters", "runs"], rows, "lrrll")


def connect_table(results):
    c = results.connect
    rows = [
        ["connections, processes (client + server)", f"{c['connections']:,}, "
                                                     f"{c['procs']} + {c['procs']}"],
        ["connect rate", f"{num(c['connects_per_s'])}/s "
                         f"(connect phase {num(c['connect_phase_s'])} s)"],
        ["connect latency p50 / p90 / p99", f"{num(c['connect_p50_us'] / 1e3)} / "
                                            f"{num(c['connect_p90_us'] / 1e3)} / "
                                            f"{num(c['connect_p99_us'] / 1e3)} ms"],
        ["echo round trip p50 / p99 (heartbeat every 1 s)",
         f"{num(c['rtt_p50_us'] / 1e3)} / {num(c['rtt_p99_us'] / 1e3)} ms"],
        ["RSS per connection: client / server", f"{num(c['client_rss_per_conn_bytes'])} / "
                                                f"{num(c['server_rss_per_conn_bytes'])} B"],
        ["errors (all runs)", c["errors"]],
        ["runs", c["runs"]],
    ]
    return table(["", "median"], rows, "lr")


def memory_rows(results):
    """(label, user-space bytes, kernel bytes) per connection or idle coroutine."""
    rows = []
    idle = results.switch_case("BM_idle_coroutines")
    if idle and "rss_per_coroutine_bytes" in idle:
        rows.append(("coil idle coroutine", idle["rss_per_coroutine_bytes"],
                     idle.get("pte_per_coroutine_bytes", 0)))
    if results.idle_go:
        rows.append(("Go idle goroutine", results.idle_go["rss_per_goroutine_bytes"],
                     results.idle_go["pte_per_goroutine_bytes"]))
    if results.coil_run:
        n = max(n for _, n in results.coil_run)
        for who, label in (("native", "native thread"), ("coil-run", "coil-run"),
                           ("coil", "coil echo_server")):
            r = results.coil_run.get((who, n))
            if r:
                rows.append((f"{label}, {n:,} conns", r["kb_per_conn"] * 1024,
                             r.get("kernel_kb_per_conn", 0) * 1024))
    c = results.connect
    if c:
        rows.append(("c1m_server", c["server_rss_per_conn_bytes"], 0))
        rows.append(("coil-stress", c["client_rss_per_conn_bytes"], 0))
    return rows


def memory_table(results):
    rows = [[label, num(user), num(kernel), num(user + kernel)]
            for label, user, kernel in memory_rows(results)]
    return table(["per connection or idle coroutine", "RSS B", "kernel B", "total B"], rows,
                 "lrrr")


# ------------------------------------------------------------------------------------------------
# Plots.

def gnuplot_scripts(results, data_dir, img_dir, terminal):
    """Writes the gnuplot scripts and their data files into data_dir, for the plots the results
    have data for; returns (script path, PNG name) pairs."""
    scripts = []

    def write(name, text):
        path = os.path.join(data_dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    head = (f"set terminal {terminal} size 900,540 font ',10'\n"
            "set termoption noenhanced\nset datafile separator tab\nset grid ytics\n"
            "set key outside right top\n"
            "set style fill solid 0.85 border -1\n")
    counts = results.echo_counts()
    servers = [s for s in ECHO_SERVERS if any((s, n) in results.echo for n in counts)]
    if counts and servers:
        lines = ["connections\t" + "\t".join(servers)]
        for n in counts:
            lines.append(f"{n}\t" + "\t".join(
                str(results.echo[(s, n)]["msgs_per_sec"]) if (s, n) in results.echo else "NaN"
                for s in servers))
        dat = write("echo_throughput.dat", "\n".join(lines) + "\n")
        plots = ", ".join(f"'{dat}' using 1:{i + 2} with linespoints lw 2 pt 7 ps 1.2 "
                          f"title '{ECHO_TITLES[s]}'" for i, s in enumerate(servers))
        scripts.append((write("echo_throughput.gp", head + f"""
set output '{img_dir}/{PLOTS[0]}'
set title 'Echo throughput against connections (64-byte messages, one in flight per connection)'
set xlabel 'connections (log scale)'
set ylabel 'messages per second (median)'
set logscale x
set xrange [{counts[0] / 1.6}:{counts[-1] * 1.6}]
set yrange [0:*]
set xtics ({", ".join(f'"{n:,}" {n}' for n in counts)})
set format y '%.0s%c'
plot {plots}
"""), PLOTS[0]))

        percentiles = ("p50_us", "p90_us", "p99_us")
        panels = []
        for n in counts:
            lines = []  # no header row: a histogram would draw it as an empty first cluster
            for s in servers:
                r = results.echo.get((s, n))
                if r:
                    lines.append(s + "\t" + "\t".join(
                        "NaN" if r.get(p) is None else str(r[p] / 1e3) for p in percentiles))
            dat = write(f"echo_latency_{n}.dat", "\n".join(lines) + "\n")
            top = max((results.echo[(s, n)].get(p) or 0 for s in servers
                       if (s, n) in results.echo for p in percentiles), default=1) / 1e3 * 1.3
            panels.append(f"""set title '{n:,} connections'
set yrange [0:{top}]
set xrange [-0.6:{len(lines) - 0.4}]
plot '{dat}' using 2:xtic(1) title 'p50', '' using 3 title 'p90', '' using 4 title 'p99'
""")
        scripts.append((write("echo_latency.gp", head.replace("900,540", f"{320 * len(counts)},420")
                             + f"""
set output '{img_dir}/{PLOTS[1]}'
set style data histograms
set style histogram clustered gap 1
set ylabel 'latency, ms (median of runs)'
set key inside left top horizontal samplen 1.5 reverse Left
set multiplot layout 1,{len(counts)} title 'Echo latency percentiles per server'
""" + "".join(panels) + "unset multiplot\n"), PLOTS[1]))

    mem = memory_rows(results)
    if mem:
        lines = [f"{label}\t{user / 1024}\t{kernel / 1024}" for label, user, kernel in mem]
        dat = write("memory.dat", "\n".join(lines) + "\n")
        top = max(user + kernel for _, user, kernel in mem) / 1024 * 1.15
        scripts.append((write("memory.gp", head + f"""
set output '{img_dir}/{PLOTS[2]}'
set title 'Memory per connection or idle coroutine (median)'
set ylabel 'KiB'
set style data histograms
set style histogram rowstacked
set boxwidth 0.6
set xtics rotate by -25 left
set bmargin 8
set rmargin 12
set key inside right top
set yrange [0:{top}]
plot '{dat}' using 2:xtic(1) title 'user-space RSS', \\
     '' using 3 title 'kernel (stacks, page tables)', \\
     '' using 0:($2 + $3):(sprintf('%.1f', $2 + $3)) with labels offset 0,0.8 notitle
"""), PLOTS[2]))
    return scripts


def draw(results, img_dir, gnuplot):
    """Draws the plots with gnuplot into img_dir; returns the PNG names drawn."""
    terminal = "pngcairo"
    probe = subprocess.run([gnuplot, "-e", "set terminal pngcairo"], capture_output=True,
                           text=True)
    if probe.returncode != 0 or probe.stderr.strip():
        terminal = "png"
    drawn = []
    with tempfile.TemporaryDirectory(prefix="coil-report.") as tmp:
        for script, png in gnuplot_scripts(results, tmp, img_dir, terminal):
            p = subprocess.run([gnuplot, script], capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                sys.exit(f"report.py: gnuplot failed on {os.path.basename(script)}:\n{p.stderr}")
            drawn.append(png)
    return drawn


# ------------------------------------------------------------------------------------------------
# The markdown.

def markdown(results, results_path, img_link, drawn, no_plot_reason):
    m = results.machine
    out = [f"""# coil benchmarks: coil against its peers

Generated by `tools/bench/run_all.sh` on {m.get('date', '?')} from `{m.get('revision', '?')}`;
do not edit by hand. Regenerate this page and its plots from the saved results with
`tools/bench/run_all.sh --report-only {results_path}`.

Every figure is a median of several runs (the `runs` column); ratios are of medians. The
whole-system benchmarks pin the server to CPU 0 and the load generator to CPU 1; coil_bench runs
on CPU 1. What each benchmark measures, its history and why a target is missed:

- [bench_switch.md](bench_switch.md): context switch, yield, spawn and idle memory (`coil_bench`,
  `tools/bench/switch_ratio.sh`), against Boost.Context fcontext, ucontext and Go;
- [bench_echo_http.md](bench_echo_http.md): echo against an epoll reactor and Go
  (`echo_ratio.sh`), HTTP against nginx (`http_ratio.sh`), coil-run against native threads
  (`coil_run_echo.sh`);
- [c1m.md](c1m.md): a million connections with c1m_server and coil-stress, whose connect rate
  `connect_rate.sh` measures here at a smaller scale.

## Machine

{machine_table(results)}
"""]
    warnings = contamination(results)
    if warnings:
        out.append("**Shared CPUs.** " + " ".join(warnings) + "\n")
    failed = [s for s in results.stages if s.get("status", 0) != 0]
    if failed:
        out.append("**Failed stages** (their figures are missing or partial): " +
                   ", ".join(f"{s['name']} (exit {s['status']})" for s in failed) + "\n")
    out.append("## Summary\n\n" + summary(results) + "\n")
    if results.switch or results.echo:
        out.append("For times, CPU per message and memory a ratio below 1 favours coil; for rates "
                   "(/s) a ratio above 1 does. When other processes share the CPUs (see above), "
                   "the rates depend on how much CPU each server got, and CPU time per message "
                   "is the fairer comparison.\n")

    def plot(name, alt):
        if name in drawn:
            return f"![{alt}]({img_link}/{name})\n"
        return f"(plot not drawn: {no_plot_reason})\n" if no_plot_reason else ""

    if results.echo:
        out.append("## Echo: throughput against connections and latency\n\n"
                   "`echo_ratio.sh`: `echo_load` keeps one 64-byte message in flight on each "
                   "connection and checks every echo. `srv µs/msg` is the server's CPU time per "
                   "message; `wait %` the largest share of a run the server or the load waited "
                   "for its CPU (another process had it).\n\n" + echo_table(results) + "\n\n" +
                   plot(PLOTS[0], "echo msgs/s against connections") + "\n" +
                   plot(PLOTS[1], "echo latency percentiles per server"))
    if results.http:
        out.append("## HTTP against nginx\n\n`http_ratio.sh`: `wrk -t1 -c100 --latency`; "
                   "`/plaintext*16` sends 16 pipelined requests per write (wrk times such a batch "
                   "as one request, so its latencies are left out). `others %` is the share of "
                   "CPUs 0 and 1 that neither the server nor wrk used.\n\n" +
                   http_table(results) + "\n")
    if results.coil_run:
        out.append("## coil-run against native threads\n\n`coil_run_echo.sh`: the unmodified "
                   "thread-per-connection `tests/preload/thread_echo_server.c` natively and "
                   "under coil-run, and `examples/echo_server`. `KB/conn` is the RSS growth per "
                   "connection; `kernel MiB` the rise of KernelStack + PageTables.\n\n" +
                   coil_run_table(results) + "\n")
    mem = memory_rows(results)
    if mem:
        out.append("## Memory per connection\n\n" + memory_table(results) + "\n\n" +
                   plot(PLOTS[2], "memory per connection or idle coroutine"))
    if results.switch:
        out.append("## coil_bench medians\n\n`switch_ratio.sh` (Google Benchmark, pinned to "
                   "CPU 1), and the Go peer `tools/bench/peers/idle_go`.\n\n" +
                   switch_table(results) + "\n")
    if results.connect:
        out.append("## Connect rate (coil-stress against c1m_server)\n\n`connect_rate.sh`: a "
                   "fresh c1m_server per run on CPU 0, coil-stress on CPU 1, sources spread over "
                   "127.0.0.0/8, every echo verified.\n\n" + connect_table(results) + "\n")
    return "\n".join(out)


def contamination(results):
    """Sentences about runs other processes shared a CPU with."""
    notes = []
    worst = [(r["wait_pct"], f"echo {who} at {n:,}") for (who, n), r in results.echo.items()
             if r.get("wait_pct", 0) >= 5]
    worst += [(r["others_pct"], f"HTTP {who} {url}") for (who, url), r in results.http.items()
              if r.get("others_pct", 0) >= 5]
    if worst:
        worst.sort(reverse=True)
        notes.append(f"In {len(worst)} of the measured rows another process took 5 % or more of a "
                     f"pinned CPU during a run (worst: {worst[0][1]}, {worst[0][0]:.0f} %); their "
                     "figures are lower than on a quiet machine, the ratios less so.")
    shared = [case for case, r in results.switch.items()
              if r.get("cpu_ns") and r["real_ns"] > 1.05 * r["cpu_ns"]]
    if shared:
        notes.append(f"{len(shared)} of the coil_bench medians took over 5 % more real time than "
                     "CPU time (the pinned CPU was shared); compare their CPU times in the "
                     "coil_bench table.")
    load = results.machine.get("loadavg")
    if load and float(load.split()[0]) >= 0.8:
        notes.append(f"The load average was {load.split()[0]} when the run started: other work "
                     "shared the two CPUs.")
    return notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("results", help="results.jsonl, or the directory holding it")
    parser.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    parser.add_argument("--img-dir", default=os.path.join(ROOT, "docs", "img"))
    parser.add_argument("--results-name", help="how the page names the results file "
                        "(default: the path given)")
    parser.add_argument("--no-plots", action="store_true", help="write the markdown only")
    args = parser.parse_args()

    try:
        results = Results(bench_results.read(args.results))
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"report.py: cannot read {args.results}: {e}")
    if not any(r["bench"] not in ("machine", "stage") for r in results.records):
        sys.exit(f"report.py: {args.results} holds no benchmark results")

    md_dir = os.path.dirname(os.path.abspath(args.markdown))
    img_dir = os.path.abspath(args.img_dir)
    drawn, reason = [], None
    gnuplot = shutil.which("gnuplot")
    if args.no_plots:
        reason = "the report was made with --no-plots"
    elif not gnuplot:
        reason = "gnuplot was not installed (Debian: gnuplot-nox)"
        print(f"report.py: {reason}: no plots", file=sys.stderr)
    else:
        os.makedirs(img_dir, exist_ok=True)
        drawn = draw(results, img_dir, gnuplot)
    text = markdown(results, args.results_name or args.results, os.path.relpath(img_dir, md_dir),
                    drawn, reason)
    os.makedirs(md_dir, exist_ok=True)
    with open(args.markdown, "w") as f:
        f.write(text)
    print(f"report.py: wrote {args.markdown}" +
          (f" and {len(drawn)} plots in {img_dir}" if drawn else ""))


if __name__ == "__main__":
    main()
