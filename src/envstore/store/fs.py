"""File-system primitives that keep the store safe: read-only trees, atomic
publish and exchange, deletion that never follows a link out.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def not_a_directory(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is if it exists and is not a real directory ("a symbolic link",
    "not a directory"); None if it is one or does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return None
    return "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"


def make_readonly(root: Path) -> None:
    """Files 0444 (0555 if executable), directories 0555, bottom-up; never follows symlinks."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                mode = 0o555 if st.st_mode & 0o111 else 0o444
                if stat.S_IMODE(st.st_mode) != mode:  # unpacked files are made so already
                    os.chmod(p, mode)
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o555)
    os.chmod(root, 0o555)


def publish_dir(tmp: Path, final: Path) -> bool:
    """Rename the read-only tree ``tmp`` (in ``tmp/``) to ``final``; False if ``final``
    already exists (another process published it first; ``tmp`` is left to the caller).

    Moving a directory to another parent rewrites its ``..`` entry, which needs write
    permission on the directory itself: root is let through, anyone else is refused
    on a 0555 tree. So its top is made writable by its owner for the rename only.
    """
    os.chmod(tmp, 0o755)
    try:
        os.rename(tmp, final)
    except OSError as exc:
        os.chmod(tmp, 0o555)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    os.chmod(final, 0o555)
    return True


def make_writable_dirs(root: Path) -> None:
    """Let the owner add files to every directory below ``root`` (for adding bytecode)."""
    os.chmod(root, 0o755)
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755)


def rmtree(path: Path) -> int:
    """Delete ``path`` (file, link or tree) without ever following a symlink out of it;
    return the bytes it held (lstat sizes of its files and links, like gc's tree_size).

    One pass; a read-only directory (a store entry) is made writable only when
    deleting inside it is refused.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return st.st_size
    freed = _empty_dir(os.fspath(path))
    os.rmdir(path)
    return freed


def _empty_dir(top: str) -> int:
    try:
        with os.scandir(top) as it:
            children = list(it)
    except PermissionError:
        os.chmod(top, 0o700)
        with os.scandir(top) as it:
            children = list(it)
    freed = 0
    writable = False
    for child in children:
        # is_dir(follow_symlinks=False): a link to a directory is unlinked, never entered.
        is_dir = child.is_dir(follow_symlinks=False)
        if is_dir:
            freed += _empty_dir(child.path)
        else:
            freed += child.stat(follow_symlinks=False).st_size
        remove = os.rmdir if is_dir else os.unlink
        try:
            remove(child.path)
        except PermissionError:
            if writable:
                raise
            os.chmod(top, 0o700)
            writable = True
            remove(child.path)
    return freed


def exchange_published(tmp: Path, final: Path) -> None:
    """``exchange`` for read-only trees (a repaired entry): as in ``publish_dir``, each
    top is writable by its owner while it moves to another parent, and read-only after.
    A top that is a symlink is moved as the link and never chmodded through."""
    tops = [p for p in (tmp, final) if stat.S_ISDIR(os.lstat(p).st_mode)]
    for p in tops:
        os.chmod(p, 0o755)
    try:
        exchange(tmp, final)
    finally:
        for p in (tmp, final):
            if stat.S_ISDIR(os.lstat(p).st_mode):
                os.chmod(p, 0o555)


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``), so ``b`` is
    never missing; elsewhere, two renames."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return
    trash = a.parent / f"{a.name}.old"
    os.rename(b, trash)
    os.rename(a, b)
    os.rename(trash, a)


def read_small(
    path: str | os.PathLike[str], limit: int = 64 * 1024, *, dir_fd: int | None = None
) -> bytes | None:
    """The bytes of the regular file ``path`` (in the directory ``dir_fd``, if given),
    opened without following a link at its last component, or None if it is not one,
    cannot be read or holds more than ``limit`` bytes."""
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return None if size > limit else b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


# -- temporary names -----------------------------------------------------------
# A store (or an env) on a shared filesystem is used by several hosts at once, and a
# pid means something only on the host that has it: every temporary name carries
# ``<host>@<pid>``, and a host removes another host's temporaries only once they are
# older than OTHER_HOST_TEMP_AGE.

OTHER_HOST_TEMP_AGE = 86400.0
HOST_ENV = "ENVSTORE_TEST_HOST"  # test-only: simulate several hosts on one machine


# The host of a root made before the store was shared whose env the host that
# recorded shared mode could not place (``placeholders.migrate_roots``): no host is
# named so (``host_name`` calls a host whose name would be this one ``x_unknown``).
UNKNOWN_HOST = "_unknown"


def host_name() -> str:
    """This host's name as temporary names and roots carry it: the node name with
    anything but letters, digits, ``.``, ``_`` and ``-`` made ``_`` (so ``@`` and ``/``
    never occur), and ``x`` before a name that would be ``_unknown``, the placeholder
    host of roots nobody has claimed yet (``placeholders``): no host may take it. Other
    names keep their form (a host renamed would see its own local roots as another's).
    ``$ENVSTORE_TEST_HOST`` overrides it (tests simulate hosts)."""
    name = os.environ.get(HOST_ENV) or os.uname().nodename or "localhost"
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return (f"x{name}" if name[:64] == UNKNOWN_HOST else name)[:64]


def temp_tag() -> str:
    """``<host>@<pid>``: what a temporary name says about who made it."""
    return f"{host_name()}@{os.getpid()}"


def temp_abandoned(tag: str, age: float, limit: float = OTHER_HOST_TEMP_AGE) -> bool:
    """Whether the temporary whose name carries ``tag`` (``<host>@<pid>``, or a bare
    ``<pid>`` from an envstore before host names: this host's) and is ``age`` seconds
    old may be removed: this host's once its process is gone, or older than ``limit``;
    another host's only once older than ``limit``."""
    host, sep, pid = tag.rpartition("@")
    if age > limit:
        return True
    if sep and host != host_name():
        return False
    return not pid.isdigit() or not pid_alive(int(pid))


def store_temp_abandoned(name: str, age: float, limit: float = OTHER_HOST_TEMP_AGE) -> bool:
    """``temp_abandoned`` for a name in the store's ``tmp/``: ``<host>@<pid>-<kind>-<random>``
    (``<pid>-<kind>-<random>`` before host names)."""
    host, sep, rest = name.partition("@")
    tag = f"{host}@{rest.split('-', 1)[0]}" if sep else name.split("-", 1)[0]
    return temp_abandoned(tag, age, limit)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- network filesystems ---------------------------------------------------------
# Filesystem types (``/proc/self/mountinfo``'s) that other hosts may mount too.
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs"}
    | {"beegfs", "orangefs", "afs", "ocfs2", "gfs2", "panfs", "virtiofs"}
)
NETWORK_FUSE = frozenset(
    {"sshfs", "glusterfs", "ceph-fuse", "ceph", "s3fs", "rclone", "gcsfuse", "juicefs"}
    | {"cvmfs", "gvfsd-fuse", "davfs", "lizardfs", "moosefs", "mfs", "beegfs", "weka"}
)


def mount_type(path: str | os.PathLike[str], mountinfo: str | None = None) -> str | None:
    """The filesystem type (``nfs4``, ``fuse.sshfs``, ...) of the mount holding ``path``
    (its real path; it need not exist), from ``/proc/self/mountinfo`` (or the text
    ``mountinfo``); None where that cannot be read. ``os.statvfs`` has no type."""
    if mountinfo is None:
        mountinfo = _read_mountinfo()
        if mountinfo is None:
            return None
    real = os.path.realpath(path)
    best, best_len = None, -1
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
            point, fstype = _unescape(fields[4]), fields[sep + 1]
        except (ValueError, IndexError):
            continue
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best_len:  # the later of two at one point is on top
            best, best_len = fstype, len(point)
    return best


_MOUNTINFO: list[str] = []  # read once per process


def _read_mountinfo() -> str | None:
    if not _MOUNTINFO:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
                _MOUNTINFO.append(f.read())
        except OSError:
            return None
    return _MOUNTINFO[0]


def network_mount(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (or, if missing, its nearest existing parent) is on a network
    filesystem. One ``stat`` when it is on a local block device (a major device number
    other than 0: ext4, xfs on a disk); network filesystems, like tmpfs, overlayfs
    and btrfs, have anonymous device numbers, and only then is mountinfo read. (A
    cluster filesystem on a shared block device, ocfs2 or gfs2, needs
    ``ENVSTORE_SHARED=1``.)"""
    probe = os.fspath(path)
    while True:
        try:
            if os.major(os.stat(probe).st_dev) != 0:
                return False
            break
        except OSError:
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
    return is_network_fs(mount_type(path))


def on_shared_storage(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is on a filesystem other hosts may mount: a network filesystem,
    or under a directory ``$ENVSTORE_SHARED_PATHS`` (``:``-separated) names."""
    listed = os.environ.get("ENVSTORE_SHARED_PATHS")
    if listed:
        real = os.path.realpath(path)
        for top in filter(None, listed.split(":")):
            top = os.path.realpath(top)
            if real == top or real.startswith(top.rstrip("/") + "/"):
                return True
    return network_mount(path)


def is_network_fs(fstype: str | None) -> bool:
    """Whether ``fstype`` (``mount_type``'s) is one other hosts may mount."""
    if not fstype:
        return False
    if fstype.startswith("fuse."):
        return fstype[5:] in NETWORK_FUSE
    return fstype in NETWORK_FS


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (``\\040`` for a space) undone."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def manifest_links(directory: Path) -> dict[str, str]:
    """Env path -> link name, for each link in ``directory`` (the store's ``roots/``)
    that points at an env's ``envstore.json`` and this host may judge: its name has no
    ``@<host>`` (an env on shared storage) or this host's. Names starting with ``.``
    are a replacement in progress."""
    envs: dict[str, str] = {}
    if not directory.is_dir():
        return envs
    me = host_name()
    for name in sorted(os.listdir(directory)):
        link = directory / name
        host = name.partition("@")[2]
        if name.startswith(".") or (host and host != me) or not link.is_symlink():
            continue
        target = os.readlink(link)
        if os.path.basename(target) == "envstore.json":
            envs[os.path.dirname(target)] = name
    return envs
