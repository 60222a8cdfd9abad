"""The PST writer's optional C twins (converters/pst/_pstspeed_write.c) give what their
Python twins give: on generated input (hypothesis, derandomized), on seeded mutations of
real-looking input, and at the edges each one has. (b64_strict answers only well-formed
bodies and leaves the rest, None, to its twin: compared is what the caller gets, and that
the C twin does answer the well-formed ones.)"""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.converters.pst import speedups
from pstkit.converters.pst.write import meeting, parts

C = speedups.C
pytestmark = pytest.mark.skipif(C is None, reason="C speed-ups not built")

_B64_CHARS = "ABCZaz09+/=\r\n \t-_.é\udc80\udcff\x00\x7f"


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.text(alphabet=_B64_CHARS, max_size=40))
def test_b64_strict_twins_on_any_text(text: str) -> None:
    assert C is not None
    assert parts.b64_strict(text) == parts.b64_strict_py(text)
    got = C.b64_strict(text)
    assert got is None or got == parts.b64_strict_py(text)


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.binary(max_size=300), st.integers(0, 5), st.sampled_from(["\r\n", "\n", ""]))
def test_b64_strict_twins_on_encoded_data(data: bytes, cut: int, eol: str) -> None:
    """Real base64 bodies, their padding cut short or doubled, lines ending either way."""
    assert C is not None
    body = base64.encodebytes(data).decode().replace("\n", eol or "\n")
    if not eol:
        body = body.replace("\n", "")
    for text in (body, body.rstrip("=\r\n"), body.rstrip("\r\n")[: -cut or None],
                 body + "=" * cut, body + "QQ"[:cut], "=" + body):
        assert parts.b64_strict(text) == parts.b64_strict_py(text), text
        got = C.b64_strict(text)
        assert got is None or got == parts.b64_strict_py(text), text
    assert C.b64_strict(body) == data  # well-formed: answered by C


def test_b64_strict_twins_on_mutated_bodies() -> None:
    """Seeded: large bodies with one character changed, dropped or added anywhere."""
    assert C is not None
    rng = random.Random(17)
    for n in range(300):
        body = list(base64.encodebytes(rng.randbytes(rng.randint(0, 5000))).decode())
        for _ in range(rng.randint(0, 3)):
            at = rng.randint(0, len(body))
            what = rng.choice(["=", "\r", "\n", "A", " ", "é", "\udc99", "/"])
            op = rng.randint(0, 2)
            if op == 0 and at < len(body):
                body[at] = what
            elif op == 1 and at < len(body):
                del body[at]
            else:
                body.insert(at, what)
        text = "".join(body)
        assert parts.b64_strict(text) == parts.b64_strict_py(text), n
        got = C.b64_strict(text)
        assert got is None or got == parts.b64_strict_py(text), n


def test_b64_strict_decodes_what_the_stdlib_decodes() -> None:
    assert C is not None
    data = random.Random(3).randbytes(100_001)
    text = base64.encodebytes(data).decode().replace("\n", "\r\n")
    assert C.b64_strict(text) == data
    assert C.b64_strict(text.replace("\r\n", "").rstrip("=")) == data  # padding left out
    assert C.b64_strict("") == b""


_NEEDLE = b"text/calendar"


def _cased(rng: random.Random, needle: bytes) -> bytes:
    return bytes(c ^ 32 if chr(c).isalpha() and rng.random() < 0.5 else c for c in needle)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(st.binary(max_size=200), st.integers(0, 200), st.integers(0, 2**32),
       st.integers(0, 13))
def test_has_ci_twins(data: bytes, at: int, seed: int, keep: int) -> None:
    """Any bytes, with the needle (or a prefix of it) put in at any place, in any case."""
    assert C is not None
    rng = random.Random(seed)
    planted = data[:at] + _cased(rng, _NEEDLE[:keep]) + data[at:]
    for raw in (data, planted, planted.replace(b"/", b"\\")):
        assert C.has_ci(raw, _NEEDLE) == meeting.mentions_calendar_py(raw)


def test_has_ci_twins_on_large_messages() -> None:
    """Seeded: megabytes of base64-like text with slashes and t/T everywhere, the needle
    across the pure twin's 64 KiB chunk edges, at the very start and end, or not there."""
    assert C is not None
    rng = random.Random(5)
    noise = base64.encodebytes(rng.randbytes(300_000))
    for at in (None, 0, 65536 - 5, 65536 * 2 - 13, 65536 * 3, len(noise)):
        raw = noise if at is None else noise[:at] + _cased(rng, _NEEDLE) + noise[at:]
        assert C.has_ci(raw, _NEEDLE) == meeting.mentions_calendar_py(raw) == (at is not None)
    assert C.has_ci(b"", _NEEDLE) is meeting.mentions_calendar_py(b"") is False
    assert C.has_ci(b"TEXT/CALENDAR", _NEEDLE) is True
