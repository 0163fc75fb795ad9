"""Contract of the ``disaster-alerts`` topic (keyed by ``event_id``), in three payload forms.

1. A BMKG TEWS earthquake bulletin exactly as BMKG publishes it (``{"Infogempa": {"gempa": ...}}``,
   a list under ``gempa``, or a bare ``gempa`` object); every value is an Indonesian-format string.
2. A normalized alert (``Alert`` below).
3. A CAP 1.2 XML warning as BMKG publishes its nowcasts.

``parse_alerts`` detects the form by content and returns normalized ``Alert`` objects.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, cast
from xml.etree import ElementTree

import orjson
from pydantic import Field, StringConstraints, ValidationError, model_validator

from schemas.common import REGION_CODE_RE, Contract, Id, RegionCode, UtcDatetime, describe_validation_error
from schemas.regions import is_known_region, region_by_name

__all__ = [
    "HAZARDS",
    "MAX_ALERTS_PER_MESSAGE",
    "MAX_AREAS",
    "MAX_XML_DEPTH",
    "Alert",
    "AreaImpact",
    "FeltIntensity",
    "Hazard",
    "InvalidAlert",
    "parse_alerts",
]

logger = logging.getLogger(__name__)

Hazard = Literal["earthquake", "flood", "landslide", "volcano", "tsunami", "extreme_weather"]
HAZARDS: tuple[str, ...] = ("earthquake", "flood", "landslide", "volcano", "tsunami", "extreme_weather")
Severity = Literal["low", "medium", "high"]

#: Areas one alert may list (codes, polygons, circles), and places named in text only. A code at
#: any level covers all its villages, so a real alert needs few; the bound keeps the estimate and
#: the forward of the worst alert allowed small (README, *disaster-alerts*).
MAX_AREAS = 5_000
#: Alerts one message may hold: ``<info>`` blocks of a CAP document, items of a BMKG list. CAP
#: writes one ``<info>`` per language; BMKG's lists hold 15 bulletins.
MAX_ALERTS_PER_MESSAGE = 32
_NAME_MAX = 200


class InvalidAlert(ValueError):
    """A payload that is none of the three forms, or a malformed one. The reason names the field
    and never quotes the input (a reason reaches logs, headers and the ``dead_letters`` view)."""


class FeltIntensity(Contract):
    """One place of BMKG's ``Dirasakan``: ``III-IV Kota Bengkulu`` -> mmi_min 3, mmi_max 4."""

    place: str
    mmi_min: Annotated[int, Field(ge=1, le=12)]
    mmi_max: Annotated[int, Field(ge=1, le=12)]


Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class AreaImpact(Contract):
    """An area hazard's area, given by a Kemendagri code at any level (a province, regency or
    district code covers all its villages), or by a shape: a ``polygon`` (latitude, longitude
    points, as CAP writes them) or a ``circle`` (latitude, longitude, radius in km) selects the
    villages whose registry centroid lies inside it. ``name`` is the area's own description."""

    village_code: RegionCode | None = None
    polygon: Annotated[tuple[tuple[Latitude, Longitude], ...], Field(max_length=10_000)] = ()
    circle: tuple[Latitude, Longitude, Annotated[float, Field(gt=0, le=1000)]] | None = None
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    severity: Severity = "medium"
    depth_cm: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _located(self) -> AreaImpact:
        if self.village_code is None and not self.polygon and self.circle is None:
            raise ValueError("an area needs a village_code, a polygon or a circle")
        if self.polygon and len(self.polygon) < 3:
            raise ValueError("a polygon needs at least 3 points")
        return self


class Alert(Contract):
    schema_version: Literal[1] = 1
    event_id: Id
    hazard: Hazard
    issued_at: UtcDatetime
    #: When the event began (earthquake origin time); defaults to ``issued_at``.
    event_time: UtcDatetime | None = None
    revision: Annotated[int, Field(ge=1, lt=2**23)] = 1
    source: Annotated[str, StringConstraints(max_length=64)] = ""
    headline: Annotated[str, StringConstraints(max_length=1000)] = ""
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    magnitude: Annotated[float, Field(ge=0, le=10)] | None = None
    depth_km: Annotated[float, Field(ge=0, le=800)] | None = None
    tsunami: bool = False
    #: A forecast or nowcast (a CAP warning of category ``Met``, or any ``extreme_weather``
    #: alert): it reports no impact, so it takes no untagged field report and joins no incident
    #: unless an operator links it (README, *Incidents*).
    warning: bool = False
    felt: Annotated[tuple[FeltIntensity, ...], Field(max_length=MAX_AREAS)] = ()
    areas: Annotated[tuple[AreaImpact, ...], Field(max_length=MAX_AREAS)] = ()
    #: Areas named in text only (e.g. CAP areaDesc without a Kemendagri geocode).
    area_text: Annotated[
        tuple[Annotated[str, StringConstraints(max_length=_NAME_MAX)], ...], Field(max_length=MAX_AREAS)
    ] = ()

    @model_validator(mode="after")
    def _hazard_fields(self) -> Alert:
        if self.hazard == "earthquake":
            missing = [f for f in ("lat", "lon", "magnitude", "depth_km") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"an earthquake needs {', '.join(missing)}")
        return self

    @property
    def began_at(self) -> datetime:
        return self.event_time or self.issued_at

    @property
    def is_warning(self) -> bool:
        """Whether the alert predicts rather than reports: a warning, or a weather alert."""
        return self.warning or self.hazard == "extreme_weather"


# --------------------------------------------------------------------------- BMKG TEWS
_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "mei": 5, "jun": 6,
    "jul": 7, "agu": 8, "agt": 8, "sep": 9, "okt": 10, "nov": 11, "des": 12,
}  # fmt: skip
_ZONES = {"WIB": 7, "WITA": 8, "WIT": 9}
_ROMAN = {
    "I": 1,
    "II": 2,
    "III": 3,
    "IV": 4,
    "V": 5,
    "VI": 6,
    "VII": 7,
    "VIII": 8,
    "IX": 9,
    "X": 10,
    "XI": 11,
    "XII": 12,
}
_FELT = re.compile(r"^\s*([IVX]+)(?:\s*-\s*([IVX]+))?\s+(.+?)\s*$")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")


def _bmkg_time(g: dict[str, Any]) -> datetime:
    if g.get("DateTime"):
        try:
            return datetime.fromisoformat(str(g["DateTime"]).replace("Z", "+00:00")).astimezone(UTC)
        except (ValueError, OverflowError):
            raise InvalidAlert("BMKG bulletin: DateTime is not an ISO 8601 datetime in range") from None
    # Older feeds: local date and time, e.g. "9 Jan 2024" and "20:17:26 WIB".
    try:
        day, month, year = str(g["Tanggal"]).split()
        clock, zone = str(g["Jam"]).split()
        local = datetime.strptime(
            f"{year}-{_MONTHS[month[:3].lower()]:02d}-{int(day):02d} {clock}", "%Y-%m-%d %H:%M:%S"
        )
        return local.replace(tzinfo=timezone(timedelta(hours=_ZONES[zone.upper()]))).astimezone(UTC)
    except (ValueError, KeyError, OverflowError):
        raise InvalidAlert("BMKG bulletin: Tanggal and Jam are not a date and a WIB/WITA/WIT time") from None


def _felt(text: str) -> list[FeltIntensity]:
    if text.strip() == "-":
        return []  # BMKG's "-": the event was not felt; the bulletin stands, with no felt places.
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _FELT.match(part)
        if m is None or m.group(1) not in _ROMAN or (m.group(2) and m.group(2) not in _ROMAN):
            raise InvalidAlert("Dirasakan: an entry is not 'MMI[-MMI] place' (e.g. 'III-IV Kota Bengkulu')")
        low = _ROMAN[m.group(1)]
        out.append(
            FeltIntensity(place=m.group(3), mmi_min=low, mmi_max=_ROMAN[m.group(2)] if m.group(2) else low)
        )
    return out


def _bmkg_alert(g: dict[str, Any], context: dict[str, Any] | None) -> Alert:
    try:
        when = _bmkg_time(g)
        lat_s, lon_s = str(g["Coordinates"]).split(",")
        depth = _NUMBER.search(str(g["Kedalaman"]))
        if depth is None:
            raise InvalidAlert("Kedalaman: no number of km")
        potensi = str(g.get("Potensi", "")).lower()
        fields = {
            "event_id": f"bmkg-{when:%Y%m%d%H%M%S}",
            "hazard": "earthquake",
            "issued_at": when,
            "event_time": when,
            "source": "bmkg",
            "headline": str(g.get("Wilayah", ""))[:1000],
            "lat": float(lat_s),
            "lon": float(lon_s),
            "magnitude": float(str(g["Magnitude"]).replace(",", ".")),
            "depth_km": float(depth.group().replace(",", ".")),
            "tsunami": "berpotensi tsunami" in potensi and "tidak" not in potensi,
            "felt": tuple(_felt(str(g.get("Dirasakan", "")))),
        }
        return Alert.model_validate(fields, context=context)
    except KeyError as exc:
        raise InvalidAlert(f"BMKG bulletin: missing {_field_name(exc.args[0])}") from exc
    except InvalidAlert:
        raise
    except ValidationError as exc:
        raise InvalidAlert(f"BMKG bulletin: {describe_validation_error(exc)}") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidAlert("BMKG bulletin: Coordinates or Magnitude is not a number") from exc


_BMKG_FIELDS = ("DateTime", "Tanggal", "Jam", "Coordinates", "Magnitude", "Kedalaman", "Wilayah", "Potensi")


def _field_name(name: object) -> str:
    # A KeyError from a lookup names a field we asked for; never echo anything else.
    return str(name) if name in _BMKG_FIELDS else "a field"


# --------------------------------------------------------------------------- CAP 1.2
_CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
_CAP_SEVERITY: dict[str, Severity] = {"extreme": "high", "severe": "high", "moderate": "medium"}
_XML_SLICE = 32 * 1024
#: Elements nested in a CAP document at most (CAP 1.2 itself nests five).
MAX_XML_DEPTH = 32


def _cap_alerts(xml: bytes, context: dict[str, Any] | None) -> list[Alert]:
    try:
        # Fed in slices: one call over a whole 1 MB document holds the interpreter for its length,
        # so a thread parsing it would stop every other (the event loop) as long.
        # Its depth is counted as it is read: CAP nests five elements deep (alert, info, area,
        # geocode, value), and a document nested thousands deep is refused before it is built.
        parser: ElementTree.XMLPullParser[ElementTree.Element] = ElementTree.XMLPullParser(
            events=("start", "end")
        )
        depth = deepest = 0
        first: ElementTree.Element | None = None
        for start in range(0, len(xml), _XML_SLICE):
            parser.feed(xml[start : start + _XML_SLICE])
            for event, element in cast(Iterator[tuple[str, ElementTree.Element]], parser.read_events()):
                depth += 1 if event == "start" else -1
                deepest = max(deepest, depth)
                first = element if first is None else first
            if deepest > MAX_XML_DEPTH:
                raise InvalidAlert(f"CAP: XML nested deeper than {MAX_XML_DEPTH} elements")
        parser.close()
        if first is None:
            raise InvalidAlert("CAP: no root element")
        root = first
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise InvalidAlert(f"CAP: not well-formed XML (line {line}, column {column})") from exc
    if root.tag != f"{_CAP}alert":
        raise InvalidAlert("CAP: root element is not a CAP 1.2 <alert>")

    def text(node: ElementTree.Element, name: str) -> str:
        return (node.findtext(f"{_CAP}{name}") or "").strip()

    identifier, sent = text(root, "identifier"), text(root, "sent")
    if not identifier or not sent:
        raise InvalidAlert("CAP: identifier and sent are required")
    infos = root.findall(f"{_CAP}info")
    if len(infos) > MAX_ALERTS_PER_MESSAGE:
        raise InvalidAlert(f"CAP: {len(infos)} <info> blocks, at most {MAX_ALERTS_PER_MESSAGE}")
    alerts = []
    for i, info in enumerate(infos):
        event = text(info, "event").lower()
        # BMKG's nowcasts are meteorological warnings (category Met): forecasts, not impact.
        warning = text(info, "category").lower() == "met"
        hazard: Hazard = "flood" if ("banjir" in event or "flood" in event) else "extreme_weather"
        severity = _CAP_SEVERITY.get(text(info, "severity").lower(), "low")
        areas, area_text = [], []
        for area in info.findall(f"{_CAP}area"):
            found = _cap_area(area, severity)
            areas += found
            if not found and text(area, "areaDesc"):
                area_text.append(text(area, "areaDesc")[:_NAME_MAX])
            # Stop at the bound, before validating what would be refused anyway.
            if len(areas) > MAX_AREAS or len(area_text) > MAX_AREAS:
                raise InvalidAlert(f"CAP: an <info> block has more than {MAX_AREAS} areas")
        onset = text(info, "onset") or text(info, "effective")
        try:
            alerts.append(
                Alert.model_validate_json(
                    orjson.dumps(
                        {
                            "event_id": f"cap-{identifier}" + (f"-{i}" if i else ""),
                            "hazard": hazard,
                            "issued_at": sent,
                            "event_time": onset or None,
                            "source": text(root, "sender")[:64] or "cap",
                            "headline": (text(info, "headline") or text(info, "event"))[:1000],
                            "areas": [a.model_dump(exclude_defaults=True) for a in areas],
                            "area_text": area_text,
                            "warning": warning,
                        }
                    ),
                    context=context,
                )
            )
        except ValidationError as exc:
            raise InvalidAlert(f"CAP: {describe_validation_error(exc)}") from exc
    if not alerts:
        raise InvalidAlert("CAP: no <info> block")
    return alerts


def _cap_area(area: ElementTree.Element, severity: Severity) -> list[AreaImpact]:
    """The areas one CAP ``<area>`` gives: its Kemendagri geocodes; else its polygons and circles
    (BMKG's nowcasts draw their areas); else a district or regency its ``areaDesc`` names
    unambiguously. An empty list when none of these locates it (it is kept as text)."""
    desc = (area.findtext(f"{_CAP}areaDesc") or "").strip()
    codes = [(g.findtext(f"{_CAP}value") or "").strip() for g in area.findall(f"{_CAP}geocode")]
    coded = [c for c in codes if REGION_CODE_RE.match(c) and is_known_region(c)]
    if coded:
        return [AreaImpact(village_code=c, severity=severity, name=desc[:200]) for c in coded]
    shapes: list[AreaImpact] = []
    for polygon in area.findall(f"{_CAP}polygon"):
        points = _cap_points(polygon.text or "")
        if len(points) >= 3:
            shapes.append(AreaImpact(polygon=tuple(points), severity=severity, name=desc[:200]))
    for circle in area.findall(f"{_CAP}circle"):
        # CAP 1.2: "lat,lon radius" with the radius in km.
        centre, _, radius = (circle.text or "").strip().partition(" ")
        point = _cap_points(centre)
        try:
            if point and float(radius) > 0:
                shapes.append(
                    AreaImpact(circle=(*point[0], float(radius)), severity=severity, name=desc[:200])
                )
        except (ValueError, ValidationError):
            pass
    if shapes:
        return shapes
    code = region_by_name(desc) if desc else None
    return [AreaImpact(village_code=code, severity=severity, name=desc[:200])] if code else []


def _cap_points(text: str) -> list[tuple[float, float]]:
    """CAP's "lat,lon lat,lon ..." (WGS 84); points out of range are dropped."""
    points = []
    for pair in text.split():
        lat, _, lon = pair.partition(",")
        try:
            la, lo = float(lat), float(lon)
        except ValueError:
            continue
        if -90 <= la <= 90 and -180 <= lo <= 180:
            points.append((la, lo))
    return points


# --------------------------------------------------------------------------- detection
def parse_alerts(payload: bytes, context: dict[str, Any] | None = None) -> list[Alert]:
    """Normalize one message of any of the three forms. Raises InvalidAlert or ValidationError.

    ``context`` is pydantic's validation context (datetime bounds, see ``schemas.common``).
    """
    head = payload.lstrip()[:1]
    if head == b"<":
        return _cap_alerts(payload, context)
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidAlert(f"neither JSON nor XML (invalid JSON at char {exc.pos})") from exc
    if isinstance(doc, dict) and "Infogempa" in doc:
        doc = doc["Infogempa"]
    if isinstance(doc, dict) and "gempa" in doc:
        doc = doc["gempa"]
    if isinstance(doc, dict) and "Magnitude" in doc:
        return [_bmkg_alert(doc, context)]
    if isinstance(doc, list) and doc and all(isinstance(g, dict) and "Magnitude" in g for g in doc):
        if len(doc) > MAX_ALERTS_PER_MESSAGE:
            raise InvalidAlert(f"BMKG list: {len(doc)} bulletins, at most {MAX_ALERTS_PER_MESSAGE}")
        return [_bmkg_alert(g, context) for g in doc]
    if isinstance(doc, dict):
        return [Alert.model_validate_json(payload, context=context)]
    raise InvalidAlert("not a BMKG bulletin, a normalized alert or a CAP 1.2 document")
