"""From the paths a user gives (files, folders, '-') to one training text.

Folders are read recursively, their files in a stable order: sorted by
relative path, component by component, by code point (the same order on
every filesystem, whatever order the folder lists them in).  Inside a folder,
hidden entries (a name starting with '.') are skipped, and so are files that
look binary (sniff.looks_binary on their first bytes), links to folders
(they could loop), things that are not regular files and files that cannot
be opened: one ``on_skip(path, why)`` call each.  A file named on the
command line is always read.

Each file is a document.  How the documents become one text is a Reading:

- newlines "lf" (the default): CRLF and lone CR line endings become LF;
  "keep": line endings stay as they are in the files;
- a UTF-8 byte order mark (U+FEFF) at the start of a document is dropped
  (it marks the encoding; it is not text);
- each document starts on a new line: a line break is put after a document
  that does not end with one (only between documents: the last one is left
  as it ends);
- doc_separator S, when set, stands between documents, on its own line: S,
  then a line break unless S ends with one.

Checkpoints from before documents were joined this way read their files
concatenated exactly as decoded (LEGACY), so a resumed old run sees the
text it trained on.
"""
from __future__ import annotations

import codecs
import os
import stat
from dataclasses import dataclass
from typing import Callable, Iterator

from charrnn.errors import DataError
from charrnn.text import data
from charrnn.text.sniff import SNIFF_BYTES, looks_binary

NEWLINES = ("lf", "keep")
BOM = "\ufeff"


@dataclass(frozen=True)
class Reading:
    """How files become one text (see the module's docstring)."""
    newlines: str = "lf"
    doc_separator: str | None = None
    joined: bool = True        # False: files concatenated as decoded (LEGACY)

    def record(self) -> dict | None:
        """What a checkpoint stores (config data.reading); None for LEGACY."""
        if not self.joined:
            return None
        return {"newlines": self.newlines, "doc_separator": self.doc_separator}

    @staticmethod
    def from_record(rec) -> "Reading":
        """The Reading a checkpoint recorded; LEGACY when it recorded none.
        ValueError for a record that is not one."""
        if rec is None:
            return LEGACY
        if not isinstance(rec, dict) or rec.get("newlines") not in NEWLINES:
            raise ValueError("bad reading record")
        sep = rec.get("doc_separator")
        if sep is not None and not (isinstance(sep, str) and sep):
            raise ValueError("bad doc_separator")
        return Reading(rec["newlines"], sep)

    def joiner(self, prev_tail: str) -> str:
        """What goes between a document ending in prev_tail and the next."""
        nl = "\r\n" if self.newlines == "keep" and prev_tail.endswith("\r\n") else "\n"
        out = "" if prev_tail.endswith(("\n", "\r")) else nl
        if self.doc_separator:
            s = self.doc_separator
            out += s if s.endswith(("\n", "\r")) else s + nl
        return out


LEGACY = Reading(newlines="keep", doc_separator=None, joined=False)


def describe(reading: Reading) -> str:
    """'newlines lf, separator '<eot>'' for messages."""
    if not reading.joined:
        return "files concatenated as decoded (a checkpoint from before folders)"
    sep = f", separator {reading.doc_separator!r}" if reading.doc_separator else ""
    return f"newlines {reading.newlines}{sep}"


# ------------------------------------------------------------ listing
@dataclass
class Listing:
    """The files to read, in order, and what was skipped as (path, why)."""
    files: list
    skipped: list


def list_files(paths, encoding: str = "utf-8",
               on_skip: Callable[[str, str], None] | None = None) -> Listing:
    """The files named by paths, folders expanded (see the module's docstring).

    A folder from which no file is taken is a DataError saying why (empty,
    only hidden, only binary or unreadable files).  Files and '-' are taken
    as given; whether they can be read is found when they are read."""
    sniff = _sniffs(encoding)
    files, skipped = [], []
    for p in paths:
        if p != data.STDIN and os.path.isdir(p):
            taken, skips = _folder(p, sniff)
            for path, why in skips:
                skipped.append((path, why))
                if on_skip is not None:
                    on_skip(path, why)
            if not taken:
                raise DataError(_nothing_to_read(p, skips))
            files.extend(taken)
        else:
            files.append(p)
    return Listing(files, skipped)


def _sniffs(encoding: str) -> bool:
    """False for the encodings whose text is full of NUL bytes (UTF-16, UTF-32)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return True
    return not name.startswith(("utf-16", "utf-32"))


def _nothing_to_read(folder: str, skips) -> str:
    if not skips:
        return f"{folder}: the folder holds no files; give a folder of text files"
    kinds = {}
    for _, why in skips:
        kind = why.split(" (")[0].split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    if set(kinds) == {"looks binary"}:
        n = kinds["looks binary"]
        return (f"{folder}: {'its only file looks' if n == 1 else f'all {n} of its files look'} "
                f"binary (a NUL byte in the first {SNIFF_BYTES:,} bytes); give a folder of "
                f"text files")
    if set(kinds) == {"hidden"}:
        return (f"{folder}: holds only hidden entries (names starting with '.'), which are "
                f"skipped; give a folder of text files")
    if set(kinds) == {"cannot read"}:
        return (f"{folder}: none of its files can be read (see the lines above); check "
                f"their permissions")
    said = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return f"{folder}: no text file to read ({said}); give a folder of text files"


def _folder(root: str, sniff: bool):
    """(files in order, [(path, why)] in the same order) under root."""
    entries = []                         # (relative parts, path, why or None)
    _walk(root, (), entries)
    entries.sort(key=lambda e: e[0])
    taken, skips = [], []
    for _, path, why in entries:
        if why is None:
            why = _sniff(path) if sniff else _openable(path)
        if why is None:
            taken.append(path)
        else:
            skips.append((path, why))
    return taken, skips


def _walk(folder: str, parts: tuple, out: list):
    try:
        with os.scandir(folder) as it:
            listed = list(it)
    except OSError as e:
        if not parts:
            raise DataError(f"{folder}: cannot read the folder ({e.strerror})")
        out.append((parts, folder + os.sep, f"cannot read ({e.strerror})"))
        return
    for entry in listed:
        rel = parts + (entry.name,)
        if entry.name.startswith("."):
            is_dir = _is_dir(entry)
            out.append((rel, entry.path + (os.sep if is_dir else ""), "hidden"))
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                _walk(entry.path, rel, out)
                continue
            if entry.is_symlink() and entry.is_dir():
                out.append((rel, entry.path, "a link to a folder, not followed"))
                continue
            st = os.stat(entry.path)
        except OSError as e:
            out.append((rel, entry.path, f"cannot read ({e.strerror})"))
            continue
        if not stat.S_ISREG(st.st_mode):
            out.append((rel, entry.path, "not a regular file"))
        else:
            out.append((rel, entry.path, None))


def _is_dir(entry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _sniff(path: str) -> str | None:
    """Why the file is skipped, or None to read it."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        return f"cannot read ({e.strerror})"
    if looks_binary(head):
        return f"looks binary: a NUL byte in its first {SNIFF_BYTES:,} bytes"
    return None


def _openable(path: str) -> str | None:
    try:
        with open(path, "rb"):
            return None
    except OSError as e:
        return f"cannot read ({e.strerror})"


# ------------------------------------------------------------ reading
def iter_document(path: str, encoding: str = "utf-8", errors: str = "strict",
                  reading: Reading = Reading(), read_bytes: int | None = None) -> Iterator[str]:
    """The decoded text of one file ('-': stdin) as the reading makes it
    (a leading BOM dropped, newlines normalised), in pieces."""
    if path == data.STDIN:
        pieces = iter([data.read_text(path, encoding, errors)])
    else:
        from charrnn.text.corpus import READ_BYTES, iter_text
        pieces = iter_text(path, encoding, errors, read_bytes or READ_BYTES)
    if not reading.joined:
        yield from (p for p in pieces if p)
        return
    first, pending = True, ""
    for text in pieces:
        if first and text:
            first = False
            if text.startswith(BOM):
                text = text[1:]
        if reading.newlines == "lf":
            text = pending + text
            pending = ""
            if text.endswith("\r"):
                text, pending = text[:-1], "\r"
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
        if text:
            yield text
    if pending:
        yield "\n"


def iter_pieces(files, encoding: str = "utf-8", errors: str = "strict",
                reading: Reading = Reading(), read_bytes: int | None = None):
    """The training text of files, in pieces: (document index, text), the
    index -1 for what joins two documents."""
    tail, started = "", False
    for k, path in enumerate(files):
        first = True
        for text in iter_document(path, encoding, errors, reading, read_bytes):
            if first:
                first = False
                if started and reading.joined:
                    j = reading.joiner(tail)
                    if j:
                        yield -1, j
            yield k, text
            started = True
            tail = (tail + text)[-2:]


def join_text(text: str, reading: Reading = Reading()) -> str:
    """One document given as a str, as the reading makes it."""
    if not reading.joined:
        return text
    if text.startswith(BOM):
        text = text[1:]
    if reading.newlines == "lf" and "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text
