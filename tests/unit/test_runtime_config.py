"""Runtime settings come from MODELROLLOUT_* variables and fail loudly, naming the variable."""

from __future__ import annotations

import pytest

from modelrollout.runtime.config import (
    DEFAULT_PREDICTION_LOG_QUEUE,
    DEFAULT_RETENTION_S,
    ConfigError,
    RuntimeConfig,
)


def test_defaults_when_nothing_is_set():
    config = RuntimeConfig.from_env({})
    assert config.track == "stable"
    assert config.model_name is None and config.model_version is None and config.model_tag is None
    assert config.prediction_log_queue == DEFAULT_PREDICTION_LOG_QUEUE == 10_000
    assert config.retention_s == DEFAULT_RETENTION_S == 7 * 24 * 3600 and config.figures_period_s == 15
    assert config.feedback_token is None and config.token is None and config.positive_class is None
    assert config.inject_latency_ms == 0 and config.inject_error_rate == 0


def test_reads_every_variable():
    config = RuntimeConfig.from_env(
        {
            "MODELROLLOUT_MODEL_NAME": "iris-classifier",
            "MODELROLLOUT_MODEL_VERSION": "v2",
            "MODELROLLOUT_TRACK": "canary",
            "MODELROLLOUT_MODEL_TAG": "iris-classifier:v2",
            "MODELROLLOUT_PREDICTION_LOG_QUEUE": "500",
            "MODELROLLOUT_GROUND_TRUTH_RETENTION_SECONDS": "3600",
            "MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS": "2.5",
            "MODELROLLOUT_POSITIVE_CLASS": "fraud",
            "MODELROLLOUT_FEEDBACK_TOKEN": "s3cret-token-0123456789",
            "MODELROLLOUT_INJECT_LATENCY_MS": "250",
            "MODELROLLOUT_INJECT_ERROR_RATE": "0.25",
            "UNRELATED": "ignored",
        }
    )
    assert (config.model_name, config.model_version, config.track) == ("iris-classifier", "v2", "canary")
    assert config.model_tag == "iris-classifier:v2"
    assert (config.prediction_log_queue, config.retention_s, config.figures_period_s) == (500, 3600, 2.5)
    assert config.positive_class == "fraud" and config.token == "s3cret-token-0123456789"
    assert config.inject_latency_ms == 250.0
    assert config.inject_error_rate == 0.25


def test_empty_values_count_as_unset():
    config = RuntimeConfig.from_env({"MODELROLLOUT_TRACK": "", "MODELROLLOUT_INJECT_LATENCY_MS": "  "})
    assert config.track == "stable"
    assert config.inject_latency_ms == 0


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MODELROLLOUT_TRACK": "blue"}, "MODELROLLOUT_TRACK='blue'"),
        ({"MODELROLLOUT_INJECT_ERROR_RATE": "1.5"}, "MODELROLLOUT_INJECT_ERROR_RATE='1.5'"),
        ({"MODELROLLOUT_INJECT_ERROR_RATE": "nan"}, "MODELROLLOUT_INJECT_ERROR_RATE='nan'"),
        ({"MODELROLLOUT_INJECT_LATENCY_MS": "-1"}, "MODELROLLOUT_INJECT_LATENCY_MS='-1'"),
        ({"MODELROLLOUT_INJECT_LATENCY_MS": "slow"}, "MODELROLLOUT_INJECT_LATENCY_MS='slow'"),
        ({"MODELROLLOUT_PREDICTION_LOG_QUEUE": "0"}, "MODELROLLOUT_PREDICTION_LOG_QUEUE='0'"),
        (
            {"MODELROLLOUT_GROUND_TRUTH_RETENTION_SECONDS": "0"},
            "MODELROLLOUT_GROUND_TRUTH_RETENTION_SECONDS='0'",
        ),
        ({"MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS": "0"}, "MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS='0'"),
        ({"MODELROLLOUT_MODEL_VERSION": "v 2"}, "MODELROLLOUT_MODEL_VERSION='v 2'"),
    ],
)
def test_bad_values_raise_config_error_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        RuntimeConfig.from_env(env)


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        RuntimeConfig.from_env({"MODELROLLOUT_TRACK": "blue", "MODELROLLOUT_INJECT_ERROR_RATE": "2"})
    assert "MODELROLLOUT_TRACK" in str(info.value) and "MODELROLLOUT_INJECT_ERROR_RATE" in str(info.value)


def test_model_defaults_fill_only_what_the_environment_left_unset():
    from_env = RuntimeConfig.from_env({"MODELROLLOUT_MODEL_VERSION": "v9"})
    filled = from_env.with_model_defaults(model_name="iris-classifier", model_version="v1")
    assert (filled.model_name, filled.model_version) == ("iris-classifier", "v9")


def test_model_defaults_that_cannot_be_labels_are_rejected():
    with pytest.raises(ConfigError, match="MODELROLLOUT_MODEL_VERSION"):
        RuntimeConfig.from_env({}).with_model_defaults(model_name="iris", model_version="not a label!")


def test_config_is_frozen():
    config = RuntimeConfig.from_env({})
    with pytest.raises(ValueError):
        config.track = "canary"


def test_limits_have_safe_defaults():
    config = RuntimeConfig.from_env({})
    assert config.max_body_bytes == 1 << 20 and config.max_rows == 1000 and config.max_label_chars == 256
    assert config.max_concurrency == 100
    assert config.store_timeout_s == 2.0 and config.store_busy_timeout_s == 1.0 and config.store_threads == 4
    assert config.store_unready_after_s == 30.0
    assert (config.log_format, config.client_error_logs_per_s) == ("text", 1.0)


def test_limits_are_read_from_their_variables():
    config = RuntimeConfig.from_env(
        {
            "MODELROLLOUT_MAX_BODY_BYTES": "65536",
            "MODELROLLOUT_MAX_ROWS": "50",
            "MODELROLLOUT_MAX_CONCURRENCY": "8",
            "MODELROLLOUT_MAX_LABEL_CHARS": "32",
            "MODELROLLOUT_STORE_TIMEOUT_S": "0.5",
            "MODELROLLOUT_STORE_THREADS": "2",
            "MODELROLLOUT_STORE_UNREADY_AFTER_S": "0",
            "MODELROLLOUT_LOG_FORMAT": "json",
            "MODELROLLOUT_CLIENT_ERROR_LOGS_PER_S": "5",
        }
    )
    assert (config.max_body_bytes, config.max_rows, config.max_label_chars) == (65536, 50, 32)
    assert config.max_concurrency == 8
    assert (config.store_timeout_s, config.store_busy_timeout_s, config.store_threads) == (0.5, 0.25, 2)
    assert (config.store_unready_after_s, config.log_format, config.client_error_logs_per_s) == (
        0.0,
        "json",
        5.0,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MODELROLLOUT_MAX_BODY_BYTES": "100"}, "MODELROLLOUT_MAX_BODY_BYTES='100'"),
        ({"MODELROLLOUT_MAX_BODY_BYTES": str(1 << 30)}, "MODELROLLOUT_MAX_BODY_BYTES"),
        ({"MODELROLLOUT_MAX_ROWS": "0"}, "MODELROLLOUT_MAX_ROWS='0'"),
        (
            {"MODELROLLOUT_STORE_TIMEOUT_S": "30"},
            "MODELROLLOUT_STORE_TIMEOUT_S='30'",
        ),  # not below the request timeout
        ({"MODELROLLOUT_STORE_TIMEOUT_S": "inf"}, "MODELROLLOUT_STORE_TIMEOUT_S='inf'"),
        ({"MODELROLLOUT_STORE_THREADS": "0"}, "MODELROLLOUT_STORE_THREADS='0'"),
        ({"MODELROLLOUT_LOG_FORMAT": "xml"}, "MODELROLLOUT_LOG_FORMAT='xml'"),
        ({"MODELROLLOUT_CLIENT_ERROR_LOGS_PER_S": "0"}, "MODELROLLOUT_CLIENT_ERROR_LOGS_PER_S='0'"),
    ],
)
def test_bad_limits_are_refused_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        RuntimeConfig.from_env(env)


def test_a_short_feedback_token_is_refused_without_showing_it():
    with pytest.raises(ConfigError, match="MODELROLLOUT_FEEDBACK_TOKEN=\\(secret\\): must be 16") as info:
        RuntimeConfig.from_env({"MODELROLLOUT_FEEDBACK_TOKEN": "hunter2"})
    assert "hunter2" not in str(info.value)


def test_the_feedback_token_never_shows_in_the_config_repr():
    config = RuntimeConfig.from_env({"MODELROLLOUT_FEEDBACK_TOKEN": "never-print-this-token"})
    assert "never-print-this-token" not in repr(config) and "never-print-this-token" not in str(config)
    filled = config.with_model_defaults(model_name="iris", model_version="v1")
    assert filled.token == "never-print-this-token"
