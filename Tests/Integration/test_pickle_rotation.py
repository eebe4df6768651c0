"""Pickle key rotation on a populated database while traffic flows (docs/rotation.md): a real E2EE
client (matrix-nio) keeps writing to puppets and puppets keep answering while `sealbridge
rotate-pickle-key` re-encrypts every row; every message is delivered decrypted, the command reports
0 rows left, a daemon with only the new key keeps decrypting (the old Megolm session and a new one),
and the old key alone opens nothing: `--check` opens no row and a daemon with it refuses to start."""
import asyncio
import re
import secrets
import subprocess
import time
import urllib.parse

from nio import MegolmEvent, RoomMessageText

from conftest import SEALBRIDGE, Stack, e2ee_client, joined, psql, request, sync_until, timeline

PUPPETS = [f"@sealbridge_r{n}:localhost" for n in range(2)]


def api(stack, method: str, path: str, body: dict | None = None):
    return request(method, f"{stack.url}/_sealbridge/v1{path}", token=stack.bridge_token, body=body)


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def delivered(stack) -> dict[str, dict]:
    """Every room message the outbox still holds or hands out from the start, by body (cursor 0)."""
    status, body = api(stack, "GET", "/events?since=0&timeout=0&limit=1000")
    assert status == 200, body
    return {e["content"].get("body"): e for e in body["events"] if e["type"] == "m.room.message"}


def write_config(stack, path, current: str, previous: list[str] | None = None):
    """A copy of the stack's config whose encryption keys are the given files."""
    keys = f'  pickle_key_file: "{current}"\n'
    if previous:
        keys += "  previous_pickle_key_files: [" + ", ".join(f'"{p}"' for p in previous) + "]\n"
    text = re.sub(r'(?m)^  pickle_key(_file)?: .*\n(  previous_pickle_key_files: .*\n)?', keys, stack.config.read_text())
    path.write_text(text)


def rotate(config, *arguments) -> subprocess.CompletedProcess:
    return subprocess.run([SEALBRIDGE, "rotate-pickle-key", "--config", config, *arguments], capture_output=True, text=True, timeout=300)


def test_pickle_key_rotation_while_traffic_flows(tmp_path):
    stack = Stack(tmp_path)
    try:
        run(stack, tmp_path)
    finally:
        stack.close()


def run(stack, tmp_path):
    old_key = re.search(r'(?m)^  pickle_key: "(.*)"$', stack.config.read_text()).group(1)
    old_file, new_file = tmp_path / "pickle_key.old", tmp_path / "pickle_key.new"
    old_file.write_text(old_key + "\n")
    new_file.write_text(secrets.token_urlsafe(48) + "\n")
    old_only, new_only = tmp_path / "old-only.yaml", tmp_path / "new-only.yaml"
    write_config(stack, old_only, str(old_file))
    write_config(stack, new_only, str(new_file))

    for puppet in PUPPETS:
        status, body = api(stack, "PUT", f"/puppets/{quote(puppet)}", body={"displayname": puppet})
        assert status == 200, body
    user = stack.register_full("rotor")
    sent_bodies: list[str] = []
    puppet_bodies: list[str] = []

    async def conversation():
        (tmp_path / "nio").mkdir()
        client = await e2ee_client(stack, user, str(tmp_path / "nio"))
        try:
            created = await client.room_create(
                invite=PUPPETS, name="rotation",
                initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
            room_id = created.room_id
            await sync_until(client, lambda _: room_id in client.rooms and set(PUPPETS) <= joined(client.rooms[room_id]),
                             45, "the puppets to join")
            if client.should_query_keys:
                await client.keys_query()

            async def say(body):
                await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body}, ignore_unverified_devices=True)
                sent_bodies.append(body)

            def puppet_says(n, body):
                status, sent = api(stack, "PUT", f"/rooms/{quote(room_id)}/send/m.room.message/{body}?as={quote(PUPPETS[n % 2])}",
                                   body={"msgtype": "m.text", "body": body})
                assert status == 200, sent
                puppet_bodies.append(body)

            async def wait_delivered(bodies, timeout=60):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    seen = await asyncio.to_thread(delivered, stack)
                    if set(bodies) <= set(seen):
                        return seen
                    await asyncio.sleep(0.3)
                raise AssertionError(f"not delivered: {set(bodies) - set(seen)}")

            # A populated database under the old key: accounts, Olm and Megolm sessions, cross-signing
            # seeds, outbox rows (nothing is acknowledged, so the outbox keeps every delivery).
            for n in range(20):
                await say(f"before {n}")
                if n % 4 == 0:
                    await asyncio.to_thread(puppet_says, n, f"puppet-before-{n}")
            await wait_delivered([f"before {n}" for n in range(20)])

            # Step 1: the new key writes, the old key is kept for reading; restart. Rotating before the
            # restart is refused: the running daemon still writes under the old key.
            keyring = tmp_path / "keyring.yaml"
            write_config(stack, keyring, str(new_file), [str(old_file)])
            early = rotate(keyring, "--new-key-file", str(new_file))
            assert early.returncode == 78 and "restart it with this configuration" in early.stderr, early.stderr
            stack.config.write_text(keyring.read_text())
            assert stack.stop() == 0
            stack.start()
            assert any(line.get("msg") == "store keys" and line.get("also_reads") for line in stack.log_lines())

            # A wrong target is refused (step 1 explained), and so is the old key as target.
            refused = rotate(stack.config, "--new-key-file", str(old_file))
            assert refused.returncode == 78, refused.stderr
            assert "previous_pickle_key_files" in refused.stderr and old_key not in refused.stderr + refused.stdout

            # Step 2: rotate with batches of 1 while the user and the puppets keep writing; the first run
            # is killed part-way (a crash), the second goes on where it stopped.
            rounds = 0

            async def rotate_with_traffic(kill_after=None):
                nonlocal rounds
                process = await asyncio.create_subprocess_exec(
                    str(SEALBRIDGE), "rotate-pickle-key", "--config", str(stack.config), "--new-key-file", str(new_file),
                    "--batch-size", "1", "--pause-ms", "100", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                communicated = asyncio.ensure_future(process.communicate())
                started, n = time.monotonic(), 0
                while not communicated.done():
                    if kill_after is not None and time.monotonic() - started > kill_after and process.returncode is None:
                        process.kill()
                    await say(f"during {rounds}")
                    await asyncio.to_thread(puppet_says, rounds, f"puppet-during-{rounds}")
                    rounds += 1
                    n += 1
                out, err = await communicated
                return process.returncode, out.decode(), err.decode(), n

            def stale_at_start(err):
                """Rows not under the new key when the run started, summed over the tables."""
                return sum(int(total) - int(done) for done, total in re.findall(r": (\d+)/(\d+) under key", err))

            code, out, err, n = await rotate_with_traffic(kill_after=1.5)
            assert code == -9 and "rows left under other keys" not in out, (code, out, err)
            first_stale = stale_at_start(err)
            assert first_stale > 10, err
            code, out, err, n = await rotate_with_traffic()
            print(f"rotation: {n} rounds of traffic while the second run ran\n{err}{out}")
            assert n >= 5, f"only {n} rounds of traffic while the rotation ran"
            # Resumed: what the killed run moved is not done again (the daemon only adds rows under the new key).
            assert 0 < stale_at_start(err) < first_stale, (first_stale, err)
            assert code == 0, err + out
            assert "rows left under other keys: 0" in out, out
            assert "sealbridge_inbound_group_sessions.pickle" in err and "sealbridge_outbox.sealed" in err, err
            assert old_key not in err + out
            during = [b for b in sent_bodies if b.startswith("during")]
            await wait_delivered(during)

            # Nothing is left under the old key: in the database, every pickle names the new key id.
            assert psql(stack.database_url, "SELECT count(*) FROM sealbridge_crypto_accounts WHERE pickle NOT LIKE 'sb2:%'") == "0"
            ids = psql(stack.database_url,
                       "SELECT DISTINCT split_part(pickle, ':', 2) FROM sealbridge_inbound_group_sessions "
                       "UNION SELECT DISTINCT split_part(pickle, ':', 2) FROM sealbridge_olm_sessions").split()
            assert len(ids) == 1, ids
            assert psql(stack.database_url, "SELECT string_agg(key_id, ',') FROM sealbridge_store_keys") == ids[0]

            # Step 3: only the new key; restart.
            assert stack.stop() == 0
            # The old key alone: the daemon refuses to start, naming the key id it lacks, and --check opens nothing.
            refused = subprocess.run([SEALBRIDGE, "run", "--config", old_only], capture_output=True, text=True, timeout=60)
            assert refused.returncode == 78, refused.stdout + refused.stderr
            assert ids[0] in refused.stdout + refused.stderr
            # doctor names the missing key id (and fails); with the new key the store keys check is ok.
            doctor = subprocess.run([SEALBRIDGE, "doctor", "--config", old_only], capture_output=True, text=True, timeout=120)
            line = next((l for l in doctor.stdout.splitlines() if "store keys:" in l), "")
            assert doctor.returncode != 0 and line.startswith("FAILED") and ids[0] in line, doctor.stdout + doctor.stderr
            doctor = subprocess.run([SEALBRIDGE, "doctor", "--config", new_only], capture_output=True, text=True, timeout=120)
            line = next((l for l in doctor.stdout.splitlines() if "store keys:" in l), "")
            assert line.startswith("ok") and ids[0] in line, doctor.stdout + doctor.stderr
            check = rotate(old_only, "--check")
            assert check.returncode == 1 and "rows opened: 0," in check.stdout, check.stdout + check.stderr
            check = rotate(new_only, "--check")
            assert check.returncode == 0 and "rows that do not open: 0" in check.stdout, check.stdout + check.stderr
            opened = int(re.search(r"rows opened: (\d+)", check.stdout).group(1))
            assert opened >= 20, check.stdout

            stack.config.write_text(new_only.read_text())
            stack.start()
            # The old Megolm session (its inbound copy was rotated) still decrypts...
            for n in range(3):
                await say(f"after {n}")
            # ...and so does a new one, shared over the rotated Olm sessions.
            client.olm.create_outbound_group_session(room_id)
            await client.share_group_session(room_id, ignore_unverified_devices=True)
            await say("new session")
            seen = await wait_delivered(sent_bodies)
            for body in sent_bodies:
                assert seen[body]["encryption"]["decrypted"] is True, body
            # Every delivery of every phase (the outbox rows were rotated too) opens with the new key alone.
            assert {f"before {n}" for n in range(20)} <= set(seen)

            # The puppets still send under their rotated outbound sessions and accounts; the user decrypts.
            await asyncio.to_thread(puppet_says, 0, "puppet-after")
            undecrypted = []

            def find(response):
                for event in timeline(response, room_id):
                    if isinstance(event, MegolmEvent) and event.sender in PUPPETS:
                        undecrypted.append(event)
                    if isinstance(event, RoomMessageText) and event.body == "puppet-after":
                        return event
                return None

            event = await sync_until(client, find, 45, "a puppet's message after the rotation")
            assert event.decrypted
            assert not undecrypted, undecrypted
        finally:
            await client.close()

    asyncio.run(conversation())
