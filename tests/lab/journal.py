"""Every request the lab answered, in order: what tests assert the sequence of calls on."""

import threading
import time


class Journal:
    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []
        self._seq = 0

    def record(self, req, status, error_code=None, started=None, injected=None):
        now = time.time()
        entry = {
            "time": now,
            "started": started if started is not None else now,
            "account": req.account,
            "region": req.region,
            "service": req.service or req.signing_name,
            "action": req.action,
            "params": req.key_parameters(),
            "status": status,
            "outcome": "ok" if status < 400 else (error_code or f"HTTP{status}"),
            "injected": injected,
            "request_id": req.request_id,
        }
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)
        return entry

    def seq(self):
        """The last sequence number given, journal cleared or not: a mark taken on an empty journal is still a place."""
        with self._lock:
            return self._seq

    def entries(self, since=0):
        with self._lock:
            return [e for e in self._entries if e["seq"] > since]

    def clear(self):
        with self._lock:
            self._entries = []
