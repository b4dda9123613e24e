"""Output capture: exact spool files, capped log, masked secrets."""

from swarmsync.archive import ArchiveNotFound, check_job_id
from swarmsync.output import OutputCapture, mask_file


def _capture(tmp_path, cap=1000, secrets=None):
    lines = []
    cap_obj = OutputCapture(tmp_path, lambda s, line: lines.append((s, line)), cap, secrets)
    return cap_obj, lines


def test_lines_split_across_chunks_are_joined(tmp_path):
    cap, lines = _capture(tmp_path)
    cap.feed("stdout", b"hel")
    cap.feed("stdout", b"lo\nwor")
    cap.feed("stderr", b"err\n")
    cap.feed("stdout", b"ld")
    cap.close()
    assert lines == [("stdout", "hello"), ("stderr", "err"), ("stdout", "world")]
    assert (tmp_path / "stdout.txt").read_bytes() == b"hello\nworld"
    assert (tmp_path / "output.txt").read_bytes() == b"hello\nworerr\nld"


def test_log_is_capped_with_a_marker_but_spool_is_whole(tmp_path):
    cap, lines = _capture(tmp_path, cap=20)
    for i in range(10):
        cap.feed("stdout", f"line {i}\n".encode())
    cap.close()
    assert lines[-1][0] == "marker" and "truncated" in lines[-1][1]
    assert len(lines) < 10
    assert (tmp_path / "stdout.txt").read_bytes().count(b"\n") == 10


def test_secrets_masked_in_log_and_spool(tmp_path):
    cap, lines = _capture(tmp_path, secrets=["hunter2"])
    cap.feed("stdout", b"pw=hunt")
    cap.feed("stdout", b"er2\n")
    cap.close()
    assert lines == [("stdout", "pw=***")]
    assert (tmp_path / "stdout.txt").read_bytes() == b"pw=***\n"


def test_mask_file_catches_a_secret_split_across_blocks(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"x" * 5 + b"SECRET" + b"y" * 5)
    mask_file(path, [b"SECRET"], chunk_size=8)
    assert path.read_bytes() == b"xxxxx***yyyyy"


def test_non_utf8_is_replaced_in_log_only(tmp_path):
    cap, lines = _capture(tmp_path)
    cap.feed("stdout", b"\xff\xfeok\n")
    cap.close()
    assert lines == [("stdout", "\ufffd\ufffdok")]
    assert (tmp_path / "stdout.txt").read_bytes() == b"\xff\xfeok\n"


def test_job_ids_must_be_uuids():
    import pytest

    for bad in ("../etc/passwd", "x", "1234"):
        with pytest.raises(ArchiveNotFound):
            check_job_id(bad)


def test_lines_waiting_for_a_slow_log_go_as_one_record_none_skipped(tmp_path):
    import time

    records = []

    def slow_sink(stream, text):  # a Prefect log record costs ~1 ms
        time.sleep(0.001)
        records.append((stream, text))

    cap = OutputCapture(tmp_path, slow_sink, 10_000_000)
    for start in range(0, 10_000, 500):
        cap.feed("stdout", "".join(f"{i}\n" for i in range(start, start + 500)).encode())
    cap.feed("stderr", b"done\n")
    cap.close()
    lines = [line for stream, text in records if stream == "stdout" for line in text.split("\n")]
    assert lines == [str(i) for i in range(10_000)]  # every line, once, in order: nothing skipped
    assert records[-1] == ("stderr", "done")
    assert len(records) < 1000  # grouped, not one record per line
