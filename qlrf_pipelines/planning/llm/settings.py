"""How to reach the model and how much it may spend: endpoint, model, key, retries, caps."""

from __future__ import annotations

import os
from dataclasses import dataclass

BASE_URL_ENV = "QLRF_LLM_BASE_URL"
MODEL_ENV = "QLRF_LLM_MODEL"
API_KEY_ENV = "QLRF_LLM_API_KEY"
PLANNER_ENV = "QLRF_PLANNER"  # "rule_based" (default) or "llm", for the drift / compliance sensors

# Local servers (vLLM, Ollama) ignore the key, but the openai client insists on one.
NO_KEY = "not-needed"


class LLMNotConfigured(RuntimeError):
    """No model endpoint is configured."""


@dataclass(frozen=True)
class LLMSettings:
    base_url: str
    model: str
    api_key: str = ""
    timeout_seconds: float = 60.0
    max_retries: int = 2  # re-asks after a structure that fails validation
    max_steps: int = 8  # chat completions per task (tool rounds and structured answers)
    max_tokens_per_task: int = 40_000
    max_tool_result_chars: int = 12_000
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if not self.base_url:
            raise LLMNotConfigured(f"no model endpoint: set {BASE_URL_ENV} (and {MODEL_ENV}, {API_KEY_ENV} if needed)")
        if not self.model:
            raise LLMNotConfigured(f"no model name: set {MODEL_ENV}")
        for name in ("max_retries", "max_steps", "max_tokens_per_task", "max_tool_result_chars"):
            if getattr(self, name) < (0 if name == "max_retries" else 1):
                raise ValueError(f"LLM setting {name} must be positive, got {getattr(self, name)}")

    def __repr__(self) -> str:  # the key never reaches a log line through repr
        return f"LLMSettings(base_url={self.base_url!r}, model={self.model!r}, api_key={'***' if self.api_key else ''!r})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, **overrides) -> "LLMSettings":
        """From QLRF_LLM_BASE_URL / QLRF_LLM_MODEL / QLRF_LLM_API_KEY; raises LLMNotConfigured."""
        values = {
            "base_url": os.environ.get(BASE_URL_ENV, ""),
            "model": os.environ.get(MODEL_ENV, ""),
            "api_key": os.environ.get(API_KEY_ENV, ""),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def configured_in_env() -> bool:
    return bool(os.environ.get(BASE_URL_ENV))
