"""The copy report in words (`charrnn copies`, `charrnn sample --copies`)."""
from __future__ import annotations

import os

SHOWN = 60      # characters of the longest copy quoted in words


def _quote(text: str) -> str:
    q = text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."
    return '"' + q.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r") \
        .replace("\t", "\\t").replace('"', '\\"') + '"'


def where(longest: dict) -> str:
    """'line 1,204 of corpus/a.txt', or 'offset 1,234 of the training text'."""
    if longest.get("file"):
        return f"{os.path.basename(longest['file'])} line {longest['line']:,}"
    return f"training text line {longest['text_line']:,}"


def longest_words(r: dict) -> str:
    lg = r["longest"]
    if lg is None:
        return f"none of {r['min_len']} characters or more"
    return (f"{lg['length']:,} characters at sample offset {lg['sample_offset']:,}, from "
            f"{where(lg)} (training text offset {lg['text_offset']:,}): {_quote(lg['text'])}")


def share_words(r: dict) -> str:
    return (f"{r['copied_chars']:,} of {r['chars']:,} characters ({r['copied_share']:.1%}) lie "
            f"in spans of {r['min_len']} or more characters found verbatim in the training text")


def format_report(r: dict) -> str:
    """The report of `charrnn copies` (see api.verbs.copies), one fact a line."""
    text = ", ".join(r["training_text"])
    ck = f" (the text {r['checkpoint']} was trained on)" if r.get("checkpoint") else ""
    return "\n".join([
        f"sample        {r['file']}: {r['chars']:,} characters",
        f"training text {text}: {r['training_chars']:,} characters{ck}",
        f"longest copy  {longest_words(r)}",
        f"copied        {share_words(r)}",
    ])


def sample_line(r: dict, k: int | None = None) -> str:
    """One stderr line for `charrnn sample --copies` (k: the sample's number
    when there are several)."""
    head = "copies" if k is None else f"copies in sample {k}"
    lg = r["longest"]
    longest = (f"longest {lg['length']:,} characters ({where(lg)})" if lg is not None
               else f"no copy of {r['min_len']}+ characters")
    return (f"{head}: {longest}; {r['copied_share']:.1%} of {r['chars']:,} characters in "
            f"copies of {r['min_len']}+ characters")
