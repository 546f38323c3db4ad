"""Load, check and compile contracts. A wrong contract fails here, never at the first request."""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from veomock.contracts import cache as disk_cache
from veomock.contracts.model import (
    Auth,
    Contract,
    ErrorSpec,
    FailureCode,
    Model,
    Operation,
    Price,
    Response,
    Rule,
    SourceJob,
    WebhookChannel,
    WebhookDelivery,
    WebhookUnsupported,
)
from veomock.contracts.templates import FIELDS, Template, TemplateError, compile_expression, compile_template

__all__ = ["CONTRACTS_DIR", "ContractError", "available", "load", "load_all", "load_file"]

CONTRACTS_DIR = Path(__file__).resolve().parent
_META = CONTRACTS_DIR / "contract.schema.yaml"
# libyaml's parser where PyYAML was built with it (about ten times faster), else PyYAML's own.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)


class ContractError(ValueError):
    """A contract that cannot be used: which file, where in the YAML, what is wrong, what to do."""

    def __init__(self, file: Path | str, where: str, message: str, hint: str | None = None) -> None:
        self.file, self.where, self.message, self.hint = str(file), where or "(top level)", message, hint
        text = f"{self.file}: at {self.where}: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


@cache
def _meta_validator() -> jsonschema.Draft202012Validator:
    schema = _parse_yaml(_META.read_text())
    return jsonschema.Draft202012Validator(schema)


def _where(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _closest(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _suggest(word: str, choices: Iterable[str]) -> str | None:
    close = _closest(word, choices)
    return f"did you mean {close!r}?" if close else None


def _schema_at(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        return _schema_at(node, root)
    return schema


def _explain(error: jsonschema.ValidationError, root: Mapping[str, Any]) -> tuple[str, str | None]:
    """Turn a meta-schema error into a message and a did-you-mean hint."""
    schema = _schema_at(error.schema, root) if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = list(schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            hint = _suggest(str(extra[0]), allowed) or f"allowed keys: {', '.join(allowed)}"
            return f"unknown key {extra[0]!r}", hint
    if error.validator == "enum" and isinstance(error.instance, str):
        return error.message, _suggest(error.instance, [str(v) for v in error.validator_value])
    if error.validator == "required":
        return error.message, "add it; contracts/FORMAT.md describes every key"
    return error.message, None


def _check_shape(data: Any, file: Path) -> None:
    validator = _meta_validator()
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), e.message))
    if errors:
        best = jsonschema.exceptions.best_match(errors) or errors[0]
        # An unknown key is usually a misspelled one (`schema:` for `scheme:`): name it, not the
        # required key it leaves missing.
        unknown = [e for e in errors if e.validator == "additionalProperties"]
        chosen = max(unknown, key=lambda e: len(e.absolute_path)) if unknown else best
        message, hint = _explain(chosen, validator.schema)
        raise ContractError(file, _where(chosen.absolute_path), message, hint)


def _walk_sources(node: Any, path: list[Any]) -> Iterable[tuple[list[Any], str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "source" and isinstance(value, str):
                yield [*path, key], value
            elif key not in ("schema", "if", "then", "body", "set"):
                yield from _walk_sources(value, [*path, key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_sources(value, [*path, i])


def _check_citations(data: Mapping[str, Any], file: Path) -> None:
    keys = set(data.get("sources", {}))
    for path, value in _walk_sources(data, []):
        if re.match(r"^https?://", value):
            continue
        head = re.split(r"[\s,;(]", value, maxsplit=1)[0]
        if head not in keys:
            raise ContractError(
                file,
                _where(path),
                f"source {value!r} does not start with a declared source key",
                _suggest(head, keys) or f"declare it under `sources` (known: {', '.join(sorted(keys))})",
            )


def _set_path(data: dict[str, Any], dotted: str, value: Any, file: Path, where: str) -> None:
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ContractError(file, where, f"{dotted!r}: {part!r} is not an index of the list")
            if last:
                node[int(part)] = copy.deepcopy(value)
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ContractError(file, where, f"{dotted!r}: {'.'.join(parts[:i])!r} is not a mapping")
        if last:
            node[part] = copy.deepcopy(value)
        elif part not in node:
            raise ContractError(file, where, f"{dotted!r}: no key {part!r}", _suggest(part, node))
        else:
            node = node[part]


def _apply_variants(data: dict[str, Any], chosen: Mapping[str, str], file: Path) -> dict[str, str]:
    variants = data.get("variants", {})
    for name in chosen:
        if name not in variants:
            raise ContractError(
                file,
                "variants",
                f"{data['provider']} has no variant {name!r}",
                _suggest(name, variants) or f"variants: {', '.join(variants) or 'none'}",
            )
    selected: dict[str, str] = {}
    for name, variant in variants.items():
        option = chosen.get(name, variant["default"])
        options = variant["options"]
        if variant["default"] not in options:
            raise ContractError(file, f"variants.{name}.default", f"{variant['default']!r} is not an option")
        if option not in options:
            raise ContractError(
                file,
                f"variants.{name}",
                f"no option {option!r}",
                _suggest(option, options) or f"options: {', '.join(options)}",
            )
        for dotted, value in options[option]["set"].items():
            _set_path(data, dotted, value, file, f"variants.{name}.options.{option}.set")
        selected[name] = option
    return selected


def _check_fields(template: Template, file: Path, where: str) -> Template:
    """Refuse a read of a field the engine never provides (``job.fail_mesage``)."""
    for root, known in FIELDS.items():
        for name in sorted((template.fields(root) or frozenset()) - known):
            close = _closest(name, known)
            hint = f"did you mean '{root}.{close}'?" if close else f"{root} has: {', '.join(sorted(known))}"
            raise ContractError(file, where, f"unknown field '{root}.{name}'", hint)
    return template


def _template(node: Any, file: Path, where: str) -> Template:
    try:
        template = compile_template(node)
    except TemplateError as exc:
        raise ContractError(file, where, str(exc)) from None
    return _check_fields(template, file, where)


def _expression(text: str, file: Path, where: str) -> Template:
    """An expression (``path.id``) or a template of them (``models/{{ path.model }}``)."""
    if "{{" in text:
        return _template(text, file, where)
    try:
        compile_expression(text)
    except TemplateError as exc:
        raise ContractError(file, where, str(exc)) from None
    return _check_fields(compile_template("{{ " + text + " }}"), file, where)


def _response(node: Mapping[str, Any], file: Path, where: str) -> Response:
    return Response(
        status=node["status"],
        body=_template(node["body"], file, f"{where}.body"),
        headers=dict(node.get("headers", {})),
        path=where,
    )


def _check_schemas(data: Mapping[str, Any], file: Path) -> None:
    """Every model's request schema, and each rule's ``if`` and ``then``, is a valid JSON Schema."""
    for name, node in data["models"].items():
        where, request = f"models.{name}", node["request"]
        try:
            jsonschema.Draft202012Validator.check_schema(request["schema"])
        except jsonschema.SchemaError as exc:
            raise ContractError(file, f"{where}.request.schema", f"not a valid JSON Schema: {exc.message}") from None
        for i, rule in enumerate(request.get("rules", [])):
            for part in ("if", "then"):
                try:
                    jsonschema.Draft202012Validator.check_schema(rule[part])
                except jsonschema.SchemaError as exc:
                    raise ContractError(file, f"{where}.request.rules[{i}].{part}", exc.message) from None


def _models(data: Mapping[str, Any], file: Path) -> dict[str, Model]:
    models = {}
    for name, node in data["models"].items():
        where = f"models.{name}"
        request = node["request"]
        rules = [Rule(r["id"], r["if"], r["then"], r["message"], r["source"]) for r in request.get("rules", [])]
        models[name] = Model(
            name=name,
            schema=request["schema"],
            rules=tuple(rules),
            inject={
                k: _expression(v, file, f"{where}.request.inject.{k}") for k, v in request.get("inject", {}).items()
            },
            params={
                k: _expression(v, file, f"{where}.params.{k}") if isinstance(v, str) else compile_template(v)
                for k, v in node["params"].items()
            },
            prices=tuple(Price(p.get("when", {}), p.get("amount"), p.get("per_second")) for p in node["prices"]),
            source=node["source"],
            source_job=_source_job(node["source_job"], file, f"{where}.source_job") if "source_job" in node else None,
        )
    for name, model in models.items():
        built_on = model.source_job
        for other in built_on.models if built_on else ():
            if other not in models:
                where = f"models.{name}.source_job.models"
                raise ContractError(file, where, f"unknown model {other!r}", _model_hint(other, models))
    return models


def _source_job(node: Mapping[str, Any], file: Path, where: str) -> SourceJob:
    return SourceJob(
        id_from=_expression(node["from"], file, f"{where}.from"),
        models=tuple(node["models"]),
        fail=node["fail"],
        source=node["source"],
    )


_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}")


def path_params(path: str) -> list[str]:
    """The parameter names of a route path (``/v1/{id}`` -> ``['id']``; ``{name:path}`` -> ``name``)."""
    return _PATH_PARAM.findall(path)


def _check_path_params(template: Template | None, path: str, file: Path, where: str) -> None:
    """Refuse an expression reading ``path.x`` where the route has no ``{x}``."""
    if template is None:
        return
    params = path_params(path)
    for name in sorted((template.fields("path") or frozenset()) - set(params)):
        hint = _suggest(name, params) or (f"its parameters: {', '.join(params)}" if params else "it has none")
        raise ContractError(file, where, f"reads path.{name}, but {path} has no {{{name}}}", hint)


def _model_hint(model: str, models: Iterable[str]) -> str:
    return _suggest(model, models) or f"models: {', '.join(models)}"


def _operations(data: Mapping[str, Any], models: Mapping[str, Model], file: Path) -> tuple[Operation, ...]:
    ops = []
    seen: set[tuple[str, str]] = set()
    for i, node in enumerate(data["operations"]):
        where = f"operations[{i}]"
        for model in node.get("models", []):
            if model not in models:
                raise ContractError(file, f"{where}.models", f"unknown model {model!r}", _model_hint(model, models))
        if node["kind"] == "submit" and not node.get("models"):
            raise ContractError(file, where, "a submit operation needs `models`")
        if node["kind"] == "submit" and len(node["models"]) > 1 and "model_from" not in node:
            raise ContractError(file, where, "a submit operation with several models needs `model_from`")
        if node["kind"] == "status" and "id_from" not in node:
            raise ContractError(file, where, "a status operation needs `id_from`, e.g. path.id or query.taskId")
        reads = {
            part: _expression(node[part], file, f"{where}.{part}") for part in ("id_from", "model_from") if part in node
        }
        for part, template in reads.items():
            _check_path_params(template, node["path"], file, f"{where}.{part}")
        key = (node["method"], node["path"])
        if key in seen:
            raise ContractError(file, where, f"{node['method']} {node['path']} is declared twice")
        seen.add(key)
        ops.append(
            Operation(
                name=node["name"],
                kind=node["kind"],
                method=node["method"],
                path=node["path"],
                models=tuple(node.get("models", models)),
                model_from=reads.get("model_from"),
                id_from=reads.get("id_from"),
                source=node["source"],
                errors=_errors(node, file, f"{where}.errors") if "errors" in node else {},
            )
        )
    kinds = {op.kind for op in ops}
    for needed in ("submit", "status"):
        if needed not in kinds:
            raise ContractError(file, "operations", f"no {needed} operation declared")
    return tuple(ops)


def _errors(data: Mapping[str, Any], file: Path, where: str = "errors") -> dict[str, ErrorSpec]:
    return {
        name: ErrorSpec(
            name=name,
            status=node["status"],
            body=_template(node["body"], file, f"{where}.{name}.body"),
            headers=dict(node.get("headers", {})),
            message=node.get("message"),
            retryable=node.get("retryable", node["status"] in (429, 500, 502, 503, 504)),
            source=node["source"],
            evidence=node.get("evidence", "documented"),
        )
        for name, node in data["errors"].items()
    }


def _channels(data: Mapping[str, Any], errors: Mapping[str, ErrorSpec], file: Path) -> tuple[WebhookChannel, ...]:
    out = []
    for i, node in enumerate(data["webhooks"].get("channels", [])):
        where = f"webhooks.channels[{i}]"
        when = node.get("when")
        if node.get("rejected") and node["rejected"] not in errors:
            raise ContractError(
                file, f"{where}.rejected", f"no error {node['rejected']!r}", _suggest(node["rejected"], errors)
            )
        out.append(
            WebhookChannel(
                name=node["name"],
                url_from=_expression(node["url_from"], file, f"{where}.url_from"),
                events=node["events"],
                mode_from=_expression(node["mode_from"], file, f"{where}.mode_from") if "mode_from" in node else None,
                modes=dict(node.get("modes", {})),
                filter_from=_expression(node["filter_from"], file, f"{where}.filter_from")
                if "filter_from" in node
                else None,
                https_only=node.get("https_only", False),
                headers={k: _template(v, file, f"{where}.headers.{k}") for k, v in node.get("headers", {}).items()},
                models=tuple(node.get("models", [])),
                rejected=node.get("rejected"),
                source=node["source"],
                filters={k: tuple(v) for k, v in node.get("filters", {}).items()},
                when_from=_expression(when["from"], file, f"{where}.when.from") if when else None,
                when_in=tuple(when["in"]) if when else (),
            )
        )
        if "filter_from" in node and not node.get("filters"):
            raise ContractError(file, where, "filter_from needs `filters`: event name -> canonical states")
        for model in node.get("models", []):
            if model not in data["models"]:
                hint = _model_hint(model, data["models"])
                raise ContractError(file, f"{where}.models", f"unknown model {model!r}", hint)
    return tuple(out)


def _webhook_delivery(data: Mapping[str, Any], file: Path) -> WebhookDelivery | None:
    hooks = data["webhooks"]
    node = hooks.get("delivery")
    if node is None:
        if hooks.get("channels"):
            raise ContractError(file, "webhooks", "channels need `delivery` (timeout, retry_delays, success)")
        return None
    return WebhookDelivery(
        timeout=float(node["timeout"]),
        retry_delays=tuple(float(d) for d in node["retry_delays"]),
        success=str(node["success"]),
        headers={k: _template(v, file, f"webhooks.delivery.headers.{k}") for k, v in node.get("headers", {}).items()},
        source=node["source"],
    )


def _webhook_unsupported(
    data: Mapping[str, Any], errors: Mapping[str, ErrorSpec], file: Path
) -> WebhookUnsupported | None:
    node = data["webhooks"].get("unsupported")
    if node is None:
        return None
    where = "webhooks.unsupported"
    if data["webhooks"]["supported"]:
        raise ContractError(file, where, "`unsupported` only applies when supported is false")
    if node["rejected"] not in errors:
        hint = _suggest(node["rejected"], errors)
        raise ContractError(file, f"{where}.rejected", f"no error {node['rejected']!r}", hint)
    return WebhookUnsupported(
        detect=tuple(_expression(e, file, f"{where}.detect[{i}]") for i, e in enumerate(node["detect"])),
        rejected=node["rejected"],
        source=node["source"],
    )


def load_file(file: Path | str, variants: Mapping[str, str] | None = None) -> Contract:
    """Load one contract file, with the chosen variant options (defaults for the rest).

    Loads are cached per file content and variant choice: contracts are read-only once loaded.
    """
    file = Path(file)
    return _load_cached(file, file.read_bytes(), tuple(sorted((variants or {}).items())))


@lru_cache(maxsize=128)
def _load_cached(file: Path, content: bytes, variants: tuple[tuple[str, str], ...]) -> Contract:
    return _load(file, content.decode(), dict(variants))


def _load(file: Path, text: str, variants: Mapping[str, str]) -> Contract:
    entry = disk_cache.key(text, variants)
    checked = disk_cache.read(entry)
    data, selected = checked if checked is not None else _checked(file, text, variants)
    contract = _compile(file, data, selected)
    if checked is None:
        disk_cache.write(entry, (data, selected))
    return contract


def _checked(file: Path, text: str, variants: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The contract's data with the chosen variants applied, once every check has passed."""
    try:
        data = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(parse)"
        raise ContractError(file, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ContractError(file, "", "a contract is a YAML mapping")
    _check_shape(data, file)
    _check_citations(data, file)
    data = copy.deepcopy(data)
    selected = _apply_variants(data, variants or {}, file)
    _check_shape(data, file)
    _check_citations(data, file)
    _check_schemas(data, file)
    return data, selected


def _compile(file: Path, data: dict[str, Any], selected: dict[str, str]) -> Contract:
    models = _models(data, file)
    errors = _errors(data, file)
    codes = [str(c["code"]) for c in data["failures"]["codes"]]
    for name, model in models.items():
        if model.source_job is not None and str(model.source_job.fail) not in codes:
            where = f"models.{name}.source_job.fail"
            raise ContractError(file, where, f"no failure code {model.source_job.fail!r}", f"known: {', '.join(codes)}")
    life = data["lifecycle"]
    responses = data["responses"]
    media = data["media"]
    media_path, _, media_query = media["path"].partition("?")
    for where, path in (("media.path", media_path), ("media.redirect.path", media.get("redirect", {}).get("path"))):
        if path is not None and "{job_id}" not in path:
            raise ContractError(file, where, f"{path} must contain {{job_id}}", "the mock finds the job by it")
    poll = life.get("poll_interval", {})
    return Contract(
        provider=data["provider"],
        title=data["title"],
        upstream=data["upstream"],
        file=file,
        raw=data,
        variants=selected,
        auth=Auth(
            data["auth"]["header"],
            data["auth"]["scheme"],
            data["auth"].get("key_pattern"),
            data["auth"]["source"],
            query=data["auth"].get("query"),
        ),
        models=models,
        operations=_operations(data, models, file),
        states=dict(life["states"]),
        timing={k: (float(v[0]), float(v[1])) for k, v in life["timing"].items() if k in ("queued", "running")},
        poll_interval=poll.get("min"),
        first_poll_after=poll.get("first_poll_after"),
        submit=_response(responses["submit"], file, "responses.submit"),
        status={s: _response(r, file, f"responses.status.{s}") for s, r in responses["status"].items()},
        balance=_response(responses["balance"], file, "responses.balance") if "balance" in responses else None,
        errors=errors,
        failures=tuple(
            FailureCode(c["code"], c["message"], c["state"], c.get("refund"), c["source"])
            for c in data["failures"]["codes"]
        ),
        media_path=media_path,
        media_query=media_query,
        media_auth=media.get("auth", False),
        media_redirect=(media["redirect"]["status"], media["redirect"]["path"]) if "redirect" in media else None,
        media_type=media["content_type"],
        media_expires_after=media["expires_after"],
        media_expired=_response(media["expired"], file, "media.expired"),
        default_aspect=media.get("default_aspect", "16:9"),
        billing=dict(data["billing"]),
        rate_limits=dict(data["rate_limits"]),
        webhooks=dict(data["webhooks"]),
        webhook_channels=_channels(data, errors, file),
        webhook_delivery=_webhook_delivery(data, file),
        webhook_unsupported=_webhook_unsupported(data, errors, file),
    )


def available(directory: Path | None = None) -> dict[str, Path]:
    """Provider name -> contract file, for every contract in the directory."""
    directory = directory or CONTRACTS_DIR
    return {p.stem: p for p in sorted(directory.glob("*.yaml")) if p.name != _META.name}


def load(provider: str, variants: Mapping[str, str] | None = None, directory: Path | None = None) -> Contract:
    files = available(directory)
    if provider not in files:
        hint = _suggest(provider, files) or f"known providers: {', '.join(files)}"
        raise ContractError(directory or CONTRACTS_DIR, "", f"no contract for provider {provider!r}", hint)
    contract = load_file(files[provider], variants)
    if contract.provider != provider:
        raise ContractError(
            files[provider], "provider", f"file is named {provider!r} but declares {contract.provider!r}"
        )
    return contract


def load_all(
    variants: Mapping[str, Mapping[str, str]] | None = None, directory: Path | None = None
) -> dict[str, Contract]:
    """Every contract, keyed by provider; ``variants`` maps provider -> {variant: option}."""
    variants = variants or {}
    return {name: load(name, variants.get(name), directory) for name in available(directory)}
