"""A scriptable OpenAI-compatible chat-completions server for tests and benchmarks.

It binds 127.0.0.1 only and serves ``POST /v1/chat/completions`` (and
``/chat/completions``). Each request body is parsed and passed to a *script*,
a callable ``script(body: dict) -> reply``. The reply decides the response:

- a ``dict`` or list: sent as the assistant message content, JSON-encoded;
- a ``str``: sent as raw content, unchanged (use it for malformed or cut JSON);
- a ``Reply``: full control: ``Reply(content=..., finish_reason="length")``,
  ``Reply(status=429, headers={"Retry-After": "1"})``, ``Reply(delay=2.0, ...)``.

The server records every parsed body in ``stub.requests`` (thread-safe) and
counts them in ``stub.count``. Token usage in a response is an estimate of
4 characters per token, so accounting code gets non-zero numbers.

In pytest::

    from openai_stub import OpenAIStub, Reply  # pytest puts tests/ on sys.path

    with OpenAIStub(lambda body: {"answer": 1}) as stub:
        litellm.completion(model="openai/judge", api_base=stub.api_base, api_key="x", ...)
        assert stub.count == 1

From a shell (for benchmarks and subprocess tests), serve a fixed JSON answer
after a fixed delay::

    python tests/openai_stub.py --port 0 --delay 0.05 --answer-file answer.json

It prints ``listening on http://127.0.0.1:<port>/v1`` on stdout once it is ready,
and ``GET http://127.0.0.1:<port>/stats`` returns ``{"requests": N}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Reply:
    """A scripted response: HTTP status, headers, delay before answering, and content."""

    content: Any = None  # dict/list (JSON-encoded) or str (sent unchanged)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before the response is sent
    finish_reason: str = "stop"
    body: bytes | None = None  # raw response body; overrides everything but status and headers


Script = Callable[[dict[str, Any]], Any]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content)


def completion_body(body: dict[str, Any], content: str, finish_reason: str = "stop") -> dict[str, Any]:
    """Build a chat-completion response object for ``content``."""
    prompt_chars = sum(len(str(message.get("content", ""))) for message in body.get("messages", []))
    prompt_tokens = max(1, prompt_chars // 4)
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class OpenAIStub:
    """A chat-completions server on 127.0.0.1 in a background thread; use it as a context manager."""

    def __init__(self, script: Script, port: int = 0):
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes. Without TCP_NODELAY, Nagle's algorithm and
            # the client's delayed ACK delay the body by about 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # silence per-request logging
                return

            def do_GET(self) -> None:
                # GET /stats returns {"requests": N}, for processes that run the stub as a subprocess.
                if self.path.rstrip("/") == "/stats":
                    self._send(200, {}, json.dumps({"requests": stub.count}).encode())
                else:
                    self._send(404, {}, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, {}, b'{"error": {"message": "invalid JSON body"}}')
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {}, b'{"error": {"message": "not found"}}')
                    return
                with stub._lock:
                    stub.requests.append(body)
                reply = stub.script(body)
                if not isinstance(reply, Reply):
                    reply = Reply(content=reply)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.body is not None:
                    payload = reply.body
                elif reply.status != 200:
                    message = {"error": {"message": f"stub status {reply.status}", "type": "stub"}}
                    payload = json.dumps(message).encode()
                else:
                    payload = json.dumps(
                        completion_body(body, _content_text(reply.content), reply.finish_reason)
                    ).encode()
                self._send(reply.status, reply.headers, payload)

            def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (a timeout test); nothing is left to answer.
                    pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # listen backlog; the default of 5 drops bursts of new connections
            daemon_threads = True

        self.server = Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def api_base(self) -> str:
        """The base URL to pass to litellm as ``api_base``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        """Number of chat-completion requests received so far."""
        with self._lock:
            return len(self.requests)

    def start(self) -> "OpenAIStub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve one fixed answer after a fixed delay until interrupted."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument("--answer-file", help="JSON file sent as every answer's content (default: {})")
    args = parser.parse_args(argv)
    answer: Any = {}
    if args.answer_file:
        with open(args.answer_file, encoding="utf-8") as handle:
            answer = json.load(handle)
    stub = OpenAIStub(lambda body: Reply(content=answer, delay=args.delay), port=args.port)
    print(f"listening on {stub.api_base}", flush=True)
    try:
        stub.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stub.server.server_close()


if __name__ == "__main__":
    sys.exit(main())
