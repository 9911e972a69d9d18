"""The remote cache (issue #26): a fresh store creating a workload from a lock, pulled
from a warm S3 remote (moto's server on 127.0.0.1), from the same S3 remote behind a
proxy that adds ~30 ms to every request (as a real object store would), and from a
``file://`` remote, against envstore cold from the same wheels and ``uv pip install
--compile-bytecode`` with a cold cache, paired in one run.

Needs the ``remote`` extra and ``moto[server]`` in envstore's Python (``--envstore``
naming a venv that has them, e.g. the repo's test venv); otherwise the rows say
``skipped``. The remote is warmed (pushed) untimed first. Every remote create runs
with ``--no-index`` and no wheels: a miss fails the row instead of hiding in it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from _harness import Result, TimingResult, Trial, alternate, run, timing_results
from _sections import UV_COMPILE, Ctx, Fresh, delete_and_age, tool_in
from _workloads import Workload

__all__ = ["sec_remote"]

_NEEDS = "import boto3, cryptography, moto.server, obstore, zstandard"
_BUCKET = "bench"
LATENCY_S = 0.030  # added to every request through the proxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto(ctx: Ctx, port: int) -> subprocess.Popen[bytes]:
    code = "import sys; from moto.server import main; main(sys.argv[1:])"
    proc = subprocess.Popen(
        [ctx.es.python, "-c", code, "-H", "127.0.0.1", "-p", str(port)],
        env=ctx.es.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("moto's server did not start")


class _SlowProxy:
    """A TCP proxy on 127.0.0.1 that holds each burst a client sends (an HTTP request)
    for ``delay`` seconds before passing it on: a remote ~``delay`` farther away."""

    def __init__(self, target: int, delay: float) -> None:
        self.target, self.delay = target, delay
        self.received = 0  # bytes passed from the server to clients: what was transferred
        self._count = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if slow:
                    time.sleep(self.delay)
                else:
                    with self._count:
                        self.received += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def _s3_env(port: int) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def _bucket_bytes(ctx: Ctx, env: dict[str, str]) -> int:
    code = (
        "import boto3\n"
        f"objs = boto3.client('s3').list_objects_v2(Bucket='{_BUCKET}').get('Contents', [])\n"
        "print(sum(o['Size'] for o in objs if '/entries/' in o['Key']))\n"
    )
    got = subprocess.run(
        [ctx.es.python, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return int(got.stdout)


def _one(ctx: Ctx, wl: Workload, d: Path, port: int, slow: _SlowProxy) -> list[Result]:
    es = ctx.es
    env = es.env(**_s3_env(port))
    url = f"s3://{_BUCKET}/{wl.name}"
    run([es.python, "-c", f"import boto3; boto3.client('s3').create_bucket(Bucket='{_BUCKET}')"],
        env=env)  # fmt: skip
    run([*es.argv, "key", "generate", "bench-1", d / "k.key", d / "k.pub"], env=env)
    env["ENVSTORE_TRUSTED_KEYS"] = (d / "k.pub").read_text().strip()
    env["ENVSTORE_SIGNING_KEY"] = str(d / "k.key")
    seed, lock = d / "seed", d / f"pylock.{wl.name}.toml"
    warm = ["--without-pip", "--remote", url, "--push"]
    run(es.cmd(seed, "-q", "create", seed / "env", "--no-index", "--find-links", wl.wheelhouse,
               "-r", wl.requirements, *warm), env=env)  # fmt: skip
    run(es.cmd(seed, "lock", seed / "env", "-o", lock), env=env)
    # The remote rows' lock names no wheel that exists (its paths point into the
    # wheelhouse): a miss fails the row instead of hiding in it.
    no_wheels = d / f"pylock.{wl.name}.no-wheels.toml"
    no_wheels.write_text(
        re.sub(r'^(path = ".*)/wheelhouses/', r"\1/absent/", lock.read_text(), flags=re.M)
    )
    shared = (d / "shared").as_uri()
    run(es.cmd(seed, "-q", "push", "--all", "--remote", shared), env=env)
    slow_env = {**env, **_s3_env(slow.port)}
    locked = tomllib.loads(lock.read_text())["packages"]
    wheels = sum((wl.wheelhouse / p["wheels"][0]["name"]).stat().st_size for p in locked)
    fresh = Fresh(d / "trials", ctx.pause)

    def from_remote(remote: str, env: dict[str, str]) -> Callable[[], None]:
        argv = ["-q", "create", "--from", no_wheels, "--no-index", "--remote", remote]
        return lambda: run(es.cmd(fresh("store"), *argv, fresh("env")), env=env)

    def from_wheels() -> None:
        run(es.cmd(fresh("store"), "-q", "create", fresh("env"), "--from", lock,
                   "--no-index", "--find-links", wl.wheelhouse), env=env)  # fmt: skip

    pairs = [
        ("envstore, warm S3 remote", Trial(from_remote(url, env), fresh.next)),
        (
            f"envstore, warm S3 remote +{LATENCY_S * 1000:.0f} ms/request",
            Trial(from_remote(url, slow_env), fresh.next),
        ),
        ("envstore, warm file:// remote", Trial(from_remote(shared, env), fresh.next)),
        ("envstore, wheels", Trial(from_wheels, fresh.next)),
        (UV_COMPILE, Trial(tool_in(ctx, UV_COMPILE, wl, fresh), fresh.next)),
    ]
    out: list[Result] = list(
        timing_results(
            "remote", wl.name, alternate(pairs, ctx.reps), "create from a lock, empty store/cache"
        )
    )
    pulled = _bucket_bytes(ctx, env)
    per_create = slow.received / max(1, ctx.reps)  # through the proxy: bodies and headers
    out[0].note = (
        f"{len(locked)} entries, one GET each (remote layout 3); entry objects"
        f" {pulled / 1e6:.1f} MB, {per_create / 1e6:.1f} MB received per create"
        f" vs wheels {wheels / 1e6:.1f} MB ({per_create / wheels:.2f}x)"
    )
    return out


def sec_remote(ctx: Ctx) -> list[Result]:
    """Warm S3 remote vs envstore from wheels vs uv --compile-bytecode, cold, from a lock."""
    out: list[Result] = []
    probe = subprocess.run([ctx.es.python, "-c", _NEEDS], env=ctx.es.env(), capture_output=True)
    workloads = [w for w in ctx.workloads if w.name in ("big", "binary")] or ctx.workloads[:1]
    done: list[Path] = []
    for wl in workloads:
        print(f"  {wl.name}", flush=True)
        if probe.returncode:
            why = "skipped: envstore's Python lacks boto3, obstore, cryptography or moto[server]"
            out.append(TimingResult("remote", wl.name, "envstore, warm S3 remote", [], error=why))
            continue
        d = ctx.scratch / f"remote-{wl.name}"
        d.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        server = _moto(ctx, port)
        proxy = _SlowProxy(port, LATENCY_S)
        try:
            out += _one(ctx, wl, d, port, proxy)
        except Exception as exc:  # a failing section is a row, not an abort
            out.append(TimingResult("remote", wl.name, "envstore, warm S3 remote", [],
                                    error=f"failed: {exc}"))  # fmt: skip
        finally:
            proxy.close()
            server.terminate()
            server.wait()
        done.append(d)
    delete_and_age(ctx, *done)
    return out
