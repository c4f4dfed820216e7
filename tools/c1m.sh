#!/usr/bin/env bash
# c1m.sh [--connections N] [--duration S] [--interval S] [--echo-timeout S] [--build DIR]
#        [--out DIR] [--no-sysctl] [--dry-run]
#
# c1m.sh reproduces N (default 1,000,000) concurrent established loopback TCP connections with
# coil's programs: examples/c1m_server echoes on 127.0.0.1 ports 2048-2147 in as many processes
# as RLIMIT_NOFILE needs, and tools/stress' coil-stress opens the N connections from source
# addresses spread over 127.0.0.0/8 (IP_BIND_ADDRESS_NO_PORT), sends a 64-byte heartbeat on each
# every --interval seconds (default 10) with --verify, for --duration seconds (default 60) after
# the connect phase, then closes them. See docs/c1m.md for the recipe and the measured figures.
#
# Before running it checks, and explains what is missing:
#   - the binaries: --build DIR (a CMake build directory; the two targets are built there if
#     missing), else the Release configuration of tools/lib/build.sh (build-release/), built with
#     coil_build if missing;
#   - memory: N x (2 sockets of kernel memory + server and client user space) against
#     MemAvailable; it refuses to start, and says how many connections fit, if it is short;
#   - the sysctls that cap a run (ports, listen backlogs, fs.file-max, fs.nr_open, tcp_mem,
#     nf_conntrack_max, vm.max_map_count, pid_max): it says which would cap the run and what to
#     set; as root it raises those that are safe to raise, says so, and puts them back at exit
#     (--no-sysctl: only report);
#   - RLIMIT_NOFILE, which sets the connections per process and so the number of processes.
#
# While the run goes it samples, once a second, the RSS of the server's and the client's
# processes (/proc/PID/status), /proc/meminfo and /proc/net/sockstat, prints a progress line every
# 5 s, and stops the client early (SIGINT: it still reports) if the memory left (MemAvailable less
# the socket caches it wrongly counts as reclaimable) falls below 5 % of RAM (at least 1 GiB).
# At the end it prints a table: connections established, connect rate (target >= 50k/s), errors,
# heartbeats, memory (total, server and client RSS, kernel) and per-connection figures (target:
# <= 20 GiB in all), and, if fewer than N connections were up, the ceiling and what capped it.
#
# Every process it starts is in one of two process groups (server, client) plus its sampler; an
# EXIT/INT/TERM trap stops exactly those (TERM, then KILL after a bounded wait), nothing by name.
# Each step is bounded in time: the client by its connect timeout (30 s + N/5000 s) plus
# --duration and its echo timeout, the server by --max-seconds, the script by the sum plus 2 min.
#
# Exit status: 0 for a clean run (every connection established, every echo back and verified,
# no error on either side); 1 if the run had errors or fell short of N; 2 on a bad command line;
# 3 if a prerequisite is missing (binaries, python3, memory, busy ports).
set -euo pipefail

C1M_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib/build.sh
source "$C1M_DIR/lib/build.sh"

readonly HOST=127.0.0.1 FIRST_PORT=2048 LAST_PORT=2147 MESSAGE_SIZE=64
readonly PORTS=$((LAST_PORT - FIRST_PORT + 1))
# Per-connection costs for the memory estimate, measured on the project's VM (docs/c1m.md), with
# a little margin: a loopback connection is two sockets of ~4.2-4.7 KB of kernel memory each
# (tcp_sock, inode, file, dentry, epoll item); c1m_server's RSS grows by ~4.3 KiB a connection
# (the touched page of a 32 KiB coroutine stack), coil-stress' by ~4.5 KiB (its stack page and two
# message buffers).
readonly KERNEL_PER_SOCKET=4700 SERVER_PER_CONN=4700 CLIENT_PER_CONN=4800
readonly PROCESS_BASE=$((4 << 20))  # RSS of a server or client process with no connection
readonly SERVER_FDS_KEPT=64         # descriptors a c1m_server process keeps besides connections
readonly CLIENT_FDS_KEPT=100        # what coil-stress keeps back (tools/stress/options.hpp)
readonly SERVER_FILL=90             # percent of its fd cap a server process is planned to hold
# Heartbeats one CPU of the project's VM echoes a second with both ends on it (client send and
# read, server read and write, two loopback segments and a delayed ACK): 20-30k at saturation,
# ~13k when they come spread out (docs/c1m.md). Connects need what the heartbeats leave.
readonly ECHOES_PER_CPU=20000

connections=1000000 duration=60 interval=10 echo_timeout='' build_dir='' out_dir=''
dry_run=0 touch_sysctl=1
script_cmd="tools/c1m.sh $*"

die() {
  echo "c1m: $*" >&2
  exit 2
}
refuse() {
  echo "c1m: cannot run: $*" >&2
  exit 3
}
usage() {
  sed -n '2,3p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  die "$1 (see the header of tools/c1m.sh and docs/c1m.md)"
}

is_count() { [[ $1 =~ ^[1-9][0-9]{0,8}$ ]]; }
is_seconds() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v s="$1" 'BEGIN { exit !(s <= 3600) }'; }

while (($# > 0)); do
  opt=$1 val=''
  case $opt in
    --*=*) val=${opt#*=} opt=${opt%%=*} ;;
    --connections | -c | --duration | --interval | --echo-timeout | --build | --out)
      (($# >= 2)) || usage "$opt needs a value"
      val=$2
      shift ;;
  esac
  shift
  case $opt in
    --connections | -c)
      is_count "$val" || usage "--connections: not a count: $val"
      connections=$val ;;
    --duration)
      is_seconds "$val" || usage "--duration: not 0-3600 seconds: $val"
      duration=$val ;;
    --interval)
      is_seconds "$val" || usage "--interval: not 0-3600 seconds: $val"
      interval=$val ;;
    --echo-timeout)
      if ! is_seconds "$val" || [[ $val =~ ^0*(\.0*)?$ ]]; then usage "--echo-timeout: $val"; fi
      echo_timeout=$val ;;
    --build) build_dir=$val ;;
    --out) out_dir=$val ;;
    --dry-run) dry_run=1 ;;
    --no-sysctl) touch_sysctl=0 ;;
    -h | --help) sed -n '2,39p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage "unknown option $opt" ;;
  esac
done
# An echo may wait behind a whole round of heartbeats when the CPUs cannot keep up; the default
# lets it take one interval (at least coil-stress' 5 s) before it counts as lost.
[[ -n $echo_timeout ]] || echo_timeout=$(awk -v i="$interval" 'BEGIN { print (i > 5 ? i : 5) }')

command -v python3 >/dev/null 2>&1 || refuse "python3 is needed for the sampler and the report \
(Debian: apt-get install python3)"

# ---------------------------------------------------------------------------------------------
# Binaries.

if [[ -n $build_dir ]]; then
  [[ -d $build_dir ]] || refuse "--build $build_dir: no such directory"
  build_dir=$(cd "$build_dir" && pwd)
else
  build_dir=$(coil_config_dir release)
fi
server_bin=$build_dir/bin/c1m_server client_bin=$build_dir/bin/coil-stress
if [[ ! -x $server_bin || ! -x $client_bin ]]; then
  if ((dry_run)); then
    echo "c1m: (dry run) would build c1m_server and coil-stress in $build_dir"
  elif [[ $build_dir == "$(coil_config_dir release)" ]]; then
    echo "c1m: building c1m_server and coil-stress (Release, $build_dir)"
    coil_build release c1m_server coil-stress || refuse "the Release build failed (above)"
  elif [[ -f $build_dir/CMakeCache.txt ]]; then
    echo "c1m: building c1m_server and coil-stress in $build_dir"
    cmake --build "$build_dir" -j "$COIL_JOBS" --target c1m_server coil-stress ||
      refuse "the build in $build_dir failed (above)"
  else
    refuse "--build $build_dir: no bin/c1m_server and bin/coil-stress, and not a configured CMake \
build directory; configure one (cmake -S $COIL_ROOT -B DIR -DCMAKE_BUILD_TYPE=Release) or drop \
--build to use build-release/"
  fi
fi
if [[ -f $build_dir/CMakeCache.txt ]]; then
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
  sanitize=$(sed -n 's/^COIL_SANITIZE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
  if [[ $build_type != Release || -n $sanitize ]]; then
    echo "c1m: warning: $build_dir is a ${build_type:-default} build${sanitize:+ with $sanitize}; \
the figures are meant for Release"
  fi
fi

# ---------------------------------------------------------------------------------------------
# The plan: processes under RLIMIT_NOFILE, source addresses, time bounds.

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_soft=$(ulimit -Sn) fd_hard=$(ulimit -Hn)
[[ $fd_hard == unlimited ]] && fd_hard=$(cat /proc/sys/fs/nr_open)
((fd_hard > CLIENT_FDS_KEPT + 100 && fd_hard > PORTS + SERVER_FDS_KEPT + 100)) ||
  refuse "RLIMIT_NOFILE is $fd_hard (ulimit -Hn): too few descriptors for connections; raise the \
hard limit (limits.conf, systemd LimitNOFILE)"
server_cap=$((fd_hard - PORTS - SERVER_FDS_KEPT))
server_fill=$((server_cap * SERVER_FILL / 100))
server_procs=$(((connections + server_fill - 1) / server_fill))
client_cap=$((fd_hard - CLIENT_FDS_KEPT))
client_procs=$(((connections + client_cap - 1) / client_cap))
((server_procs <= 1024)) || refuse "$connections connections need $server_procs server processes \
under RLIMIT_NOFILE $fd_hard; c1m_server forks at most 1024: raise the RLIMIT_NOFILE hard limit"

read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
eph_ports=$((eph_hi - eph_lo + 1))
# Connects from one source to one port slow down past ~14k connections: keep each (source, port)
# pair under 10000 connections and half the ephemeral range by using more of 127.0.0.0/8.
pair_max=$((eph_ports / 2 < 10000 ? eph_ports / 2 : 10000))
srcs=$(((connections + PORTS * pair_max - 1) / (PORTS * pair_max)))
((srcs < 254)) && srcs=254
((srcs > 16777213)) && srcs=16777213
src_last=$((0x7f000000 + srcs))
src_range=127.0.0.1-127.$((src_last >> 16 & 255)).$((src_last >> 8 & 255)).$((src_last & 255))
per_pair=$(((connections + PORTS * srcs - 1) / (PORTS * srcs)))

# The connect phase may last 30 s + N / 5000 s: connects must average 5000/s or more (coil-stress'
# own default assumes 10000/s; 2 shared CPUs carrying heartbeats as well have dropped below that).
connect_timeout=$((30 + connections / 5000))
run_bound=$(awk -v c="$connect_timeout" -v d="$duration" -v e="$echo_timeout" \
  'BEGIN { printf "%d", c + d + e + 35 }')  # + coil-stress' 30 s margin before it kills
server_bound=$((run_bound + 60))
script_bound=$((run_bound + 120))

page=$(getconf PAGESIZE)
meminfo_kib() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
mem_total=$(($(meminfo_kib MemTotal) * 1024)) mem_avail=$(($(meminfo_kib MemAvailable) * 1024))
reserve=$((mem_total / 20 > (1 << 30) ? mem_total / 20 : (1 << 30)))
per_conn=$((2 * KERNEL_PER_SOCKET + SERVER_PER_CONN + CLIENT_PER_CONN))
mem_need=$((connections * per_conn + (server_procs + client_procs) * PROCESS_BASE))
gib() { awk -v b="$1" 'BEGIN { printf "%.1f GiB", b / 1073741824 }'; }

echo "c1m: $connections connections to $HOST:$FIRST_PORT-$LAST_PORT (uid $EUID, $(nproc) CPUs, \
load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r))"
echo "  server  $server_procs c1m_server processes: RLIMIT_NOFILE $fd_hard leaves $server_cap \
connections each beside $PORTS listeners; planned ~$(((connections + server_procs - 1) / \
server_procs)) each (<= $SERVER_FILL%: SO_REUSEPORT spreads by hash, not evenly)"
echo "  client  $client_procs coil-stress processes (at most $client_cap connections each), \
sources $src_range: ~$per_pair connections per (source, port) pair of $eph_ports ephemeral ports"
echo "  load    a $MESSAGE_SIZE-byte heartbeat every $interval s per connection, verified, \
for $duration s after the connect phase; echo timeout $echo_timeout s"
echo "  bounds  connect phase <= $connect_timeout s, client <= $run_bound s, \
script <= $script_bound s"
# N / interval heartbeats a second against what the CPUs can echo: past ~40 % of it, connects (and
# the other work on the machine) are starved and echoes queue up.
hb_rate=$(awk -v n="$connections" -v i="$interval" \
  'BEGIN { printf "%d", (i > 0 ? n / i : n * 1000) }')
hb_cap=$((ECHOES_PER_CPU * $(nproc)))
if ((hb_rate * 10 > hb_cap * 4)); then
  echo "  WARNING: $hb_rate heartbeats/s ($connections / $interval s) is \
$((hb_rate * 100 / hb_cap))% of what $(nproc) CPUs echo (~$hb_cap/s): connects will slow down as \
connections come up, echoes will queue behind each other, and the run may stop short of \
$connections (ceiling: CPU); for a run the CPUs can carry, use --interval \
$(((connections * 10 + hb_cap * 4 - 1) / (hb_cap * 4))) or more"
fi

# ---------------------------------------------------------------------------------------------
# Prerequisites: memory, ports, sysctls, RLIMIT_NOFILE.

problems=()  # limits that cap the run and could not be raised
declare -A sysctl_old=()
sysctl_path() { echo "/proc/sys/${1//.//}"; }
sysctl_get() { tr -s '\t ' ' ' <"$(sysctl_path "$1")" 2>/dev/null; }

# raise NAME VALUE sets sysctl NAME (root, not --no-sysctl, not --dry-run) and remembers the old
# value for the EXIT trap; fails if it may not or could not.
raise() {
  local name=$1 value=$2 old
  old=$(sysctl_get "$name")
  if ((EUID != 0 || !touch_sysctl)); then return 1; fi
  if ((dry_run)); then
    echo "    (dry run) would change $name: $old -> $value (and put it back at exit)"
    return 0
  fi
  if echo "$value" >"$(sysctl_path "$name")" 2>/dev/null; then
    [[ -n ${sysctl_old[$name]+set} ]] || sysctl_old[$name]=$old
    echo "    changed $name: $old -> $(sysctl_get "$name") (put back at exit)"
    return 0
  fi
  echo "    could not set $name to $value" >&2
  return 1
}

# limit NAME HAVE NEED WHAT SET: prints one line of the table; if HAVE < NEED it raises NAME to
# SET when it may, else records WHAT (the consequence) as a problem.
limit() {
  local name=$1 have=$2 need=$3 what=$4 set=$5
  if ((have >= need)); then
    printf '  %-30s %-24s ok (need >= %s)\n' "$name" "$(sysctl_get "$name")" "$need"
    return
  fi
  printf '  %-30s %-24s SHORT: need >= %s; %s\n' "$name" "$(sysctl_get "$name")" "$need" "$what"
  raise "$name" "$set" || {
    problems+=("$name: $what; set it: sysctl -w $name=\"$set\"")
    local why='not root'
    ((EUID != 0)) || why=--no-sysctl
    echo "    not changed ($why): to raise it, sysctl -w $name=\"$set\""
  }
}

echo "c1m: prerequisites"
printf '  %-30s %-24s %s\n' "memory" "$(gib "$mem_avail") available" \
  "need ~$(gib "$mem_need"): $connections x $per_conn B (2 x $KERNEL_PER_SOCKET kernel + \
$SERVER_PER_CONN server + $CLIENT_PER_CONN client) + $((server_procs + client_procs)) processes; \
$(gib "$reserve") kept for the rest of the machine"
fit=$(((mem_avail - reserve - (server_procs + client_procs) * PROCESS_BASE) / per_conn))
if ((mem_need > mem_avail - reserve)); then
  if ((dry_run)); then
    problems+=("memory: ~$(gib "$mem_need") needed, $(gib "$mem_avail") available; ~$fit fit")
  else
    refuse "$connections connections need ~$(gib "$mem_need") but MemAvailable is \
$(gib "$mem_avail") and $(gib "$reserve") stay for the rest of the machine: about $fit connections \
fit (run with --connections $fit), or free memory"
  fi
fi
((mem_need <= 20 << 30)) || echo "    note: the estimate is above the 20 GiB target"

# The ports must be free: another server on them would share connections through SO_REUSEPORT.
busy=$(python3 -c 'import sys
lo, hi, n = int(sys.argv[1]), int(sys.argv[2]), 0
for path in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = [r.split() for r in open(path).read().splitlines()[1:]]
    except OSError:
        continue
    n += sum(1 for r in rows if r[3] == "0A" and lo <= int(r[1].rsplit(":", 1)[1], 16) <= hi)
print(n)' "$FIRST_PORT" "$LAST_PORT")
if ((busy > 0)); then
  msg="$busy sockets already listen on ports $FIRST_PORT-$LAST_PORT (ss -ltnp \
'sport >= :$FIRST_PORT and sport <= :$LAST_PORT'); another c1m_server would share connections \
with ours"
  if ((dry_run)); then problems+=("$msg"); else refuse "$msg"; fi
fi

printf '  %-30s %-24s per-process: %s server processes, %s client processes\n' \
  "RLIMIT_NOFILE" "soft $fd_soft hard $fd_hard" "$server_procs" "$client_procs"
nr_open=$(sysctl_get fs.nr_open)
limit fs.nr_open "$nr_open" "$fd_hard" "RLIMIT_NOFILE cannot go above it" "$fd_hard"
if ((eph_lo <= LAST_PORT && eph_hi >= FIRST_PORT)); then
  problems+=("net.ipv4.ip_local_port_range $eph_lo-$eph_hi overlaps the server ports")
fi
tuples=$((eph_ports * srcs * PORTS))
if ((tuples >= connections)); then
  printf '  %-30s %-24s ok: %s ports x %s sources x %s server ports = %s four-tuples\n' \
    net.ipv4.ip_local_port_range "$eph_lo $eph_hi" "$eph_ports" "$srcs" "$PORTS" "$tuples"
else
  problems+=("net.ipv4.ip_local_port_range: $tuples four-tuples cap the run (EADDRNOTAVAIL)")
fi
limit net.core.somaxconn "$(sysctl_get net.core.somaxconn)" 4096 \
  "accept queues overflow in connect bursts (SYN retries, 1 s connects)" 65535
if (($(sysctl_get net.ipv4.tcp_syncookies) == 0)); then
  limit net.ipv4.tcp_max_syn_backlog "$(sysctl_get net.ipv4.tcp_max_syn_backlog)" 4096 \
    "with tcp_syncookies=0, SYNs are dropped in connect bursts (1 s retries)" 65535
else
  printf '  %-30s %-24s ok: with tcp_syncookies on, only the listen backlog (somaxconn) counts\n' \
    net.ipv4.tcp_max_syn_backlog "$(sysctl_get net.ipv4.tcp_max_syn_backlog)"
fi
read -r files_used _ _ </proc/sys/fs/file-nr
files_need=$((files_used + 2 * connections + server_procs * (PORTS + SERVER_FDS_KEPT) +
  client_procs * CLIENT_FDS_KEPT))
file_max=$(sysctl_get fs.file-max)
limit fs.file-max "$file_max" "$files_need" \
  "ENFILE caps the run at ~$(((file_max - files_used) / 2)) connections" "$((files_need * 5 / 4))"
read -r tcp_low tcp_pressure tcp_high <<<"$(sysctl_get net.ipv4.tcp_mem)"
# tcp_mem is in pages, and a socket holding any queued segment is charged a whole page. Idle
# connections hold nothing, but a heartbeat queued while the CPUs are behind, or the FIN of every
# connection when they all close at once, charges ~1 page per connection (measured at 1M: 594k
# pages, past the default limit, while the close drained). Past tcp_mem[2] segments are dropped.
tcp_need=$((connections + connections / 10))
limit net.ipv4.tcp_mem "$tcp_high" "$tcp_need" \
  "past $(gib $((tcp_high * page))) of socket buffers segments are dropped (retransmits, stalls)" \
  "$tcp_low $((tcp_pressure > tcp_need * 3 / 4 ? tcp_pressure : tcp_need * 3 / 4)) $tcp_need"
if [[ -r /proc/sys/net/netfilter/nf_conntrack_max ]]; then
  ct_count=$(sysctl_get net.netfilter.nf_conntrack_count)
  ct_max=$(sysctl_get net.netfilter.nf_conntrack_max)
  if ((ct_count > 0)); then
    limit net.netfilter.nf_conntrack_max "$ct_max" "$((ct_count + connections * 11 / 10))" \
      "conntrack drops SYNs once its table is full: the run stops near $((ct_max - ct_count))" \
      "$((ct_count + connections * 11 / 10))"
  else
    printf '  %-30s %-24s ok: %s\n' net.netfilter.nf_conntrack_max "$ct_max" "nf_conntrack is \
loaded but tracks nothing (count 0: no iptables/nft rule uses it); if one did, the table would cap \
the run at $ct_max"
  fi
else
  printf '  %-30s %-24s ok: nf_conntrack not loaded\n' net.netfilter.nf_conntrack_max -
fi
# Coroutine stack guards: MADV_GUARD_INSTALL (Linux >= 6.13) adds no VMA; mprotect adds two per
# stack, and coil falls back to unguarded stacks with a canary when vm.max_map_count runs short.
kernel_ver=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
maps_need=$((kernel_ver >= 6013 ? 8192 : 2 * (server_cap > client_cap ? server_cap : client_cap) +
  8192))
limit vm.max_map_count "$(sysctl_get vm.max_map_count)" "$maps_need" \
  "coroutine stacks lose their guard pages (a canary instead)" "$((maps_need + 8192))"
procs_now=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
limit kernel.pid_max "$(sysctl_get kernel.pid_max)" \
  "$((procs_now + server_procs + client_procs + 1000))" \
  "fork fails (EAGAIN) before every process is up" 4194304
tw=$(sysctl_get net.ipv4.tcp_max_tw_buckets)
printf '  %-30s %-24s ok: %s\n' net.ipv4.tcp_max_tw_buckets "$tw" "closing the connections \
overflows TIME_WAIT past $tw (harmless: no four-tuple is reused within a run; tcp_tw_reuse=\
$(sysctl_get net.ipv4.tcp_tw_reuse))"

if ((${#problems[@]} > 0)); then
  echo "c1m: these limits may cap this run (it goes as far as they let it, then reports):"
  printf '  - %s\n' "${problems[@]}"
fi

# ---------------------------------------------------------------------------------------------
# The commands.

server_cmd=("$server_bin" --ports "$FIRST_PORT-$LAST_PORT" --host "$HOST" --procs "$server_procs"
  --max-seconds "$server_bound")
client_cmd=("$client_bin" "$HOST" --ports "$FIRST_PORT-$LAST_PORT" --connections "$connections"
  --src "$src_range" --interval "$interval" --duration "$duration" --message-size "$MESSAGE_SIZE"
  --verify --echo-timeout "$echo_timeout" --connect-timeout "$connect_timeout")
echo "c1m: server: ${server_cmd[*]}"
echo "c1m: client: ${client_cmd[*]} --json OUT/client.json"
if ((dry_run)); then
  echo "c1m: dry run: nothing started, no sysctl changed"
  ((${#problems[@]} == 0)) || exit 3
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Running it.

# The sampler and the report are in Python (/proc parsing and the table are clearer there):
# tools/lib/c1m.py.
c1m_py=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/c1m.py


if [[ -n $out_dir ]]; then
  mkdir -p "$out_dir" && out_dir=$(cd "$out_dir" && pwd)
else
  out_dir=$(mktemp -d /tmp/coil-c1m.XXXXXX)
fi
server_pid='' client_pid='' sampler_pid=

# stop_group PGID SECONDS: SIGTERM to process group PGID, SIGKILL if it is still there after
# SECONDS. Only groups this script made with setsid are passed in.
stop_group() {
  local pgid=$1 i
  [[ -n $pgid ]] && kill -0 -- "-$pgid" 2>/dev/null || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 -- "-$pgid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "c1m: process group $pgid still there after $2 s: SIGKILL" >&2
  kill -KILL -- "-$pgid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # cleanup runs from the traps
cleanup() {
  local status=$? name
  set +e             # whatever fails now, the processes must go and the sysctls come back
  trap '' INT TERM   # and a second Ctrl-C must not cut that short
  trap - EXIT
  stop_group "$client_pid" 15
  stop_group "$server_pid" 15
  if [[ -n $sampler_pid ]]; then kill -TERM "$sampler_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  for name in "${!sysctl_old[@]}"; do
    if echo "${sysctl_old[$name]}" >"$(sysctl_path "$name")" 2>/dev/null; then
      echo "c1m: put back $name = ${sysctl_old[$name]}"
    else
      echo "c1m: could not put back $name = ${sysctl_old[$name]}" >&2
    fi
  done
  exit "$status"
}
# on_signal: the first SIGINT/SIGTERM while the client runs asks it to stop early (it still
# reports, and so does the script); any other one stops everything at once.
interrupted=0
# shellcheck disable=SC2317  # on_signal runs from the traps
on_signal() {
  interrupted=$((interrupted + 1))
  if ((interrupted == 1)) && [[ -n $client_pid ]] && kill -INT "$client_pid" 2>/dev/null; then
    echo "c1m: interrupted: the client stops early and reports (again to stop at once)" >&2
    return 0  # not a bare return: that gives back the interrupted command's status, and set -e
  fi
  echo "c1m: interrupted: stopping the client and the server" >&2
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM


python3 "$c1m_py" params "$out_dir/params.json" connections="$connections" \
  duration="$duration" interval="$interval" echo_timeout="$echo_timeout" \
  server_procs="$server_procs" client_procs="$client_procs" src="$src_range" \
  problems="$(printf '%s\n' "${problems[@]}")" script_cmd="$script_cmd" \
  server_cmd="${server_cmd[*]}" client_cmd="${client_cmd[*]} --json $out_dir/client.json"
python3 "$c1m_py" snapshot >"$out_dir/before.json"

echo "c1m: starting the server ($server_procs processes; logs in $out_dir)"
setsid "${server_cmd[@]}" >"$out_dir/server.log" 2>&1 &
server_pid=$!
for ((i = 0; i < 600; i++)); do  # up to 60 s for every process to listen on every port
  up=$(grep -c '^listening on ports' "$out_dir/server.log" || true)
  ((up >= server_procs)) && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    tail -20 "$out_dir/server.log" >&2
    echo "c1m: the server ended before listening (its log above)" >&2
    exit 1
  fi
  sleep 0.1
done
if ((up < server_procs)); then
  echo "c1m: only $up of $server_procs server processes listen after 60 s" >&2
  exit 1
fi

echo "c1m: starting the client"
setsid "${client_cmd[@]}" --json "$out_dir/client.json" >"$out_dir/client.log" 2>&1 &
client_pid=$!
python3 "$c1m_py" sample "$out_dir/samples.jsonl" "$server_pid" "$client_pid" \
  "$script_bound" "$reserve" &
sampler_pid=$!

start=$SECONDS
next_show=$((start + 5))
# The client ends by run_bound; this loop by script_bound at the latest.
while kill -0 "$client_pid" 2>/dev/null; do
  if ((SECONDS - start > script_bound)); then
    echo "c1m: the client is still running after $script_bound s: stopping it" >&2
    stop_group "$client_pid" 10
    break
  fi
  if ((SECONDS >= next_show)); then
    next_show=$((SECONDS + 5))
    python3 "$c1m_py" progress "$out_dir" "$((SECONDS - start))" || true
  fi
  sleep 1 || true  # a Ctrl-C reaches sleep too
done
client_status=0
wait "$client_pid" || client_status=$?
client_pid=''
echo "c1m: the client ended with status $client_status after $((SECONDS - start)) s; \
stopping the server"
kill -TERM "$server_pid" 2>/dev/null || true  # the parent forwards it to its processes
for ((i = 0; i < 300; i++)); do
  kill -0 -- "-$server_pid" 2>/dev/null || break
  sleep 0.1
done
stop_group "$server_pid" 5
wait "$server_pid" 2>/dev/null || true
server_pid=''
kill -TERM "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=''
python3 "$c1m_py" snapshot >"$out_dir/after.json"

report_status=0
python3 "$c1m_py" report "$out_dir" "$client_status" || report_status=$?
((interrupted == 0)) || report_status=130
exit "$report_status"
