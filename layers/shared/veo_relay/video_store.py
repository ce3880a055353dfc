"""Streaming a downloaded video into S3, create-only, and reading stored objects back.

The body goes through boto3's transfer manager straight from the VideoStream (multipart above
8 MiB), so memory stays bounded whatever the video's size: roughly
``(max_in_memory_upload_chunks + 1) x multipart_chunksize`` = 5 x 8 MiB for one upload.

Every write is create-only (S3 conditional writes, ``If-None-Match: *`` on PutObject and
CompleteMultipartUpload), so nothing here ever asks whether a key exists: without
``s3:ListBucket`` S3 answers HeadObject on a missing key with 403, not 404. A key is written once
per task; when S3 refuses a write because the key holds an object already (412), an earlier
attempt stored it and that object is taken as it is. The ``sha256`` tag is written last (the
hash is known only after streaming); an object found without it is hashed again.

If anything fails before the object exists, s3transfer aborts the multipart upload (its failure
cleanup calls AbortMultipartUpload; a single PutObject is atomic), so no partial object remains;
a bucket lifecycle rule ``AbortIncompleteMultipartUpload`` covers a process killed mid-upload.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.exceptions import ClientError
from s3transfer.subscribers import BaseSubscriber

from veo_relay.tasks import StoredVideo

if TYPE_CHECKING:
    from veo_relay.downloader import VideoStream

__all__ = ["SHA256_TAG", "VideoStore"]

SHA256_TAG = "sha256"
VIDEO_CONTENT_TYPE = "video/mp4"
_MIB = 1024 * 1024
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_CREATE_ONLY_OPERATIONS = ("PutObject", "CompleteMultipartUpload")
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit


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
        # s3transfer passes no IfNoneMatch through; botocore's parameter hook adds it to the
        # calls that create an object (one PutObject, or the multipart upload's completion).
        for operation in _CREATE_ONLY_OPERATIONS:
            s3_client.meta.events.register(
                f"before-parameter-build.s3.{operation}",
                _create_only,
                unique_id=f"veo-relay-create-only-{operation}",
            )

    @property
    def bucket(self) -> str:
        return self._bucket

    def store(self, stream: VideoStream, key: str, metadata: dict[str, str]) -> StoredVideo:
        """Stream ``stream`` to ``key``; errors from the stream or S3 propagate unchanged.

        When ``key`` holds an object already (an earlier attempt stored it, then stopped before
        the task was marked completed), that object is the stored video.
        """
        if not key:
            raise ValueError("key must not be empty")
        extra_args = {
            "ContentType": VIDEO_CONTENT_TYPE,
            "Metadata": dict(metadata),
            "ChecksumAlgorithm": "CRC32",  # S3 verifies every part (and the object) on arrival
        }
        try:
            with create_transfer_manager(self._s3, self._config) as transfer:
                transfer.upload(
                    stream,  # type: ignore[arg-type]  # file-like enough: s3transfer only reads it
                    self._bucket,
                    key,
                    extra_args,
                    subscribers=_size_known(stream),
                ).result()
        except ClientError as exc:
            if not _already_exists(exc):
                raise
            return self._stored_already(key)

        # No HEAD to check the size: S3 verified every part's CRC32, so the object holds exactly
        # the bytes the stream handed out.
        sha256 = stream.sha256_hex()
        self._tag(key, sha256)
        return StoredVideo(
            bucket=self._bucket,
            key=key,
            size_bytes=stream.bytes_read,
            sha256=sha256,
            content_type=VIDEO_CONTENT_TYPE,
        )

    def _stored_already(self, key: str) -> StoredVideo:
        """The object S3 said exists at ``key`` (only then are HEAD and GET sure to find it)."""
        head = self._s3.head_object(Bucket=self._bucket, Key=key)
        tagging = self._s3.get_object_tagging(Bucket=self._bucket, Key=key)
        tags = {tag["Key"]: tag["Value"] for tag in tagging.get("TagSet", [])}
        sha256 = tags.get(SHA256_TAG, "")
        size = int(head["ContentLength"])
        if not _SHA256_RE.fullmatch(sha256):
            # Stored, then stopped before the tag: hash what S3 holds.
            size, sha256 = self.measure(key)
            self._tag(key, sha256)
        return StoredVideo(
            bucket=self._bucket,
            key=key,
            size_bytes=size,
            sha256=sha256,
            content_type=head.get("ContentType") or VIDEO_CONTENT_TYPE,
        )

    def _tag(self, key: str, sha256: str) -> None:
        self._s3.put_object_tagging(
            Bucket=self._bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": SHA256_TAG, "Value": sha256}]},
        )

    def put_document(
        self, key: str, body: bytes, content_type: str, metadata: dict[str, str]
    ) -> bool:
        """A small object (a manifest) in one atomic, create-only PutObject: False when ``key``
        holds one already (written by an earlier attempt; it is not written, nor announced,
        twice)."""
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=dict(metadata),
                ChecksumAlgorithm="SHA256",
            )
        except ClientError as exc:
            if _already_exists(exc):
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
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": key},
            ExpiresIn=expires_in,
        )
        return url

    def delete(self, key: str) -> None:
        """Removes the object for good (the bucket keeps no versions); a key that holds none is
        no error, as in S3, so a retried deletion goes on."""
        self._s3.delete_object(Bucket=self._bucket, Key=key)


class _ProvideSize(BaseSubscriber):
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


def _create_only(params: dict[str, Any], **kwargs: Any) -> None:
    params.setdefault("IfNoneMatch", "*")


def _already_exists(exc: ClientError) -> bool:
    """S3's refusal of a create-only write: the key holds an object. (A 409
    ConditionalRequestConflict, a concurrent write, is left to the caller's retry.)"""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(error.get("Code")) == "PreconditionFailed" or status == 412
