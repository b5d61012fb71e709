"""Coverage-guided fuzzing of the HJ 212 decoder (ingest.hj212) with atheris (libFuzzer).

    .venv/bin/pip install atheris     # a tool, not a project dependency
    .venv/bin/python bench/fuzz_hj212.py [--runs N] [libFuzzer flags…]

Each input chooses a chunk size and a length limit (its first two bytes), then its bytes are
fed to a FrameDecoder chunk by chunk, as sent or wrapped in a frame with a valid CRC. Every decoded frame is mapped to a water payload, its 9014 reply is built
and decoded again, and it is rebuilt and parsed back. A crash is any exception other than
the module's named errors, a buffer over its bound, a reply that does not decode, or a frame
that does not survive build → parse; libFuzzer then saves the input as crash-*.

Seeds are the corpus of tests/fixtures/hj212, written to a scratch directory (libFuzzer writes
what it finds into its corpus directory, and the repository's fixtures stay as they are).
Prints figures at the end: runs, frames decoded, errors by reason. Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import atheris

ROOT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT_DIR))

with atheris.instrument_imports():
    from ingest.hj212 import (
        Frame,
        FrameDecoder,
        FrameError,
        UnmappableFrame,
        build_segment,
        data_ack,
        decode_frame,
        encode_frame,
        parse_segment,
        water_payload,
    )

SEEDS = ROOT_DIR / "tests" / "fixtures" / "hj212"
LIMITS = [0, 16, 101, 1024]

stats: Counter[str] = Counter()
# libFuzzer ends the process from C when it is done, so Python's atexit never runs: the
# figures are printed from inside the last run (and every REPORT_EVERY runs before it).
REPORT_EVERY = 250_000
_run = {"target": 0, "started": 0.0, "corpus": Path()}


def one_input(data: bytes) -> None:
    stats["runs"] += 1
    try:
        decode_stream(data)
    finally:
        if stats["runs"] == _run["target"] or stats["runs"] % REPORT_EVERY == 0:
            report()


def decode_stream(data: bytes) -> None:
    # Input layout: [chunk size - 1][mode][bytes…]. Mode bits 0-1 pick the length limit; bit 7
    # wraps the bytes as a data segment in a frame with the right length and CRC, so that
    # mutations reach the data-segment parser past the CRC, which they rarely get right.
    if len(data) < 2:
        return
    chunk, mode, stream = data[0] + 1, data[1], data[2:]
    if mode & 0x80:
        stream = encode_frame(stream[:9999])
    decoder = FrameDecoder(max_data_length=LIMITS[mode & 0b11])
    for at in range(0, len(stream), chunk):
        for event in decoder.feed(stream[at:at + chunk]):
            if isinstance(event, FrameError):
                stats[f"error {event.reason}"] += 1
                continue
            check_frame(event)
        if decoder.buffered > decoder.max_buffered:
            raise AssertionError(f"decoder holds {decoder.buffered} bytes, its bound is {decoder.max_buffered}")


def check_frame(frame: Frame) -> None:
    stats["frames"] += 1
    try:
        water_payload(frame)
        stats["payloads"] += 1
    except UnmappableFrame as exc:
        stats[f"unmappable {exc.reason}"] += 1
    reply = decode_frame(data_ack(frame))
    if (reply.qn, reply.mn, reply.cn) != (frame.qn, frame.mn, "9014"):
        raise AssertionError(f"reply {reply} does not answer {frame}")
    if parse_segment(build_segment(frame)) != frame:
        raise AssertionError(f"{frame} does not survive build and parse")


def report() -> None:
    elapsed = time.perf_counter() - _run["started"]
    corpus = _run["corpus"]
    print(f"\nHJ 212 decoder fuzzing: {stats['runs']:,} inputs in {elapsed:.1f} s "
          f"({stats['runs'] / max(elapsed, 1e-9):,.0f}/s), {stats['frames']:,} frames decoded, "
          f"{stats['payloads']:,} mapped to payloads; corpus of {len(list(corpus.iterdir()))} inputs in {corpus}",
          flush=True)
    for key, n in sorted(stats.items()):
        if key.startswith(("error", "unmappable")):
            print(f"  {key:<26} {n:>12,}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200_000, help="inputs to try (libFuzzer -runs)")
    args, libfuzzer_args = parser.parse_known_args()
    corpus = Path(tempfile.mkdtemp(prefix="hj212-fuzz-"))
    for seed in SEEDS.glob("*.txt"):
        frame = seed.read_bytes()
        # As sent, in one chunk and byte by byte, and its data segment to be wrapped.
        (corpus / seed.name).write_bytes(b"\xff\x03" + frame)
        (corpus / f"bytewise-{seed.name}").write_bytes(b"\x00\x03" + frame)
        (corpus / f"segment-{seed.name}").write_bytes(b"\xff\x83" + frame[6:-6])
    _run.update(target=args.runs, started=time.perf_counter(), corpus=corpus)
    atheris.Setup([sys.argv[0], f"-runs={args.runs}", *libfuzzer_args, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
