"""The embedded broker's wake-ups: an idle worker waiting on its queue takes a message as soon as it is
published, not at its next poll; without a waiter a publish still works; the setting runs kombu as shipped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kombu import Consumer, Queue

from radassist.broker import client
from radassist.config import Settings
from radassist.embedded_broker import Transport, check_compatible, notify, wake_dir
from radassist.startup import prepare_embedded_broker


def test_the_installed_kombu_has_what_the_wakeups_use() -> None:
    assert check_compatible() == []


def test_a_publish_wakes_the_idle_worker_long_before_its_next_poll(make_settings: Callable[..., Settings]) -> None:
    # A poll every 5 s: without a wake-up the message would wait up to that long.
    settings = make_settings(queue_embedded_polling_seconds="5")
    prepare_embedded_broker(settings)
    app = client(settings)
    received: list[float] = []
    ready = threading.Event()

    def consume() -> None:
        with app.connection_for_read() as connection:
            assert isinstance(connection.transport, Transport)
            connection.transport.polling_interval = 5.0
            with Consumer(connection, [Queue("gpu")], accept=["json"],
                          callbacks=[lambda _body, message: (received.append(time.monotonic()), message.ack())]):
                deadline = time.monotonic() + 30
                while not received and time.monotonic() < deadline:
                    ready.set()
                    try:
                        connection.drain_events(timeout=10)
                    except TimeoutError:
                        pass

    worker = threading.Thread(target=consume)
    worker.start()
    assert ready.wait(30)
    time.sleep(0.5)  # the worker found the queue empty and waits
    sent = time.monotonic()
    app.send_task("radassist.draft_study", args=["x"], queue="gpu")
    worker.join(30)
    assert received and received[0] - sent < 2.5  # woken, not polled 5 s later


def test_a_publish_with_no_worker_waiting_is_kept(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    prepare_embedded_broker(settings)
    notify(wake_dir(settings.broker_url), "io")  # no pipe yet: nothing to wake, no error
    app = client(settings)
    app.send_task("radassist.deliver", args=["x"], queue="io")
    from radassist.broker import queue_depths

    assert queue_depths(app, ["io"])["io"] == 1


def test_the_setting_runs_kombus_transport_as_shipped(make_settings: Callable[..., Settings]) -> None:
    app = client(make_settings(queue_embedded_wakeups="false"))
    with app.connection_for_read() as connection:
        assert not isinstance(connection.transport, Transport)
