"""Contracts load, validate at load time, cite their sources and explain their mistakes."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from veomock.contracts import ContractError, available, load, load_file

from tests.conftest import PROVIDERS

ISSUE_PROVIDERS = {"pixazo", "apixo", "aivideoapi", "vtrix"}


def test_every_provider_has_a_contract() -> None:
    assert set(available()) >= ISSUE_PROVIDERS


@pytest.mark.parametrize("provider", PROVIDERS)
def test_contract_loads_with_every_variant_option(provider: str) -> None:
    contract = load(provider)
    assert contract.provider == provider
    for variant, options in contract.variant_choices().items():
        for option in options:
            assert load(provider, {variant: option}).variants[variant] == option


SEED_NAME = re.compile(r"[0-9]{3}_[0-9a-f]{16}[.]txt")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_source_is_checkable_from_the_repository_alone(provider: str) -> None:
    """A source gives a title and a public address or a plain identifier, never a path to a file
    outside the repository (a fresh clone has nothing beside it)."""
    for key, source in load(provider).raw["sources"].items():
        assert source["title"], key
        assert source.keys() <= {"url", "seed", "document", "title", "note"}, key
        assert source.keys() & {"url", "seed", "document"}, key
        if "url" in source:
            assert urlsplit(source["url"]).scheme == "https" and urlsplit(source["url"]).netloc, key
        if "seed" in source:
            assert SEED_NAME.fullmatch(source["seed"]) and "url" in source, key


def test_a_seed_names_one_public_address_in_every_contract() -> None:
    addresses: dict[str, set[str]] = {}
    for provider in PROVIDERS:
        for source in load(provider).raw["sources"].values():
            if "seed" in source:
                addresses.setdefault(source["seed"], set()).add(source["url"])
    assert addresses and all(len(urls) == 1 for urls in addresses.values()), addresses


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ({"file": "shared/seeds/001_e24fdcb7edf17054.txt", "title": "t"}, "unknown key 'file'"),
        ({"seed": "001_e24fdcb7edf17054.txt", "title": "t"}, "'url' is a dependency of 'seed'"),
        ({"seed": "../shared/seeds/001.txt", "url": "https://apixo.ai/", "title": "t"}, "does not match"),
        ({"url": "file:///work/shared/seeds/001.txt", "title": "t"}, "does not match"),
    ],
)
def test_a_source_that_points_outside_the_repository_is_refused(
    tmp_path: Path, source: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ContractError, match=re.escape(complaint)):
        load_file(_mutated(tmp_path, {"sources.S-APX1": source}))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_canonical_lifecycle_is_mapped(provider: str) -> None:
    contract = load(provider)
    assert set(contract.states) == {"queued", "running", "succeeded", "failed", "error"}
    assert contract.status.keys() == contract.states.keys()


def _mutated(tmp_path: Path, change: dict[str, object], provider: str = "apixo") -> Path:
    data = yaml.safe_load(load(provider).file.read_text())
    for dotted, value in change.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    path = tmp_path / f"{provider}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_typo_in_a_key_names_file_path_and_suggestion(tmp_path: Path) -> None:
    path = _mutated(tmp_path, {"auth.headr": "Authorization"})
    with pytest.raises(ContractError) as info:
        load_file(path)
    err = info.value
    assert err.file == str(path)
    assert err.where == "auth"
    assert "headr" in err.message
    assert err.hint == "did you mean 'header'?"


def test_missing_required_section_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="'lifecycle' is a required property"):
        load_file(_mutated(tmp_path, {"lifecycle": ...}))


def test_undeclared_source_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as info:
        load_file(_mutated(tmp_path, {"auth.source": "S-APX9 Endpoint"}))
    assert info.value.where == "auth.source"
    assert "did you mean" in (info.value.hint or "")


def test_bad_template_fails_at_load_time(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as info:
        load_file(_mutated(tmp_path, {"responses.submit.body": {"id": "{{ job.id | shout }}"}}))
    assert info.value.where == "responses.submit.body"
    assert "unknown filter 'shout'" in info.value.message


def test_unknown_model_in_operation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as info:
        load_file(_mutated(tmp_path, {"operations.0.models": ["veo-3-2"]}))
    assert info.value.where == "operations[0].models"
    assert info.value.hint == "did you mean 'veo-3-1'?"


def test_invalid_request_schema_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="not a valid JSON Schema"):
        load_file(_mutated(tmp_path, {"models.veo-3-1.request.schema": {"type": "objekt"}}))


def test_unknown_variant_option_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as info:
        load("apixo", {"fail_codes": "s-apx5"})
    assert "s-apx" in (info.value.hint or "")


def test_yaml_syntax_error_gives_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("format: 1\nprovider: [unclosed\n")
    with pytest.raises(ContractError, match="line"):
        load_file(path)


def test_misspelled_key_is_named_with_the_key_it_meant(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as info:
        load_file(_mutated(tmp_path, {"auth.scheme": ..., "auth.schema": "bearer"}))
    err = info.value
    assert (err.where, err.message, err.hint) == ("auth", "unknown key 'schema'", "did you mean 'scheme'?")
    assert str(err).endswith("at auth: unknown key 'schema' (did you mean 'scheme'?)")


def test_template_reading_an_unknown_field_is_refused(tmp_path: Path) -> None:
    body = {"id": "{{ job.id }}", "error": {"code": "{{ job.fail_code }}", "error_message": "{{ job.fail_mesage }}"}}
    with pytest.raises(ContractError) as info:
        load_file(_mutated(tmp_path, {"responses.status.succeeded.body": body}, "vtrix"))
    err = info.value
    assert (err.where, err.message) == ("responses.status.succeeded.body", "unknown field 'job.fail_mesage'")
    assert err.hint == "did you mean 'job.fail_message'?"


def test_every_job_field_a_template_may_read_is_one_the_mock_provides() -> None:
    from veomock.contracts.templates import FIELDS
    from veomock.mocks import Clock, create_state

    state = create_state(seed=1, clock=Clock(speed=0, start=0.0))
    contract = state.contracts["apixo"]
    model = next(iter(contract.models.values()))
    job = state.create_job("apixo", model, "k", {"prompt": "p", "aspect_ratio": "16:9", "duration": 8})
    assert set(state.view(job, "")) == FIELDS["job"]
    assert set(state.runtime("apixo").ledger.view("k", 0.0)) == FIELDS["balance"]


def test_id_from_naming_no_path_parameter_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as info:
        load_file(_mutated(tmp_path, {"operations.1.id_from": "path.task"}, "vtrix"))
    err = info.value
    assert err.where == "operations[1].id_from"
    assert err.message == "reads path.task, but /model/v1/generation/task/{id} has no {task}"
    assert err.hint == "its parameters: id"


def test_unknown_model_without_a_close_match_lists_the_models(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as info:
        load_file(_mutated(tmp_path, {"operations.0.models": ["sora-2"]}))
    assert info.value.hint == "models: veo-3-1, veo-3-1-extend"


def test_the_adding_a_provider_checklist_holds_for_every_provider() -> None:
    import importlib
    import re

    from examples.broken import CATALOGUE

    root = Path(__file__).resolve().parent.parent
    checklist = (root / "contracts" / "FORMAT.md").read_text().split("## Adding a provider", 1)[1]
    paths = [p for p in re.findall(r"`([\w./-]*<name>[\w./-]*)`", checklist) if "/" in p]
    assert {"contracts/<name>.yaml", "examples/clients/<name>.py"} <= set(paths)
    readme = (root / "README.md").read_text()
    for provider in PROVIDERS:
        for path in paths:
            assert (root / path.replace("<name>", provider)).exists(), path.replace("<name>", provider)
        assert callable(importlib.import_module(f"examples.clients.{provider}").generate), provider
        assert any(b.provider == provider for b in CATALOGUE), f"no broken client for {provider}"
        title = load(provider).title
        assert f"### {title}" in readme and f"| {title} |" in readme, f"README: no session or table row for {title}"


def test_path_parameters_are_read_with_their_convertors() -> None:
    from veomock.contracts.loader import path_params

    assert path_params("/v1beta/{name:path}") == ["name"]
    assert path_params("/v1beta/models/{model}/operations/{operation}") == ["model", "operation"]
    assert path_params("/api/v1/statusTask/veo-3-1") == []


def test_id_from_may_rebuild_a_resource_name_from_path_parameters(tmp_path: Path) -> None:
    path = _mutated(tmp_path, {"operations.1.path": "/model/v1/{kind}/task/{id}"}, "vtrix")
    text = path.read_text().replace("id_from: path.id", "id_from: '{{ path.kind }}/{{ path.id }}'")
    path.write_text(text)
    op = next(o for o in load_file(path).operations if o.kind == "status")
    assert op.id_from is not None and op.id_from.render({"path": {"kind": "video", "id": "x1"}}) == "video/x1"
    path.write_text(text.replace("{{ path.kind }}", "{{ path.knd }}"))
    with pytest.raises(ContractError) as info:
        load_file(path)
    assert info.value.hint == "did you mean 'kind'?"


def test_a_status_operation_locates_a_job_by_reading_id_from_backwards() -> None:
    from veomock.contracts.model import Operation

    def status_op(provider: str) -> Operation:
        return next(o for o in load(provider).operations if o.kind == "status")

    assert status_op("vtrix").locate("abc") == ("/model/v1/generation/task/abc", {})
    assert status_op("apixo").locate("task_1") == ("/api/v1/statusTask/veo-3-1", {"taskId": "task_1"})
    name = "models/veo-3.1-generate-preview/operations/ab12"
    assert status_op("gemini").locate(name) == ("/v1beta/" + name, {})
