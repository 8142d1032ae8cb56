"""Readers of real transcript formats: a path in, a ``Transcript`` out.

``load_source(path)`` does the file I/O and picks the reader: Claude Code JSONL
(optionally gzip-compressed), Anthropic / OpenAI message lists (JSON, or JSONL of
messages) and SWE-agent ``.traj`` files. Problems with the file itself (missing, a
directory, empty, binary, invalid JSON) raise ``SourceError`` with one readable
line; records a reader does not understand are kept, counted and reported instead,
and bad records are named (``file:line: what``) in ``Transcript.problems``. Bytes
that are not UTF-8 are replaced (and named) rather than losing the whole file.
"""

from __future__ import annotations

import io
import os
import re

from ..collector import Paused
from ..errors import SourceError
from ..model import Transcript
from .problems import ProblemLog, loads

TYPE_CHECKING = False  # the status line imports this package: typing and pathlib cost ms
if TYPE_CHECKING:
    from collections.abc import Generator, Iterator
    from io import BufferedIOBase
    from pathlib import Path
    from typing import Any

__all__ = [
    "find_claude_session",
    "find_latest_claude_session",
    "glob_escape",
    "load_source",
    "parse_source",
]

_MAX_BYTES = 2 * 1024**3


def _check_file(path: Path) -> None:
    try:
        if not path.exists():
            raise SourceError(f"{path}: no such file")
        if path.is_dir():
            raise SourceError(f"{path} is a directory: give a transcript or messages file")
        if path.stat().st_size > _MAX_BYTES:
            raise SourceError(f"{path} is larger than 2 GiB: not a transcript")
    except OSError as exc:  # a name too long, a loop of links
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: BaseException) -> SourceError:
    if isinstance(exc, PermissionError):
        return SourceError(f"{path}: permission denied")
    return SourceError(f"{path}: cannot read ({exc})")


def _read_bytes(path: Path) -> bytes:
    _check_file(path)
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            import gzip

            data = gzip.decompress(data)
    except (OSError, EOFError, _zlib_error()) as exc:
        raise _unreadable(path, exc) from exc
    return data


def _zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


_READ_BUFFER = 1 << 16


def _open_binary(path: Path) -> BufferedIOBase:
    """The file to read, decompressed as it is read where it is gzip (a regular file:
    it is opened again by name)."""
    with path.open("rb") as f:
        if f.peek(2)[:2] != b"\x1f\x8b":
            # read in 64 KB: a transcript is read line by line, and the default 8 KB
            # made reading a long one's lines twice as slow
            return io.BufferedReader(io.FileIO(path), _READ_BUFFER)
    import gzip

    return gzip.GzipFile(path, mode="rb")  # by name: closing it closes the file too


def _decode(data: bytes, name: str, problems: ProblemLog) -> str:
    if b"\x00" in data[:65536]:
        raise SourceError(f"{name} is binary, not a transcript (expected JSON or JSONL text)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # One bad byte in one record must not lose the session: replace it, say where.
        line = data.count(b"\n", 0, exc.start) + 1
        problems.add(line, f"not UTF-8 (byte {exc.start}): invalid bytes replaced")
        return data.decode("utf-8-sig", errors="replace")


_FIRST_CHARACTER = re.compile(r"\S")


def parse_source(text: str, *, name: str = "<input>", path: str | None = None) -> Transcript:
    """Pick the reader for ``text`` and run it."""
    whole, lines, error = _split(text, name)
    return _read_split(whole, lines, error, name=name, path=path)


def _split(text: str, name: str) -> tuple[Any, list[str] | None, str | None]:
    """``text`` as one JSON document (lines None), or as lines with why it is not one
    (a message: ``JSONDecodeError`` keeps the whole text). The caller lets ``text`` go
    after: the lines hold it all again (a 100k-item transcript is hundreds of MB)."""
    from .claude_code import looks_like_claude_code

    start = _FIRST_CHARACTER.search(text)
    if start is None:
        raise SourceError(f"{name} is empty: nothing to count")
    if start.group() not in "[{":
        raise SourceError(
            f"{name} is not a transcript: expected Claude Code JSONL, a JSON message list "
            "or a SWE-agent .traj file"
        )
    try:
        whole = loads(text)  # JSON allows the whitespace around (a stripped copy is as big)
    except ValueError as exc:
        return None, _lines(text), str(exc)
    if isinstance(whole, dict) and looks_like_claude_code(whole):
        return None, _lines(text), None  # a one-record transcript
    return whole, None, None


def _lines(text: str) -> list[str]:
    """The lines of JSON Lines text: split at "\n" alone. JSON allows U+2028, U+2029 and
    U+0085 unescaped in a string (JavaScript's ``JSON.stringify`` writes them so), and
    ``str.splitlines`` would cut a record there; a "\r" left at a line's end is JSON
    whitespace."""
    return text.split("\n")


def _read_split(
    whole: Any,
    lines: list[str] | None,
    whole_error: str | None,
    *,
    name: str,
    path: str | None,
) -> Transcript:
    # Readers are imported when a source is read: the package itself stays light for
    # the modules that need one reader only (the status line's, the sub-agents').
    from .claude_code import looks_like_claude_code, read_claude_code

    if lines is None:
        return _read_json_document(whole, name=name, path=path)
    first = _first_json_line(lines)
    if first is None:
        assert whole_error is not None
        raise SourceError(f"{name} is not valid JSON: {whole_error}")
    if looks_like_claude_code(first):
        return read_claude_code(_drained(lines), path=path, name=name)
    if isinstance(first, dict) and "role" in first:
        messages = []
        problems = ProblemLog(name)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                messages.append(loads(line))
            except ValueError as exc:
                problems.add(number, f"not a JSON message ({exc}): kept as unknown")
                messages.append({"unparsed_line": line[:200]})
        transcript = _read_json_document(messages, name=name, path=path)
        transcript.problems[:0] = problems.lines()
        return transcript
    raise SourceError(f"{name}: JSON lines of an unknown shape (not Claude Code, not messages)")


_BOM = b"\xef\xbb\xbf"


def _claude_code_lines(path: Path) -> Generator[bytes, None, None] | None:
    """The lines of the file at ``path``, read as they are asked for, when it is a
    regular file whose first line is a Claude Code record (then the whole cannot be one
    JSON document of another kind); else None, and the whole-file route decides and says
    what is wrong. A pipe is read whole: what a look at its first line took from it
    could not be read again."""
    import stat

    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        f = _open_binary(path)
    except OSError:
        return None
    try:
        head: list[bytes] = []
        while True:  # up to the first line that is not blank
            line = f.readline()
            if not head:
                line = line.removeprefix(_BOM)
            head.append(line)
            if not line or line.strip():
                break
        from .claude_code import looks_like_claude_code
        from .problems import javascript_loads

        if b"\x00" in line or not looks_like_claude_code(javascript_loads()(line)):
            f.close()
            return None
    except (ValueError, OSError, EOFError, _zlib_error()):
        f.close()
        return None
    return _lines_of(path, f, head)


def _lines_of(path: Path, f: BufferedIOBase, head: list[bytes]) -> Generator[bytes, None, None]:
    """``head``, then the file's lines up to the first without its newline: the end of
    the file as it was when reached (Claude Code may be writing that line; what follows
    it is for the next read, as the rest of that line is)."""
    from itertools import chain

    zlib_error = _zlib_error()
    try:
        with f:
            for line in chain(head, f):
                yield line
                if not line.endswith(b"\n"):
                    return
    except (OSError, EOFError, zlib_error) as exc:
        raise _unreadable(path, exc) from exc


def _drained(lines: list[str]) -> Iterator[str]:
    """The lines one by one, each let go of by the list once given (a reader keeps what
    it makes of a line, not the line)."""
    for index, line in enumerate(lines):
        lines[index] = ""
        yield line


def _first_json_line(lines: list[str]) -> Any:
    for line in lines[:50]:
        if not line.strip():
            continue
        try:
            return loads(line)
        except ValueError:
            continue
    return None


def _read_json_document(data: Any, *, name: str, path: str | None) -> Transcript:
    from .messages import looks_like_messages, read_messages
    from .responses import looks_like_responses, read_responses
    from .swe_agent import looks_like_swe_agent, read_swe_agent

    if looks_like_swe_agent(data):
        return read_swe_agent(data, path=path, name=name)
    if looks_like_responses(data):
        return read_responses(data, path=path, name=name)
    if looks_like_messages(data):
        return read_messages(data, path=path, name=name)
    if data == [] or data == {"messages": []}:
        raise SourceError(f"{name}: an empty message list: nothing to read")
    raise SourceError(
        f"{name}: JSON of an unknown shape; expected a message list ([{{role, content}}] or "
        '{"messages": [...]}), an OpenAI Responses input ({"input": [...]}), a SWE-agent '
        ".traj or a Claude Code transcript"
    )


def load_source(path: str | os.PathLike[str]) -> Transcript:
    """Read a transcript or messages file from disk."""
    from pathlib import Path

    p = Path(path).expanduser()
    problems = ProblemLog(str(p))
    _check_file(p)
    with Paused():
        jsonl = _claude_code_lines(p)
        if jsonl is not None:
            # Claude Code JSON Lines, read line by line as bytes, each parsed as it is
            # (orjson takes UTF-8): not read whole, decoded and split first, which for a
            # 100k-item transcript were three copies of the file (the text twice its size
            # where one character is not Latin-1) and half a second.
            from .claude_code import read_claude_code

            try:
                return read_claude_code(jsonl, path=str(p), name=str(p))
            finally:
                jsonl.close()  # the file closed now, however the reading ended
        data = _read_bytes(p)
        text = _decode(data, str(p), problems)
        del data
        whole, lines, error = _split(text, str(p))
        del text  # the lines hold it all again
        transcript = _read_split(whole, lines, error, name=str(p), path=str(p))
    transcript.problems[:0] = problems.lines()
    return transcript


def claude_projects_dir() -> Path:
    from pathlib import Path

    config = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(config) if config else Path.home() / ".claude") / "projects"


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    import re

    return re.sub(r"([*?\[])", r"[\1]", text)


def find_claude_session(
    session_id: str, projects: Path | None = None, *, prefix: bool = False
) -> Path | None:
    """The transcript of the Claude Code session ``session_id`` (``<id>.jsonl`` in any
    project folder under ``projects``), or None. ``prefix``: or of the one session
    whose id starts with it (at least 4 characters, as stored ids are found);
    ``SourceError`` when several do."""
    root = projects or claude_projects_dir()
    if not session_id or "/" in session_id or "\\" in session_id or not root.is_dir():
        return None
    escaped = glob_escape(session_id)
    exact = next(iter(sorted(root.glob(f"*/{escaped}.jsonl"))), None)
    if exact is not None or not prefix or len(session_id) < 4:
        return exact
    found = {p.stem: p for p in sorted(root.glob(f"*/{escaped}*.jsonl"))}
    found = {stem: p for stem, p in found.items() if not stem.startswith("agent-")}
    if len(found) > 1:
        shown = ", ".join(sorted(found)[:5])
        raise SourceError(
            f"{session_id!r} starts the ids of {len(found)} Claude Code sessions ({shown}"
            f"{', …' if len(found) > 5 else ''}): give more of the id"
        )
    return next(iter(found.values()), None)


def find_latest_claude_session(
    projects: Path | None = None, pattern: str = "*/*.jsonl"
) -> Path | None:
    """The most recently written Claude Code transcript under ``projects`` (every
    project's; with ``pattern="*.jsonl"``, one project folder's own), or None."""
    root = projects or claude_projects_dir()
    if not root.is_dir():
        return None
    newest: tuple[float, Path] | None = None
    for candidate in root.glob(pattern):
        if candidate.name.startswith("agent-"):
            continue  # a sub-agent's own transcript, not a session
        try:
            mtime = candidate.stat().st_mtime
        except OSError:
            continue
        if newest is None or mtime > newest[0]:
            newest = (mtime, candidate)
    return newest[1] if newest else None
