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


def test_a_worker_at_its_prefetch_limit_takes_the_next_message_when_it_acks(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    prepare_embedded_broker(settings)
    app = client(settings)
    for n in range(2):
        app.send_task("radassist.prepare_job", args=[str(n)], queue="cpu")
    held: list[object] = []
    taken: list[float] = []

    def consume() -> None:
        with app.connection_for_read() as connection:
            connection.transport.polling_interval = 5.0
            with Consumer(connection, [Queue("cpu")], accept=["json"], prefetch_count=1,
                          callbacks=[lambda _body, message: (held.append(message), taken.append(time.monotonic()))]):
                deadline = time.monotonic() + 30
                while len(taken) < 2 and time.monotonic() < deadline:
                    try:
                        connection.drain_events(timeout=10)
                    except TimeoutError:
                        pass
            for message in held[1:]:
                message.ack()  # type: ignore[attr-defined]

    worker = threading.Thread(target=consume)
    worker.start()
    deadline = time.monotonic() + 30
    while not held and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the worker holds its one message and waits for a free slot
    acked = time.monotonic()
    held[0].ack()  # type: ignore[attr-defined]  # as a pool thread acks a finished task
    worker.join(30)
    assert len(taken) == 2 and taken[1] - acked < 2.5  # woken by the ack, not polled 5 s later
