"""Prompt templates: textbook rewrites, Q&A generation, translation (Korean-first).

Rewrites follow the "textbook quality" idea (phi-1 / Cosmopedia / Nemotron-CC rephrasing):
restate the *facts* of a filtered web page as clear, well-structured explanatory prose, to
make up for the volume that filtering removes without copying its noise.
"""
from __future__ import annotations

SYSTEM = "당신은 한국어와 영어에 능통한 교육 콘텐츠 작가입니다. 사실만 사용하고 없는 내용을 지어내지 마세요."

TEMPLATES = {
    "rewrite": ("다음 글의 핵심 내용을 교과서처럼 명확하고 체계적인 한국어 설명문으로 다시 써 주세요. "
                "개인정보 토큰(#@이름@# 등)은 그대로 두세요.\n\n[글]\n{text}"),
    "qa": ("다음 글을 읽고, 글의 내용만으로 답할 수 있는 질문과 답 3쌍을 한국어로 만들어 주세요. "
           "형식: 'Q: …' 다음 줄에 'A: …'.\n\n[글]\n{text}"),
    "translate": ("Translate the following text into {target}. Keep placeholders like #@이름@# unchanged and "
                  "output only the translation.\n\n{text}"),
}


def messages_for(task: str, text: str, hangul_ratio: float) -> list[dict]:
    target = "English" if hangul_ratio >= 0.5 else "Korean (한국어)"
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": TEMPLATES[task].format(text=text, target=target)}]
