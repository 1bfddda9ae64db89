"""Host probing: the worker user, what this host supports, the start-up report."""

from __future__ import annotations

import os
import pwd
import stat
import sys
from typing import Any

from attrs import frozen

DEDICATED_USER = "noslate-worker"
NOBODY = 65534


@frozen
class WorkerUser:
    uid: int
    gid: int
    name: str


def resolve_user(spec: str) -> WorkerUser:
    """``""`` / name / ``uid`` / ``uid:gid`` -> WorkerUser; ValueError says what to do."""
    if not spec:
        try:
            pw = pwd.getpwnam(DEDICATED_USER)
            return WorkerUser(pw.pw_uid, pw.pw_gid, pw.pw_name)
        except KeyError:
            try:
                pw = pwd.getpwuid(NOBODY)
                return WorkerUser(pw.pw_uid, pw.pw_gid, pw.pw_name)
            except KeyError:
                return WorkerUser(NOBODY, NOBODY, "nobody")
    uid_s, _, gid_s = spec.partition(":")
    if uid_s.isdigit():
        uid = int(uid_s)
        if gid_s and not gid_s.isdigit():
            raise ValueError(f"user {spec!r}: gid must be a number (uid:gid)")
        return WorkerUser(uid, int(gid_s) if gid_s else uid, spec)
    try:
        pw = pwd.getpwnam(uid_s)
    except KeyError as exc:
        raise ValueError(
            f"worker user {uid_s!r} does not exist; create it (scripts/create-worker-user.sh) "
            f'or set [plugins.isolation_seccomp] user = "65534"'
        ) from exc
    return WorkerUser(pw.pw_uid, pw.pw_gid if not gid_s else int(gid_s), pw.pw_name)


def seccomp_supported() -> bool:
    try:
        with open("/proc/self/status") as f:
            return any(line.startswith("Seccomp:") for line in f)
    except OSError:
        return False


def unreadable_for(uid: int, gid: int, path: str) -> str | None:
    """The first directory on ``path`` that ``uid``/``gid`` cannot traverse, or None."""
    if uid == 0:
        return None
    parts = os.path.realpath(path).split("/")
    cur = "/"
    for part in parts[1:-1] if os.path.isfile(path) else parts[1:]:
        cur = os.path.join(cur, part)
        try:
            st = os.stat(cur)
        except OSError:
            return cur
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return cur
    return None


def probe(cfg: Any) -> dict[str, Any]:
    """What the host offers for this plugin's layers (JSON-able)."""
    report: dict[str, Any] = {"root": os.geteuid() == 0, "seccomp": seccomp_supported()}
    problems: list[str] = []
    warnings: list[str] = []
    try:
        import pyseccomp

        report["libseccomp"] = getattr(pyseccomp, "__version__", "?")
    except Exception as exc:  # missing libseccomp.so raises RuntimeError
        report["libseccomp"] = None
        if cfg.seccomp:
            problems.append(
                f"pyseccomp/libseccomp unavailable ({exc}); pip install pyseccomp, apt install libseccomp2"
            )
    try:
        import prctl  # noqa: F401

        report["python_prctl"] = True
    except Exception as exc:
        report["python_prctl"] = False
        problems.append(f"python-prctl unavailable ({exc}); apt install libcap-dev, pip install python-prctl")
    if cfg.seccomp and not report["seccomp"]:
        problems.append("the kernel has no seccomp support (no Seccomp: line in /proc/self/status)")
    try:
        user = resolve_user(cfg.user)
        report["user"] = {"name": user.name, "uid": user.uid, "gid": user.gid}
        if user.uid != os.geteuid() and os.geteuid() != 0:
            problems.append(
                f"switching workers to uid {user.uid} needs root (running as uid {os.geteuid()}); "
                "run the daemon as root or set user to your own uid"
            )
        blocked = unreadable_for(user.uid, user.gid, sys.executable)
        report["interpreter_blocked"] = blocked
        if blocked:
            warnings.append(
                f"uid {user.uid} cannot traverse {blocked} (on the interpreter's path "
                f"{sys.executable}): cold workers and late imports fail unless the "
                "isolation_namespaces root file system is on (it re-creates the path) or "
                f"you run chmod o+x {blocked}"
            )
    except ValueError as exc:
        problems.append(str(exc))
    report["mode"] = cfg.mode if cfg.seccomp else "off"
    report["violation"] = cfg.violation if cfg.mode == "denylist" else "errno"
    report["violation_log"] = "kernel log (audit type=1326)" if cfg.log_violations else "off"
    report["problems"] = problems
    report["warnings"] = warnings
    return report


def interpreter_problem(rep: dict[str, Any], layers: list[Any]) -> str | None:
    """Why workers could not run Python at all (the worker user cannot reach the
    interpreter and no layer gives workers a root that re-creates its path), or None."""
    blocked = rep.get("interpreter_blocked")
    if not blocked or any(getattr(layer, "provides_root", False) for layer in layers):
        return None
    uid = rep.get("user", {}).get("uid")
    return (
        f"workers run as uid {uid}, which cannot traverse {blocked} on the path of the "
        f"Python interpreter {sys.executable}: cold workers could not start and workers "
        "could not import anything. Enable isolation_namespaces with rootfs = true (its "
        f"root re-creates the path), or run chmod o+x {blocked}, or install Python "
        "outside it, or set [plugins.isolation_seccomp] user to a uid that can reach it"
    )
