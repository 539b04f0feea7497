"""The web plugin's options in a chat request: `plugins: [{"id": "web", ...}]` or a model id
ending in `:online` (OpenRouter's shapes). Read and removed from the body: upstreams never see
them (an OpenRouter route would otherwise search a second time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farebox.errors import InvalidRequest

ONLINE_SUFFIX = ":online"
NATIVE = "native"
"""`engine: "native"`: the model provider's own search (the default where the model has one)."""
ENGINES = ("native", "exa", "serper", "brave", "searxng")
"""`engine` values: the provider's own search, or one kind of farebox's search backends."""
DEFAULT_RESULTS = 5
MAX_RESULTS = 20
_KEYS = frozenset(
    {"id", "max_results", "search_prompt", "include_domains", "exclude_domains", "engine"}
)


@dataclass(frozen=True, slots=True)
class WebOptions:
    max_results: int = DEFAULT_RESULTS
    search_prompt: str | None = None
    include_domains: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    engine: str | None = None
    """"native", a backend kind, or None: native where the model has it, else the backends."""


def _domains(plugin: dict[str, Any], name: str) -> tuple[str, ...]:
    value = plugin.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, str) and d.strip() for d in value):
        raise InvalidRequest(
            f"plugins[web].{name} must be a list of domain names", param=f"plugins.{name}"
        )
    return tuple(d.strip().lower().removeprefix("www.") for d in value)


def _from_plugin(plugin: dict[str, Any]) -> WebOptions:
    unknown = sorted(set(plugin) - _KEYS)
    if unknown:
        raise InvalidRequest(
            f"Unknown web plugin option {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})",
            param="plugins",
        )
    count = plugin.get("max_results", DEFAULT_RESULTS)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_RESULTS:
        raise InvalidRequest(
            f"plugins[web].max_results must be a whole number from 1 to {MAX_RESULTS}",
            param="plugins.max_results",
        )
    prompt = plugin.get("search_prompt")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise InvalidRequest(
            "plugins[web].search_prompt must be a non-empty string", param="plugins.search_prompt"
        )
    engine = plugin.get("engine")
    if engine is not None and engine not in ENGINES:
        raise InvalidRequest(
            f"plugins[web].engine must be one of {', '.join(ENGINES)} (or left out: the "
            "model's own search where it has one, else farebox's search backends)",
            param="plugins.engine",
        )
    return WebOptions(
        engine=engine,
        max_results=count,
        search_prompt=prompt,
        include_domains=_domains(plugin, "include_domains"),
        exclude_domains=_domains(plugin, "exclude_domains"),
    )


def take_web_options(body: dict[str, Any]) -> WebOptions | None:
    """The web plugin's options (None when not asked for), removed from `body`."""
    options: WebOptions | None = None
    model = body.get("model")
    if isinstance(model, str) and model.endswith(ONLINE_SUFFIX):
        body["model"] = model.removesuffix(ONLINE_SUFFIX)
        options = WebOptions()
    plugins = body.get("plugins")
    if plugins is None:
        return options
    if not isinstance(plugins, list):
        raise InvalidRequest("plugins must be a list of plugin objects", param="plugins")
    kept = []
    for plugin in plugins:
        if not isinstance(plugin, dict) or not isinstance(plugin.get("id"), str):
            raise InvalidRequest('each plugin must be an object with an "id"', param="plugins")
        if plugin["id"] == "web":
            options = _from_plugin(plugin)
        else:
            kept.append(plugin)
    if kept:
        body["plugins"] = kept
    else:
        del body["plugins"]
    return options
