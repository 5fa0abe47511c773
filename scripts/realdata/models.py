"""Canonical model ids and model metadata; each source's model names map to one id here.

The same model appears under different names in different sources (``Meta-Llama-3-70B``
in MMLU-Pro, ``meta_llama-3-70b`` in HELM). Every name a converter meets must be listed
in ``MODELS``. An unknown name stops the conversion, so no result file is written under
a guessed id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas_builder.results import write_yaml
from scripts.realdata.common import ALPACA_EVAL, BBH, GSM8K, HELM, MMLU_PRO

SOURCES = {repo.folder: repo for repo in (MMLU_PRO, HELM, ALPACA_EVAL, BBH, GSM8K)}


@dataclass(frozen=True)
class ModelEntry:
    id: str
    name: str
    organization: str
    family: str
    parameters: str | None
    description: str
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source folder -> names used there


def _m(id: str, name: str, organization: str, family: str, parameters: str | None, description: str,
       **names: str | tuple[str, ...]) -> ModelEntry:
    folders = {"mmlu": MMLU_PRO.folder, "helm": HELM.folder, "alpaca": ALPACA_EVAL.folder,
               "bbh": BBH.folder, "gsm8k": GSM8K.folder}
    mapped = {folders[key]: (value,) if isinstance(value, str) else value for key, value in names.items()}
    return ModelEntry(id, name, organization, family, parameters, description, mapped)


MODELS: tuple[ModelEntry, ...] = (
    # Meta
    _m("llama-2-7b", "Llama 2 7B", "Meta", "llama-2", "7B",
       "Base (pretrained, not chat-tuned) Llama 2 model with 7 billion parameters.", mmlu="Llama-2-7b-hf"),
    _m("llama-2-70b", "Llama 2 70B", "Meta", "llama-2", "70B",
       "Base (pretrained, not chat-tuned) Llama 2 model with 70 billion parameters.", mmlu="Llama-2-70b-hf"),
    _m("llama-3-8b", "Llama 3 8B", "Meta", "llama-3", "8B",
       "Base (pretrained) Llama 3 model with 8 billion parameters.",
       mmlu="Meta-Llama-3-8B", helm="meta_llama-3-8b"),
    _m("llama-3-70b", "Llama 3 70B", "Meta", "llama-3", "70B",
       "Base (pretrained) Llama 3 model with 70 billion parameters.",
       mmlu="Meta-Llama-3-70B", helm="meta_llama-3-70b"),
    _m("llama-3-8b-instruct", "Llama 3 8B Instruct", "Meta", "llama-3", "8B",
       "Instruction-tuned chat version of Llama 3 8B (HELM calls it llama-3-8b-chat).",
       helm="meta_llama-3-8b-chat"),
    _m("llama-3-70b-instruct", "Llama 3 70B Instruct", "Meta", "llama-3", "70B",
       "Instruction-tuned chat version of Llama 3 70B (HELM calls it llama-3-70b-chat).",
       helm="meta_llama-3-70b-chat"),
    _m("llama-3.1-8b-instruct", "Llama 3.1 8B Instruct", "Meta", "llama-3.1", "8B",
       "Instruction-tuned Llama 3.1 model with 8 billion parameters.", mmlu="Meta-Llama-3_1-8B-Instruct"),
    _m("llama-3.1-70b-instruct", "Llama 3.1 70B Instruct", "Meta", "llama-3.1", "70B",
       "Instruction-tuned Llama 3.1 model with 70 billion parameters.", mmlu="Meta-Llama-3_1-70B-Instruct"),
    # Mistral AI
    _m("mistral-7b-instruct-v0.2", "Mistral 7B Instruct v0.2", "Mistral AI", "mistral", "7B",
       "Instruction-tuned Mistral 7B, release v0.2.", mmlu="Mistral-7B-Instruct-v0.2"),
    _m("mixtral-8x7b-instruct-v0.1", "Mixtral 8x7B Instruct v0.1", "Mistral AI", "mixtral", "46.7B",
       "Instruction-tuned sparse mixture-of-experts model with eight 7B-sized experts.",
       mmlu="Mixtral-8x7B-Instruct-v0.1"),
    _m("mixtral-8x22b", "Mixtral 8x22B", "Mistral AI", "mixtral", "141B",
       "Base sparse mixture-of-experts model with eight 22B-sized experts.", helm="mistralai_mixtral-8x22b"),
    _m("mixtral-8x22b-instruct-v0.1", "Mixtral 8x22B Instruct v0.1", "Mistral AI", "mixtral", "141B",
       "Instruction-tuned version of Mixtral 8x22B.", helm="mistralai_mixtral-8x22b-instruct-v0.1"),
    # Google
    _m("gemma-7b", "Gemma 7B", "Google", "gemma", "7B",
       "Base (pretrained) Gemma model of the 7B size.", mmlu="gemma-7b"),
    _m("gemma-7b-it", "Gemma 7B IT", "Google", "gemma", "7B",
       "Instruction-tuned Gemma 7B.", alpaca="gemma-7b-it"),
    _m("gemini-1.5-flash-002", "Gemini 1.5 Flash (002)", "Google", "gemini-1.5", None,
       "Gemini 1.5 Flash served through Google's API, model version 002.", mmlu="gemini-1.5-flash-002"),
    _m("gemini-1.5-pro-001", "Gemini 1.5 Pro (001)", "Google", "gemini-1.5", None,
       "Gemini 1.5 Pro served through Google's API, model version 001.", helm="google_gemini-1.5-pro-001"),
    # OpenAI
    _m("gpt-4o-2024-05-13", "GPT-4o (2024-05-13)", "OpenAI", "gpt-4o", None,
       "GPT-4o API snapshot of 13 May 2024.", helm="openai_gpt-4o-2024-05-13"),
    _m("gpt-4-turbo-2024-04-09", "GPT-4 Turbo (2024-04-09)", "OpenAI", "gpt-4", None,
       "GPT-4 Turbo API snapshot of 9 April 2024.", helm="openai_gpt-4-turbo-2024-04-09"),
    _m("gpt-3.5-turbo-1106", "GPT-3.5 Turbo (1106)", "OpenAI", "gpt-3.5", None,
       "GPT-3.5 Turbo API snapshot of November 2023.", alpaca="gpt-3.5-turbo-1106"),
    _m("code-davinci-002", "code-davinci-002", "OpenAI", "gpt-3.5", None,
       "OpenAI Codex model trained on text and code, evaluated with few-shot prompts.", bbh="code-davinci-002"),
    _m("gpt-3-6b-finetuned", "GPT-3 6B fine-tuned", "OpenAI", "gpt-3", "6B",
       "GPT-3 6B fine-tuned on GSM8K training solutions; one sampled solution per problem.",
       gsm8k="6b_finetuning"),
    _m("gpt-3-6b-verifier", "GPT-3 6B with verifier", "OpenAI", "gpt-3", "6B",
       "GPT-3 6B generator whose candidate solutions are ranked by a trained verifier; the top one is kept.",
       gsm8k="6b_verification"),
    _m("gpt-3-175b-finetuned", "GPT-3 175B fine-tuned", "OpenAI", "gpt-3", "175B",
       "GPT-3 175B fine-tuned on GSM8K training solutions; one sampled solution per problem.",
       gsm8k="175b_finetuning"),
    _m("gpt-3-175b-verifier", "GPT-3 175B with verifier", "OpenAI", "gpt-3", "175B",
       "GPT-3 175B generator whose candidate solutions are ranked by a trained verifier; the top one is kept.",
       gsm8k="175b_verification"),
    # Anthropic
    _m("claude-3-5-sonnet-20240620", "Claude 3.5 Sonnet (2024-06-20)", "Anthropic", "claude-3.5", None,
       "Claude 3.5 Sonnet API snapshot of 20 June 2024.", helm="anthropic_claude-3-5-sonnet-20240620"),
    _m("claude-3-opus-20240229", "Claude 3 Opus (2024-02-29)", "Anthropic", "claude-3", None,
       "Claude 3 Opus API snapshot of 29 February 2024.", helm="anthropic_claude-3-opus-20240229"),
    _m("claude-2.1", "Claude 2.1", "Anthropic", "claude-2", None,
       "Anthropic's Claude 2.1 chat model.", alpaca="claude-2.1"),
    # Alibaba
    _m("qwen-14b-chat", "Qwen 14B Chat", "Alibaba Cloud", "qwen", "14B",
       "Chat-tuned first-generation Qwen model with 14 billion parameters.", alpaca="Qwen-14B-Chat"),
    _m("qwen1.5-72b-chat", "Qwen1.5 72B Chat", "Alibaba Cloud", "qwen1.5", "72B",
       "Chat-tuned Qwen1.5 model with 72 billion parameters.", mmlu="Qwen1.5-72B-Chat"),
    _m("qwen2-72b-instruct", "Qwen2 72B Instruct", "Alibaba Cloud", "qwen2", "72B",
       "Instruction-tuned Qwen2 model with 72 billion parameters.", helm="qwen_qwen2-72b-instruct"),
    # Others
    _m("deepseek-coder-v2", "DeepSeek-Coder-V2", "DeepSeek", "deepseek-coder-v2", None,
       "DeepSeek's second-generation code model; the source does not say which size or variant was run.",
       mmlu="DeepSeek-Coder-V2"),
    _m("yi-34b", "Yi 34B", "01.AI", "yi", "34B", "Base (pretrained) Yi model with 34 billion parameters.",
       mmlu="Yi-34B"),
    _m("jamba-1.5-large", "Jamba 1.5 Large", "AI21 Labs", "jamba-1.5", "398B",
       "Hybrid Transformer and Mamba mixture-of-experts model, the large size of release 1.5.",
       mmlu="jamba-1.5-large"),
    _m("alpaca-7b", "Alpaca 7B", "Stanford CRFM", "llama", "7B",
       "LLaMA 7B fine-tuned on 52K instruction-following demonstrations.", alpaca="alpaca-7b"),
    _m("vicuna-13b-v1.5", "Vicuna 13B v1.5", "LMSYS", "vicuna", "13B",
       "Llama 2 13B fine-tuned on user-shared conversations, release v1.5.", alpaca="vicuna-13b-v1.5"),
    _m("falcon-7b-instruct", "Falcon 7B Instruct", "Technology Innovation Institute", "falcon", "7B",
       "Instruction-tuned Falcon model with 7 billion parameters.", alpaca="falcon-7b-instruct"),
)

_BY_NAME = {(folder, name): entry for entry in MODELS for folder, names in entry.names.items() for name in names}


class UnknownModelError(KeyError):
    """Raised when a source names a model that ``MODELS`` does not list."""


def canonical_id(folder: str, source_name: str) -> str:
    """Return the canonical model id for a model name used in one source folder."""
    try:
        return _BY_NAME[(folder, source_name)].id
    except KeyError:
        raise UnknownModelError(
            f"model {source_name!r} from {folder!r} has no canonical id; add it to MODELS in scripts/realdata/models.py"
        ) from None


def _source_paths(folder: str, name: str) -> list[str]:
    root = SOURCES[folder].root
    if folder == MMLU_PRO.folder:
        return [f"{root}/model_outputs_{name}_5shots.zip"]
    if folder == HELM.folder:
        return [f"{root}/bbq:subject=all,method=multiple_choice_joint,model={name}",
                f"{root}/simple_safety_tests:model={name}"]
    if folder == ALPACA_EVAL.folder:
        return [f"{root}/{name}/weighted_alpaca_eval_gpt4_turbo/annotations.json"]
    if folder == BBH.folder:
        return [root]
    return [f"{root}/example_model_solutions.jsonl"]


def _aliases(entry: ModelEntry) -> list[str]:
    aliases: list[str] = []
    for folder, names in entry.names.items():
        for name in names:
            aliases.append(name)
            if folder == HELM.folder and "_" in name:
                aliases.append(name.replace("_", "/", 1))  # the form HELM uses in run_spec.json
    return sorted({alias for alias in aliases if alias != entry.id})


def model_yaml(entry: ModelEntry) -> dict[str, Any]:
    """Return the ``data/models/<id>.yaml`` mapping of a registry entry."""
    sources = [SOURCES[folder].source(path)
               for folder, names in entry.names.items() for name in names for path in _source_paths(folder, name)]
    licenses = sorted({SOURCES[folder].license for folder in entry.names})
    meta: dict[str, Any] = {
        "id": entry.id,
        "name": entry.name,
        "organization": entry.organization,
        "family": entry.family,
    }
    if entry.parameters:
        meta["parameters"] = entry.parameters
    meta["aliases"] = _aliases(entry)
    meta["sources"] = sources
    meta["license"] = " AND ".join(licenses)
    meta["description"] = entry.description
    return meta


def write_models(data_dir: Path, model_ids: set[str]) -> list[str]:
    """Write the YAML of every listed model; return their ids."""
    written = []
    for entry in MODELS:
        if entry.id in model_ids:
            write_yaml(data_dir / "models" / f"{entry.id}.yaml", model_yaml(entry))
            written.append(entry.id)
    return written
