"""HTTP client for an OpenAI-compatible inference server (vLLM, SGLang, ...): completions, pooling, errors.

Why a client of our own over `httpx` rather than the `openai` package: we need vLLM's extra
request fields (token-id prompts, `prompt_logprobs`, `allowed_token_ids`, `stop_token_ids`,
`return_token_ids`) and its `/pooling` route, and every failure a user meets must become one
clear sentence (`ServerError`, a `ModelLoadError`) that says what to do.

Failures and their messages:

* server unreachable: the URL and the command that starts a vLLM server;
* model name not served: the names `/v1/models` lists;
* prompt longer than the served context: the token counts and the `--max-model-len` flag;
* `max_logprobs` too low / `prompt_logprobs` unsupported: the server flag to set;
* 429 / 5xx / timeouts: retried with exponential backoff (`retries` times), then `ServerError`;
* the stop button (`cancel`, bound to the search's stop event by `run_search`): the request in
  flight is abandoned within `CANCEL_POLL_S` and `ServerCancelled` raised.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from search.scope import PerSearch, run_in_context, stop_requested

from .loading import ModelLoadError

T = TypeVar("T")

#: The command printed when no server answers (flags as measured on a 2-core CPU; drop
#: --dtype/--enforce-eager/--max-model-len on a GPU).
START_HINT = (
    "python -m vllm.entrypoints.openai.api_server --model {model} --host 127.0.0.1 --port {port} "
    "--generation-config vllm --max-logprobs 20 --logprobs-mode processed_logprobs"
)
RETRY_STATUS = {408, 429, 500, 502, 503, 504}
#: Seconds between looks at the stop flag while a request is in flight.
CANCEL_POLL_S = 0.05


class ServerError(ModelLoadError):
    """The inference server could not do what was asked; the message says why and what to do."""


class ServerCancelled(ServerError):  # noqa: N818 - a stop, named like search.context.Cancelled
    """The search's stop flag was set before or during a request (the run ends `cancelled`)."""


@dataclass
class ServerUsage:
    """What the server said it spent (`usage` of each response), summed, and how many round trips.

    `cached_prompt_tokens` counts `usage.prompt_tokens_details.cached_tokens` where the server
    reports it (vLLM with `--enable-prompt-tokens-details`); 0 otherwise.
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, usage: dict[str, Any] | None) -> None:
        """Count one response's `usage` block (None: a round trip without usage)."""
        usage = usage or {}
        details = usage.get("prompt_tokens_details") or {}
        with self._lock:
            self.requests += 1
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(usage.get("completion_tokens") or 0)
            self.cached_prompt_tokens += int(details.get("cached_tokens") or 0)

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (what the spend events carry)."""
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "retries": self.retries,
        }

    def reset(self) -> None:
        with self._lock:
            self.requests = self.prompt_tokens = self.completion_tokens = self.cached_prompt_tokens = 0
            self.retries = 0


def normalize_url(url: str) -> str:
    """`http://host:port` without a trailing `/` or `/v1` (both forms are accepted from users)."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://", url):
        raise ServerError(f"{url!r} is not an http(s) URL; give the server as e.g. http://127.0.0.1:8000")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class ServerClient:
    """One served model on one OpenAI-compatible server: bounded, retried, cancellable HTTP calls.

    `url`: the server's base URL; `model`: the served model name (as `/v1/models` lists it).
    `timeout`: seconds for one request; `retries`: extra tries after a 429/5xx/timeout/connection
    error, waiting `backoff * 2**i` seconds; `max_concurrency`: requests in flight at once when a
    frontier is sent as several requests.  A request stops when the search making it asked to
    stop (`search.scope.stop_requested`: each search's own stop event, so searches sharing this
    client stop independently) or when `cancel()` (a callable, `bind_stop`) returns True; this is
    checked before each request and each retry and every `CANCEL_POLL_S` seconds while a request
    is in flight, whose answer is then abandoned (the HTTP call finishes in a daemon thread and is
    dropped), so a stop takes effect within one request.  `usage` counts per search (see
    search/scope.py), outside searches in one shared counter.
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        timeout: float = 300.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_concurrency: int = 16,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url = normalize_url(url)
        self.model = model
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.max_concurrency = max(1, int(max_concurrency))
        self._usage = PerSearch(ServerUsage)
        self.cancel: Callable[[], bool] = lambda: False
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)
        self.max_model_len: int | None = None

    # -- discovery ---------------------------------------------------------------------------

    @property
    def usage(self) -> ServerUsage:
        """What the server reported spending for the calling search (or, outside one, all other calls)."""
        return self._usage.get()

    def served_models(self) -> list[dict[str, Any]]:
        """`GET /v1/models`: the model cards the server lists (each has at least `id`)."""
        return list(self._request("GET", "/v1/models").get("data") or [])

    def check_served(self) -> dict[str, Any]:
        """The model card of `self.model`; raises ServerError listing what IS served when absent."""
        cards = self.served_models()
        for card in cards:
            if card.get("id") == self.model or card.get("root") == self.model:
                length = card.get("max_model_len")
                self.max_model_len = int(length) if isinstance(length, int) else None
                return card
        names = ", ".join(repr(c.get("id")) for c in cards) or "nothing"
        raise ServerError(
            f"The server at {self.url} does not serve {self.model!r}; it serves {names}. "
            "Pass one of those names as the model (it must also be a local directory or hub id of the "
            "same checkpoint, for its tokenizer), or start the server with --served-model-name."
        )

    # -- requests ----------------------------------------------------------------------------

    def completions(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`POST /v1/completions` with `model` filled in; counts `usage`."""
        body = self._request("POST", "/v1/completions", json={"model": self.model, **payload})
        self.usage.add(body.get("usage"))
        return body

    def pooling(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`POST /pooling` (vLLM's pooling runner) with `model` filled in; counts `usage`."""
        body = self._request("POST", "/pooling", json={"model": self.model, **payload})
        self.usage.add(body.get("usage"))
        return body

    def map(self, fn: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
        """`fn` over `items` with at most `max_concurrency` requests in flight; results in order."""
        if len(items) <= 1 or self.max_concurrency == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items))) as pool:
            return list(pool.map(run_in_context(fn), items))

    def bind_stop(self, stop: threading.Event) -> None:
        """Watch `stop` for every request of this client, whichever search makes it (searches need
        not: each request already watches its own search's stop event)."""
        self.cancel = stop.is_set

    def close(self) -> None:
        self._http.close()

    # -- internals ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        last: str = ""
        for attempt in range(self.retries + 1):
            if self.cancel() or stop_requested():
                raise ServerCancelled("stopped before the next request to the inference server")
            if attempt:
                self.usage.retries += 1
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._send_cancellable(method, path, **kwargs)
            except httpx.ConnectError as err:
                if attempt == self.retries:
                    raise ServerError(self._unreachable(err)) from err
                last = self._unreachable(err)
                continue
            except httpx.TimeoutException as err:
                last = f"the request to {self.url}{path} timed out ({type(err).__name__})"
                continue
            except httpx.HTTPError as err:
                raise ServerError(f"The request to {self.url}{path} failed: {err}") from err
            if response.status_code in RETRY_STATUS:
                last = f"the server answered {response.status_code}: {_error_text(response)[:300]}"
                continue
            if response.status_code == 404 and path == "/pooling":
                raise ServerError(
                    f"{self.url} has no /pooling route: head PRMs and outcome models need vLLM started with "
                    "--runner pooling (other servers: not supported)."
                )
            if response.status_code >= 400:
                raise ServerError(self._explain(response))
            try:
                return response.json()
            except ValueError as err:
                raise ServerError(f"{self.url}{path} did not answer with JSON: {response.text[:200]!r}") from err
        raise ServerError(f"The inference server at {self.url} failed after {self.retries + 1} tries: {last}.")

    def _send_cancellable(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP call in a daemon thread, abandoned (ServerCancelled) as soon as `cancel()` says so."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def call() -> None:
            try:
                box["response"] = self._http.request(method, path, **kwargs)
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = err
            finally:
                done.set()

        threading.Thread(target=call, name="thoughtscope-http", daemon=True).start()
        while not done.wait(CANCEL_POLL_S):
            if self.cancel() or stop_requested():
                raise ServerCancelled(f"stopped while waiting for {self.url}{path}; its answer is dropped")
        if "error" in box:
            raise box["error"]
        return box["response"]

    def _unreachable(self, err: Exception) -> str:
        port = httpx.URL(self.url).port or 8000
        return (
            f"Cannot reach the inference server at {self.url} ({err}). Start one, e.g.: "
            + START_HINT.format(model=self.model, port=port)
        )

    def _explain(self, response: httpx.Response) -> str:
        """One sentence for a 4xx the user can fix (context length, logprobs limits), else the server's text."""
        text = _error_text(response)
        low = text.lower()
        if "maximum context length" in low or "max_model_len" in low or "too long" in low:
            return (
                f"The prompt plus the tokens to generate do not fit the context {self.model!r} is served with "
                f"at {self.url} ({text[:300]}). Start the server with a larger --max-model-len, or use a "
                "shorter problem or max step tokens."
            )
        if "logprobs" in low and ("max" in low or "greater" in low or "exceed" in low):
            return (
                f"The server at {self.url} refuses the log-probabilities we ask for ({text[:300]}). Start it "
                "with --max-logprobs 20 (vLLM); a server without prompt_logprobs cannot score likelihood PRMs "
                "or self-evaluate."
            )
        if response.status_code == 404 and "model" in low:
            return f"{text[:300]} — list what is served with GET {self.url}/v1/models."
        return f"The inference server at {self.url} answered {response.status_code}: {text[:500]}"


def _error_text(response: httpx.Response) -> str:
    """The error message in an OpenAI-style error body, else the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return str(body)
