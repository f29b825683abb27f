"""The price ledger for Claude teachers: a dated, editable table and the cost of one request.

Prices change every few weeks, so they are data, not code. The table shipped with KD Studio is
``resources/prices.json`` (USD per million tokens, with the date it was checked). A person can
override or add models in ``$KDSTUDIO_HOME/prices.json`` (same shape; entries there win field by
field), for example::

    {"models": {"claude-new-model": {"input": 1.0, "output": 5.0, "cache_write_5m": 1.25,
                                     "cache_write_1h": 2.0, "cache_read": 0.1}}}

The cost of a request is::

    (input·p_in + cache_write_5m·p_w5 + cache_write_1h·p_w1h + cache_read·p_read + output·p_out) / 1e6
    × batch_discount (Message Batches only)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kdstudio.core.errors import ConfigError
from kdstudio.core.paths import app_home, resources_dir

PRICE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_DATED_ID = re.compile(r"^(?P<base>.+)-\d{8}$")


def bundled_path() -> Path:
    """The price table shipped with the application."""
    return resources_dir() / "prices.json"


def override_path() -> Path:
    """The user's own price file (may not exist): ``$KDSTUDIO_HOME/prices.json``."""
    return app_home() / "prices.json"


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens for one model. ``cache_write_1h`` falls back to 2× input when the
    table has no value; ``long_prompt`` holds the prices billed for every token of a request
    whose prompt is longer than ``long_prompt_above`` tokens (Haiku 5.5)."""

    model: str
    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    batch_discount: float = 0.5
    long_prompt_above: int | None = None
    long_prompt: ModelPrice | None = None
    min_cache_tokens: int | None = None  #: the shortest prefix the model caches (None: not known)

    def cost(self, usage: Any, batch: bool = False) -> float:
        """USD for one request with this ``usage`` (see :func:`cost`)."""
        tokens = split_usage(usage)
        p = self
        prompt = tokens["input"] + tokens["cache_write_5m"] + tokens["cache_write_1h"] + tokens["cache_read"]
        if self.long_prompt is not None and self.long_prompt_above is not None and prompt > self.long_prompt_above:
            p = self.long_prompt
        usd = sum(tokens[f] * getattr(p, f) for f in PRICE_FIELDS) / 1e6
        return usd * self.batch_discount if batch else usd

    def as_dict(self) -> dict[str, Any]:
        """The five per-MTok prices and the batch discount (for the model picker)."""
        d: dict[str, Any] = {f: getattr(self, f) for f in PRICE_FIELDS}
        d["batch_discount"] = self.batch_discount
        if self.long_prompt is not None:
            d["long_prompt_above"] = self.long_prompt_above
        return d


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the price table ({exc.strerror})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise ConfigError(f"{path}: expected an object with a \"models\" object of per-model prices")
    return data


def load_table() -> dict[str, Any]:
    """The bundled table merged with the user's override file (read on every call, so an edit
    takes effect without a restart). Keys: ``updated``, ``batch_discount``, ``models``,
    ``sources`` (the files read)."""
    table = _read(bundled_path())
    models: dict[str, dict[str, Any]] = {k: dict(v) for k, v in table.get("models", {}).items()}
    sources = [str(bundled_path())]
    user = override_path()
    if user.is_file():
        extra = _read(user)
        for name, fields in extra.get("models", {}).items():
            if not isinstance(fields, dict):
                raise ConfigError(f"{user}: the entry for {name!r} must be an object of prices")
            models[name] = {**models.get(name, {}), **fields}
        for key in ("updated", "batch_discount"):
            if key in extra:
                table[key] = extra[key]
        sources.append(str(user))
    table["models"] = models
    table["sources"] = sources
    return table


def _resolve(model: str, models: dict[str, Any]) -> str | None:
    if model in models:
        return model
    match = _DATED_ID.match(model)  # claude-haiku-4-5-20251001 → claude-haiku-4-5
    if match and match["base"] in models:
        return match["base"]
    return None


def _number(model: str, fields: dict[str, Any], name: str, default: float | None = None) -> float:
    value = fields.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ConfigError(
            f"price table: {model!r} needs a non-negative number for {name!r} (USD per million tokens); "
            f"fix it in {override_path()}"
        )
    return float(value)


def _build(model: str, fields: dict[str, Any], discount: float) -> ModelPrice:
    p_in = _number(model, fields, "input")
    return ModelPrice(
        model=model,
        input=p_in,
        output=_number(model, fields, "output"),
        cache_write_5m=_number(model, fields, "cache_write_5m", 1.25 * p_in),
        cache_write_1h=_number(model, fields, "cache_write_1h", 2.0 * p_in),
        cache_read=_number(model, fields, "cache_read", 0.1 * p_in),
        batch_discount=discount,
        min_cache_tokens=int(fields["min_cache_tokens"]) if isinstance(fields.get("min_cache_tokens"), int) else None,
    )


def price(model: str) -> ModelPrice:
    """The prices of ``model`` (a dated id like ``claude-haiku-4-5-20251001`` matches its base).

    Raises ConfigError for a model the table does not know, naming the override file to add it to.
    """
    table = load_table()
    models = table["models"]
    key = _resolve(model, models)
    if key is None:
        raise ConfigError(
            f"no price known for model {model!r} (price table of {table.get('updated', '?')}); add it to "
            f"{override_path()} as {{\"models\": {{\"{model}\": {{\"input\": ..., \"output\": ..., "
            f"\"cache_write_5m\": ..., \"cache_write_1h\": ..., \"cache_read\": ...}}}}}} in USD per million tokens"
        )
    fields = models[key]
    discount = _number(model, table, "batch_discount", 0.5)
    base = _build(model, fields, discount)
    long = fields.get("long_prompt")
    if isinstance(long, dict):
        above = int(long.get("above_tokens") or 0)
        tier = _build(model, {**fields, **long}, discount)
        base = replace(base, long_prompt_above=above or None, long_prompt=tier)
    return base


def usd(amount: float) -> str:
    """Dollars with enough digits to read (two significant ones under a dollar, never rounded to
    $0.00 when it is not zero): ``$12.35``, ``$0.05``, ``$0.049``, ``$0.0009``."""
    if amount == 0:
        return "$0.00"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    digits = max(2, 1 - math.floor(math.log10(abs(amount))))
    text = f"{amount:.{digits}f}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text = f"{amount:.2f}"
    return "$" + text


#: The model the README recommends for labelling: the cheapest current one.
RECOMMENDED_MODEL = "claude-haiku-5-5"


def known_models() -> list[str]:
    """Model ids with a price in the merged table."""
    return sorted(load_table()["models"])


def price_order(price: ModelPrice | dict[str, Any] | None) -> tuple[float, float, int]:
    """A sort key that puts the cheapest model first (output price, then input price; models
    with no known price last). ``price`` is a ModelPrice, its :meth:`~ModelPrice.as_dict`, or None."""
    if price is None:
        return (math.inf, math.inf, 1)
    if isinstance(price, ModelPrice):
        return (price.output, price.input, 0)
    try:
        return (float(price["output"]), float(price["input"]), 0)
    except (KeyError, TypeError, ValueError):
        return (math.inf, math.inf, 1)


def models_by_price() -> list[str]:
    """The models of the price table, cheapest first."""
    table = load_table()["models"]

    def key(model: str) -> tuple[tuple[float, float, int], str]:
        try:
            return price_order(price(model)), model
        except ConfigError:
            return price_order(None), model

    return sorted(table, key=key)


def _get(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
    return int(value or 0)


def split_usage(usage: Any) -> dict[str, int]:
    """Token counts from an SDK ``Usage`` object or a dict of the same fields:
    input, output, cache_write_5m, cache_write_1h, cache_read."""
    cache_write = _get(usage, "cache_creation_input_tokens")
    breakdown = usage.get("cache_creation") if isinstance(usage, dict) else getattr(usage, "cache_creation", None)
    w1h = _get(breakdown, "ephemeral_1h_input_tokens") if breakdown is not None else 0
    w5m = cache_write - w1h if breakdown is not None else cache_write
    return {
        "input": _get(usage, "input_tokens"),
        "output": _get(usage, "output_tokens"),
        "cache_write_5m": max(0, w5m),
        "cache_write_1h": w1h,
        "cache_read": _get(usage, "cache_read_input_tokens"),
    }


def cost(model: str, usage: Any, batch: bool = False) -> float:
    """USD billed for one request with this ``usage`` (SDK ``Usage`` or a dict with
    ``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens``,
    ``cache_read_input_tokens`` and optionally ``cache_creation.ephemeral_1h_input_tokens``).

    Cache writes with no 5m/1h breakdown are billed at the 5-minute price. A prompt longer than
    the model's long-prompt threshold bills every token at the long-prompt prices.
    """
    return price(model).cost(usage, batch=batch)
