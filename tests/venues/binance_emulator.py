"""A Binance Spot public-market-data emulator on loopback, for tests of NautilusTrader's Binance data client.

:class:`BinanceSpotEmulator` serves, on ``127.0.0.1`` (ephemeral port) from a background thread,
the calls NautilusTrader 1.221's ``BinanceSpotDataClient`` makes (read from
``nautilus_trader/adapters/binance``: ``spot/providers.py``, ``data.py``, ``websocket/client.py``):

- ``GET /api/v3/ping`` → ``{}`` (the node plan's probe; Binance "Test connectivity").
- ``GET /api/v3/time`` → ``{"serverTime": <ms>}``.
- ``GET /api/v3/exchangeInfo[?symbol=S | ?symbols=["S",...]]`` → the recorded payload
  (``venue_payloads/binance/spot/http_json/exchange_info_response.json``, Binance's documentation
  example, whose only symbol ETHBTC has no filters) with BTCUSDT added: the ETHBTC entry's fields
  with BTCUSDT's assets and the filters the instrument provider needs (``PRICE_FILTER``,
  ``LOT_SIZE``; values as Binance sends them, 8-decimal text: tick 0.01, step 0.000001 as in
  ``market/binance_spot_btcusdt_instrument.txt``). An unknown symbol answers 400 ``-1121``.
- ``GET /sapi/v1/asset/tradeFee`` (signed, USER_DATA) → ``[{"symbol", "makerCommission",
  "takerCommission"}]``; needs the ``X-MBX-APIKEY`` header and ``timestamp`` / ``signature``
  parameters (any signature is accepted), else 401 ``-2014`` / 400 ``-1102`` as Binance does.
- WebSocket ``/stream?streams=a/b`` (combined streams; ``/ws`` too): the first stream is
  named in the URL, later ones come as ``{"method": "SUBSCRIBE", "params": [...], "id": n}``
  frames, answered ``{"result": null, "id": n}`` (``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` too).
  Every ``interval_secs`` each connection subscribed to ``btcusdt@bookTicker`` gets the next
  recorded quote (``market/binance_spot_btcusdt_quotes_2021-01-08.parquet``, looping) as
  ``{"stream": "btcusdt@bookTicker", "data": {"u", "s", "b", "B", "a", "A"}}`` — the spot
  Individual Symbol Book Ticker shape, prices and sizes as 8-decimal text.

Anything else — another path, method or stream, a malformed frame — is answered as Binance would
refuse it (404 / an ``error`` frame) and recorded in :attr:`BinanceSpotEmulator.unexpected`, so a
test can show the client made no call the emulator does not serve.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

_EIGHT = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class SentQuote:
    """One ``bookTicker`` message the emulator pushed (prices in USDT, sizes in BTC)."""

    stream: str
    update_id: int
    bid: Decimal
    bid_size: Decimal
    ask: Decimal
    ask_size: Decimal


def _text(value: float) -> str:
    # Binance sends 8-decimal text; the recorded floats' shortest repr is the recorded value.
    return str(Decimal(repr(float(value))).quantize(_EIGHT))


def _btcusdt_entry(template: dict[str, Any]) -> dict[str, Any]:
    entry = copy.deepcopy(template)
    entry.update({
        "symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT",
        "baseAssetPrecision": 8, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "allowTrailingStop": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
             "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00000100", "maxQty": "9000.00000000",
             "stepSize": "0.00000100"},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
    })
    return entry


class BinanceSpotEmulator:
    """Binance Spot REST + market-data WebSocket on ``127.0.0.1``, quotes from a recording.

    Parameters
    ----------
    shared_data : Path
        The ``shared/data`` folder (``venue_payloads/`` and ``market/`` under it).
    interval_secs : float
        Seconds between two ``bookTicker`` pushes to each subscribed connection.
    fees : tuple[str, str]
        Maker and taker commission rates (fractions as text) ``tradeFee`` answers.

    Attributes
    ----------
    requests : list[str]
        Every HTTP request (``"GET /api/v3/ping"``) and WebSocket frame / stream seen, in order.
    unexpected : list[str]
        Those the emulator does not serve (answered 404 or with an ``error`` frame).
    sent : list[SentQuote]
        Every ``bookTicker`` message pushed.
    """

    SYMBOLS = ("BTCUSDT",)

    def __init__(self, shared_data: Path, *, interval_secs: float = 0.2,
                 fees: tuple[str, str] = ("0.00100000", "0.00100000")) -> None:
        import pandas as pd

        payloads = Path(shared_data) / "venue_payloads" / "binance" / "spot" / "http_json"
        info = json.loads((payloads / "exchange_info_response.json").read_text())
        if not any(s["symbol"] == "BTCUSDT" for s in info["symbols"]):
            info["symbols"].append(_btcusdt_entry(info["symbols"][0]))
        self._exchange_info = info
        self._ping = json.loads((payloads / "ping_response.json").read_text())
        frame = pd.read_parquet(Path(shared_data) / "market" / "binance_spot_btcusdt_quotes_2021-01-08.parquet")
        self._quotes = [(_text(r.bid), _text(r.bid_size), _text(r.ask), _text(r.ask_size))
                        for r in frame.itertuples(index=False)]
        self._interval = interval_secs
        self._fees = fees
        self._lock = threading.Lock()
        self._requests: list[str] = []
        self._unexpected: list[str] = []
        self._sent: list[SentQuote] = []
        self._cursor = 0
        self._update_id = 400_900_217
        self._sockets: dict[web.WebSocketResponse, set[str]] = {}  # open connection → its streams
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._stop_requested: asyncio.Event | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> BinanceSpotEmulator:
        """Start serving on an ephemeral port; return self once it listens.

        Raises
        ------
        RuntimeError
            When the server is not listening within ``timeout`` seconds.
        """
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve_until_stopped(ready))
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                errors.append(exc)
                ready.set()
            finally:
                loop.close()
                self._stopped.set()

        self._thread = threading.Thread(target=run, name="binance-spot-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or errors:
            raise RuntimeError(f"Binance emulator did not start: {errors or 'timeout'}")
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Close every WebSocket, stop listening and join the thread; True when it has ended."""
        if self._loop is None or self._thread is None:
            return True
        if not self._stopped.is_set():
            # An event, not loop.stop(): a stop asked for while the start-up's run_until_complete
            # was still ending would be taken by that run and the loop then served for ever.
            self._loop.call_soon_threadsafe(self._stop_requested.set)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> BinanceSpotEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url_http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url_ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[str]:
        with self._lock:
            return list(self._requests)

    @property
    def unexpected(self) -> list[str]:
        with self._lock:
            return list(self._unexpected)

    @property
    def sent(self) -> list[SentQuote]:
        with self._lock:
            return list(self._sent)

    # -- server ------------------------------------------------------------------------------

    async def _serve_until_stopped(self, ready: threading.Event) -> None:
        self._stop_requested = asyncio.Event()
        await self._serve(ready)
        await self._stop_requested.wait()
        await self._shutdown()

    async def _serve(self, ready: threading.Event) -> None:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/api/v3/ping", self._get_ping)
        app.router.add_get("/api/v3/time", self._get_time)
        app.router.add_get("/api/v3/exchangeInfo", self._get_exchange_info)
        app.router.add_get("/sapi/v1/asset/tradeFee", self._get_trade_fee)
        app.router.add_get("/stream", self._websocket)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/ws/{stream}", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        asyncio.get_running_loop().create_task(self._push_quotes())
        ready.set()

    async def _shutdown(self) -> None:
        for ws in list(self._sockets):
            # Bounded: a client that dropped without a close frame must not hold the stop.
            try:
                await asyncio.wait_for(ws.close(code=1001, message=b"emulator stopping"), timeout=2.0)
            except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                pass
        if self._runner is not None:
            await self._runner.cleanup()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def _note(self, what: str, *, expected: bool = True) -> None:
        with self._lock:
            self._requests.append(what)
            if not expected:
                self._unexpected.append(what)

    @web.middleware
    async def _record(self, request: web.Request, handler):
        what = f"{request.method} {request.path}"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self._note(what, expected=False)
            return web.json_response({"code": -1000, "msg": f"emulator: unexpected {what} ({exc.status})"},
                                     status=exc.status)
        self._note(what, expected=response.status < 400)
        return response

    @staticmethod
    def _error(status: int, code: int, msg: str) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=status)

    async def _get_ping(self, request: web.Request) -> web.Response:
        return web.json_response(self._ping)

    async def _get_time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": int(time.time() * 1000)})

    async def _get_exchange_info(self, request: web.Request) -> web.Response:
        info = dict(self._exchange_info, serverTime=int(time.time() * 1000))
        wanted: list[str] | None = None
        if "symbol" in request.query:
            wanted = [request.query["symbol"]]
        elif "symbols" in request.query:
            try:
                wanted = json.loads(request.query["symbols"])
            except ValueError:
                return self._error(400, -1100, "Illegal characters found in parameter 'symbols'.")
        if wanted is not None:
            by_symbol = {s["symbol"]: s for s in info["symbols"]}
            if any(symbol not in by_symbol for symbol in wanted):
                return self._error(400, -1121, "Invalid symbol.")
            info["symbols"] = [by_symbol[symbol] for symbol in wanted]
        return web.json_response(info)

    async def _get_trade_fee(self, request: web.Request) -> web.Response:
        if not request.headers.get("X-MBX-APIKEY"):
            return self._error(401, -2014, "API-key format invalid.")
        missing = [p for p in ("timestamp", "signature") if p not in request.query]
        if missing:
            return self._error(400, -1102, f"Mandatory parameter '{missing[0]}' was not sent, was empty/null, or malformed.")
        symbols = [request.query["symbol"]] if "symbol" in request.query else list(self.SYMBOLS)
        maker, taker = self._fees
        return web.json_response([{"symbol": s, "makerCommission": maker, "takerCommission": taker}
                                  for s in symbols if s in self.SYMBOLS])

    # -- market-data WebSocket ----------------------------------------------------------------

    def _known_stream(self, stream: str) -> bool:
        return stream in {f"{s.lower()}@bookTicker" for s in self.SYMBOLS}

    def _add_streams(self, ws: web.WebSocketResponse, streams: list[str]) -> None:
        for stream in streams:
            known = self._known_stream(stream)
            self._note(f"WS stream {stream}", expected=known)
            if known:
                self._sockets[ws].add(stream)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)  # timeout: for the client's close frame
        await ws.prepare(request)
        self._sockets[ws] = set()
        initial = request.match_info.get("stream") or request.query.get("streams", "")
        self._add_streams(ws, [s for s in initial.split("/") if s])
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._handle_frame(ws, msg.data)
        finally:
            self._sockets.pop(ws, None)
        return ws

    async def _handle_frame(self, ws: web.WebSocketResponse, text: str) -> None:
        try:
            frame = json.loads(text)
            method, params, request_id = frame["method"], frame.get("params") or [], frame["id"]
        except (ValueError, KeyError, TypeError):
            self._note(f"WS frame {text[:200]}", expected=False)
            await ws.send_str(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}))
            return
        if method == "SUBSCRIBE":
            self._note(f"WS SUBSCRIBE {params}")
            self._add_streams(ws, params)
            await ws.send_str(json.dumps({"result": None, "id": request_id}))
        elif method == "UNSUBSCRIBE":
            self._note(f"WS UNSUBSCRIBE {params}")
            self._sockets[ws].difference_update(params)
            await ws.send_str(json.dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            self._note("WS LIST_SUBSCRIPTIONS")
            await ws.send_str(json.dumps({"result": sorted(self._sockets[ws]), "id": request_id}))
        else:
            self._note(f"WS {method} {params}", expected=False)
            await ws.send_str(json.dumps({"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"},
                                          "id": request_id}))

    async def _push_quotes(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for ws, streams in list(self._sockets.items()):
                for stream in sorted(streams):
                    await self._push(ws, stream)

    async def _push(self, ws: web.WebSocketResponse, stream: str) -> None:
        bid, bid_size, ask, ask_size = self._quotes[self._cursor % len(self._quotes)]
        self._cursor += 1
        self._update_id += 1
        symbol = stream.split("@", 1)[0].upper()
        data = {"u": self._update_id, "s": symbol, "b": bid, "B": bid_size, "a": ask, "A": ask_size}
        with self._lock:  # recorded first: a test reading ``sent`` has every quote the client can have
            self._sent.append(SentQuote(stream=stream, update_id=self._update_id, bid=Decimal(bid),
                                        bid_size=Decimal(bid_size), ask=Decimal(ask), ask_size=Decimal(ask_size)))
        try:
            await ws.send_str(json.dumps({"stream": stream, "data": data}))
        except (ConnectionError, RuntimeError):
            pass  # the client went away between two pushes
