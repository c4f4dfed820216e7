"""coil-gdb.py: gdb commands for the coroutines of a coil program.

    (gdb) source tools/coil-gdb.py
    (gdb) info coroutines          every coroutine of every scheduler, and what it waits on
    (gdb) coroutine bt ID          the stack of a suspended coroutine
    (gdb) coroutine select ID      make its frames gdb's frames #1 and up (for frame, info locals)
    (gdb) coroutine deselect       back to the thread's own frames

It works on a live process (attached or started under gdb) and on a core
file, for both context backends (COIL_CONTEXT=asm and =boost), and changes
nothing in the program: it only reads memory.

What it reads (the names are coil's; runtime/src/registry.hpp lists them):
  coil::detail::scheduler_registry.head, SchedulerImpl::registry_next
      the live schedulers; run_tid is the kernel tid of the thread inside
      run(), running_ the coroutine on its CPU, all_ every coroutine not yet
      released, clock_ the scheduler's clock, poller_ its fd waits.
  Poller::fds_ (FdTable chunks of FdEntry reader/writer slots) and
  Poller::tree_ (the WaitTree)
      the WaitNodes of parked fd waits; a node's co is its coroutine.
  Coroutine::context
      the saved registers. asm backend: the coil_context struct holds rsp,
      rip, rbx, rbp, r12-r15. boost backend: Context::fctx is the stack
      pointer jump_fcontext left, and the registers are on the stack in the
      layout of Boost 1.74's jump_x86_64_sysv_elf_gas.S.

How the backtrace is shown: gdb cannot write registers into a core file, so
instead of loading them into the thread this installs a frame unwinder
(gdb.unwinder). While a coroutine is shown, frame #0 of the chosen thread
unwinds to the coroutine's saved registers, so frames #1 and up are the
coroutine's; gdb's own DWARF unwinder walks on from there.
"""

import struct
import time

import gdb
import gdb.unwinder

_COUNTER_LIMIT = 1 << 22  # a bound on list and tree walks in a damaged image
_MAX_FRAMES = 200
_NO_DEADLINE = (1 << 63) - 1  # coil::kNoDeadline: TimePoint::max()
_INTEREST_READ = 1  # coil::detail::kReadable
_INTEREST_WRITE = 2  # coil::detail::kWritable

# Boost 1.74 jump_fcontext on x86-64 SysV ELF: "lea -0x38(%rsp),%rsp", then
# mxcsr/x87 cw at 0x00, r12 0x08, r13 0x10, r14 0x18, r15 0x20, rbx 0x28,
# rbp 0x30, and the return address at 0x38 pushed by the call; the stack
# pointer after the switch returns is fctx + 0x40.
_FCONTEXT_PROLOGUE = bytes.fromhex("488d6424c8")
_ENDBR64 = bytes.fromhex("f30f1efa")  # CET builds start with it
_FCONTEXT_SLOTS = {"r12": 0x08, "r13": 0x10, "r14": 0x18, "r15": 0x20,
                   "rbx": 0x28, "rbp": 0x30, "rip": 0x38}
_FCONTEXT_SIZE = 0x40

_CALLEE_SAVED = ("rbx", "rbp", "r12", "r13", "r14", "r15")


class CoilError(gdb.GdbError):
    """An error shown to the user as a message, without a Python traceback."""


# ---------------------------------------------------------------- debug info


def lookup_type(name):
    """lookup_type() returns coil's type NAME, or raises CoilError if the
    program has no debug info for it."""
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        raise CoilError(
            "coil-gdb: no debug info for %s: this program is not a coil program, or coil was "
            "built without -g (use a RelWithDebInfo or Debug build of coil)" % name) from None


def registry():
    """registry() returns the value of coil::detail::scheduler_registry."""
    lookup_type("coil::detail::SchedulerImpl")
    symbol = gdb.lookup_global_symbol("coil::detail::scheduler_registry")
    if symbol is None:
        raise CoilError("coil-gdb: coil::detail::scheduler_registry not found: this coil is "
                        "older than the scheduler registry, or has no debug info")
    return symbol.value()


def field_offset(type_, name):
    """field_offset() is the byte offset of member NAME in type_, looked for
    in its base classes too; None if it has none."""
    for field in type_.strip_typedefs().fields():
        if not hasattr(field, "bitpos"):
            continue  # a static member
        if field.name == name:
            return field.bitpos // 8
        inner = field_offset(field.type, name) if field.is_base_class else None
        if inner is not None:
            return field.bitpos // 8 + inner
    return None


def find_member(value, name, depth=12):
    """find_member() returns the member NAME of value, searched through base
    classes and nested members (Boost.Intrusive keeps a container's header
    node several layers down); None if there is none."""
    type_ = value.type.strip_typedefs()
    if depth == 0 or type_.code != gdb.TYPE_CODE_STRUCT:
        return None
    for field in type_.fields():
        if not hasattr(field, "bitpos"):
            continue
        if field.name == name:
            return value[field]
    for field in type_.fields():
        if hasattr(field, "bitpos") and field.name != name:
            found = find_member(value[field], name, depth - 1)
            if found is not None:
                return found
    return None


# ------------------------------------------------------------------- memory


def read_bytes(address, size):
    """read_bytes() reads size bytes of the program's memory at address."""
    return bytes(gdb.selected_inferior().read_memory(address, size))


def read_u64(address):
    """read_u64() reads the 64-bit word at address."""
    return struct.unpack("<Q", read_bytes(address, 8))[0]


def as_int(value):
    """as_int() is value (a pointer or integer gdb.Value) as a Python int."""
    return int(value.cast(gdb.lookup_type("unsigned long")))


def list_nodes(container):
    """list_nodes() yields the node addresses of a boost::intrusive::list."""
    header = find_member(container, "m_header")
    next_offset = field_offset(header.type, "next_")
    head = as_int(header.address)
    node = read_u64(head + next_offset)
    for _ in range(_COUNTER_LIMIT):
        if node in (0, head):
            return
        yield node
        node = read_u64(node + next_offset)


def tree_nodes(container):
    """tree_nodes() yields the node addresses of a boost::intrusive
    red-black tree (set or multiset), in order."""
    header = find_member(container, "root")
    offsets = [field_offset(header.type, n) for n in ("parent_", "left_", "right_")]
    parent_off, left_off, right_off = offsets
    root = read_u64(as_int(header.address) + parent_off) & ~7  # compact nodes keep the colour here
    pending, node, steps = [], root, 0
    # Every push and every pop counts: a damaged image may link the nodes in a cycle.
    while (pending or node) and steps < 2 * _COUNTER_LIMIT:
        steps += 1
        if node:
            pending.append(node)
            node = read_u64(node + left_off)
            continue
        node = pending.pop()
        yield node
        node = read_u64(node + right_off)


# ----------------------------------------------------------------- the model


class Coroutine:
    """One coroutine as read from the program: its control block and state."""

    STATES = {"kReady": "ready", "kRunning": "running", "kParked": "parked",
              "kDone": "done", "kLost": "lost"}

    def __init__(self, address, scheduler):
        co_type = lookup_type("coil::detail::Coroutine")
        self.address = address
        self.scheduler = scheduler
        self.value = gdb.Value(address).cast(co_type.pointer()).dereference()
        self.id = int(self.value["id"])
        raw = read_bytes(as_int(self.value["name"].address), co_type["name"].type.sizeof)
        self.name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        state = find_member(self.value["state"], "_M_i")  # std::atomic<CoState>
        state = str(self.value["state"] if state is None else state)
        self.state = self.STATES.get(state.rsplit(":", 1)[-1], state)
        self.started = bool(self.value["started"])
        self.scheduler_address = as_int(self.value["scheduler"])
        self.waits = []  # (fd, interest) of its parked fd waits

    def sleeping(self):
        """sleeping() is true if the coroutine is in its scheduler's sleep
        tree, whose deadline is then its own (a stale one stays behind)."""
        parent = find_member(self.value["sleep_hook"], "parent_")
        return (as_int(parent) & ~7) != 0

    def deadline_ns(self):
        """deadline_ns() is the raw deadline: nanoseconds of the scheduler's
        clock, or None when it has none."""
        if not self.sleeping():
            return None
        raw = int(find_member(self.value["deadline"], "__r"))
        return None if raw == _NO_DEADLINE else raw

    def stack_bounds(self):
        """stack_bounds() is (lo, hi): the stack's usable range."""
        return as_int(self.value["stack"]["lo"]), self.address


class Scheduler:
    """One scheduler of the registry: its thread, clock and coroutines."""

    def __init__(self, value, threads_by_lwp):
        self.value = value
        self.address = as_int(value.address)
        self.run_tid = int(value["run_tid"])
        self.thread = threads_by_lwp.get(self.run_tid) if self.run_tid else None
        self.running = as_int(value["running_"])
        self.clock_kind, self.clock_now = self._clock()
        self.coroutines = self._read_coroutines()
        self.missing = max(int(find_member(value["all_"], "size_")) - len(self.coroutines), 0)
        waits = fd_waits(value["poller_"])
        for co in self.coroutines:
            co.waits = waits.get(co.address, [])

    def _read_coroutines(self):
        """_read_coroutines() reads the coroutines of all_, up to the first
        one it cannot read: a core file may lack their memory."""
        hook = field_offset(lookup_type("coil::detail::Coroutine"), "all_hook")
        found = []
        try:
            for node in list_nodes(self.value["all_"]):
                co = Coroutine(node - hook, self)
                if co.scheduler_address != self.address:
                    break  # not a control block of ours: memory missing or damaged
                found.append(co)
        except gdb.MemoryError:
            pass
        return found

    def _clock(self):
        """_clock() is ("steady", None), ("manual", now_ns) or (type name, None)."""
        clock = value_or_none(lambda: self.value["clock_"].dereference())
        if clock is None:
            return "unknown", None
        name = str(clock.dynamic_type)
        if name.endswith("SteadyClock"):
            return "steady", None
        if name.endswith("ManualClock"):
            manual = clock.cast(clock.dynamic_type)
            return "manual", int(find_member(manual["now_"], "__r"))
        return name, None

    def where(self):
        """where() describes the scheduler's thread."""
        if not self.run_tid:
            return "not in run()"
        if self.thread is None:
            return "LWP %d" % self.run_tid
        return "thread %d (LWP %d)" % (self.thread.num, self.run_tid)


def value_or_none(get):
    """value_or_none() returns get(), or None if gdb cannot read it."""
    try:
        return get()
    except gdb.error:
        return None


def fd_waits(poller):
    """fd_waits() maps each coroutine address to its parked fd waits, as
    (fd, interest) pairs, from the poller's FdTable slots and WaitTree."""
    node_type = lookup_type("coil::detail::WaitNode")
    nodes = list(slot_nodes(poller["fds_"])) + list(tree_wait_nodes(poller["tree_"], node_type))
    waits = {}
    for address in nodes:
        node = gdb.Value(address).cast(node_type.pointer()).dereference()
        waits.setdefault(as_int(node["co"]), []).append((int(node["fd"]), int(node["interest"])))
    return waits


def slot_nodes(fd_table):
    """slot_nodes() yields the WaitNode addresses in the reader and writer
    slots of every FdEntry. It reads each 4096-entry chunk in one piece."""
    entry_type = lookup_type("coil::detail::FdEntry")
    size = entry_type.sizeof
    reader, writer = field_offset(entry_type, "reader"), field_offset(entry_type, "writer")
    impl = fd_table["chunks_"]["_M_impl"]
    start, finish = as_int(impl["_M_start"]), as_int(impl["_M_finish"])
    chunk_type = fd_table["chunks_"].type.strip_typedefs().template_argument(0).template_argument(0)
    chunk_bytes = chunk_type.sizeof - chunk_type.sizeof % size  # std::array<FdEntry, kChunk>
    for slot in range(start, finish, 8):
        chunk = read_u64(slot)  # a unique_ptr is its pointer
        if not chunk:
            continue
        try:
            data = read_bytes(chunk, chunk_bytes)
        except gdb.MemoryError:
            continue
        for base in range(0, len(data), size):
            for offset in (reader, writer):
                (node,) = struct.unpack_from("<Q", data, base + offset)
                if node:
                    yield node


def tree_wait_nodes(tree, node_type):
    """tree_wait_nodes() yields the WaitNode addresses of the WaitTree."""
    hook = next(f.bitpos // 8 for f in node_type.fields() if f.is_base_class)
    for node in tree_nodes(tree):
        yield node - hook


def threads_by_lwp():
    """threads_by_lwp() maps each kernel thread id to gdb's thread."""
    return {t.ptid[1]: t for t in gdb.selected_inferior().threads()}


def schedulers():
    """schedulers() reads every scheduler of the registry, newest first."""
    head = as_int(registry()["head"])  # first: it says when coil's debug info is missing
    if not gdb.selected_inferior().pid:
        raise CoilError("coil-gdb: the program is not running: run it, attach to it or load a "
                        "core file")
    impl = lookup_type("coil::detail::SchedulerImpl")
    next_offset = field_offset(impl, "registry_next")
    threads = threads_by_lwp()
    found = []
    while head and len(found) < 65536:
        try:
            found.append(Scheduler(gdb.Value(head).cast(impl.pointer()).dereference(), threads))
            head = read_u64(head + next_offset)
        except (gdb.MemoryError, gdb.error, TypeError, ValueError) as e:
            # A partial core, or a program stopped while it changed the registry: list what
            # could be read, and say where the walk stopped.
            print("coil-gdb: cannot read the scheduler at 0x%x (%s); the schedulers after it "
                  "are not listed" % (head, e))
            break
    return found


def find_coroutine(co_id):
    """find_coroutine() returns the coroutine with id co_id, or raises."""
    found = schedulers()
    for scheduler in found:
        for co in scheduler.coroutines:
            if co.id == co_id:
                return co
    unread = " (some could not be read from this core)" if any(s.missing for s in found) else ""
    raise CoilError("coil-gdb: no coroutine %d%s; see info coroutines" % (co_id, unread))


# --------------------------------------------------------------------- time


def live_monotonic_ns():
    """live_monotonic_ns() is CLOCK_MONOTONIC now as the program sees it, or
    None for a core file or a remote target. The clock is system-wide, so
    gdb reads its own, corrected for a time namespace between them."""
    inferior = gdb.selected_inferior()
    connection = getattr(inferior, "connection", None)
    if connection is None or connection.type != "native" or not inferior.pid:
        return None
    offset = namespace_offset_ns(inferior.pid) - namespace_offset_ns("self")
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) + offset


def namespace_offset_ns(pid):
    """namespace_offset_ns() is pid's time-namespace offset of
    CLOCK_MONOTONIC (0 without time namespaces)."""
    try:
        with open("/proc/%s/timens_offsets" % pid) as offsets:
            for line in offsets:
                fields = line.split()
                if fields and fields[0] in ("monotonic", "1"):
                    return int(fields[1]) * 10**9 + int(fields[2])
    except OSError:
        pass
    return 0


def describe_deadline(co, now_ns):
    """describe_deadline() renders the coroutine's deadline, or None."""
    deadline = co.deadline_ns()
    if deadline is None:
        return None
    clock = co.scheduler.clock_kind
    if clock == "manual":
        now_ns = co.scheduler.clock_now
    elif clock != "steady":
        now_ns = None
    if now_ns is None:  # a core file, or a clock of the program's own
        source = "CLOCK_MONOTONIC" if clock == "steady" else "clock " + clock
        return "deadline at %.9f s (%s)" % (deadline / 1e9, source)
    left = (deadline - now_ns) / 1e9
    what = "in %.3f s" % left if left >= 0 else "%.3f s ago" % -left
    return "deadline %s%s" % (what, " (manual clock)" if clock == "manual" else "")


# ------------------------------------------------------------ info coroutines


def describe_waits(co):
    """describe_waits() renders the fd waits of a coroutine: "fd 3 read"."""
    parts = []
    for fd, interest in co.waits:
        kinds = [k for bit, k in ((_INTEREST_READ, "read"), (_INTEREST_WRITE, "write"))
                 if interest & bit]
        parts.append("fd %d %s" % (fd, "+".join(kinds) or "interest=%d" % interest))
    return ", ".join(parts)


def describe_wait(co, now_ns):
    """describe_wait() says what the coroutine waits on, or why it does not."""
    if co.state == "running":
        return "running"
    if co.state == "ready":
        return "ready" if co.started else "ready, not started"
    if co.state == "done":
        return "finished, not yet joined"
    if co.state == "lost":
        return "lost in fork()"
    parts = [p for p in (describe_waits(co), describe_deadline(co, now_ns)) if p]
    return ", ".join(parts) if parts else "no fd, no deadline (join, lock, channel, ...)"


class InfoCoroutines(gdb.Command):
    """List every coroutine of every coil scheduler.

Usage: info coroutines

Each scheduler is shown with its thread (gdb's thread number and the LWP of
the thread inside run()), then its coroutines: id, state, name and what a
parked one waits on: its fds (read/write) and its deadline, in seconds from
now on a live process (the CLOCK_MONOTONIC time in a core file). A * marks
the coroutine running on the scheduler's thread."""

    def __init__(self):
        super().__init__("info coroutines", gdb.COMMAND_STATUS)

    def invoke(self, argument, from_tty):
        now_ns = live_monotonic_ns()
        found = schedulers()
        if not found:
            print("No coil scheduler in this process.")
        for scheduler in found:
            print("Scheduler 0x%x on %s, %d coroutine(s):" % (
                scheduler.address, scheduler.where(),
                len(scheduler.coroutines) + scheduler.missing))
            if scheduler.missing:
                print("  coil-gdb: %d of them could not be read: their stacks are missing from "
                      "this core (see docs/debugging.md about gcore and stack guards)"
                      % scheduler.missing)
            print("  %6s  %-8s  %-20s  %s" % ("Id", "State", "Name", "Waits on"))
            for co in sorted(scheduler.coroutines, key=lambda c: c.id):
                marker = "*" if co.address == scheduler.running else " "
                print("%s %6d  %-8s  %-20s  %s" % (marker, co.id, co.state, '"%s"' % co.name,
                                                  describe_wait(co, now_ns)))


# ------------------------------------------------------ registers, unwinder


def context_registers(co):
    """context_registers() returns the saved registers of a suspended
    coroutine, by name (rip, rsp and the callee-saved ones)."""
    context = co.value["context"]
    names = [f.name for f in context.type.strip_typedefs().fields()]
    if "rsp" in names:  # asm backend: struct coil_context
        return {name: as_int(context[name]) for name in ("rip", "rsp") + _CALLEE_SAVED}
    if "fctx" in names:  # boost backend: the registers sit on the stack
        check_fcontext_layout()
        fctx = as_int(context["fctx"])
        saved = {name: read_u64(fctx + offset) for name, offset in _FCONTEXT_SLOTS.items()}
        saved["rsp"] = fctx + _FCONTEXT_SIZE
        return saved
    raise CoilError("coil-gdb: unknown coil::detail::Context layout: fields %s" % names)


def check_fcontext_layout():
    """check_fcontext_layout() warns once if jump_fcontext does not open the
    way Boost 1.74's does, whose layout _FCONTEXT_SLOTS describes."""
    if getattr(check_fcontext_layout, "done", False):
        return
    check_fcontext_layout.done = True
    address = value_or_none(lambda: as_int(gdb.parse_and_eval("&jump_fcontext")))
    size = len(_ENDBR64) + len(_FCONTEXT_PROLOGUE)
    code = value_or_none(lambda: read_bytes(address, size)) if address else None
    if code and code.startswith(_ENDBR64):  # a Boost built with CET starts with endbr64
        code = code[len(_ENDBR64):]
    if code is None or not code.startswith(_FCONTEXT_PROLOGUE):
        print("coil-gdb: warning: jump_fcontext is not Boost 1.74's x86-64 one (%s); the "
              "saved registers may be misread" % (code.hex() if code else "not found"))


class FrameId:
    """FrameId is the identity of a frame for an unwinder: its stack address
    and code address (gdb 13 takes any object with sp and pc)."""

    def __init__(self, sp, pc):
        self.sp = gdb.Value(sp).cast(gdb.lookup_type("unsigned long"))
        self.pc = pc


class CoroutineUnwinder(gdb.unwinder.Unwinder):
    """While a coroutine is shown, makes frame #0 of one thread unwind to the
    coroutine's saved registers: frames #1 and up are then the coroutine's."""

    def __init__(self):
        super().__init__("coil-coroutine")
        self.registers = None  # the shown coroutine's, or None
        self.ptid = None  # the thread whose frame #0 leads to it

    def show(self, registers, ptid):
        """show() shows the coroutine with these registers on thread ptid
        (None, None: the thread's own frames)."""
        self.registers, self.ptid = registers, ptid
        gdb.invalidate_cached_frames()

    def hide(self):
        """hide() restores the thread's own frames."""
        if self.registers is not None:
            self.show(None, None)

    def __call__(self, pending_frame):
        if self.registers is None or pending_frame.level() != 0:
            return None
        if gdb.selected_thread() is None or gdb.selected_thread().ptid != self.ptid:
            return None
        pc = pending_frame.read_register("rip")
        # The id's stack address is the coroutine's saved stack pointer: below
        # every frame of the coroutine, so gdb sees no frame inner to #0.
        info = pending_frame.create_unwind_info(FrameId(self.registers["rsp"], pc))
        for name, number in self.registers.items():
            register_type = pending_frame.read_register(name).type
            info.add_saved_register(name, gdb.Value(number).cast(register_type))
        return info


UNWINDER = CoroutineUnwinder()


def shown_thread(co):
    """shown_thread() is the thread whose frames show co: its scheduler's,
    else the selected one."""
    thread = co.scheduler.thread or gdb.selected_thread()
    if thread is None:
        raise CoilError("coil-gdb: the program has no threads (not running, no core file)")
    return thread


def check_suspended(co):
    """check_suspended() raises unless co has saved registers to show."""
    if co.state == "running":
        thread = co.scheduler.thread
        if thread is None:
            raise CoilError("coil-gdb: coroutine %d is running on LWP %d, which gdb lists as no "
                            "thread" % (co.id, co.scheduler.run_tid))
        raise CoilError("coil-gdb: coroutine %d is running on thread %d: its frames are that "
                        "thread's; use \"thread %d\" and plain \"bt\""
                        % (co.id, thread.num, thread.num))
    if not co.started:
        raise CoilError("coil-gdb: coroutine %d has not started yet: it has no frames" % co.id)
    if co.state in ("done", "lost"):
        raise CoilError("coil-gdb: coroutine %d is %s: its saved registers are stale and its "
                        "stack may be another's by now" % (co.id, co.state))


# -------------------------------------------------------------- backtrace


def format_arguments(frame):
    """format_arguments() renders a frame's arguments as gdb's bt does
    (scalars shown, aggregates as ...)."""
    try:
        block = frame.block()
    except RuntimeError:
        return ""
    while block is not None and block.function is None:
        block = block.superblock
    if block is None:
        return ""
    shown = []
    for symbol in block:
        if symbol.is_argument:
            shown.append("%s=%s" % (symbol.name, format_argument(frame, symbol)))
    return ", ".join(shown)


def format_argument(frame, symbol):
    """format_argument() renders one argument's value."""
    try:
        value = frame.read_var(symbol)
        code = value.type.strip_typedefs().code
        if code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION, gdb.TYPE_CODE_ARRAY):
            return "..."
        return value.format_string(summary=True)
    except (gdb.error, RuntimeError) as error:
        return "<error: %s>" % error


def format_frame(frame, level):
    """format_frame() renders one frame like a line of gdb's bt."""
    pc = frame.pc()
    name = frame.name() or "??"
    head = "#%-2d " % level
    newer = frame.newer()
    if newer is None or newer.type() != gdb.INLINE_FRAME:  # no address on an inliner: gdb's way
        head += "0x%016x in " % pc
    text = "%s%s (%s)" % (head, name, format_arguments(frame))
    sal = frame.find_sal()
    if sal.symtab is not None:
        return "%s at %s:%d" % (text, sal.symtab.filename, sal.line)
    library = gdb.solib_name(pc)
    return "%s from %s" % (text, library) if library else text


def is_entry(frame):
    """is_entry() is true for the first frame of every coroutine stack:
    coil_context_entry (asm) or fcontext_entry (boost), beyond which there
    is nothing of the coroutine's."""
    name = frame.name() or ""
    return name == "coil_context_entry" or name.endswith("fcontext_entry")


def coroutine_frames(co):
    """coroutine_frames() yields the coroutine's frames, innermost first,
    while the unwinder shows it. It stops at the entry function or when a
    frame's stack pointer leaves the coroutine's stack."""
    lo, hi = co.stack_bounds()
    frame = gdb.newest_frame().older()
    for _ in range(_MAX_FRAMES):
        if frame is None or not lo <= as_int(frame.read_register("rsp")) <= hi:
            return
        yield frame
        if is_entry(frame):
            return
        try:
            frame = frame.older()
        except gdb.error:
            return


class CoroutinePrefix(gdb.Command):
    """Commands for coil coroutines: coroutine bt ID, coroutine select ID,
coroutine deselect. See also: info coroutines."""

    def __init__(self):
        super().__init__("coroutine", gdb.COMMAND_STACK, prefix=True)

    def invoke(self, argument, from_tty):
        gdb.execute("help coroutine")


def parse_id(argument, usage):
    """parse_id() reads a coroutine id from a command's argument."""
    words = gdb.string_to_argv(argument)
    if len(words) != 1 or not words[0].isdigit():
        raise CoilError("usage: " + usage)
    return int(words[0])


class CoroutineBacktrace(gdb.Command):
    """Print the backtrace of a suspended coroutine.

Usage: coroutine bt ID

ID is a coroutine id from "info coroutines". The coroutine must be
suspended (parked, or ready after it ran); for the running one, use plain
"bt" on its thread. Frames are numbered from the coroutine's innermost."""

    def __init__(self):
        super().__init__("coroutine bt", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        co = find_coroutine(parse_id(argument, "coroutine bt ID"))
        check_suspended(co)
        registers = context_registers(co)
        thread, frame = gdb.selected_thread(), value_or_none(gdb.selected_frame)
        selected = UNWINDER.registers, UNWINDER.ptid  # a "coroutine select" in force
        lines = []
        try:
            shown_thread(co).switch()
            UNWINDER.show(registers, gdb.selected_thread().ptid)
            for level, f in enumerate(coroutine_frames(co)):
                lines.append(format_frame(f, level))
        finally:
            UNWINDER.show(*selected)
            restore_selection(thread, frame)
        print('Coroutine %d "%s" (%s), on scheduler 0x%x:' % (
            co.id, co.name, co.state, co.scheduler.address))
        print("\n".join(lines) if lines else "(no frames)")


def restore_selection(thread, frame):
    """restore_selection() selects the thread and frame selected before."""
    if thread is not None and thread.is_valid():
        thread.switch()
    if frame is not None:
        try:
            frame.select()
        except (gdb.error, RuntimeError):
            pass


class CoroutineSelect(gdb.Command):
    """Show a suspended coroutine's frames as frames #1 and up of its thread.

Usage: coroutine select ID

Frame #0 stays the thread's own; "frame 1", "up", "info locals", "bt" then
see the coroutine. "coroutine deselect", or resuming the program, ends it."""

    def __init__(self):
        super().__init__("coroutine select", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        co = find_coroutine(parse_id(argument, "coroutine select ID"))
        check_suspended(co)
        registers = context_registers(co)
        shown_thread(co).switch()
        UNWINDER.show(registers, gdb.selected_thread().ptid)
        older = gdb.newest_frame().older()
        if older is None:
            UNWINDER.hide()
            raise CoilError("coil-gdb: gdb could not unwind coroutine %d" % co.id)
        older.select()
        print('Coroutine %d "%s": its frames are #1 and up of thread %d ("coroutine deselect" '
              "to leave)." % (co.id, co.name, gdb.selected_thread().num))
        gdb.execute("frame", to_string=False)


class CoroutineDeselect(gdb.Command):
    """Go back to the thread's own frames after "coroutine select".

Usage: coroutine deselect"""

    def __init__(self):
        super().__init__("coroutine deselect", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        UNWINDER.hide()


def _on_resume(event):
    """_on_resume() ends "coroutine select" when the program runs again."""
    UNWINDER.hide()


def register():
    """register() installs the commands and the unwinder; sourcing the file
    again replaces them."""
    gdb.unwinder.register_unwinder(None, UNWINDER, replace=True)
    InfoCoroutines()
    CoroutinePrefix()
    CoroutineBacktrace()
    CoroutineSelect()
    CoroutineDeselect()
    gdb.events.cont.connect(_on_resume)


register()
