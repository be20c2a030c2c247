"""The shared Hangul check counts every letter once, by script."""
from __future__ import annotations

import re

from data_prep.hangul import ScriptCounts, count_scripts, hangul_ratio, script_language


def test_count_scripts_counts_letters_one_by_one():
    text = "ㅋㅋ 한글abc ᄒᆞᆫ글 Ünïcode ²³ 漢字 _x_ 1234 테스트!!"
    hangul = sum("\uac00" <= c <= "\ud7a3" or "\u1100" <= c <= "\u11ff" or "\u3130" <= c <= "\u318f" for c in text)
    latin = sum(c.isascii() and c.isalpha() for c in text)
    letters = sum(re.fullmatch(r"[^\W\d_]", c) is not None for c in text)  # ² and ³ too (see hangul.py)
    assert count_scripts(text) == ScriptCounts(hangul, latin, letters) == ScriptCounts(11, 9, 26)
    assert hangul_ratio(text) == (11 / 26, 26) and script_language(text) == "ko"
    assert count_scripts("") == ScriptCounts(0, 0, 0) and script_language("1234 !!") == "other"
