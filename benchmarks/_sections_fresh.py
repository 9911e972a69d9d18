"""The freshness section (#23): a warm create of ``web`` from a local package index
(the wheelhouse served as a PEP 503 simple index by ``http.server`` on 127.0.0.1,
with sha256 fragments, PEP 658 metadata files and PyPI's ``Cache-Control``), its
top-level requirements unpinned:

- envstore within the window (the same request resolved less than ``--max-age`` ago:
  no pip, no index);
- envstore first in a window (``--refresh``: pip resolves against the index, every
  wheel comes from the store);
- ``uv pip install`` into a new ``uv venv``, warm cache, within the index pages'
  lifetime (what uv does for a new env within 10 minutes), and with ``--refresh``;
- for reference, both from the wheelhouse directory with ``--no-index`` (no index,
  the directory decides: envstore as it was before the window existed).

All paired in one run (interleaved), each into a new env.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from _harness import PY311, Result, Skipped, TimingResult, Trial, alternate, run, timing_results
from _sections import NO_TOOLS, Ctx, Fresh, delete_and_age
from _workloads import Workload

__all__ = ["sec_freshness"]


def _simple_index(wheelhouse: Path, root: Path) -> None:
    """``root/simple/<name>/``: each wheel, its METADATA as ``<wheel>.metadata`` (PEP
    658), and an index.html linking them with their sha256, as PyPI serves them."""
    for whl in sorted(wheelhouse.glob("*.whl")):
        name = whl.name.split("-")[0].replace("_", "-").replace(".", "-").lower()
        d = root / "simple" / name
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy2(whl, d / whl.name)
        with zipfile.ZipFile(whl) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            (d / f"{whl.name}.metadata").write_bytes(zf.read(meta))
    for d in sorted((root / "simple").iterdir()):
        links = ""
        for whl in sorted(d.glob("*.whl")):
            digest = hashlib.sha256(whl.read_bytes()).hexdigest()
            meta = hashlib.sha256((d / f"{whl.name}.metadata").read_bytes()).hexdigest()
            links += (
                f'<a href="{whl.name}#sha256={digest}" data-dist-info-metadata="sha256={meta}"'
                f' data-core-metadata="sha256={meta}">{whl.name}</a>\n'
            )
        (d / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        # PyPI's: index pages for 10 minutes, files for a year (they never change).
        forever = self.path.endswith((".whl", ".metadata"))
        self.send_header("Cache-Control", f"max-age={31536000 if forever else 600}, public")
        super().end_headers()


@contextmanager
def _served(root: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


def _workload(ctx: Ctx) -> Workload:
    return next((w for w in ctx.workloads if w.name == "web"), ctx.workloads[0])


def sec_freshness(ctx: Ctx) -> list[Result]:
    """envstore within / first in the window vs uv pip install, warm, from a local index."""
    wl = _workload(ctx)
    d = ctx.scratch / "freshness"
    d.mkdir(parents=True, exist_ok=True)
    _simple_index(wl.wheelhouse, d / "www")
    top = d / "top-level.txt"  # unpinned: the index decides
    top.write_text("".join(f"{name}\n" for name in wl.top))
    store, cache = ctx.store(d), ctx.cache(d)
    pip = [] if ctx.es.with_pip else ["--without-pip"]
    label = f"{wl.name} ({len(wl.top)} top-level, unpinned)"
    with _served(d / "www") as url:
        es_fresh = Fresh(d / "envs" / "es", ctx.pause)
        es_first = Fresh(d / "envs" / "es-first", ctx.pause)
        uv_fresh = Fresh(d / "envs" / "uv", ctx.pause)
        uv_first = Fresh(d / "envs" / "uv-refresh", ctx.pause)

        index = ["--index-url", url]
        local = ["--no-index", "--find-links", str(wl.wheelhouse)]

        def es(f: Fresh, *more: str, where: list[str] = index) -> Callable[[], None]:
            def act() -> None:
                argv = ctx.es.cmd(store, "-q", "create", f("env"), *where)
                run([*argv, "-r", top, *pip, *more], env=ctx.es.env())

            return act

        def uv(f: Fresh, *more: str, where: list[str] = index) -> Callable[[], None]:
            def act() -> None:
                if not ctx.tc.available:
                    raise Skipped(NO_TOOLS)
                env = ctx.tc.uv_env(cache)
                run([ctx.tc.uv, "venv", "-q", "-p", PY311, f("env")], env=env)
                run([ctx.tc.uv, "pip", "install", "-q", "--python", f("env") / "bin" / "python",
                     *where, "-r", top, *more], env=env)  # fmt: skip

            return act

        pairs = [
            ("envstore, within the window", Trial(es(es_fresh), es_fresh.next)),
            (
                "envstore, first in a window (--refresh)",
                Trial(es(es_first, "--refresh"), es_first.next),
            ),
            ("uv, warm cache", Trial(uv(uv_fresh), uv_fresh.next)),
            ("uv --refresh, warm cache", Trial(uv(uv_first, "--refresh"), uv_first.next)),
        ]
        # The untimed warmup round fills the store and uv's cache from the index.
        samples = alternate(pairs, ctx.reps, warmup=max(ctx.warmup, 1))
        es_local = Fresh(d / "envs" / "es-local", ctx.pause)
        uv_local = Fresh(d / "envs" / "uv-local", ctx.pause)
        pairs = [
            ("envstore, --no-index -f WH", Trial(es(es_local, where=local), es_local.next)),
            ("uv, --no-index -f WH", Trial(uv(uv_local, where=local), uv_local.next)),
        ]
        before = alternate(pairs, ctx.reps, warmup=max(ctx.warmup, 1))
    out: list[Result] = list(
        timing_results("freshness", label, samples, "warm create from a local index")
    )
    first = out[1]
    if isinstance(first, TimingResult) and not first.error:
        first.note = "pip resolves against the index; every wheel is taken from the store"
    out += timing_results("freshness", label, before, "warm create from the wheelhouse directory")
    delete_and_age(ctx, d)
    return out
