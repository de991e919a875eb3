"""The records of ROS 1 and mcap files read in order up to the first one that is cut off.

Both formats are a sequence of length-prefixed records; messages sit in chunks (compressed or
not) whose length is known before their bytes.  A cut chunk is decompressed as far as its
bytes go (lz4 frames, bz2 and zstd are streams) and its complete records are kept.  Each
generator takes the file's bytes (``mapped``) and yields (kind, value) events and, when the
file is cut, a last ("cut", bytes missing from the cut record) event.

Formats: ROS 1 bag 2.0 (http://wiki.ros.org/Bags/Format/2.0), MCAP
(https://mcap.dev/spec).
"""

from __future__ import annotations

import bz2
import mmap
import struct
from typing import Any, BinaryIO, Iterator

import lz4.frame

Event = tuple[str, object]

# ROS 1 record ops
_MSGDATA, _BAGHEADER, _CHUNK, _CONNECTION = 2, 3, 5, 7
# mcap record ops
_SCHEMA, _CHANNEL, _MESSAGE, _CHUNK_MCAP, _DATA_END, _FOOTER = 0x03, 0x04, 0x05, 0x06, 0x0F, 0x02


def mapped(stream: BinaryIO) -> mmap.mmap:
    """The (non-empty) file's bytes memory-mapped read-only: memory does not grow with the
    file.  Use as a context manager.
    """
    return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)


def _stream_decompress(compression: str, data: bytes) -> bytes:
    """As much of a (possibly cut) compressed chunk as decodes."""
    if compression in ('', 'none'):
        return data
    if compression == 'zstd':
        from backports import zstd

        return zstd.ZstdDecompressor().decompress(data)
    if compression == 'lz4':
        return lz4.frame.LZ4FrameDecompressor().decompress(data)
    if compression == 'bz2':
        return bz2.BZ2Decompressor().decompress(data)
    raise ValueError(f'unknown chunk compression {compression!r}')


def _ros1_fields(header: bytes) -> dict[str, bytes]:
    """A ROS 1 record header: (u32 length, b'name=value') fields."""
    fields, at = {}, 0
    while at + 4 <= len(header):
        (size,) = struct.unpack_from('<I', header, at)
        name, _, value = header[at + 4 : at + 4 + size].partition(b'=')
        fields[name.decode()] = value
        at += 4 + size
    return fields


def _ros1_record(data: bytes, at: int) -> tuple[dict[str, bytes], bytes, int] | None:
    """(header fields, data, next offset) of the record at ``at``; None when it is cut."""
    if at + 4 > len(data):
        return None
    (header_len,) = struct.unpack_from('<I', data, at)
    data_at = at + 4 + header_len
    if data_at + 4 > len(data):
        return None
    (data_len,) = struct.unpack_from('<I', data, data_at)
    end = data_at + 4 + data_len
    if end > len(data):
        return None
    return _ros1_fields(data[at + 4 : data_at]), data[data_at + 4 : end], end


def _ros1_inner(fields: dict[str, bytes], body: bytes) -> Iterator[Event]:
    """Events of one connection or message record."""
    op = fields.get('op', b'\0')[0]
    if op == _CONNECTION:
        info = _ros1_fields(body)
        definition = info.get('message_definition', b'').decode()
        topic = fields['topic'].decode()
        yield (
            'connection',
            (struct.unpack('<I', fields['conn'])[0], topic, _str(info, 'type'), definition),
        )
    elif op == _MSGDATA:
        sec, nsec = struct.unpack('<II', fields['time'])
        yield 'message', (struct.unpack('<I', fields['conn'])[0], sec * 1_000_000_000 + nsec, body)


def _str(fields: dict[str, bytes], name: str) -> str:
    return fields.get(name, b'').decode()


def ros1_records(data: Any) -> Iterator[Event]:
    """Events of a ROS 1 bag: ("chunks_expected", n) from the bag header, ("chunk", complete?)
    per chunk, ("connection", (id, topic, type, definition)), ("message", (connection id,
    time ns, ROS 1 bytes)), and ("cut", bytes missing) when the file ends inside a record.
    """
    at = data.find(b'\n') + 1
    while at < len(data):
        record = _ros1_record(data, at)
        if record is None:
            yield from ros1_cut_chunk(data, at)
            yield 'cut', max(_declared_end(data, at) - len(data), 1)
            return
        fields, body, at = record
        op = fields.get('op', b'\0')[0]
        if op == _BAGHEADER:
            yield 'chunks_expected', struct.unpack('<I', fields.get('chunk_count', b'\0' * 4))[0]
        elif op == _CHUNK:
            yield 'chunk', True
            yield from _ros1_chunk(_stream_decompress(_str(fields, 'compression'), body))
        else:
            yield from _ros1_inner(fields, body)


def _declared_end(data: bytes, at: int) -> int:
    """Where the cut ROS 1 record at ``at`` would end (its lengths, when they were written)."""
    if at + 4 > len(data):
        return len(data) + 1
    (header_len,) = struct.unpack_from('<I', data, at)
    data_at = at + 4 + header_len
    if data_at + 4 > len(data):
        return data_at + 4
    return data_at + 4 + struct.unpack_from('<I', data, data_at)[0]


def _ros1_chunk(inner: bytes) -> Iterator[Event]:
    at = 0
    while (record := _ros1_record(inner, at)) is not None:
        fields, body, at = record
        yield from _ros1_inner(fields, body)


def ros1_cut_chunk(data: bytes, at: int) -> Iterator[Event]:
    """Events of the complete records of a chunk cut at the end of ``data`` (record at ``at``)."""
    (header_len,) = struct.unpack_from('<I', data, at) if at + 4 <= len(data) else (len(data),)
    fields = _ros1_fields(data[at + 4 : at + 4 + header_len])
    if fields.get('op', b'\0')[0] != _CHUNK:
        return
    body = data[at + 4 + header_len + 4 :]
    try:
        inner = _stream_decompress(_str(fields, 'compression'), body)
    except (ValueError, OSError, RuntimeError, EOFError):
        return
    yield 'chunk', False
    yield from _ros1_chunk(inner)


def mcap_records(data: Any) -> Iterator[Event]:
    """Events of an mcap file: ("schema", (id, name)), ("channel", (id, schema id, topic)),
    ("message", (channel id, log time ns, bytes)) and ("cut", bytes missing).
    """
    at = 8  # magic
    while at + 9 <= len(data):
        op, length = data[at], struct.unpack_from('<Q', data, at + 1)[0]
        end = at + 9 + length
        if op in (_DATA_END, _FOOTER):
            return
        if end > len(data):
            if op == _CHUNK_MCAP:
                yield from _mcap_chunk(data[at + 9 :], cut=True)
            yield 'cut', end - len(data)
            return
        if op == _CHUNK_MCAP:
            yield from _mcap_chunk(data[at + 9 : end], cut=False)
        else:
            yield from _mcap_record(op, data[at + 9 : end])
        at = end
    if at < len(data):
        yield 'cut', 9 - (len(data) - at)


def _mcap_string(body: bytes, at: int) -> tuple[str, int]:
    (size,) = struct.unpack_from('<I', body, at)
    return body[at + 4 : at + 4 + size].decode(), at + 4 + size


def _mcap_record(op: int, body: bytes) -> Iterator[Event]:
    if op == _SCHEMA:
        (schema_id,) = struct.unpack_from('<H', body, 0)
        yield 'schema', (schema_id, _mcap_string(body, 2)[0])
    elif op == _CHANNEL:
        channel_id, schema_id = struct.unpack_from('<HH', body, 0)
        yield 'channel', (channel_id, schema_id, _mcap_string(body, 4)[0])
    elif op == _MESSAGE:
        channel_id, _, log_time, _ = struct.unpack_from('<HIQQ', body, 0)
        yield 'message', (channel_id, log_time, bytes(body[22:]))


def _mcap_chunk(body: bytes, cut: bool) -> Iterator[Event]:
    """A chunk's records (start, end, uncompressed size u64, crc u32, compression, records)."""
    if len(body) < 32:
        return
    compression, at = _mcap_string(body, 28)
    records = body[at + 8 :]
    try:
        inner = _stream_decompress(compression, records)
    except (ValueError, OSError, RuntimeError, EOFError):
        if not cut:
            raise
        return
    at = 0
    while at + 9 <= len(inner):
        op, length = inner[at], struct.unpack_from('<Q', inner, at + 1)[0]
        if at + 9 + length > len(inner):
            return
        yield from _mcap_record(op, inner[at + 9 : at + 9 + length])
        at += 9 + length
