"""The sd_notify protocol as systemd's Type=notify and WatchdogSec= see it, with a socket standing in for systemd."""
import socket
import time


def test_ready_watchdog_and_stopping_notifications(stack, tmp_path):
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(1.0)
    assert stack.stop() == 0
    try:
        stack.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
        messages = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ("READY=1" in "\n".join(messages) and sum("WATCHDOG=1" in m for m in messages) >= 2):
            try:
                messages.append(listener.recv(4096).decode())
            except socket.timeout:
                pass
        assert any(m.startswith("READY=1") for m in messages), messages
        # WATCHDOG_USEC=1s: pinged at least twice within a few seconds.
        assert sum(m == "WATCHDOG=1" for m in messages) >= 2, messages
        assert stack.stop() == 0
        stopping = []
        while True:
            try:
                stopping.append(listener.recv(4096).decode())
            except socket.timeout:
                break
        assert "STOPPING=1" in stopping, stopping
    finally:
        listener.close()
        stack.start()
