"""User paths, checked one way for every command: files read and places written.

Every command that reads a user's file (train, data inspect, predict, evaluate, config validate)
goes through `check_readable_file` and, for text formats, `check_text_encoding`; every command
that writes somewhere the user named goes through `check_writable_dir` / `check_output_file`,
and turns an OSError while writing into one line with `output_error`. Each problem is one line:
what is wrong, the path, what to do.

Encodings are named, not guessed at blindly: a UTF-16/UTF-32 byte-order mark, a zip (an .xlsx
is one), an old Office file, gzip, Parquet or PDF magic bytes, NUL bytes, and for bytes that
are not UTF-8, whether they look like Windows-1252 / Latin-1 or something else.
"""

from __future__ import annotations

import errno
import os
import shlex
import tempfile
import zipfile
from pathlib import Path

from tunelab.errors import DataError, OutputError, TunelabError
from tunelab.suggest import short_path

HEAD_BYTES = 1 << 16  # sniffed for magic bytes, BOMs and NULs

UTF8_BOM = b"\xef\xbb\xbf"
BOMS = (  # longest first: a UTF-32 LE BOM starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "UTF-32LE"),
    (b"\x00\x00\xfe\xff", "UTF-32BE"),
    (b"\xff\xfe", "UTF-16LE"),
    (b"\xfe\xff", "UTF-16BE"),
)
EXPORT_CSV = "Open it in Excel or LibreOffice and save it as 'CSV UTF-8', then use the .csv"
MAGIC = (  # (prefix, what the file is, what to do)
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.xls/.doc)", EXPORT_CSV),
    (b"\x1f\x8b", "gzip-compressed", "Decompress it first (gunzip)"),
    (b"BZh", "bzip2-compressed", "Decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "xz-compressed", "Decompress it first (unxz)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "Extract the data file from it"),
    (b"PAR1", "a Parquet file", "Give it a .parquet extension"),
    (b"%PDF", "a PDF document", "Export the table as CSV"),
    (b"SQLite format 3\x00", "an SQLite database", "Export the table as CSV"),
)


def path_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a file ('is a directory', 'not found', …), or None."""
    try:
        if path.is_dir():
            return "is a directory, not a file"
        if not path.exists():
            return "not found"
        if not path.is_file():
            return "is not a regular file (a device, socket or pipe)"
        with path.open("rb"):
            pass
    except PermissionError:
        return "cannot be read (permission denied)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except ValueError:  # a NUL byte in the name
        return "not found"
    return None


def check_readable_file(
    path: str | Path,
    what: str = "data file",
    fix: str = "Check the path.",
    error: type[TunelabError] = DataError,
    allow_empty: bool = False,
) -> Path:
    """`path` as a Path when it is a readable, non-empty regular file; else one-line `error`."""
    path = Path(path)
    problem = path_problem(path)
    if problem == "not found":
        raise error(f"{what} not found: {short_path(path)}. {fix}")
    if problem == "is a directory, not a file":
        raise error(
            f"{what} {short_path(path)} is a directory, not a file. Give the path of a file in it."
        )
    if problem is not None:
        raise error(f"{what} {short_path(path)} {problem}. Check the path and its permissions.")
    if not allow_empty and path.stat().st_size == 0:
        raise error(f"{short_path(path)}: the file is empty. Give a file with rows.")
    return path


def _iconv(path: Path, encoding: str) -> str:
    if len(path.name) > 30:  # the line stays short; the path is at its start already
        return f"iconv -f {encoding} -t UTF-8 IN > OUT"
    target = path.with_name(f"{path.stem}.utf8{path.suffix}")
    return f"iconv -f {encoding} -t UTF-8 {shlex.quote(path.name)} > {shlex.quote(target.name)}"


def content_problem(path: Path, head: bytes | None = None) -> str | None:
    """What the first bytes say the file is when that is not UTF-8 text, with the fix; else None."""
    if head is None:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    for bom, encoding in BOMS:
        if head.startswith(bom):
            family = encoding[:6]
            return (
                f"the file is {family} (it starts with a {encoding} byte-order mark), not UTF-8. "
                f"Convert it: {_iconv(path, family)}"
            )
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        kind = _zip_kind(path)
        fix = EXPORT_CSV if "Excel" in kind or "OpenDocument" in kind else "Unzip it first"
        return f"the file is {kind}, not a text table. {fix}."
    for magic, kind, fix in MAGIC:
        if head.startswith(magic):
            return f"the file is {kind}, not a text table. {fix}."
    if b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        half = max(len(head) // 2, 1)
        if max(even, odd) > 0.3 * half and min(even, odd) < 0.05 * half:
            encoding = "UTF-16LE" if odd > even else "UTF-16BE"
            return (
                f"the file looks like {encoding} without a byte-order mark (every other byte is NUL), "
                f"not UTF-8. Convert it: {_iconv(path, encoding)}"
            )
        return "the file holds NUL bytes: it is binary, not a text table. Export the data as CSV/JSONL."
    return None


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a zip archive (damaged)"
    if any(n.startswith("xl/") for n in names):
        return "an Excel workbook (.xlsx)"
    if "content.xml" in names and "mimetype" in names:
        return "an OpenDocument file (.ods/.odt)"
    if any(n.startswith("word/") for n in names):
        return "a Word document (.docx)"
    return "a zip archive"


def guess_8bit(line: bytes) -> tuple[str, str]:
    """(name, iconv name) of the encoding a non-UTF-8 line most likely has."""
    high = [i for i, b in enumerate(line) if b >= 0x80]
    isolated = all(
        (i == 0 or line[i - 1] < 0x80) and (i + 1 >= len(line) or line[i + 1] < 0x80) for i in high
    )
    if not isolated and len(high) > 4:  # runs of high bytes: a multi-byte legacy encoding
        return "a legacy multi-byte encoding (e.g. Shift-JIS, GBK, EUC-KR)", "THAT_ENCODING"
    if any(0x80 <= line[i] <= 0x9F for i in high):
        return "Windows-1252 (cp1252)", "CP1252"
    return "Latin-1 (ISO-8859-1) or Windows-1252", "LATIN1"


def check_text_encoding(path: Path) -> None:
    """Refuse a text-format file that is not UTF-8 (a UTF-8 BOM is fine), naming what it is."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        problem = content_problem(path, head)
        if problem:
            raise DataError(f"{short_path(path)}: {problem}")
        handle.seek(len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0)
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                name, iconv = guess_8bit(line)
                raise DataError(
                    f"{short_path(path)}: line {number} is not valid UTF-8 (byte 0x{line[exc.start]:02x}); "
                    f"it looks like {name}. Convert it: {_iconv(path, iconv)}"
                ) from None


def check_parquet(path: Path) -> None:
    """A .parquet file must start with Parquet's magic bytes; say what it is when it does not."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    if head.startswith(b"PAR1"):
        return
    problem = content_problem(path, head)
    if problem is None:
        problem = "the file is not Parquet (no PAR1 magic bytes); it looks like text. Give it its real extension (.csv, .jsonl, …)."
    raise DataError(f"{short_path(path)}: {problem}")


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_writable_dir(path: str | Path, what: str = "output directory") -> Path:
    """Refuse, in one line, a directory that cannot be created or written; create nothing.

    `path` may not exist yet: then its nearest existing parent must be a writable directory.
    The check writes (and removes) a probe file, so read-only mounts and permissions are seen
    as the real write would see them, for root too (where os.access says yes to everything).
    Call it before the work whose result goes there (e.g. train's output.dir).
    """
    path = Path(path)
    _probe(path, path, what)
    return path


def _probe(directory: Path, shown: Path, what: str) -> None:
    ancestor = _existing_ancestor(directory)
    if not ancestor.is_dir():
        raise OutputError(
            f"cannot write {what} {short_path(shown)}: {short_path(ancestor)} is a file, not a directory. Choose another path."
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".tunelab-write-check.", dir=ancestor)
    except OSError as exc:
        raise output_error(exc, shown, what) from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(
    path: str | Path, what: str = "output file", inputs: tuple[str | Path, ...] = ()
) -> Path:
    """An output file about to be written: not a directory, not one of the `inputs`, its directory writable."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(
            f"{what} {short_path(path)} is a directory. Give a file name in it, e.g. predictions.csv."
        )
    for source in inputs:
        if Path(source).exists() and path.exists() and os.path.samefile(source, path):
            raise OutputError(
                f"{what} {short_path(path)} is the input file; writing it would replace the input. Give another name."
            )
    _probe(path.parent, path, what)
    return path


def output_error(exc: OSError, path: str | Path, what: str = "output") -> OutputError:
    """One line for an OSError met while creating or writing `path`."""
    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.ENOTDIR: "a part of the path is a file, not a directory",
        errno.EISDIR: "it is a directory",
        errno.ENAMETOOLONG: "the name is too long",
    }
    reason = reasons.get(exc.errno or 0) or (exc.strerror or str(exc) or "unknown error")
    reason = reason[0].lower() + reason[1:]
    fix = (
        "Free some space or write elsewhere."
        if exc.errno in (errno.ENOSPC, errno.EDQUOT)
        else "Choose a writable location."
    )
    return OutputError(f"cannot write {what} {short_path(path)}: {reason}. {fix}")
