"""IFEval's instruction checkers (lm-eval ``lm_eval/tasks/ifeval/instructions.py``) adapted to Korean.

Every instruction id of IFEval keeps lm-eval's checker class, arguments and description; where the
English checker measures Korean text wrongly, a subclass overrides only ``check_following`` (or
``build_description`` where it throws the Korean argument away):

===================================================  =============================================
instruction id                                       Korean adaptation
===================================================  =============================================
``length_constraints:number_words``                  counts 어절, not ``\\w+`` pieces
``length_constraints:number_sentences``              Kiwi sentence splitter (endings, not only
                                                     ``.?!``); NLTK Punkt English is not used
``length_constraints:nth_paragraph_first_word``      first 어절 may carry particles (``서울은``)
``keywords:forbidden_words``                         a forbidden noun followed by a particle
                                                     counts (``\\b사과\\b`` misses ``사과를``)
``keywords:letter_frequency``                        Hangul syllables and jamo are letters
                                                     (lm-eval swaps a non a-z letter for a random
                                                     English one)
===================================================  =============================================

Korean-specific instructions (ours; ids and kwargs documented on each class):
``length_constraints:number_characters`` (글자 수, with or without spaces) and
``ko:speech_level`` (존댓말 / 반말 throughout).
"""
from __future__ import annotations

import re

from lm_eval.tasks.ifeval import instructions as upstream
from lm_eval.tasks.ifeval import instructions_registry as upstream_registry

from evaluation.ko_ifeval import korean

RELATIONS = ("less than", "at least")  # lm-eval's _COMPARISON_RELATION


def _compare(count: int, relation: str, threshold: int) -> bool:
    if relation == RELATIONS[0]:
        return count < threshold
    if relation == RELATIONS[1]:
        return count >= threshold
    raise ValueError(f"relation must be one of {RELATIONS}, not {relation!r}")


class NumberOfEojeol(upstream.NumberOfWords):
    """``length_constraints:number_words`` on 어절 (:func:`korean.count_eojeol`)."""

    def check_following(self, value: str) -> bool:
        return _compare(korean.count_eojeol(value), self._comparison_relation, self._num_words)


class NumberOfKoreanSentences(upstream.NumberOfSentences):
    """``length_constraints:number_sentences`` with Kiwi's splitter (:func:`korean.count_sentences`)."""

    def check_following(self, value: str) -> bool:
        return _compare(korean.count_sentences(value), self._comparison_relation, self._num_sentences_threshold)


class KoreanParagraphFirstWord(upstream.ParagraphFirstWordCheck):
    """``length_constraints:nth_paragraph_first_word``: paragraphs split on a blank line as in
    lm-eval; the nth paragraph's first 어절 must be ``first_word`` plus at most particles/endings."""

    def check_following(self, value: str) -> bool:
        paragraphs = [p.strip() for p in re.split(r"\n\n", value)]
        if len([p for p in paragraphs if p]) != self._num_paragraphs:
            return False
        if self._nth_paragraph > len(paragraphs) or not paragraphs[self._nth_paragraph - 1]:
            return False
        first = paragraphs[self._nth_paragraph - 1].split()[0]
        return korean.first_word_matches(first, self._first_word)


class KoreanForbiddenWords(upstream.ForbiddenWords):
    """``keywords:forbidden_words``: a Hangul word is found at the start of any 어절."""

    def check_following(self, value: str) -> bool:
        return not any(korean.contains_word(value, word) for word in self._forbidden_words)


class KoreanLetterFrequency(upstream.LetterFrequencyChecker):
    """``keywords:letter_frequency`` where ``letter`` may be a Hangul syllable or a jamo."""

    def build_description(self, *, letter=None, let_frequency=None, let_relation=None):
        text = super().build_description(letter=letter, let_frequency=let_frequency, let_relation=let_relation)
        if letter and len(letter.strip()) == 1 and not letter.strip().isascii():
            self._letter = letter.strip()  # lm-eval replaced it by a random a-z letter
            text = self._description_pattern.format(letter=self._letter, let_frequency=self._frequency,
                                                    let_relation=self._comparison_relation)
        return text

    def check_following(self, value: str) -> bool:
        return _compare(korean.count_letter(value, self._letter), self._comparison_relation, self._frequency)


class NumberOfCharacters(upstream.Instruction):
    """``length_constraints:number_characters`` (ours): "N자 미만/이상으로 쓰세요".

    kwargs: ``num_characters`` (int), ``relation`` ("less than" | "at least"), ``include_spaces``
    (bool, default False = "공백 제외", the usual Korean reading of a character limit).
    Line breaks never count (:func:`korean.count_characters`).
    """

    def build_description(self, *, num_characters=None, relation=None, include_spaces=None):
        if num_characters is None or relation not in RELATIONS:
            raise ValueError("length_constraints:number_characters needs num_characters and a relation "
                             f"in {RELATIONS}")
        self._num_characters, self._relation = int(num_characters), relation
        self._include_spaces = bool(include_spaces)
        spaces = "공백 포함" if self._include_spaces else "공백 제외"
        bound = "미만" if relation == RELATIONS[0] else "이상"
        return f"답변은 {spaces} {self._num_characters}자 {bound}이어야 합니다."

    def get_instruction_args(self):
        return {"num_characters": self._num_characters, "relation": self._relation,
                "include_spaces": self._include_spaces}

    def get_instruction_args_keys(self):
        return ["num_characters", "relation", "include_spaces"]

    def check_following(self, value: str) -> bool:
        count = korean.count_characters(value, include_spaces=self._include_spaces)
        return _compare(count, self._relation, self._num_characters)


class SpeechLevel(upstream.Instruction):
    """``ko:speech_level`` (ours): every sentence in 존댓말 (``speech_level="polite"``: 합쇼체 or
    해요체) or in 반말/해라체 (``"plain"``). Sentences without a final ending (list items ending
    in a noun, code, English) are not judged; a response with no judged sentence fails."""

    LEVELS = ("polite", "plain")

    def build_description(self, *, speech_level=None):
        if speech_level not in self.LEVELS:
            raise ValueError(f"ko:speech_level needs speech_level in {self.LEVELS}, not {speech_level!r}")
        self._speech_level = speech_level
        return "모든 문장을 존댓말로 쓰세요." if speech_level == "polite" else "모든 문장을 반말로 쓰세요."

    def get_instruction_args(self):
        return {"speech_level": self._speech_level}

    def get_instruction_args_keys(self):
        return ["speech_level"]

    def check_following(self, value: str) -> bool:
        judged = [p for p in map(korean.sentence_is_polite, korean.split_sentences(value)) if p is not None]
        want = self._speech_level == "polite"
        return bool(judged) and all(p == want for p in judged)


KOREAN_OVERRIDES: dict[str, type[upstream.Instruction]] = {
    "length_constraints:number_words": NumberOfEojeol,
    "length_constraints:number_sentences": NumberOfKoreanSentences,
    "length_constraints:nth_paragraph_first_word": KoreanParagraphFirstWord,
    "keywords:forbidden_words": KoreanForbiddenWords,
    "keywords:letter_frequency": KoreanLetterFrequency,
}
KOREAN_ONLY: dict[str, type[upstream.Instruction]] = {
    "length_constraints:number_characters": NumberOfCharacters,
    "ko:speech_level": SpeechLevel,
}
# lm-eval's registry, Korean checkers where they differ, plus the Korean-only instructions.
INSTRUCTION_DICT: dict[str, type[upstream.Instruction]] = {
    **upstream_registry.INSTRUCTION_DICT, **KOREAN_OVERRIDES, **KOREAN_ONLY}
