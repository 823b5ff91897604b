"""Prepared inputs in an S3-compatible object store (``[prepared] backend = "s3"``), through boto3.

Keys are ``<s3_prefix><job id>/<name>``.  S3 has no transaction across keys, so the set is made
whole by order: pictures first, the manifest last; reads start from the manifest (no manifest:
nothing there); removal deletes the manifest first.  Each object is one PUT, so a reader never
sees half of one.  boto3 is imported only when this backend is configured.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy.orm import Session

from radassist.config import PreparedSettings
from radassist.store.prepared import BlobStore
from radassist.store.prepared_codec import MANIFEST


def _client(settings: PreparedSettings) -> Any:
    import boto3
    from botocore.config import Config

    secret = settings.s3_secret_access_key.get_secret_value()
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region or None,
        aws_access_key_id=settings.s3_access_key_id or None,
        aws_secret_access_key=secret or None,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    )


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


class S3PreparedStore(BlobStore):
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def for_settings(cls, settings: PreparedSettings) -> S3PreparedStore:
        return cls(_client(settings), settings.s3_bucket, settings.s3_prefix)

    def _key(self, job_id: uuid.UUID, name: str = "") -> str:
        return f"{self.prefix}{job_id}/{name}"

    def _get(self, job_id: uuid.UUID, name: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(job_id, name))
        except Exception as exc:
            if _missing(exc):
                return None
            raise OSError(f"the object store refused a read ({type(exc).__name__})") from None
        data: bytes = response["Body"].read()
        return data

    def _names(self, job_id: uuid.UUID) -> dict[str, int]:
        names: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(job_id)):
            for item in page.get("Contents", ()):
                names[item["Key"].rsplit("/", 1)[-1]] = int(item.get("Size", 0))
        return names

    def write_blobs(self, job_id: uuid.UUID, blobs: Mapping[str, bytes]) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(job_id, MANIFEST))
            for name, data in [*((n, d) for n, d in blobs.items() if n != MANIFEST), (MANIFEST, blobs[MANIFEST])]:
                self.client.put_object(Bucket=self.bucket, Key=self._key(job_id, name), Body=data)
        except Exception as exc:  # boto3's errors may quote the request: re-raised with a clean message
            raise OSError(f"the object store refused a write ({type(exc).__name__})") from None

    def read_blobs(self, job_id: uuid.UUID, names: Collection[str] | None = None) -> dict[str, bytes] | None:
        manifest = self._get(job_id, MANIFEST)
        if manifest is None:
            return None
        blobs = {MANIFEST: manifest}
        wanted = [n for n in self._names(job_id) if n != MANIFEST] if names is None else names
        for name in wanted:
            data = self._get(job_id, name)
            if data is not None:
                blobs[name] = data
        return blobs

    def remove(self, job_id: uuid.UUID, *, session: Session | None = None) -> tuple[int, int]:
        try:
            names = self._names(job_id)
            ordered = ([MANIFEST] if MANIFEST in names else []) + [n for n in names if n != MANIFEST]
            for name in ordered:  # the manifest first: no longer whole
                self.client.delete_object(Bucket=self.bucket, Key=self._key(job_id, name))
        except Exception as exc:
            raise OSError(f"the object store refused a removal ({type(exc).__name__})") from None
        return len(names), sum(names.values())
