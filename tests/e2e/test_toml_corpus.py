"""Conformance of the TOML reader against the toml-test corpus (TOML 1.1 list).

Every case listed in <corpus>/tests/files-toml-1.1.0 is its own test:
- valid/...toml: the decoder exits 0 and its tagged JSON equals the .json
  beside the case under the comparison rules of the corpus README (key order
  ignored, floats as numbers, date-times after parsing);
- invalid/...toml: the decoder exits 1 with one line "file:line:col: message"
  on stderr.

The decoder is $SB_TOML_DECODE (default build/toml-decode); the corpus is
$SB_TOML_TEST_DIR (default ../shared/toml-test beside the repository). A
missing corpus or decoder fails the run; nothing is skipped.

A few more tests pin the positions reported for specific errors.
"""

import json
import math
import os
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("SB_TOML_TEST_DIR", REPO.parent / "shared" / "toml-test"))
DECODER = Path(os.environ.get("SB_TOML_DECODE", REPO / "build" / "toml-decode"))
if not DECODER.is_absolute():
    DECODER = REPO / DECODER
LIST = CORPUS / "tests" / "files-toml-1.1.0"
MISSING = "<corpus missing>"

ERROR_LINE = re.compile(r"^[^:]+:\d+:\d+: .+")
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer")


def _cases():
    if not LIST.is_file():
        return [MISSING], [MISSING]
    names = [line.strip() for line in LIST.read_text().splitlines() if line.strip()]
    valid = sorted(n[: -len(".toml")] for n in names if n.startswith("valid/") and n.endswith(".toml"))
    invalid = sorted(n[: -len(".toml")] for n in names if n.startswith("invalid/") and n.endswith(".toml"))
    return valid, invalid


VALID, INVALID = _cases()


def _require_decoder():
    if not (DECODER.is_file() and os.access(DECODER, os.X_OK)):
        pytest.fail(f"decoder not found or not executable: {DECODER} (run make build or set SB_TOML_DECODE)")


def _require_setup(case):
    if case == MISSING:
        pytest.fail(
            f"toml-test corpus not found: {LIST} does not exist "
            f"(set SB_TOML_TEST_DIR to the toml-test directory)"
        )
    _require_decoder()


def run_decoder(data, args=()):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    proc = subprocess.run(
        [str(DECODER), *args], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=30
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert not SANITIZER.search(stderr), f"sanitizer report:\n{stderr}"
    return proc.returncode, proc.stdout, stderr


# ---- comparison of tagged JSON -------------------------------------------

DT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?$"
)
DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?$")


def _frac(text):
    return Fraction(int(text[1:]), 10 ** (len(text) - 1)) if text else Fraction(0)


def _days_from_civil(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _datetime_key(kind, text):
    """A value that compares equal for equal instants / local values."""
    if kind == "date-local":
        m = DATE.match(text)
        assert m, f"bad date-local {text!r}"
        return tuple(int(g) for g in m.groups())
    if kind == "time-local":
        m = TIME.match(text)
        assert m, f"bad time-local {text!r}"
        h, mi, s, f = m.groups()
        return (int(h), int(mi), int(s or 0), _frac(f))
    m = DT.match(text)
    assert m, f"bad {kind} {text!r}"
    y, mo, d, h, mi, s, f, off = m.groups()
    fields = (int(y), int(mo), int(d), int(h), int(mi), int(s or 0))
    if kind == "datetime-local":
        assert off is None, f"datetime-local with an offset: {text!r}"
        return fields + (_frac(f),)
    assert kind == "datetime" and off is not None, f"bad {kind} {text!r}"
    offset = 0
    if off not in "Zz":
        sign = -1 if off[0] == "-" else 1
        offset = sign * (int(off[1:3]) * 60 + int(off[4:6]))
    secs = ((_days_from_civil(*fields[:3]) * 24 + fields[3]) * 60 + fields[4] - offset) * 60 + fields[5]
    return (secs, _frac(f))


def _float_key(text):
    t = text.lower().replace("_", "")
    if t in ("nan", "+nan", "-nan"):
        return "nan"
    if t in ("inf", "+inf"):
        return "inf"
    if t == "-inf":
        return "-inf"
    f = float(t)
    assert math.isfinite(f), f"unexpected float text {text!r}"
    return f


def _is_tagged(v):
    return isinstance(v, dict) and set(v) == {"type", "value"} and all(isinstance(x, str) for x in v.values())


def compare(expected, actual, path="$"):
    """Return None when equal, else a description of the first difference."""
    if _is_tagged(expected):
        if not _is_tagged(actual):
            return f"{path}: expected a {expected['type']} value, got {json.dumps(actual)[:80]}"
        et, at = expected["type"], actual["type"]
        if et != at:
            return f"{path}: type {at!r} != expected {et!r}"
        ev, av = expected["value"], actual["value"]
        if et == "float":
            same = _float_key(ev) == _float_key(av)
        elif et in ("datetime", "datetime-local", "date-local", "time-local"):
            same = _datetime_key(et, ev) == _datetime_key(et, av)
        else:
            same = ev == av
        return None if same else f"{path}: {et} {av!r} != expected {ev!r}"
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or _is_tagged(actual):
            return f"{path}: expected a table, got {json.dumps(actual)[:80]}"
        if set(expected) != set(actual):
            return f"{path}: keys {sorted(actual)} != expected {sorted(expected)}"
        for k in expected:
            diff = compare(expected[k], actual[k], f"{path}.{k}")
            if diff:
                return diff
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{path}: expected an array, got {json.dumps(actual)[:80]}"
        if len(expected) != len(actual):
            return f"{path}: array length {len(actual)} != expected {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            diff = compare(e, a, f"{path}[{i}]")
            if diff:
                return diff
        return None
    return f"{path}: unexpected JSON in the expected file: {expected!r}"


# ---- the corpus ------------------------------------------------------------


@pytest.mark.parametrize("case", VALID)
def test_valid(case):
    _require_setup(case)
    src = CORPUS / "tests" / (case + ".toml")
    expected = json.loads((CORPUS / "tests" / (case + ".json")).read_text(encoding="utf-8"))
    code, out, err = run_decoder(src.read_bytes())
    assert code == 0, f"decoder rejected a valid document (exit {code}): {err.strip()}"
    try:
        actual = json.loads(out.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        pytest.fail(f"decoder printed invalid JSON ({e}): {out[:300]!r}")
    diff = compare(expected, actual)
    assert diff is None, diff


@pytest.mark.parametrize("case", INVALID)
def test_invalid(case):
    _require_setup(case)
    src = CORPUS / "tests" / (case + ".toml")
    code, out, err = run_decoder(src.read_bytes())
    assert code == 1, f"decoder accepted an invalid document (exit {code}); output: {out[:300]!r}"
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert ERROR_LINE.match(lines[0]), f"stderr is not 'file:line:col: message': {err!r}"


def test_corpus_list_is_complete():
    _require_setup(VALID[0])
    # 1.1 list: every valid case has its expected JSON, every listed file exists.
    for case in VALID:
        assert (CORPUS / "tests" / (case + ".json")).is_file(), case
    for case in INVALID:
        assert (CORPUS / "tests" / (case + ".toml")).is_file(), case
    assert len(VALID) > 100 and len(INVALID) > 100


# ---- reported positions ------------------------------------------------------

POSITIONS = [
    # (document, line, col, part of the message)
    ("a = 1\nb = 2\na = 3\n", 3, 1, "duplicate key 'a' (first defined at 1:1)"),
    ("[t]\nx = 1\n  x = 2\n", 3, 3, "duplicate key 'x' (first defined at 2:1)"),
    ("a.b = 1\na.b = 2\n", 2, 3, "duplicate key 'b' (first defined at 1:3)"),
    ("[a]\n[b]\n[a]\n", 3, 2, "table 'a' already defined at 1:1"),
    ("key value\n", 1, 5, "expected '=' after key"),
    ('s = "ab\\qc"\n', 1, 8, "invalid escape '\\q'"),
    ('s = "é\\qc"\n', 1, 7, "invalid escape '\\q'"),  # columns count characters
    ('s = "a\x07b"\n', 1, 7, "control character U+0007 not allowed in string"),
    ("x = 1\ny = \n", 2, 5, "expected a value"),
    ("a = [1, 2\nb = 3\n", 2, 1, "expected ',' or ']'"),
    ("t = {a = 1 b = 2}\n", 1, 12, "expected ',' or '}'"),
    ("n = 9223372036854775808\n", 1, 5, "integer out of range"),
    ("d = 2021-02-29\n", 1, 13, "day 29 out of range"),
    ("a = 1\r\nb = 0x\r\n", 2, 7, "expected a digit"),
    ("# ok\n# \x7f\n", 2, 3, "control character U+007F not allowed in comment"),
    (b"s = 'caf\xc3'\n", 1, 9, "invalid UTF-8"),
]


@pytest.mark.parametrize("doc,line,col,msg", POSITIONS, ids=[f"pos-{i}" for i in range(len(POSITIONS))])
def test_error_position(doc, line, col, msg):
    _require_decoder()
    data = doc if isinstance(doc, bytes) else doc.encode("utf-8")
    code, _, err = run_decoder(data)
    assert code == 1, f"accepted: {doc!r}"
    prefix = f"<stdin>:{line}:{col}: "
    assert err.startswith(prefix), f"expected {prefix!r}, got {err!r}"
    assert msg in err, f"expected {msg!r} in {err!r}"


def test_error_names_the_file(tmp_path):
    _require_decoder()
    f = tmp_path / "bad.toml"
    f.write_text("[a]\nb = 1\nb = 2\n")
    code, _, err = run_decoder(b"", args=[str(f)])
    assert code == 1
    assert err.startswith(f"{f}:3:1: duplicate key 'b'"), err


def test_nesting_is_capped():
    _require_decoder()
    code, _, err = run_decoder(b"a = " + b"[" * 100000 + b"\n")
    assert code == 1
    assert ERROR_LINE.match(err) and "nesting too deep" in err, err
    code, _, err = run_decoder(b"a = " + b"{b = " * 5000 + b"1" + b"}" * 5000 + b"\n")
    assert code == 1 and "nesting too deep" in err, err
    code, out, err = run_decoder(b"a = " + b"[" * 100 + b"]" * 100 + b"\n")
    assert code == 0, err
