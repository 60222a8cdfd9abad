"""The pure parts of batches: the JSON codec, sealed secrets, the mapping CSV,
the state records' merge rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pstkit.batch import records, secretbox, state
from pstkit.batch.csvfiles import export_jobs, read_users
from pstkit.batch.jobs import BatchResult, Job, JobSecrets
from pstkit.batch.mapping_csv import read_mapping
from pstkit.errors import SecretError, UsageError
from pstkit.location import parse_location
from pstkit.model import DuplicatePolicy
from pstkit.options import ConnectOptions, FetchFilter, MappingOptions, SecretSpec

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(
    user=text, include=st.lists(text, max_size=3),
    since=st.none() | st.datetimes(timezones=st.just(UTC)),
    size=st.none() | st.integers(0, 2**40), extra=st.dictionaries(text, text, max_size=3),
    root=st.lists(text.filter(bool), max_size=3), dup=st.sampled_from(list(DuplicatePolicy)),
)  # fmt: skip
def test_a_job_survives_json(user: str, include: list[str], since: datetime | None,
                             size: int | None, extra: dict[str, str], root: list[str],
                             dup: DuplicatePolicy) -> None:  # fmt: skip
    job = Job("b1", "k@example.com", "/srv/s", source=parse_location("imaps://h.example:993"),
              target=parse_location("maildir:/tmp/x"),
              source_options=ConnectOptions(password=SecretSpec(file=Path("/etc/pw")),
                                            ca_file=Path("/ca.pem"), extra=extra),
              filt=FetchFilter(include=tuple(include), since=since, max_size=size),
              mapping=MappingOptions(target_root=tuple(root), duplicates=dup))  # fmt: skip
    assert records.decode(Job, json.loads(json.dumps(records.encode(job)))) == job


def test_a_secret_value_never_leaves_with_the_record() -> None:
    opts = ConnectOptions(password=SecretSpec(value="hunter2-secret", prompt=False))
    encoded = records.encode(opts)
    assert "hunter2-secret" not in repr(encoded)
    assert records.decode(ConnectOptions, encoded).password.value is None


def test_sealed_secrets_open_only_with_their_key_and_place(tmp_path: Path) -> None:
    secretbox.new_key_file(tmp_path / "k")
    key = secretbox.read_key(tmp_path / "k")
    sealed = secretbox.seal(key, "Pässwort", "b1\0alice\0source")
    assert "Pässwort" not in sealed and sealed.startswith("aesgcm1:")
    assert secretbox.unseal(key, sealed, "b1\0alice\0source") == "Pässwort"
    with pytest.raises(SecretError):  # moved to another row
        secretbox.unseal(key, sealed, "b1\0bob\0source")
    secretbox.new_key_file(tmp_path / "other")
    with pytest.raises(SecretError):
        secretbox.unseal(secretbox.read_key(tmp_path / "other"), sealed, "b1\0alice\0source")
    with pytest.raises(SecretError):
        secretbox.unseal(key, "plain-password", "b1\0alice\0source")
    with pytest.raises(UsageError):  # a key is never overwritten
        secretbox.new_key_file(tmp_path / "k")


def test_mapping_csv_rows_become_jobs(tmp_path: Path) -> None:
    (tmp_path / "stores" / "a").mkdir(parents=True)
    (tmp_path / "stores" / "a" / "pstkit-store.json").write_text("{}")
    csv_file = tmp_path / "mapping.csv"
    csv_file.write_text(
        "emailaddress,SOURCE,Target,TargetPassword,Root,Duplicates,Store,UserName,Password\n"
        "a@x,stores/a,imaps://a@mail.x,tp,Imported/2024,allow,,,\n"
        ",imaps://old.x,maildir:out/b,,,,staging/b,b-user,sp\n"
    )
    jobs, secrets = read_mapping(csv_file, "b1", ConnectOptions(), ConnectOptions(),
                                 MappingOptions())  # fmt: skip
    a, b = jobs
    assert a.kind == "import" and a.store == str(tmp_path / "stores" / "a")
    assert a.mapping.target_root == ("Imported", "2024")
    assert a.mapping.duplicates is DuplicatePolicy.ALLOW
    assert b.kind == "export+import" and b.source is not None and b.source.user == "b-user"
    assert b.store == str(tmp_path / "staging" / "b") and b.key == "imaps://b-user@old.x:993"
    assert b.target == parse_location(f"maildir:{tmp_path / 'out' / 'b'}")
    assert secrets["a@x"].target == "tp" and secrets[b.key].source == "sp"


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ("a@x,,imaps://h", "Source and Target are required"),
        ("a@x,imaps://old,imaps://h", "give a Store"),
        ("a@x,store:/s,store:/t", "is a pstkit store, not an import target"),
        ("a@x,store:/s,imaps://h,,,,maybe", "Duplicates must be skip, allow or replace"),
    ],
)
def test_mapping_csv_errors_name_the_line(tmp_path: Path, row: str, error: str) -> None:
    csv_file = tmp_path / "m.csv"
    csv_file.write_text(f"EmailAddress,Source,Target,Store,UserName,Password,Duplicates\n{row}\n")
    with pytest.raises(UsageError) as e:
        read_mapping(csv_file, "b", ConnectOptions(), ConnectOptions(), MappingOptions())
    assert f"{csv_file}:2: " in e.value.message and error in e.value.message


def test_a_mailbox_twice_in_one_batch_is_refused(tmp_path: Path) -> None:
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("EmailAddress,UserName,Password\nA@x,a,1\na@x,a,2\n")
    boxes = read_users(csv_file, parse_location("imaps://h"))
    with pytest.raises(UsageError, match="appears twice"):
        export_jobs(boxes, tmp_path, "b", ConnectOptions(), FetchFilter())


def test_merge_keeps_the_newest_attempt_and_final_states() -> None:
    r = state.merge({"key": "k", "state": "queued", "attempt": 0}, {"state": "running",
                    "pid": 7, "host": "h1", "attempt": 1})  # fmt: skip
    assert r["state"] == "running" and r["runs"] == 1
    again = state.merge(r, {"state": "running", "pid": 8, "host": "h2", "attempt": 1})
    assert again["runs"] == 2 and again["host"] == "h2"  # a job delivered again
    done = state.merge(again, state.finished(BatchResult("k", "/s", 2, 10), 1))
    assert done["state"] == "done" and done["messages"] == 10
    # a late progress or start message of the same attempt does not reopen it ...
    assert state.merge(done, {"progress": 3, "attempt": 1})["state"] == "done"
    assert state.merge(done, {"state": "waiting", "attempt": 1})["state"] == "done"
    # ... nor does anything of an older attempt; a newer attempt does
    assert state.merge(done, {"state": "failed", "attempt": 0})["state"] == "done"
    assert state.merge(done, {"state": "retrying", "attempt": 2})["state"] == "retrying"


def test_totals_and_lines() -> None:
    recs = [
        {"key": "a", "state": "done", "messages": 5, "folders": 2, "worker": "w1@h", "pid": 1},
        {"key": "b", "state": "running", "progress": 3, "total": 9, "host": "h2", "pid": 2},
        {"key": "c", "state": "failed", "attempt": 3, "error": "cannot connect to x: refused"},
        {"key": "d", "state": "queued"},
    ]
    t = state.totals(recs)
    assert (t["mailboxes"], t["done"], t["running"], t["failed"], t["queued"]) == (4, 1, 1, 1, 1)
    assert t["messages"] == 8 and not state.is_over(recs)
    assert state.describe(recs[1]) == "running on h2 pid 2: 3/9 messages"
    assert state.describe(recs[2]) == "failed after 3 attempt(s): cannot connect to x: refused"
    assert state.describe(recs[0]).startswith("done on w1@h pid 1: 5 messages in 2 folders")


def test_csv_passwords_without_a_key_are_refused_for_the_broker() -> None:
    celery_engine = pytest.importorskip("pstkit.batch.celery_engine")
    job = Job("b1", "a@x", "/s", source=parse_location("imaps://h"))
    with pytest.raises(UsageError, match="--secret-key-file"):
        celery_engine.seal_secrets(job, JobSecrets(source="pw"), None)
    assert celery_engine.seal_secrets(job, JobSecrets(), None) == {}  # nothing to seal
    key = bytes(range(32))
    secret = "a-long-secret-password"
    sealed = celery_engine.seal_secrets(job, JobSecrets(source=secret), key)
    assert secret not in str(sealed) and set(sealed) == {"source"}
    assert celery_engine.unseal_secrets(job, sealed, key) == JobSecrets(source=secret)
    with pytest.raises(UsageError, match="start the worker with --secret-key-file"):
        celery_engine.unseal_secrets(job, sealed, None)


def test_batch_eta_counts_running_mailboxes_by_their_messages() -> None:
    from pstkit.cli.batchreport import duration_text, eta_seconds  # noqa: PLC0415

    records = [{"state": "done"}, {"state": "running", "progress": 50, "total": 100},
               {"state": "running", "progress": 3}, {"state": "queued"}]  # fmt: skip
    # 1.5 of 4 mailboxes' work in 60 s: 2.5 more at that pace
    assert eta_seconds(records, 60.0) == 100.0
    assert eta_seconds([{"state": "queued"}], 60.0) is None
    assert duration_text(100.0) == "1m40s" and duration_text(7300) == "2h01m"
