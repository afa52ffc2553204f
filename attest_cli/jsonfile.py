"""Reading a JSON document that a user handed to attest (run report, benchmark result).

Every failure becomes one :class:`InputError` line naming the file and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attest_cli.errors import InputError


def load_json(path: str | Path, *, expected: str) -> Any:
    """Parse ``path``; ``expected`` names the kind of file in error messages."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", path=str(p)) from None
    except IsADirectoryError:
        raise InputError(f"is a directory, not {expected}", path=str(p)) from None
    except PermissionError:
        raise InputError("permission denied", path=str(p)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON, expected {expected} ({exc})", path=str(p)) from None
