"""Compressed RTF (MS-OXRTFCP) and HTML encapsulated in RTF (MS-OXRTFEX). Pure.

Outlook stores many bodies only as PR_RTF_COMPRESSED; when the RTF says
\\fromhtml1 it is an HTML body wrapped in RTF, and the HTML can be recovered
exactly enough for a mail client to show what Outlook showed.
"""

from __future__ import annotations

import codecs
import re
import struct
from functools import cache

from pstkit.converters.pst import speedups

_PREBUF = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern "
    b"\\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0"
    b"\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
_COMPRESSED = 0x75465A4C  # "LZFu"
_UNCOMPRESSED = 0x414C454D  # "MELA"


class RtfError(ValueError):
    """Compressed RTF that cannot be decompressed."""


def decompress(data: bytes, limit: int | None = None) -> bytes:
    """Decompress PR_RTF_COMPRESSED (MS-OXRTFCP 2.2.2/3.1.3).

    With `limit`, stop after about that many bytes (enough to read the RTF header)."""
    if len(data) < 16:
        raise RtfError("compressed RTF shorter than its header")
    comp_size, raw_size, magic, _crc = struct.unpack_from("<IIII", data)
    if magic == _UNCOMPRESSED:
        return data[16 : 16 + raw_size]
    if magic != _COMPRESSED:
        raise RtfError(f"unknown compressed RTF type {magic:#x}")
    if limit is None or limit >= raw_size:
        return _lzfu(data[16 : 4 + comp_size], raw_size)
    # A control byte and 8 items of at most 2 bytes give at least 8 bytes: 3 * limit input
    # bytes always make `limit` output bytes, so the rest of a large body is not copied.
    return _lzfu(data[16 : min(4 + comp_size, 16 + 3 * limit + 64)], limit)


_WINDOW = 4096
#: the output buffer starts as the initial window, seen from the first write position:
#: what the window holds "before" it (zeros, then the pre-loaded dictionary)
_START = bytes(_WINDOW - len(_PREBUF)) + _PREBUF
_SHIFT = len(_PREBUF)  # window position of out[i] is (i + _SHIFT) % _WINDOW


def _plan(control: int) -> tuple[int, ...]:
    """What a control byte says, as runs: n > 0 is n literal bytes, 0 one reference."""
    steps: list[int] = []
    run = 0
    for bit in range(8):
        if control & (1 << bit):
            steps += [run, 0] if run else [0]
            run = 0
        else:
            run += 1
    return (*steps, run) if run else tuple(steps)


@cache
def _plans() -> tuple[tuple[int, ...], ...]:
    """The 256 plans, made on first use: only the Python fallback needs them (the C twin
    decompresses on its own), and not at every start (issue 19)."""
    return tuple(_plan(c) for c in range(256))


def _lzfu_py(body: bytes, raw_size: int) -> bytes:
    """The output buffer itself is the sliding window: a reference's window offset becomes a
    distance back from the end, so a reference is one slice copy, and so is a literal run."""
    out = bytearray(_START)
    here, want = _WINDOW, _WINDOW + raw_size  # here == len(out)
    pos, end = 0, len(body)
    plans, shift = _plans(), _SHIFT  # locals: this loop runs once per token
    while pos < end and here < want:
        control = body[pos]
        pos += 1
        for step in plans[control]:
            if step:  # literals (the body may end inside the run)
                count = step if pos + step <= end else end - pos
                out += body[pos : pos + count]
                pos += count
                here += count
                continue
            if pos + 1 >= end:
                if pos >= end:
                    break
                raise RtfError("compressed RTF ends inside a reference")
            ref = body[pos] << 8 | body[pos + 1]
            pos += 2
            back = (here + shift - (ref >> 4)) & 0xFFF
            if back == 0:  # the reference points at the write position: the end marker
                return bytes(out[_WINDOW:want])
            length = (ref & 0xF) + 2
            if back >= length:
                out += out[here - back : here - back + length]
            else:  # overlaps its own output: a repeated run
                out += (out[here - back : here] * (length // back + 1))[:length]
            here += length
    return bytes(out[_WINDOW:want])


def _lzfu(body: bytes, raw_size: int) -> bytes:
    """LZFu in the C twin of `_lzfu_py` (converters/pst/_pstspeed.c) when it was built (see
    speedups), else in Python: the same bytes either way."""
    c = speedups.C
    if c is None:
        return _lzfu_py(body, raw_size)
    try:
        return c.lzfu(body, raw_size, _START, _SHIFT)
    except ValueError as e:
        raise RtfError(str(e)) from None


# --- tokenizer ------------------------------------------------------------

_TOKEN = re.compile(
    rb"(?P<open>\{)|(?P<close>\})"
    rb"|\\(?P<word>[a-zA-Z]{1,32})(?P<arg>-?\d{1,10})? ?"
    rb"|\\'(?P<hex>[0-9a-fA-F]{2})"
    rb"|\\(?P<sym>[^a-zA-Z])"
    rb"|(?P<crlf>[\r\n]+)"
    rb"|(?P<text>[^{}\\\r\n]+)"
)
# _TOKEN's groups by number (Match.lastindex): cheaper to test than names
_OPEN, _CLOSE, _WORD, _ARG, _HEX, _SYM, _CRLF, _TEXT = range(1, 9)
# Destinations whose content is never text.
_SKIP = frozenset(
    b"fonttbl colortbl stylesheet info pict object header footer listtable listoverridetable "
    b"rsidtbl generator themedata colorschememapping latentstyles datastore xmlnstbl "
    b"mhtmltag".split()
)


class _State:
    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    __slots__ = ("htmlrtf", "htmltag", "skip", "uc")

    def __init__(self, skip: bool = False, htmltag: bool = False, htmlrtf: bool = False,
                 uc: int = 1) -> None:
        self.skip, self.htmltag, self.htmlrtf, self.uc = skip, htmltag, htmlrtf, uc


def is_html_rtf(rtf: bytes) -> bool:
    """True when the RTF encapsulates HTML (\\fromhtml1 in its header)."""
    return b"\\fromhtml1" in rtf[:1024]


def is_text_rtf(rtf: bytes) -> bool:
    """True when the RTF was generated from the plain-text body (\\fromtext)."""
    return b"\\fromtext" in rtf[:1024]


def rtf_codepage(rtf: bytes) -> str:
    m = re.search(rb"\\ansicpg(\d+)", rtf[:1024])
    return f"cp{int(m.group(1))}" if m else "cp1252"


def deencapsulate_html(rtf: bytes) -> str:
    """Recover the HTML from \\fromhtml1 RTF (MS-OXRTFEX 2.1.3)."""
    if not is_html_rtf(rtf):
        raise RtfError("RTF does not encapsulate HTML")
    codec = rtf_codepage(rtf)
    try:
        "".encode(codec)
    except LookupError:
        codec = "cp1252"
    if speedups.C is not None:  # the C twin: same tokens, same states, same decoding
        return speedups.C.deencapsulate(rtf, codecs.getdecoder(codec))
    return _Deencapsulator(codec).run(rtf)


class _Deencapsulator:
    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.out: list[str] = []
        self.pending = bytearray()  # \'hh bytes, decoded together (DBCS code pages)
        self.stack: list[_State] = []
        self.state = _State()
        self.visible = True  # kept in step with `state`: tested for every piece of text
        self.skip_chars = 0  # characters still to drop after \uN
        self.expect_dest = False  # just saw "{\*"

    def _set(self, state: _State) -> None:
        self.state = state
        self.visible = not state.skip and (state.htmltag or not state.htmlrtf)

    def run(self, rtf: bytes) -> str:
        out, codec = self.out, self.codec
        for m in _TOKEN.finditer(rtf):
            kind = m.lastindex  # the innermost group: _ARG for a control word with a number
            if kind == _CRLF:
                continue
            if kind == _HEX:
                self._hex(int(m[_HEX], 16))
                continue
            if self.pending:
                self._flush()
            if kind == _TEXT:
                self.expect_dest = False
                if self.skip_chars:
                    self._emit(m[_TEXT].decode(codec, "replace"))
                elif self.visible:  # hidden text needs no decoding
                    out.append(m[_TEXT].decode(codec, "replace"))
            elif kind in (_WORD, _ARG):
                self._word(m[_WORD], m[_ARG])
            elif kind == _OPEN:
                self.stack.append(self.state)
                self.expect_dest = False
            elif kind == _CLOSE:
                self._set(self.stack.pop() if self.stack else self.state)
            elif kind == _SYM:
                self._sym(m[_SYM])
        self._flush()
        return "".join(out)

    def _emit(self, s: str) -> None:
        if self.skip_chars:
            drop = min(self.skip_chars, len(s))
            self.skip_chars -= drop
            s = s[drop:]
        if s and self.visible:
            self.out.append(s)

    def _flush(self) -> None:
        if self.pending:
            data, self.pending = bytes(self.pending), bytearray()
            if self.visible:
                self.out.append(data.decode(self.codec, "replace"))

    def _hex(self, byte: int) -> None:
        if self.skip_chars:
            self.skip_chars -= 1
        elif self.visible:
            self.pending.append(byte)

    def _sym(self, sym: bytes) -> None:
        if sym == b"*":
            self.expect_dest = True
            return
        self.expect_dest = False
        literal = {b"\\": "\\", b"{": "{", b"}": "}", b"~": "\xa0", b"_": "-", b"-": ""}
        if sym in literal:
            self._emit(literal[sym])

    def _word(self, word: bytes, arg: bytes | None) -> None:
        dest, self.expect_dest = self.expect_dest, False
        if word == b"par" and not dest:  # by far the most frequent word: test it first
            self._emit("\r\n")
            return
        num = int(arg) if arg else None
        st = self.state
        if word == b"htmltag":
            self._set(_State(st.skip, True, st.htmlrtf, st.uc))
        elif dest or word in _SKIP:
            self._set(_State(True, st.htmltag, st.htmlrtf, st.uc))
        elif word == b"htmlrtf":
            self._set(_State(st.skip, st.htmltag, num != 0, st.uc))
        elif word == b"uc" and num is not None:
            self._set(_State(st.skip, st.htmltag, st.htmlrtf, max(num, 0)))
        elif word == b"u" and num is not None:
            self._emit(chr(num % 65536))
            self.skip_chars = st.uc
        elif word in (b"par", b"line"):
            self._emit("\r\n")
        elif word == b"tab":
            self._emit("\t")
