"""c1m.py: the sampler and the report of tools/c1m.sh."""
import json
import os
import re
import signal
import sys
import time

GIB = 1 << 30
MIB = 1 << 20


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) * 1024
    return out


def sockstat():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                v = line.split()[1:]
                return {v[i]: int(v[i + 1]) for i in range(0, len(v) - 1, 2)}
    return {}


def netstat():
    """The TcpExt and Tcp counters of /proc/net/netstat and /proc/net/snmp."""
    out = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            prefix, names = names.split(":", 1)
            _, values = values.split(":", 1)
            if prefix in ("TcpExt", "Tcp"):
                for n, v in zip(names.split(), values.split()):
                    out[prefix + n] = int(v)
    drops = 0
    with open("/proc/net/softnet_stat") as f:
        for line in f:
            drops += int(line.split()[1], 16)
    out["SoftnetDropped"] = drops
    return out


def used(mem):
    """Memory in use that is not page cache: all of slab counts (MemAvailable would count the
    socket inodes and dentries, in reclaimable caches, as available although open sockets pin
    them)."""
    return mem["MemTotal"] - mem["MemFree"] - mem["Buffers"] - mem["Cached"]


def cpu_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return {"busy": sum(v) - v[3] - v[4], "total": sum(v), "steal": v[7] if len(v) > 7 else 0}


def snapshot():
    print(json.dumps({"time": time.time(), "meminfo": meminfo(), "sockstat": sockstat(),
                      "netstat": netstat(), "cpu": cpu_ticks(),
                      "loadavg": open("/proc/loadavg").read().split()[:3]}))


def groups(pgids, cpu_seen):
    """RSS, anonymous RSS, process count and CPU ticks of the processes in each group."""
    out = {pg: {"procs": 0, "rss": 0, "anon": 0, "max_rss": 0, "max_pid": 0} for pg in pgids}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            rest = stat[stat.rindex(")") + 2:].split()
            pg = int(rest[2])
            if pg not in out:
                continue
            cpu_seen[int(name)] = int(rest[11]) + int(rest[12])
            rss = anon = 0
            with open(f"/proc/{name}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) * 1024
                    elif line.startswith("RssAnon:"):
                        anon = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
        g = out[pg]
        g["procs"] += 1
        g["rss"] += rss
        g["anon"] += anon
        if rss > g["max_rss"]:
            g["max_rss"], g["max_pid"] = rss, int(name)
    return out


def count_maps(pid):
    try:
        with open(f"/proc/{pid}/maps") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def sample(path, server_pgid, client_pgid, bound, floor):
    """Every second until SIGTERM or bound seconds: one JSON line of memory, sockets, RSS and
    CPU. If the memory left falls below floor, the client gets SIGINT (it stops and reports);
    below floor / 2 both groups get SIGKILL. The memory left is MemAvailable less the growth of
    SReclaimable: MemAvailable counts socket inodes and dentries as reclaimable, but open sockets
    pin them."""
    server_pgid, client_pgid = int(server_pgid), int(client_pgid)
    bound, floor = float(bound), int(floor)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cpu_seen = {}
    warned = killed = False
    reclaimable0 = meminfo()["SReclaimable"]
    end = time.time() + bound
    with open(path, "a") as out:
        n = 0
        while time.time() < end:
            g = groups((server_pgid, client_pgid), cpu_seen)
            mem = meminfo()
            row = {"t": time.time(), "mem_avail": mem["MemAvailable"], "used": used(mem),
                   "slab": mem["Slab"], "page_tables": mem["PageTables"], "tcp": sockstat(),
                   "cpu": cpu_ticks(), "our_cpu": sum(cpu_seen.values()),
                   "server": g[server_pgid], "client": g[client_pgid]}
            if n % 10 == 5:
                row["server_maps"] = count_maps(g[server_pgid]["max_pid"])
                row["client_maps"] = count_maps(g[client_pgid]["max_pid"])
            left = mem["MemAvailable"] - max(0, mem["SReclaimable"] - reclaimable0)
            if left < floor and not warned:
                warned = True
                row["event"] = (f"memory left {left / GIB:.2f} GiB (MemAvailable less pinned "
                                f"socket caches) fell below {floor / GIB:.2f} GiB: the client was "
                                "asked to stop (SIGINT)")
                try:
                    os.kill(client_pgid, signal.SIGINT)
                except OSError:
                    pass
            elif left < floor // 2 and not killed:
                killed = True
                row["event"] = (f"memory left {left / GIB:.2f} GiB: the client and the server "
                                "were killed (SIGKILL)")
                for pg in (client_pgid, server_pgid):
                    try:
                        os.killpg(pg, signal.SIGKILL)
                    except OSError:
                        pass
            out.write(json.dumps(row) + "\n")
            out.flush()
            n += 1
            time.sleep(max(0.0, 1.0 - (time.time() - row["t"])))


def load_samples(out_dir):
    rows = []
    try:
        with open(os.path.join(out_dir, "samples.jsonl")) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return rows


def progress(out_dir, elapsed):
    last = ""
    try:
        with open(os.path.join(out_dir, "client.log"), errors="replace") as f:
            for line in f:
                if "established" in line and "conn/s" in line:
                    last = line.strip()
    except OSError:
        pass
    rows = load_samples(out_dir)
    srv = ""
    if rows:
        r = rows[-1]
        srv = (f" | server RSS {r['server']['rss'] / MIB:.0f} MiB in {r['server']['procs']} procs,"
               f" MemAvailable {r['mem_avail'] / GIB:.1f} GiB")
    print(f"  [{elapsed:>4} s] {last or 'client starting'}{srv}", flush=True)


def server_summary(out_dir):
    s = {"accepted": 0, "retries": 0, "summaries": 0, "conn_errors": {}, "accept_lines": []}
    try:
        f = open(os.path.join(out_dir, "server.log"), errors="replace")
    except OSError:
        return s
    with f:
        for line in f:
            m = re.match(r"summary: accepted (\d+) connections in [\d.]+ s, peak (\d+) open at "
                         r"once, (\d+) accept retries", line)
            if m:
                s["summaries"] += 1
                s["accepted"] += int(m[1])
                s["retries"] += int(m[3])
            m = re.match(r"\s+(\d+) connections ended with: (.*)", line)
            if m:
                s["conn_errors"][m[2]] = s["conn_errors"].get(m[2], 0) + int(m[1])
            if line.startswith("c1m_server: accept:") and not s["accept_lines"]:
                s["accept_lines"].append(line.strip())
    return s


def gib(b):
    return f"{b / GIB:.2f} GiB"


def per(b, n):
    return f"{b / n / 1024:.2f} KiB" if n else "-"


def report(out_dir, client_status):
    client_status = int(client_status)
    params = json.load(open(os.path.join(out_dir, "params.json")))
    before = json.load(open(os.path.join(out_dir, "before.json")))
    after = json.load(open(os.path.join(out_dir, "after.json")))
    try:
        c = json.load(open(os.path.join(out_dir, "client.json")))
    except (OSError, ValueError):
        c = None
    rows = load_samples(out_dir)
    srv = server_summary(out_dir)
    n_req = params["connections"]
    conns = c["connections"] if c else {}
    established = conns.get("established", 0)
    peak_open = conns.get("peak_open", 0)

    # The moment with the most TCP sockets open, and among the moments within 0.5 % of it the one
    # with the most memory in use: every connection open, heartbeats under way.
    base_used = used(before["meminfo"])
    base_slab = before["meminfo"]["Slab"]
    base_pt = before["meminfo"]["PageTables"]
    base_inuse = before["sockstat"].get("inuse", 0)
    peak = None
    if rows:
        top = max(r["tcp"].get("inuse", 0) for r in rows if "tcp" in r)
        near = [r for r in rows if r["tcp"].get("inuse", 0) >= top * 0.995]
        peak = max(near, key=lambda r: r["used"])
    events = [r["event"] for r in rows if "event" in r]

    lines = []

    def row(name, value, note=""):
        lines.append(f"  {name:<34} {value:<26} {note}".rstrip())

    ok = True
    problems = []
    row("connections requested", f"{n_req:,}")
    row("connections established", f"{established:,}", f"peak {peak_open:,} open at once")
    if established < n_req or peak_open < n_req:
        ok = False
    rate = conns.get("connects_per_s", 0.0)
    row("connect rate", f"{rate:,.0f} /s",
        f"{conns.get('connect_phase_s', 0):.1f} s connect phase; target >= 50,000/s: "
        + ("MET" if rate >= 50000 else "MISSED"))
    if c:
        lat = c["connect_latency_us"]
        row("connect latency p50/p99/max", f"{lat['p50'] / 1000:.1f}/{lat['p99'] / 1000:.1f}/"
            f"{lat['max'] / 1000:.1f} ms")
        msg = c["messages"]
        want = established / params["interval"] if params["interval"] > 0 else 0
        got = msg.get("echoes_per_s", 0.0)
        note = f"asked {want:,.0f}/s ({params['interval']:g} s interval)"
        if want and got < 0.9 * want:
            note += f": {got / want:.0%} of it, the CPUs are the limit (a heartbeat every " \
                    f"{established / got:.1f} s on average)" if got else ": none"
        row("heartbeats echoed, steady window", f"{got:,.0f} /s", note)
        row("messages sent/echoed/verified",
            f"{msg['sent']:,}/{msg['echoed']:,}/{msg['verified']:,}",
            f"{msg['lost']:,} lost, {msg['corrupt']:,} corrupt")
        rtt = c["rtt_us"]
        row("echo RTT p50/p99/max", f"{rtt['p50'] / 1000:.1f}/{rtt['p99'] / 1000:.1f}/"
            f"{rtt['max'] / 1000:.1f} ms", f"echo timeout {params['echo_timeout']:g} s")
        if msg["lost"] or msg["corrupt"]:
            ok = False
    client_errors = c["errors_total"] if c else None
    server_errors = sum(srv["conn_errors"].values()) + srv["retries"]
    errors = (c or {}).get("errors", [])
    err_note = ", ".join(f"{e['count']:,} {e['phase']} {e['error']}" for e in errors)
    row("errors (client)", "n/a" if client_errors is None else f"{client_errors:,}", err_note)
    srv_note = ", ".join(f"{v:,} {k}" for k, v in srv["conn_errors"].items())
    if srv["retries"]:
        srv_note += (", " if srv_note else "") + f"{srv['retries']:,} accept retries (fd cap)"
    row("errors (server)", f"{server_errors:,}", srv_note)
    if client_errors or server_errors or client_status != 0 or c is None or c.get("problems"):
        ok = False
    row("server accepted", f"{srv['accepted']:,}", f"{srv['summaries']} of "
        f"{params['server_procs']} processes reported")

    if peak:
        s_rss, c_rss = peak["server"]["rss"], peak["client"]["rss"]
        open_now = max(0, (peak["tcp"].get("inuse", 0) - base_inuse
                           - params["server_procs"] * 100) // 2)
        n = min(open_now, peak_open) or peak_open or 1
        slab = peak["slab"] - base_slab
        tables = peak["page_tables"] - base_pt
        buffers = peak["tcp"].get("mem", 0) * os.sysconf("SC_PAGESIZE")
        kernel = slab + tables + buffers
        total = s_rss + c_rss + kernel
        system = peak["used"] - base_used
        lines.append(f"  memory at the peak ({n:,} connections open, "
                     f"{time.strftime('%H:%M:%S', time.localtime(peak['t']))}):")
        note = f"{per(total, n)}/connection; target <= 20 GiB: "
        note += "MET" if total <= 20 * GIB else "MISSED"
        if n < 1_000_000:
            note += f"; x{1_000_000 / n:.2f} for 1M: ~{gib(total * 1_000_000 / n)}"
        row("  total (server + client + kernel)", gib(total), note)
        row("  server RSS", gib(s_rss), f"{per(s_rss, n)}/connection, "
            f"{peak['server']['procs']} processes (anonymous {gib(peak['server']['anon'])})")
        says = f"{c['memory']['client_rss_per_connection_bytes'] / 1024:.2f} KiB" if c else "n/a"
        row("  client RSS", gib(c_rss), f"{per(c_rss, n)}/connection, "
            f"{peak['client']['procs']} processes (anonymous {gib(peak['client']['anon'])}; "
            f"coil-stress says {says})")
        row("  kernel", gib(kernel), f"{per(kernel, n)}/connection = {per(kernel, 2 * n)}/socket")
        row("    slab (meminfo delta)", gib(slab), f"{per(slab, 2 * n)}/socket: sock, inode, "
            "file, dentry, epoll item")
        row("    page tables (meminfo delta)", gib(tables))
        row("    TCP buffers (sockstat mem)", gib(buffers))
        top = max(rows, key=lambda r: r["tcp"].get("mem", 0))
        limits = open("/proc/sys/net/ipv4/tcp_mem").read().split()
        row("  TCP buffers, most in the run", f"{top['tcp'].get('mem', 0):,} pages",
            f"at {top['t'] - rows[0]['t']:.0f} s with {top['tcp'].get('inuse', 0):,} TCP sockets; "
            f"tcp_mem {' '.join(limits)} (pressure, then drops past the last)")
        row("  system-wide check", gib(system), "used, not page cache (meminfo delta; includes "
            "other work on the machine)")
        row("  MemAvailable", f"{gib(peak['mem_avail'])} left", f"it dropped by "
            f"{gib(before['meminfo']['MemAvailable'] - peak['mem_avail'])} (it counts socket "
            "inodes and dentries as reclaimable)")
        maps = [(r.get("server_maps"), r.get("client_maps")) for r in rows if "server_maps" in r]
        if maps:
            row("  VMAs of the largest processes", f"server {max(m[0] or 0 for m in maps):,}, "
                f"client {max(m[1] or 0 for m in maps):,}", "(vm.max_map_count per process)")
        # CPU over the run: ours against everything.
        busy = rows[-1]["cpu"]["busy"] - rows[0]["cpu"]["busy"]
        span = rows[-1]["cpu"]["total"] - rows[0]["cpu"]["total"]
        ours = rows[-1]["our_cpu"] - rows[0]["our_cpu"]
        steal = rows[-1]["cpu"]["steal"] - rows[0]["cpu"]["steal"]
        if span > 0:
            ncpu = os.cpu_count() or 1
            row("CPU over the run", f"{100 * busy / span:.0f}% of {ncpu} CPUs busy",
                f"our processes {100 * ours / span:.0f}% in their own time (softirq work lands "
                f"on whoever runs), steal {100 * steal / span:.0f}%")
    else:
        problems.append("no memory samples were taken")
    row("machine before the run", f"load average {' '.join(before['loadavg'])}")
    deltas = {k: after["netstat"].get(k, 0) - before["netstat"].get(k, 0)
              for k in ("TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPMemoryPressures",
                        "TcpExtTCPMemoryPressuresChrono", "TcpExtTCPAbortOnMemory",
                        "TcpExtPruneCalled", "TcpExtTCPRcvQDrop", "TcpExtTCPReqQFullDrop",
                        "TcpExtSyncookiesSent", "TcpExtTCPTimeouts", "TcpRetransSegs",
                        "SoftnetDropped", "TcpExtTCPTimeWaitOverflow", "TcpOutRsts")}
    row("kernel counters (system-wide)", ", ".join(f"{k.replace('TcpExt', '')} {v:,}"
                                                   for k, v in deltas.items() if v) or "all 0")

    # Why it stopped short, from the errors, the server and the sampler.
    cap = []
    names = {e["error"] for e in errors}
    if events:
        cap.append("memory: " + "; ".join(events))
    if "EMFILE" in names or srv["retries"]:
        first = srv["accept_lines"]
        cap.append("RLIMIT_NOFILE: a process ran out of descriptors"
                   + (f" (server: {first[0]})" if first else ""))
    if "ENFILE" in names:
        cap.append("fs.file-max (ENFILE)")
    if "EADDRNOTAVAIL" in names:
        cap.append("source ports: net.ipv4.ip_local_port_range x source addresses (EADDRNOTAVAIL)")
    if names & {"ENOBUFS", "ENOMEM"} or deltas["TcpExtTCPAbortOnMemory"]:
        cap.append("kernel memory for sockets: net.ipv4.tcp_mem or MemAvailable (ENOBUFS/ENOMEM)")
    conn_timeouts = sum(e["count"] for e in errors
                        if e["phase"] in ("connect", "dial") and e["error"] == "ETIMEDOUT")
    if conn_timeouts:
        why = ("the listen backlog (net.core.somaxconn, tcp_max_syn_backlog)"
               if deltas["TcpExtListenOverflows"] or deltas["TcpExtListenDrops"]
               else "the CPUs (connects slower than the connect timeout allows) or "
               "nf_conntrack_max")
        cap.append(f"{conn_timeouts:,} connects timed out: {why}")
    lost = c["messages"]["lost"] if c else 0
    if lost:
        cap.append(f"{lost:,} echoes took longer than the {params['echo_timeout']:g} s echo "
                   "timeout: the CPUs could not echo N / interval heartbeats a second (raise "
                   "--interval or --echo-timeout)")
    if c:
        cap += [f"coil-stress: {h}" for h in c.get("hints", [])]
        problems += c.get("problems", [])
    if client_status != 0 and not c:
        problems.append(f"coil-stress exited with status {client_status} and wrote no report")

    print("\nc1m: results")
    print("\n".join(lines))
    print(f"  command: {params['script_cmd']}")
    print(f"    server: {params['server_cmd']}")
    print(f"    client: {params['client_cmd']}")
    if peak_open < n_req:
        print(f"c1m: ceiling: {peak_open:,} of {n_req:,} connections were open at once")
        for p in params.get("problems", []):
            print(f"  - limit found before the run: {p}")
        for x in cap or ["nothing in the errors names a limit; see the logs"]:
            print(f"  - capped by {x}")
    elif cap:
        for x in cap:
            print(f"  - {x}")
    for p in problems:
        print(f"  problem: {p}")
    print(f"c1m: {'PASS' if ok else 'FAIL'}: logs and JSON in {out_dir}")
    return 0 if ok else 1


def write_params(path, *pairs):
    """Writes NAME=VALUE pairs as JSON: numbers as numbers, problems as a list of lines."""
    out = {}
    for pair in pairs:
        name, value = pair.split("=", 1)
        try:
            out[name] = float(value) if "." in value else int(value)
        except ValueError:
            out[name] = value
    out["problems"] = [p for p in str(out.get("problems", "")).splitlines() if p]
    with open(path, "w") as f:
        json.dump(out, f)


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the script's to handle
    mode = sys.argv[1]
    if mode == "params":
        write_params(*sys.argv[2:])
    elif mode == "snapshot":
        snapshot()
    elif mode == "sample":
        sample(*sys.argv[2:7])
    elif mode == "progress":
        progress(sys.argv[2], sys.argv[3])
    elif mode == "report":
        sys.exit(report(sys.argv[2], sys.argv[3]))


main()
