"""One copy in a fresh process, which reports its time and memory as one JSON line.

`python -m bench.copy_child relay|upload_file SIZE VIDEO_ORIGIN BUCKET`, with AWS_ENDPOINT_URL set.
`relay` streams VIDEO_ORIGIN/SIZE.mp4 into S3 through the real downloader and video store, wired
exactly as the copy worker gets them (veo_relay.wiring); `upload_file` is boto3's upload of the same
bytes from a local file (written before the clock starts)."""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
from typing import Any

import boto3

from bench.procs import with_layer_on_path
from offline.simulator import iter_mp4

KIB = 1024


def main() -> None:
    mode, size, origin, bucket = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    key = f"bench/{mode}-{size}.mp4"
    s3 = boto3.client("s3")
    s3.head_bucket(Bucket=bucket)  # clients and service models loaded before "before"
    if mode == "relay":
        measured = _relay(size, origin, bucket, key)
    else:
        measured = _upload_file(s3, size, bucket, key)
    s3.delete_object(Bucket=bucket, Key=key)  # so that moto does not keep every copy
    print(json.dumps({"mode": mode, "size": size, **measured}))


def _relay(size: int, origin: str, bucket: str, key: str) -> dict[str, Any]:
    os.environ.update(
        TASKS_TABLE="unused",
        VIDEO_BUCKET=bucket,
        PROVIDER_KEYS_SECRET_ARN="unused",  # the copy worker's settings; no provider is called
        APIXO_BASE_URL=origin,
        TRUST_PROVIDER_ORIGIN="true",  # the loopback origin, trusted as `make run` trusts it
    )
    with_layer_on_path()
    from veo_relay import wiring
    from veo_relay.downloader import open_video

    worker = wiring.copy_worker()
    settings = worker.settings
    policy = wiring.download_policy(settings.download, settings.access.providers["apixo"])
    videos = worker.videos
    videos.put_document(f"{key}.warmup", b"{}", "application/json", {})  # its client warmed up too
    before = _start_measuring()
    started = time.perf_counter()
    with open_video(f"{origin}/{size}.mp4", policy) as stream:
        stored = videos.store(stream, key, {"task-id": "bench"})
    seconds = time.perf_counter() - started
    if stored.size_bytes != size:
        raise RuntimeError(f"stored {stored.size_bytes} bytes of {size}")
    return {"seconds": seconds, **_memory(before)}


def _upload_file(s3: Any, size: int, bucket: str, key: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(prefix="veo-relay-bench-", suffix=".mp4") as file:
        for chunk in iter_mp4(size, "bench"):
            file.write(chunk)
        file.flush()
        before = _start_measuring()
        started = time.perf_counter()
        s3.upload_file(file.name, bucket, key)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, **_memory(before)}


def _start_measuring() -> int:
    """RSS now, with the peak reset to it (Linux: clear_refs 5), so that the peak is the copy's."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass  # the peak then also covers the start-up, which stays below the copy's
    return _status_kib("VmRSS") * KIB


def _memory(before: int) -> dict[str, int]:
    return {"rss_before": before, "peak": _status_kib("VmHWM") * KIB}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


if __name__ == "__main__":
    main()
