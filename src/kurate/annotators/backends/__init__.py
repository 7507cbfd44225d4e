"""The registry of LLM backends: name → the class that implements kurate.annotators.contracts.LLMBackend.

Entries are import paths, resolved on first use (``contracts.backend_class``): this module imports
nothing, so the config (whose ``backend`` choices are these names) and every backend module can
import it without a cycle, and a GPU-only backend's package is imported only when it is chosen.

Adding a backend: one module in this folder, one line here; validation (``BackendConfig.backend``),
the CLI/YAML and the Prefect form follow, and tests/test_backend_contracts.py checks it.
"""

BACKENDS: dict[str, str] = {
    "transformers": "kurate.annotators.backends.hf_transformers:TransformersBackend",
    "openai": "kurate.annotators.backends.openai_http:OpenAIBackend",
    "vllm": "kurate.annotators.backends.vllm_engine:VllmBackend",
}
