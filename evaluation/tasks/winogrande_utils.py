"""WinoGrande partial scoring (same scheme as lm-eval's winogrande task) for the Korean copy.

The *choice* is the context up to the blank filled with an option and the *target* is the text
after the blank, so both options are compared on the log-likelihood of the same continuation.
"""


def doc_to_text(doc: dict) -> int:
    return {"1": 0, "2": 1}[str(doc["answer"]).strip()]


def doc_to_target(doc: dict) -> str:
    idx = doc["sentence"].index("_") + 1
    return doc["sentence"][idx:].strip()


def doc_to_choice(doc: dict) -> list[str]:
    idx = doc["sentence"].index("_")
    return [doc["sentence"][:idx] + option for option in (doc["option1"], doc["option2"])]
