"""After Sealbridge was away, the homeserver resumes pushing at once (issue 13, point 7).

While the appservice does not answer, Synapse retries with a backoff that doubles up to 512 s; the
daemon pings the homeserver (MSC2659) when its listener is up, which makes Synapse retry at once.
Without that ping, the message sent during the outage would wait for Synapse's next scheduled retry
(tens of seconds after a 40-second outage)."""
import asyncio
import time

from conftest import Stack, e2ee_client, request
from test_hostile import encrypted_room, ensure_puppets, send_text


def test_pending_transactions_arrive_promptly_after_the_daemon_returns(tmp_path_factory, tmp_path):
    stack = Stack(tmp_path_factory.mktemp("resume"))
    try:
        puppet = "@sealbridge_resume:localhost"
        ensure_puppets(stack, [puppet])
        user = stack.register_full("rhea")
        cursor = "0"

        def events_until(event_id: str, seconds: float) -> float | None:
            """Polls the bridge API until `event_id` is delivered; returns when (monotonic) or None."""
            nonlocal cursor
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                status, body = request("GET", f"{stack.url}/_sealbridge/v1/events?since={cursor}&timeout=1000", token=stack.bridge_token)
                assert status == 200, body
                cursor = body["next_batch"]
                if any(event["event_id"] == event_id for event in body["events"]):
                    return time.monotonic()
            return None

        async def conversation():
            client = await e2ee_client(stack, user, str(tmp_path))
            try:
                room_id = await encrypted_room(client, [puppet])
                first = await send_text(client, room_id, "before the outage")
                assert await asyncio.to_thread(events_until, first, 45), "the first message never arrived"
                stack.stop()
                # Sent while the daemon is down: Synapse fails to push it and starts backing off
                # (2, 4, 8, 16 s…); after 40 s its next retry is up to 32 s away.
                during = await send_text(client, room_id, "during the outage")
                await asyncio.sleep(40)
                stack.start()
                back = time.monotonic()
                arrived = await asyncio.to_thread(events_until, during, 60)
                assert arrived is not None, "the message sent during the outage never arrived"
                return arrived - back
            finally:
                await client.close()

        delay = asyncio.run(conversation())
        assert delay < 12, f"the homeserver took {delay:.1f} s to resume pushing after the daemon came back"
        pinged = [line for line in stack.log_lines() if "ping" in line.get("message", "")]
        assert not [line for line in pinged if line.get("level") in ("warning", "error")], pinged
    finally:
        stack.close()
