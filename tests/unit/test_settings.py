"""Settings as an integrator writes them: the URL forms people paste, a secret admin key of at
least 32 characters, a log level from a closed set; a bad value names its setting and never
shows what was given."""

import pytest
from pydantic import ValidationError

from escrow_core.settings import ADMIN_KEY_MIN_LENGTH, Settings

# Passed explicitly, so the tests' own environment cannot answer for them.
URL = "sqlite+aiosqlite:///./var/escrow.db"


@pytest.mark.parametrize(
    ("given", "read_as"),
    [
        ("postgres://app:s3cret@db:5432/escrow", "postgresql+asyncpg://app:s3cret@db:5432/escrow"),
        ("postgresql://app:s3cret@db/escrow", "postgresql+asyncpg://app:s3cret@db/escrow"),
        ("postgresql+asyncpg://app@db/escrow", "postgresql+asyncpg://app@db/escrow"),
        ("postgres://app:p%40ss@db/escrow?ssl=require", "postgresql+asyncpg://app:p%40ss@db/escrow?ssl=require"),
        ("sqlite:///./var/escrow.db", "sqlite+aiosqlite:///./var/escrow.db"),
        ("sqlite:////app/var/escrow.db", "sqlite+aiosqlite:////app/var/escrow.db"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
    ],
)  # fmt: skip
def test_a_database_url_is_read_as_its_async_drivers(given: str, read_as: str) -> None:
    assert Settings(database_url=given).database_url == read_as


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("mysql://root:hunter2hunter2@db/escrow", "unsupported database 'mysql'"),
        ("postgresql+psycopg://app:hunter2hunter2@db/escrow", "unsupported database"),
        ("hunter2hunter2", "not a database URL"),
    ],
)
def test_a_bad_database_url_is_named_without_its_password(given: str, said: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(database_url=given)

    [problem] = raised.value.errors()
    assert problem["loc"] == ("database_url",)
    assert said in problem["msg"]
    assert "hunter2" not in str(raised.value)


def test_the_admin_key_is_a_secret_never_shown() -> None:
    key = "k" * ADMIN_KEY_MIN_LENGTH

    settings = Settings(database_url=URL, admin_key=key)

    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == key
    assert key not in repr(settings)
    assert key not in str(settings)
    assert key not in settings.model_dump_json()


@pytest.mark.parametrize("key", ["k", "esk_almost_long_enough_0123456789"[2:]])
def test_a_short_admin_key_is_refused_without_being_shown(key: str) -> None:
    assert len(key) < ADMIN_KEY_MIN_LENGTH

    with pytest.raises(ValidationError) as raised:
        Settings(database_url=URL, admin_key=key)

    [problem] = raised.value.errors()
    assert problem["loc"] == ("admin_key",)
    assert f"at least {ADMIN_KEY_MIN_LENGTH} characters" in problem["msg"]
    assert "almost_long" not in str(raised.value)


@pytest.mark.parametrize(
    ("given", "level"), [("debug", "DEBUG"), ("Warning", "WARNING"), ("CRITICAL", "CRITICAL")]
)
def test_the_log_level_is_read_in_any_case(given: str, level: str) -> None:
    assert Settings(database_url=URL, log_level=given).log_level == level


@pytest.mark.parametrize("given", ["verbose", "trace", "", "10"])
def test_a_log_level_outside_the_closed_set_is_refused(given: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(database_url=URL, log_level=given)

    [problem] = raised.value.errors()
    assert problem["loc"] == ("log_level",)
    assert "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'" in problem["msg"]
