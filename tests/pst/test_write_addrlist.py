"""The address-list fast path (addrlist.py) gives exactly what email.utils.getaddresses
gives, for plain lists it reads itself and for everything it hands over."""

from __future__ import annotations

from email.utils import getaddresses

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pstkit.converters.pst.write.addrlist import _plain, addresses

_name_char = st.sampled_from([*"abcXYZ019 \t.üé日'-_!", "\xa0", "\x0b"])
_odd_char = st.sampled_from(list('"()\\[];:<>@,\r\n'))
_atom = st.text(st.sampled_from(list("abz09+_-'=~")), min_size=1, max_size=5)
_addr = st.builds(lambda loc, dom: ".".join(loc) + "@" + ".".join(dom),
                  st.lists(_atom, min_size=1, max_size=3),
                  st.lists(st.text(st.sampled_from(list("abcZ09-")), min_size=1, max_size=4),
                           min_size=1, max_size=3))
_space = st.sampled_from(["", " ", "  ", "\t", "\r\n ", "\n\t"])
_quoted_char = st.one_of(_name_char, st.sampled_from(list(',;:()<>@[]"\\\r\n')))
_entry = st.one_of(
    _addr,
    st.builds(lambda n, a, sp: f"{n}{sp}<{a}>", st.text(_name_char, max_size=12), _addr,
              _space),
    st.builds(lambda n, a, sp, sp2: f'{sp}"{n}"{sp2}<{a}>', st.text(_quoted_char, max_size=12),
              _addr, _space, _space),
    st.text(st.one_of(_name_char, _odd_char, st.sampled_from(list("@<>a."))), max_size=15),
)
_value = st.builds(lambda es, seps: "".join(e + s for e, s in zip(es, seps, strict=False)),
                   st.lists(_entry, min_size=0, max_size=4),
                   st.lists(st.sampled_from([",", ", ", " ,", ",\t", "", ",\r\n ", " "]),
                            min_size=4,
                            max_size=4))
PLAIN = ["a@b.com", "Jürgen  Müller <j.m@x-y.de>", "a@b, C. D <c.d@e.f>", "<x@y>",
         "\tName\t<n+tag@ex.org> ,o'k@x.io", "J.Smith<js@x.com>", '"Smith, John" <j@x>',
         '"R B" <u@e.net>, "R B"\n <v@e.net>', '"" <a@b>', '" spaced  out " <a@b>',
         "Folded\r\n Name <a@b>"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(_value, min_size=0, max_size=3))
@example(PLAIN)
@example(["a@b,", "Smith, John <j@x>"])
@example(['"Smith, John" <j@x>', "a@[1.2.3.4]", "(c) a@b", "g: a@b;", '"a"b <c@d>'])
@example(['"x\ry" <a@b>', '"x\ny" <a@b>', '"a" "b" <c@d>', '"a"<b@c>', " ", "a@b,  "])
@example(["a@b <c@d>", "n@m <x@y>", "<a@b> x", "a <b@c> <d@e>", "\xa0<a@b>"])
@example(["<a .b@c>", "N <a@b .c>", "<a..b@c>", "<.a@b>", "<a@>", "<@b>", "<a b@c>"])
def test_same_as_getaddresses(values: list[str]) -> None:
    assert addresses(values) == getaddresses(values)
    for value in values:  # one odd value sends the whole list to getaddresses
        assert addresses([value]) == getaddresses([value]), value


def test_plain_lists_do_not_go_to_getaddresses() -> None:
    """The lists the fast path is for are read by it (else it would save nothing)."""
    for value in PLAIN:
        assert _plain([value]) == getaddresses([value]), value
    assert _plain(['"Sm\\"ith" <j@x>']) is None  # an escape: getaddresses reads it
    assert _plain(["a@b,"]) is None  # an empty entry
    assert _plain(["(comment) a@b"]) is None
