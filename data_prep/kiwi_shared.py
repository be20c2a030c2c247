"""One Kiwi analyser per process, shared by every stage that segments Korean.

Loading Kiwi's model costs about 1–1.5 CPU-seconds and ~100 MB per instance; the heuristics
stage (:class:`data_prep.filters.text_stats.Segmenter`) and the PII name/address rules
(:class:`data_prep.pii.names.NameAddressFinder`) used to load one each. Both use the same
settings (kiwipiepy's default ``cong`` model, ``num_workers=-1``), so one instance gives them
exactly the tokens two instances would. The instance is keyed by process id: a worker forked
after the parent built one (datatrove's local executor forks) builds its own rather than
inheriting a copy whose worker threads did not survive the fork.
"""
from __future__ import annotations

import os
import threading

_LOCK = threading.Lock()
_KIWI: dict[int, object] = {}


def shared_kiwi():
    """This process's ``kiwipiepy.Kiwi(num_workers=-1)``, built on first use.

    Raises ``ImportError`` when kiwipiepy is not installed (the ``[data]`` extra).
    """
    pid = os.getpid()
    kiwi = _KIWI.get(pid)
    if kiwi is None:
        with _LOCK:
            kiwi = _KIWI.get(pid)
            if kiwi is None:
                from kiwipiepy import Kiwi

                _KIWI.clear()  # a parent's instance is of no use in this process
                kiwi = _KIWI[pid] = Kiwi(num_workers=-1)
    return kiwi
