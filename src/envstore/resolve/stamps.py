"""When may a resolution that built or fetched from a place be reused? The rule.

A requirement that names a place (``forms``) has a *stamp*: a string that changes
when what pip would get from that place may have changed. The resolution cache's
key holds it, so an unchanged stamp reuses the entries built last time (no pip, no
build backend) and a changed one resolves and builds again. ``None`` means "cannot
tell": such a request is never answered from the cache.

* A local project directory: the contents of its ``pyproject.toml``, ``setup.py``
  and ``setup.cfg`` (uv's default ``cache-keys``), plus what the project adds under
  ``[tool.envstore] cache-keys`` or ``[tool.uv] cache-keys``: ``{file = "glob"}``
  (or a bare glob) for file contents, ``{dir = "path"}`` for a directory's mtime,
  ``{git = {commit = true}}`` for the checkout's commit, ``{env = "VAR"}``. An edit
  to any other file (``src/pkg/mod.py``) is not seen: list it, use ``-U``, or install
  the project editable. A full tree hash would cost every no-op create.
* A local wheel or sdist (a path or a ``file:`` URL): its size, mtime and inode.
* ``git+URL@REF``: the commit REF resolves to (``git ls-remote``); a REF of 40 hex
  digits is itself. ``by_ref`` (``--offline``, or ``--max-age inf``: no network, or
  none wanted) asks no remote repository: the stamp is then REF itself, and the
  resolution cache answers with what REF resolved to last time (``cache.remember``
  keeps each answer under that key too). A ``file:`` repository is always asked.
* Any other URL: the URL itself when it names a wheel or carries a hash
  (``#sha256=...``), whose content cannot change unnoticed; otherwise (an archive
  such as ``.../archive/main.zip``, another VCS) None.
"""

from __future__ import annotations

import os

from envstore.resolve.forms import Form, local_path

__all__ = ["DEFAULT_KEYS", "stamp"]

DEFAULT_KEYS = ("pyproject.toml", "setup.py", "setup.cfg")
_HASHES = ("#sha256=", "#sha384=", "#sha512=", "#md5=", "#sha1=", "#sha224=")


def stamp(form: Form, by_ref: bool = False) -> str | None:
    """The stamp of ``form`` (one that names a place); see the module docstring."""
    url = form.target
    path = form.target if form.kind == "path" else local_path(url)
    if path is not None:
        return _local(path)
    if url.startswith("git+"):
        return _git(url, by_ref)
    if "+" in url.split("://", 1)[0]:
        return None  # hg+, svn+, bzr+: not followed
    name = url.split("#", 1)[0].split("?", 1)[0]
    if name.endswith(".whl") or any(h in url for h in _HASHES):
        return "url"
    return None


def _local(path: str) -> str:
    if os.path.isdir(path):
        return project_stamp(path)
    try:
        st = os.stat(path)
    except OSError:
        return "missing"  # pip says so
    return f"file:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _digest(data: bytes) -> str:
    import xxhash

    return str(xxhash.xxh3_64_hexdigest(data))


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def project_stamp(root: str) -> str:
    """The stamp of the project directory ``root``: its key files' contents."""
    parts = []
    pyproject = None
    for name in DEFAULT_KEYS:
        data = _read(os.path.join(root, name))
        if name == "pyproject.toml":
            pyproject = data
        parts.append(f"{name}={_digest(data) if data is not None else '-'}")
    if pyproject is not None and b"cache-keys" in pyproject:
        parts += _configured(root, pyproject)
    return ";".join(parts)


def _toml(data: bytes) -> dict[str, object] | None:
    from envstore.model.toml import loads

    try:
        loaded: dict[str, object] = loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is one too
        return None  # the backend will say what is wrong with it
    return loaded


def _configured(root: str, pyproject: bytes) -> list[str]:
    """What ``[tool.envstore]`` or ``[tool.uv]`` ``cache-keys`` add to the stamp."""
    data = _toml(pyproject)
    if data is None:
        return ["cache-keys=unread"]  # no TOML parser here: the defaults only
    tool = data.get("tool")
    keys: object = None
    for owner in ("envstore", "uv"):
        section = tool.get(owner) if isinstance(tool, dict) else None
        if isinstance(section, dict) and "cache-keys" in section:
            keys = section["cache-keys"]
            break
    if not isinstance(keys, list):
        return []
    out = []
    for key in keys:
        if isinstance(key, str):
            key = {"file": key}
        if not isinstance(key, dict):
            continue
        if isinstance(key.get("file"), str):
            import glob

            for name in sorted(glob.glob(key["file"], root_dir=root, recursive=True)):
                data_ = _read(os.path.join(root, name))
                if data_ is not None:
                    out.append(f"{name}={_digest(data_)}")
        elif isinstance(key.get("dir"), str):
            try:
                out.append(f"{key['dir']}/={os.stat(os.path.join(root, key['dir'])).st_mtime_ns}")
            except OSError:
                out.append(f"{key['dir']}/=-")
        elif isinstance(key.get("env"), str):
            out.append(f"${key['env']}={os.environ.get(key['env'], '')}")
        elif key.get("git"):
            out.append(f"git={_run_git(['-C', root, 'rev-parse', 'HEAD']) or '-'}")
    return out


def _run_git(args: list[str]) -> str | None:
    import subprocess

    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    try:
        proc = subprocess.run(
            ["git", *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def split_git(url: str) -> tuple[str, str | None]:
    """``git+URL@REF#fragment`` -> (URL, REF or None)."""
    repo = url[len("git+") :].split("#", 1)[0]
    scheme, sep, rest = repo.partition("://")
    netloc, slash, path = rest.partition("/")
    if "@" in path:
        path, _, ref = path.rpartition("@")
        return f"{scheme}{sep}{netloc}{slash}{path}", ref
    return repo, None


def _git(url: str, by_ref: bool) -> str | None:
    repo, ref = split_git(url)
    if ref and len(ref) == 40 and all(c in "0123456789abcdef" for c in ref.lower()):
        return f"commit:{ref.lower()}"
    if not repo.startswith("file:") and by_ref:
        return f"ref:{ref or 'HEAD'}"
    out = _run_git(["ls-remote", "--", repo, ref or "HEAD"])
    if not out:
        return None  # no such ref (a short commit, say): pip decides, nothing is cached
    refs: dict[str, str] = {}
    for line in out.splitlines():
        commit, _, name = line.partition("\t")
        refs[name] = commit
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", "HEAD"):
        if name in refs:
            return f"commit:{refs[name]}"
    return f"commit:{out.split()[0]}"
