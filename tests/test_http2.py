"""HTTP/2: the hand-written frame decoder against h2, and Gunicorn serving HTTP/2.

The decoder (``streamlab.wire.http2``) reads frames that Hypothesis builds:
raw frames of every simple type, checked field by field against the frame
parser h2 uses, and whole responses written by an h2 server connection,
checked against what an h2 client connection makes of the same bytes.

Then real Gunicorn servers (gthread and ASGI workers, HTTP/2 beside
HTTP/1.1 on one port): the streamed CSV over both protocols, what the
modes of ``--http2-cleartext`` and the sync worker do, hostile input
(a bad preface, an oversized frame, a reset mid-body) answered with an error
and never a crashed worker or an unfinished generator, flow control,
and streams on one connection.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import psutil
import pytest
import requests
from h2.frame_buffer import FrameBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from demo_app import csvgen
from streamlab import DemoServer, raw_request
from streamlab.measurement import bench_results
from streamlab.measurement import http2_bench as hb
from streamlab.paths import PROJECT_ROOT
from streamlab.servers.process import free_port, still_running
from streamlab.wire import http2, http2_client
from streamlab.wire.chunked import decode_chunked
from streamlab.wire.http1 import exchange

# -- Raw frames against h2's frame parser ----------------------------------------------------

stream_ids = st.integers(1, 2**31 - 1)


@st.composite
def raw_frames(draw) -> bytes:
    """One frame of a simple type, any flag bits and the reserved bit set or not."""
    kind = draw(st.sampled_from(["DATA", "PING", "WINDOW_UPDATE", "RST_STREAM", "GOAWAY",
                                 "SETTINGS", "PRIORITY"]))
    flags, reserved = draw(st.integers(0, 255)), draw(st.integers(0, 1))
    stream = 0
    if kind == "DATA":
        stream, payload = draw(stream_ids), draw(st.binary(max_size=300))
        if flags & http2.PADDED:
            pad = draw(st.integers(0, 40))
            payload = bytes([pad]) + payload + b"\0" * pad
    elif kind == "PING":
        payload = draw(st.binary(min_size=8, max_size=8))
    elif kind == "WINDOW_UPDATE":
        stream = draw(st.integers(0, 2**31 - 1))
        payload = draw(st.integers(1, 2**31 - 1)).to_bytes(4, "big")
    elif kind == "RST_STREAM":
        stream, payload = draw(stream_ids), draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big")
    elif kind == "GOAWAY":
        payload = (draw(st.integers(0, 2**31 - 1)).to_bytes(4, "big")
                   + draw(st.integers(0, 13)).to_bytes(4, "big") + draw(st.binary(max_size=20)))
    elif kind == "SETTINGS":
        pairs = draw(st.lists(st.tuples(st.sampled_from([1, 3, 6]), st.integers(0, 2**31)),
                              max_size=4))
        payload = b"" if flags & http2.ACK else b"".join(
            code.to_bytes(2, "big") + value.to_bytes(4, "big") for code, value in pairs)
    else:  # PRIORITY: a dependency on another stream, and a weight
        stream, payload = draw(stream_ids), draw(st.binary(min_size=5, max_size=5))
        if int.from_bytes(payload[:4], "big") & 0x7FFF_FFFF == stream:
            payload = (stream + 1 & 0x7FFF_FFFF).to_bytes(4, "big") + payload[4:]
    return http2.encode_frame(kind, flags, stream, payload, reserved)


def _what_h2_reads(frame) -> dict:
    """The fields of a hyperframe frame (h2's parser) that ours must match."""
    fields = {"length": frame.body_len, "type": frame.type, "flags": set(frame.flags),
              "stream": frame.stream_id}
    name = type(frame).__name__
    if name == "DataFrame":
        fields["data"] = bytes(frame.data)
    elif name == "WindowUpdateFrame":
        fields["increment"] = frame.window_increment
    elif name in ("RstStreamFrame", "GoAwayFrame"):
        fields["error"] = frame.error_code
    if name == "GoAwayFrame":
        fields["last_stream"] = frame.last_stream_id
    if name == "SettingsFrame":
        fields["settings"] = dict(frame.settings)
    return fields


def _what_we_read(frame: http2.Frame) -> dict:
    fields = {"length": frame.length, "type": frame.type, "flags": set(frame.flag_names),
              "stream": frame.stream_id}
    name = frame.type_name
    if name == "DATA":
        fields["data"] = frame.data
    elif name == "WINDOW_UPDATE":
        fields["increment"] = frame.window_increment
    elif name in ("RST_STREAM", "GOAWAY"):
        fields["error"] = frame.error_code
    if name == "GOAWAY":
        fields["last_stream"] = frame.last_stream_id
    if name == "SETTINGS":
        codes = {n: c for c, n in http2.SETTINGS.items()}
        fields["settings"] = {codes[n]: v for n, v in frame.settings}
    return fields


@settings(max_examples=300, deadline=None)
@given(st.lists(raw_frames(), min_size=1, max_size=6), st.integers(0, 8))
def test_frame_decoder_agrees_with_h2s_parser(wire_frames: list[bytes], cut: int) -> None:
    data = b"".join(wire_frames)
    buffer = FrameBuffer(server=False)
    buffer.max_frame_size = 2**24 - 1
    buffer.add_data(data)
    theirs = [_what_h2_reads(f) for f in buffer]
    ours, rest = http2.decode_frames(data + data[:cut])  # a partial header follows the frames
    assert [_what_we_read(f) for f in ours] == theirs
    assert rest == data[:cut]
    assert b"".join(f.to_bytes() for f in ours) == data  # the reserved bit kept as sent


# -- Whole responses: h2 writes them, h2 and our decoder read them ----------------------------

header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                        max_size=40)


@st.composite
def responses(draw) -> dict:
    pieces = draw(st.lists(st.binary(min_size=1, max_size=9000), max_size=6))
    return {
        "pieces": pieces,
        "pads": [draw(st.one_of(st.none(), st.integers(0, 30))) for _ in pieces],
        "max_frame": draw(st.sampled_from([16_384, 20_000])),
        "x_demo": draw(header_values),
        "x_large": draw(st.sampled_from([0, 20_000])),  # bigger than a frame: CONTINUATION
        "trailers": draw(st.booleans()),
    }


def _h2_exchange(response: dict) -> tuple[bytes, list]:
    """The bytes an h2 server sends for ``response``, and the events an h2 client reads."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding="utf-8"))
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    client.initiate_connection()
    client.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: response["max_frame"]})
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    wire = server.data_to_send()  # the server's SETTINGS, and its ACK of the client's
    events = client.receive_data(wire)
    client.send_headers(1, http2.request_fields("/", "example"), end_stream=True)
    server.receive_data(client.data_to_send())
    headers = [(":status", "200"), ("x-demo", response["x_demo"]),
               ("x-large", "v" * response["x_large"])]
    server.send_headers(1, [(name, value) for name, value in headers if value])
    last = len(response["pieces"]) - 1
    for i, (piece, pad) in enumerate(zip(response["pieces"], response["pads"], strict=True)):
        server.send_data(1, piece, end_stream=i == last and not response["trailers"],
                         pad_length=pad)
    if response["trailers"]:
        server.send_headers(1, [("x-rows", str(last + 1))], end_stream=True)
    elif not response["pieces"]:
        server.end_stream(1)
    more = server.data_to_send()
    return wire + more, events + client.receive_data(more)


@settings(max_examples=150, deadline=None)
@given(responses())
def test_decoded_response_agrees_with_h2(response: dict) -> None:
    wire, events = _h2_exchange(response)
    frames, rest = http2.decode_frames(wire)
    assert rest == b""
    data = [f for f in frames if f.type_name == "DATA"]
    received = [e for e in events if isinstance(e, h2.events.DataReceived)]
    assert [f.data for f in data] == [e.data for e in received]
    assert [f.length for f in data] == [e.flow_controlled_length for e in received]
    assert all(f.length <= response["max_frame"] for f in frames)
    assert b"".join(f.data for f in data) == b"".join(response["pieces"])
    # Header blocks: HEADERS and CONTINUATION pieces, decoded with one HPACK table.
    decoder, block, blocks = hpack.Decoder(), b"", []
    for frame in frames:
        if frame.type_name in ("HEADERS", "CONTINUATION"):
            block += frame.header_block
            if frame.flags & http2.END_HEADERS:
                blocks.append(decoder.decode(block))
                block = b""
    header_events = [e.headers for e in events
                     if isinstance(e, h2.events.ResponseReceived | h2.events.TrailersReceived)]
    assert blocks == [[tuple(f) for f in h] for h in header_events]
    assert [f.stream_id for f in frames if f.end_stream] == [1]
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    server_settings = next(f for f in frames if f.type_name == "SETTINGS")
    changed = next(e for e in events if isinstance(e, h2.events.RemoteSettingsChanged))
    assert dict(server_settings.settings) == {
        code.name: value.new_value for code, value in changed.changed_settings.items()}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9-]{0,200}", fullmatch=True),
                          header_values), max_size=5))
def test_hand_encoded_request_headers_decode_with_hpack(fields) -> None:
    frame = http2.decode_frames(http2.headers_frame(1, fields))[0][0]
    assert frame.flag_names == ["END_STREAM", "END_HEADERS"]
    assert [tuple(f) for f in hpack.Decoder().decode(frame.header_block)] == fields


def test_hpack_integers_follow_rfc_7541_examples():
    # RFC 7541, appendix C.1: 10 and 1337 with a 5-bit prefix, 42 with an 8-bit one.
    assert http2.hpack_integer(10, 5) == bytes([0b01010])
    assert http2.hpack_integer(1337, 5) == bytes([0b11111, 0b10011010, 0b00001010])
    assert http2.hpack_integer(42, 8) == bytes([42])


def test_frame_payload_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="not DATA"):
        _ = http2.Frame(http2.TYPE_CODES["PING"], 0, 0, b"\0" * 8).data
    with pytest.raises(ValueError, match="padding 9 is not shorter"):
        _ = http2.Frame(0, http2.PADDED, 1, b"\x09abc").data
    with pytest.raises(ValueError, match="multiple of 6"):
        _ = http2.Frame(http2.TYPE_CODES["SETTINGS"], 0, 0, b"\0" * 5).settings
    with pytest.raises(ValueError, match="nine|9 bytes"):
        http2.parse_header(b"\0" * 5)


# -- Gunicorn speaking HTTP/2 -----------------------------------------------------------------

HEAVY = "rows=500000&chunk_rows=64"  # 10 MB in 1.1 KB pieces: far more than any window


@pytest.fixture(scope="module", params=["gthread", "asgi"])
def h2_server(request, events):
    """A server speaking HTTP/2 and HTTP/1.1 on one port; a stalled stream gives up after 3 s."""
    threads = 4 if request.param == "gthread" else None
    with DemoServer(name=f"tests-h2-{request.param}", worker_class=request.param,
                    threads=threads, http2=True, timeout=3, env=events.env) as server:
        yield server


def _worker_pid(server: DemoServer) -> int:
    (worker,) = server.worker_processes()
    return worker.pid


def test_the_streamed_csv_over_http2_and_http1_on_one_port(h2_server):
    path = hb.streaming_path(h2_server)
    url = h2_server.url(f"{path}?rows=2000&chunk_rows=100")
    stream, client = http2_client.get(url)
    over_http1 = raw_request(url)
    expected = csvgen.csv_text(2000).encode()
    assert stream.status == 200 and bytes(stream.body) == expected
    assert "transfer-encoding" not in stream.headers and "connection" not in stream.headers
    assert [f.stream_id for f in client.frames if f.end_stream] == [stream.id]
    assert stream.frames[-1].type_name == "DATA" and stream.frames[-1].end_stream
    assert over_http1.headers.chunked and decode_chunked(over_http1.body).data == expected
    assert any("HTTP/2" in line for line in h2_server.log.splitlines())


def test_an_http2_server_listens_on_loopback_only_and_stops_clean():
    server = DemoServer(name="tests-h2-lifecycle", worker_class="gthread", http2=True).start()
    try:
        assert "--http2-cleartext" in server.command(server.port)
        listening = [c for c in server.master_process().net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert {c.laddr.ip for c in listening} == {"127.0.0.1"}
        assert http2_client.get(server.url("/hello"))[0].status == 200
        pids = server.pids()
    finally:
        server.stop()
    assert still_running(pids) == []


def test_prior_knowledge_alone_refuses_http1_and_both_does_not():
    only = ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge"]
    with DemoServer(name="tests-h2-pk", worker_class="gthread", extra_args=only) as server:
        refused = raw_request(server.url("/hello"))
        assert http2_client.get(server.url("/hello"))[0].status == 200
    assert refused.status == 400 and b"HTTP/2 connection preface" in refused.body
    with DemoServer(name="tests-h2-both", worker_class="gthread", http2=True) as server:
        assert raw_request(server.url("/hello")).status == 200


def test_the_sync_worker_warns_and_answers_the_preface_in_http1(tmp_path):
    with DemoServer(name="tests-h2-sync", worker_class="sync", http2=True) as server:
        pid = _worker_pid(server)
        reply = exchange("127.0.0.1", server.port, http2.PREFACE + http2.settings_frame())
        assert requests.get(server.url("/hello"), timeout=5).ok and _worker_pid(server) == pid
        log = server.log
    assert "HTTP/2 is not supported by the sync worker" in log
    assert reply.data.startswith(b"HTTP/1.1 400 ") and reply.closed_by_server


def test_http2_is_refused_for_a_worker_that_would_ignore_it():
    with pytest.raises(ValueError, match="tornado worker does not speak HTTP/2"):
        DemoServer(worker_class="tornado", http2=True)


def test_a_bad_preface_gets_a_400_and_the_worker_lives_on(h2_server):
    pid = _worker_pid(h2_server)
    reply = exchange("127.0.0.1", h2_server.port, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    assert reply.status == 400 and reply.closed_by_server
    assert http2_client.get(h2_server.url("/hello"))[0].status == 200
    assert _worker_pid(h2_server) == pid


@pytest.mark.parametrize(("frame", "error"), [
    (http2.encode_frame("HEADERS", http2.END_HEADERS, 1, b"\0" * 20_000), "FRAME_SIZE_ERROR"),
    (http2.encode_frame("DATA", 0, 0, b"x"), "PROTOCOL_ERROR"),
], ids=["oversized frame", "DATA on stream 0"])
def test_a_broken_frame_gets_a_goaway_and_the_worker_lives_on(h2_server, frame, error):
    pid = _worker_pid(h2_server)
    with http2_client.Http2Client("127.0.0.1", h2_server.port) as client:
        client.read_for(0.2)
        client.send(frame)
        client.read_until(lambda: client.closed, timeout=5)
    assert client.goaway is not None and client.goaway.error_name == error
    assert http2_client.get(h2_server.url("/hello"))[0].status == 200
    assert _worker_pid(h2_server) == pid


def test_a_reset_mid_body_closes_the_generator_and_the_connection_serves_on(h2_server, events):
    path, tag = hb.tagged_path(h2_server), events.tag("reset")
    pid = _worker_pid(h2_server)
    with http2_client.Http2Client("127.0.0.1", h2_server.port) as client:
        stream = client.request(f"{path}?{HEAVY}&delay_ms=5&tag={tag}")
        client.read_until(lambda: len(stream.body) > 10_000, timeout=5)
        client.reset(stream.id)
        event = events.wait(tag)
        after = client.get(f"{path}?rows=5", timeout=5)
    assert event is not None, "the generator's finally never ran"
    expected = {"gthread": "GeneratorExit", "asgi": "CancelledError"}[h2_server.worker_class]
    assert event["outcome"] == expected and event["bytes"] < csvgen.csv_size(500_000)
    assert after.status == 200 and bytes(after.body) == csvgen.csv_text(5).encode()
    assert _worker_pid(h2_server) == pid


def test_a_client_that_stops_reading_stops_the_generator(h2_server, events):
    stall = hb.stop_reading(h2_server, events, rows=500_000, watch_s=0.5)
    assert stall.received == stall.window == 65_535  # the window, to the byte
    assert stall.reset == "CANCEL" and stall.reset_s > 2.5  # --timeout 3, no progress
    if h2_server.worker_class == "gthread":  # ASGI: see the next test
        piece = len(next(csvgen.iter_chunks(500_000, 64)).encode()) + 20
        assert stall.event["outcome"] == "GeneratorExit"
        assert stall.window <= stall.produced < stall.window + 2 * piece


@pytest.mark.xfail(strict=True, reason=(
    "Django's ASGI handler closes only its own wrapper (aclosing(aiter(response))): a view's "
    "async generator stopped at a yield is not closed when its stream is reset (notebook 10)"))
def test_asgi_closes_a_generator_stopped_at_its_yield_at_once(events):
    with DemoServer(name="tests-h2-asgi-yield", worker_class="asgi", http2=True, timeout=3,
                    env=events.env) as server:
        tag = events.tag("yield")
        with http2_client.Http2Client("127.0.0.1", server.port) as client:
            stream = client.request(f"/stream_async?{HEAVY}&tag={tag}")
            client.read_until(lambda: len(stream.body) > 10_000, timeout=5)
            client.reset(stream.id)
            assert events.wait(tag, timeout=3) is not None


def test_streams_on_one_connection_gthread_in_turn_asgi_side_by_side(h2_server):
    path = hb.streaming_path(h2_server)
    slow, big = hb.two_streams(h2_server, f"{path}?rows=9&chunk_rows=1&delay_ms=100",
                               f"{path}?rows=200000&chunk_rows=4096")
    assert bytes(big.body) == csvgen.csv_text(200_000).encode() and slow.ended
    if h2_server.worker_class == "gthread":  # one thread serves the connection's streams
        assert big.first_data_at >= slow.last_at
    else:  # one task per stream: the download starts while the slow stream still runs
        assert big.first_data_at < slow.last_at


# -- scripts/serve.py and make bench ----------------------------------------------------------


def test_serve_script_with_http2_answers_both_protocols(tmp_path):
    port = free_port()
    command = [sys.executable, "scripts/serve.py", "--port", str(port),
               "--worker-class", "gthread", "--http2"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "DEMO_DB_PATH": str(tmp_path / "db.sqlite3")})
    url = f"http://127.0.0.1:{port}/download_csv_streaming?rows=3"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        over_http2, over_http1 = http2_client.get(url)[0], raw_request(url)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=20)
    assert bytes(over_http2.body) == csvgen.csv_text(3).encode() and over_http1.headers.chunked
    refused = subprocess.run([sys.executable, "scripts/serve.py", "--http2"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "sync worker does not speak HTTP/2" in refused.stderr


def test_compare_reads_the_same_body_both_ways(h2_server):
    result = hb.compare(h2_server, rows=20_000, chunk_rows=4096, repeats=1)
    assert result.bytes == csvgen.csv_size(20_000) and result.pieces == 5
    assert result.http1.protocol == "HTTP/1.1" and result.http2.protocol == "HTTP/2"
    for run in (result.http1, result.http2):
        assert 0 < run.ttfb_s <= run.total_s and run.throughput > 0
    assert result.http2.framing_bytes == 9 * result.http2.pieces_on_wire
    assert result.throughput_ratio == pytest.approx(
        result.http2.throughput / result.http1.throughput)
    text = hb.format_comparison(result)
    assert "HTTP/2 / HTTP/1.1: TTFB x" in text and "DATA frames" in text


def test_bench_results_carry_the_comparison_and_old_files_still_load():
    run = bench_results.ProtocolRun("HTTP/2", 0.004, 0.1, 40 * 2**20, 90, 160, 10,
                                    [0.004], [0.1])
    comparison = bench_results.Http2Comparison(
        "gthread", "/download_csv_streaming", 1000, 100, 20_000, 10, 1, hb.BROWSER_WINDOW,
        dataclasses.replace(run, protocol="HTTP/1.1"), run, 1.0, 1.0)
    br = bench_results
    timeline = br.ArrivalRun(ttfb_s=None, total_s=0.1, timeline=[])
    peak = br.ClientPeak(how="content", bytes=1, peak=1, read_size=1)
    results = br.BenchResults(
        created="2030-01-01T00:00:00+00:00", config=br.BenchConfig(sizes=[1]),
        machine=br.Machine(versions={}, platform="test", cpus=None, memory_total=1,
                           load_average=None),
        default_chunk_rows=1, max_plain_rows=1, sizes=br.SizeSeries(streaming=[], plain=[]),
        chunks=br.ChunkSweep(rows=1, bytes=1, repeats=1, read_size=1, default_chunk_rows=1,
                             plain=br.WholeBody(0.1, 0.1, 1.0), points=[]),
        arrival=br.Arrival(rows=1, bytes=1, streaming=timeline, plain=timeline),
        client_memory=br.ClientMemory(rows=1, bytes=1, content=peak, iter_content=peak),
        elapsed_s=1.0, targets=[], http2=comparison)
    again = bench_results.BenchResults.from_json(results.to_json())
    assert again == results and again.http2.http2.framing_bytes == 90
    without = json.loads(results.to_json())
    del without["http2"]  # a file written before the comparison existed
    assert bench_results.BenchResults.from_dict(without).http2 is None
