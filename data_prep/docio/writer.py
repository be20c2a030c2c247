"""JSONL writers that give back exactly the user's fields (datatrove nests them under ``metadata``)."""
from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.writers.jsonl import JsonlWriter


def flat_record(document: Document) -> dict:
    """``{"id", "text", **other fields}`` — the input schema, plus our ``_midm`` annotations."""
    meta = dict(document.metadata)
    if meta.pop("_midm_generated_id", False):
        meta["_midm_generated_id"] = True
    return {"id": document.id, "text": document.text, **meta}


class FlatJsonlWriter(JsonlWriter):
    """``JsonlWriter`` whose records keep the input's flat schema; one file per rank."""

    def __init__(self, output_folder, output_filename: str = "${rank}.jsonl.gz"):
        super().__init__(output_folder, output_filename=output_filename, compression="gzip")

    def _default_adapter(self, document: Document) -> dict:
        return flat_record(document)


class RejectWriter(JsonlWriter):
    """Writes dropped documents with the stage and reason that dropped them."""

    def __init__(self, output_folder, stage: str, reason: str | None = None):
        name = f"{stage}/{reason}_${{rank}}.jsonl.gz" if reason else f"{stage}/${{rank}}.jsonl.gz"
        super().__init__(output_folder, output_filename=name, compression="gzip")
        self.stage = stage
        self.reason = reason

    def _default_adapter(self, document: Document) -> dict:
        record = flat_record(document)
        record["_midm_reject"] = {"stage": self.stage,
                                  "reason": document.metadata.get("_midm_reason", self.reason)}
        record.pop("_midm_reason", None)
        return record
