"""SMS over SMPP 3.4 (smpplib): one bound transceiver session, UCS-2 text split with a
concatenation header (notify.sms), delivery reports handed to a callback.

`send` blocks until the SMSC answered every part (submit_sm_resp) or `submit_timeout_s`
passed. A dead SMSC is an outcome (failed, with what went wrong), never an exception: the
notifier retries it with backoff and the chain moves on. The session is opened on first use
and again after any error.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import smpplib.client
import smpplib.consts
import smpplib.exceptions

from notify.outcomes import Outcome, State
from notify.sms import UCS2, segments

__all__ = ["SmppEndpoint", "SmppSender", "DeliveryHandler"]

log = logging.getLogger(__name__)

DeliveryHandler = Callable[[str, bool, dict[str, Any]], None]
# The receipt text of SMPP 3.4 Appendix B: "id:… sub:… dlvrd:… submit date:… done date:… stat:DELIVRD err:…"
_RECEIPT = re.compile(rb"id:(?P<id>\S+).*?stat:(?P<stat>\w+)(?:.*?err:(?P<err>\w+))?", re.S)
_UDHI = 0x40
_DELIVERY_RECEIPT = 0x04


@dataclass(frozen=True, slots=True)
class SmppEndpoint:
    host: str
    port: int
    system_id: str
    password: str

    @classmethod
    def parse(cls, url: str) -> SmppEndpoint:
        parts = urlsplit(url)
        if parts.scheme != "smpp" or not parts.hostname:
            raise ValueError(f"the SMSC must look like smpp://system_id:password@host:2775, got {url!r}")
        return cls(parts.hostname, parts.port or 2775, unquote(parts.username or ""), unquote(parts.password or ""))


class SmppSender:
    def __init__(
        self, endpoint: SmppEndpoint, *, sender: str, on_report: DeliveryHandler, submit_timeout_s: float = 10.0
    ) -> None:
        self._endpoint = endpoint
        self._sender = sender
        self._on_report = on_report
        self._timeout = submit_timeout_s
        self._lock = threading.Lock()  # one submit at a time on the session
        self._client: smpplib.client.Client | None = None
        self._answers: dict[int, tuple[int, str]] = {}  # sequence -> (status, message id)
        self._answered = threading.Condition()
        self._parts: dict[str, str] = {}  # a part's message id -> the first part's (the notification's ref)
        # An SMSC may report a part delivered before the last part of the same SMS is even
        # accepted, that is before `_parts` knows which SMS it belongs to: such reports wait
        # here until the send that is under way has all its parts' ids.
        self._sending = False
        self._early: dict[str, tuple[str, str]] = {}  # part id -> (stat, err)
        self._parts_lock = threading.Lock()
        self._references = itertools.count(1)

    # --- sending -----------------------------------------------------------------------

    def send(self, phone: str, text: str) -> Outcome:
        with self._lock:
            with self._parts_lock:
                self._sending = True
            try:
                return self._submit(phone, text)
            finally:
                self._sent()

    def _submit(self, phone: str, text: str) -> Outcome:
        """Submit every part and wait for the SMSC to accept them (the caller holds the session)."""
        try:
            client = self._session()
            sequences = []
            reference = next(self._references) & 0xFF
            for part in segments(text, reference):
                pdu = client.send_message(
                    source_addr_ton=smpplib.consts.SMPP_TON_ALNUM if not self._sender.isdigit() else smpplib.consts.SMPP_TON_INTL,
                    source_addr_npi=smpplib.consts.SMPP_NPI_UNK if not self._sender.isdigit() else smpplib.consts.SMPP_NPI_ISDN,
                    source_addr=self._sender,
                    dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                    dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                    destination_addr=phone.lstrip("+"),
                    short_message=part.payload,
                    data_coding=UCS2,
                    esm_class=_UDHI if part.udh else 0,
                    registered_delivery=True,
                )
                sequences.append(pdu.sequence)
            answers = self._wait(sequences)
        except (OSError, smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError) as exc:
            self._drop()
            return Outcome(State.FAILED, detail={"error": f"SMSC: {exc}"})
        refused = [status for status, _ in answers if status != smpplib.consts.SMPP_ESME_ROK]
        if refused:
            return Outcome(State.FAILED, detail={"error": f"SMSC refused the message (command_status {refused[0]:#x})"})
        ids = [message_id for _, message_id in answers]
        with self._parts_lock:
            for message_id in ids:
                self._parts[message_id] = ids[0]
        return Outcome(State.ACCEPTED, ref=ids[0], detail={"parts": len(ids)})

    def _sent(self) -> None:
        """The send is over: hand on the reports that came before its parts were all known,
        now under their SMS's ref (or their own, if they were no part of it)."""
        with self._parts_lock:
            self._sending = False
            early, self._early = self._early, {}
            known = {part: self._parts.get(part, part) for part in early}
        for part, (stat, err) in early.items():
            self._report(known[part], stat, err)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.unbind()
                except Exception:  # noqa: BLE001 - closing a session that may already be gone
                    pass
            self._drop()

    # --- the session ------------------------------------------------------------------

    def _session(self) -> smpplib.client.Client:
        if self._client is not None:
            return self._client
        client = smpplib.client.Client(self._endpoint.host, self._endpoint.port, timeout=30, allow_unknown_opt_params=True)
        client.set_message_sent_handler(self._submitted)
        client.set_message_received_handler(self._received)
        client.set_error_pdu_handler(self._error)
        client.connect()
        client.bind_transceiver(system_id=self._endpoint.system_id, password=self._endpoint.password)
        threading.Thread(target=self._listen, args=(client,), name="smpp-listen", daemon=True).start()
        self._client = client
        log.info("bound to the SMSC at %s:%s", self._endpoint.host, self._endpoint.port)
        return client

    def _listen(self, client: smpplib.client.Client) -> None:
        try:
            client.listen()
        except Exception as exc:  # noqa: BLE001 - any end of the session: the next send binds again
            log.warning("SMSC session ended: %s", exc)
            if self._client is client:
                self._client = None
            with self._answered:
                self._answered.notify_all()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # noqa: BLE001
                pass

    def _wait(self, sequences: list[int]) -> list[tuple[int, str]]:
        with self._answered:
            if not self._answered.wait_for(lambda: all(s in self._answers for s in sequences) or self._client is None, self._timeout):
                raise smpplib.exceptions.ConnectionError(f"no submit_sm_resp within {self._timeout:g} s")
            if not all(s in self._answers for s in sequences):
                raise smpplib.exceptions.ConnectionError("the SMSC closed the session")
            return [self._answers.pop(s) for s in sequences]

    # --- PDUs from the SMSC (on the listening thread) ------------------------------------

    def _submitted(self, pdu: Any, **_: Any) -> None:
        message_id = pdu.message_id.decode() if isinstance(pdu.message_id, bytes) else str(pdu.message_id)
        with self._answered:
            self._answers[pdu.sequence] = (pdu.status, message_id)
            self._answered.notify_all()

    def _error(self, pdu: Any) -> None:
        with self._answered:
            self._answers[pdu.sequence] = (pdu.status or 1, "")
            self._answered.notify_all()

    def _received(self, pdu: Any, **_: Any) -> int:
        if not getattr(pdu, "esm_class", 0) & _DELIVERY_RECEIPT:
            return smpplib.consts.SMPP_ESME_ROK  # a reply from a handset: not ours to read
        receipt = _RECEIPT.search(pdu.short_message or b"")
        if receipt is None:
            log.warning("unreadable delivery report")
            return smpplib.consts.SMPP_ESME_ROK
        part = receipt.group("id").decode()
        stat = receipt.group("stat").decode()
        err = (receipt.group("err") or b"").decode()
        with self._parts_lock:
            ref = self._parts.get(part)
            if ref is None and self._sending:
                self._early[part] = (stat, err)
                return smpplib.consts.SMPP_ESME_ROK
        self._report(ref or part, stat, err)
        return smpplib.consts.SMPP_ESME_ROK

    def _report(self, ref: str, stat: str, err: str) -> None:
        try:
            self._on_report(ref, stat == "DELIVRD", {"stat": stat, "err": err})
        except Exception:  # the report is lost, the SMS is not: log and acknowledge
            log.exception("recording a delivery report failed")
