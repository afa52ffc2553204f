"""How ``attest config`` shows keys and values: credentials in URLs redacted, one line each.

A secret key's value prints as ``<set>`` (and is left out of the JSON form); every value
goes through :func:`shown` (``redis://:pw@h`` becomes ``redis://***@h``) and, as text,
through :func:`escape_control`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attest_cli.escaping import escape_control
from attest_cli.redaction import redact_url

if TYPE_CHECKING:
    from attest_cli.config.layers import Settings
    from attest_cli.config.schema import Key


def display(value: object) -> str:
    """A value on one line of text: credentials in URLs redacted, control characters escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(shown(value))
    return escape_control(shown(value))


def shown(value: object) -> object:
    """A value as printed: credentials inside URLs (``redis://:pw@h``) become ``***``."""
    if isinstance(value, str):
        return redact_url(value) if ("@" in value or "?" in value or "#" in value) else value
    if isinstance(value, list):
        return [shown(v) for v in value]
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    return value


def keys_json(keys: list[Key]) -> str:
    return json.dumps([{"key": k.name, "type": k.kind, "default": shown(k.default),
                        "choices": list(k.choices), "doc": k.doc} for k in keys],
                      indent=2) + "\n"


def keys_table(keys: list[Key]) -> str:
    width = max((len(k.name) for k in keys), default=0)
    out = []
    for k in keys:
        kind = "|".join(k.choices) if k.choices else k.kind
        out.append(f"{k.name:<{width}}  {kind:<14}  {display(k.default):<16}  {k.doc}\n")
    return "".join(out)


@dataclass(frozen=True)
class ShownSettings:
    """The effective configuration, and whether to say which layer set each value."""

    settings: Settings
    origin: bool = False


def settings_json(view: ShownSettings) -> str:
    from attest_cli.config.schema import KEYS

    s = view.settings
    return json.dumps(
        {k: ({"value": shown(v), "origin": s.origins[k]} if view.origin else shown(v))
         for k, v in s.values.items() if not (KEYS[k].secret and v)},
        indent=2, default=str) + "\n"


def settings_text(view: ShownSettings) -> str:
    from attest_cli.config.schema import KEYS

    out = []
    for key, value in view.settings.values.items():
        line = f"{key} = {'<set>' if KEYS[key].secret and value else display(value)}"
        if view.origin:
            line += f"    # {view.settings.origins[key]}"
        out.append(line + "\n")
    return "".join(out)
