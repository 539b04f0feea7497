"""A real Nostr relay (in-process, nostr-sdk's LocalRelay) and a minimal NIP-47 wallet service
that answers `pay_invoice` by paying through a function the test gives it (the dev wallet)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from nostr_sdk import (
    Client,
    EventBuilder,
    Filter,
    Keys,
    Kind,
    LocalRelayBuilder,
    RelayUrl,
    ReqTarget,
    Tag,
    Timestamp,
)

REQUEST, RESPONSE, INFO = 23194, 23195, 13194


class WalletService:
    """Modes: "pay" (pays and answers the preimage), "refuse" (answers a NIP-47 error),
    "silent" (never answers), "slow" (waits `delay_s`, then pays)."""

    def __init__(self, pay: Callable[[str], Awaitable[str]] | None = None) -> None:
        self.keys = Keys.generate()
        self.pay = pay
        self.mode = "pay"
        self.delay_s = 1.0
        self.requests: list[dict[str, Any]] = []
        self.relay_url = ""
        self._relay: Any = None
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pubkey(self) -> str:
        return str(self.keys.public_key().to_hex())

    def connection_uri(self, relay_url: str | None = None) -> tuple[str, str]:
        """A fresh app connection: (nostr+walletconnect URI, its client secret)."""
        secret = Keys.generate().secret_key().to_hex()
        relay = relay_url or self.relay_url
        return f"nostr+walletconnect://{self.pubkey}?relay={relay}&secret={secret}", secret

    async def start(self) -> None:
        self._relay = LocalRelayBuilder().addr("127.0.0.1").build()
        await self._relay.run()
        self.relay_url = str(await self._relay.url())
        client = Client()
        await client.add_relay(RelayUrl.parse(self.relay_url))
        await client.connect()
        wanted = Filter().kind(Kind(REQUEST)).pubkey(self.keys.public_key()).since(Timestamp.now())
        await client.subscribe(ReqTarget.auto([wanted]))
        info = EventBuilder(Kind(INFO), "pay_invoice get_info").tags(
            [Tag.custom("encryption", ["nip44_v2 nip04"])]
        )
        await client.send_event(info.finalize(self.keys))
        self._client = client
        self._task = asyncio.get_running_loop().create_task(self._serve(client))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.shutdown()
        if self._relay is not None:
            self._relay.shutdown()

    async def _serve(self, client: Client) -> None:
        stream = client.notifications()
        while (note := await stream.next()) is not None:
            if not note.is_NEW_EVENT():
                continue
            event = note.event
            if event.kind().as_u16() != REQUEST:
                continue
            asyncio.get_running_loop().create_task(self._answer(client, event))

    async def _answer(self, client: Client, event: Any) -> None:
        author = event.author()
        try:
            request = json.loads(self.keys.nip44_decrypt(author, event.content()))
            nip44 = True
        except Exception:
            request = json.loads(self.keys.nip04_decrypt(author, event.content()))
            nip44 = False
        self.requests.append(request)
        method = request.get("method")
        if self.mode == "silent":
            return
        if method != "pay_invoice":
            reply = {"result_type": method, "error": {"code": "NOT_IMPLEMENTED", "message": "no"}}
        elif self.mode == "refuse":
            reply = {
                "result_type": method,
                "error": {"code": "QUOTA_EXCEEDED", "message": "budget used up for today"},
            }
        else:
            if self.mode == "slow":
                await asyncio.sleep(self.delay_s)
            try:
                assert self.pay is not None
                preimage = await self.pay(request["params"]["invoice"])
                reply = {"result_type": method, "result": {"preimage": preimage, "fees_paid": 0}}
            except Exception as exc:
                reply = {
                    "result_type": method,
                    "error": {"code": "PAYMENT_FAILED", "message": str(exc)},
                }
        encrypt = self.keys.nip44_encrypt if nip44 else self.keys.nip04_encrypt
        answer = EventBuilder(Kind(RESPONSE), encrypt(author, json.dumps(reply))).tags(
            [Tag.public_key(author), Tag.event(event.id())]
        )
        await client.send_event(answer.finalize(self.keys))
