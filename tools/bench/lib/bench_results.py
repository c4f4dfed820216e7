"""bench_results: the machine-readable results of the benchmark scripts in tools/bench/.

Each script prints its tables for people; with BENCH_RESULTS=FILE in its environment it also
appends its medians to FILE, one JSON object per line, through emit() and emit_target() here.
tools/bench/run_all.sh collects them from every script into one file, and tools/bench/report.py
turns that file into docs/benchmarks.md and its plots. python3's standard library only.

Every record has "bench", the script it came from:

  machine   one per run_all.sh run: the machine, the build and the time (machine() below)
  stage     one per script run_all.sh ran: name, status (exit code), seconds
  switch    one per Google Benchmark median of coil_bench: case, real_ns, cpu_ns, and the
            benchmark's counters (rss_per_coroutine_bytes, stack_maps, ...)
  idle_go   the Go peer of the idle-coroutine benchmark: goroutines, rss_per_goroutine_bytes,
            pte_per_goroutine_bytes
  echo      one per (server, connections): msgs_per_sec, p50_us, p90_us, p99_us,
            server_cpu_pct, us_per_msg, load_cpu_pct, wait_pct
  http      one per (server, url): rps, p50_us, p90_us, p99_us, server_cpu_pct, us_per_req,
            wrk_cpu_pct, others_pct
  coil_run  one per (server, connections): msgs_per_sec, p50_us, p90_us, p99_us, us_per_msg,
            rss_kb, kb_per_conn, kernel_kb, kernel_kb_per_conn, threads
  connect   coil-stress against c1m_server: connections, connects_per_s, connect and round-trip
            percentiles, client and server RSS per connection

and "runs", the number of runs its medians are of. A record with "type": "target" is one of a
script's verdicts instead: name (a stable key), text, value, op ("<=" or ">="), limit, met.
"""

import json
import os
import platform
import re
import statistics
import subprocess
import time

RESULTS_ENV = "BENCH_RESULTS"


def median(values):
    """median(values) is the median of an iterable of numbers (None if it is empty)."""
    values = list(values)
    return statistics.median(values) if values else None


def emit(bench, **fields):
    """emit(bench, **fields) appends one record to $BENCH_RESULTS; does nothing when unset."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    record = {"bench": bench}
    record.update({k: v for k, v in fields.items() if v is not None})
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")


def emit_target(bench, name, text, value, op, limit, met=None):
    """emit_target() records one of a script's verdicts: value op limit, and whether it is met
    (by default: the comparison; a script passes met when more than the number decides)."""
    if met is None:
        met = value <= limit if op == "<=" else value >= limit
    emit(bench, type="target", name=name, text=text, value=round(value, 4), op=op, limit=limit,
         met=bool(met))


def read(path):
    """read(path) returns the records of a results file, or of RESULTS_DIR/results.jsonl when
    path is a directory. Blank lines are skipped; anything else that is not a JSON object with
    a "bench" key raises ValueError naming the line."""
    if os.path.isdir(path):
        path = os.path.join(path, "results.jsonl")
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not JSON: {e}") from None
            if not isinstance(record, dict) or "bench" not in record:
                raise ValueError(f"{path}:{number}: not a record with a \"bench\" key")
            records.append(record)
    return records


def _run(*cmd, cwd=None):
    """The first line of a command's output (stdout, else stderr), or None if it cannot run."""
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (p.stdout.strip() or p.stderr.strip()).splitlines()
    return text[0].strip() if text else None


def _cache_value(build_dir, key):
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def machine(root, build_dir):
    """machine(root, build_dir) describes this machine and the build for the report: CPU model,
    logical CPUs usable and physical cores, kernel, memory, OS, compiler, build type, git
    revision, date and load average."""
    cpu, cores, core = None, set(), {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and cpu is None:
                cpu = value
            elif key in ("physical id", "core id"):
                core[key] = value
            elif not key and core:  # a blank line ends one logical CPU
                cores.add((core.get("physical id"), core.get("core id")))
                core = {}
    if core:
        cores.add((core.get("physical id"), core.get("core id")))
    mem_kib = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    os_name = None
    try:
        with open("/etc/os-release") as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M)
            os_name = m.group(1) if m else None
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    cxx = _cache_value(build_dir, "CMAKE_CXX_COMPILER")
    revision = _run("git", "rev-parse", "--short", "HEAD", cwd=root)
    dirty = _run("git", "status", "--porcelain", "--untracked-files=no", cwd=root)
    peers = {
        "go": _run("go", "version"),
        "nginx": _run("nginx", "-v"),
        "wrk": _run("wrk", "-v"),
    }
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cpus": len(os.sched_getaffinity(0)),
        "cores": len(cores) or None,
        "kernel": platform.release(),
        "os": os_name,
        "memory_gib": round(mem_kib / 1048576, 1) if mem_kib else None,
        "compiler": _run(cxx, "--version") if cxx else None,
        "build_type": _cache_value(build_dir, "CMAKE_BUILD_TYPE"),
        "coil_context": _cache_value(build_dir, "COIL_CONTEXT"),
        "revision": revision + (" with uncommitted changes" if dirty else "") if revision
        else None,
        "subject": _run("git", "log", "-1", "--format=%s", cwd=root),
        "loadavg": " ".join(load),
        "peers": {k: v for k, v in peers.items() if v},
    }


if __name__ == "__main__":
    import sys

    # bench_results.py machine ROOT BUILD_DIR: appends the machine record to $BENCH_RESULTS.
    if len(sys.argv) != 4 or sys.argv[1] != "machine":
        sys.exit("usage: bench_results.py machine ROOT BUILD_DIR (appends to $BENCH_RESULTS)")
    emit("machine", **machine(sys.argv[2], sys.argv[3]))
