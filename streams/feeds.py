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
one between a publish and the state file's write, publishes nothing twice.

Requests time out after ``DAMPAK_FEED__TIMEOUT_S`` and are tried ``__TRIES`` times with doubling
backoff; a feed that still fails is one warning line, and the next poll tries again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import orjson

from schemas.alerts import InvalidAlert, parse_alerts
from streams.settings import Settings

__all__ = ["BmkgFeed", "PollResult"]

logger = logging.getLogger(__name__)

FEED = b"bmkg"
Fetch = Callable[[str], bytes]
#: event_id, payload, a label for the log, and (earthquakes) the merged TEWS entry.
Bulletin = tuple[str, bytes, str, dict[str, Any] | None]


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:32]


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
        self.state_file = settings.data_dir / "feeds" / "bmkg.json"
        #: event_id -> {"digest": ..., "entry": merged TEWS entry (earthquakes only)}
        self.state: dict[str, dict[str, Any]] = self._load()

    # ------------------------------------------------------------------ state
    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        tmp.replace(self.state_file)

    def recover_from_topic(self) -> int:
        """Take what this connector published from the topic (the state file may lag it by one
        publish); returns how many bulletins were found."""
        from streams.admin import read_topic

        found = 0
        for records in read_topic(self.settings, self.topic):
            for r in records:
                headers = dict(r.headers or [])
                if headers.get("dampak-feed") != FEED or r.key is None or r.value is None:
                    continue
                entry = _tews_entry(r.value)
                self.state[r.key.decode()] = {"digest": headers["dampak-digest"].decode(), "entry": entry}
                found += 1
        return found

    # ------------------------------------------------------------------ fetching
    def _http(self, url: str) -> bytes:
        delay = self.feed.retry_initial_s
        for attempt in range(1, self.feed.tries + 1):
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "dampak-feed"})
                with urllib.request.urlopen(request, timeout=self.feed.timeout_s) as resp:
                    return bytes(resp.read())
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                if attempt == self.feed.tries:
                    raise
                logger.debug("%s: %s; again in %.1fs", url, exc, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _get(self, url: str, result: PollResult) -> bytes | None:
        try:
            return self.fetch(url)
        except Exception as exc:
            reason = getattr(exc, "reason", None) or exc
            logger.warning("bmkg: %s failed after %d tries: %s", url, self.feed.tries, reason)
            result.failed.append(url)
            return None

    # ------------------------------------------------------------------ polling
    def poll(self) -> PollResult:
        """One poll of every feed; publishes, flushes, then records what it published."""
        result = PollResult()
        bulletins: list[Bulletin] = []
        bulletins += self._earthquakes(result)
        bulletins += self._nowcasts(result)
        for event_id, payload, label, entry in bulletins:
            digest = _digest(payload)
            known = self.state.get(event_id)
            if known is not None and known.get("digest") == digest:
                result.unchanged += 1
                continue
            self.producer.send(
                self.topic, key=event_id.encode(), value=payload,
                headers=[("dampak-feed", FEED), ("dampak-digest", digest.encode())],
            )  # fmt: skip
            logger.info("bmkg: published %s (%s): %s", event_id, "revised" if known else "new", label)
            self.state[event_id] = {"digest": digest, "entry": entry}
            result.published.append(event_id)
        if result.published:
            self.producer.flush()
            self._save()
        return result

    def _earthquakes(self, result: PollResult) -> list[Bulletin]:
        merged: dict[str, dict[str, Any]] = {}
        for url in self.feed.bmkg_json_urls:
            body = self._get(url, result)
            if body is None:
                continue
            for entry in _gempa_entries(body):
                try:
                    [alert] = parse_alerts(orjson.dumps(entry), self.settings.contracts.context())
                except (InvalidAlert, ValueError) as exc:
                    logger.warning("bmkg: %s: an entry is not a bulletin (%s)", url, str(exc)[:200])
                    result.invalid += 1
                    continue
                merged[alert.event_id] = {**merged.get(alert.event_id, {}), **entry}
        out: list[Bulletin] = []
        for event_id, entry in merged.items():
            previous = (self.state.get(event_id) or {}).get("entry") or {}
            full = {**previous, **entry}
            payload = orjson.dumps({"Infogempa": {"gempa": full}}, option=orjson.OPT_SORT_KEYS)
            label = f"M{full.get('Magnitude', '?')} {full.get('Wilayah', '')}".strip()
            out.append((event_id, payload, label, full))
        return out

    def _nowcasts(self, result: PollResult) -> list[Bulletin]:
        if not self.feed.bmkg_nowcast_url:
            return []
        index = self._get(self.feed.bmkg_nowcast_url, result)
        if index is None:
            return []
        documents = [index] if _is_cap(index) else []
        for link in [] if documents else _rss_links(index):
            body = self._get(link, result)
            if body is not None:
                documents.append(body)
        out: list[Bulletin] = []
        for xml in documents:
            try:
                alerts = parse_alerts(xml, self.settings.contracts.context())
            except (InvalidAlert, ValueError) as exc:
                logger.warning("bmkg: a nowcast is not a CAP warning (%s)", str(exc)[:200])
                result.invalid += 1
                continue
            out.append((alerts[0].event_id, xml, alerts[0].headline[:120], None))
        return out


def _gempa_entries(body: bytes) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        logger.warning("bmkg: a feed answered with something other than JSON")
        return []
    if isinstance(doc, dict):
        doc = doc.get("Infogempa", doc)
    if isinstance(doc, dict):
        doc = doc.get("gempa", doc)
    entries = doc if isinstance(doc, list) else [doc]
    return [e for e in entries if isinstance(e, dict)]


def _tews_entry(value: bytes) -> dict[str, Any] | None:
    if _is_cap(value):
        return None
    entries = _gempa_entries(value)
    return entries[0] if entries else None


def _is_cap(body: bytes) -> bool:
    return b"urn:oasis:names:tc:emergency:cap:1.2" in body[:2000] and b"<rss" not in body[:2000]


def _rss_links(body: bytes) -> list[str]:
    """The links of an RSS 2.0 feed's items (BMKG's nowcast index)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        logger.warning("bmkg: the nowcast index is not well-formed XML")
        return []
    return [(item.findtext("link") or "").strip() for item in root.iter("item") if item.findtext("link")]


def run_feed(settings: Settings, once: bool = False) -> int:
    """Poll until SIGTERM/SIGINT (or once); returns the exit code."""
    from streams.admin import check_kafka, check_topic_exists, producer
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
