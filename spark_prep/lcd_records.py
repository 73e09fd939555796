"""Raw files -> rows, each with the file it came from (its exact name) and the physical line it starts on.

Why not `spark.read.csv`: it numbers rows, not lines (a blank line or a quoted line break shifts every
number after it); it reads a path as a glob pattern (in `lcd jfk [2013] *.csv` the brackets are a character
class and `*` matches the neighbouring files); and its `input_file_name()` is a URL (`lcd%20jfk.csv`), so
the name recorded for reconciliation is not the file's.

Here the driver lists the input with the Hadoop FileSystem (local disk; S3 on EMR), taking the path
literally: a file, or the files of a folder. Spark reads each listed file's bytes with `binaryFiles`
(files are spread over tasks, as on an EMR cluster), and on the executor each file goes through
`raw_contracts.records.CsvRecords`. Every line after the header ends up in exactly one place: a `record`
row (the columns asked for, looked up by header name; a column the file lacks is null), a `bad` row (a
record that cannot be read, with the reason naming the field and value), or the count of blank lines in
the file's one `file` row, which also carries the reader's own count of what it read.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from raw_contracts.records import BadRecord, CsvRecords, Limits, UnreadableFile, physical_lines, preview
from spark_prep import lake_inputs

RECORD = "record"  # a record of the file
BAD = "bad"  # a record that cannot be read: `problem` says why, `raw_text` holds it
FILE = "file"  # one per file: the reader's counts, or in `problem` why the file cannot be read at all

# Hadoop reads every input path as a glob pattern (org.apache.hadoop.fs.GlobPattern).
GLOB_CHARACTERS = frozenset("\\{}[]*?")


def schema(columns: Sequence[str]) -> str:
    """The rows' fixed schema: bookkeeping columns, then the asked-for columns as strings."""
    return ", ".join([
        "source_file string", "source_line bigint", "row_kind string", "problem string", "raw_text string",
        # on `file` rows: which of the asked-for columns the header has (files are often cut down)
        "file_columns array<string>", "rows_read bigint", "blank_lines bigint",
        # on `file` rows of a file that grew since the lake was built: its lines up to here were not emitted
        "resumed_after_line bigint",
        *[f"`{column}` string" for column in columns],
    ])


def literal_pattern(path: str) -> str:
    """A Hadoop path string that, read as a glob pattern, matches only `path` itself.

    Glob characters are escaped with a backslash; a path component with a comma is wrapped in braces,
    because `binaryFiles` and `textFile` split their argument on every comma outside braces."""
    scheme, colon, rest = path.partition(":")
    if not colon or "/" in scheme:
        scheme, colon, rest = "", "", path
    components = []
    for component in rest.split("/"):
        escaped = "".join(f"\\{char}" if char in GLOB_CHARACTERS else char for char in component)
        if "," in escaped:
            escaped = "{" + escaped.replace(",", "\\,") + "}"
        components.append(escaped)
    return f"{scheme}{colon}{'/'.join(components)}"


def list_input_files(spark: SparkSession, uri: str, what: str, suffix: str = "") -> tuple[list[str], list[str]]:
    """(files to read, names left out) of a file or a folder (not recursive), the path taken literally.

    Left out: sub-folders, files not ending in `suffix`, and names starting with `.` or `_`, which Hadoop
    keeps for bookkeeping files (`_SUCCESS`, `.crc`) and its readers refuse to open."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        raise FileNotFoundError(
            f"{what} {uri}: no such file or folder. Expected a file or a folder of files; the path is taken "
            "literally (not as a glob pattern), so name the folder instead of a pattern like folder/*.csv")
    status = fs.getFileStatus(path)
    statuses = [status] if status.isFile() else list(fs.listStatus(path))
    files, left_out = [], []
    for entry in sorted(statuses, key=lambda s: s.getPath().getName()):
        name = entry.getPath().getName()
        reason = lake_inputs.left_out(name, entry.isDirectory(), suffix)
        if reason is None:
            files.append(entry.getPath().toString())
        else:
            left_out.append(reason)
    return files, left_out


def file_name(path: str) -> str:
    """The last component of a Hadoop path string as `binaryFiles` gives it (decoded, not a URL)."""
    return path.rsplit("/", 1)[-1]


def file_name_column() -> Column:
    """The exact name of the file a row of a Spark file source (csv, text) came from.

    `_metadata.file_name` is URL-encoded (`a%20b.csv`); `url_decode` would also turn a literal `+` (which the
    encoding leaves as is) into a space, so `+` is protected first."""
    return F.url_decode(F.replace(F.col("_metadata.file_name"), F.lit("+"), F.lit("%2B")))


def committed_lines(content: bytes, committed: tuple[int, str] | None) -> int | None:
    """How many physical lines of `content` are the bytes the lake was built from, when the file has only grown
    since (the usual way a station's file for the current year changes: a month appended): its first
    `committed` size bytes hash to the committed sha256 and end with a line feed. None when it changed otherwise."""
    if committed is None:
        return None
    size, sha256 = committed
    if not 0 < size < len(content) or content[size - 1:size] != b"\n":
        return None
    prefix = memoryview(content)[:size]
    if hashlib.sha256(prefix).hexdigest() != sha256:
        return None
    return sum(1 for _ in physical_lines(io.BytesIO(prefix), Limits().max_line_bytes, {}))


def file_rows(name: str, content: bytes, columns: Sequence[str], required: Sequence[str],
              committed: tuple[int, str] | None = None) -> Iterator[tuple]:
    """One file's rows in `schema(columns)` order: its records, its bad records, then its `file` row.

    A record whose bytes are not UTF-8 in one of `columns` is a bad record naming that field; invalid
    bytes in a column not asked for do not matter. An empty value is null (as in Spark's CSV reader).

    `committed`: (size, sha256) of the file as the lake was built from it. When the file has only grown since
    (committed_lines), the records of its committed lines are not emitted, since the lake has them, and the
    `file` row says after which line reading resumed; its counts still cover the whole file. The whole file is
    read all the same, and if a record of the committed lines looked ahead past them (an open quote), it could
    read differently now than when the lake was built, so the file is emitted whole, as a changed file is."""
    resume_after = committed_lines(content, committed)
    width = len(columns)

    def row(kind: str, line: int | None = None, problem: str | None = None, text: str | None = None,
            file_columns: list[str] | None = None, read: int | None = None, blank: int | None = None,
            values: Sequence[str | None] = ()) -> tuple:
        return (name, line, kind, problem, text, file_columns, read, blank,
                resume_after if kind == FILE else None, *(values or [None] * width))

    try:
        reader = CsvRecords(io.BytesIO(content))
    except UnreadableFile as unreadable:
        yield row(FILE, problem=str(unreadable))
        return
    position_of: dict[str, int] = {}
    for index, header_name in enumerate(reader.header):
        position_of.setdefault(header_name.upper(), index)  # a repeated name: the first column counts
    missing = [column for column in required if column.upper() not in position_of]
    if missing:
        yield row(FILE, problem=f"the header (line {reader.counts.header_line}) has no column {missing}; "
                                f"found {reader.header}")
        return
    positions = [position_of.get(column.upper()) for column in columns]
    present = [column for column, position in zip(columns, positions, strict=True) if position is not None]
    for item in reader:
        if resume_after is not None and item.line <= resume_after:
            if reader.lines_read > resume_after:  # nothing emitted yet: start again, emitting the whole file
                yield from file_rows(name, content, columns, required)
                return
            continue
        if isinstance(item, BadRecord):
            yield row(BAD, item.line, item.reason, item.text)
            continue
        invalid = [(column, position) for column, position in zip(columns, positions, strict=True)
                   if position is not None and position in item.invalid_utf8]
        if invalid:
            column, position = invalid[0]
            yield row(BAD, item.line, f"{column}: not UTF-8 text: {preview(item.fields[position])}", item.text)
            continue
        values = [None if position is None or item.fields[position] == "" else item.fields[position]
                  for position in positions]
        yield row(RECORD, item.line, values=values)
    yield row(FILE, file_columns=present, read=reader.counts.rows_read, blank=reader.counts.blank_lines)


def read_records(spark: SparkSession, files: list[str], columns: Sequence[str], required: Sequence[str],
                 committed: dict[str, tuple[int, str]] | None = None) -> DataFrame:
    """The rows of `file_rows` for every file in `files` (Hadoop path strings, as `list_input_files` gives);
    `committed`: (size, sha256) by file name of the files the lake was built from, to resume those that grew."""
    if not files:
        return spark.createDataFrame([], schema(columns))
    columns, required, committed = tuple(columns), tuple(required), dict(committed or {})
    pattern = ",".join(literal_pattern(path) for path in files)
    rows = spark.sparkContext.binaryFiles(pattern).flatMap(
        lambda item: file_rows(file_name(item[0]), item[1], columns, required, committed.get(file_name(item[0]))))
    return spark.createDataFrame(rows, schema(columns))
