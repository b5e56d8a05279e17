"""The per-instance operation lock, directory backend: real files and real flocks in a temporary store."""

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import instance_lock as il

ACCOUNT, REGION = "123456789012", "us-east-1"
ISOLATE = {"operation": "isolate", "pid": 4242, "host": "ctl-1", "started": "2026-12-05T19:00:00Z"}
RELEASE = {"operation": "release", "pid": 4343, "host": "ctl-2", "started": "2026-12-05T19:00:01Z"}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(seconds, 0.01)


def locks(root):
    return il.OperationLocks(il.DirectoryLocks(str(root)), ACCOUNT, REGION)


def test_store_location_is_the_option_then_the_environment_then_home():
    assert il.store_location("/srv/store", {il.ENV_STORE: "/env"}) == "/srv/store"
    assert il.store_location(None, {il.ENV_STORE: "/env"}) == "/env"
    assert il.store_location(None, {}) == "~/.cloudsec-guardduty"
    assert il.s3_location("s3://bucket/a/b/") == ("bucket", "a/b")
    assert il.s3_location("s3://bucket") == ("bucket", "")
    assert il.s3_location("/srv/store") is None
    with pytest.raises(il.LockError, match="names no bucket"):
        il.s3_location("s3:///prefix")


def test_lock_names_cannot_leave_the_locks_directory():
    assert il.lock_name(ACCOUNT, REGION, "i-0123456789abcdef0") == f"locks/{ACCOUNT}/{REGION}/i-0123456789abcdef0.lock"
    for bad in ("../x", "..", "", "a/b"):
        with pytest.raises(il.LockError):
            il.lock_name(ACCOUNT, REGION, bad)


def test_second_run_is_refused_by_name_and_told_who_holds_the_lock(tmp_path):
    first, second = locks(tmp_path), locks(tmp_path)
    assert first.take(["i-1", "i-2"], ISOLATE, 0) == (["i-1", "i-2"], {})
    taken, refused = second.take(["i-2", "i-3"], RELEASE, 0)
    assert taken == ["i-3"]
    assert refused == {"i-2": "i-2: another operation (isolate, pid 4242 on ctl-1, started 2026-12-05T19:00:00Z) "
                              "holds the lock on this instance; nothing was changed"}
    first.release()
    assert second.take(["i-2"], RELEASE, 0) == (["i-2"], {})
    second.release()


def test_try_each_takes_the_free_locks_at_once_and_names_each_holder(tmp_path):
    first, second = locks(tmp_path), locks(tmp_path)
    first.take(["i-2"], ISOLATE, 0)
    started = time.monotonic()
    assert second.try_each(["i-3", "i-2", "i-1"], RELEASE) == (["i-3", "i-1"], {"i-2": ISOLATE})
    assert time.monotonic() - started < 0.2  # never waits for a held lock
    assert first.take(["i-1"], ISOLATE, 0)[0] == []  # the free ones are held now, and given back with the run's
    second.release()
    assert first.take(["i-1", "i-3"], ISOLATE, 0) == (["i-1", "i-3"], {})
    first.release()


def test_store_directories_are_0700_and_lock_files_0600(tmp_path):
    root = tmp_path / "store"
    held = locks(root)
    held.take(["i-1"], ISOLATE, 0)
    for path in (root, root / "locks", root / "locks" / ACCOUNT, root / "locks" / ACCOUNT / REGION):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    lock_file = root / "locks" / ACCOUNT / REGION / "i-1.lock"
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
    held.release()
    assert lock_file.exists() and lock_file.read_text() == ""  # kept: deleting a flocked file splits the lock


def test_waits_until_the_timeout_then_refuses(tmp_path):
    holder, waiter, clock = locks(tmp_path), locks(tmp_path), FakeClock()
    holder.take(["i-1"], ISOLATE, 0)
    taken, refused = waiter.take(["i-1"], RELEASE, 5, clock=clock, sleep=clock.sleep)
    assert taken == [] and "after waiting 5 s" in refused["i-1"] and clock.now >= 5
    holder.release()


def test_a_waiting_run_gets_the_lock_once_it_is_given_back(tmp_path):
    holder, waiter, clock = locks(tmp_path), locks(tmp_path), FakeClock()
    holder.take(["i-1"], ISOLATE, 0)

    def sleep(seconds):
        clock.sleep(seconds)
        if clock.now > 1:
            holder.release()

    assert waiter.take(["i-1"], RELEASE, 30, clock=clock, sleep=sleep) == (["i-1"], {})
    assert clock.now < 2
    waiter.release()


def test_the_kernel_gives_the_lock_back_when_its_process_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from ansible_collections.cloudsec.guardduty.plugins.module_utils import instance_lock as il
        locks = il.OperationLocks(il.DirectoryLocks({str(tmp_path)!r}), {ACCOUNT!r}, {REGION!r})
        print(locks.take(["i-1"], il.owner("isolated"), 0), flush=True)
        time.sleep(600)
    """)
    # the child imports the collection from where this test did (ansible-test's tree, or .build/collections)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().startswith("(['i-1'], {})")
        taken, refused = locks(tmp_path).take(["i-1"], RELEASE, 0)
        assert taken == [] and f"isolate, pid {child.pid} on " in refused["i-1"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.time() + 5
    after = locks(tmp_path)
    assert after.take(["i-1"], RELEASE, 5) == (["i-1"], {}) and time.time() < deadline
    after.release()


def test_store_that_cannot_be_created_is_an_error_not_a_silent_pass(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(il.LockError, match="cannot create"):
        locks(blocker / "store").take(["i-1"], ISOLATE, 0)
