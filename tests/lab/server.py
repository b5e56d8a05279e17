"""The lab: moto's server behind a front door that journals, injects faults and adds what moto lacks.

Control endpoints (JSON), for tests and benchmarks:
  GET    /_lab/health                  {"ready": true}
  GET    /_lab/journal?since=N         {"entries": [...]} every request after sequence N
  DELETE /_lab/journal                 forget the journal
  GET    /_lab/faults                  the fault configuration and counts
  POST   /_lab/faults                  replace it (see tests/lab/faults.py)
  POST   /_lab/reset                   {"scenario": NAME} reset every backend and load NAME
  GET    /_lab/scenario                what the loaded scenario created (ids by name)
  POST   /_lab/clock                   {"advance": SECONDS} move the lab's clock forward
  GET    /_lab/iam, POST /_lab/iam     {"enforce": true}: answer only what callers' IAM policies allow;
                                       {"scp": {ACCOUNT: [documents]}}: service control policies
  GET    /_lab/flows?eni=ID            the established flows EC2 keeps (tests/lab/conntrack.py)
  POST   /_lab/flows                   {"eni", "account", "region", "protocol", "direction", "remote", "port",
                                       "path"} opens a flow; {"touch": [ids]} marks traffic on flows
  DELETE /_lab/flows                   forget every flow
  GET    /_lab/guardduty?account=A&region=R   the GuardDuty findings and scans the lab holds there
  GET    /_lab/securityhub?account=A&region=R the Security Hub findings (ASFF) the lab holds there
  POST   /_lab/guardduty/findings      {"account", "region", "finding": spec}: GuardDuty reports a finding
                                       now; {"recur": FINDING_ID}: its activity is seen again (updatedAt)
"""

import io
import json
from email.utils import formatdate
import threading
import time
import traceback

from moto.iam.models import get_account_id_from
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from tests.lab import fixes, protocol, sts_roles, sts_sessions
from tests.lab.conntrack import FlowTable
from tests.lab.faults import Faults
from tests.lab.guardduty import GuardDutyLab
from tests.lab.iam_enforcement import IamEnforcement
from tests.lab.securityhub import SecurityHubLab
from tests.lab.journal import Journal


class LabClock:
    """Wall time plus an offset tests can advance (the 1-hour scan rule, `updated since`)."""

    def __init__(self):
        self.offset = 0.0

    def now(self):
        return time.time() + self.offset

    def advance(self, seconds):
        self.offset += float(seconds)


class Lab:
    def __init__(self, faults=None):
        fixes.apply_all()
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.journal = Journal()
        self.faults = Faults(faults)
        self.iam = IamEnforcement()
        self.clock = LabClock()
        sts_sessions.install(self.clock)
        self.guardduty = GuardDutyLab(self.clock)
        self.securityhub = SecurityHubLab(self.guardduty)
        self.flows = FlowTable(self.clock)
        self.scenario_name = None
        self.scenario = {}
        self.endpoint = None
        self._reset_lock = threading.Lock()

    # -- WSGI ---------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_lab/"):
            try:
                return self._control(environ, start_response)
            except Exception:  # the test that asked should see why, not a bare 500
                body = json.dumps({"error": traceback.format_exc()}).encode()
                return _respond(start_response, 500, [("Content-Type", "application/json")], body)
        started = time.time()
        req = protocol.read_request(environ)
        req.account = get_account_id_from(req.access_key) if req.access_key else ""
        delay = self.faults.latency()
        if delay:
            time.sleep(delay)  # AWS's answer time (faults.py); outside every lock, so calls overlap
        denied = self.iam.check(req)
        if denied is not None:
            status, code, message = denied
            status, headers, body = protocol.error_response(req, status, code, message)
            self.journal.record(req, status, code, started, injected="iam")
            return _respond(start_response, status, headers, body)
        missing = sts_roles.check(req) or sts_sessions.expired(req, self.clock.now())
        if missing is not None:
            status, code, message = missing
            status, headers, body = protocol.error_response(req, status, code, message)
            self.journal.record(req, status, code, started)
            return _respond(start_response, status, headers, body)
        fault = self.faults.check(req) or self._refusal(self.flows.check_request(req))
        if fault is not None:
            status, code, message, kind = fault
            status, headers, body = protocol.error_response(req, status, code, message)
            self.journal.record(req, status, code, started, injected=kind)
            return _respond(start_response, status, headers, body)
        if self.guardduty.handles(req):
            status, headers, body, code = self.guardduty.handle(req)
            self.journal.record(req, status, code, started)
            return _respond(start_response, status, headers, body)
        if self.securityhub.handles(req):
            status, headers, body, code = self.securityhub.handle(req)
            self.journal.record(req, status, code, started)
            return _respond(start_response, status, headers, body)
        captured = {}

        def capture(status_line, headers, exc_info=None):
            captured["status"] = int(status_line.split()[0])
            return start_response(status_line, headers, exc_info)

        chunks = list(self.moto(environ, capture))
        status = captured.get("status", 500)
        code = _error_code(b"".join(chunks)) if status >= 400 else None
        self.flows.after(req, status)
        self.journal.record(req, status, code, started)
        return chunks

    @staticmethod
    def _refusal(refused):
        """(status, code, message, injected kind) of a refusal AWS itself makes, or None."""
        return None if refused is None else (*refused, None)

    # -- control ------------------------------------------------------------------------------
    def _control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ["PATH_INFO"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        data = json.loads(raw or b"{}")
        query = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
        if path == "/_lab/health":
            out = {"ready": True, "scenario": self.scenario_name}
        elif path == "/_lab/journal" and method == "GET":
            out = {"entries": self.journal.entries(int(query.get("since", 0))), "seq": self.journal.seq()}
        elif path == "/_lab/journal" and method == "DELETE":
            self.journal.clear()
            out = {"cleared": True}
        elif path == "/_lab/faults" and method == "POST":
            self.faults.configure(data)
            out = self.faults.describe()
        elif path == "/_lab/faults":
            out = self.faults.describe()
        elif path == "/_lab/reset" and method == "POST":
            self.reset(data.get("scenario"), data.get("options") or {})
            out = {"scenario": self.scenario_name, "resources": self.scenario}
        elif path == "/_lab/scenario":
            out = {"scenario": self.scenario_name, "resources": self.scenario}
        elif path == "/_lab/iam" and method == "POST":
            out = self.iam.configure(data)
        elif path == "/_lab/iam":
            out = self.iam.describe()
        elif path == "/_lab/clock" and method == "POST":
            self.clock.advance(data.get("advance", 0))
            out = {"now": self.clock.now()}
        elif path == "/_lab/guardduty/findings" and method == "POST":
            # GuardDuty detects something now: {"account", "region", "finding": spec} or {"recur": id}
            if data.get("recur"):
                out = self.guardduty.recur(data["recur"])
            else:
                out = self.guardduty.detect(data["account"], data["region"], data["finding"])
        elif path == "/_lab/flows" and method == "POST" and "touch" in data:
            self.flows.touch(data["touch"])
            out = {"flows": self.flows.live()}
        elif path == "/_lab/flows" and method == "POST":
            try:
                out = self.flows.open(data)
            except (KeyError, ValueError) as exc:
                return _respond(start_response, 400, [("Content-Type", "application/json")],
                                json.dumps({"error": str(exc)}).encode())
        elif path == "/_lab/flows" and method == "DELETE":
            self.flows.reset()
            out = {"cleared": True}
        elif path == "/_lab/flows":
            out = {"flows": self.flows.live(query.get("eni"), query.get("closed") == "true")}
        elif path == "/_lab/guardduty":
            out = self.guardduty.snapshot(query.get("account", ""), query.get("region", ""))
        elif path == "/_lab/securityhub":
            out = self.securityhub.snapshot(query.get("account", ""), query.get("region", ""))
        else:
            return _respond(start_response, 404, [("Content-Type", "application/json")], b'{"error": "not found"}')
        return _respond(start_response, 200, [("Content-Type", "application/json")], json.dumps(out, default=str).encode())

    # -- state --------------------------------------------------------------------------------
    def reset(self, scenario_name=None, options=None):
        from tests.lab import scenario  # loads through the lab's own HTTP endpoint

        with self._reset_lock:
            saved = self.faults.describe()
            self.faults.configure({})  # a scenario loads without faults
            moto_api_backend.reset()
            self.guardduty.reset()
            self.securityhub.reset()
            self.iam.configure({"scp": {}})  # SCPs belong to the scenario's organization
            self.flows.reset()
            self.clock.offset = 0.0
            self.scenario = {}
            self.scenario_name = scenario_name
            if scenario_name:
                self.scenario = scenario.load(self, scenario_name, options or {})
            self.journal.clear()
            saved.pop("counts", None)
            self.faults.configure(saved)


def _respond(start_response, status, headers, body):
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
              500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    start_response(f"{status} {reason}", list(headers) + [("Content-Length", str(len(body)))])
    return [body]


def _error_code(body):
    text = body.decode("utf-8", "replace")
    for start, end in (("<Code>", "</Code>"),):
        if start in text:
            return text.split(start, 1)[1].split(end, 1)[0]
    try:
        data = json.loads(text)
        return data.get("__type") or data.get("code") or data.get("Code")
    except ValueError:
        return None


class QuietRequestHandler(MotoRequestHandler):
    """The journal is the lab's log; werkzeug's per-request line would drown the test output.

    Keep-alive, as AWS: its endpoints keep an HTTP/1.1 connection open between requests (persistent by default,
    RFC 9112 section 9.3), and botocore (botocore.httpsession.URLLib3Session, urllib3's pool of Config
    max_pool_connections) sends a client's next request on it. Werkzeug answers every request with `Connection: close`, because
    Python's http.server cannot drain a body the application left unread before the next request line; every call
    to the lab then cost a TCP connection and a server thread, the lab's CPU per call doubling for the side that
    makes more calls (docs/benchmarks.md). Here a request's body (its Content-Length, or none) is read whole first, and
    the application reads that copy: nothing can be left on the connection, so it stays open. A request without
    a Content-Length (chunked) is answered as werkzeug does, then the connection closes."""

    # An answer's headers and body are two writes: with Nagle's algorithm on, the body waits for the client's
    # (delayed, 40 ms) ACK of the headers once the connection stays open: 48 ms a call, one after the other.
    disable_nagle_algorithm = True

    def log_request(self, code="-", size="-"):
        pass

    def run_wsgi(self):
        length = (self.headers.get("Content-Length") or "0").strip()  # no body at all (a GET): 0
        self.keep_alive = length.isdigit() and "Transfer-Encoding" not in self.headers and not self.close_connection
        if not self.keep_alive:
            return super().run_wsgi()
        connection = self.rfile
        self.rfile = io.BytesIO(connection.read(int(length)))  # the whole body, read from the connection now
        try:
            return super().run_wsgi()
        finally:
            self.rfile = connection  # the next request on this connection is read from it

    def send_header(self, keyword, value):
        if keyword.lower() == "connection" and value.lower() == "close" and getattr(self, "keep_alive", False):
            return  # werkzeug's forced close (run_wsgi); an error path that must close sets close_connection itself
        super().send_header(keyword, value)

    def date_time_string(self, timestamp=None):
        # Every AWS answer carries its Date (HTTP semantics, RFC 9110 section 6.6.1); the lab's is its own clock,
        # which its answers (malware scan times, the one-hour rescan rule) are in.
        clock = getattr(getattr(self.server, "app", None), "clock", None)
        return formatdate(clock.now() if clock is not None else (timestamp or time.time()), usegmt=True)


def serve(port, scenario_name=None, faults=None, host="127.0.0.1", ready=None):
    """Run the lab in the foreground until interrupted."""
    lab = Lab(faults)
    server = make_server(host, port, lab, threaded=True, request_handler=QuietRequestHandler)
    lab.endpoint = f"http://{host}:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    lab.reset(scenario_name)
    if ready:
        ready(lab)
    print(f"LAB READY {lab.endpoint}", flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
    return lab
