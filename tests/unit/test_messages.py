"""Messages: YAML's booleans where text was meant, and substitution syntax the loader does not support."""

from __future__ import annotations

import pytest
import yaml

from smlaunch.errors import SpecError
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter

BASE = starter("gpt2-30b")


def _write(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("word", ["no", "yes", "on", "off", "NO", "True"])
def test_a_yaml_boolean_where_text_is_wanted_says_so(tmp_path, word):
    path = _write(tmp_path, BASE.replace("name: gpt2-30b", f"name: {word}", 1))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    shown = str(yaml.safe_load(word)).lower()
    assert f'name (line 6): Input should be a valid string (got {yaml.safe_load(word)!r}); YAML read {word} as a ' \
        f'boolean ({shown}): quote it, name: "{word}"' in caught.value.message  # fmt: skip


def test_a_boolean_in_a_text_map_names_its_key(tmp_path):
    text = BASE.replace("\nsagemaker:\n", "\nsagemaker:\n  environment: {USE_FAST: yes}\n", 1)
    with pytest.raises(SpecError, match=r'sagemaker.environment.USE_FAST .*YAML read yes as a boolean \(true\): quote '
                       r'it, sagemaker.environment.USE_FAST: "yes"'):  # fmt: skip
        load_spec(_write(tmp_path, text))


def test_set_of_a_yaml_boolean_into_a_text_field_keeps_the_text():
    """``--set name=no`` means the name "no" (as ``--set sagemaker.framework_version=2.0`` means "2.0")."""
    spec = load_spec(yaml.safe_load(BASE), ["name=no", "sagemaker.py_version=on"])
    assert (spec.name, spec.sagemaker.py_version) == ("no", "on")
    assert load_spec(yaml.safe_load(BASE), ["smp.ddp=no"]).smp.ddp is False  # a boolean field stays boolean


@pytest.mark.parametrize(
    ("value", "shown"),
    [("${A:-${B}}", "'${A:-${B}}'"), ("${1BAD}", "'${1BAD}'"), ("x-${}", "'${}'"), ("${A-b}", "'${A-b}'"),
     ("${A:-x", "'${A:-x'")],
)  # fmt: skip
def test_unsupported_substitution_is_an_error_naming_the_line(tmp_path, value, shown):
    path = _write(tmp_path, BASE.replace("name: gpt2-30b", f"name: '{value}'", 1))
    with pytest.raises(SpecError) as caught:
        load_spec(path, env={"A": "a", "B": "b"})
    assert caught.value.message.startswith(f"{path}:6: name uses {shown}: unsupported substitution syntax")
    assert caught.value.field == "name"
    assert caught.value.fix == "write ${VAR} or ${VAR:-default} (the default is plain text), or $$ for a literal $"


def test_supported_substitution_still_works(tmp_path):
    spec = load_spec(_write(tmp_path, BASE.replace("name: gpt2-30b", "name: ${NAME:-dflt}", 1)), env={})
    assert spec.name == "dflt"
    spec = load_spec(_write(tmp_path, BASE.replace("name: gpt2-30b", "name: ${NAME}", 1)), env={"NAME": "from-env"})
    assert spec.name == "from-env"
    text = BASE.replace("\nsagemaker:\n", "\nsagemaker:\n  environment: {PRICE: $$5, HOME_DIR: '${H:-/x}'}\n", 1)
    assert load_spec(_write(tmp_path, text), env={}).sagemaker.environment == {"PRICE": "$5", "HOME_DIR": "/x"}
