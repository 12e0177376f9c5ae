"""One conversation with the model for one task: tool rounds, then a structured answer.

The raw `openai` client runs the function-calling rounds (the model asks, `call_tool` answers,
read-only); `instructor` over the same client asks for the structured answer and re-asks with the
validation error when it does not validate. Everything is bounded: model calls per task, tokens
per task, characters of each tool result the model sees. Every tool call is recorded with the
model step that asked for it. Endpoint failures, timeouts and exhausted retries end the task
with a `PlannerError` that says what happened; nothing is half-done.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from pydantic import BaseModel

from qlrf_pipelines.planning.llm.settings import NO_KEY, LLMSettings
from qlrf_pipelines.planning.tools.registry import REGISTRY, Tool, ToolContext, ToolError, call_tool

# Keys whose values in tool results are asset ids or golden image ids the model may cite.
ASSET_KEYS = ("asset_id",)
ASSET_LIST_KEYS = ("asset_ids",)
IMAGE_KEYS = ("image_id", "current_image_id", "to_image_id", "from_image_id")
MAX_COMPLETION_TOKENS = 4096


class PlannerError(Exception):
    """The model could not produce a usable answer: endpoint down, too slow, invalid output,
    or a budget exhausted. The message is meant for the user."""


@dataclass
class Invocation:
    """One tool call the model made (what `ai_tool_invocations` keeps)."""

    step: int
    tool: str
    arguments: dict[str, Any]
    result_size: int
    duration_ms: float
    truncated: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Grounding:
    """What the tools returned to the model: the only assets and images a plan may name."""

    asset_ids: set[str] = field(default_factory=set)
    image_ids: set[str] = field(default_factory=set)
    asset_images: dict[str, str] = field(default_factory=dict)  # asset_id -> image_id it runs

    def absorb(self, value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                self.absorb(item)
            return
        if not isinstance(value, dict):
            return
        asset = next((value[k] for k in ASSET_KEYS if isinstance(value.get(k), str)), None)
        if asset:
            self.asset_ids.add(asset)
            if isinstance(value.get("image_id"), str):
                self.asset_images[asset] = value["image_id"]
        for key in ASSET_LIST_KEYS:
            if isinstance(value.get(key), list):
                self.asset_ids.update(v for v in value[key] if isinstance(v, str))
        for key in IMAGE_KEYS:
            if isinstance(value.get(key), str) and "@" in value[key]:
                self.image_ids.add(value[key])
        for nested in value.values():
            if isinstance(nested, (list, dict)):
                self.absorb(nested)

    def context(self) -> dict[str, Any]:
        return {"seen_asset_ids": self.asset_ids, "seen_image_ids": self.image_ids, "asset_images": self.asset_images}


def function_schema(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.input_schema()},
    }


def bounded_json(payload: dict[str, Any], max_chars: int) -> tuple[str, dict[str, Any], bool]:
    """The tool result as JSON of at most ~max_chars, dropping rows from the end and saying so.

    Returns (text, the payload actually sent, whether anything was cut)."""
    text = json.dumps(payload, default=str)
    if len(text) <= max_chars:
        return text, payload, False
    rows = payload.get("rows")
    if isinstance(rows, list) and rows:
        low, high = 0, len(rows)
        while low < high:  # the most rows that still fit
            middle = (low + high + 1) // 2
            if len(json.dumps(_cut(payload, middle, max_chars), default=str)) <= max_chars:
                low = middle
            else:
                high = middle - 1
        sent = _cut(payload, low, max_chars)
        return json.dumps(sent, default=str), sent, True
    if isinstance(rows, dict):
        shrunk = _omit_largest(payload, rows, max_chars)
        if shrunk is not None:
            return json.dumps(shrunk, default=str), shrunk, True
    preview = text[: max(0, max_chars - 400)]
    sent = {
        "tool": payload.get("tool"),
        "truncated": True,
        "note": f"result of {len(text)} characters cut to {len(preview)} (limit {max_chars}); the JSON preview is incomplete",
        "preview": preview,
    }
    return json.dumps(sent, default=str), {}, True


def _omit_largest(payload: dict[str, Any], rows: dict[str, Any], max_chars: int) -> dict[str, Any] | None:
    """An object result made to fit by cutting its largest parts first: a long text keeps its
    beginning (a runbook's first sections), a large list or object whose parts are all small is
    left out with a marker (a drafted plan's targets), so the model keeps the structure and the
    summaries. None when even that does not fit."""
    excess = len(json.dumps(payload, default=str)) - (max_chars - 600)  # room for the note
    trimmed, saved, paths = _shrink(rows, excess, "")
    if saved < excess or not paths:
        return None
    names = ", ".join(paths[:8]) + (", ..." if len(paths) > 8 else "")
    sent = payload | {
        "rows": trimmed,
        "truncated": True,
        "note": f"result over {max_chars} characters: cut {len(paths)} large value(s) ({names}); "
                "call the tool with narrower arguments to see them whole",
    }
    return sent if len(json.dumps(sent, default=str)) <= max_chars else None


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str))


def _shrink(value: Any, excess: int, path: str, may_omit: bool = True) -> tuple[Any, int, list[str]]:
    """(value with its largest parts cut, JSON characters saved, paths cut), saving about `excess`:
    long texts keep their beginning, lists keep their first items, an object whose parts are all
    small is left out whole (unless it is a list item: then the list is shortened instead)."""
    size = _json_size(value)
    if size < 200 or excess <= 0:
        return value, 0, []
    if isinstance(value, str):
        target = size - excess - 60
        low, high = 0, len(value)
        while low < high:  # the longest beginning whose JSON fits
            middle = (low + high + 1) // 2
            if len(json.dumps(value[:middle])) <= target:
                low = middle
            else:
                high = middle - 1
        keep = max(100, low)
        if keep >= len(value):
            return value, 0, []
        cut = value[:keep] + f" [... {len(value) - keep} more characters cut]"
        return cut, size - _json_size(cut), [path]
    if isinstance(value, dict):
        shrunk, saved, paths = dict(value), 0, []
        for key, child in sorted(value.items(), key=lambda item: -_json_size(item[1])):
            if saved >= excess:
                break
            shrunk[key], child_saved, child_paths = _shrink(child, excess - saved, f"{path}.{key}" if path else str(key))
            saved, paths = saved + child_saved, paths + child_paths
        if saved == 0 and path and may_omit:
            return f"<omitted: {size} characters>", size - 30, [path]
        return shrunk, saved, paths
    if isinstance(value, list):
        # inside the items first (their long texts and lists), largest item first ...
        shrunk, saved, paths = list(value), 0, []
        for index in sorted(range(len(value)), key=lambda i: -_json_size(value[i])):
            if saved >= excess:
                return shrunk, saved, paths
            shrunk[index], item_saved, item_paths = _shrink(value[index], excess - saved, f"{path}.{index}", False)
            saved, paths = saved + item_saved, paths + item_paths
        if saved >= excess:
            return shrunk, saved, paths
        # ... then keep only the first items
        keep, dropped = len(shrunk), 0
        while keep > 0 and saved + dropped - 40 < excess:
            keep -= 1
            dropped += _json_size(shrunk[keep]) + 2
        return shrunk[:keep] + [f"<{len(shrunk) - keep} more items left out>"], saved + dropped - 40, paths + [path]
    return value, 0, []


def _cut(payload: dict[str, Any], keep: int, max_chars: int) -> dict[str, Any]:
    total = payload.get("result_size", len(payload["rows"]))
    return payload | {
        "rows": payload["rows"][:keep],
        "truncated": True,
        "note": f"truncated: showing {keep} of {total} rows (tool results are limited to {max_chars} characters); "
                "narrow the filters to see the rest",
    }


class ModelSession:
    """The model, the tools one agent may use, and the budgets of one task."""

    def __init__(self, settings: LLMSettings, tool_context: ToolContext) -> None:
        import instructor
        import openai

        self.settings = settings
        self.tool_context = tool_context
        self.client = openai.OpenAI(
            base_url=settings.base_url, api_key=settings.api_key or NO_KEY,
            timeout=settings.timeout_seconds, max_retries=0,
        )
        self.structured = instructor.from_openai(self.client, mode=instructor.Mode.TOOLS)
        self.structured.on("completion:kwargs", self._count_step)
        self.structured.on("completion:response", self._count_usage)
        self.steps = 0
        self.tokens = 0
        self.invocations: list[Invocation] = []
        self.grounding = Grounding()

    # ---------------------------------------------------------------- budgets
    def _count_step(self, *args: Any, **kwargs: Any) -> None:
        self.steps += 1

    def _count_usage(self, response: Any, *args: Any, **kwargs: Any) -> None:
        usage = getattr(response, "usage", None)
        self.tokens += int(getattr(usage, "total_tokens", 0) or 0)

    def _tokens_left(self) -> int:
        left = self.settings.max_tokens_per_task - self.tokens
        if left <= 0:
            raise PlannerError(
                f"token budget exhausted: {self.tokens} tokens used, the cap is "
                f"{self.settings.max_tokens_per_task} per task (QLRF_LLM max_tokens_per_task)"
            )
        return min(MAX_COMPLETION_TOKENS, left)

    def _endpoint_error(self, exc: BaseException) -> PlannerError:
        import openai

        where = self.settings.base_url
        if isinstance(exc, openai.APITimeoutError):
            return PlannerError(f"the model endpoint {where} did not answer within {self.settings.timeout_seconds:g} s")
        if isinstance(exc, openai.APIStatusError):
            return PlannerError(f"the model endpoint {where} failed: HTTP {exc.status_code}: {_short(exc.message)}")
        if isinstance(exc, openai.APIConnectionError):
            return PlannerError(f"cannot reach the model endpoint {where}: {_short(str(exc))}")
        return PlannerError(f"the model endpoint {where} failed: {_short(str(exc))}")

    # ---------------------------------------------------------------- tool rounds
    def gather(self, messages: list[dict[str, Any]], tools: Iterable[Tool]) -> list[dict[str, Any]]:
        """Let the model call `tools` until it stops asking or the step cap leaves one step for
        the structured answer. Returns the conversation so far."""
        import openai

        allowed = {t.name: t for t in tools}
        schemas = [function_schema(t) for t in allowed.values()]
        while True:
            if self.steps >= max(1, self.settings.max_steps - 1):
                messages.append({"role": "user", "content": (
                    f"Tool budget reached ({self.steps} model calls). Answer now with what the tools returned."
                )})
                return messages
            max_tokens = self._tokens_left()
            self.steps += 1
            try:
                response = self.client.chat.completions.create(
                    model=self.settings.model, messages=messages, tools=schemas, tool_choice="auto",
                    temperature=self.settings.temperature, max_tokens=max_tokens,
                )
            except openai.APIError as exc:
                raise self._endpoint_error(exc) from None
            self._count_usage(response)
            if not response.choices:
                raise PlannerError(f"the model endpoint {self.settings.base_url} returned no choices")
            message = response.choices[0].message
            calls = list(message.tool_calls or [])
            if not calls:
                messages.append({"role": "assistant", "content": message.content or ""})
                return messages
            messages.append({
                "role": "assistant", "content": message.content or None,
                "tool_calls": [
                    {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                    for c in calls
                ],
            })
            for call in calls:
                content = self._run_tool(call.function.name, call.function.arguments, allowed)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})

    def _run_tool(self, name: str, raw_arguments: str, allowed: dict[str, Tool]) -> str:
        step = self.steps
        try:
            arguments = json.loads(raw_arguments or "{}")
        except json.JSONDecodeError as exc:
            return self._refuse(step, name, {"_raw": raw_arguments[:500]}, f"arguments are not valid JSON: {exc}")
        if not isinstance(arguments, dict):
            return self._refuse(step, name, {"_raw": arguments}, "arguments must be a JSON object")
        if name not in allowed:
            why = "is not one of your tools" if name in REGISTRY else "does not exist"
            return self._refuse(step, name, arguments, f"tool {name!r} {why}; your tools: {', '.join(allowed)}")
        started = time.perf_counter()
        try:
            result = call_tool(self.tool_context, name, arguments)
        except ToolError as exc:
            return self._refuse(step, name, arguments, str(exc), round((time.perf_counter() - started) * 1000, 3))
        text, sent, cut = bounded_json(result.to_dict(), self.settings.max_tool_result_chars)
        self.grounding.absorb(sent.get("rows") if sent else None)
        self.invocations.append(Invocation(
            step, name, result.arguments, result.result_size, result.duration_ms, truncated=result.truncated or cut,
        ))
        return text

    def _refuse(self, step: int, name: str, arguments: dict[str, Any], error: str, duration_ms: float = 0.0) -> str:
        self.invocations.append(Invocation(step, name, arguments, 0, duration_ms, error=error))
        return json.dumps({"tool": name, "error": error})

    # ---------------------------------------------------------------- structured answers
    def answer(self, messages: list[dict[str, Any]], response_model: type[BaseModel], context: dict[str, Any] | None = None):
        """The model's answer as `response_model`, re-asked up to max_retries times with the
        validation error; raises PlannerError when it never validates or the endpoint fails."""
        import openai
        from instructor.core.exceptions import InstructorRetryException

        try:
            return self.structured.create(
                model=self.settings.model, messages=messages, response_model=response_model,
                max_retries=self.settings.max_retries, context=context or {},
                temperature=self.settings.temperature, max_tokens=self._tokens_left(),
            )
        except InstructorRetryException as exc:
            attempts = list(exc.failed_attempts or [])
            # an endpoint failure arrives as the cause; invalid answers as failed attempts
            last = exc.__cause__ if isinstance(exc.__cause__, openai.APIError) else (
                attempts[-1].exception if attempts else exc
            )
            if isinstance(last, openai.APIError):
                raise self._endpoint_error(last) from None
            raise PlannerError(
                f"the model did not return a valid {response_model.__name__} after "
                f"{exc.n_attempts or len(attempts)} attempt(s): {_short(_validation_text(last))}"
            ) from None
        except openai.APIError as exc:
            raise self._endpoint_error(exc) from None


def _validation_text(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(str(e.get("msg")) for e in errors())
        except Exception:  # noqa: BLE001 (fall back to the plain message)
            pass
    return str(exc)


def _short(text: str, limit: int = 600) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
