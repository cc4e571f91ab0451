"""The Claude API's rules in front of llmock, judged by Anthropic's own Python SDK.

llmock answers whatever it is sent. This gate listens where the tests expect the Claude API,
holds every `POST /anthropic/v1/messages` to the rules of the official `anthropic` package
(its request types, its model list, its `transform_schema`, the API version it sends), and
answers a request that breaks one the way the real API does (404 for an unknown model, 400
for the rest) instead of passing it on. Everything it was sent, and every rule broken, is
kept and served at `GET /_gate/report`; `scripts/test` fails the suite on any broken rule
after `cargo test` (routes named `wrong-...` break rules on purpose and are only counted).

Requests that pass go to llmock. The API key picks the test's script: a key
`sk-ant-test-ROUTE` sends the request to llmock with the model ROUTE, so each test keeps its
own queue of scripted answers while compass sends the real model name. The gate also
answers `GET /anthropic/v1/models[/ID]` from the SDK's model list, gives a scripted refusal
the API's `stop_details`, and reports prompt-cache
reads and writes in `usage` as the API does (a prefix marked with `cache_control`, seen again
within five minutes, is read from the cache), with tokens estimated at four characters each.

    python scripts/claude-gate.py --port 8440 --upstream http://127.0.0.1:8441
    python scripts/claude-gate.py --verdict http://127.0.0.1:8440   # after the suite
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import typing

import typing_extensions as tx
import aiohttp
from aiohttp import web

import anthropic
from anthropic._constants import ANTHROPIC_API_VERSION
from anthropic._data.deprecated_models import DEPRECATED_MODELS
from anthropic.lib._parse._transform import transform_schema
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from anthropic.types.model_param import ModelParam

MODELS = [m for m in typing.get_args(typing.get_args(ModelParam)[0])]
ROUTE_KEY_PREFIX = "sk-ant-test-"
CACHE_SECONDS = 300
# The smallest prefix the API caches (Sonnet-class models); a shorter one is neither written
# nor read, silently, as the API does.
CACHE_MIN_TOKENS = 1024


def tokens(value: object) -> int:
    """Tokens, estimated as llmock does: four characters each."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return len(text) // 4


# ---------------------------------------------------------------------------------------
# The rules


class Broken(Exception):
    def __init__(self, rule: str, status: int, kind: str, message: str):
        super().__init__(message)
        self.rule, self.status, self.kind, self.message = rule, status, kind, message


def conforms(value: object, hint: object, path: str) -> list[str]:
    """Where `value` does not fit the SDK's type `hint`: unknown keys, missing required keys,
    wrong types, values outside a Literal."""
    origin = tx.get_origin(hint)
    args = tx.get_args(hint)
    if hint is object or hint is typing.Any:
        return []
    if origin is tx.Annotated:
        return conforms(value, args[0], path)
    if origin in (tx.Required, tx.NotRequired):
        return conforms(value, args[0], path)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return []
        failures = [conforms(value, arm, path) for arm in args if arm is not type(None)]
        if any(not f for f in failures):
            return []
        return min(failures, key=len)
    if origin is tx.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if tx.is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        hints = tx.get_type_hints(hint, include_extras=True)
        wire = {}
        for name, field in hints.items():
            alias = name
            if tx.get_origin(field) is tx.Annotated:
                for extra in tx.get_args(field)[1:]:
                    alias = getattr(extra, "alias", None) or alias
            wire[alias] = field
        problems = []
        for key in value:
            if key not in wire:
                problems.append(f"{path}.{key}: Extra inputs are not permitted")
        for key in hint.__required_keys__:
            if key not in value:
                problems.append(f"{path}.{key}: Field required")
        for key, item in value.items():
            if key in wire:
                problems += conforms(item, wire[key], f"{path}.{key}")
        return problems
    if origin in (list, typing.Iterable, typing.Sequence) or (
        origin is not None and getattr(origin, "__name__", "") in ("Iterable", "Sequence")
    ) or getattr(hint, "__name__", "") == "SequenceNotStr" or getattr(origin, "__name__", "") == "SequenceNotStr":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        item_hint = args[0] if args else object
        return [p for n, item in enumerate(value) for p in conforms(item, item_hint, f"{path}.{n}")]
    if origin in (dict, typing.Dict) or (origin is not None and getattr(origin, "__name__", "") in ("Mapping", "Dict")):
        return [] if isinstance(value, dict) else [f"{path}: expected an object"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string"]
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    if hint is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: expected an integer"]
    if hint is float:
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{path}: expected a number"]
    if hint is type(None):
        return [] if value is None else [f"{path}: expected null"]
    if isinstance(hint, typing.TypeVar) or isinstance(hint, str):
        return []
    # A type the walk does not know (a file, a date): not judged.
    return []


def schema_differences(ours: object, theirs: object, path: str = "schema") -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        problems = []
        for key in sorted(set(ours) | set(theirs), key=str):
            if key not in theirs:
                problems.append(f"{path}: property '{key}' is not supported")
            elif key not in ours:
                problems.append(f"{path}: the SDK adds '{key}'")
            else:
                problems += schema_differences(ours[key], theirs[key], f"{path}.{key}")
        return problems
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [p for n, (a, b) in enumerate(zip(ours, theirs)) for p in schema_differences(a, b, f"{path}.{n}")]
    return [] if ours == theirs else [f"{path}: the SDK rewrites {ours!r} as {theirs!r}"]


def content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else "" for b in content)
    return ""


def judge(body: object, headers: "aiohttp.typedefs.LooseHeaders") -> list[Broken]:
    """Every rule the request breaks, the one the API would answer first, first."""
    broken: list[Broken] = []
    if not isinstance(body, dict):
        return [Broken("json-body", 400, "invalid_request_error", "The request body is not valid JSON.")]
    params = conforms(body, MessageCreateParamsNonStreaming, "body")
    if params:
        broken.append(Broken("sdk-parameters", 400, "invalid_request_error", "; ".join(params)))
    model = body.get("model")
    if model not in MODELS:
        broken.append(Broken("model-listed", 404, "not_found_error", f"model: {model}"))
    schema = (body.get("output_config") or {}).get("format", {}) or {}
    schema = schema.get("schema") if isinstance(schema, dict) else None
    if schema is not None:
        try:
            differences = schema_differences(schema, transform_schema(schema), "output_config.format.schema")
        except Exception as error:  # the SDK refuses the schema outright
            differences = [f"output_config.format.schema: {error}"]
        if differences:
            broken.append(Broken("schema-supported", 400, "invalid_request_error", "; ".join(differences)))
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    for n, message in enumerate(messages):
        final_assistant = n == len(messages) - 1 and message.get("role") == "assistant"
        if not content_text(message.get("content")).strip() and not final_assistant:
            broken.append(Broken(
                "non-empty-content", 400, "invalid_request_error",
                f"messages.{n}: all messages must have non-empty content except for the optional final assistant message",
            ))
            break
    if messages and messages[-1].get("role") == "assistant":
        broken.append(Broken(
            "no-prefill", 400, "invalid_request_error",
            "Prefilling the assistant message is not supported for this model; end with a user message",
        ))
    version = headers.get("anthropic-version")
    if version != ANTHROPIC_API_VERSION:
        # The API still serves older versions; the contract is to speak the SDK's.
        broken.append(Broken(
            "api-version", 0, "", f"anthropic-version {version!r}, the SDK {anthropic.__version__} sends {ANTHROPIC_API_VERSION!r}",
        ))
    return broken


# ---------------------------------------------------------------------------------------
# The server


class Gate:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.requests: list[dict] = []
        self.cache: dict[str, float] = {}
        self.session: aiohttp.ClientSession | None = None

    async def client(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))
        return self.session

    @staticmethod
    def key(request: web.Request) -> str:
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            return bearer[7:].strip()
        return request.headers.get("x-api-key", "")

    def route(self, request: web.Request) -> str | None:
        key = self.key(request)
        return key[len(ROUTE_KEY_PREFIX):] if key.startswith(ROUTE_KEY_PREFIX) else None

    async def messages(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        route = self.route(request)
        broken = judge(body, request.headers)
        self.requests.append({
            "route": route,
            "body": body,
            "anthropic_version": request.headers.get("anthropic-version"),
            "broken": [{"rule": b.rule, "message": b.message} for b in broken],
        })
        refusing = [b for b in broken if b.status]
        if refusing:
            first = refusing[0]
            return web.json_response(
                {"type": "error", "error": {"type": first.kind, "message": first.message},
                 "request_id": "req_gate_" + hashlib.sha256(raw).hexdigest()[:16]},
                status=first.status,
            )
        forwarded = dict(body)
        if route:
            forwarded["model"] = route
        status, headers, answer = await self.forward(request, json.dumps(forwarded).encode())
        if status == 200:
            try:
                message = json.loads(answer)
                message["model"] = body["model"]
                message["usage"] = self.usage(body, message, self.key(request))
                if message.get("stop_reason") == "refusal":
                    # As the API answers a refusal: what was declined and why, no text.
                    message["content"] = [b for b in message.get("content", []) if b.get("text")]
                    message.setdefault("stop_details", {
                        "type": "refusal", "category": None,
                        "explanation": "The model declined to continue this request.",
                    })
                answer = json.dumps(message).encode()
            except (ValueError, KeyError, TypeError):
                pass
        return web.Response(body=answer, status=status, headers=headers)

    def usage(self, body: dict, message: dict, key: str) -> dict:
        """The API's usage for this request: what a marked prefix read from or wrote to the
        cache (one cache per API key, as the API keeps one per organization), and the rest as
        input."""
        system = body.get("system") or ""
        blocks = [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
        schema = (body.get("output_config") or {}).get("format")
        # The API's order: tools, system, messages; the answer's format rides with the system.
        parts = [json.dumps(schema, sort_keys=True) if schema else ""]
        prefix_end = None
        for block in blocks:
            parts.append(block.get("text", ""))
            if block.get("cache_control"):
                prefix_end = len(parts)
        for message_ in body.get("messages", []):
            content = message_.get("content")
            for block in content if isinstance(content, list) else [{"text": content or ""}]:
                parts.append(block.get("text", "") if isinstance(block, dict) else "")
                if isinstance(block, dict) and block.get("cache_control"):
                    prefix_end = len(parts)
        if body.get("cache_control"):
            prefix_end = len(parts)
        total = sum(tokens(p) for p in parts)
        usage = dict(message.get("usage") or {})
        usage.update(input_tokens=total, cache_read_input_tokens=0, cache_creation_input_tokens=0)
        if prefix_end is not None:
            prefix = parts[:prefix_end]
            prefix_tokens = sum(tokens(p) for p in prefix)
            if prefix_tokens >= CACHE_MIN_TOKENS:
                entry = hashlib.sha256(json.dumps([key, body.get("model"), prefix]).encode()).hexdigest()
                now = time.monotonic()
                hit = self.cache.get(entry, 0) > now
                self.cache[entry] = now + CACHE_SECONDS
                usage["input_tokens"] = total - prefix_tokens
                usage["cache_read_input_tokens" if hit else "cache_creation_input_tokens"] = prefix_tokens
        return usage

    async def forward(self, request: web.Request, body: bytes) -> tuple[int, dict, bytes]:
        session = await self.client()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with session.request(request.method, self.upstream + request.path_qs, data=body, headers=headers) as answer:
            content = await answer.read()
            keep = {k: v for k, v in answer.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection", "date", "server")}
            return answer.status, keep, content

    async def proxy(self, request: web.Request) -> web.Response:
        status, headers, content = await self.forward(request, await request.read())
        return web.Response(body=content, status=status, headers=headers)

    async def model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if model not in MODELS:
            return web.json_response(
                {"type": "error", "error": {"type": "not_found_error", "message": f"model: {model}"}},
                status=404,
            )
        return web.json_response(model_info(model))

    async def models(self, request: web.Request) -> web.Response:
        data = [model_info(m) for m in MODELS]
        return web.json_response({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})

    async def report(self, request: web.Request) -> web.Response:
        return web.json_response({
            "sdk": anthropic.__version__,
            "checked": len(self.requests),
            "requests": self.requests,
        })

    async def forget(self, request: web.Request) -> web.Response:
        self.requests.clear()
        return web.json_response({"checked": 0})


def model_info(model: str) -> dict:
    retires = DEPRECATED_MODELS.get(model)
    info = {
        "type": "model", "id": model, "display_name": model, "created_at": "2026-01-01T00:00:00Z",
        "lifecycle": "deprecated" if retires else "active", "deprecated_at": None, "retires_at": None,
    }
    if retires:
        # "January 22nd, 2027" as the API's RFC 3339 time.
        words = retires.replace(",", "").split()
        day = "".join(c for c in words[1] if c.isdigit())
        parsed = time.strptime(f"{words[0]} {day} {words[2]}", "%B %d %Y")
        info["retires_at"] = time.strftime("%Y-%m-%dT00:00:00Z", parsed)
        info["deprecated_at"] = "2026-01-01T00:00:00Z"
    return info


def verdict(base: str) -> int:
    """Prints what the gate saw; 1 if a request broke a rule by mistake or none was judged."""
    import urllib.request

    with urllib.request.urlopen(base.rstrip("/") + "/_gate/report", timeout=30) as answer:
        report = json.load(answer)
    on_purpose, mistakes = 0, []
    for request in report["requests"]:
        if not request["broken"]:
            continue
        if (request["route"] or "").startswith("wrong-"):
            on_purpose += 1
            continue
        mistakes.append(request)
    print(
        f"claude contract (anthropic {report['sdk']}): {report['checked']} requests judged, "
        f"{on_purpose} broke a rule on purpose, {len(mistakes)} by mistake"
    )
    for request in mistakes:
        for rule in request["broken"]:
            print(f"  rule {rule['rule']} (route {request['route']}): {rule['message']}")
    if report["checked"] == 0:
        print("  no request reached the gate: nothing was judged")
        return 1
    return 1 if mistakes else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int)
    parser.add_argument("--upstream", help="llmock's base URL")
    parser.add_argument("--verdict", metavar="URL", help="judge what a running gate saw, and exit")
    args = parser.parse_args()
    if args.verdict:
        raise SystemExit(verdict(args.verdict))
    if args.port is None or args.upstream is None:
        parser.error("--port and --upstream are needed to serve")
    gate = Gate(args.upstream)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/anthropic/v1/messages", gate.messages)
    app.router.add_get("/anthropic/v1/models", gate.models)
    app.router.add_get("/anthropic/v1/models/{model}", gate.model)
    app.router.add_get("/_gate/report", gate.report)
    app.router.add_delete("/_gate/report", gate.forget)
    app.router.add_route("*", "/{tail:.*}", gate.proxy)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
