"""Readers for the file layouts KD Studio imports, all streaming.

Every reader yields ``(line, record)`` pairs, where ``record`` maps column name to string and
``line`` is the 1-based line in the file where the record starts (row number for Parquet).
Layouts:

==============  ======================================================================
``csv``         header row, RFC 4180 quoting (``.csv``); the delimiter (comma, semicolon, tab or
                pipe) is sniffed from the first lines, see :func:`sniff_delimiter`
``tsv``         tab-separated, header row (``.tsv``; GLUE files such as SST-2)
``jsonl``       one JSON object per line (``.jsonl``, ``.ndjson``)
``json``        one JSON array of objects (``.json`` starting with ``[``; GPTeacher, Alpaca)
``parquet``     Apache Parquet (``.parquet``; needs ``pyarrow``)
``label-tab``   ``label<TAB>text`` without a header (SMS Spam Collection)
``label-space`` ``label text`` without a header (``stsa.binary.*`` SST-2 sentence files)
``trec``        ``COARSE:fine question`` lines, Latin-1 (TREC); columns label, fine, text
==============  ======================================================================
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from kdstudio.core.errors import DataError

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "label-tab", "label-space", "trec")
DEFAULT_ENCODING = {"trec": "latin-1"}
MAX_FIELD = 64 * 1024 * 1024
csv.field_size_limit(MAX_FIELD)

_TREC_LINE = re.compile(rb"^[A-Z]{2,5}:[A-Za-z]+ \S")
_LABEL_SPACE_LINE = re.compile(rb"^-?\w{1,20} \S")


def _head(path: Path, n: int = 8192) -> bytes:
    with path.open("rb") as f:
        return f.read(n)


def check_file(path: Path) -> None:
    """Refuse what is not a readable, non-empty file, with one clear line."""
    try:
        exists = path.exists()
    except OSError as exc:  # a symbolic link loop on some Pythons, a name too long...
        raise DataError(f"cannot open the file: {exc.strerror or exc}", file=str(path)) from None
    if not exists:
        if path.is_symlink():
            raise DataError("is a symbolic link that leads nowhere (a broken link or a link loop)", file=str(path))
        raise DataError("no such file", file=str(path))
    if path.is_dir():
        raise DataError("is a folder, not a data file", file=str(path))
    if not path.is_file():
        raise DataError("is not a regular file (a pipe or a device?)", file=str(path))
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        reason = "no permission to read it" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
        raise DataError(f"cannot open the file: {reason}", file=str(path)) from None
    if path.stat().st_size == 0:
        raise DataError("the file is empty", file=str(path))


def sniff_format(path: Path) -> str:
    """Guess the layout from the file name, then from the first bytes."""
    head = _head(path)
    if head.startswith(b"PAR1"):
        return "parquet"
    suffix = path.suffix.lower()
    by_suffix = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
                 ".pq": "parquet"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix == ".json":
        return "json" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[") else "jsonl"
    name = path.name.lower()
    if name.startswith("trec"):
        return "trec"
    if name.startswith("stsa."):
        return "label-space"
    first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    if first.startswith(b"{"):
        return "jsonl"
    if first.strip() == b"[" or first.startswith(b"[{"):
        return "json"
    if _TREC_LINE.match(first):
        return "trec"
    if b"\t" in first:
        left = first.split(b"\t", 1)[0]
        # "ham<TAB>text" without a header: the first field is a short token and not a column name
        return "label-tab" if len(left) <= 20 and b" " not in left and left.lower() not in (
            b"label", b"text", b"sentence", b"category") else "tsv"
    if b"," in first:
        return "csv"
    if _LABEL_SPACE_LINE.match(first):
        return "label-space"
    return "csv"


#: the delimiters a ``csv`` file may use, in order of preference on a tie
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 50


def sniff_delimiter(path: Path, encoding: str | None = None) -> str:
    """The delimiter of a ``csv`` file, the way a spreadsheet user expects.

    Each of comma, semicolon, tab and pipe is tried on the first lines (quotes respected); a
    delimiter qualifies when the header splits into more than one column and every following
    record has that many fields. The qualifier with the most consistent records wins, then the
    one earlier in :data:`DELIMITERS` (comma wins ties). None qualifying: comma, as before."""
    raw = _head(path, SNIFF_BYTES)
    truncated = len(raw) == SNIFF_BYTES
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    text = raw.decode(encoding or "utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    sample = "".join(lines[:SNIFF_LINES * 4])
    best, best_score = ",", -1
    for delimiter in DELIMITERS:
        try:
            records = [r for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if any(c.strip() for c in r)]
        except csv.Error:
            continue
        records = records[:SNIFF_LINES]
        if len(records) > 1 and truncated:
            records = records[:-1]  # a quoted field may run past the sample
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        if any(len(r) != width for r in records[1:]):
            continue
        if len(records) > best_score:
            best, best_score = delimiter, len(records)
    return best


def delimiter_name(delimiter: str) -> str:
    return DELIMITERS.get(delimiter, repr(delimiter))


#: byte-order marks that name their encoding: a file that starts with one needs no --encoding
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def bom_encoding(path: Path) -> str | None:
    """``utf-16`` or ``utf-32`` when the file starts with that byte-order mark (a spreadsheet's
    "Unicode text" export), else None. The mark says the byte order, so reading it is no guess."""
    try:
        head = _head(path, 4)
    except OSError:
        return None
    return next((enc for bom, enc in BOMS if head.startswith(bom)), None)


def wide_encoding(encoding: str) -> bool:
    """Whether ``encoding`` is not ASCII-compatible (UTF-16, UTF-32): its text cannot be split at byte 0x0A."""
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def _nul_error(path: Path, number: int) -> DataError:
    return DataError("the line holds a NUL byte (a binary or damaged file?); KD Studio reads text files",
                     file=str(path), line=number)


def _decoded_lines(path: Path, encoding: str, positions: list[int]) -> Iterator[str]:
    """Decode the file line by line; a bad byte or a NUL becomes a DataError naming the line.

    ``positions[0]`` is kept at the byte offset read so far (for progress)."""
    enc = codecs.lookup(encoding).name
    if wide_encoding(enc):
        yield from _wide_lines(path, enc, positions)
        return
    bom_aware = enc == "utf-8"
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            positions[0] += len(raw)
            if number == 1 and bom_aware and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            if b"\x00" in raw:
                raise _nul_error(path, number)
            try:
                yield raw.decode(enc)
            except UnicodeDecodeError as exc:
                hint = "cp1252 (Windows, Western Europe) or latin-1" if enc == "utf-8" else "utf-8"
                tried = "UTF-8 and UTF-8 with BOM" if enc == "utf-8" else encoding
                raise DataError(
                    f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not valid text in {tried}; "
                    f"pass the file's encoding, for example --encoding {hint}",
                    file=str(path), line=number,
                ) from None


def _wide_lines(path: Path, enc: str, positions: list[int]) -> Iterator[str]:
    """UTF-16/32 text, decoded as a stream (a BOM, when there is one, says the byte order)."""
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding=enc, newline="") as f:
        number = 0
        try:
            for number, line in enumerate(f, start=1):
                positions[0] = raw.tell()
                line = line.lstrip("\ufeff") if number == 1 else line
                if "\x00" in line:
                    raise _nul_error(path, number)
                yield line
        except UnicodeDecodeError:
            raise DataError(f"the text is not valid {enc} after line {number}; pass the file's encoding with "
                            "--encoding", file=str(path)) from None


#: the first bytes of files often given a .csv name by mistake, and what to do instead
MAGIC = (
    (b"PK\x03\x04", "is a ZIP archive (an Excel .xlsx workbook?), not text; save the sheet as CSV UTF-8 or unzip it"),
    (b"\xd0\xcf\x11\xe0", "is an old Office file (an Excel .xls workbook?), not text; save the sheet as CSV UTF-8"),
    (b"\x1f\x8b", "is gzip-compressed; decompress it first (gunzip)"),
    (b"%PDF", "is a PDF document, not a data file"),
)


def _refuse_binary(path: Path, fmt: str, encoding: str | None = None) -> None:
    if fmt == "parquet" or (encoding and wide_encoding(encoding)):
        return
    head = _head(path)
    for magic, what in MAGIC:
        if head.startswith(magic):
            raise DataError(what, file=str(path))
    if b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) > len(head) // 4 and min(even, odd) < max(even, odd) // 8:
            order = "le" if odd > even else "be"
            raise DataError(f"looks like UTF-16 text without a byte-order mark; pass --encoding utf-16-{order}",
                            file=str(path))
        raise DataError(
            "looks like a binary file, not text (it contains NUL bytes); KD Studio reads "
            f"{', '.join(FORMATS)} files", file=str(path),
        )


def read_records(
    path: Path, fmt: str, encoding: str | None, positions: list[int], delimiter: str | None = None
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Open ``path`` as ``fmt``; return its columns and a lazy iterator of (line, record).

    ``delimiter`` (``csv`` only): None sniffs it with :func:`sniff_delimiter`."""
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", file=str(path))
    if fmt != "parquet":
        encoding = encoding or bom_encoding(path)
    _refuse_binary(path, fmt, encoding)
    encoding = encoding or DEFAULT_ENCODING.get(fmt, "utf-8")
    if fmt == "parquet":
        return _parquet(path, positions)
    if fmt == "json":
        return _json_array(path, encoding, positions)
    lines = _decoded_lines(path, encoding, positions)
    if fmt == "csv":
        return _delimited(path, lines, delimiter or sniff_delimiter(path, encoding), quoted=True)
    if fmt == "tsv":
        return _delimited(path, lines, "\t", quoted=False)
    if fmt == "jsonl":
        return _jsonl(path, lines)
    return _fixed(path, lines, fmt)


def _csv_error(exc: csv.Error, what: str) -> str:
    if "end of data" in str(exc):
        return "a quote opened here is never closed (an unbalanced quote)"
    if "new-line character seen in unquoted field" in str(exc):
        return ("the lines end with a bare carriage return (an old Mac file?); save it with Windows or Unix "
                "line ends")
    return f"{what}: {exc}"


def _delimited(path: Path, lines: Iterator[str], delimiter: str, quoted: bool):
    # strict: a quote left open runs to the end of the file and is an error, not one giant text
    reader = csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
                        strict=quoted)
    try:
        header = next(reader)
        while not any(h.strip() for h in header):
            header = next(reader)
    except StopIteration:
        raise DataError("the file has no rows (only blank lines)", file=str(path)) from None
    except csv.Error as exc:
        raise DataError(_csv_error(exc, "cannot parse the header"), file=str(path), line=reader.line_num) from None
    columns = [h.strip() for h in header]
    if len(set(columns)) != len(columns) or "" in columns:
        raise DataError(f"the header needs distinct, non-empty column names (found {columns})",
                        file=str(path), line=reader.line_num)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(_csv_error(exc, "cannot parse the row"), file=str(path), line=start) from None
            if row and any(cell.strip() for cell in row):
                if len(row) != len(columns):
                    raise DataError(
                        f"expected {len(columns)} fields ({', '.join(columns)}) but found {len(row)}; "
                        "check the delimiter and the quoting", file=str(path), line=start,
                    )
                yield start, dict(zip(columns, row, strict=True))
            start = reader.line_num + 1

    return columns, rows()


def _jsonl(path: Path, lines: Iterator[str]):
    first: tuple[int, dict[str, str]] | None = None
    lines = iter(lines)
    number = 0

    def parse(number: int, line: str) -> dict[str, str]:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = " (a JSON array? pass --format json)" if line.lstrip().startswith("[") else ""
            raise DataError(f"not valid JSON: {exc.msg}{hint}", file=str(path), line=number) from None
        if isinstance(obj, list):
            raise DataError("the line is a JSON array, not an object; a .jsonl file is JSON Lines (one object per "
                            "line); for one array of objects pass --format json", file=str(path), line=number)
        if not isinstance(obj, dict):
            raise DataError("each line must be a JSON object (KD Studio reads JSON Lines: one object per line)",
                            file=str(path), line=number)
        return {k: _cell(v) for k, v in obj.items()}

    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                first = (number, parse(number, line))
            except DataError:
                _refuse_json_object(path)
                raise
            break
    if first is None:
        raise DataError("the file has no rows (only blank lines)", file=str(path))
    columns = list(first[1])

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        yield first
        for n, line in enumerate(lines, start=first[0] + 1):
            if line.strip():
                yield n, parse(n, line)

    return columns, rows()


def _refuse_json_object(path: Path) -> None:
    """A .json file holding one (pretty-printed) object: say so, instead of a JSON error on line 1."""
    if path.suffix.lower() != ".json" or path.stat().st_size > 64 * 1024 * 1024:
        return
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return
    if isinstance(data, dict):
        keys = ", ".join(list(data)[:8])
        raise DataError(f"the file holds one JSON object (keys: {keys}), not an array of objects; KD Studio reads "
                        "a .json file holding one array of objects, or JSON Lines (one object per line)",
                        file=str(path))


def _cell(value: object) -> str:
    return "" if value is None else (value if isinstance(value, str) else json.dumps(value))


def _json_array(path: Path, encoding: str, positions: list[int]):
    """A file holding one JSON array of objects, read whole (such files are written whole too).
    The columns are every key of every object, in order of first appearance; an object without a
    key has an empty cell there. A record's "line" is its position in the array (1-based)."""
    raw = path.read_bytes()
    positions[0] = len(raw)
    try:
        text = raw.decode(codecs.lookup(encoding).name)
    except UnicodeDecodeError as exc:
        raise DataError(f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not valid {encoding}; pass the "
                        "file's encoding with --encoding", file=str(path)) from None
    try:
        data = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    if not isinstance(data, list):
        raise DataError("a .json file must hold one array of objects (or be JSON Lines: one object per line)",
                        file=str(path))
    columns: dict[str, None] = {}
    for number, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise DataError(f"element {number} of the array is not a JSON object", file=str(path))
        columns.update(dict.fromkeys(obj))
    if not data:
        raise DataError("the file has no rows (an empty array)", file=str(path))

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for number, obj in enumerate(data, start=1):
            yield number, {c: _cell(obj.get(c)) for c in columns}

    return list(columns), rows()


def _fixed(path: Path, lines: Iterator[str], fmt: str):
    columns = ["label", "fine", "text"] if fmt == "trec" else ["label", "text"]

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if fmt == "label-tab":
                label, sep, text = line.partition("\t")
            else:
                label, sep, text = line.partition(" ")
            if not sep:
                sep_name = "a tab" if fmt == "label-tab" else "a space"
                raise DataError(f"expected '<label>{'<TAB>' if fmt == 'label-tab' else ' '}<text>' but found no "
                                f"{sep_name}", file=str(path), line=number)
            if fmt == "trec":
                coarse, colon, fine = label.partition(":")
                if not colon:
                    raise DataError("expected 'COARSE:fine question'", file=str(path), line=number)
                yield number, {"label": coarse, "fine": f"{coarse}:{fine}", "text": text}
            else:
                yield number, {"label": label, "text": text}

    return columns, rows()


def _parquet_cell(value: object) -> str:
    """A Parquet value as a cell: a list or struct as JSON (as in a JSONL file), so it is never
    mistaken for a text (``str`` would turn ``['a', 'b']`` into a plausible sentence)."""
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return "" if value is None else str(value)


def _parquet(path: Path, positions: list[int]):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install pyarrow", file=str(path)) from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"not a readable Parquet file ({exc})", file=str(path)) from None
    columns = list(pf.schema_arrow.names)
    size = path.stat().st_size
    total_rows = max(pf.metadata.num_rows, 1)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        number = 0
        for batch in pf.iter_batches(batch_size=10_000):
            data = batch.to_pydict()
            for i in range(batch.num_rows):
                number += 1
                yield number, {c: _parquet_cell(data[c][i]) for c in columns}
            positions[0] = int(size * number / total_rows)

    return columns, rows()
