"""A fault-injecting HTTP proxy on 127.0.0.1 between the SDK (``AWS_ENDPOINT_URL``) and moto in server mode.

    with FaultProxy(moto_url) as proxy:
        proxy.fail("CreateTrainingJob", "drop-after-forward", times=1)
        ... submit with AWS_ENDPOINT_URL=proxy.url ...
        proxy.sent["CreateTrainingJob"]                    # how many reached the proxy

Faults (each for the next ``times`` matching requests):

- ``drop-after-forward``: the request reaches moto (the job is stored), then the connection is closed without an
  answer, as when a connection drops after SageMaker received the call;
- ``500-after-forward``: the request reaches moto, the caller gets a 500;
- ``500`` / ``503`` / ``403``: answered by the proxy, moto never sees the request.

It also answers what moto does not: a CreateTrainingJob for a name that already exists gets SageMaker's
``ResourceInUse`` (HTTP 400; moto 5.2 silently overwrites the job).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

IN_USE = (
    "Training job names must be unique within an AWS account and region, and a training job with this name "
    "already exists ({arn})"
)
"""SageMaker's ResourceInUse message for a duplicate CreateTrainingJob (as the CLI prints it)."""

S3_ERROR = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'


class FaultProxy:
    """The proxy server (a thread); ``url`` is what ``AWS_ENDPOINT_URL`` points at."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.faults: list[list] = []  # [operation, kind, times left]
        self.sent: Counter[str] = Counter()
        self.created: dict[str, str] = {}  # job name -> ARN, as moto answered
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, operation: str, kind: str, *, times: int = 1) -> None:
        """Inject ``kind`` into the next ``times`` requests of ``operation`` (e.g. ``CreateTrainingJob``,
        ``PutObject``)."""
        with self.lock:
            self.faults.append([operation, kind, times])

    def take_fault(self, operation: str) -> str | None:
        with self.lock:
            for fault in self.faults:
                if fault[0] == operation and fault[2] > 0:
                    fault[2] -= 1
                    return fault[1]
        return None


def operation_of(method: str, path: str, headers) -> str:
    """The AWS operation of a request: the JSON protocol's X-Amz-Target, else S3's REST verbs."""
    target = headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    query = urlsplit(path).query
    if method == "PUT" and "uploadId" in query:
        return "UploadPart"
    return {"PUT": "PutObject", "HEAD": "HeadObject", "GET": "GetObject", "POST": "S3Post"}.get(method, method)


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    chunk = self.rfile.read(size)
                    self.rfile.readline()
                    if size == 0:
                        return b"".join(chunks)
                    chunks.append(chunk)
            return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

        def _handle(self) -> None:
            body = self._body()
            operation = operation_of(self.command, self.path, self.headers)
            proxy.sent[operation] += 1
            fault = proxy.take_fault(operation)
            if fault in ("500", "503", "403"):
                return self._error(int(fault), operation)
            if operation == "CreateTrainingJob":
                name = json.loads(body or b"{}").get("TrainingJobName", "")
                if name in proxy.created:
                    return self._json(400, {"__type": "ResourceInUse",
                                            "Message": IN_USE.format(arn=proxy.created[name])})  # fmt: skip
            status, headers, answer = self._forward(body)
            if operation == "CreateTrainingJob" and status == 200:
                proxy.created[name] = json.loads(answer)["TrainingJobArn"]
            if fault == "drop-after-forward":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return None
            if fault == "500-after-forward":
                return self._error(500, operation)
            return self._send(status, headers, answer)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            up = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection")}
            headers["Content-Length"] = str(len(body))
            up.request(self.command, self.path, body=body if body or self.command != "GET" else None, headers=headers)
            answer = up.getresponse()
            data = answer.read()
            up.close()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in ("transfer-encoding", "connection")]
            return answer.status, kept, data

        def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self._send(status, [("Content-Type", "application/x-amz-json-1.1"),
                                ("x-amzn-RequestId", "fault-proxy")], data)  # fmt: skip

        def _error(self, status: int, operation: str) -> None:
            if self.headers.get("X-Amz-Target"):
                kind = "AccessDeniedException" if status == 403 else "InternalFailure"
                return self._json(status, {"__type": kind, "Message": f"injected {status}"})
            code = "AccessDenied" if status == 403 else "InternalError"
            data = S3_ERROR.format(code=code, message=f"injected {status}").encode()
            return self._send(status, [("Content-Type", "application/xml")], data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

    return Handler
