"""Google Places API (New), as the data endpoints call it, under `{sim}/google-maps/v1`:

- `POST /places:searchText`   (`textQuery`, `pageSize` 1-20, `minRating` 0-5, ...)
- `POST /places:searchNearby` (`locationRestriction.circle`, radius up to 50,000 m)
- `GET /places/{id}`          (an id starting `ChIJ` exists; any other is NOT_FOUND)

`X-Goog-Api-Key` and `X-Goog-FieldMask` are required, and only the fields the mask names come
back, as Google bills and answers. Errors use Google's `{"error": {code, message, status}}`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from farebox.sim.admission import admit_call
from farebox.sim.data_common import CITIES, bounded, empty, has_header, json_reply, number, slug
from farebox.sim.openai_base import read_json_object

_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
}


def google_error(status: int, message: str) -> web.Response:
    code = _STATUS.get(status, "UNAVAILABLE" if status >= 500 else "FAILED_PRECONDITION")
    return json_reply({"error": {"code": status, "message": message, "status": code}}, status)


def _place(name: str, n: int, lat: float, lng: float, city: str, state: str) -> dict[str, Any]:
    """Every field a place can have; the field mask picks what is sent."""
    place_id = "ChIJ" + f"{n:020x}"[:20]
    rating = 3.0 + (n % 21) / 10
    return {
        "id": place_id,
        "displayName": {"text": name, "languageCode": "en"},
        "formattedAddress": f"{100 + n % 900} Main St, {city}, {state} 98101, USA",
        "shortFormattedAddress": f"{100 + n % 900} Main St, {city}",
        "location": {
            "latitude": round(lat + (n % 100) / 10000, 6),
            "longitude": round(lng - (n % 70) / 10000, 6),
        },
        "types": ["cafe", "food", "point_of_interest", "establishment"],
        "primaryType": "cafe",
        "businessStatus": "OPERATIONAL",
        "googleMapsUri": f"https://maps.google.com/?cid={n % 10**18}",
        "plusCode": {"globalCode": f"84VV{n % 10000:04d}+XX"},
        "utcOffsetMinutes": -420,
        "rating": round(rating, 1),
        "userRatingCount": 10 + n % 2000,
        "nationalPhoneNumber": f"(206) 555-{n % 10000:04d}",
        "internationalPhoneNumber": f"+1 206-555-{n % 10000:04d}",
        "websiteUri": f"https://{slug(name)}.example.com/",
        "regularOpeningHours": {
            "openNow": n % 3 != 0,
            "weekdayDescriptions": [
                f"{d}: 7:00 AM – 6:00 PM" for d in ("Monday", "Tuesday", "Wednesday")
            ],
        },
        "currentOpeningHours": {"openNow": n % 3 != 0},
        "priceLevel": "PRICE_LEVEL_MODERATE",
        "priceRange": {"startPrice": {"currencyCode": "USD", "units": "5"}},
        "editorialSummary": {
            "text": f"Neighbourhood spot known for {slug(name, 20).replace('-', ' ')}."
        },
        "reviews": [
            {
                "rating": 5,
                "text": {"text": f"Great {name}.", "languageCode": "en"},
                "authorAttribution": {"displayName": "A. Reviewer"},
                "relativePublishTimeDescription": "a week ago",
            }
        ],
        "photos": [{"name": f"places/{place_id}/photos/p1", "widthPx": 1024, "heightPx": 768}],
        "accessibilityOptions": {"wheelchairAccessibleEntrance": True},
        "parkingOptions": {"freeStreetParking": True},
        "paymentOptions": {"acceptsCreditCards": True, "acceptsNfc": True},
        "allowsDogs": n % 2 == 0,
        "goodForChildren": True,
        "outdoorSeating": n % 2 == 1,
        "reservable": False,
        "takeout": True,
        "delivery": n % 4 == 0,
        "dineIn": True,
        "servesVegetarianFood": True,
    }


def _masked(place: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    if "*" in fields:
        return place
    return {k: v for k, v in place.items() if k in fields}


def _mask(request: web.Request) -> tuple[set[str], set[str]] | web.Response:
    """(top-level fields, fields of each place) from X-Goog-FieldMask, or the 400."""
    raw = request.headers.get("X-Goog-FieldMask", "")
    if not raw.strip():
        return google_error(
            400,
            "FieldMask is a required parameter. See how to provide it at "
            "https://developers.google.com/maps/documentation/places/web-service/choose-fields",
        )
    top, inner = set(), set()
    for item in (p.strip() for p in raw.split(",")):
        if item.startswith("places."):
            inner.add(item.removeprefix("places."))
        elif item == "*":
            top.add("*")
            inner.add("*")
        elif item:
            top.add(item)
    return top, inner


async def _start(
    request: web.Request, endpoint: str
) -> tuple[dict[str, Any], set[str], set[str]] | web.Response:
    if not has_header(request, "X-Goog-Api-Key"):
        return google_error(403, "The request is missing a valid API key.")
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return google_error(400, "Invalid JSON payload received.")
    denied = await admit_call(request, body, endpoint, google_error)
    if denied is not None:
        return denied
    mask = _mask(request)
    if isinstance(mask, web.Response):
        return mask
    return body, mask[0], mask[1]


def _results(
    seed: str, count: int, lat: float, lng: float, city: str, state: str, inner: set[str]
) -> list[dict[str, Any]]:
    return [
        _masked(_place(f"{seed.title()} {i}", number(seed, i), lat, lng, city, state), inner)
        for i in range(1, count + 1)
    ]


async def search_text(request: web.Request) -> web.StreamResponse:
    started = await _start(request, "data:google-maps/searchText")
    if isinstance(started, web.Response):
        return started
    body, top, inner = started
    query = body.get("textQuery")
    if not isinstance(query, str) or not query.strip():
        return google_error(400, "textQuery is required.")
    count = bounded(body.get("pageSize", body.get("maxResultCount")), 20, 1, 20)
    if count is None:
        return google_error(400, "pageSize must be between 1 and 20.")
    rating = body.get("minRating")
    if rating is not None and (not isinstance(rating, int | float) or not 0 <= rating <= 5):
        return google_error(400, "minRating must be between 0 and 5.")
    if empty(query):
        return json_reply({})
    city, state, lat, lng = CITIES[number(query) % len(CITIES)]
    answer: dict[str, Any] = {"places": _results(query, count, lat, lng, city, state, inner)}
    if "nextPageToken" in top or "*" in top:
        answer["nextPageToken"] = f"page2-{slug(query)}"
    return json_reply(answer)


async def search_nearby(request: web.Request) -> web.StreamResponse:
    started = await _start(request, "data:google-maps/searchNearby")
    if isinstance(started, web.Response):
        return started
    body, _top, inner = started
    circle = (
        (body.get("locationRestriction") or {}).get("circle")
        if isinstance(body.get("locationRestriction"), dict)
        else None
    )
    center = circle.get("center") if isinstance(circle, dict) else None
    lat = center.get("latitude") if isinstance(center, dict) else None
    lng = center.get("longitude") if isinstance(center, dict) else None
    radius = circle.get("radius") if isinstance(circle, dict) else None
    if (
        not isinstance(lat, int | float)
        or not isinstance(lng, int | float)
        or not -90 <= lat <= 90
        or not -180 <= lng <= 180
    ):
        return google_error(
            400, "locationRestriction.circle.center must have a latitude and a longitude."
        )
    if not isinstance(radius, int | float) or not 0 < radius <= 50000:
        return google_error(
            400, "locationRestriction.circle.radius must be greater than 0 and at most 50000."
        )
    count = bounded(body.get("maxResultCount"), 20, 1, 20)
    if count is None:
        return google_error(400, "maxResultCount must be between 1 and 20.")
    types = body.get("includedTypes") or ["place"]
    if empty(*types):
        return json_reply({})
    seed = f"{types[0]} near {lat:.3f},{lng:.3f}"
    return json_reply(
        {"places": _results(seed, count, float(lat), float(lng), "Seattle", "WA", inner)}
    )


async def details(request: web.Request) -> web.StreamResponse:
    if not has_header(request, "X-Goog-Api-Key"):
        return google_error(403, "The request is missing a valid API key.")
    denied = await admit_call(request, None, "data:google-maps/details", google_error)
    if denied is not None:
        return denied
    mask = _mask(request)
    if isinstance(mask, web.Response):
        return mask
    place_id = request.match_info["place_id"]
    if not place_id.startswith("ChIJ"):
        return google_error(
            404, f"The place ID '{place_id[:80]}' is no longer valid or was not found."
        )
    city, state, lat, lng = CITIES[number(place_id) % len(CITIES)]
    place = _place(f"Place {place_id[-6:]}", number(place_id), lat, lng, city, state)
    place["id"] = place_id
    fields = mask[0] | mask[1]
    return json_reply(_masked(place, fields))


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/google-maps/v1/places:searchText", search_text),
    web.post("/google-maps/v1/places:searchNearby", search_nearby),
    web.get("/google-maps/v1/places/{place_id}", details, allow_head=False),
)
