"""The web dashboard: a customer's account pages at `/` and the operator's console at `/console`,
server-rendered from the same services as the API (see README "The dashboard")."""
