"""A local S3 server for the cloud tests: moto on 127.0.0.1, counting requests server-side.

Every request the server answers is logged (method, path, query, Range header,
bytes sent), so tests can assert how many LISTs and GETs a run made and how
many bytes it fetched. The server runs in a thread of the test process; pool
workers and Dask workers reach it over loopback like any client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import in_ci, skip_or_fail

#: IDC's bucket and the LUNG1-001 CT folder (``ct_lung1/image`` byte for byte).
BUCKET = "idc-open-data-cr"
LUNG1_CT_UUID = "40db0070-9773-413a-8d7e-c91c37c0006b"
LUNG1_CT_BYTES = 70_514_186
LUNG1_CT_COUNT = 134


@dataclass(frozen=True)
class Request:
    """One request the server answered."""

    method: str
    path: str
    query: str
    range: str | None
    status: int
    sent: int

    @property
    def is_list(self) -> bool:
        """A ListObjects(V2) request (GET on the bucket with list parameters)."""
        return self.method == "GET" and self.path.strip("/").count("/") == 0 and (
            "list-type" in self.query or "prefix" in self.query or "delimiter" in self.query)

    @property
    def is_object_get(self) -> bool:
        """A GetObject request (GET on a key)."""
        return self.method == "GET" and self.path.strip("/").count("/") >= 1


class _Counting:
    """WSGI middleware logging each request and the bytes of its response body."""

    def __init__(self, app: Callable[..., Iterable[bytes]], log: list[Request],
                 lock: threading.Lock) -> None:
        self.app, self.log, self.lock = app, log, lock
        self.throttle = 0  # answer this many object GETs with 503 SlowDown first

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterator[bytes]:
        status: list[int] = []
        path = environ.get("PATH_INFO", "")
        with self.lock:
            slow = (self.throttle > 0 and environ["REQUEST_METHOD"] == "GET"
                    and path.strip("/").count("/") >= 1)
            if slow:
                self.throttle -= 1
                self.log.append(Request("GET", path, environ.get("QUERY_STRING", ""),
                                        environ.get("HTTP_RANGE"), 503, 0))
        if slow:
            start_response("503 Slow Down", [("Content-Type", "application/xml")])
            yield (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                   b"<Message>Please reduce your request rate.</Message></Error>")
            return

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(int(code.split()[0]))
            return start_response(code, headers, exc_info) if exc_info else start_response(
                code, headers)

        sent = 0
        body = self.app(environ, start)
        try:
            for chunk in body:
                sent += len(chunk)
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            with self.lock:
                self.log.append(Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                                        environ.get("QUERY_STRING", ""),
                                        environ.get("HTTP_RANGE"),
                                        status[0] if status else 0, sent))


class S3Server:
    """moto's S3 on ``127.0.0.1:port`` in a thread, with a request log."""

    def __init__(self) -> None:
        try:
            from moto.server import DomainDispatcherApplication, create_backend_app
            from werkzeug.serving import WSGIRequestHandler, make_server
        except ImportError:
            skip_or_fail("moto[server] is not installed (pip install -e '.[test]')")
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        app = DomainDispatcherApplication(create_backend_app)
        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                """The request log is ours (``requests``), not stderr."""

        self._counting = _Counting(app, self.requests, self._lock)
        self._server = make_server("127.0.0.1", 0, self._counting, threaded=True,
                                   request_handler=Quiet)
        self.port = self._server.server_port
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut the server down (teardown)."""
        self._server.shutdown()
        self._thread.join(timeout=10)

    def client(self) -> Any:
        """A boto3 client with test credentials (for setting up buckets, not for dicomvol)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def public_bucket(self, name: str) -> None:
        """Create a bucket anyone may list and read (as IDC's are)."""
        client = self.client()
        client.create_bucket(Bucket=name)
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:HeadObject"],
             "Resource": f"arn:aws:s3:::{name}/*"},
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket"],
             "Resource": f"arn:aws:s3:::{name}"}]}
        client.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))

    def upload_folder(self, folder: Path, bucket: str, prefix: str,
                      key: Callable[[Path], str]) -> list[str]:
        """Upload every file of ``folder`` as ``prefix/key(file)``; the keys."""
        client = self.client()
        keys = []
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            name = f"{prefix}/{key(path)}"
            client.put_object(Bucket=bucket, Key=name, Body=path.read_bytes())
            keys.append(name)
        return keys

    def throttle(self, n: int) -> None:
        """Answer the next ``n`` object GETs with 503 SlowDown (as S3 does under load)."""
        with self._lock:
            self._counting.throttle = n

    def reset_log(self) -> None:
        """Forget the requests so far."""
        with self._lock:
            self.requests.clear()

    def log(self) -> list[Request]:
        """The requests answered since the last reset."""
        with self._lock:
            return list(self.requests)


def sop_instance_key(path: Path) -> str:
    """``<SOPInstanceUID>.dcm``: the index ships no crdc_instance_uuid, so objects are named
    by their SOPInstanceUID (IDC's real keys are per-instance UUIDs; dicomvol never guesses
    object names, it lists the series folder)."""
    import pydicom

    return f"{pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID}.dcm"


__all__ = ["BUCKET", "LUNG1_CT_BYTES", "LUNG1_CT_COUNT", "LUNG1_CT_UUID", "Request", "S3Server",
           "in_ci", "sop_instance_key"]
