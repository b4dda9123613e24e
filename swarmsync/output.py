"""Capturing a container's output: spooled to disk (bytes exact) up to the pool's
`max_output_bytes`, split into lines for the live log with a byte cap, secret values
masked. Past `max_output_bytes` nothing more is written and `on_limit` is called once
(the container run stops the container)."""

from __future__ import annotations

import contextvars
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

LineSink = Callable[[str, str], None]  # (stream name, decoded line)
MASK = b"***"
_MAX_LINE = 16 * 1024  # a line longer than this is logged in pieces
_LOG_QUEUE_LINES = 100_000  # lines waiting for the log (their bytes are bounded by the log cap too);
# more are skipped in the log (never in the archive)
_GROUP_LINES = 1000  # lines already waiting for the log are sent as one record of up to this many lines
_GROUP_BYTES = 256 * 1024  # ... and this many bytes (Prefect's own cap on a record is 1 MB)


def mask_bytes(data: bytes, secrets: list[bytes]) -> bytes:
    for value in secrets:
        if value:
            data = data.replace(value, MASK)
    return data


class OutputCapture:
    """Receives demultiplexed chunks in arrival order and keeps three spool files:
    stdout.txt, stderr.txt and output.txt (both interleaved). Lines go to `sink`
    until `log_cap_bytes` have been logged; then one marker says the rest is archived.

    `max_bytes` caps stdout and stderr together (so each spool file holds at most that many
    bytes): the chunk that crosses it is cut at the cap, later chunks are dropped,
    `limit_reached` turns True and `on_limit` is called once.

    Lines reach `sink` from a thread of their own through a bounded queue, so a slow log
    (a Prefect log record costs ~1 ms) never slows the reading of the container's output: a
    job printing millions of short lines is spooled at full speed, and lines the queue has
    no room for are skipped in the log (one marker says how many; the archive has them).
    Lines of one stream that are already waiting when the thread takes one are sent
    together, as one multi-line record (up to _GROUP_LINES lines / _GROUP_BYTES): a job
    printing 10,000 lines at once costs tens of records, not 10,000, and none is skipped.
    """

    def __init__(
        self, folder: Path, sink: LineSink, log_cap_bytes: int, secrets: list[str] | None = None,
        max_bytes: int | None = None, on_limit: Callable[[], None] | None = None,
        interleaved: Interleaved | None = None, label: str = "",
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.interleaved, self.label = interleaved, label
        self._files = {
            name: open(folder / f"{name}.txt", "wb")  # noqa: SIM115 - closed in close()
            for name in ("stdout", "stderr") + (() if interleaved else ("output",))
        }
        self._sink = sink
        self._cap = log_cap_bytes
        self._logged = 0
        self._truncated = False
        self._pending = {"stdout": b"", "stderr": b""}
        self._secrets = sorted({s.encode() for s in (secrets or []) if s}, key=len, reverse=True)
        self._lock = threading.Lock()
        self.closed = False
        self.max_bytes = max_bytes
        self.on_limit = on_limit
        self.written = 0  # bytes of stdout and stderr spooled
        self.limit_reached = False
        self._lines: queue.Queue[tuple[str, bytes | str] | None] = queue.Queue(maxsize=_LOG_QUEUE_LINES)
        self._skipped = 0
        self._logger = threading.Thread(target=contextvars.copy_context().run, args=(self._log_lines,), daemon=True)
        self._logger.start()

    def _text(self, line: bytes | str) -> str:
        if isinstance(line, str):
            return line
        return mask_bytes(line, self._secrets).decode("utf-8", errors="replace").rstrip("\r")

    def _log_lines(self) -> None:
        pending: list[tuple[str, bytes | str] | None] = []  # taken from the queue, not sent yet
        while True:
            item = pending.pop() if pending else self._lines.get()
            if item is None:
                return
            stream, line = item
            texts = [self._text(line)]
            size = len(texts[0])
            while stream != "marker" and len(texts) < _GROUP_LINES and size < _GROUP_BYTES:
                try:
                    nxt = self._lines.get_nowait()
                except queue.Empty:
                    break
                if nxt is None or nxt[0] != stream:
                    pending.append(nxt)
                    break
                texts.append(self._text(nxt[1]))
                size += len(texts[-1]) + 1
            try:
                self._sink(stream, "\n".join(texts))
            except Exception:  # noqa: BLE001 - a failing log never stops the capture
                pass

    def _queue(self, stream: str, line: bytes | str) -> None:
        try:
            self._lines.put_nowait((stream, line))
        except queue.Full:
            self._skipped += 1

    def feed(self, stream: str, chunk: bytes) -> None:
        with self._lock:
            if self.limit_reached or self.closed:
                return
            if self.max_bytes is not None and self.written + len(chunk) > self.max_bytes:
                chunk = chunk[: self.max_bytes - self.written]
                self.limit_reached = True
            self.written += len(chunk)
            self._files[stream].write(chunk)
            if self.interleaved is not None:
                self.interleaved.feed(self.label, stream, chunk)
            else:
                self._files["output"].write(chunk)
            buf = self._pending[stream] + chunk
            *lines, rest = buf.split(b"\n")
            while len(rest) > _MAX_LINE:
                lines.append(rest[:_MAX_LINE])
                rest = rest[_MAX_LINE:]
            self._pending[stream] = rest
            for line in lines:
                self._emit(stream, line)
            if self.limit_reached:
                self._marker(f"[swarmsync] output reached the pool's max_output_bytes "
                             f"({self.max_bytes} bytes); the job is stopped")
        if self.limit_reached and self.on_limit is not None:
            self.on_limit()

    def _emit(self, stream: str, line: bytes) -> None:
        if self._truncated:
            return
        if self._logged + len(line) > self._cap:
            self._truncated = True
            self._marker(f"[swarmsync] output truncated in the log after {self._logged} bytes; "
                         "the archive keeps it whole")
            return
        self._logged += len(line) + 1
        self._queue(stream, line)

    def _marker(self, text: str) -> None:
        self._lines.put(("marker", text))  # markers wait for room: they are few

    @property
    def truncated(self) -> bool:
        return self._truncated

    def close(self) -> None:
        """Flush partial last lines and close the spool; mask secrets in the spool files."""
        with self._lock:
            if self.closed:
                return
            for stream, rest in self._pending.items():
                if rest:
                    self._emit(stream, rest)
            for f in self._files.values():
                f.close()
            self.closed = True
            if self._skipped:
                self._marker(f"[swarmsync] {self._skipped} line(s) were left out of the log (written faster than "
                             "the log takes them); the archive keeps them whole")
            self._lines.put(None)
        self._logger.join(timeout=60)
        if self._secrets:
            for name in self._files:
                mask_file(self.folder / f"{name}.txt", self._secrets)


class Interleaved:
    """The output.txt of a job of several containers: every container's lines as they arrive,
    each prefixed with its name (`db | ready`); a partial line waits for its end (or close)."""

    def __init__(self, path: Path, secrets: list[str] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._pending: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        self._secrets = sorted({s.encode() for s in (secrets or []) if s}, key=len, reverse=True)
        self.closed = False

    def feed(self, label: str, stream: str, chunk: bytes) -> None:
        with self._lock:
            if self.closed:
                return
            *lines, rest = (self._pending.get((label, stream), b"") + chunk).split(b"\n")
            self._pending[(label, stream)] = rest
            prefix = label.encode() + b" | "
            self._file.write(b"".join(prefix + line + b"\n" for line in lines))

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            for (label, _), rest in self._pending.items():
                if rest:
                    self._file.write(label.encode() + b" | " + rest + b"\n")
            self._file.close()
            self.closed = True
        if self._secrets:
            mask_file(self.path, self._secrets)


def mask_file(path: Path, secrets: list[bytes], chunk_size: int = 1 << 20) -> None:
    """Replace every secret value in a (possibly large) file, streaming."""
    keep = max(len(s) for s in secrets) - 1
    tmp = path.with_suffix(path.suffix + ".masking")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        carry = b""
        while True:
            block = src.read(chunk_size)
            data = mask_bytes(carry + block, secrets)
            if not block:
                dst.write(data)
                break
            # hold back a tail that might be the start of a secret split across blocks
            cut = max(len(data) - keep, 0)
            dst.write(data[:cut])
            carry = data[cut:]
    os.replace(tmp, path)


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size
