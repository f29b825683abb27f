"""The price ledger (bundled table, user override, cost formula) and the API-key handling."""

from __future__ import annotations

import json

import keyring
import pytest

from kdstudio.core import secrets
from kdstudio.core.errors import ConfigError
from kdstudio.core.paths import app_home
from kdstudio.core.teachers import pricing

USAGE = {"input_tokens": 400, "output_tokens": 60, "cache_creation_input_tokens": 1000,
         "cache_read_input_tokens": 2000}


def test_bundled_table_is_dated_and_covers_the_current_models():
    table = pricing.load_table()
    assert table["updated"] >= "2026-11-01" and table["batch_discount"] == 0.5
    for model in ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-4-5"):
        p = pricing.price(model)
        assert 0 < p.cache_read < p.input < p.cache_write_5m <= p.cache_write_1h < p.output * 2


def test_cost_follows_the_formula_for_input_output_and_cache_tokens():
    # Haiku 5.5: 0.10 in, 0.50 out, 0.125 5-minute write, 0.01 read (USD per MTok)
    expected = (400 * 0.10 + 60 * 0.50 + 1000 * 0.125 + 2000 * 0.01) / 1e6
    assert pricing.cost("claude-haiku-5-5", USAGE) == pytest.approx(expected)
    assert pricing.cost("claude-haiku-5-5", USAGE, batch=True) == pytest.approx(expected / 2)


def test_one_hour_cache_writes_use_their_own_price():
    usage = {**USAGE, "cache_creation": {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600}}
    expected = (400 * 1.0 + 60 * 5.0 + 400 * 1.25 + 600 * 2.0 + 2000 * 0.1) / 1e6
    assert pricing.cost("claude-haiku-4-5", usage) == pytest.approx(expected)


def test_sdk_usage_objects_are_accepted():
    from anthropic.types import Usage

    usage = Usage(input_tokens=400, output_tokens=60, cache_creation_input_tokens=1000, cache_read_input_tokens=2000)
    assert pricing.cost("claude-haiku-5-5", usage) == pytest.approx(pricing.cost("claude-haiku-5-5", USAGE))


def test_a_long_haiku_prompt_is_billed_at_the_long_prompt_prices():
    long = {"input_tokens": 150_000, "output_tokens": 100}
    assert pricing.cost("claude-haiku-5-5", long) == pytest.approx((150_000 * 0.5 + 100 * 2.5) / 1e6)


def test_dated_model_ids_use_the_base_model_price():
    assert pricing.price("claude-haiku-4-5-20251001").input == pricing.price("claude-haiku-4-5").input


def test_unknown_model_names_the_override_file_to_add_it_to():
    with pytest.raises(ConfigError) as info:
        pricing.cost("claude-mystery-7", USAGE)
    message = str(info.value)
    assert "claude-mystery-7" in message and str(app_home() / "prices.json") in message


def test_user_override_file_adds_models_and_changes_prices_field_by_field():
    app_home(create=True)
    (app_home() / "prices.json").write_text(json.dumps({
        "updated": "2027-01-01",
        "models": {"claude-new-1": {"input": 2.0, "output": 8.0},
                   "claude-haiku-5-5": {"output": 1.0}},
    }))
    assert pricing.load_table()["updated"] == "2027-01-01"
    new = pricing.price("claude-new-1")
    assert (new.cache_write_5m, new.cache_write_1h, new.cache_read) == (2.5, 4.0, pytest.approx(0.2))
    haiku = pricing.price("claude-haiku-5-5")
    assert haiku.output == 1.0 and haiku.input == 0.1


def test_a_broken_override_file_is_a_clear_config_error():
    app_home(create=True)
    (app_home() / "prices.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"prices\.json: not valid JSON"):
        pricing.price("claude-haiku-5-5")
    (app_home() / "prices.json").write_text(json.dumps({"models": {"claude-x": {"input": -1, "output": 1}}}))
    with pytest.raises(ConfigError, match="non-negative"):
        pricing.price("claude-x")


def test_environment_variable_comes_first(monkeypatch, memory_keyring):
    secrets.set_api_key("sk-ant-from-keyring")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    assert secrets.get_api_key() == "sk-ant-from-env" and secrets.key_source() == "environment"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert secrets.get_api_key() == "sk-ant-from-keyring" and secrets.key_source() == "keyring"


def test_key_is_saved_in_the_keyring_under_the_kdstudio_service(memory_keyring):
    secrets.set_api_key("  sk-ant-abc123456789  ")
    assert memory_keyring.store == {("kdstudio", "anthropic_api_key"): "sk-ant-abc123456789"}
    assert secrets.delete_api_key() and secrets.get_api_key() is None


def test_no_keyring_backend_tells_the_user_to_use_the_environment_variable():
    # the autouse fixture selects keyring's null backend, which drops what it is given
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        secrets.set_api_key("sk-ant-abc123456789")
    assert secrets.get_api_key() is None and secrets.key_source() is None


def test_failing_keyring_backend_is_reported_the_same_way():
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
            secrets.set_api_key("sk-ant-abc123456789")
        assert secrets.get_api_key() is None
    finally:
        keyring.set_keyring(previous)


def test_the_key_is_never_written_to_the_settings_folder(memory_keyring):
    secrets.set_api_key("sk-ant-secret-value-42")
    for path in app_home(create=True).rglob("*"):
        if path.is_file():
            assert b"secret-value-42" not in path.read_bytes()


def test_empty_or_broken_keys_are_refused(memory_keyring):
    with pytest.raises(ConfigError, match="empty"):
        secrets.set_api_key("   ")
    with pytest.raises(ConfigError, match="spaces"):
        secrets.set_api_key("sk-ant one")


def test_mask_shows_only_the_ends_of_the_key():
    assert secrets.mask("sk-ant-api03-abcdefghijklmnop") == "sk-ant-…mnop"
    assert secrets.mask(None) == "(none)"


def test_the_price_table_orders_models_cheapest_first_and_recommends_the_cheapest_current_one():
    models = pricing.models_by_price()
    assert models[0] == pricing.RECOMMENDED_MODEL == "claude-haiku-5-5"
    outputs = [pricing.price(m).output for m in models]
    assert outputs == sorted(outputs) and models[-1] == "claude-fable-5-1"
    assert pricing.price_order(None) > pricing.price_order(pricing.price("claude-fable-5-1").as_dict())


def test_amounts_under_a_cent_keep_their_digits():
    assert [pricing.usd(x) for x in (0.0009, 0.049, 0.05, 0.001, 12.345, 0)] == [
        "$0.0009", "$0.049", "$0.05", "$0.001", "$12.35", "$0.00"]


def test_a_key_typed_for_the_session_comes_first_and_is_never_saved(monkeypatch, memory_keyring):
    secrets.set_api_key("sk-ant-from-keyring")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    secrets.use_for_session("  sk-ant-typed-here  ")
    assert secrets.get_api_key() == "sk-ant-typed-here" and secrets.key_source() == "session"
    assert memory_keyring.store == {("kdstudio", "anthropic_api_key"): "sk-ant-from-keyring"}
    assert not secrets.saved_in_keyring("sk-ant-typed-here") and secrets.saved_in_keyring("sk-ant-from-keyring")
    secrets.forget_session_key()
    assert secrets.key_source() == "environment"
    assert secrets.describe_source("environment") == "the ANTHROPIC_API_KEY environment variable"
    assert secrets.describe_source("keyring") == "the OS keyring (service kdstudio)"
    with pytest.raises(ConfigError, match="spaces"):
        secrets.use_for_session("sk-ant two")


def test_the_no_key_message_names_the_environment_variable_and_the_keyring():
    from kdstudio.core.errors import TeacherError
    from kdstudio.core.teachers.claude.client import client_kwargs

    with pytest.raises(TeacherError) as info:
        client_kwargs(None, None, 0, 5.0)
    message = str(info.value)
    assert message.startswith("no Anthropic API key: set the ANTHROPIC_API_KEY environment variable")
    assert "OS keyring (service kdstudio)" in message and "settings" not in message
