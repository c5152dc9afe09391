"""The configuration file: where it is found, what it may say, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from schemactl.config_file import find_config_file, load_config_file
from schemactl.errors import UsageError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_found_from_a_subdirectory(tmp_path):
    config = write(tmp_path / "schemactl.toml", 'dir = "db"\n')
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_config_file(tmp_path / "a" / "b") == config


def test_none_found(tmp_path):
    (tmp_path / "a").mkdir()
    assert find_config_file(tmp_path / "a") is None


def test_a_pyproject_without_the_table_is_passed_over(tmp_path):
    outer = write(tmp_path / "schemactl.toml", "")
    write(tmp_path / "pkg" / "pyproject.toml", "[tool.ruff]\nline-length = 88\n")
    assert find_config_file(tmp_path / "pkg") == outer


def test_a_pyproject_with_the_table_is_found(tmp_path):
    pyproject = write(
        tmp_path / "pyproject.toml", '[tool.schemactl]\ntable = "app.history"\n'
    )
    assert find_config_file(tmp_path) == pyproject
    assert load_config_file(pyproject, None).values == {"table": "app.history"}


def test_a_dotted_key_in_pyproject_counts_too(tmp_path):
    pyproject = write(tmp_path / "pyproject.toml", 'tool.schemactl.dir = "db"\n')
    assert find_config_file(tmp_path) == pyproject
    assert load_config_file(pyproject, None).values == {"directory": tmp_path / "db"}


def test_a_pyproject_naming_schemactl_elsewhere_is_passed_over(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\ndependencies = ["schemactl"]\n')
    assert find_config_file(tmp_path) is None


def test_in_one_directory_schemactl_toml_wins(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.schemactl]\ntable = "a.b"\n')
    config = write(tmp_path / "schemactl.toml", "")
    assert find_config_file(tmp_path) == config


def test_the_nearest_directory_wins(tmp_path):
    write(tmp_path / "schemactl.toml", "")
    inner = write(tmp_path / "svc" / "schemactl.toml", "")
    assert find_config_file(tmp_path / "svc") == inner


def test_dir_is_relative_to_the_file_and_values_are_typed(tmp_path):
    config = write(
        tmp_path / "schemactl.toml",
        'dir = "db/migrations"\nlock-timeout = 30\ntable-lock-retries = 5\n'
        "statement-timeout = 0.5\n",
    )
    loaded = load_config_file(config, None)
    assert loaded.values == {
        "directory": tmp_path / "db" / "migrations",
        "lock_timeout": 30.0,
        "table_lock_retries": 5,
        "statement_timeout": 0.5,
    }
    assert set(loaded.origins.values()) == {"schemactl.toml"}


def test_an_environment_overrides_the_top_level(tmp_path):
    config = write(
        tmp_path / "schemactl.toml",
        'table = "a.top"\nlock-timeout = 30\n'
        'database-url = "postgresql://dev@localhost/app"\n'
        '[environments.staging]\ntable = "a.staging"\nservice = "staging"\n',
    )
    loaded = load_config_file(config, "staging")
    assert loaded.values["table"] == "a.staging"
    assert loaded.values["lock_timeout"] == 30.0  # kept from the top level
    # The environment's way of naming the database replaces the top level's.
    assert loaded.database is not None
    assert conninfo_to_dict(loaded.database.url({})) == {"service": "staging"}
    assert loaded.origins["table"] == "schemactl.toml [environments.staging]"
    assert loaded.origins["database_url"] == (
        "schemactl.toml [environments.staging] service"
    )


def test_a_service_name_is_quoted_for_libpq(tmp_path):
    config = write(tmp_path / "schemactl.toml", 'service = "it\'s a \\\\ name"\n')
    database = load_config_file(config, None).database
    assert database is not None
    assert conninfo_to_dict(database.url({})) == {"service": "it's a \\ name"}


def test_database_url_env_is_read_only_when_used(tmp_path):
    config = write(tmp_path / "schemactl.toml", 'database-url-env = "STAGING_URL"\n')
    database = load_config_file(config, None).database  # no variable needed yet
    assert database is not None
    assert database.describe() == "schemactl.toml database-url-env STAGING_URL"
    url = database.url({"STAGING_URL": "postgresql://app:pw@db/app"})
    assert url == "postgresql://app:pw@db/app"
    with pytest.raises(UsageError, match="environment variable STAGING_URL is not"):
        database.url({})


def test_pyproject_origins_name_the_real_tables(tmp_path):
    pyproject = write(
        tmp_path / "pyproject.toml",
        '[tool.schemactl]\ntable = "a.b"\n[tool.schemactl.environments.ci]\n'
        "lock-timeout = 3\n",
    )
    loaded = load_config_file(pyproject, "ci")
    assert loaded.origins == {
        "table": "pyproject.toml [tool.schemactl]",
        "lock_timeout": "pyproject.toml [tool.schemactl.environments.ci]",
    }


def test_a_named_pyproject_without_the_table_is_an_error(tmp_path):
    pyproject = write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    with pytest.raises(UsageError, match=r"no \[tool\.schemactl\] table"):
        load_config_file(pyproject, None)


def test_an_unreadable_pyproject_is_not_passed_over(tmp_path, monkeypatch):
    write(tmp_path / "schemactl.toml", "")  # the parent project's file
    inner = write(tmp_path / "inner" / "pyproject.toml", "[tool.schemactl]\n")
    read_bytes = Path.read_bytes

    def denied(path: Path) -> bytes:
        if path == inner:  # root reads any file: a permission error, simulated
            raise PermissionError(13, "Permission denied")
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(UsageError, match=r"inner/pyproject\.toml: cannot read"):
        find_config_file(tmp_path / "inner")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('tabel = "x"\n', "unknown key 'tabel' in schemactl.toml"),
        ("[environments.ci]\nlock_timeout = 3\n", "unknown key 'lock_timeout' in "),
        ('lock-timeout = "30"\n', "lock-timeout in schemactl.toml must be a number"),
        ("lock-timeout = -1\n", "must be from 0 to 2147483 seconds"),
        ("connect-timeout = true\n", "must be a number of seconds"),
        ("connect-timeout = nan\n", "must be from 0 to 2147483 seconds"),
        ("statement-timeout = inf\n", "must be from 0 to 2147483 seconds"),
        ("connect-timeout = 1" + "0" * 400 + "\n", "must be from 0 to 2147483"),
        ("table-lock-retries = 1.5\n", "must be a whole number"),
        ("table-lock-retries = 2000\n", "must be from 0 to 100"),
        ('table = "a.b.c"\n', "table in schemactl.toml: invalid --table 'a.b.c'"),
        ('[environments.prod]\ntable = "pg_catalog.t"\n', "is reserved for the system"),
        ("dir = 3\n", "dir in schemactl.toml must be a non-empty string"),
        ('table = ""\n', "table in schemactl.toml must be a non-empty string"),
        ('service = "a"\ndatabase-url = "b"\n', "sets both 'database-url' and"),
        ("environments = 3\n", "must be a table of environments"),
        (
            "[environments]\nci = 3\n",
            "schemactl.toml [environments.ci] must be a table",
        ),
        ("lock-timeout = \n", "not valid TOML"),
        ("groups = 3\n", "[groups] must be a table of groups"),
        ("[groups.a]\n", "[groups.a] needs either 'targets' or 'query'"),
        ('[groups.a]\ntargets = ["x"]\nquery = "q"\n', "needs either 'targets'"),
        ("[groups.a]\ntargets = []\n", "must be a non-empty list of URLs"),
        ('[groups.a]\ntargets = ["x", ""]\n', "must be a non-empty list of URLs"),
        ('[groups.a]\nquery = " "\n', "query in [groups.a] must be a non-empty"),
        ('[groups.a]\nquery = "q"\njobs = 0\n', "from 1 to 256"),
        ('[groups.a]\nquery = "q"\njobs = true\n', "from 1 to 256"),
        ('[groups.a]\nquery = "q"\nwhere = 1\n', "unknown key 'where' in [groups.a]"),
        ('[environments.ci.groups.a]\nquery = "q"\n', "unknown key 'groups'"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, text, message):
    config = write(tmp_path / "schemactl.toml", text)
    with pytest.raises(UsageError) as raised:
        load_config_file(config, None)
    assert str(config) in raised.value.message
    assert message in raised.value.message


def test_an_unknown_environment_lists_the_known_ones(tmp_path):
    config = write(
        tmp_path / "schemactl.toml", "[environments.prod]\n[environments.ci]\n"
    )
    with pytest.raises(
        UsageError, match=r"no environment 'stage' \(environments: ci, prod\)"
    ):
        load_config_file(config, "stage")


def test_groups_name_targets_or_a_query_and_are_looked_up_by_name(tmp_path):
    config = write(
        tmp_path / "pyproject.toml",
        "[tool.schemactl.groups.shards]\n"
        'targets = ["shard1", "postgresql://app@db2/app"]\n'
        "[tool.schemactl.groups.tenants]\n"
        'query = "SELECT datname FROM pg_database"\njobs = 8\n',
    )
    file = load_config_file(config, None)
    shards = file.group("shards")
    assert shards.targets == ("shard1", "postgresql://app@db2/app")
    assert (shards.query, shards.jobs) == (None, None)
    tenants = file.group("tenants")
    assert (tenants.targets, tenants.jobs) == ((), 8)
    assert tenants.query == "SELECT datname FROM pg_database"
    with pytest.raises(UsageError, match=r"no group 'x' \(groups: shards, tenants\)"):
        file.group("x")
