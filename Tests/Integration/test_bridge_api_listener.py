"""The bridge API on a listener of its own (`bridge_api.listen`, issue 13 point 6): served there, with
its token, and no longer on the appservice listener the homeserver pushes to."""
from conftest import Stack, free_port, request


def test_bridge_api_on_its_own_listener(tmp_path_factory):
    port = free_port()
    stack = Stack(tmp_path_factory.mktemp("listener"), bridge_api_extra=f"  listen: 127.0.0.1:{port}")
    try:
        own = f"http://127.0.0.1:{port}"
        status, body = request("GET", f"{own}/_sealbridge/v1/events?since=0&timeout=0", token=stack.bridge_token)
        assert status == 200 and body["events"] == [], (status, body)
        # The token is still required there, and only in the header (a token in the URL is refused outright).
        assert request("GET", f"{own}/_sealbridge/v1/events?since=0&timeout=0")[0] == 401
        assert request("GET", f"{own}/_sealbridge/v1/events?since=0&timeout=0&access_token={stack.bridge_token}")[0] == 400
        # The appservice listener no longer serves it, and still serves what the homeserver needs.
        assert request("GET", f"{stack.url}/_sealbridge/v1/events?since=0&timeout=0", token=stack.bridge_token)[0] == 404
        assert request("GET", f"{stack.url}/health")[0] == 200
        assert request("GET", f"{own}/health")[0] == 404
    finally:
        stack.close()
