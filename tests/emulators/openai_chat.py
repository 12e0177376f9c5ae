"""A local OpenAI-compatible chat completions server, scripted per test.

It speaks the real wire format (POST /v1/chat/completions, JSON in and out, `tool_calls` with
JSON-encoded arguments, `usage`), so the real `openai` client and `instructor` talk to it over
HTTP exactly as they would to OpenAI, vLLM or Ollama. Each test queues the replies the "model"
gives, in order, and reads back every request it received.

Replies:
- `ToolCalls([("query_assets", {...}), ...])`: the model calls tools (finish_reason tool_calls);
- `Say("text")`: the model answers in prose (finish_reason stop);
- `Structured({...})`: the model fills the function instructor forced with `tool_choice`
  (instructor's TOOLS mode), i.e. the structured output for the requested response model;
- `Fail(status, message)`: the endpoint returns an HTTP error;
- `Slow(seconds, reply)`: wait, then give `reply` (for client timeouts).
A request beyond the script gets HTTP 500 "script exhausted", so a test never hangs on it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ToolCalls:
    calls: list[tuple[str, dict[str, Any] | str]]


@dataclass
class Say:
    text: str


@dataclass
class Structured:
    arguments: dict[str, Any] | str


@dataclass
class Fail:
    status: int = 500
    message: str = "internal error"


@dataclass
class Slow:
    seconds: float
    reply: Any


@dataclass
class ChatServer:
    """Scripted chat completions on 127.0.0.1 (random port); `base_url` ends in /v1."""

    script: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    tokens_per_reply: int = 120

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "ChatServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, *replies: Any) -> None:
        with self._lock:
            self.script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests.clear()

    @property
    def remaining(self) -> int:
        return len(self.script)

    # ---------------------------------------------------------------- replies
    def _next(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            reply = self.script.pop(0) if self.script else Fail(500, "script exhausted")
            self._counter += 1
            number = self._counter
        while isinstance(reply, Slow):
            time.sleep(reply.seconds)
            reply = reply.reply
        if isinstance(reply, Fail):
            return reply.status, {"error": {"message": reply.message, "type": "server_error", "code": None}}
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        if isinstance(reply, Say):
            message["content"] = reply.text
        elif isinstance(reply, ToolCalls):
            message["tool_calls"] = [_tool_call(number, i, name, args) for i, (name, args) in enumerate(reply.calls)]
            finish = "tool_calls"
        elif isinstance(reply, Structured):
            forced = ((request.get("tool_choice") or {}).get("function") or {}).get("name")
            if not forced:
                tools = request.get("tools") or []
                forced = tools[0]["function"]["name"] if tools else "response"
            message["tool_calls"] = [_tool_call(number, 0, forced, reply.arguments)]
            finish = "tool_calls"
        else:
            raise TypeError(f"unknown scripted reply {reply!r}")
        body = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": self.tokens_per_reply,
                "completion_tokens": 20,
                "total_tokens": self.tokens_per_reply + 20,
            },
        }
        return 200, body

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                payload["_path"] = self.path
                payload["_authorization"] = self.headers.get("Authorization")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    status, body = 404, {"error": {"message": f"no route {self.path}"}}
                else:
                    status, body = server._next(payload)
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _tool_call(number: int, index: int, name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": f"call_{number}_{index}", "type": "function", "function": {"name": name, "arguments": text}}
