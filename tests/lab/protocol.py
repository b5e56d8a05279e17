"""What one HTTP request to the lab is: service, region, account, operation, parameters.

The lab needs this before moto sees the request (journal, fault injection, GuardDuty routing),
so it is worked out here from the SigV4 credential scope and botocore's own service models,
the same way AWS's front end would.
"""

import io
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

import botocore.session

# signing name -> botocore service names that share it (the action disambiguates)
SIGNING_TO_SERVICES = {
    "elasticloadbalancing": ("elbv2", "elb"),
    "monitoring": ("cloudwatch",),
    "email": ("ses",),
}

# Parameters never copied into the journal: they can carry secrets or bulk.
SECRET_PARAMETERS = re.compile(r"(UserData|SecretAccessKey|SessionToken|Password|PolicyDocument$)", re.I)

_session = botocore.session.get_session()
_model_lock = threading.Lock()
_models = {}
_rest_routes = {}


def service_model(name):
    with _model_lock:
        if name not in _models:
            try:
                _models[name] = _session.get_service_model(name)
            except Exception:  # unknown to botocore: the journal still records the request
                _models[name] = None
        return _models[name]


def _rest_routes_for(service):
    """(method, compiled path regex, operation name) for a rest-json/rest-xml service."""
    with _model_lock:
        if service in _rest_routes:
            return _rest_routes[service]
    model = service_model(service)
    routes = []
    if model is not None and model.protocol in ("rest-json", "rest-xml"):
        for op_name in model.operation_names:
            http = model.operation_model(op_name).http
            uri = http["requestUri"].split("?")[0]
            literal = len(re.sub(r"\{[^}]+\}", "", uri))
            pattern = re.sub(r"\\\{[^}]+?\\\+\\\}", "(.+)", re.escape(uri))
            pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", pattern)
            routes.append((literal, http["method"], re.compile("^" + pattern + "/?$"), op_name))
    # most literal characters first, so /detector/{id}/findings/get beats /detector/{id}/findings
    routes.sort(key=lambda r: -r[0])
    routes = [(m, rx, op) for _, m, rx, op in routes]
    with _model_lock:
        _rest_discriminators[service] = {op: _discriminators(model, op) for _, _, op in routes}
        _rest_routes[service] = routes
    return routes


_rest_discriminators = {}


def _discriminators(model, op_name):
    """(query keys in the requestUri, required header names) that tell apart operations sharing a path.

    S3's PUT /{Bucket}/{Key+} is PutObject, CopyObject (x-amz-copy-source header), PutObjectTagging (?tagging)...
    """
    operation = model.operation_model(op_name)
    query = operation.http["requestUri"].partition("?")[2]
    keys = tuple(part.split("=")[0] for part in query.split("&") if part)
    headers = ()
    shape = operation.input_shape
    if shape is not None:
        headers = tuple(shape.members[m].serialization.get("name", m).lower() for m in shape.required_members
                        if shape.members[m].serialization.get("location") == "header")
    return keys, headers


def _best_route(req, matches):
    """Among operations whose method and path match, the one whose query keys and required headers the request has."""
    table = _rest_discriminators.get(req.service, {})
    fitting = []
    for op_name in matches:
        keys, headers = table.get(op_name, ((), ()))
        if all(k in req.query for k in keys) and all(h in req.headers for h in headers):
            fitting.append((-(len(keys) + len(headers)), op_name))
    return min(fitting)[1] if fitting else matches[0]


@dataclass
class LabRequest:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    access_key: str = ""
    region: str = "us-east-1"
    signing_name: str = ""
    service: str = ""
    protocol: str = ""
    action: str = ""
    params: dict = field(default_factory=dict)
    account: str = ""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def json_body(self):
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return {}

    def key_parameters(self):
        """The request's parameters as the journal keeps them: no secrets, no bulk."""
        out = {}
        for key, value in self.params.items():
            if SECRET_PARAMETERS.search(key):
                continue
            if isinstance(value, str) and len(value) > 300:
                value = value[:300] + "..."
            out[key] = value
        return out

    def mentions(self, resource):
        """True when a resource id appears in the request's parameters."""
        if not resource:
            return True
        return resource in json.dumps(self.params) or resource in self.path


def read_request(environ):
    """Build a LabRequest and put the body back so moto can read it again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    req = LabRequest(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=unquote(environ.get("PATH_INFO", "/")),
        query={k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()},
        headers=headers,
        body=body,
    )
    _identify(req)
    return req


def _identify(req):
    auth = req.headers.get("authorization", "")
    match = re.search(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
    if match:
        req.access_key, req.region, req.signing_name = match.group(1), match.group(2), match.group(3)
    target = req.headers.get("x-amz-target", "")
    if req.method == "POST" and "x-www-form-urlencoded" in req.headers.get("content-type", ""):
        form = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        req.action = form.pop("Action", "")
        form.pop("Version", None)
        req.params = form
    elif req.query.get("Action"):
        req.params = dict(req.query)
        req.action = req.params.pop("Action")
        req.params.pop("Version", None)
    elif target:
        req.action = target.split(".")[-1]
        req.params = req.json_body
    candidates = SIGNING_TO_SERVICES.get(req.signing_name, (req.signing_name,))
    req.service = candidates[0]
    for name in candidates:
        model = service_model(name)
        if model is None:
            continue
        if req.action and req.action in model.operation_names:
            req.service = name
            break
    model = service_model(req.service)
    req.protocol = model.protocol if model is not None else ""
    if not req.action and req.protocol in ("rest-json", "rest-xml"):
        routes = _rest_routes_for(req.service)
        matches = [op_name for method, regex, op_name in routes if method == req.method and regex.match(req.path)]
        if matches:
            req.action = _best_route(req, matches)
        if req.protocol == "rest-json":
            req.params = req.json_body


def error_response(req, status, code, message):
    """An error in the wire format the request's protocol uses, as AWS would send it."""
    rid = req.request_id
    if req.protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{_xml(message)}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        )
        return status, [("Content-Type", "text/xml")], body.encode()
    if req.protocol in ("query", "rest-xml"):
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
            f"</Error><RequestId>{rid}</RequestId></ErrorResponse>"
        )
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode()
    body = json.dumps({"__type": code, "message": message}).encode()
    return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code), ("x-amzn-RequestId", rid)], body


def _xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def throttling_code(req):
    """The error code and HTTP status AWS uses for throttling on this protocol."""
    if req.protocol == "ec2":
        return 503, "RequestLimitExceeded", "Request limit exceeded."
    if req.protocol in ("query", "rest-xml"):
        return 400, "Throttling", "Rate exceeded"
    if req.protocol == "rest-json":
        return 429, "TooManyRequestsException", "Request rate exceeded"
    return 400, "ThrottlingException", "Rate exceeded"


def server_error_code(req):
    if req.protocol == "ec2":
        return 500, "InternalError", "An internal error has occurred"
    if req.protocol == "rest-json":
        return 500, "InternalServerErrorException", "Internal server error"
    return 500, "InternalFailure", "The request processing has failed because of an unknown error."
