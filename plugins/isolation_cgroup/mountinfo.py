"""Find the host's cgroup hierarchies (v1, v2 or both) from /proc/self/mountinfo."""

from __future__ import annotations

from pathlib import Path

from attrs import field, frozen

WANTED_V1 = ("memory", "cpu", "cpuacct", "pids")
"""The v1 controllers this plugin uses."""
WANTED_V2 = ("memory", "cpu", "pids")


@frozen
class Hierarchy:
    """One mounted cgroup hierarchy.

    ``mount`` is where it is mounted; ``root`` the cgroup path the mount shows (``/`` on
    the host, deeper inside a container with cgroup namespaces off); ``own`` the cgroup
    path of the inspected process in it (from /proc/<pid>/cgroup).
    """

    version: int
    mount: Path
    root: str = "/"
    controllers: tuple[str, ...] = ()
    own: str = "/"

    def path_of(self, cgroup: str) -> Path:
        """The directory of absolute cgroup path ``cgroup`` (as /proc/<pid>/cgroup names it)."""
        rel = cgroup
        if self.root != "/" and (cgroup == self.root or cgroup.startswith(self.root + "/")):
            rel = cgroup[len(self.root) :]
        return self.mount / rel.lstrip("/")


@frozen
class CgroupLayout:
    """What the host offers: the v2 hierarchy (if mounted) and v1 hierarchies by controller."""

    v2: Hierarchy | None = None
    v1: dict[str, Hierarchy] = field(factory=dict)

    @property
    def mode(self) -> str:
        """``v2`` (unified), ``v1`` (legacy), ``hybrid`` (both, v1 holding controllers) or ``none``."""
        if self.v1 and self.v2 is not None:
            return "hybrid"
        if self.v1:
            return "v1"
        return "v2" if self.v2 is not None else "none"

    def v2_controllers(self) -> tuple[str, ...]:
        """Controllers available at the v2 mount root (from cgroup.controllers)."""
        if self.v2 is None:
            return ()
        return self.v2.controllers


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_proc_cgroup(text: str) -> tuple[str, dict[str, str]]:
    """Parse /proc/<pid>/cgroup into (v2 path, {v1 controller: path})."""
    v2 = "/"
    v1: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, ctrls, path = parts
        if hid == "0" and ctrls == "":
            v2 = path
            continue
        for c in ctrls.split(","):
            if c:
                v1[c] = path
    return v2, v1


def parse_mountinfo(mountinfo: str, proc_cgroup: str = "", v2_controllers: str | None = None) -> CgroupLayout:
    """Build the layout from the text of mountinfo and /proc/<pid>/cgroup.

    :param v2_controllers: the content of the v2 root's ``cgroup.controllers``; None
        reads it from the mount point.
    """
    own_v2, own_v1 = parse_proc_cgroup(proc_cgroup)
    v2: Hierarchy | None = None
    v1: dict[str, Hierarchy] = {}
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype, super_opts = rfields[0], rfields[2].split(",")
        root, mount = _unescape(fields[3]), Path(_unescape(fields[4]))
        if fstype == "cgroup2" and v2 is None:
            text = v2_controllers
            if text is None:
                try:
                    text = (mount / "cgroup.controllers").read_text()
                except OSError:
                    text = ""
            v2 = Hierarchy(2, mount, root, tuple(text.split()), own_v2)
        elif fstype == "cgroup":
            ctrls = tuple(o for o in super_opts if o in WANTED_V1)
            for c in ctrls:
                if c not in v1:
                    v1[c] = Hierarchy(1, mount, root, ctrls, own_v1.get(c, "/"))
    return CgroupLayout(v2=v2, v1=v1)


def detect(pid: str = "self") -> CgroupLayout:
    """Read this host's layout for process ``pid`` (default: this process)."""
    mountinfo = Path(f"/proc/{pid}/mountinfo").read_text()
    try:
        proc_cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        proc_cgroup = ""
    return parse_mountinfo(mountinfo, proc_cgroup)
