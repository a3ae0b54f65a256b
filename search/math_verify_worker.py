"""The helper process `search.math_equivalence` runs math-verify in (run as a script, not imported).

Protocol: one JSON object per line on stdin, one per line on stdout.  The process first writes
``{"ready": true}`` (or ``{"error": "..."}`` when math-verify cannot be imported), then answers
``{"op": "verify", "gold": str, "target": str}`` with ``{"result": bool}`` and
``{"op": "parse", "text": str}`` with ``{"result": str | null}`` (math-verify's normalised
LaTeX of the first parse, None when nothing parses).  It exits at end of input.

Requests are handled on this process's main thread, so math-verify's own ``signal.alarm``
timeouts work here; the parent bounds the work from outside as well (and kills this process
when a computation runs in C past every timeout, e.g. ``9^{9^{9}}``).
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from typing import Any

TIMEOUT_S = 3


def main() -> None:
    try:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    except ImportError as err:  # requirements.txt pins math-verify; say so instead of hanging the parent
        _send({"error": f"math-verify is not installed ({err}); run pip install -r requirements.txt"})
        return
    configs = [LatexExtractionConfig(), ExprExtractionConfig()]

    @lru_cache(maxsize=4096)
    def parsed(text: str) -> Any:
        return parse(f"${text}$", configs, parsing_timeout=TIMEOUT_S)

    _send({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "verify":
                gold, target = parsed(request["gold"]), parsed(request["target"])
                result: Any = bool(gold and target and verify(gold, target, timeout_seconds=TIMEOUT_S))
            else:
                found = parsed(request["text"])
                result = str(found[-1]) if found else None
            _send({"result": result})
        except Exception as err:  # noqa: BLE001 - math-verify/sympy errors mean "cannot tell"
            _send({"result": None, "failed": f"{type(err).__name__}: {err}"})


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
