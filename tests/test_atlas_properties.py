"""Property tests (hypothesis): random bytes and text end in a typed error or a correct result, never a crash."""

from __future__ import annotations

import re
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_bridge import atc
from atlas_bridge.errors import OmFileError
from atlas_bridge.text import inert
from tests import reliability

OM = ".om headers (board upload)"
ATC = "ATC output text"
reliability.describe(OM, "the parsed header when its lengths fit the file, else OmFileError saying why")
reliability.describe(ATC, "the error codes with their text and solution, free of control characters")

CODE = re.compile(r"^E[A-Z0-9]{5}$")
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


@settings(max_examples=300, deadline=None)
@given(head=st.binary(max_size=300), file_size=st.integers(min_value=0, max_value=2**66))
def test_random_bytes_give_a_header_or_an_om_file_error(head, file_size):
    header = reliability.check(OM, lambda: atc.check_om_header(head, file_size), (OmFileError,))
    if isinstance(header, OmFileError):
        assert str(header)
        return
    assert head[:4] == b"IMOD" and len(head) >= 256
    assert header.payload == file_size - 256 and header.payload in (header.model_length, header.length)


@settings(max_examples=200, deadline=None)
@given(
    payload=st.integers(min_value=0, max_value=2**40),
    layout=st.sampled_from(["current", "legacy"]),
    v2=st.booleans(),
    noise=st.binary(min_size=256, max_size=256),
    delta=st.integers(min_value=-5, max_value=5),
)
def test_a_header_is_accepted_exactly_when_its_payload_fits(payload, layout, v2, noise, delta):
    if layout == "legacy":
        payload %= 2**32
    version = 0x20000000 if v2 else 0x10000000
    shift = 0 if v2 else -4
    head = bytearray(noise)
    head[:4] = b"IMOD"
    struct.pack_into("<I", head, 8, version)
    struct.pack_into("<Q", head, 184 + shift, payload if layout == "current" else 0)
    struct.pack_into("<I", head, 76, 0 if layout == "current" else payload)
    file_size = 256 + payload + delta
    header = reliability.check(OM, lambda: atc.check_om_header(bytes(head), file_size), (OmFileError,))
    if isinstance(header, OmFileError):
        assert delta != 0 or file_size < 256
        return
    assert delta == 0 and header.payload == payload
    assert header.layout == (layout if payload else "legacy")  # both lengths 0: nothing says "current"
    assert (header.model_num is not None) == v2


text_line = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(text_line, max_size=20))
def test_random_atc_output_parses_to_codes_without_control_characters(lines):
    errors = reliability.check(ATC, lambda: atc.parse_atc_errors(lines), ())
    for error in errors:
        assert isinstance(error, atc.AtcMessage)
        assert CODE.match(error.code) and any(c.isdigit() for c in error.code)
        for text in (error.text, error.solution, error.cause):
            assert not CONTROL.search(text)
    assert len({(e.code, e.text) for e in errors}) == len(errors)


@settings(max_examples=200, deadline=None)
@given(
    code=st.from_regex(r"E[A-Z0-9]{5}", fullmatch=True).filter(lambda c: any(ch.isdigit() for ch in c)),
    text=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=60),
    solution=st.text(alphabet="abc ABC.,-1", max_size=40),
    prefix=st.sampled_from(["", "[PID: 12] 2025-03-18-09:02:18.501.341 ", "[ERROR] "]),
)
def test_a_printed_code_is_found_with_its_text_and_solution(code, text, solution, prefix):
    lines = [
        "ATC run failed, Please check the detail log",
        f"{prefix}{code}: {text}",
        f"        Solution: {solution}",
    ]
    errors = reliability.check(ATC, lambda: atc.parse_atc_errors(lines), ())
    assert errors[0].code == code
    assert errors[0].text == inert(text).strip()
    assert errors[0].solution == solution.strip()
