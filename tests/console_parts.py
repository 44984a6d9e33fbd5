"""HTTP for the console's tests: requests to a test kiosk's status server, with or without its token."""
import http.client
import json

TOKEN = "console-test-token-1234"


def request(k, method, path, token=TOKEN, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", k.status_port, timeout=10)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if body is not None and "Content-Type" not in h:
        h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data
    finally:
        c.close()


def post(k, action, **kw):
    return request(k, "POST", f"/control/{action}", **kw)


def health(k):
    return request(k, "GET", "/health")[1]


def pids(k) -> dict:
    return {role: p["pid"] for role, p in health(k)["programs"].items()}
