"""The signed remote cache of store entries (issue #26): two stores play two CI runners.

Runner A creates an env with ``--push``; runner B, with no wheels and
``--no-index``, creates the same env from A's lock using only the remote. Every
remote is on this machine: a ``file://`` directory, moto's S3 server on
127.0.0.1, ``http.server`` for the read-only mode.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import CLI, entries, run

from envstore.errors import RemoteError
from envstore.model.remote import ENTRY_MAGIC, entry_head, signed_bytes
from envstore.store.remote.archive import pack_members, unpack_entry
from envstore.store.remote.keys import load_secret_key

CHECK = "import hello_app, dep_one; print(dep_one.VERSION)"


@pytest.fixture
def keys(cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A signing key for A, trusted by B (both read the environment)."""
    secret, public = tmp_path / "ci.key", tmp_path / "ci.pub"
    res = cli("key", "generate", "ci-1", secret, public)
    assert res.code == 0, res.err
    assert (secret.stat().st_mode & 0o777) == 0o600
    assert public.read_text().startswith("ci-1:") and res.out.strip() == public.read_text().strip()
    monkeypatch.setenv("ENVSTORE_SIGNING_KEY", str(secret))
    monkeypatch.setenv("ENVSTORE_TRUSTED_KEYS", public.read_text().strip())
    return public


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory, and its URL on a static HTTP server on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # With credentials (basic auth, which this server ignores): never shown.
        yield root, f"http://ci:secret@127.0.0.1:{server.server_address[1]}/cache"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[object, str]]:
    """moto's S3 server on 127.0.0.1 (found through AWS_ENDPOINT_URL) and a bucket's URL."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto's state is per process, not per server: start from an empty one
    urllib.request.urlopen(
        urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")
    ).close()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # No instance metadata service beyond 127.0.0.1, for boto3 or obstore.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_METADATA_ENDPOINT": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket="fleet")
    try:
        yield server, "s3://fleet/envstore"
    finally:
        server.stop()  # twice is harmless: a test may have stopped it


@pytest.fixture
def s3_url(moto: tuple[object, str]) -> str:
    return moto[1]


def _runner_a(cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, push_to: str) -> Path:
    """A creates an env from wheels with --push, and locks it."""
    env = tmp_path / "env-a"
    res = cli("--store", store, "create", env, "hello-app", "--without-pip", "--no-index",
              "-f", wheelhouse, "--remote", push_to, "--push", "-v")  # fmt: skip
    assert res.code == 0, res.err
    assert "pushed 2 entries" in res.err
    lock = tmp_path / "pylock.toml"
    assert cli("--store", store, "lock", env, "-o", lock).code == 0
    return lock


def _runner_b(cli: CLI, tmp_path: Path, lock: Path, remote: str, *wheels: str) -> tuple[Path, str]:
    """B creates the env from the lock in an empty store, with no index."""
    store_b, env = tmp_path / "store-b", tmp_path / "env-b"
    res = cli("--store", store_b, "create", env, "--from", lock, "--no-index", "--remote", remote,
              *wheels)  # fmt: skip
    assert res.code == 0, res.err
    out = run([env / "bin" / "python", "-c", CHECK])
    assert out.returncode == 0 and out.stdout.split() == ["1.2"], out.stderr
    hello = run([env / "bin" / "hello"])
    assert hello.returncode == 3 and f"hello from {env}" in hello.stdout, hello.stderr
    verify = cli("--store", store_b, "verify", "--check-contents")
    assert verify.code == 0, verify.out + verify.err
    return store_b, res.err


@pytest.mark.parametrize("kind", ["file", "s3", "http"])
def test_runner_b_creates_from_the_lock_using_only_the_remote(
    cli: CLI,
    store: Path,
    wheelhouse: Path,
    tmp_path: Path,
    keys: Path,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    if kind == "s3":
        push_to = pull_from = request.getfixturevalue("s3_url")
    elif kind == "http":
        served, pull_from = request.getfixturevalue("http_dir")
        push_to = (served / "cache").as_uri()
    else:
        push_to = pull_from = (tmp_path / "shared").as_uri()
    lock = _runner_a(cli, store, wheelhouse, tmp_path, push_to)
    store_b, err = _runner_b(cli, tmp_path, lock, pull_from)
    assert "warning" not in err, err
    assert "secret" not in err + (tmp_path / "env-b" / "envstore.json").read_text()
    assert [e.split("/")[1] for e in entries(store_b)] == ["dep-one", "hello-app"]
    assert not list((store_b / "wheels").iterdir())  # nothing came from a wheel
    # A second push has nothing to do, but replaces an object whose head is not its.
    bad = 0
    if kind != "s3":
        obj = _objects(Path(push_to.removeprefix("file://")))[0]
        doc, pack = _split(obj)
        doc["signed"]["cache_tags"] = ["forged"]
        _join(obj, doc, pack)
        bad = 1
    again = cli("--store", store, "push", tmp_path / "env-a", "--remote", push_to)
    assert again.code == 0 and f"pushed {bad} of 2 entries" in again.out, again.err
    if bad:
        assert _split(obj)[0]["signed"]["cache_tags"] != ["forged"]
    # It refreshed them: nothing is an hour old; at 0 everything is.
    kept = cli("remote", "prune", "--older-than", "1h", "--remote", push_to)
    assert kept.code == 0 and "deleted 0 objects (0 entries)" in kept.out, kept.err
    gone = cli("remote", "prune", "--older-than", "0", "--remote", push_to)
    assert gone.code == 0 and "deleted 2 objects (2 entries)" in gone.out, gone.err


def _objects(root: Path) -> list[Path]:
    """The entry objects of a remote (layout 3)."""
    return sorted((root / "v3" / "entries").rglob("*.entry"))


def _split(path: Path) -> tuple[dict[str, Any], bytes]:
    """(metadata document, pack) of an entry object."""
    data = path.read_bytes()
    assert data.startswith(ENTRY_MAGIC)
    length = int.from_bytes(data[len(ENTRY_MAGIC) : len(ENTRY_MAGIC) + 8], "big")
    start = len(ENTRY_MAGIC) + 8
    return json.loads(data[start : start + length]), data[start + length :]


def _join(path: Path, doc: dict[str, Any], pack: bytes) -> None:
    path.write_bytes(entry_head(json.dumps(doc).encode()) + pack)


def _flip_archives(root: Path) -> None:
    for obj in _objects(root):
        doc, pack = _split(obj)
        data = bytearray(pack)
        data[len(data) // 2] ^= 0xFF
        _join(obj, doc, bytes(data))


def _unsign(root: Path) -> None:
    for obj in _objects(root):
        doc, pack = _split(obj)
        del doc["signature"]
        _join(obj, doc, pack)


def _resign_with_another_key(root: Path, cli: CLI, tmp_path: Path) -> None:
    """Same key name, another key: the signature no longer verifies."""
    cli("key", "generate", "ci-1", tmp_path / "evil.key", tmp_path / "evil.pub")
    evil = load_secret_key(tmp_path / "evil.key")
    for obj in _objects(root):
        doc, pack = _split(obj)
        doc["signed"]["cache_tags"] = []  # what a forger would change
        signature = evil.sign(signed_bytes(doc["signed"]))
        doc["signature"]["ed25519"] = base64.b64encode(signature).decode()
        _join(obj, doc, pack)


def _resign(
    root: Path, secret: Path, change: Callable[[dict[str, Any], bytes], bytes | None]
) -> None:
    """Change each entry object's metadata (and pack, if ``change`` returns one) and
    sign it again with ``secret``."""
    signer = load_secret_key(secret)
    for obj in _objects(root):
        doc, pack = _split(obj)
        pack = change(doc["signed"], pack) or pack
        signature = signer.sign(signed_bytes(doc["signed"]))
        doc["signature"] = {"key": signer.name, "ed25519": base64.b64encode(signature).decode()}
        _join(obj, doc, pack)


def _swap_metadata(root: Path) -> None:
    """Each wheel's place holds the other wheel's (validly signed) entry."""
    a, b = _objects(root)
    data_a = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data_a)


def _record_line(name: str, data: bytes) -> bytes:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n".encode()


def _read_pack(pack: bytes) -> list[tuple[str, str, bytes]]:
    """(name, kind, bytes) of every member of a pack."""
    import zstandard

    data = zstandard.ZstdDecompressor().stream_reader(pack).read()
    length = int.from_bytes(data[16:24], "big")
    index, pos, members = json.loads(data[24 : 24 + length]), 24 + length, []
    for name, kind, size in index:
        members.append((name, kind, data[pos : pos + size]))
        pos += size
    return members


def _write_pack(members: list[tuple[str, str, bytes]], dest: Path) -> None:
    pack_members([(n, k, len(d), [d] if d else []) for n, k, d in members], dest)


def _repack(
    root: Path, secret: Path, change_module: Callable[[bytes], bytes], record: bool
) -> None:
    """A signer packs archives whose module differs from what it sealed (and, with
    ``record``, a RECORD rewritten to match), with the right sha256 and size."""

    def edit(members: list[tuple[str, str, bytes]]) -> None:
        i = _module(members)
        name, kind, data = members[i]
        members[i] = (name, kind, change_module(data))
        if record:
            module = name.removeprefix("site/")
            for j, (other, other_kind, rows) in enumerate(members):
                if other.endswith(".dist-info/RECORD"):
                    lines = [
                        line
                        for line in rows.splitlines(keepends=True)
                        if not line.startswith(module.encode() + b",")
                    ]
                    lines.append(_record_line(module, members[i][2]))
                    members[j] = (other, other_kind, b"".join(lines))

    _edit_members(root, secret, edit)


def _edit_members(
    root: Path, secret: Path, edit: Callable[[list[tuple[str, str, bytes]]], None]
) -> None:
    """A signer packs archives whose members ``edit`` changed (in place), with the
    right sha256 and size: what it signs is not what it sealed."""

    def change(signed: dict[str, Any], pack: bytes) -> bytes:
        members = _read_pack(pack)
        edit(members)
        new = root / "new.pack.zst"
        _write_pack(members, new)
        pack = new.read_bytes()
        new.unlink()
        signed["archive_sha256"] = hashlib.sha256(pack).hexdigest()
        signed["archive_size"] = len(pack)
        return pack

    _resign(root, secret, change)


def _module(members: list[tuple[str, str, bytes]]) -> int:
    """The index of the entry's package's ``__init__.py``."""
    return next(
        i
        for i, (n, _k, _d) in enumerate(members)
        if n.endswith("/__init__.py") and n.count("/") == 2
    )


def _add_file(members: list[tuple[str, str, bytes]]) -> None:
    members.append(("site/extra.py", "f", b"import os\n"))


def _drop_module(members: list[tuple[str, str, bytes]]) -> None:
    del members[_module(members)]


def _add_pyc(members: list[tuple[str, str, bytes]]) -> None:
    package = members[_module(members)][0].rpartition("/")[0]
    members.append((f"{package}/__pycache__/evil.cpython-311.pyc", "f", b"\0" * 16))


def _evil(data: bytes) -> bytes:
    return data + b"\nimport os; os.system('evil')\n"


def _same_size(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


DAMAGE = {
    "tampered-archive": "does not match its signed sha256",
    "truncated": "does not match its signed sha256",
    "unsigned": "refused: unsigned",
    "wrong-key": "signature does not verify",
    "untrusted-key": "signed by 'stranger-1', not a trusted key",
    "other-wheel": "it describes another wheel",
    "contents-not-recorded": "bytes, RECORD says",
    "same-size-not-recorded": "does not match its RECORD hash",
    "contents-not-sealed": "RECORD was changed after it was written",
    # What was written is checked as verify walks an entry (from the writer's list).
    "unexpected-file": "unexpected file site/extra.py",
    "missing-file": "missing file site/",
    "pyc-not-sealed": "was added after the entry was sealed",
    "closed-port": "unreachable",
    # Installed before zstandard joined the extra (an upgrade adds no extra's new
    # dependency): one warning, not a traceback.
    "no-zstandard": "a remote needs zstandard: pip install 'envstore[remote]'",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_bad_or_unreachable_remote_falls_back_to_the_wheels(
    cli: CLI,
    store: Path,
    wheelhouse: Path,
    tmp_path: Path,
    keys: Path,
    damage: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = tmp_path / "shared"
    lock = _runner_a(cli, store, wheelhouse, tmp_path, shared.as_uri())
    remote = shared.as_uri()
    if damage == "tampered-archive":
        _flip_archives(shared)
    elif damage == "truncated":
        for obj in _objects(shared):
            obj.write_bytes(obj.read_bytes()[:-100])
    elif damage == "unsigned":
        _unsign(shared)
    elif damage == "wrong-key":
        _resign_with_another_key(shared, cli, tmp_path)
    elif damage == "untrusted-key":  # a valid signature, by a key nobody listed
        cli("key", "generate", "stranger-1", tmp_path / "s.key", tmp_path / "s.pub")
        _resign(shared, tmp_path / "s.key", lambda signed, pack: None)
    elif damage == "other-wheel":
        _swap_metadata(shared)
    elif damage.startswith("contents-"):  # the trusted key signs what it should not
        _repack(shared, tmp_path / "ci.key", _evil, record=damage == "contents-not-sealed")
    elif damage == "same-size-not-recorded":  # found by the digest taken while writing
        _repack(shared, tmp_path / "ci.key", _same_size, record=False)
    elif damage in ("unexpected-file", "missing-file", "pyc-not-sealed"):
        edit = {"unexpected-file": _add_file, "missing-file": _drop_module}
        _edit_members(shared, tmp_path / "ci.key", edit.get(damage, _add_pyc))
    elif damage == "no-zstandard":
        monkeypatch.setitem(sys.modules, "zstandard", None)
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            remote = f"http://ci:secret@127.0.0.1:{s.getsockname()[1]}/cache"  # closed after
    store_b, err = _runner_b(cli, tmp_path, lock, remote, "-f", str(wheelhouse))
    warnings = [line for line in err.splitlines() if "warning" in line]
    expected = DAMAGE[damage]
    assert "secret" not in err
    assert warnings and all(expected in w for w in warnings), err
    if damage not in ("closed-port", "no-zstandard"):  # one line per object, naming it
        assert len(warnings) == 2 and all("/v3/entries/" in w for w in warnings), err
    else:
        assert len(warnings) == 1, err
    # Nothing unverified was unpacked: B's entries are made from the wheels.
    assert [e.split("/")[1] for e in entries(store_b)] == ["dep-one", "hello-app"]
    assert not list((store_b / "tmp").iterdir())


def _tar(*members: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for m in members:
            if m.isreg():
                m.size = len(data)
                tar.addfile(m, io.BytesIO(data))
            else:
                tar.addfile(m)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([_member("site/../../outside")], id="dotdot"),
        pytest.param([_member("/tmp/outside")], id="absolute"),
        pytest.param([_member("site/x", tarfile.SYMTYPE, "/etc/passwd")], id="symlink"),
        pytest.param([_member("site/x", tarfile.LNKTYPE, "entry.json")], id="hardlink"),
        pytest.param([_member("site/fifo", tarfile.FIFOTYPE)], id="fifo"),
        pytest.param([_member("site/a"), _member("site/a")], id="duplicate"),
        pytest.param([_member("outside.txt")], id="not-an-entry-file"),
        pytest.param([_member("site", tarfile.REGTYPE)], id="file-for-site"),
    ],
)
def test_an_archive_is_unpacked_only_inside_its_entry(
    tmp_path: Path, members: list[tarfile.TarInfo]
) -> None:
    """Layout 1 (tar.gz, as older envstores pushed): still read, as carefully."""
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar(*members))
    dest = tmp_path / "deep" / "entry"
    dest.mkdir(parents=True)
    with pytest.raises(RemoteError):
        unpack_entry(archive, dest, layout=1)
    outside = {p for p in tmp_path.rglob("*") if dest not in p.parents and p != dest}
    assert outside == {archive, tmp_path / "deep"}
    assert not any(p.is_symlink() for p in dest.rglob("*"))


OK = [("entry.json", "f", b"{}"), ("site", "d", b"")]
BAD_PACKS = {
    "dotdot": [*OK, ("site/../../outside", "f", b"x")],
    "absolute": [*OK, ("/tmp/outside", "f", b"x")],
    "link-kind": [*OK, ("site/x", "l", b"")],
    "duplicate": [*OK, ("site/a", "f", b"x"), ("site/a", "f", b"y")],
    "not-an-entry-file": [*OK, ("outside.txt", "f", b"x")],
    "file-for-site": [("site", "f", b"x")],
    "file-then-under-it": [*OK, ("site/a", "f", b"x"), ("site/a/b", "f", b"y")],
    "sized-directory": [*OK, ("site/a", "d", b"x")],
}


@pytest.mark.parametrize("case", [*BAD_PACKS, "truncated", "trailing-bytes", "not-a-pack"])
def test_a_pack_is_unpacked_only_inside_its_entry(tmp_path: Path, case: str) -> None:
    """Layout 2: the index is checked whole before anything is written."""
    import zstandard

    archive = tmp_path / "a.pack.zst"
    _write_pack(BAD_PACKS.get(case, [*OK, ("site/m.py", "f", b"x" * 100)]), archive)
    raw = zstandard.ZstdDecompressor().stream_reader(archive.read_bytes()).read()
    if case == "truncated":
        archive.write_bytes(zstandard.ZstdCompressor().compress(raw[:-10]))
    elif case == "trailing-bytes":
        archive.write_bytes(zstandard.ZstdCompressor().compress(raw + b"evil"))
    elif case == "not-a-pack":
        archive.write_bytes(_tar(_member("site/a")))
    dest = tmp_path / "deep" / "entry"
    dest.mkdir(parents=True)
    with pytest.raises(RemoteError):
        unpack_entry(archive, dest)
    outside = {p for p in tmp_path.rglob("*") if dest not in p.parents and p != dest}
    assert outside == {archive, tmp_path / "deep"}
    if case in BAD_PACKS:
        assert not list(dest.iterdir())  # refused before a byte was written


def test_a_pack_unpacks_read_only_with_its_digests(tmp_path: Path) -> None:
    """What is checked against RECORD and the seal is hashed as it is written."""
    from envstore.store.seal import file_digest

    archive, dest = tmp_path / "a.pack.zst", tmp_path / "entry"
    big = bytes(range(256)) * 4097  # above the 1 MiB a member is written whole from
    members = [*OK, ("site/pkg/__pycache__/m.cpython-311.pyc", "f", b"pyc"), ("data", "d", b""),
               ("data/scripts/run", "x", b"#!/bin/sh\n"), ("site/pkg/m.py", "f", b""),
               ("site/pkg/big.bin", "f", big), ("site/pkg/big.pyc", "f", big)]  # fmt: skip
    _write_pack(members, archive)
    dest.mkdir()
    got = unpack_entry(archive, dest)
    files = {n for n, k, _ in members if k != "d"}
    assert set(got.xxh3) == set(got.sizes) == files
    assert set(got.sha256) == files - {"site/pkg/big.pyc", "site/pkg/__pycache__/m.cpython-311.pyc"}
    for name in files:
        assert got.sizes[name] == (dest / name).stat().st_size
        assert got.xxh3[name] == file_digest(dest / name)
        want = base64.urlsafe_b64encode(hashlib.sha256((dest / name).read_bytes()).digest())
        assert got.sha256.get(name, want.rstrip(b"=").decode()) == want.rstrip(b"=").decode()
    modes = {str(p.relative_to(dest)): p.stat().st_mode & 0o777 for p in dest.rglob("*")}
    assert modes["data/scripts/run"] == 0o555 and modes["site/pkg/m.py"] == 0o444
    assert modes["site/pkg"] == modes["data/scripts"] == 0o555


def _as_layout(root: Path, secret: Path, layout: int) -> None:
    """Turn the pushed remote into what an envstore of remote layout 2 (the pack and its
    metadata as two objects) or 1 (a tar.gz archive) pushed, signed for that layout;
    nothing left in ``v3/``."""
    signer = load_secret_key(secret)
    for obj in _objects(root):
        doc, pack = _split(obj)
        signed, archive = doc["signed"], pack
        if layout == 1:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
                for name, kind, data in _read_pack(pack):
                    info = tarfile.TarInfo(name)
                    info.type = tarfile.DIRTYPE if kind == "d" else tarfile.REGTYPE
                    info.mode, info.size = 0o555 if kind != "f" else 0o444, len(data)
                    tar.addfile(info, io.BytesIO(data) if kind != "d" else None)
            archive = buf.getvalue()
        digest = hashlib.sha256(archive).hexdigest()
        suffix = ".tar.gz" if layout == 1 else ".pack.zst"
        (root / f"v{layout}" / "archives").mkdir(parents=True, exist_ok=True)
        (root / f"v{layout}" / "archives" / f"{digest}{suffix}").write_bytes(archive)
        signed.update(layout=layout, archive_sha256=digest, archive_size=len(archive))
        sig = base64.b64encode(signer.sign(signed_bytes(signed, layout))).decode()
        meta = root / f"v{layout}" / "meta" / obj.parent.name / f"{obj.stem}.json"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(
            json.dumps({"signed": signed, "signature": {"key": "ci-1", "ed25519": sig}})
        )
    import shutil

    shutil.rmtree(root / "v3")


@pytest.mark.parametrize("layout", [2, 1])
def test_a_remote_filled_by_an_older_layout_is_still_read(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, keys: Path, layout: int
) -> None:
    """Runners of an older envstore pushed metadata and archives as separate objects
    (layout 2: a pack; layout 1: a tar.gz): read, verified the same way; signed for
    layout 1, such metadata never verifies as layout 2."""
    shared = tmp_path / "shared"
    lock = _runner_a(cli, store, wheelhouse, tmp_path, shared.as_uri())
    _as_layout(shared, tmp_path / "ci.key", layout)
    store_b, err = _runner_b(cli, tmp_path, lock, shared.as_uri())
    assert "warning" not in err, err
    assert not list((store_b / "wheels").iterdir())  # nothing came from a wheel
    if layout == 2:
        return
    for meta in (shared / "v1" / "meta").rglob("*.json"):  # moved where layout 2 is read
        (shared / "v2" / meta.relative_to(shared / "v1")).parent.mkdir(parents=True)
        meta.rename(shared / "v2" / meta.relative_to(shared / "v1"))
    store_c, env_c = tmp_path / "store-c", tmp_path / "env-c"
    res = cli("--store", store_c, "create", env_c, "--from", lock, "--no-index",
              "--remote", shared.as_uri(), "-f", wheelhouse)  # fmt: skip
    warnings = [line for line in res.err.splitlines() if "warning" in line]
    assert res.code == 0 and len(warnings) == 2, res.err
    assert all("layout 1 is not 2" in w or "does not verify" in w for w in warnings), res.err


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_two_runners_pushing_the_same_entries_at_once_leave_one_valid_copy(
    cli: CLI,
    store: Path,
    wheelhouse: Path,
    tmp_path: Path,
    keys: Path,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    from envstore.model.keys import EntryKey
    from envstore.store.layout import Store
    from envstore.store.remote import push

    url = request.getfixturevalue("s3_url") if kind == "s3" else (tmp_path / "shared").as_uri()
    runners = []
    for name in ("a", "a2"):  # two stores: their entries differ in entry.json ("added")
        st = store if name == "a" else tmp_path / "store-a2"
        res = cli("--store", st, "create", tmp_path / f"env-{name}", "hello-app",
                  "--without-pip", "--no-index", "-f", wheelhouse)  # fmt: skip
        assert res.code == 0, res.err
        mine = [EntryKey.parse(e) for e in entries(st)]
        runners.append((Store(st), sorted(k for k in mine if k.name in ("dep-one", "hello-app"))))
    start = threading.Barrier(len(runners))
    reports: list[object] = []

    def runner(st: Store, keys: list[EntryKey]) -> None:
        start.wait()
        reports.append(push(st, url, keys))

    threads = [threading.Thread(target=runner, args=r) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reports) == 2 and not any(r.skipped for r in reports)  # type: ignore[attr-defined]
    if kind == "file":  # whole objects only: no temporary names left
        assert len(_objects(tmp_path / "shared")) == 2
        assert not [p for p in (tmp_path / "shared").rglob(".*")]
    lock = tmp_path / "pylock.toml"
    assert cli("--store", store, "lock", tmp_path / "env-a", "-o", lock).code == 0
    _, err = _runner_b(cli, tmp_path, lock, url)
    assert "warning" not in err, err


def test_an_s3_server_stopped_mid_run_falls_back_to_the_wheels(
    cli: CLI,
    store: Path,
    wheelhouse: Path,
    tmp_path: Path,
    keys: Path,
    moto: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from envstore.store.remote.s3 import S3Backend

    server, url = moto
    lock = _runner_a(cli, store, wheelhouse, tmp_path, url)
    opened = S3Backend.open

    def stop_at_the_first_entry(self: S3Backend, name: str) -> Any:
        http = server._server
        if http is not None:
            server.stop()
            http.server_close()  # stop() leaves the port accepting, unanswered
            server._server = None
        return opened(self, name)

    monkeypatch.setattr(S3Backend, "open", stop_at_the_first_entry)
    store_b, err = _runner_b(cli, tmp_path, lock, url, "-f", str(wheelhouse))
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "unreachable" in warnings[0], err
    assert [e.split("/")[1] for e in entries(store_b)] == ["dep-one", "hello-app"]
    assert not list((store_b / "tmp").iterdir())


@pytest.mark.parametrize("credentials", ["shared-file", "none"])
def test_s3_reads_take_boto3s_credential_chain_without_keys_in_the_environment(
    cli: CLI,
    store: Path,
    wheelhouse: Path,
    tmp_path: Path,
    keys: Path,
    s3_url: str,
    monkeypatch: pytest.MonkeyPatch,
    credentials: str,
) -> None:
    """With no AWS_ACCESS_KEY_ID in the environment, a pull (obstore) uses boto3's chain,
    here a shared credentials file, as a push does; with none at all, one warning."""
    lock = _runner_a(cli, store, wheelhouse, tmp_path, s3_url)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no network beyond 127.0.0.1
    if credentials == "shared-file":
        creds = tmp_path / "aws-credentials"
        creds.write_text("[default]\naws_access_key_id = fromfile\naws_secret_access_key = x\n")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
        store_b, err = _runner_b(cli, tmp_path, lock, s3_url)
        assert "warning" not in err, err
        assert not list((store_b / "wheels").iterdir())  # every entry came from the remote
    else:
        _, err = _runner_b(cli, tmp_path, lock, s3_url, "-f", str(wheelhouse))
        warnings = [line for line in err.splitlines() if "warning" in line]
        assert len(warnings) == 1 and "no AWS credentials found" in warnings[0], err


class _S3Says(SimpleHTTPRequestHandler):
    """A fake S3 endpoint: every GET answered as ``answer`` says; the keys asked for
    are counted in ``asked`` (a class of its own per test)."""

    answer: ClassVar[str] = "500"
    asked: ClassVar[list[str]]

    def do_GET(self) -> None:
        self.asked.append(self.path)
        if self.answer == "trickle":
            _Trickle.do_GET(self)  # type: ignore[arg-type]
        elif self.answer == "stall":  # headers, then nothing (a resume too)
            self.send_response(206 if "Range" in self.headers else 200)
            self.send_header("Content-Length", "1000")
            self.send_header("Content-Range", "bytes 0-999/1000")
            self.end_headers()
            time.sleep(1.5)
        elif self.answer == "region":  # S3 to a request in the wrong region
            self.send_response(301)
            self.send_header("x-amz-bucket-region", "eu-west-1")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.answer[:3].isdigit() and " " in self.answer:  # "STATUS S3-CODE"
            status, _, code = self.answer.partition(" ")
            body = f"<Error><Code>{code}</Code><Message>no</Message></Error>".encode()
            self.send_response(int(status))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(int(self.answer))

    def log_message(self, format: str, *args: object) -> None:
        pass


S3_ANSWERS = {
    # What S3 says of a missing key to a reader that may not list the bucket: a miss.
    "403 AccessDenied": None,
    "403 InvalidAccessKeyId": "access denied (check the credentials)",
    "404 NoSuchBucket": "no such bucket",
    "400 AuthorizationHeaderMalformed": "refused (HTTP 400 AuthorizationHeaderMalformed)",
    "500": "is unreachable (HTTP 500)",
    "region": "in another region (set AWS_DEFAULT_REGION",
    "stall": "is unreachable (",
    "trickle": "is too slow",
    "closed-port": "is unreachable (cannot connect)",
}


@pytest.mark.parametrize("answer", list(S3_ANSWERS))
def test_an_s3_remote_that_refuses_or_stalls_is_one_warning(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[[type[Any]], str],
    answer: str,
) -> None:
    """Six entries wanted: what is the remote's as a whole (credentials, region,
    connection, timeouts, server errors) is one line for all six, never a traceback
    and nothing left in tmp/; a missing object (404, or S3's AccessDenied for one) is
    a miss, each still asked for."""
    from envstore.model.keys import PURE
    from envstore.store.remote import backends, s3_reads
    from envstore.store.remote.pull import Wanted, pull_entries
    from envstore.store.remote.s3 import S3Backend

    store, _backend, trusted, _ = _hostile_remote(tmp_path, b"")
    wanted = [Wanted(f"p{i}", f"p{i}-1.0-py3-none-any.whl", f"{i:064x}", PURE) for i in range(6)]
    handler = type("Says", (_S3Says,), {"answer": answer, "asked": []})
    if answer == "closed-port":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    else:
        endpoint = serve(handler).replace("ci:secret@", "")
    monkeypatch.setattr(backends, "REQUEST_SECONDS", 0.2)  # trickle: the request's deadline
    monkeypatch.setattr(s3_reads, "READ_TIMEOUT", 0.3)  # stall: obstore's read timeout
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    warnings: list[str] = []
    backend = S3Backend("s3://fleet/envstore")
    assert pull_entries(store, backend, trusted, wanted, warnings.append) == {}
    expected = S3_ANSWERS[answer]
    if expected is None:
        assert warnings == []
        assert all(any(w.sha256 in path for path in handler.asked) for w in wanted)
    else:
        assert len(warnings) == 1 and expected in warnings[0], warnings
    assert not list(store.tmp_dir.iterdir())


@pytest.mark.parametrize(
    "setting", ["127.0.0.1:9", "http://127.0.0.1:99999", "http://[bad", "profile"]
)
def test_an_s3_remote_misconfigured_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """An endpoint obstore cannot use (it would panic: a BaseException) or a profile
    that does not exist: one line for the remote, never a traceback or one per object."""
    from envstore.model.keys import PURE
    from envstore.store.remote import pull
    from envstore.store.remote.pull import Wanted

    store, _backend, _trusted, _ = _hostile_remote(tmp_path, b"")
    wanted = [Wanted(f"p{i}", f"p{i}-1.0-py3-none-any.whl", f"{i:064x}", PURE) for i in range(6)]
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9")
    if setting == "profile":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        expected = "the AWS configuration cannot be used (ProfileNotFound)"
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
        monkeypatch.setenv("AWS_ENDPOINT_URL", setting)
        expected = "is not an http(s) URL with a host"
    monkeypatch.setenv("ENVSTORE_TRUSTED_KEYS", "k1:" + base64.b64encode(b"\1" * 32).decode())
    warnings: list[str] = []
    assert pull(store, "s3://fleet/envstore", wanted, warnings.append) == {}
    assert len(warnings) == 1 and expected in warnings[0], warnings


def test_s3_credentials_not_found_are_looked_for_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's chain may wait seconds on a metadata service: a failure is remembered by
    the backend (and so inherited by forked workers), not walked again per object."""
    from envstore.errors import RemoteError
    from envstore.store.remote import s3_reads
    from envstore.store.remote.s3 import S3Backend

    calls: list[str] = []

    def none_found(url: str) -> None:
        calls.append(url)
        raise s3_reads.RemoteUnreachable(f"{url}: no AWS credentials found")

    monkeypatch.setattr(s3_reads, "credentials", none_found)
    backend = S3Backend("s3://fleet/envstore")
    backend.before_fork()
    for _ in range(3):
        with pytest.raises(RemoteError, match="no AWS credentials found"):
            backend.reader()
    assert calls == ["s3://fleet/envstore"]


def test_s3_reads_take_the_region_from_the_shared_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys in the environment, the region only in ~/.aws/config: boto3 would use it,
    and so do the reads (obstore alone would take us-east-1)."""
    from envstore.store.remote import s3_reads

    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = eu-west-1\n")
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    store = s3_reads.make_store("fleet", "s3://fleet", s3_reads.credentials("s3://fleet"))
    assert store.config["region"] == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")  # the environment's first
    assert s3_reads.make_store("fleet", "s3://fleet", None).config["region"] == "ap-south-1"


@pytest.mark.parametrize("missing", ["obstore", "boto3"])
def test_an_s3_remote_without_its_libraries_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    """An extra installed before obstore joined it: one line, not one per object."""
    from envstore.store.remote import pull

    store, _backend, _trusted, wanted = _hostile_remote(tmp_path, b"")
    monkeypatch.setitem(sys.modules, missing, None)
    warnings: list[str] = []
    assert pull(store, "s3://fleet/envstore", wanted * 3, warnings.append) == {}
    assert warnings == [
        f"a remote needs {missing}: pip install 'envstore[remote]'; the remote is not used"
    ]


def test_a_process_that_made_an_s3_request_pulls_in_threads(s3_url: str) -> None:
    """obstore's requests run on threads it starts at the first one, which a fork would
    not carry: from then on, the process never forks workers (a fresh process, one
    thread: this test's own has others)."""
    code = (
        "import sys; from envstore.store.remote.s3 import S3Backend;"
        "from envstore.store.remote.workers import processes_for;"
        "before = processes_for(100);"
        "assert S3Backend(sys.argv[1]).open('v3/entries/none') is None;"
        "print(before, processes_for(100))"
    )
    res = run([sys.executable, "-c", code, s3_url], extra_env={"ENVSTORE_PULL_PROCESSES": "2"})
    assert res.returncode == 0 and res.stdout.split() == ["2", "0"], res.stderr


INGESTING = {
    "create": ["create", "env", "hello-app"],
    "sync": ["sync", "env", "hello-app"],
    "run": ["run", "--with", "hello-app", "--", "hello"],
    "build": ["build", "."],
    "relink": ["relink", "env"],
}


@pytest.mark.parametrize("command", list(INGESTING))
def test_every_command_that_may_ingest_takes_the_remote(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envstore.cli.fastpath import parse_create
    from envstore.cli.options import index_options
    from envstore.cli.parser import parse

    argv = INGESTING[command]
    url = "https://user:secret@cache.example/p"
    given = [argv[0], "--remote", url, "--push", *argv[1:]]
    parsed = [parse(given)] + ([parse_create(given)] if command == "create" else [])
    for args in parsed:
        sources = index_options(args)["sources"]
        assert (sources.remote_cache(), sources.pushes()) == (url, True)
        assert "secret" not in repr(sources)
        assert "remote" not in json.dumps(sources.recorded().to_json())  # never recorded
        # relink's recorded sources, with this run's remote
        relinked = sources.recorded().reused(False, sources.remote, sources.push)
        assert (relinked.remote, relinked.push) == (url, True)
    monkeypatch.setenv("ENVSTORE_REMOTE", "file:///cache")
    monkeypatch.setenv("ENVSTORE_PUSH", "1")
    sources = index_options(parse(argv))["sources"]
    assert (sources.remote_cache(), sources.pushes()) == ("file:///cache", True)


def test_run_pushes_and_the_library_syncs_from_the_remote(
    cli: CLI,
    store: Path,
    wheelhouse: Path,
    tmp_path: Path,
    keys: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``run`` pushes through ENVSTORE_REMOTE/ENVSTORE_PUSH; ``sync_env`` with a
    PackageSources naming the remote fills an empty store from it."""
    from envstore import PackageSources, sync_env

    shared = tmp_path / "shared"
    monkeypatch.setenv("ENVSTORE_REMOTE", shared.as_uri())
    monkeypatch.setenv("ENVSTORE_PUSH", "1")
    res = cli("--store", store, "run", "--with", "hello-app", "--no-index", "-f", wheelhouse,
              "-v", "--", "hello")  # fmt: skip
    assert res.code == 3 and "pushed 2 entries" in res.err, res.err
    assert len(_objects(shared)) == 2
    monkeypatch.delenv("ENVSTORE_REMOTE")
    monkeypatch.delenv("ENVSTORE_PUSH")
    env_a, lock = tmp_path / "env-a", tmp_path / "pylock.toml"
    made = cli("--store", store, "create", env_a, "hello-app", "--without-pip", "--no-index",
               "-f", wheelhouse)  # fmt: skip
    assert made.code == 0 and cli("--store", store, "lock", env_a, "-o", lock).code == 0
    env_b, store_b = tmp_path / "env-b", tmp_path / "store-b"
    sources = PackageSources(no_index=True, remote=shared.as_uri())
    sync_env(env_b, lock=lock, store=store_b, sources=sources)
    out = run([env_b / "bin" / "python", "-c", CHECK])
    assert out.returncode == 0 and out.stdout.split() == ["1.2"], out.stderr
    assert not list((store_b / "wheels").iterdir())  # nothing came from a wheel


def test_a_pulled_entry_is_repaired_from_its_remote(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, keys: Path
) -> None:
    """The entry's origin is the remote: with no wheel left anywhere, ``verify --repair``
    fetches it again, verified, and swaps it in."""
    import shutil

    wheels = tmp_path / "wheels"  # A's wheels, gone once pushed
    shutil.copytree(wheelhouse, wheels)
    remote = (tmp_path / "shared").as_uri()
    lock = _runner_a(cli, store, wheels, tmp_path, remote)
    shutil.rmtree(wheels)
    store_b, _ = _runner_b(cli, tmp_path, lock, remote)
    (entry,) = (store_b / "entries" / "pure" / "dep-one").iterdir()
    assert json.loads((entry / "entry.json").read_text())["origin"] == remote
    module = entry / "site" / "dep_one" / "__init__.py"
    os.chmod(module, 0o644)
    module.write_text("raise SystemExit('damaged')\n")
    os.chmod(module, 0o444)
    damaged = cli("--store", store_b, "verify", "--check-contents")
    assert damaged.code != 0 and "dep-one" in damaged.out + damaged.err
    repaired = cli("--store", store_b, "verify", "--check-contents", "--repair")
    assert repaired.code == 0, repaired.out + repaired.err
    assert cli("--store", store_b, "verify", "--check-contents").code == 0
    out = run([tmp_path / "env-b" / "bin" / "python", "-c", CHECK])
    assert out.returncode == 0 and out.stdout.split() == ["1.2"], out.stderr


def test_prune_drops_what_no_push_touched_for_that_long(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, keys: Path
) -> None:
    shared = tmp_path / "shared"
    url = shared.as_uri()
    _runner_a(cli, store, wheelhouse, tmp_path, url)
    leftover = shared / "v3" / "entries" / ".x.entry.crashed"
    leftover.write_bytes(b"half")
    old = time.time() - 10 * 86400
    for p in shared.rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    # A push of an env that uses dep-one refreshes its entry object.
    res = cli("--store", store, "create", tmp_path / "env-dep", "dep-one", "--without-pip",
              "--no-index", "-f", wheelhouse)  # fmt: skip
    assert res.code == 0, res.err
    res = cli("--store", store, "push", tmp_path / "env-dep", "--remote", url)
    assert res.code == 0 and "pushed 0 of 1 entries" in res.out, res.out + res.err
    (dep,) = [
        p for p in _objects(shared) if _split(p)[0]["signed"]["key"].startswith("pure/dep-one/")
    ]
    dry = cli("remote", "prune", "--older-than", "7d", "--remote", url, "--dry-run")
    assert dry.code == 0 and "would delete 2 objects (1 entries)" in dry.out, dry.out + dry.err
    assert len(_objects(shared)) == 2
    res = cli("remote", "prune", "--older-than", "7d", "--remote", url)
    assert res.code == 0 and "deleted 2 objects (1 entries)" in res.out, res.out + res.err
    assert sorted(p for p in shared.rglob("*") if p.is_file()) == [dep]


def test_the_download_threads_share_one_s3_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each boto3 client loads the S3 model (~0.3 s of CPU): made once, not per thread."""
    boto3 = pytest.importorskip("boto3")
    from envstore.store.remote.s3 import S3Backend

    made: list[object] = []
    real = boto3.session.Session.client

    def slow_client(self: object, *args: Any, **kwargs: Any) -> object:
        time.sleep(0.05)  # long enough for every thread to ask meanwhile
        made.append(real(self, *args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(boto3.session.Session, "client", slow_client)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    backend = S3Backend("s3://fleet/envstore")
    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(backend.client())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and all(c is made[0] for c in got)


@pytest.mark.parametrize("where", ["index", "find-links"])
def test_wheels_pip_reports_with_their_sha256_come_from_the_remote(
    cli: CLI,
    store: Path,
    wheelhouse: Path,
    tmp_path: Path,
    keys: Path,
    where: str,
    http_dir: tuple[Path, str],
) -> None:
    """Without a lock: the index's hashes in pip's report, or a local wheel's own, are
    looked up in the remote before anything is downloaded or unpacked."""
    remote = (tmp_path / "shared").as_uri()
    _runner_a(cli, store, wheelhouse, tmp_path, remote)
    if where == "index":
        served, url = http_dir
        for whl in wheelhouse.glob("*.whl"):
            name = whl.name.split("-")[0].replace("_", "-").lower()
            (served / name).mkdir(exist_ok=True)
            (served / name / whl.name).write_bytes(whl.read_bytes())
            sha = hashlib.sha256(whl.read_bytes()).hexdigest()
            link = f'<a href="{whl.name}#sha256={sha}">{whl.name}</a>\n'
            with open(served / name / "index.html", "a") as f:
                f.write(link)
        sources = ["--index-url", url.replace("ci:secret@", "").removesuffix("/cache") + "/"]
    else:
        sources = ["--no-index", "-f", str(wheelhouse)]
    store_b, env = tmp_path / "store-b", tmp_path / "env-b"
    res = cli("--store", store_b, "create", env, "hello-app", "--without-pip", "--remote",
              remote, *sources)  # fmt: skip
    assert res.code == 0 and "warning" not in res.err, res.err
    out = run([env / "bin" / "python", "-c", CHECK])
    assert out.returncode == 0 and out.stdout.split() == ["1.2"], out.stderr
    found = [e for e in entries(store_b) if e.split("/")[1] in ("dep-one", "hello-app")]
    assert len(found) == 2
    for e in found:
        assert json.loads((store_b / "entries" / e / "entry.json").read_text())["origin"] == remote
    assert not list((store_b / "wheels").iterdir())


# Hostile objects served to pull_entries directly (no CLI): what a writer to the remote,
# or someone in the path of http://, may put at an entry's name.

WHEEL, WHEEL_SHA = "foo-1.0-py3-none-any.whl", "a" * 64


def _hostile_remote(
    tmp_path: Path, pack: bytes, *, signed_sha: str | None = None, head: bytes | None = None
) -> tuple[Any, Any, list[Any], list[Any]]:
    """(store, backend, trusted keys, wanted) for a file:// remote holding one entry
    object: ``head`` (default: metadata signed by a trusted key, for ``pack`` unless
    ``signed_sha`` says another sha256), then ``pack``."""
    from envstore.model.keys import PURE, EntryKey
    from envstore.model.remote import RemoteMeta, SignedMeta, meta_name
    from envstore.store.layout import Store
    from envstore.store.remote.backends import FileBackend
    from envstore.store.remote.keys import SecretKey
    from envstore.store.remote.pull import Wanted

    signer = SecretKey("k1", b"\x01" * 32)
    if head is None:
        seal = {"entry.json": "0" * 32, "RECORD": "0" * 32, "pyc": {}}
        sha = signed_sha or hashlib.sha256(pack).hexdigest()
        key = EntryKey.parse(f"pure/foo/1.0-{'c' * 32}")
        meta = RemoteMeta(key, WHEEL, WHEEL_SHA, sha, len(pack), (), seal)
        doc = SignedMeta(meta, "k1", signer.sign(meta.signed_bytes())).dumps().encode()
        head = entry_head(doc)
    obj = tmp_path / "remote" / meta_name(WHEEL_SHA, PURE)
    obj.parent.mkdir(parents=True)
    obj.write_bytes(head + pack)
    store = Store(tmp_path / "store")
    store.ensure()
    return (
        store,
        FileBackend(tmp_path / "remote"),
        [signer.public()],
        [Wanted("foo", WHEEL, WHEEL_SHA, PURE)],
    )


def _pack_bytes(tmp_path: Path, members: list[tuple[str, str, bytes]] = OK) -> bytes:
    _write_pack(members, tmp_path / "p.zst")
    return (tmp_path / "p.zst").read_bytes()


def _pull_refused(tmp_path: Path, *args: Any, **kwargs: Any) -> str:
    """The one warning of pulling the hostile object (refused, nothing left in tmp/)."""
    from envstore.store.remote.pull import pull_entries

    store, backend, trusted, wanted = _hostile_remote(tmp_path, *args, **kwargs)
    warnings: list[str] = []
    assert pull_entries(store, backend, trusted, wanted, warnings.append) == {}
    assert len(warnings) == 1 and "/v3/entries/" in warnings[0], warnings
    assert not list(store.tmp_dir.iterdir())
    return warnings[0]


def test_nothing_unverified_is_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real signed head replayed before another body: refused on its sha256 before
    a byte of it is unpacked (even into tmp/)."""
    pull = sys.modules["envstore.store.remote.pull"]
    unpacked: list[object] = []
    monkeypatch.setattr(pull, "unpack_entry", lambda *a, **k: unpacked.append(a))
    monkeypatch.setattr(pull, "_SPOOL", 1, raising=False)  # downloaded into a file in tmp/
    warning = _pull_refused(tmp_path, _pack_bytes(tmp_path), signed_sha="b" * 64)
    assert "does not match its signed sha256" in warning and unpacked == []


def test_a_surprise_while_unpacking_is_one_objects_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pull = sys.modules["envstore.store.remote.pull"]

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("a library's surprise")

    monkeypatch.setattr(pull, "unpack_entry", boom)
    assert "pure.entry refused: ValueError" in _pull_refused(tmp_path, _pack_bytes(tmp_path))


def test_a_deeply_nested_head_is_refused(tmp_path: Path) -> None:
    doc = b"[" * 200_000  # a RecursionError in json, before the signature is checked
    warning = _pull_refused(tmp_path, b"", head=ENTRY_MAGIC + len(doc).to_bytes(8, "big") + doc)
    assert "not JSON (nested too deeply)" in warning


def _raw_pack(raw: bytes, dest: Path, **params: int) -> Path:
    import zstandard

    compressor = zstandard.ZstdCompressor(
        compression_params=zstandard.ZstdCompressionParameters.from_level(3, **params)
    )
    with open(dest, "wb") as f, compressor.stream_writer(f, closefd=False) as out:
        out.write(raw)  # no content size in the frame: the window is as asked
    return dest


@pytest.mark.parametrize("case", ["nested-index", "many-members", "large-window"])
def test_a_pack_is_bounded_before_it_is_parsed(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envstore.store.remote import archive

    index, params = b'[["entry.json","f",0],["site","d",0]]', {}
    if case == "nested-index":  # fewer brackets than members allowed, too deep to parse
        index = b"[" * 200_000
    elif case == "many-members":  # parsed whole, this is 11 lists
        monkeypatch.setattr(archive, "MAX_MEMBERS", 10)
        index = b"[" + b",".join([b"[]"] * 11) + b"]"
    else:  # what a level-3 pack needs is 2 MiB; a frame may ask for 128 MiB
        params = {"window_log": 24}
    raw = b"envstore-pack 2\n" + len(index).to_bytes(8, "big") + index + b"x" * (1 << 16)
    dest = tmp_path / "entry"
    dest.mkdir()
    with pytest.raises(RemoteError) as refused:
        unpack_entry(_raw_pack(raw, tmp_path / "a.pack.zst", **params), dest)
    expected = {"nested-index": "not JSON", "many-members": "lists more than 10 members"}
    assert expected.get(case, "cannot be unpacked") in str(refused.value)
    assert not list(dest.iterdir())


class _Trickle(SimpleHTTPRequestHandler):
    """Every GET: a 1000-byte object, one byte every 50 ms (a server that never lets a
    read time out)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for byte in (ENTRY_MAGIC + b"\0" * 1000)[:1000]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client gave up
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Redirect(_QuietHandler):
    """Records each request's Authorization header; /cache/... redirects to ``to``."""

    to = ""
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/cache/"):
            self.send_response(302)
            self.send_header("Location", self.to + "/moved" + self.path)
            self.end_headers()
        else:
            self.send_error(404)


@pytest.fixture
def serve() -> Iterator[Callable[[type[SimpleHTTPRequestHandler]], str]]:
    """Start HTTP servers on 127.0.0.1 with a handler class: each one's http://ci:secret@ URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: type[SimpleHTTPRequestHandler]) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://ci:secret@127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_trickling_server_is_given_up_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve: Callable[[type[Any]], str]
) -> None:
    """No read ever waits long enough to time out, but the request has a deadline."""
    from envstore.store.remote import backends
    from envstore.store.remote.pull import pull_entries

    monkeypatch.setattr(backends, "REQUEST_SECONDS", 0.2)
    store, _backend, trusted, wanted = _hostile_remote(tmp_path, b"")
    warnings: list[str] = []
    backend = backends.HttpBackend(serve(_Trickle) + "/cache")
    assert pull_entries(store, backend, trusted, wanted, warnings.append) == {}
    assert len(warnings) == 1 and "is too slow" in warnings[0], warnings


def test_the_password_does_not_follow_a_redirect_to_another_host(
    serve: Callable[[type[Any]], str],
) -> None:
    from envstore.store.remote.backends import HttpBackend

    _Redirect.seen = []
    _Redirect.to = serve(_Redirect).replace("ci:secret@", "")  # another port: another origin
    assert HttpBackend(serve(_Redirect) + "/cache").open("v3/x.entry") is None
    (first, auth), (second, after) = _Redirect.seen
    assert (first, second) == ("/cache/v3/x.entry", "/moved/cache/v3/x.entry")
    assert auth == "Basic " + base64.b64encode(b"ci:secret").decode() and after is None


def test_a_sha256_from_pips_report_is_only_ever_a_digest() -> None:
    from envstore.resolve.remote_first import report_sha256

    def report(sha256: str) -> dict[str, object]:
        return {"archive_info": {"hashes": {"sha256": sha256}}}

    assert report_sha256(report("AB" * 32)) == "ab" * 32
    for bad in ("../../x", "ab" * 32 + "/..", "ab" * 31, "g" * 64):
        assert report_sha256(report(bad)) is None
    assert report_sha256({"archive_info": {"hash": "sha256=../../v3"}}) is None
