"""Secrets and file modes: private files, redaction before storing, ``ctxbudget scrub``."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from ctxbudget import Item, Kind, Role, Tracker
from ctxbudget.claude_code.statusline import render_statusline
from ctxbudget.cli.app import main
from ctxbudget.redact import REDACT_ENV, Redactor, is_secret_name, redact_data, redact_text
from ctxbudget.store import open_store

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")

# (text holding a secret, the secret, the placeholder's kind)
SHAPES = [
    (
        "my key is sk-proj-Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY here",
        "Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY",
        "api key",
    ),
    (
        "use sk-ant-api03-Zq8Wv6Ut4Sr2Qp0On8Ml6Kj4Ih2Gf0Ed please",
        "Zq8Wv6Ut4Sr2Qp0On8Ml6Kj4Ih2Gf0Ed",
        "api key",
    ),
    ("aws id AKIAZ7Q4R2W9X5V3T8K1 in the log", "AKIAZ7Q4R2W9X5V3T8K1", "aws access key"),
    (
        "token ghp_R4nd0mT0k3nV4lu3Xy9Zw8Vu7Ts6Rq5Po4Nm3 ok",
        "R4nd0mT0k3nV4lu3Xy9Zw8Vu7Ts6Rq5Po4Nm3",
        "github token",
    ),
    (
        "pat github_pat_11AB2CD3EF4gh5ij6kl7mn8op9qr0st",
        "11AB2CD3EF4gh5ij6kl7mn8op9qr0st",
        "github token",
    ),
    ("slack xoxb-2918374650-Qw3Er5Ty7Ui9 done", "2918374650", "slack token"),
    (
        "curl -H 'Authorization: Bearer qx7Tz2Lm9Rb4Vn8Kc3Wd' url",
        "qx7Tz2Lm9Rb4Vn8Kc3Wd",
        "bearer token",
    ),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJxdzEyMyJ9.Mq4Zt7Vb2Nx9Kc5Rj8Lw3Pd6 end",
        "Mq4Zt7Vb2Nx9Kc5Rj8Lw3Pd6",
        "jwt",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAQmFzZTY0U2VjcmV0\n"
        "-----END OPENSSH PRIVATE KEY-----\nthen more",
        "b3BlbnNzaC1rZXktdjEAAAAQmFzZTY0U2VjcmV0",
        "private key",
    ),
    ("OPENAI_API_KEY=Xk29VmQp44Lz tool output", "Xk29VmQp44Lz", "api key"),
    ("export DB_PASSWORD=Tr0ub4dor3Horse", "Tr0ub4dor3Horse", "password"),
    ('{"password": "Pl4inTextPw77", "user": "bob"}', "Pl4inTextPw77", "password"),
    ("connect(host, password='Sesame9Open')", "Sesame9Open", "password"),
    ("postgres://app:Hunter2Pg9@db.internal/app", "Hunter2Pg9", "password"),
    ("GET /v1/x?access_token=Qq77Ww88Ee99&page=2", "Qq77Ww88Ee99", "token"),
]

NOT_SECRETS = [
    "password_field = form.password",
    "token_count=5",
    "MAX_TOKENS=4096",
    "api_key = os.environ['OPENAI_API_KEY']",
    "OPENAI_API_KEY=$OPENAI_API_KEY",
    "self.api_key = api_key  # the key comes from the caller",
    'config = {"max_tokens": 4096, "token": "hello", "cache_key": "abc", "pad_token": "<pad>"}',
    "if password == expected: return True",
    "def check(password: str, token: str | None = None) -> bool:",
    "The bearer of this letter knows the password policy: keys rotate monthly.",
    "Set OPENAI_API_KEY: your key from the dashboard.",
    "task-force-alpha met the disk-quota-manager-team on 2024-05-01",
    "tokens = tokenizer.encode(text); key = sorted(d)[0]",
    "SORT_KEY=name PRIMARY_KEY=id",
    "pass  # nothing to do",
    "https://example.com/path?page=2&sort=asc",
    "ssh git@github.com:owner/repo.git",
]


def _modes(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _store_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


@pytest.fixture(autouse=True)
def _redaction_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDACT_ENV, raising=False)


# -- rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "secret", "kind"), SHAPES)
def test_each_shape_is_redacted(text: str, secret: str, kind: str) -> None:
    redacted = redact_text(text)
    assert secret not in redacted
    assert f"[redacted: {kind}]" in redacted
    assert redact_text(redacted) == redacted  # twice is once


def test_a_value_ends_before_an_escaped_newline() -> None:
    # a docker-compose file inside a JSON-escaped tool result: the line break is kept
    text = r"environment:\n  - ADMIN_PASSWORD=admin123\n  depends_on:\n    - db"
    assert redact_text(text) == (
        r"environment:\n  - ADMIN_PASSWORD=[redacted: password]\n  depends_on:\n    - db"
    )


@pytest.mark.parametrize("line", NOT_SECRETS)
def test_ordinary_lines_are_left_alone(line: str) -> None:
    assert redact_text(line) is line


def test_the_package_own_source_holds_no_secret() -> None:
    """A corpus of ordinary code and prose: ctxbudget's own modules (minus the rules)."""
    package = Path(__file__).resolve().parents[1] / "src" / "ctxbudget"
    redactor = Redactor()
    for path in sorted(package.rglob("*.py")):
        if path.name != "redact.py":
            text = path.read_text(encoding="utf-8")
            assert redactor.text(text) is text, (path, dict(redactor.counts))


def test_names() -> None:
    assert is_secret_name("OPENAI_API_KEY", env_style=True) == "api key"
    assert is_secret_name("PGPASSWORD", env_style=True) == "password"
    assert is_secret_name("clientSecret") == "secret"
    assert is_secret_name("token_count") is None
    assert is_secret_name("token") is None
    assert is_secret_name("TOKEN", env_style=True) == "token"


def test_json_data_keys_and_strings() -> None:
    data = {"apiKey": "Zx81Yw72", "n": 3, "nested": [{"text": "DB_PASSWORD=Qw12Er34"}]}
    out = redact_data(data)
    assert out == {
        "apiKey": "[redacted: api key]",
        "n": 3,
        "nested": [{"text": "DB_PASSWORD=[redacted: password]"}],
    }
    clean = {"a": ["b", {"c": 1}]}
    assert redact_data(clean) is clean


# -- the store ------------------------------------------------------------------------------


def _session_with(tracker: Tracker, text: str) -> tuple[str, int]:
    session = tracker.session(model="gpt-4o")
    item = session.add(Item(role=Role.TOOL, kind=Kind.TOOL_RESULT, text=text, tool="Bash"))
    assert item.tokens is not None
    return session.id, item.tokens


@pytest.mark.parametrize(("text", "secret", "kind"), SHAPES)
def test_stored_items_and_index_hold_no_secret(
    tmp_path: Path, text: str, secret: str, kind: str
) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    with Tracker(store=url) as tracker:
        sid, tokens = _session_with(tracker, text)
        live = tracker.open(sid)
        (stored,) = live.items
        assert f"[redacted: {kind}]" in stored.text and secret not in stored.text
        assert stored.tokens == tokens  # counted before redacting
        assert tracker.store.search_archive(sid, secret) == []
        assert tracker.store.search_archive(sid, "redacted")  # the placeholder is indexed
    assert secret.encode() not in _store_bytes(db)


def test_live_items_keep_their_text(tmp_path: Path) -> None:
    """The store writes a redacted copy: what the agent holds (and sends) is unchanged."""
    text, secret, _ = SHAPES[0]
    with Tracker(store=f"sqlite:///{tmp_path / 's.db'}") as tracker:
        session = tracker.session()
        item = session.add(text)
        assert item.text == text and secret in session.items[0].text
        session.add("next message")  # the stored prefix still matches: no new version
        assert session.version == 1


def test_raw_blocks_and_events_are_redacted(tmp_path: Path) -> None:
    secret = "Zq8Wv6Ut4Sr2Qp0On8Ml6Kj4Ih2Gf0Ed"
    with Tracker(store=f"sqlite:///{tmp_path / 's.db'}") as tracker:
        session = tracker.session()
        session.add(
            Item(
                role=Role.USER,
                kind=Kind.USER_TEXT,
                text=f"key sk-ant-{secret}",
                raw={"type": "text", "text": f"key sk-ant-{secret}"},
            )
        )
        # as the PreCompact hook records Claude Code's compaction
        tracker.store.append_event(
            session.id,
            "external_compaction",
            {"trigger": "manual", "custom_instructions": f"keep OPENAI_API_KEY=sk-{secret}"},
        )
        (stored,) = tracker.store.load_items(session.id)
        assert secret not in json.dumps(stored.raw)
        (event,) = tracker.store.events(session.id, types=["external_compaction"])
        assert event.data["custom_instructions"] == "keep OPENAI_API_KEY=[redacted: api key]"


def test_restore_recall_and_new_versions_give_the_redacted_text(tmp_path: Path) -> None:
    secret = "Tr0ub4dor3Horse"
    with Tracker(store=f"sqlite:///{tmp_path / 's.db'}") as tracker:
        session = tracker.session()
        session.add(f"deploy with DB_PASSWORD={secret} on the staging database")
        session.add("a later message about lunch")
        session.replace_context(session.items[1:], reason="test")  # archive the first
        recalled = session.recall("staging database deploy")
        assert recalled and all(secret not in i.text for i in recalled)
        assert any("[redacted: password]" in i.text for i in recalled)
        reopened = tracker.open(session.id)
        reopened.restore(1)
        assert "[redacted: password]" in reopened.items[0].text
        assert all(secret not in i.text for i in reopened.items)


def test_redaction_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, secret, _ = SHAPES[10]
    monkeypatch.setenv(REDACT_ENV, "off")
    with Tracker(store=f"sqlite:///{tmp_path / 'a.db'}") as tracker:
        sid, _ = _session_with(tracker, text)
        assert tracker.store.load_items(sid)[0].text == text
    monkeypatch.delenv(REDACT_ENV)
    store = open_store("memory://")
    store.redact_secrets = False  # the store option
    with Tracker(store=store) as tracker:
        sid, _ = _session_with(tracker, text)
        assert secret in tracker.store.load_items(sid)[0].text


# -- scrub ----------------------------------------------------------------------------------


def _stored_bytes(url: str) -> bytes:
    """Every byte the store keeps: SQLite's files; PostgreSQL's rows, as the server
    gives them (its files are the server's)."""
    if url.startswith("sqlite:///"):
        return _store_bytes(Path(url.removeprefix("sqlite:///")))
    import psycopg

    server, _, schema = url.rpartition("schema=")
    with psycopg.connect(server.rstrip("?&")) as conn:
        tables = ("items", "events")
        rows = [conn.execute(f"SELECT * FROM {schema}.{table}").fetchall() for table in tables]
    return repr(rows).encode()


def _events_refuse_updates(url: str) -> bool:
    """Whether the database itself refuses an update of the ledger."""
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            try:
                conn.execute("UPDATE events SET type = 'changed'")
            except sqlite3.DatabaseError as exc:
                return "append-only" in str(exc)
            return False
    import psycopg

    server, _, schema = url.rpartition("schema=")
    with psycopg.connect(server.rstrip("?&")) as conn:
        try:
            conn.execute(f"UPDATE {schema}.events SET type = 'changed'")
        except psycopg.Error as exc:
            return "append-only" in str(exc)
        return False


def test_scrub_an_old_store(
    shared_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On SQLite and PostgreSQL: items (text, raw, the index) and events redacted,
    token counts kept, the ledger append-only again afterwards."""
    url = shared_url
    monkeypatch.setenv(REDACT_ENV, "off")  # as a store written before redaction existed
    with Tracker(store=url) as tracker:
        session = tracker.session()
        for text, _, _ in SHAPES:
            session.add(Item(role=Role.TOOL, kind=Kind.TOOL_RESULT, text=text, raw={"t": text}))
        session.add("an ordinary message")
        tracker.store.append_event(
            session.id, "external_compaction", {"custom_instructions": SHAPES[0][0]}
        )
        sid = session.id
        tokens = [i.tokens for i in tracker.store.load_items(sid)]
        assert tracker.store.search_archive(sid, "Tr0ub4dor3Horse")
    monkeypatch.delenv(REDACT_ENV)

    assert main(["scrub", "--store", url, "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and dry["items_redacted"] == len(SHAPES) and dry["events_redacted"] == 1
    assert sum(dry["secrets"].values()) >= len(SHAPES) * 2 + 1  # text and raw of each
    assert b"Tr0ub4dor3Horse" in _stored_bytes(url)  # a dry run changes nothing

    assert main(["scrub", "--store", url, "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in done.items() if k != "dry_run"} == {
        k: v for k, v in dry.items() if k != "dry_run"
    }
    with Tracker(store=url) as tracker:
        items = tracker.store.load_items(sid)
        assert [i.tokens for i in items] == tokens
        for (_, secret, kind), item in zip(SHAPES, items, strict=False):
            assert secret not in item.text and f"[redacted: {kind}]" in item.text
            assert secret not in json.dumps(item.raw)
            assert tracker.store.search_archive(sid, secret) == []
        assert items[-1].text == "an ordinary message"
        (event,) = tracker.store.events(sid, types=["external_compaction"])
        assert "[redacted: api key]" in event.data["custom_instructions"]
    data = _stored_bytes(url)
    for _, secret, _ in SHAPES:
        assert secret.encode() not in data
    assert _events_refuse_updates(url)  # the ledger is append-only again

    assert main(["scrub", "--store", url]) == 0  # again: nothing left
    assert "no secret found" in capsys.readouterr().out


def test_scrub_a_missing_store_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["scrub", "--store", url]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


# -- file modes ------------------------------------------------------------------------------


@posix_only
def test_new_store_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "umask", os.umask)  # restored below
    old = os.umask(0o022)
    try:
        db = tmp_path / "data" / "ctxbudget" / "ctxbudget.db"
        with Tracker(store=f"sqlite:///{db}") as tracker:
            _session_with(tracker, "hello")
            assert _modes(db.parent) == 0o700 and _modes(db.parent.parent) == 0o700
            for path in db.parent.iterdir():
                assert _modes(path) == 0o600, path
            assert Path(f"{db}-wal").exists()
    finally:
        os.umask(old)


@posix_only
def test_existing_store_is_tightened(tmp_path: Path) -> None:
    own = tmp_path / "ctxbudget"
    db = own / "ctxbudget.db"
    with Tracker(store=f"sqlite:///{db}") as tracker:
        _session_with(tracker, "hello")
    users = tmp_path / "project"
    users.mkdir(mode=0o755)
    other = users / "x.db"
    with Tracker(store=f"sqlite:///{other}") as tracker:
        _session_with(tracker, "hello")
    for path in (own, users):
        path.chmod(0o755)
    for path in (db, other):
        path.chmod(0o644)
    open_store(f"sqlite:///{db}").close()
    open_store(f"sqlite:///{other}").close()
    assert _modes(db) == 0o600 and _modes(other) == 0o600
    assert _modes(own) == 0o700  # ctxbudget's own directory
    assert _modes(users) == 0o755  # a directory the user chose keeps its mode


@posix_only
def test_statusline_cache_is_private(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stdin = json.dumps(
        {
            "session_id": "s1",
            "model": {"id": "claude-sonnet-4-5"},
            "context_window": {"context_window_size": 200_000},
        }
    )
    render_statusline(stdin, cache_dir=str(cache))
    files = list(cache.rglob("*.json"))
    assert files, "the status line wrote no cache"
    for path in files:
        assert _modes(path) == 0o600
        assert _modes(path.parent) == 0o700


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("POSIX modes")
