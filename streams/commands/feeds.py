"""``dampak feed bmkg``: BMKG's public feeds into ``disaster-alerts``, each bulletin once.

Every ``DAMPAK_FEED__INTERVAL_S`` the connector polls BMKG's TEWS JSON feeds (the latest
earthquake, the latest M5+ list, the felt list) and its CAP nowcast index. An earthquake in
several feeds is merged into one bulletin (the felt list adds ``Dirasakan``, the M5+ list
``Potensi``), over what was published for it before, so a bulletin that drops off one feed loses
nothing. A bulletin is published, keyed by its ``event_id``, when it is new or its content
changed (a revision); otherwise nothing is sent.

What was published is known from two places: ``<data dir>/feeds/bmkg.json``, written after the
producer has flushed, and the ``disaster-alerts`` topic itself, whose records from this connector
carry the headers ``dampak-feed`` and ``dampak-digest``. At start both are read, so a restart, even
one between a publish and the state file's write, publishes nothing twice. A record of either that
is not what this connector writes is skipped with a warning.

Nothing fetched is trusted: only http(s) URLs are opened (configured, linked from the RSS, or
redirected to); a fetch reads at most ``__MAX_BYTES`` and ends at ``__DEADLINE_S``, tries and
backoff included; XML that declares a DTD is refused before it is parsed (so no entity is ever
expanded); and a feed yields at most ``__MAX_ITEMS`` entries or links. Each refusal is one warning
line, and the next poll tries again.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import re
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from itertools import chain
from typing import IO, Any
from xml.etree import ElementTree
from xml.parsers import expat

import orjson

from schemas.alerts import InvalidAlert, parse_alerts
from streams.settings import FeedSettings, Settings

__all__ = ["BmkgFeed", "FetchError", "PollResult", "cmd_feed"]

logger = logging.getLogger(__name__)

FEED = b"bmkg"
Fetch = Callable[[str], bytes]
#: event_id, payload, a label for the log, and (earthquakes) the merged TEWS entry.
Bulletin = tuple[str, bytes, str, dict[str, Any] | None]

_DIGEST = re.compile(r"[0-9a-f]{32}")
#: Redirects followed per fetch (urllib's default is 10; BMKG needs at most one, http -> https).
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:32]


class FetchError(Exception):
    """A fetch that failed (after its tries) or was refused; its text is safe for a log line."""


class _Expired(Exception):
    """The fetch's deadline passed (raised from SIGALRM, or between reads)."""


@dataclass
class PollResult:
    published: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)
    invalid: int = 0


class BmkgFeed:
    """Polls BMKG and publishes what is new or changed. ``producer`` is a kafka-python producer."""

    def __init__(self, settings: Settings, producer: Any, topic: str, fetch: Fetch | None = None) -> None:
        self.settings = settings
        self.feed = settings.feed
        self.producer = producer
        self.topic = topic
        self.fetch = fetch or self._http
        # Only http(s) handlers: a file:, ftp: or data: URL has nothing to open it.
        self._opener = urllib.request.OpenerDirector()
        for handler in (
            urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
            _HttpRedirects(), urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor(),
        ):  # fmt: skip
            self._opener.add_handler(handler)
        self.state_file = settings.data_dir / "feeds" / "bmkg.json"
        #: event_id -> {"digest": ..., "entry": merged TEWS entry (earthquakes only)}
        self.state: dict[str, dict[str, Any]] = self._load()

    # ------------------------------------------------------------------ state
    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            doc = orjson.loads(self.state_file.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("bmkg: %s is unreadable (%s); the topic tells what was published", self.state_file,
                           _printable(str(exc)))  # fmt: skip
            return {}
        if not isinstance(doc, dict):
            logger.warning("bmkg: %s is not an object; the topic tells what was published", self.state_file)
            return {}
        state = {k: rec for k, v in doc.items() if (rec := _state_record(k, v)) is not None}
        if len(state) < len(doc):
            logger.warning("bmkg: skipped %d malformed records of %s", len(doc) - len(state), self.state_file)
        return state

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.state))
        tmp.replace(self.state_file)

    def recover_from_topic(self) -> int:
        """Take what this connector published from the topic (the state file may lag it by one
        publish); returns how many bulletins were found. A record with the connector's header that
        it did not write (no key, no digest, or a digest that is not its value's) is skipped with
        a warning: anyone may produce to the topic."""
        from streams.ops.admin import read_topic

        found = 0
        for records in read_topic(self.settings, self.topic):
            for r in records:
                headers = dict(r.headers or [])
                if headers.get("dampak-feed") != FEED:
                    continue
                known = _topic_record(r.key, r.value, headers.get("dampak-digest"))
                if isinstance(known, str):
                    logger.warning("bmkg: skipped a malformed record on %s (partition %s, offset %s): %s",
                                   self.topic, r.partition, r.offset, known)  # fmt: skip
                    continue
                event_id, record = known
                self.state[event_id] = record
                found += 1
        return found

    # ------------------------------------------------------------------ fetching
    def _http(self, url: str) -> bytes:
        """GET ``url``: at most ``max_bytes``, within ``deadline_s`` over every try, following
        only http(s) redirects. Network errors and HTTP errors are tried again (``tries``, doubling
        backoff); a refusal is not. Raises FetchError."""
        deadline = time.monotonic() + self.feed.deadline_s
        try:
            with _alarm(self.feed.deadline_s):
                return self._attempts(url, deadline)
        except _Expired:
            raise FetchError(
                f"failed: no complete answer within the {self.feed.deadline_s:g}s deadline"
            ) from None

    def _attempts(self, url: str, deadline: float) -> bytes:
        delay = self.feed.retry_initial_s
        for attempt in range(1, self.feed.tries + 1):
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "dampak-feed"})
                timeout = max(0.001, min(self.feed.timeout_s, deadline - time.monotonic()))
                with self._opener.open(request, timeout=timeout) as resp:
                    return _read_capped(resp, deadline, self.feed)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                if attempt == self.feed.tries:
                    raise FetchError(f"failed after {attempt} tries: {reason}") from exc
                if time.monotonic() + delay >= deadline:
                    raise _Expired from exc
                logger.debug("%s: %s; again in %.1fs", _shown_url(url), _printable(str(reason)), delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _get(self, url: str, result: PollResult) -> bytes | None:
        try:
            if not _is_http(url):
                raise FetchError("refused: only http and https URLs are fetched")
            return self.fetch(url)
        except Exception as exc:
            logger.warning("bmkg: %s %s", _shown_url(url), _printable(str(exc), 300))
            result.failed.append(url)
            return None

    # ------------------------------------------------------------------ polling
    def poll(self) -> PollResult:
        """One poll of every feed; publishes, flushes, then records what it published."""
        from kafka.errors import MessageSizeTooLargeError

        result = PollResult()
        # Lazily: a nowcast is published before the next one is fetched, so at most one document
        # is held at a time.
        for event_id, payload, label, entry in chain(self._earthquakes(result), self._nowcasts(result)):
            digest = _digest(payload)
            known = self.state.get(event_id)
            if known is not None and known.get("digest") == digest:
                result.unchanged += 1
                continue
            try:
                self.producer.send(
                    self.topic, key=event_id.encode(), value=payload,
                    headers=[("dampak-feed", FEED), ("dampak-digest", digest.encode())],
                )  # fmt: skip
            except MessageSizeTooLargeError:
                logger.warning("bmkg: %s (%d bytes) is larger than the producer accepts; not published",
                               _printable(event_id), len(payload))  # fmt: skip
                result.invalid += 1
                continue
            logger.info(
                "bmkg: published %s (%s): %s", _printable(event_id), "revised" if known else "new", label
            )
            self.state[event_id] = {"digest": digest, "entry": entry}
            result.published.append(event_id)
        if result.published:
            self.producer.flush()
            self._save()
        return result

    def _earthquakes(self, result: PollResult) -> Iterator[Bulletin]:
        merged: dict[str, dict[str, Any]] = {}
        for url in self.feed.bmkg_json_urls:
            body = self._get(url, result)
            entries = None if body is None else _gempa_entries(body)
            if body is not None and entries is None:
                logger.warning("bmkg: %s answered with something other than JSON", _shown_url(url))
                result.invalid += 1
            if len(entries or ()) > self.feed.max_items:
                logger.warning("bmkg: %s lists %d entries; the first %d are read", _shown_url(url),
                               len(entries or ()), self.feed.max_items)  # fmt: skip
            invalid, first_reason = 0, ""
            for entry in (entries or [])[: self.feed.max_items]:
                try:
                    [alert] = parse_alerts(orjson.dumps(entry), self.settings.contracts.context())
                # orjson's JSONEncodeError (an entry nested deeper than it writes) is a TypeError.
                except (InvalidAlert, ValueError, TypeError) as exc:
                    invalid, first_reason = invalid + 1, first_reason or str(exc)
                    continue
                merged[alert.event_id] = _merge(merged.get(alert.event_id, {}), entry)
            if invalid:
                logger.warning("bmkg: %s: %d entries are not bulletins (%s)", _shown_url(url), invalid,
                               _printable(first_reason))  # fmt: skip
                result.invalid += invalid
        for event_id, entry in merged.items():
            full = _merge((self.state.get(event_id) or {}).get("entry") or {}, entry)
            payload = orjson.dumps({"Infogempa": {"gempa": full}}, option=orjson.OPT_SORT_KEYS)
            label = f"M{full.get('Magnitude', '?')} {full.get('Wilayah', '')}".strip()
            yield event_id, payload, _printable(label, 120), full

    def _nowcasts(self, result: PollResult) -> Iterator[Bulletin]:
        url = self.feed.bmkg_nowcast_url
        index = self._get(url, result) if url else None
        if index is None:
            return
        if _is_cap(index):
            documents: Iterator[tuple[str, bytes | None]] = iter([(url, index)])
        else:
            links = self._rss_links(url, index)
            documents = ((link, self._get(link, result)) for link in links)
        for source, xml in documents:
            if xml is None:
                continue
            try:
                _refuse_dtd(xml)
                alerts = parse_alerts(xml, self.settings.contracts.context())
            except (InvalidAlert, ValueError) as exc:
                logger.warning("bmkg: %s is not a CAP warning (%s)", _shown_url(source), _printable(str(exc)))
                result.invalid += 1
                continue
            yield alerts[0].event_id, xml, _printable(alerts[0].headline, 120), None

    def _rss_links(self, url: str, body: bytes) -> list[str]:
        """The links of an RSS 2.0 feed's items (BMKG's nowcast index), at most ``max_items``."""
        try:
            _refuse_dtd(body)
            root = ElementTree.fromstring(body)
        except (ValueError, ElementTree.ParseError) as exc:
            logger.warning(
                "bmkg: the nowcast index %s is refused (%s)", _shown_url(url), _printable(str(exc))
            )
            return []
        links = list(dict.fromkeys(
            (item.findtext("link") or "").strip() for item in root.iter("item") if item.findtext("link")
        ))  # fmt: skip
        if len(links) > self.feed.max_items:
            logger.warning("bmkg: the nowcast index lists %d links; the first %d are followed", len(links),
                           self.feed.max_items)  # fmt: skip
        return links[: self.feed.max_items]


class _HttpRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to http(s) (urllib's own allows ftp:), at most MAX_REDIRECTS."""

    max_redirections = MAX_REDIRECTS

    def http_error_302(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Message
    ) -> Any:
        target = urllib.parse.urljoin(req.full_url, headers.get("location") or headers.get("uri") or "")
        if not _is_http(target):
            fp.close()
            raise FetchError(f"refused: redirected to {_shown_url(target)}, not an http(s) URL")
        return super().http_error_302(req, fp, code, msg, headers)  # type: ignore[arg-type]

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raises _Expired after ``seconds``. A socket timeout bounds one read only, so a server that
    drips a byte at a time (status line and headers included) would otherwise never be cut off.
    Signals reach the main thread only; elsewhere the deadline is checked between reads."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _read_capped(resp: Any, deadline: float, feed: FeedSettings) -> bytes:
    """The body, refused past ``max_bytes`` (announced or read) or past the deadline."""
    length = getattr(resp, "length", None)
    if isinstance(length, int) and length > feed.max_bytes:
        raise FetchError(f"refused: {length} bytes announced, more than the {feed.max_bytes} accepted")
    chunks: list[bytes] = []
    size = 0
    # read1 returns whatever one read brings, so the deadline is checked however slowly bytes come.
    while chunk := resp.read1(_CHUNK):
        size += len(chunk)
        if size > feed.max_bytes:
            raise FetchError(f"refused: the body is larger than the {feed.max_bytes} bytes accepted")
        if time.monotonic() > deadline:
            raise _Expired
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_dtd(xml: bytes) -> None:
    """Raises ValueError for XML that is not well-formed or declares a DTD. CAP and RSS need none,
    and refusing it before ElementTree sees the document means no entity (a billion laughs, an
    external file) is ever expanded, whatever expat's own limits are."""

    def refuse(*_: object) -> None:
        raise ValueError("it declares a DTD; entities are never expanded")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML (line {exc.lineno}, column {exc.offset})") from None


def _state_record(event_id: object, record: object) -> dict[str, Any] | None:
    """A state-file record as this connector writes it, or None."""
    if not isinstance(event_id, str) or not event_id or not isinstance(record, dict):
        return None
    digest, entry = record.get("digest"), record.get("entry")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest) or not isinstance(entry, dict | None):
        return None
    return {"digest": digest, "entry": entry}


def _topic_record(
    key: bytes | None, value: bytes | None, digest: bytes | None
) -> tuple[str, dict[str, Any]] | str:
    """(event_id, state record) of a record this connector published, or why it is not one."""
    if key is None or value is None:
        return "no key or no value"
    if digest is None:
        return "no dampak-digest header"
    if digest != _digest(value).encode():
        return "its dampak-digest is not its value's"
    try:
        event_id = key.decode()
    except UnicodeDecodeError:
        return "its key is not UTF-8"
    entries = None if _is_cap(value) else _gempa_entries(value)
    return event_id, {"digest": digest.decode(), "entry": entries[0] if entries else None}


def _merge(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    # BMKG writes "-" for nothing (an unfelt event's Dirasakan): it never erases what another feed
    # or an earlier bulletin said.
    return {**base, **{k: v for k, v in new.items() if not (v == "-" and k in base)}}


def _gempa_entries(body: bytes) -> list[dict[str, Any]] | None:
    """The ``gempa`` entries of a TEWS feed; None when the body is not JSON."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict):
        doc = doc.get("Infogempa", doc)
    if isinstance(doc, dict):
        doc = doc.get("gempa", doc)
    entries = doc if isinstance(doc, list) else [doc]
    return [e for e in entries if isinstance(e, dict)]


def _is_cap(body: bytes) -> bool:
    return b"urn:oasis:names:tc:emergency:cap:1.2" in body[:2000] and b"<rss" not in body[:2000]


def _is_http(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _shown_url(url: str) -> str:
    """A URL for a log line: without credentials or query (tokens ride there), printable, cut."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        shown = urllib.parse.urlunsplit((parts.scheme, host, parts.path, "..." if parts.query else "", ""))
    except ValueError:
        shown = "an unparsable URL"
    return _printable(shown)


def _printable(text: str, limit: int = 200) -> str:
    """Text from the network, safe for one log line: cut, with control and non-ASCII escaped."""
    return text[:limit].encode("unicode_escape").decode("ascii")


def run_feed(settings: Settings, once: bool = False) -> int:
    """Poll until SIGTERM/SIGINT (or once); returns the exit code."""
    from streams.ops.admin import check_kafka, check_topic_exists, producer
    from streams.topics import Topic, physical_name

    topic = physical_name(Topic.DISASTER_ALERTS, settings)
    check_kafka(settings)
    check_topic_exists(settings, topic)
    prod = producer(settings)
    feed = BmkgFeed(settings, prod, topic)
    feed.recover_from_topic()
    logger.info("bmkg: %d bulletins known (state file and topic); polling every %.0fs", len(feed.state),
                settings.feed.interval_s)  # fmt: skip
    try:
        while True:
            started = time.monotonic()
            result = feed.poll()
            print(
                f"bmkg: {len(result.published)} published, {result.unchanged} unchanged"
                + (f", {len(result.failed)} feeds failed" if result.failed else ""),
                flush=True,
            )
            if once:
                return 1 if result.failed and not result.published and not result.unchanged else 0
            time.sleep(max(0.0, settings.feed.interval_s - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return 0
    finally:
        prod.close()


def cmd_feed(settings: Settings, args: argparse.Namespace) -> int:

    return run_feed(settings, once=args.once)
