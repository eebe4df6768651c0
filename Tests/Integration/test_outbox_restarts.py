"""Acknowledged means never again: a bridge API consumer that acknowledges every batch sees each event
exactly once, across three kill -9 restarts of the daemon (issue 13, point 8)."""
import asyncio
import collections
import time

from conftest import Stack, e2ee_client, request
from test_hostile import encrypted_room, ensure_puppets, send_text


def test_each_event_exactly_once_across_three_kill_9_restarts(tmp_path_factory, tmp_path):
    stack = Stack(tmp_path_factory.mktemp("restarts"))
    try:
        puppet = "@sealbridge_acked:localhost"
        ensure_puppets(stack, [puppet])
        user = stack.register_full("abe")
        seen = collections.Counter()
        cursor = "0"

        def poll(timeout_ms: int) -> list[dict]:
            nonlocal cursor
            status, body = request("GET", f"{stack.url}/_sealbridge/v1/events?since={cursor}&timeout={timeout_ms}", token=stack.bridge_token)
            assert status == 200, body
            cursor = body["next_batch"]
            for event in body["events"]:
                seen[event["event_id"]] += 1
            return body["events"]

        def receive(expected: set[str]):
            # Each poll acknowledges the batch before it by passing its cursor; the last batch of a round
            # is acknowledged only by the first poll after the restart.
            deadline = time.monotonic() + 45
            while not expected <= set(seen) and time.monotonic() < deadline:
                poll(1000)
            assert expected <= set(seen), expected - set(seen)

        async def conversation():
            client = await e2ee_client(stack, user, str(tmp_path))
            try:
                room_id = await encrypted_room(client, [puppet])
                sent: set[str] = set()
                for round_ in range(4):
                    batch = {await send_text(client, room_id, f"round {round_} message {n}") for n in range(3)}
                    sent |= batch
                    await asyncio.to_thread(receive, batch)
                    if round_ < 3:
                        stack.process.kill()  # kill -9: no graceful anything
                        stack.process.wait(10)
                        stack.log.close()
                        stack.start()
                await asyncio.to_thread(poll, 2000)  # acknowledges the last batch; nothing new may come
                return sent
            finally:
                await client.close()

        sent = asyncio.run(conversation())
        assert sent <= set(seen)
        twice = {event_id: count for event_id, count in seen.items() if count > 1}
        assert not twice, f"delivered more than once: {twice}"
    finally:
        stack.close()
