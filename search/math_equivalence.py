"""Are two math answers the same?  Judged by huggingface/Math-Verify, with the work bounded.

`equivalent(a, b)` (votes: symmetric) and `matches_reference(reference, answer)` (grading:
the reference is math-verify's gold) accept numbers, fractions, LaTeX forms, percent,
thousands separators, sets, intervals, equations (``x=3`` vs ``3``) and expressions
(``(x+1)^2`` vs ``x^2+2x+1``).  Answers that are plain words (``Paris``, ``no solution``)
are compared as text, case-folded: math-verify would read them as products of symbols.

Why a helper process: math-verify bounds its work with ``signal.alarm``, which only works on
the main thread, and the app runs searches in threads (math-verify raises there unless its
timeouts are off, and then nothing stops ``9^{9^{9}}``).  So every math-verify call runs in
one helper process (`search/math_verify_worker.py`), on that process's main thread where its
own timeouts work, and the caller waits at most `timeout_s` seconds for the reply: past that
the helper is killed (a runaway computation in C ignores signals too), restarted on the next
call, and the pair counts as not equivalent.  Calls from any thread are serialised by a lock;
results are memoised, so a vote over N chains costs one comparison per distinct pair of forms.
"""

from __future__ import annotations

import atexit
import json
import re
import selectors
import subprocess
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Answers longer than this are compared as text (a model's runaway output is not an answer).
MAX_MATH_CHARS = 300
_WORDS = re.compile(r"^[A-Za-z][A-Za-z' -]*[A-Za-z]$")
#: Digit groups written with a LaTeX thin space or a braced comma: ``1\\,000``, ``1{,}000``.
_LATEX_THOUSANDS = re.compile(r"(?<=\d)(?:\\,|\\ |\\!|\{,\})(?=\d{3}(?!\d))")


class MathVerifyError(RuntimeError):
    """The math-verify helper process cannot run (e.g. the package is not installed)."""


def _fold(text: str) -> str:
    """Whitespace folded; LaTeX-spaced thousands (math-verify reads ``1\\,000`` as ``1*0``) joined."""
    return re.sub(r"\s+", " ", _LATEX_THOUSANDS.sub(",", text).strip())


def _is_words(text: str) -> bool:
    """Plain words (not a single-letter choice like ``D``, not LaTeX): compared as text."""
    return bool(_WORDS.match(text)) and len(text.replace(" ", "")) > 1 and "\\" not in text


class MathVerifier:
    """A math-verify helper process with a per-call deadline (see the module docstring).

    `timeout_s` bounds each call's wait (seconds); `startup_s` bounds the first start
    (importing sympy takes a few seconds on a busy machine).  Thread-safe.
    """

    def __init__(self, timeout_s: float = 10.0, startup_s: float = 120.0) -> None:
        self.timeout_s = timeout_s
        self.startup_s = startup_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self.restarts = 0

    def verify(self, gold: str, target: str) -> bool | None:
        """math-verify's verdict on `target` against `gold`; None when it timed out or failed."""
        reply = self._ask({"op": "verify", "gold": gold, "target": target})
        return None if reply is None else reply.get("result")

    def parse(self, text: str) -> str | None:
        """math-verify's normalised LaTeX of `text`, or None when it does not parse (or timed out)."""
        reply = self._ask({"op": "parse", "text": text})
        return None if reply is None else reply.get("result")

    def close(self) -> None:
        """Stop the helper process (a later call starts a new one)."""
        with self._lock:
            self._kill()

    def _ask(self, request: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            proc = self._started()
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
            except OSError:
                self._kill()
                return None
            reply = self._read(proc, self.timeout_s)
            if reply is None:  # past the deadline or dead: never leave a busy helper behind
                self._kill()
                self.restarts += 1
            return reply

    def _started(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        worker = Path(__file__).with_name("math_verify_worker.py")
        self._proc = subprocess.Popen(
            [sys.executable, "-u", str(worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        hello = self._read(self._proc, self.startup_s)
        if not hello or "ready" not in hello:
            self._kill()
            why = (hello or {}).get("error") or f"it did not start within {self.startup_s:.0f} s"
            raise MathVerifyError(f"The math-verify helper process could not run: {why}.")
        return self._proc

    @staticmethod
    def _read(proc: subprocess.Popen[str], seconds: float) -> dict[str, Any] | None:
        """One JSON line from the helper within `seconds`, or None."""
        assert proc.stdout is not None
        deadline = time.monotonic() + seconds
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if selector.select(timeout=left):
                    line = proc.stdout.readline()
                    return json.loads(line) if line else None
        return None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout) if proc is not None else ():
            if stream is not None:
                stream.close()


VERIFIER = MathVerifier()
atexit.register(VERIFIER.close)


@lru_cache(maxsize=8192)
def matches_reference(reference: str, answer: str) -> bool:
    """Is `answer` the `reference` (math-verify with the reference as gold)?

    Same text, or the same words case-folded, is a match without math-verify; answers over
    `MAX_MATH_CHARS` or made of words are compared only that way.
    """
    gold, target = _fold(reference), _fold(answer)
    if gold == target or (gold.casefold() == target.casefold() and (_is_words(gold) or len(gold) == 1)):
        return True
    if not gold or not target or _is_words(gold) or _is_words(target):
        return False
    if max(len(gold), len(target)) > MAX_MATH_CHARS:
        return False
    return bool(VERIFIER.verify(gold, target))


@lru_cache(maxsize=8192)
def equivalent(a: str, b: str) -> bool:
    """Do two answers mean the same (either read as the other's reference)?  Used to pool votes."""
    return matches_reference(a, b) or matches_reference(b, a)


def math_form(text: str) -> str | None:
    """math-verify's normalised LaTeX of `text` (None when it does not read it as maths)."""
    text = _fold(text)
    if not text or _is_words(text) or len(text) > MAX_MATH_CHARS:
        return None
    return VERIFIER.parse(text)
