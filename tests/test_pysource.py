"""Python files are decoded as Python decodes them and encoded back the same way."""

from __future__ import annotations

import pytest

from freezegen.pysource import CannotEncode, encode_source, source_encoding

LATIN1 = "# -*- coding: latin-1 -*-\n# café\nx = 1\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"x = 1\n", "utf-8"),
        (b"\xef\xbb\xbfx = 1\n", "utf-8-sig"),
        (LATIN1.encode("latin-1"), "iso-8859-1"),
        (b"#!/usr/bin/env python\n# vim: set fileencoding=cp1252 :\n", "cp1252"),
    ],
)
def test_the_encoding_python_reads_a_file_with(data, encoding):
    assert source_encoding(data) == encoding
    assert encode_source(data.decode(encoding), encoding) == data  # a round trip, BOM and all


def test_an_unknown_declaration_is_a_syntax_error():
    with pytest.raises(SyntaxError):
        source_encoding(b"# coding: no-such-codec\n")


def test_a_character_the_encoding_cannot_hold_is_named_with_its_line():
    with pytest.raises(CannotEncode) as refusal:
        encode_source(LATIN1 + "y = 'модель'\n", "iso-8859-1")
    assert str(refusal.value) == (
        "line 4 would hold 'м' (U+043C), which the file's encoding (iso-8859-1) cannot represent"
    )
