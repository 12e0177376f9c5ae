"""The model endpoint for the LLM planner: any OpenAI-compatible server (OpenAI, Azure OpenAI,
vLLM, Ollama), set by QLRF_LLM_BASE_URL / QLRF_LLM_MODEL / QLRF_LLM_API_KEY through EnvVar, so the
key is read when a run starts and never stored in run config, the UI or the code location."""


import os
from typing import Literal

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from qlrf_pipelines.planning.llm.settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    MODEL_ENV,
    PLANNER_ENV,
    LLMNotConfigured,
    LLMSettings,
)

Planner = Literal["rule_based", "llm"]


class LLMResource(ConfigurableResource):
    base_url: str = Field(default="", description=f"OpenAI-compatible base URL, e.g. http://localhost:11434/v1 ({BASE_URL_ENV})")
    model: str = Field(default="", description=f"model name ({MODEL_ENV})")
    api_key: str = Field(default="", description=f"API key ({API_KEY_ENV}); empty for local servers")
    planner: Planner = Field(
        default="rule_based",
        description=f"planner of the drift / compliance sensors' plan job ({PLANNER_ENV}); llm needs an endpoint",
    )
    timeout_seconds: float = Field(default=60.0, gt=0, description="per model call")
    max_retries: int = Field(default=2, ge=0, description="re-asks after an answer that fails validation")
    max_steps: int = Field(default=8, ge=2, description="model calls per task for tool rounds")
    max_tokens_per_task: int = Field(default=40_000, ge=1000, description="tokens per task, all calls together")
    max_tool_result_chars: int = Field(default=12_000, ge=500, description="characters of one tool result the model sees")

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    def settings(self) -> LLMSettings:
        """Raises LLMNotConfigured when no endpoint or model is set."""
        if not self.configured:
            raise LLMNotConfigured(
                f"no model endpoint configured: set {BASE_URL_ENV} and {MODEL_ENV} (and {API_KEY_ENV} if the "
                "server needs a key)"
            )
        return LLMSettings(
            base_url=self.base_url, model=self.model, api_key=self.api_key, timeout_seconds=self.timeout_seconds,
            max_retries=self.max_retries, max_steps=self.max_steps, max_tokens_per_task=self.max_tokens_per_task,
            max_tool_result_chars=self.max_tool_result_chars,
        )

    def sensors_use_llm(self) -> bool:
        return self.planner == "llm"


def llm_resource_from_env() -> LLMResource:
    """The resource of the code location: EnvVar for what is set, so secrets stay in the environment."""

    def env(name: str):
        return EnvVar(name) if os.environ.get(name) else ""

    planner = os.environ.get(PLANNER_ENV, "rule_based").strip() or "rule_based"
    if planner not in ("rule_based", "llm"):
        raise ValueError(f"{PLANNER_ENV}={planner!r}: expected rule_based or llm")
    return LLMResource(base_url=env(BASE_URL_ENV), model=env(MODEL_ENV), api_key=env(API_KEY_ENV), planner=planner)
