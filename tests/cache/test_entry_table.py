"""The local cache's entries are rows of one SQLite file: fewer files, same guarantees.

The file can come from a restored CI cache like the rest of the directory, so a file that is
not a database, or a database that is not ours, is moved aside and never used; a row is
bounded before it is read; entries written as files by earlier versions still count.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from attest_cli.cache.backends.base import MalformedObject
from attest_cli.cache.backends.entry_table import TABLE_FILE
from attest_cli.cache.backends.local import LocalBackend
from tests.support import attest, cache_entries, write_pipeline

PIPELINE = """
    name: rows
    steps:
      one: {run: "echo 1 > one.txt && echo ran >> runs.log", outputs: [one.txt]}
      two: {run: "echo 2 > two.txt && echo ran >> runs.log", outputs: [two.txt]}
    """


def run(project: Path) -> dict[str, str]:
    proc = attest("run", "--report", "r.json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((project / "r.json").read_text())
    return {s["name"]: s["status"] for s in report["steps"]}


def ran(project: Path) -> int:
    return len((project / "runs.log").read_text().splitlines())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_pipeline(tmp_path, PIPELINE)
    return tmp_path


def test_entries_are_rows_of_one_file_and_hit_on_the_next_run(project: Path) -> None:
    assert run(project) == {"one": "success", "two": "success"}
    cache = project / ".attest" / "cache"
    rows = cache_entries(cache)
    assert sorted(json.loads(v)["step"] for v in rows.values()) == ["one", "two"]
    assert not (cache / "entries").exists()  # no file per entry
    assert not (cache / (TABLE_FILE + "-wal")).exists()  # folded in when the run ended
    (project / "one.txt").unlink()
    assert run(project) == {"one": "cached", "two": "cached"}
    assert (project / "one.txt").read_text() == "1\n" and ran(project) == 2


def test_a_table_file_that_is_not_a_database_is_moved_aside(project: Path) -> None:
    cache = project / ".attest" / "cache"
    cache.mkdir(parents=True)
    (cache / TABLE_FILE).write_bytes(b"not a database at all\n" * 100)
    proc = attest("run", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    assert (cache / (TABLE_FILE + ".broken")).read_bytes().startswith(b"not a database")
    assert run(project) == {"one": "cached", "two": "cached"}  # a new table from then on
    assert len(cache_entries(cache)) == 2


def test_a_database_that_is_not_ours_is_never_used(project: Path) -> None:
    """A planted file with our table and a trigger: opened with trusted_schema off, its
    schema compared before any statement touches the table, so the trigger never fires."""
    cache = project / ".attest" / "cache"
    cache.mkdir(parents=True)
    conn = sqlite3.connect(cache / TABLE_FILE)
    conn.executescript("""
        CREATE TABLE objects (key TEXT PRIMARY KEY, data BLOB NOT NULL, used REAL NOT NULL);
        CREATE TABLE fired (n INTEGER);
        CREATE TRIGGER t AFTER INSERT ON objects BEGIN INSERT INTO fired VALUES (1); END;
        """)
    conn.close()
    proc = attest("run", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "not attest's entry table" in proc.stderr
    planted = sqlite3.connect(cache / (TABLE_FILE + ".broken"))
    assert planted.execute("SELECT count(*) FROM fired").fetchone() == (0,)
    planted.close()
    assert len(cache_entries(cache)) == 2  # stored in a new table of our own


def test_a_row_over_the_entry_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path / "cache", max_entry_size=1000)
    assert local.put("entries/big", b"x" * 999)
    local.close()
    conn = sqlite3.connect(tmp_path / "cache" / TABLE_FILE)
    conn.execute("UPDATE objects SET data = zeroblob(5000) WHERE key = 'entries/big'")
    conn.commit()
    conn.close()
    with pytest.raises(MalformedObject, match="entries/big"):
        LocalBackend(tmp_path / "cache", max_entry_size=1000).get("entries/big")


def test_entries_written_as_files_by_earlier_versions_still_count(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path / "cache")
    (tmp_path / "cache" / "entries").mkdir(parents=True)
    (tmp_path / "cache" / "entries" / "old").write_bytes(b"{old}")
    assert local.put("entries/new", b"{new}")
    assert local.get("entries/old") == b"{old}" and local.get("entries/new") == b"{new}"
    assert local.contains("entries/old") and local.contains("entries/new")
    assert local.names("entries", limit=10) == {"old", "new"}
    assert not local.put("entries/old", b"{other}")  # already there, as a file
    assert sorted(o.key for o in local.objects("entries/")) == ["entries/new", "entries/old"]
    local.delete("entries/old")
    local.delete("entries/new")
    assert local.names("entries", limit=10) == set() and local.get("entries/old") is None


def test_threads_and_processes_share_the_table(tmp_path: Path) -> None:
    """Threads share their process's connection, processes share the file; the same key
    stored twice is one row (each process reports it stored: its batch is written with
    INSERT OR IGNORE, which does not say which rows were there)."""
    local = LocalBackend(tmp_path / "cache")
    other = LocalBackend(tmp_path / "cache")  # another process's view of the directory
    results: list[bool] = []

    def store(backend: LocalBackend, first: int) -> None:
        for i in range(first, first + 50):
            results.append(bool(backend.put(f"entries/k{i}", b"v%d" % i)))

    threads = [threading.Thread(target=store, args=(b, f))
               for b, f in ((local, 0), (other, 25), (local, 50))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 150  # keys 25-49 were offered twice
    local.close()
    other.close()
    assert len(cache_entries(tmp_path / "cache")) == 100


def test_a_read_only_use_creates_no_table(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path / "cache")
    assert local.get("entries/none") is None and not local.contains("entries/none")
    assert local.names("entries", limit=5) == set() and list(local.objects()) == []
    local.close()
    assert not (tmp_path / "cache").exists()


def test_the_table_honours_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        local = LocalBackend(tmp_path / "cache")
        local.put("entries/k", b"v")
        assert (tmp_path / "cache" / TABLE_FILE).stat().st_mode & 0o777 == 0o640
        local.close()
    finally:
        os.umask(old)


def test_a_cache_on_a_network_file_system_keeps_a_file_per_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """WAL needs every process on one host; runners on several hosts may share an NFS
    directory, where a temp file and a rename per entry are safe and a table is not."""
    from attest_cli.cache.backends import entry_table

    monkeypatch.setattr(entry_table, "file_system_of", lambda path: "nfs4")
    local = LocalBackend(tmp_path / "cache")
    assert local.put("entries/k", b"{}") and local.get("entries/k") == b"{}"
    assert (tmp_path / "cache" / "entries" / "k").read_bytes() == b"{}"
    assert not (tmp_path / "cache" / TABLE_FILE).exists()


def test_the_file_system_is_the_longest_mount_holding_the_path(tmp_path: Path) -> None:
    from attest_cli.cache.backends.entry_table import file_system_of

    shared = tmp_path / "shared dir"
    (shared / "cache").mkdir(parents=True)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
        f"40 22 0:50 / {str(shared).replace(' ', chr(92) + '040')} rw - nfs4 srv:/x rw\n"
        f"41 22 0:51 / {tmp_path}/shared rw - cifs //srv/y rw\n")  # a prefix, not a parent
    assert file_system_of(str(shared / "cache" / "not-yet"), str(mountinfo)) == "nfs4"
    assert file_system_of(str(tmp_path), str(mountinfo)) == "ext4"
    assert file_system_of(str(tmp_path), str(tmp_path / "none")) is None


def test_a_write_that_waits_too_long_stores_a_file_instead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holding the write lock delays a store by at most BUSY_SECONDS; the
    entry is then a file, which every read also looks at."""
    from attest_cli.cache.backends import entry_table

    monkeypatch.setattr(entry_table, "BUSY_SECONDS", 0.1)
    local = LocalBackend(tmp_path / "cache")
    assert local.put("entries/first", b"1")
    local.flush()
    holder = sqlite3.connect(tmp_path / "cache" / TABLE_FILE, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process, mid-write
    try:
        assert local.put("entries/second", b"2")
        local.flush()  # its batch waits BUSY_SECONDS, then is a file
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (tmp_path / "cache" / "entries" / "second").read_bytes() == b"2"
    assert local.get("entries/second") == b"2" and local.get("entries/first") == b"1"
    local.close()


def test_a_bad_table_in_use_by_another_process_is_not_moved(tmp_path: Path) -> None:
    import fcntl

    from attest_cli.cache.backends.entry_table import LOCK_FILE

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / TABLE_FILE).write_bytes(b"garbage" * 1000)
    fd = os.open(cache / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)  # another process has the table open
    try:
        local = LocalBackend(cache)
        assert local.put("entries/k", b"v") and local.get("entries/k") == b"v"
        local.close()
        assert (cache / "entries" / "k").exists()  # a file: the table was left alone
        assert (cache / TABLE_FILE).read_bytes().startswith(b"garbage")
    finally:
        os.close(fd)
    local = LocalBackend(cache)  # nobody else has it open now: moved aside, a new table
    assert local.put("entries/k2", b"v2")
    local.close()
    assert (cache / (TABLE_FILE + ".broken")).exists() and "k2" in cache_entries(cache)


@pytest.mark.parametrize("column", ["data", "used"])
def test_an_oversized_value_of_any_type_is_never_loaded(tmp_path: Path, column: str) -> None:
    """SQLite's length limit is the entry bound: a TEXT of NULs (whose length() stops at
    the first NUL) or a blob planted in another column is refused, not read."""
    local = LocalBackend(tmp_path / "cache", max_entry_size=1000)
    assert local.put("entries/big", b"x")
    local.close()
    conn = sqlite3.connect(tmp_path / "cache" / TABLE_FILE)
    conn.execute(f"UPDATE objects SET {column} = CAST(zeroblob(50000) AS TEXT)")
    conn.commit()
    conn.close()
    local = LocalBackend(tmp_path / "cache", max_entry_size=1000)
    with pytest.raises(MalformedObject, match="entries/big"):
        local.get("entries/big")
    assert list(local.objects()) == []  # left out of listings; clear removes it
    local.close()


def test_planted_keys_never_reach_the_backend_and_clear_removes_them(tmp_path: Path) -> None:
    from attest_cli.cache.maintenance import clear, prune

    local = LocalBackend(tmp_path / "cache")
    assert local.put("entries/good", b"{}")
    local.close()
    conn = sqlite3.connect(tmp_path / "cache" / TABLE_FILE)
    conn.execute("INSERT INTO objects VALUES ('entries/../../x', x'00', 1.0)")
    conn.commit()
    conn.close()
    local = LocalBackend(tmp_path / "cache")
    assert [o.key for o in local.objects()] == ["entries/good"]
    assert local.names("entries", limit=10) == {"good"}
    prune(local, max_size=None, retention_days=1, now=10**10)  # raised on the planted key
    assert clear(local) >= 0
    local.close()
    conn = sqlite3.connect(tmp_path / "cache" / TABLE_FILE)
    assert conn.execute("SELECT count(*) FROM objects").fetchone() == (0,)
    conn.close()


@pytest.mark.parametrize("name", [TABLE_FILE, TABLE_FILE + "-wal"])
def test_a_link_at_the_table_s_paths_is_moved_aside_never_followed(tmp_path: Path,
                                                                   name: str) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    outside = tmp_path / "outside.db"
    (cache / name).symlink_to(outside)  # dangling: SQLite would create it
    local = LocalBackend(cache)
    assert local.put("entries/k", b"v") and local.get("entries/k") == b"v"
    local.close()
    assert not outside.exists() and not (cache / name).is_symlink()
    assert cache_entries(cache) == {"k": b"v"}


def test_an_oversized_log_is_not_replayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    from attest_cli.cache.backends import entry_table

    monkeypatch.setattr(entry_table, "MAX_WAL_BYTES", 1000)
    cache = tmp_path / "cache"
    local = LocalBackend(cache)
    assert local.put("entries/k", b"v")
    local.close()
    with open(cache / (TABLE_FILE + "-wal"), "wb") as fh:
        fh.truncate(5000)  # planted next to the table
    local = LocalBackend(cache)
    assert local.get("entries/k") is None  # the table and its log moved aside: a miss
    local.close()
    assert (cache / (TABLE_FILE + ".broken-wal")).stat().st_size == 5000


def test_reading_an_empty_table_file_creates_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / TABLE_FILE).write_bytes(b"")  # a crash between creating it and its schema
    local = LocalBackend(cache)
    assert local.get("entries/k") is None and not local.contains("entries/k")
    local.close()
    assert (cache / TABLE_FILE).read_bytes() == b""
    assert local.put("entries/k", b"v")  # a store makes the table
    local.close()
    assert cache_entries(cache) == {"k": b"v"}


def test_a_dry_run_reads_the_table_immutable(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path / "cache")
    assert local.put("entries/k", b"v")
    local.close()
    before = sorted(p.name for p in (tmp_path / "cache").iterdir())
    reader = LocalBackend(tmp_path / "cache")
    reader.table.read_only = True
    assert reader.peek("entries/k") == b"v" and reader.get("entries/k") == b"v"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == before  # no -wal, -shm
    reader.close()


def test_a_lock_held_forever_by_another_process_does_not_hang_a_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    from attest_cli.cache.backends import entry_table

    monkeypatch.setattr(entry_table, "BUSY_SECONDS", 0.1)
    cache = tmp_path / "cache"
    cache.mkdir()
    fd = os.open(cache / entry_table.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        local = LocalBackend(cache)
        assert local.put("entries/k", b"v") and local.get("entries/k") == b"v"
        local.close()
        assert (cache / "entries" / "k").exists() and not (cache / TABLE_FILE).exists()
    finally:
        os.close(fd)


def test_entries_stored_before_a_kill_9_are_hits_for_the_next_run(tmp_path: Path) -> None:
    """A killed run never closes its connection: its rows are only in the table's log. The
    next run folds the log in and finds them; the step that was running is not stored."""
    import signal
    import subprocess
    import sys
    import time

    from tests.support import REPO, wait_for

    write_pipeline(tmp_path, """
        name: killed
        steps:
          quick: {run: "echo q > q.txt && echo ran >> quick.log", outputs: [q.txt]}
          slow:
            run: "echo started > slow.started && sleep 30 && echo s > s.txt"
            needs: [quick]
            outputs: [s.txt]
        """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env.update(PYTHONPATH=str(REPO), XDG_CONFIG_HOME=str(tmp_path / ".xdg"))
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "-q"], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        assert wait_for(lambda: (tmp_path / "slow.started").exists(), timeout=60)
        cache = tmp_path / ".attest" / "cache"
        # quick's row: written (within BATCH_SECONDS of its store), in the log only
        assert wait_for(lambda: len(cache_entries(cache)) == 1, timeout=10)
        assert (cache / (TABLE_FILE + "-wal")).exists()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    time.sleep(0.1)
    (tmp_path / "q.txt").unlink()
    write_pipeline(tmp_path, """
        name: killed
        steps:
          quick: {run: "echo q > q.txt && echo ran >> quick.log", outputs: [q.txt]}
          slow: {run: "echo s > s.txt", needs: [quick], outputs: [s.txt]}
        """)
    assert run(tmp_path) == {"quick": "cached", "slow": "success"}
    assert (tmp_path / "q.txt").read_text() == "q\n"
    assert (tmp_path / "quick.log").read_text() == "ran\n"  # ran once, before the kill
    assert sorted(json.loads(v)["step"] for v in cache_entries(cache).values()) == \
        ["quick", "slow"]



def test_stored_rows_wait_in_memory_and_are_written_soon_in_one_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process reads a row at once; another sees it once its batch is written: by the
    writer thread when no store follows, by flush() or close() at once."""
    from attest_cli.cache.backends import entry_table
    from tests.support import wait_for

    cache = tmp_path / "cache"
    local = LocalBackend(cache)
    assert local.put("entries/a", b"1") and local.put("entries/b", b"2")
    assert local.put("entries/a", b"1") is False  # waiting already: one row
    assert wait_for(lambda: len(cache_entries(cache)) == 2, timeout=10)  # no store came
    monkeypatch.setattr(entry_table, "BATCH_SECONDS", 3600.0)
    assert local.put("entries/c", b"3") and local.get("entries/c") == b"3"  # its own view
    assert local.contains("entries/c") and "c" in (local.names("entries", 10) or ())
    assert sorted(cache_entries(cache)) == ["a", "b"]  # not written yet
    local.flush()
    assert sorted(cache_entries(cache)) == ["a", "b", "c"]
    assert local.put("entries/d", b"4")
    local.delete("entries/d")  # taken out of the batch: never written
    assert local.put("entries/e", b"5")
    local.close()
    assert sorted(cache_entries(cache)) == ["a", "b", "c", "e"]


def test_a_process_storing_at_the_same_time_hardly_waits(tmp_path: Path) -> None:
    """One process storing without pause holds the write lock only while it writes a
    batch; another storing meanwhile writes its rows too, never files."""
    import time

    cache = tmp_path / "cache"
    busy, other = LocalBackend(cache), LocalBackend(cache)  # two processes' views
    stop = threading.Event()

    def store_without_pause() -> None:
        i = 0
        while not stop.is_set():
            busy.put(f"entries/busy{i}", b"x" * 500)
            i += 1
            time.sleep(0.0005)

    thread = threading.Thread(target=store_without_pause)
    thread.start()
    try:
        time.sleep(0.1)
        stored = []
        for i in range(20):
            stored.append(other.put(f"entries/other{i}", b"y"))
            other.flush()  # each written at once: 20 batches against the busy one's
    finally:
        stop.set()
        thread.join()
    assert stored == [True] * 20
    assert not (cache / "entries").exists()  # no entry fell back to a file
    busy.close()
    other.close()
    assert sum(key.startswith("other") for key in cache_entries(cache)) == 20


def test_a_batch_begun_as_the_writer_gives_up_waiting_is_still_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer thread's idle wait can time out while another thread holds the table
    (here a delete waiting for another process's lock) and then begins a batch: the
    writer must write it, not end and leave it to some later store."""
    from attest_cli.cache.backends import entry_table
    from tests.support import wait_for

    monkeypatch.setattr(entry_table, "LINGER_SECONDS", 0.3)
    cache = tmp_path / "cache"
    local = LocalBackend(cache)
    assert local.put("entries/a", b"1")
    assert wait_for(lambda: len(cache_entries(cache)) == 1, timeout=10)
    holder = sqlite3.connect(cache / TABLE_FILE, isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process, mid-write, for 0.6 s
    release = threading.Timer(0.6, lambda: holder.execute("COMMIT"))
    release.start()
    deleting = threading.Thread(target=local.delete, args=("entries/none",))
    deleting.start()  # holds the table while it waits for the lock, past the linger
    try:
        assert local.put("entries/b", b"2")
    finally:
        deleting.join()
        release.join()
        holder.close()
    assert wait_for(lambda: len(cache_entries(cache)) == 2, timeout=5)
    local.close()


def test_rows_a_batch_cannot_write_are_stored_as_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row reported stored is never dropped: a batch that cannot be written (another
    process holds the lock past BUSY_SECONDS) becomes files, which reads also see."""
    from attest_cli.cache.backends import entry_table

    monkeypatch.setattr(entry_table, "BUSY_SECONDS", 0.1)
    monkeypatch.setattr(entry_table, "BATCH_SECONDS", 3600.0)
    cache = tmp_path / "cache"
    local = LocalBackend(cache)
    assert local.put("entries/first", b"1") and local.put("entries/second", b"2")
    holder = sqlite3.connect(cache / TABLE_FILE, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        local.flush()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (cache / "entries" / "first").read_bytes() == b"1"
    assert (cache / "entries" / "second").read_bytes() == b"2"
    assert cache_entries(cache) == {}
    assert local.get("entries/first") == b"1" and local.get("entries/second") == b"2"
    local.close()
    assert LocalBackend(cache).get("entries/second") == b"2"  # another process too


def test_a_row_near_the_length_limit_is_a_file_and_its_batch_stays_rows(
        tmp_path: Path) -> None:
    """SQLite's ceiling is on the whole row (key, value, time): a value just under it would
    fail its batch's insert, and send every row of the batch to files."""
    from attest_cli.cache.backends.entry_table import EntryTable

    cache = tmp_path / "cache"
    local = LocalBackend(cache, max_entry_size=10_000)
    limit = local.table._max_length
    assert local.put("entries/good", b"g")
    assert local.put("entries/big", b"b" * (limit - 10))  # under the limit, with its key over
    local.close()
    assert sorted(cache_entries(cache)) == ["good"]
    assert (cache / "entries" / "big").stat().st_size == limit - 10
    assert isinstance(local.table, EntryTable)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_exception_while_a_batch_is_written_still_stores_its_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever stops a batch's write (here MemoryError, on the writer thread), its rows
    become files, the write lock is not kept, and later batches are still written (by a
    new writer thread: the one that died no longer counts)."""
    from attest_cli.cache.backends.entry_table import EntryTable
    from tests.support import wait_for

    cache = tmp_path / "cache"
    local = LocalBackend(cache)
    assert local.put("entries/first", b"1")
    local.flush()
    real = EntryTable._connect
    fail = [True]

    class Failing:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __getattr__(self, name: str) -> object:
            return getattr(self.conn, name)

        def executemany(self, *args: object) -> None:
            fail[0] = False
            raise MemoryError

    def connect(self: EntryTable, create: bool) -> object:
        conn = real(self, create)
        return Failing(conn) if conn is not None and fail[0] else conn

    monkeypatch.setattr(EntryTable, "_connect", connect)
    assert local.put("entries/second", b"2")
    assert wait_for(lambda: (cache / "entries" / "second").exists(), timeout=10)
    other = sqlite3.connect(cache / TABLE_FILE, isolation_level=None, timeout=1)
    other.execute("BEGIN IMMEDIATE")  # the lock was not kept
    other.execute("ROLLBACK")
    other.close()
    assert local.put("entries/third", b"3")
    assert wait_for(lambda: "third" in cache_entries(cache), timeout=10)
    assert local.get("entries/second") == b"2"
    local.close()


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    """A child forked while the table is in use never touches the parent's connection
    (SQLite forbids it) nor writes the parent's batch; its own rows are written."""
    import sys

    cache = tmp_path / "cache"
    local = LocalBackend(cache)
    assert local.put("entries/parent", b"p")
    local.flush()
    assert local.put("entries/waiting", b"w")  # the parent's batch, not yet written
    parent_conn = local.table._conn
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's exit code is the assertion
        code = 1
        try:
            ok = local.table._conn is None and local.get("entries/parent") == b"p"
            ok = ok and local.put("entries/child", b"c") is True
            local.close()
            code = 0 if ok else 3
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert local.table._conn is parent_conn
    local.close()
    assert sorted(cache_entries(cache)) == ["child", "parent", "waiting"]
