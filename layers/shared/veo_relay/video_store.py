"""Streaming a downloaded video into S3, and finding it again.

The body goes through boto3's transfer manager straight from the VideoStream (multipart above
8 MiB), so memory stays bounded whatever the video's size: roughly
``(max_in_memory_upload_chunks + 1) x multipart_chunksize`` = 5 x 8 MiB for one upload.

An object counts as stored only once it carries the ``sha256`` tag, which is written last: the
hash is known only after streaming, and a tag can be read back (``find``) without downloading.
If anything fails before that, s3transfer aborts the multipart upload (its failure cleanup calls
AbortMultipartUpload; a single PutObject is atomic), so no partial object remains; a bucket
lifecycle rule ``AbortIncompleteMultipartUpload`` covers a process killed mid-upload.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.exceptions import ClientError
from s3transfer.subscribers import BaseSubscriber

if TYPE_CHECKING:
    from veo_relay.downloader import VideoStream

__all__ = ["SHA256_TAG", "StoredVideo", "VideoStore"]

SHA256_TAG = "sha256"
VIDEO_CONTENT_TYPE = "video/mp4"
_MIB = 1024 * 1024
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit


@dataclass(frozen=True)
class StoredVideo:
    bucket: str
    key: str
    size_bytes: int
    sha256: str
    content_type: str


def default_transfer_config() -> TransferConfig:
    config = TransferConfig(
        multipart_threshold=8 * _MIB,
        multipart_chunksize=8 * _MIB,  # 10,000 parts x 8 MiB: videos up to ~78 GiB
        max_concurrency=4,
        use_threads=True,
        # The CRT client ignores most of these settings; keep the classic, bounded one.
        preferred_transfer_client="classic",
    )
    # Parts read from a non-seekable stream wait in memory for an upload thread; by default up
    # to 10 of them. Match the number of upload threads instead.
    config.max_in_memory_upload_chunks = 4
    return config


class VideoStore:
    def __init__(
        self, s3_client: Any, bucket: str, *, transfer_config: TransferConfig | None = None
    ) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._config = transfer_config or default_transfer_config()

    @property
    def bucket(self) -> str:
        return self._bucket

    def store(self, stream: VideoStream, key: str, metadata: dict[str, str]) -> StoredVideo:
        """Stream ``stream`` to ``key``; errors from the stream or S3 propagate unchanged.

        Rewriting an existing key replaces it (the caller makes the key idempotent per job).
        """
        if not key:
            raise ValueError("key must not be empty")
        extra_args = {
            "ContentType": VIDEO_CONTENT_TYPE,
            "Metadata": dict(metadata),
            "ChecksumAlgorithm": "CRC32",  # S3 verifies every part (and the object) on arrival
        }
        with create_transfer_manager(self._s3, self._config) as transfer:
            transfer.upload(
                stream,  # type: ignore[arg-type]  # file-like enough: s3transfer only reads it
                self._bucket,
                key,
                extra_args,
                subscribers=_size_known(stream),
            ).result()

        # No HEAD to check the size: S3 verified every part's CRC32, so the object holds exactly
        # the bytes the stream handed out.
        sha256 = stream.sha256_hex()
        self._s3.put_object_tagging(
            Bucket=self._bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": SHA256_TAG, "Value": sha256}]},
        )
        return StoredVideo(
            bucket=self._bucket,
            key=key,
            size_bytes=stream.bytes_read,
            sha256=sha256,
            content_type=VIDEO_CONTENT_TYPE,
        )

    def find(self, key: str) -> StoredVideo | None:
        """The completely stored video at ``key``, or None (absent, or never tagged: redo it)."""
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
            tagging = self._s3.get_object_tagging(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                return None
            raise
        tags = {tag["Key"]: tag["Value"] for tag in tagging.get("TagSet", [])}
        sha256 = tags.get(SHA256_TAG, "")
        if not _SHA256_RE.fullmatch(sha256):
            return None
        return StoredVideo(
            bucket=self._bucket,
            key=key,
            size_bytes=int(head["ContentLength"]),
            sha256=sha256,
            content_type=head.get("ContentType") or VIDEO_CONTENT_TYPE,
        )

    def put_document(
        self, key: str, body: bytes, content_type: str, metadata: dict[str, str]
    ) -> None:
        """A small object (a manifest) in one atomic PutObject."""
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            Metadata=dict(metadata),
            ChecksumAlgorithm="SHA256",
        )

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                return False
            raise
        return True

    def read_document(self, key: str, max_bytes: int) -> bytes:
        """A small object's bytes; ValueError when it is larger than `max_bytes`."""
        response = self._s3.get_object(Bucket=self._bucket, Key=key)
        if int(response["ContentLength"]) > max_bytes:
            response["Body"].close()
            raise ValueError(f"s3://{self._bucket}/{key} is larger than {max_bytes} bytes")
        return response["Body"].read()  # type: ignore[no-any-return]

    def measure(self, key: str) -> tuple[int, str]:
        """The object's size and SHA-256, streamed in bounded chunks (memory stays flat)."""
        response = self._s3.get_object(Bucket=self._bucket, Key=key)
        digest = hashlib.sha256()
        size = 0
        for chunk in response["Body"].iter_chunks(chunk_size=_MIB):
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()

    def presigned_url(self, key: str, expires_in: int) -> str:
        if not 1 <= expires_in <= _MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be between 1 and {_MAX_PRESIGN_SECONDS} seconds")
        return self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": key},
            ExpiresIn=expires_in,
        )


class _ProvideSize(BaseSubscriber):  # type: ignore[misc]
    def __init__(self, size: int) -> None:
        self._size = size

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self._size)


def _size_known(stream: VideoStream) -> list[BaseSubscriber]:
    """The announced size, when there is one, handed to the transfer manager: it then creates the
    multipart upload while the first part is still being received, instead of reading a whole
    part first to find out whether one PutObject would do. A body that does not match the
    announced size fails in the stream (TruncatedDownloadError), which aborts the upload."""
    if stream.content_length is None:
        return []
    return [_ProvideSize(stream.content_length)]


def _is_not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(error.get("Code")) in _NOT_FOUND_CODES or status == 404
