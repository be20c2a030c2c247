"""Build the shipped lexicons (configs/lexicons/*.txt) from ../shared/data/lexicons.

Sources (all permissive, see configs/lexicons/ATTRIBUTION.md): badwords-ko (MIT), LDNOOBW v1
ko/en (CC BY 4.0, C4's list), purism harmful words (MIT), plus our own gambling/adult spam
terms. Terms shorter than two characters are left out (too many false hits).
"""
from __future__ import annotations

import json
from pathlib import Path

OUR_SPAM = ["카지노", "바카라", "토토사이트", "사설토토", "먹튀검증", "슬롯머신", "온라인카지노", "파워볼", "홀덤",
            "스포츠토토", "안전놀이터", "메이저사이트", "첫충", "매충", "꽁머니", "출장안마", "출장마사지", "조건만남",
            "성인용품", "비아그라", "대출문의", "급전", "무직자대출", "텔레그램", "카톡상담"]


def _clean(words) -> list[str]:
    return sorted({w.strip() for w in words if isinstance(w, str) and len(w.strip()) >= 2})


def build_lexicons(data: str, out: str | None = None) -> int:
    lex = Path(data) / "lexicons"
    out_dir = Path(out) if out else Path(__file__).resolve().parents[1] / "configs" / "lexicons"
    out_dir.mkdir(parents=True, exist_ok=True)
    ko = json.loads((lex / "badwords_ko_npm" / "badwords.ko.config.json").read_text(encoding="utf-8"))["badWords"]
    ko += (lex / "ldnoobw_v1" / "ko").read_text(encoding="utf-8").splitlines()
    ko += (lex / "purism" / "harmful_words.txt").read_text(encoding="utf-8").splitlines()
    en = (lex / "ldnoobw_v1" / "en").read_text(encoding="utf-8").splitlines()
    spam = list(OUR_SPAM)  # purism's spam_words.txt is mostly navigation boilerplate (로그인, 댓글 …): not used
    for name, words in (("ko_profanity.txt", ko), ("en_profanity.txt", en), ("ko_spam.txt", spam)):
        (out_dir / name).write_text("\n".join(_clean(words)) + "\n", encoding="utf-8")
        print(f"wrote {out_dir / name} ({len(_clean(words))} terms)")
    return 0
