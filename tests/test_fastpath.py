"""cli.fastpath parses the plain forms of ``envstore create`` exactly as argparse does,
and hands every other form to argparse."""

from __future__ import annotations

import shlex

import pytest

from envstore.cli.fastpath import parse_create, parse_plain, parse_sync
from envstore.cli.parser import parse

PLAIN = [
    "create env",
    "create env a b",
    "--store S create env a",
    "-q create env --without-pip -r reqs.txt",
    "-v --store S create env",
    "--store S -q create env --no-index -f WH -r WH/requirements.txt --without-pip",
    "create env a -f one -f two b --find-links three c",
    "create -p 3.12 env --python 3.11 'x[extra]>=1' --index-url URL -i URL2",
    "create env --offline --upgrade -U --clear --prompt P --from L",
    "create env --requirement r1 -r r2 --store S -q",
    "create env . --pre -c c1 --constraint c2 --extra-index-url U1 --extra-index-url U2",
    "-q create env -v",
    "create env -q -v -q",
    "create env ''",
    "--store create create create",
    "create env a --max-age 10m --refresh",
    "create env --max-age inf --max-age 30",
]
ARGPARSE_ONLY = [
    "create",  # no ENV: argparse's error
    "create -h",
    "create env --help",
    "-h",
    "create env -rreqs.txt",  # a joined value
    "create env --python=3.12",
    "create env -Uq",  # joined flags
    "create env --no-ind",  # an abbreviation
    "create env --unknown",
    "create env --max-age soon",  # not a duration: argparse's error
    "create env -- -x",
    "create env -f",  # a missing value
    "create env -p -q",
    "-v -v create env",
    "--verbose create env --verbose",
    "list",
    "sync env a",
    "--store",
]


@pytest.mark.parametrize("line", PLAIN)
def test_plain_creates_parse_as_argparse_parses_them(line: str) -> None:
    argv = shlex.split(line)
    fast = parse_create(argv)
    assert fast is not None
    assert vars(fast) == vars(parse(argv))


@pytest.mark.parametrize("line", ARGPARSE_ONLY)
def test_every_other_form_is_left_to_argparse(line: str) -> None:
    assert parse_create(shlex.split(line)) is None


SYNC_PLAIN = [
    "sync",
    "sync env",
    "sync env a b",
    "--store S -q sync --no-index --find-links WH --without-pip -p PY",
    "sync --group dev --extra x --all-extras --all-groups --no-dev --no-install-project",
    "sync --no-editable --project P --with-pip --max-age 10m --refresh -U",
    "sync env a --no-index b -f WH c",
    "sync env --from L --python 3.12 -c C --pre --offline",
    "sync env -e . -r r.txt --requirement r2 --with-pip --with-pip",
    "-v sync env -q",
]
SYNC_ARGPARSE_ONLY = [
    "sync --no-index env a",  # an option before ENV: argparse's optional positional
    "sync env --with-pip --without-pip",  # a mutually exclusive pair
    "sync env --clear",  # create's only
    "sync env --prompt P",
    "sync -h",
    "sync env --max-age soon",
    "sync env --project",
]


@pytest.mark.parametrize("line", SYNC_PLAIN)
def test_plain_syncs_parse_as_argparse_parses_them(line: str) -> None:
    argv = shlex.split(line)
    fast = parse_sync(argv)
    assert fast is not None
    assert vars(fast) == vars(parse(argv))
    assert parse_plain(argv) == fast


@pytest.mark.parametrize("line", SYNC_ARGPARSE_ONLY)
def test_every_other_sync_is_left_to_argparse(line: str) -> None:
    assert parse_sync(shlex.split(line)) is None
    assert parse_plain(shlex.split(line)) is None
