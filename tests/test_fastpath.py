"""cli.fastpath parses the plain forms of ``envstore create`` exactly as argparse does,
and hands every other form to argparse."""

from __future__ import annotations

import shlex

import pytest

from envstore.cli.fastpath import parse_create
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
