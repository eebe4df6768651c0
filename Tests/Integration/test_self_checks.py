"""Self-checks against a real Synapse (docs/self-checks.md): with `msc2409_to_device_messages_enabled`
off, the daemon's own to-device probe never comes back, so `/health` says degraded, the `status`
command shows the failed check, and `sealbridge doctor` exits non-zero naming the flag; with it on,
all three are clean."""
import re
import subprocess
import urllib.parse
import urllib.request

import pytest

from conftest import SEALBRIDGE, Stack, request, wait_for

BOT = "@sealbridge:localhost"
FLAG = "msc2409_to_device_messages_enabled"


def self_checks_config(timeout: int = 10) -> str:
    return f"""self_checks:
  registration_file: registration.yaml
  interval_minutes: 1
  to_device_timeout_seconds: {timeout}
"""


def health(stack) -> dict:
    status, body = request("GET", stack.url + "/health")
    assert status == 200, (status, body)
    return body


def checked(stack) -> dict:
    """A round of self-checks, asked of the daemon's endpoint (it joins the round under way, if any)."""
    def report():
        status, body = request("POST", stack.url + "/_sealbridge/self-checks", token=stack.tokens["hs_token"], body={})
        judged = status == 200 and any(c["name"] == "to_device" and c["state"] != "skipped" for c in body.get("checks", []))
        return body if judged else None
    return wait_for(report, 90, "a self-check report once the bot has its device")


def raw(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


def doctor(stack) -> subprocess.CompletedProcess:
    return subprocess.run([SEALBRIDGE, "doctor", "--config", stack.config], capture_output=True, text=True, timeout=120)


def status_reply(stack) -> str:
    """The bot's answer to `status` in an unencrypted DM with an admin (to-device off: no room keys)."""
    admin = stack.register("admin")
    status, created = request("POST", stack.homeserver + "/_matrix/client/v3/createRoom", token=admin,
                              body={"invite": [BOT], "is_direct": True, "preset": "private_chat"})
    assert status == 200, created
    room = created["room_id"]
    quoted = urllib.parse.quote(room)

    def bot_joined():
        status, members = request("GET", f"{stack.homeserver}/_matrix/client/v3/rooms/{quoted}/joined_members", token=admin)
        return status == 200 and BOT in members.get("joined", {})
    wait_for(bot_joined, 30, "the bot to join the DM")
    status, sent = request("PUT", f"{stack.homeserver}/_matrix/client/v3/rooms/{quoted}/send/m.room.message/status1", token=admin,
                           body={"msgtype": "m.text", "body": "status"})
    assert status == 200, sent

    def reply():
        status, page = request("GET", f"{stack.homeserver}/_matrix/client/v3/rooms/{quoted}/messages?dir=b&limit=20", token=admin)
        for event in page.get("chunk", []) if status == 200 else []:
            if event.get("sender") == BOT and event.get("type") == "m.room.message" and "Sealbridge status" in event["content"].get("body", ""):
                return event["content"]["body"]
        return None
    return wait_for(reply, 45, "the bot's status reply")


@pytest.fixture(scope="module")
def flag_off(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("selfcheck-off"), extra=self_checks_config(), synapse_features_off=(FLAG,))
    yield running
    running.close()


@pytest.fixture(scope="module")
def flag_on(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("selfcheck-on"), extra=self_checks_config())
    yield running
    running.close()


def test_to_device_off_is_reported_by_health_status_and_doctor(flag_off):
    report = checked(flag_off)
    states = {check["name"]: check for check in report["checks"]}
    assert states["to_device"]["state"] == "failed", report
    assert states["to_device"]["fix"].startswith(f"homeserver.yaml: experimental_features: {FLAG}: true, then restart the homeserver")
    # The registration file is right: the fault is the homeserver's flag alone.
    assert states["registration"]["state"] == "ok", report
    assert states["bot_keys"]["state"] == "ok", report

    body = wait_for(lambda: (lambda b: b if b.get("status") == "degraded" else None)(health(flag_off)), 30, "/health degraded")
    assert any(FLAG in reason for reason in body["reasons"]), body

    status, metrics = raw(flag_off.url + "/metrics")
    assert status == 200 and re.search(r'^sealbridge_self_check_ok\{check="to_device"\} 0(\.0)?$', metrics, re.M), metrics[-3000:]
    assert re.search(r'^sealbridge_self_check_ok\{check="bot_keys"\} 1(\.0)?$', metrics, re.M), metrics[-3000:]

    reply = status_reply(flag_off)
    assert "self-checks: 1 FAILED" in reply, reply
    assert "self-check to_device: FAILED" in reply and FLAG in reply, reply

    result = doctor(flag_off)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "FAILED  to_device" in output and f"{FLAG}: true" in output, output
    assert "ok      ping" in output and "ok      database" in output and "ok      registration" in output, output


def test_to_device_on_everything_is_clean(flag_on):
    report = checked(flag_on)
    assert all(check["state"] == "ok" for check in report["checks"]), report
    assert health(flag_on) == {"status": "ok"}

    reply = status_reply(flag_on)
    assert "self-checks: all passed" in reply, reply
    assert "FAILED" not in reply, reply

    result = doctor(flag_on)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "doctor: nothing wrong" in output and "FAILED" not in output, output
    for check in ["database", "homeserver", "as_token", "registration", "daemon", "ping", "to_device", "key_counts", "bot_keys"]:
        assert f"ok      {check}:" in output, (check, output)


def test_doctor_without_a_daemon_fails_and_says_why(flag_on, tmp_path):
    """Stopping the daemon: doctor cannot observe a round trip, so it says so and fails."""
    flag_on.stop()
    try:
        result = doctor(flag_on)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert "FAILED  daemon" in output and "sealbridge run" in output, output
        assert "ok      homeserver" in output and "ok      registration" in output, output
    finally:
        flag_on.start()
