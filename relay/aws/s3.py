"""The one module that talks to S3: boto3 clients from a job's `s3` settings, and objects
named by AWS events fetched and parsed chunk by chunk (`relay.aws.s3logs`).

boto3 is imported on first use, not with this module: it costs a quarter of a second, and a
job or a Lambda invocation that never reads S3 should not pay it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..keys import ConfigError, Keys
from ..times import ReceiveClock, receive_clock
from . import s3logs
from .events import S3Ref


@dataclass(slots=True)
class S3Settings:
    region: str = ""
    endpoint_url: str = ""
    force_path_style: bool = False
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    max_attempts: int = 3


def parse_s3(b: Keys) -> S3Settings:
    """A job's `s3` block."""
    s3 = S3Settings(
        region=b.get_str("region"),
        endpoint_url=b.get_str("endpoint_url"),
        force_path_style=b.get_bool("force_path_style"),
        access_key_id=b.get_str("access_key_id"),
        secret_access_key=b.get_str("secret_access_key"),
        session_token=b.get_str("session_token"),
        max_attempts=b.get_int("max_attempts", 3, 1, 20),
    )
    b.done()
    if bool(s3.access_key_id) != bool(s3.secret_access_key):
        raise ConfigError(f"{b.path}: access_key_id and secret_access_key go together")
    if s3.endpoint_url and not s3.endpoint_url.startswith(("http://", "https://")):
        raise ConfigError(f"{b.at('endpoint_url')}: must be an http:// or https:// URL")
    return s3


class S3ReadError(Exception):
    """An S3 object could not be fetched or read (answer 502; the SQS message fails)."""

    def __init__(self, ref: S3Ref, reason: str, detail: str) -> None:
        super().__init__(f"s3://{ref.bucket}/{ref.key}: {detail}")
        self.reason = reason  # s3, corrupt, too_large


class S3Clients:
    """boto3 S3 clients from one `s3` block, created on first use (one per region), thread-safe."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._session: Any = None

    def get(self, region: str = "") -> Any:
        region = self.settings.region or region
        client = self._clients.get(region)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                import boto3
                from botocore.config import Config as BotoConfig

                s = self.settings
                if self._session is None:
                    self._session = boto3.session.Session(
                        aws_access_key_id=s.access_key_id or None,
                        aws_secret_access_key=s.secret_access_key or None,
                        aws_session_token=s.session_token or None,
                    )
                cfg = BotoConfig(
                    s3={"addressing_style": "path" if s.force_path_style else "auto"},
                    retries={"max_attempts": s.max_attempts, "mode": "standard"},
                    max_pool_connections=32,
                    connect_timeout=10,
                    read_timeout=60,
                )
                client = self._session.client("s3", region_name=region or None, endpoint_url=s.endpoint_url or None,
                                              config=cfg)
                self._clients[region] = client
        return client


class ObjectReader:
    """One S3 object, fetched and parsed chunk by chunk. Every method blocks: call it from a thread."""

    def __init__(self, clients: S3Clients, ref: S3Ref, receive_ns: int | ReceiveClock) -> None:
        self.clients = clients
        self.ref = ref
        self.clock = receive_clock(receive_ns)  # for lines without a time of their own
        self.obj = s3logs.classify(ref.bucket, ref.key)
        self.stats = s3logs.S3Stats()
        self._body: Any = None
        self._chunks: Any = None

    def next_chunk(self) -> list[tuple[int, str]] | None:
        """The next entries (unix ns, line), or None at the end. Raises S3ReadError."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self.obj.skip:
            return None
        try:
            if self._chunks is None:
                self._body = self.clients.get(self.ref.region).get_object(Bucket=self.ref.bucket, Key=self.ref.key)["Body"]
                self._chunks = s3logs.read_entries(self.obj, self._body, self.clock, stats=self.stats)
            return next(self._chunks, None)
        except s3logs.ObjectTooLarge as e:
            raise S3ReadError(self.ref, "too_large", str(e)) from None
        except s3logs.S3LogError as e:
            raise S3ReadError(self.ref, "corrupt", str(e)) from None
        except ClientError as e:
            err = e.response.get("Error", {})
            raise S3ReadError(self.ref, "s3", f"{err.get('Code', '?')}: {err.get('Message', e)}") from None
        except (BotoCoreError, OSError) as e:
            raise S3ReadError(self.ref, "s3", f"{type(e).__name__}: {e}") from None

    def close(self) -> None:
        if self._chunks is not None:
            self._chunks.close()
        if self._body is not None:
            try:
                self._body.close()
            except Exception:
                pass


def open_object(client: Any, bucket: str, key: str) -> BinaryIO:
    """GetObject with a boto3 S3 client; the body streams and is gunzipped when it is gzip."""
    return s3logs.decompressed(client.get_object(Bucket=bucket, Key=key)["Body"])
