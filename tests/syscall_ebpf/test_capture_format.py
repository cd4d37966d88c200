"""The capture file format (docs/capture-format.md): files are built byte by byte here from the
spec, so the reader is checked against the document, not against its own writer."""

from __future__ import annotations

import gzip
import os
import socket
import struct
import time
import zlib
from pathlib import Path

import orjson
import pytest

from falconet_syscall_ebpf.capture import (
    Block,
    CaptureError,
    CaptureMetadata,
    CaptureReader,
    CaptureWriter,
    boot_time_ns,
    is_capture,
    read_capture,
)

MAGIC = b"\x89FNCAP\r\n"
META = CaptureMetadata(boot_time_ns=1_700_000_000_000_000_000, probe_version="7",
                       hostname="h1", kernel_release="6.1.0", machine="x86_64",
                       falconet_version="0.1.0", created_ns=1_700_000_100_000_000_000,
                       syscalls=(2, 3, 257))


def header(meta: dict[str, object], major: int = 1, minor: int = 0) -> bytes:
    body = orjson.dumps(meta)
    return MAGIC + struct.pack("<HHI", major, minor, 16 + len(body)) + body


def block(records: bytes, count: int, *, flags: int = 0, stored: bytes | None = None) -> bytes:
    data = records if stored is None else stored
    return struct.pack("<4sHHIIII", b"FNBK", flags, 0, count, len(data), len(records),
                       zlib.crc32(data)) + data


def blocks_of(path: Path) -> list[tuple[int, bytes]]:
    _, blocks = read_capture(path)
    return [(b.count, b.data) for b in blocks]


# --- writing and reading --------------------------------------------------------------------

def test_round_trip_keeps_metadata_and_blocks_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    with CaptureWriter(path, META) as writer:
        writer.write_block(b"\x01" * 40, 2)
        writer.write_block(memoryview(b"abcdefgh"), 1)
        writer.write_block(b"", 0)  # an empty poll writes nothing
        writer.write_block(bytearray(b"z" * 1000), 10)
    assert (writer.blocks, writer.records) == (3, 13)
    assert writer.bytes_written == path.stat().st_size
    meta, blocks = read_capture(path)
    assert meta == META
    got = list(blocks)
    first = len(header(orjson.loads(META.to_json())))
    assert got == [Block(first, 2, b"\x01" * 40), Block(first + 64, 1, b"abcdefgh"),
                   Block(first + 64 + 32, 10, b"z" * 1000)]


def test_the_writer_follows_the_documented_layout(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    with CaptureWriter(path, META) as writer:
        writer.write_block(b"recs", 1)
    data = path.read_bytes()
    assert data[:8] == MAGIC
    major, minor, hdr_len = struct.unpack_from("<HHI", data, 8)
    assert (major, minor) == (1, 0)
    assert orjson.loads(data[16:hdr_len]) == {
        "boot_time_ns": 1_700_000_000_000_000_000, "probe_version": "7", "hostname": "h1",
        "kernel_release": "6.1.0", "machine": "x86_64", "falconet_version": "0.1.0",
        "created_ns": 1_700_000_100_000_000_000, "syscalls": [2, 3, 257]}
    assert data[hdr_len:] == block(b"recs", 1)


def test_compressed_blocks_read_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    records = b"openat /etc/shadow " * 200
    with CaptureWriter(path, META, compress=True) as writer:
        writer.write_block(records, 200)
    data = path.read_bytes()
    assert len(data) < len(records)
    hdr_len = struct.unpack_from("<I", data, 12)[0]
    assert struct.unpack_from("<4sHH", data, hdr_len) == (b"FNBK", 1, 0)
    assert blocks_of(path) == [(200, records)]


def test_a_gz_name_is_a_gzip_stream_of_the_plain_file(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap.gz"
    with CaptureWriter(path, META) as writer:
        writer.write_block(b"a" * 5000, 50)
        writer.write_block(b"b" * 10, 1)
    assert path.stat().st_size < 5000
    plain = gzip.decompress(path.read_bytes())
    assert plain[:8] == MAGIC
    assert is_capture(path)
    assert blocks_of(path) == [(50, b"a" * 5000), (1, b"b" * 10)]
    (tmp_path / "plain.fcap").write_bytes(plain)
    assert blocks_of(tmp_path / "plain.fcap") == [(50, b"a" * 5000), (1, b"b" * 10)]


def test_metadata_for_this_host_names_the_machine_and_its_boot_time(tmp_path: Path) -> None:
    meta = CaptureMetadata.for_this_host("7", [59, 2, 257])
    assert meta.hostname == socket.gethostname()
    assert meta.kernel_release == os.uname().release
    assert meta.machine == os.uname().machine
    assert meta.syscalls == (2, 59, 257)
    assert abs(meta.created_ns - time.time_ns()) < 5_000_000_000
    btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                 if line.startswith("btime "))
    # /proc/stat counts whole seconds; CLOCK_BOOTTIME is the probe's clock
    assert abs(meta.boot_time_ns - btime * 1_000_000_000) < 2_000_000_000
    assert abs(boot_time_ns() - meta.boot_time_ns) < 50_000_000


def test_the_writer_refuses_counts_that_do_not_fit_the_bytes(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path / "c.fcap", META) as writer:
        with pytest.raises(CaptureError, match=r"^a block of 0 bytes cannot hold 3 records$"):
            writer.write_block(b"", 3)
        with pytest.raises(CaptureError, match=r"^a block of 4 bytes cannot hold 0 records$"):
            writer.write_block(b"abcd", 0)
    with pytest.raises(CaptureError, match="capture writer is closed"):
        writer.write_block(b"abcd", 1)


# --- forward compatibility ---------------------------------------------------------------------

def test_unknown_metadata_keys_and_a_newer_minor_version_are_read(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    path.write_bytes(header({"boot_time_ns": 5, "probe_version": "9", "hostname": "n",
                             "container_runtime": {"name": "x"}, "future": [1]}, minor=7)
                     + block(b"rec", 1))
    meta, blocks = read_capture(path)
    assert (meta.boot_time_ns, meta.probe_version, meta.hostname) == (5, "9", "n")
    assert meta.extra == {"container_runtime": {"name": "x"}, "future": [1]}
    assert meta.format_version == (1, 7)
    assert meta.syscalls == () and meta.kernel_release == ""
    assert [(b.count, b.data) for b in blocks] == [(1, b"rec")]


def test_a_newer_major_version_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "new.fcap"
    path.write_bytes(header({"boot_time_ns": 5, "probe_version": "9"}, major=2, minor=3)
                     + b"anything a version 2 writes")
    with pytest.raises(CaptureError) as err:
        read_capture(path)
    assert str(err.value) == (f"{path}: capture format version 2.3 is newer than this falconet "
                              "reads (1.0): upgrade falconet to replay it")


@pytest.mark.parametrize(("meta", "message"), [
    (b"[1, 2]", "metadata is not a JSON object"),
    (b"{not json", "metadata is not JSON: "),
    (b'{"probe_version": "1"}', "metadata lacks 'boot_time_ns'"),
    (b'{"boot_time_ns": 1}', "metadata lacks 'probe_version'"),
    (b'{"boot_time_ns": "1", "probe_version": "1"}',
     "metadata 'boot_time_ns' must be an integer, not \"1\""),
    (b'{"boot_time_ns": 1, "probe_version": "1", "syscalls": [1, "x"]}',
     "metadata 'syscalls' must be a list of integers"),
])
def test_bad_metadata_is_refused_with_the_reason(tmp_path: Path, meta: bytes,
                                                  message: str) -> None:
    path = tmp_path / "c.fcap"
    path.write_bytes(MAGIC + struct.pack("<HHI", 1, 0, 16 + len(meta)) + meta)
    with pytest.raises(CaptureError) as err:
        read_capture(path)
    assert str(err.value).startswith(f"{path}: bad header: {message}")


# --- damaged files ----------------------------------------------------------------------------

def _three_blocks(path: Path) -> int:
    """A capture of blocks of 1, 2 and 3 records; returns the offset of the third block."""
    with CaptureWriter(path, META) as writer:
        writer.write_block(b"A" * 10, 1)
        writer.write_block(b"B" * 20, 2)
        third = writer.bytes_written
        writer.write_block(b"C" * 30, 3)
    return third


def test_a_truncated_last_block_is_reported_after_the_blocks_before_it(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    third = _three_blocks(path)
    path.write_bytes(path.read_bytes()[:third + 24 + 12])  # 12 of the 30 record bytes
    _, blocks = read_capture(path)
    assert [(b.count, b.data) for b in (next(blocks), next(blocks))] == [
        (1, b"A" * 10), (2, b"B" * 20)]
    with pytest.raises(CaptureError) as err:
        next(blocks)
    assert str(err.value) == f"truncated block at offset {third}: 12 of 30 bytes of 3 records"


def test_a_file_cut_inside_a_block_header_is_a_truncated_block(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    third = _three_blocks(path)
    path.write_bytes(path.read_bytes()[:third + 5])
    _, blocks = read_capture(path)
    assert next(blocks).count == 1 and next(blocks).count == 2
    with pytest.raises(CaptureError) as err:
        next(blocks)
    assert str(err.value) == f"truncated block at offset {third}: header has 5 of 24 bytes"


def test_a_truncated_gz_capture_keeps_its_earlier_blocks(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap.gz"
    with CaptureWriter(path, META) as writer:
        writer.write_block(os.urandom(3000), 1)
        writer.flush()
        first_part = path.stat().st_size  # the first block reached the file
        writer.write_block(os.urandom(200_000), 2)
    path.write_bytes(path.read_bytes()[:first_part + 50_000])
    _, blocks = read_capture(path)
    assert next(blocks).count == 1
    with pytest.raises(CaptureError, match=r"^truncated block at offset \d+: "):
        next(blocks)


def test_a_damaged_block_is_skipped_through_on_error(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    head = header({"boot_time_ns": 1, "probe_version": "1"})
    bad = bytearray(block(b"B" * 20, 2))
    bad[-1] ^= 0xFF  # a flipped bit in the records: the CRC no longer matches
    flagged = block(b"D" * 4, 1, flags=0x8000)
    path.write_bytes(head + block(b"A", 1) + bytes(bad) + flagged + block(b"C" * 3, 3))
    errors: list[str] = []
    _, blocks = read_capture(path, on_error=lambda exc: errors.append(str(exc)))
    assert [(b.count, b.data) for b in blocks] == [(1, b"A"), (3, b"CCC")]
    second = len(head) + 25
    assert errors == [f"bad block at offset {second}: checksum mismatch",
                      f"bad block at offset {second + 44}: unknown flags 0x8000"]
    _, strict = read_capture(path)
    assert next(strict).data == b"A"
    with pytest.raises(CaptureError, match=f"^bad block at offset {second}: checksum mismatch$"):
        next(strict)


def test_garbage_where_a_block_should_start_ends_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    head = header({"boot_time_ns": 1, "probe_version": "1"})
    path.write_bytes(head + block(b"A", 1) + b"X" * 40)
    _, blocks = read_capture(path)
    assert next(blocks).data == b"A"
    with pytest.raises(CaptureError) as err:
        next(blocks)
    assert str(err.value) == (f"bad block at offset {len(head) + 25}: no block tag (found "
                              "b'XXXX'); the rest of the file is unreadable")


def test_an_absurd_block_length_is_corruption_not_an_allocation(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    head = header({"boot_time_ns": 1, "probe_version": "1"})
    path.write_bytes(head + struct.pack("<4sHHIIII", b"FNBK", 0, 0, 1, 0xFFFFFFF0, 4, 0))
    _, blocks = read_capture(path)
    with pytest.raises(CaptureError, match=rf"^bad block at offset {len(head)}: length "
                                           r"4294967280 \(raw 4\) is over the 268435456 limit$"):
        next(blocks)


@pytest.mark.parametrize("content", [
    b'{"evt.type": "openat", "evt.arg.name": "/etc/shadow"}\n', b"", b"\x89FNC", b"FNCAP\r\n"])
def test_a_file_that_is_not_a_capture_says_so(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(content)
    assert not is_capture(path)
    with pytest.raises(CaptureError) as err:
        read_capture(path)
    assert str(err.value) == f"{path}: not a falconet capture file"


def test_a_header_cut_short_is_a_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    full = header({"boot_time_ns": 1, "probe_version": "1"})
    path.write_bytes(full[:12])
    with pytest.raises(CaptureError, match=rf"^{path}: truncated header: 12 of 16 bytes$"):
        read_capture(path)
    path.write_bytes(full[:30])
    with pytest.raises(CaptureError,
                       match=rf"^{path}: truncated header: 30 of {len(full)} bytes$"):
        read_capture(path)


def test_is_capture_is_false_for_directories_and_missing_files(tmp_path: Path) -> None:
    assert not is_capture(tmp_path)
    assert not is_capture(tmp_path / "absent")
    assert not is_capture(tmp_path / "absent.gz")


def test_reading_closes_the_file_when_the_blocks_end(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    _three_blocks(path)
    reader = CaptureReader(path)
    assert len(list(reader.blocks())) == 3
    assert reader.stored_position == path.stat().st_size
    assert reader._file.closed
