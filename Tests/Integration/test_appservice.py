"""The appservice front door against a real Synapse: registration accepted, tokens right both ways,
transactions pushed, recorded once, and a clean shutdown."""
import re
import urllib.parse
import urllib.request

from conftest import psql, request, wait_for


def test_homeserver_accepts_registration_and_reaches_us(stack):
    # Synapse loaded the generated registration (it started) and, asked to ping us, calls
    # POST /_matrix/app/v1/ping with the hs_token, which Sealbridge answers.
    status, body = request("POST", f"{stack.homeserver}/_matrix/client/v1/appservice/sealbridge-it/ping",
                           token=stack.tokens["as_token"], body={"transaction_id": "it-ping"})
    assert status == 200, body
    assert "duration_ms" in body


def test_wrong_as_token_is_refused_by_the_homeserver(stack):
    status, _ = request("POST", f"{stack.homeserver}/_matrix/client/v1/appservice/sealbridge-it/ping",
                        token="not-our-token", body={})
    assert status in (401, 403)


def test_room_events_arrive_and_are_committed_once(stack):
    alice = stack.register("alice")
    bot = "@sealbridge:localhost"
    status, room = request("POST", f"{stack.homeserver}/_matrix/client/v3/createRoom", token=alice,
                           body={"invite": [bot], "preset": "private_chat"})
    assert status == 200, room
    room_id = urllib.parse.quote(room["room_id"])
    status, body = request("POST", f"{stack.homeserver}/_matrix/client/v3/join/{room_id}?user_id={urllib.parse.quote(bot)}",
                           token=stack.tokens["as_token"], body={})
    assert status == 200, body
    for n in range(3):
        status, body = request("PUT", f"{stack.homeserver}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/it{n}",
                               token=alice, body={"msgtype": "m.text", "body": f"hello {n}"})
        assert status == 200, body

    def events_logged():
        total = psql(stack.database_url, "SELECT coalesce(sum(events), 0) FROM sealbridge_transaction_log")
        return int(total) >= 4 and int(total)  # create/member events and at least our messages

    wait_for(events_logged, 20, "room events in sealbridge_transaction_log")
    # One statement, one snapshot: the bot's own replies keep transactions coming, so two separate
    # counts could straddle a commit.
    committed, logged = psql(stack.database_url,
                             "SELECT (SELECT count(*) FROM sealbridge_appservice_transactions) || ',' ||"
                             " (SELECT count(*) FROM sealbridge_transaction_log)").split(",")
    assert int(committed) == int(logged) >= 1
    # The homeserver's txn ids are unique in our table by construction; check none is stored twice.
    assert psql(stack.database_url, "SELECT count(*) = count(DISTINCT txn_id) FROM sealbridge_appservice_transactions") == "t"

    # Where each transaction's time went (docs/benchmarks.md): every committed one recorded its
    # phases, each taking some time.
    def phases_recorded():
        with urllib.request.urlopen(f"{stack.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        counts = {m[0]: float(m[1]) for m in re.findall(r'sealbridge_transaction_phase_seconds_count\{phase="(\w+)"\} (\S+)', text)}
        sums = {m[0]: float(m[1]) for m in re.findall(r'sealbridge_transaction_phase_seconds_sum\{phase="(\w+)"\} (\S+)', text)}
        return all(counts.get(phase, 0) >= int(committed) and sums.get(phase, 0) > 0 for phase in ("decode", "claim", "crypto", "commit"))

    wait_for(phases_recorded, 10, "every committed transaction's phases in /metrics")


def test_sigterm_stops_cleanly_and_a_restart_resumes(stack):
    assert stack.stop() == 0
    before = int(psql(stack.database_url, "SELECT count(*) FROM sealbridge_appservice_transactions"))
    stack.start()
    alice = stack.register("alice2")
    status, room = request("POST", f"{stack.homeserver}/_matrix/client/v3/createRoom", token=alice,
                           body={"invite": ["@sealbridge:localhost"]})
    assert status == 200, room
    wait_for(lambda: int(psql(stack.database_url, "SELECT count(*) FROM sealbridge_appservice_transactions")) > before,
             20, "a transaction after the restart")


def test_bot_device_is_created_with_published_keys(stack):
    # At startup the daemon registers the bot's device with MSC4190 (PUT /devices as the appservice)
    # and uploads signed device keys, a fallback key and one-time keys; a client sees them.
    alice = stack.register("keyreader")
    bot = "@sealbridge:localhost"

    def bot_keys():
        status, body = request("POST", f"{stack.homeserver}/_matrix/client/v3/keys/query", token=alice,
                               body={"device_keys": {bot: []}})
        return status == 200 and body.get("device_keys", {}).get(bot, {}).get("SEALBRIDGE")

    keys = wait_for(bot_keys, 30, "the bot's device keys on the homeserver")
    assert keys["user_id"] == bot and keys["device_id"] == "SEALBRIDGE"
    assert set(keys["keys"]) == {"curve25519:SEALBRIDGE", "ed25519:SEALBRIDGE"}
    assert "ed25519:SEALBRIDGE" in keys["signatures"][bot]
    # A one-time key can be claimed, signed by the device.
    status, claimed = request("POST", f"{stack.homeserver}/_matrix/client/v3/keys/claim", token=alice,
                              body={"one_time_keys": {bot: {"SEALBRIDGE": "signed_curve25519"}}})
    assert status == 200, claimed
    (key_id, key), = claimed["one_time_keys"][bot]["SEALBRIDGE"].items()
    assert key_id.startswith("signed_curve25519:") and "ed25519:SEALBRIDGE" in key["signatures"][bot]
    # The account is stored encrypted: the pickle is not the plain libolm format's JSON or key material.
    pickle = psql(stack.database_url, "SELECT pickle FROM sealbridge_crypto_accounts WHERE user_id = '@sealbridge:localhost'")
    assert pickle and keys["keys"]["ed25519:SEALBRIDGE"] not in pickle
