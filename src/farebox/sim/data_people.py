"""People and company data providers, each in its own wire format and error shape:

- Apollo (`{sim}/apollo/api/v1`, `x-api-key`): `POST /mixed_people/api_search`,
  `POST /mixed_companies/search` (per_page 1-100, else 422), `POST /people/match`
  (`{"person": null}` for no match), `GET /organizations/enrich?domain=`.
- Clado (`{sim}/clado/api`, Bearer): `GET /enrich/contacts`, `GET /enrich/scrape`
  (a URL that is not a linkedin.com/in/ profile is a 400).
- Whitepages (`{sim}/whitepages`, `X-Api-Key`): `GET /v1/person/` (a list),
  `GET /v2/property/` (state_code must be two capitals, else 400).
- Hunter (`{sim}/hunter/v2`, `X-API-KEY`): `GET /email-verifier?email=` (no @ is a 400).
- influencers.club (`{sim}/influencers/public/v1`, Bearer): `POST /creators/enrich/email/`,
  `POST /creators/enrich/handle/full/` (an unknown platform is a 422).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from farebox.sim.data_common import (
    bounded,
    company,
    empty,
    json_call,
    json_reply,
    page_of,
    person,
    query_call,
    slug,
)


def apollo_error(status: int, message: str) -> web.Response:
    return json_reply({"error": message, "error_code": f"HTTP_{status}"}, status)


def detail_error(status: int, message: str) -> web.Response:
    return json_reply({"detail": message}, status)


def message_error(status: int, message: str) -> web.Response:
    return json_reply({"message": message}, status)


def hunter_error(status: int, message: str) -> web.Response:
    error_id = (
        "authentication_failed" if status == 401 else "wrong_params" if status < 500 else "unknown"
    )
    return json_reply({"errors": [{"id": error_id, "code": status, "details": message}]}, status)


def _apollo_person(p: dict[str, Any], org: dict[str, Any], with_contact: bool) -> dict[str, Any]:
    entry = {
        "id": p["id"],
        "first_name": p["first_name"],
        "last_name": p["last_name"],
        "name": p["name"],
        "title": p["title"],
        "linkedin_url": f"http://www.linkedin.com/in/{slug(p['name'])}",
        "city": p["city"],
        "state": p["state"],
        "country": "United States",
        "seniority": "senior",
        "organization": {"id": org["id"], "name": org["name"], "primary_domain": org["domain"]},
        "employment_history": [
            {"organization_name": org["name"], "title": p["title"], "current": True}
        ],
    }
    if with_contact:
        entry["email"] = f"{p['first_name'].lower()}@{org['domain']}"
        entry["email_status"] = "verified"
    return entry


def _apollo_org(org: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": org["id"],
        "name": org["name"],
        "website_url": f"http://www.{org['domain']}",
        "primary_domain": org["domain"],
        "industry": org["industry"],
        "estimated_num_employees": org["employees"],
        "city": org["city"],
        "state": org["state"],
        "country": "United States",
        "founded_year": 1990 + org["employees"] % 30,
        "linkedin_url": f"http://www.linkedin.com/company/{slug(org['name'])}",
    }


async def _apollo_search(
    request: web.Request, endpoint: str
) -> tuple[dict[str, Any], int, int] | web.Response:
    """(body, page, per_page) of an Apollo search, or its error."""
    body = await json_call(request, endpoint, apollo_error, "x-api-key")
    if isinstance(body, web.Response):
        return body
    page = bounded(body.get("page"), 1, 1, 500)
    per_page = bounded(body.get("per_page"), 10, 1, 100)
    if page is None or per_page is None:
        return apollo_error(422, "per_page must be between 1 and 100, page between 1 and 500")
    return body, page, per_page


def _pagination(page: int, per_page: int, total: int) -> dict[str, int]:
    pages = -(-total // per_page)
    return {"page": page, "per_page": per_page, "total_entries": total, "total_pages": pages}


async def apollo_people_search(request: web.Request) -> web.StreamResponse:
    started = await _apollo_search(request, "data:apollo/people-search")
    if isinstance(started, web.Response):
        return started
    body, page, per_page = started
    seed = body.get("q_keywords") or ",".join(body.get("person_titles") or []) or "people"
    total = 0 if empty(seed) else 37
    count = page_of(total, page, per_page)
    people = [
        _apollo_person(person(seed, page, i), company(seed, i), with_contact=False)
        for i in range(count)
    ]
    return json_reply(
        {"total_entries": total, "people": people, "pagination": _pagination(page, per_page, total)}
    )


async def apollo_org_search(request: web.Request) -> web.StreamResponse:
    started = await _apollo_search(request, "data:apollo/org-search")
    if isinstance(started, web.Response):
        return started
    body, page, per_page = started
    seed = (
        body.get("q_organization_name")
        or ",".join(body.get("q_organization_keyword_tags") or [])
        or "orgs"
    )
    total = 0 if empty(seed) else 23
    count = page_of(total, page, per_page)
    orgs = [_apollo_org(company(seed, page, i)) for i in range(count)]
    return json_reply(
        {
            "organizations": orgs,
            "accounts": [],
            "pagination": _pagination(page, per_page, total),
        }
    )


async def apollo_people_match(request: web.Request) -> web.StreamResponse:
    body = await json_call(request, "data:apollo/people-enrich", apollo_error, "x-api-key")
    if isinstance(body, web.Response):
        return body
    keys = ("email", "linkedin_url", "id", "name", "first_name", "last_name")
    given = [body[k] for k in keys if body.get(k)]
    if not given:
        return apollo_error(422, "Please provide an email, a LinkedIn URL, an id or a name")
    if empty(*given):
        return json_reply({"person": None})
    found = person(*given)
    org = company(body.get("domain") or body.get("organization_name") or found["id"])
    return json_reply({"person": _apollo_person(found, org, with_contact=True)})


async def apollo_org_enrich(request: web.Request) -> web.StreamResponse:
    query = await query_call(request, "data:apollo/org-enrich", apollo_error, "x-api-key")
    if isinstance(query, web.Response):
        return query
    domain = query.get("domain", "")
    if "." not in domain:
        return apollo_error(422, "domain must be a company domain such as apollo.io")
    if empty(domain):
        return json_reply({})
    org = company(domain)
    org["domain"] = domain
    return json_reply({"organization": _apollo_org(org)})


def _is_linkedin(url: str) -> bool:
    return "linkedin.com/in/" in url and url.startswith("https://")


async def clado_contacts(request: web.Request) -> web.StreamResponse:
    query = await query_call(
        request, "data:clado/contacts", detail_error, "Authorization", "Bearer"
    )
    if isinstance(query, web.Response):
        return query
    url, email, phone = query.get("linkedin_url"), query.get("email"), query.get("phone")
    if not (url or email or phone):
        return detail_error(400, "One of linkedin_url, email or phone is required")
    if url and not _is_linkedin(url):
        return detail_error(400, "linkedin_url must be a LinkedIn profile URL")
    if empty(url, email, phone):
        return json_reply({"data": [{"error": False, "contacts": [], "social": []}]})
    found = person(url or email or phone)
    contacts = []
    if query.get("email_enrichment", "true") == "true":
        contacts.append(
            {
                "type": "email",
                "value": f"{found['first_name'].lower()}@example.com",
                "rating": 95,
                "subType": "work",
            }
        )
    if query.get("phone_enrichment") == "true":
        contacts.append(
            {"type": "phone", "value": "+12065550123", "rating": 80, "subType": "mobile"}
        )
    social = [
        {"type": "linkedin", "link": url or f"https://www.linkedin.com/in/{slug(found['name'])}"}
    ]
    return json_reply({"data": [{"error": False, "contacts": contacts, "social": social}]})


async def clado_scrape(request: web.Request) -> web.StreamResponse:
    query = await query_call(request, "data:clado/scrape", detail_error, "Authorization", "Bearer")
    if isinstance(query, web.Response):
        return query
    url = query.get("linkedin_url", "")
    if not _is_linkedin(url):
        return detail_error(400, "linkedin_url must be a LinkedIn profile URL")
    if empty(url):
        return json_reply({"data": {"profile": None, "posts": []}})
    p = person(url)
    org = company(url)
    profile = {
        "full_name": p["name"],
        "headline": f"{p['title']} at {org['name']}",
        "location": f"{p['city']}, {p['state']}",
        "experience": [{"title": p["title"], "company": org["name"], "start_date": "2021-03"}],
        "education": [{"school": "State University", "degree": "BSc Computer Science"}],
        "skills": ["Python", "Distributed Systems"],
        "connections": 500,
    }
    posts = [{"text": f"Post {i} by {p['first_name']}", "reactions": 10 * i} for i in (1, 2)]
    return json_reply({"data": {"profile": profile, "posts": posts}})


def _check_state(query: dict[str, str]) -> web.Response | None:
    state = query.get("state_code")
    if state is not None and not (len(state) == 2 and state.isalpha() and state.isupper()):
        return message_error(400, "state_code must be a two-letter US state code")
    return None


async def whitepages_person(request: web.Request) -> web.StreamResponse:
    query = await query_call(request, "data:whitepages/person", message_error, "X-Api-Key")
    if isinstance(query, web.Response):
        return query
    bad = _check_state(query)
    if bad is not None:
        return bad
    name = query.get("name") or " ".join(
        filter(None, (query.get("first_name"), query.get("last_name")))
    )
    key = name or query.get("phone") or query.get("street") or ""
    if not key:
        return message_error(400, "Provide a name, a phone number or an address")
    if empty(key):
        return json_reply([])
    people = []
    for i in range(2):
        p = person(key, i)
        people.append(
            {
                "id": f"P{p['id'][:12]}",
                "name": name or p["name"],
                "aliases": [],
                "is_dead": False,
                "current_addresses": [
                    {"id": f"A{i}", "address": f"{120 + i} Pine St, {p['city']}, {p['state']}"}
                ],
                "historic_addresses": [],
                "phones": [{"number": f"+1206555{1000 + i}", "type": "mobile"}],
                "emails": [],
                "date_of_birth": None,
                "linked_people": [{"id": "P0rel", "name": "A. Relative", "type": "relative"}],
            }
        )
    return json_reply(people)


async def whitepages_property(request: web.Request) -> web.StreamResponse:
    query = await query_call(request, "data:whitepages/property", message_error, "X-Api-Key")
    if isinstance(query, web.Response):
        return query
    bad = _check_state(query)
    if bad is not None:
        return bad
    street = query.get("street", "")
    if not street:
        return message_error(400, "street is required")
    if empty(street):
        return json_reply({"result": None})
    owner = person(street)
    return json_reply(
        {
            "result": {
                "property_id": f"R{owner['id'][:12]}",
                "address": {
                    "street": street,
                    "city": query.get("city") or owner["city"],
                    "state_code": query.get("state_code") or owner["state"],
                },
                "owners": [{"name": owner["name"], "type": "person"}],
                "residents": [{"name": owner["name"], "age_range": "40-44"}],
                "property_type": "single_family",
                "year_built": 1950 + len(street) % 60,
                "bedrooms": 3,
                "square_feet": 1800,
            }
        }
    )


async def hunter_verify(request: web.Request) -> web.StreamResponse:
    query = await query_call(request, "data:hunter/email-verifier", hunter_error, "X-API-KEY")
    if isinstance(query, web.Response):
        return query
    email = query.get("email", "")
    if "@" not in email:
        return hunter_error(400, "The email is invalid")
    unknown = empty(email)
    result: dict[str, Any] = {
        "status": "unknown" if unknown else "valid",
        "result": "risky" if unknown else "deliverable",
        "score": 0 if unknown else 91,
        "email": email,
        "regexp": True,
        "gibberish": False,
        "disposable": False,
        "webmail": email.endswith("@gmail.com"),
        "mx_records": not unknown,
        "smtp_server": not unknown,
        "smtp_check": not unknown,
        "accept_all": False,
        "block": False,
        "sources": [],
    }
    return json_reply({"data": result, "meta": {"params": {"email": email}}})


_PLATFORMS = ("instagram", "tiktok", "youtube", "twitter", "twitch", "facebook")


def _creator(handle: str, platform: str) -> dict[str, Any]:
    p = person(handle, platform)
    return {
        "username": handle.lstrip("@"),
        "full_name": p["name"],
        "follower_count": 1000 + p["id"].count("a") * 12345,
        "engagement_percent": 3.4,
        "biography": f"{p['title']} in {p['city']}",
        "email": f"{handle.lstrip('@').lower()}@example.com",
        "profile_url": f"https://www.{platform}.com/{handle.lstrip('@')}",
    }


async def influencer_by_email(request: web.Request) -> web.StreamResponse:
    body = await json_call(
        request, "data:influencer/email", detail_error, "Authorization", "Bearer"
    )
    if isinstance(body, web.Response):
        return body
    email = body.get("email")
    if not isinstance(email, str) or "@" not in email:
        return detail_error(422, "email: value is not a valid email address")
    if empty(email):
        return json_reply({"email": email, "result": {}})
    handle = email.split("@", 1)[0]
    return json_reply(
        {"email": email, "result": {p: _creator(handle, p) for p in ("instagram", "tiktok")}}
    )


async def influencer_by_handle(request: web.Request) -> web.StreamResponse:
    body = await json_call(
        request, "data:influencer/handle", detail_error, "Authorization", "Bearer"
    )
    if isinstance(body, web.Response):
        return body
    platform, handle = body.get("platform"), body.get("handle")
    if platform not in _PLATFORMS:
        return detail_error(422, f"platform: value is not one of {', '.join(_PLATFORMS)}")
    if not isinstance(handle, str) or not handle:
        return detail_error(422, "handle: field required")
    if empty(handle):
        return json_reply({"result": {}})
    return json_reply({"result": {platform: _creator(handle, platform)}, "credits_cost": 1})


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/apollo/api/v1/mixed_people/api_search", apollo_people_search),
    web.post("/apollo/api/v1/mixed_companies/search", apollo_org_search),
    web.post("/apollo/api/v1/people/match", apollo_people_match),
    web.get("/apollo/api/v1/organizations/enrich", apollo_org_enrich, allow_head=False),
    web.get("/clado/api/enrich/contacts", clado_contacts, allow_head=False),
    web.get("/clado/api/enrich/scrape", clado_scrape, allow_head=False),
    web.get("/whitepages/v1/person/", whitepages_person, allow_head=False),
    web.get("/whitepages/v2/property/", whitepages_property, allow_head=False),
    web.get("/hunter/v2/email-verifier", hunter_verify, allow_head=False),
    web.post("/influencers/public/v1/creators/enrich/email/", influencer_by_email),
    web.post("/influencers/public/v1/creators/enrich/handle/full/", influencer_by_handle),
)
