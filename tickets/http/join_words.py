"""Every word the join page shows (SPEC section 12), and only words: a translation is a copy of this file.

`{title}` is the ticket's title; times are filled in by the page, in the viewer's own time zone.
"""

LANG = "en"

WORDS = {
    "page_title": "Join",
    "default_title": "Your session",
    "ready": "Ready when you are.",
    "scheduled": "Scheduled for",
    "minutes": "minutes",
    "join": "Join",
    "needs_script": "Joining needs JavaScript, which is turned off in this browser.",
    "not_yet": "This link is not open yet.",
    "opens_at": "It opens at",
    "come_back": "Come back then and reload this page.",
    "expired": "This link has expired.",
    "disabled": "This link is switched off for now.",
    "revoked": "This link has been withdrawn.",
    "ask_again": "Ask whoever sent it to you for a new one.",
    "not_found": "This link is not valid.",
    "not_found_hint": "It may have been used already, or mistyped.",
    "throttled": "Too many tries from your network.",
    "throttled_hint": "Wait a minute, then reload this page.",
    "joining": "Joining…",
    "joined": "You are in.",
    "joined_until": "Your access lasts until",
    "token_label": "Your access token",
    "copy_token": "Copy the token",
    "copied": "Copied.",
    "forwarding": "Taking you there…",
    "error": "Something went wrong. Please try again.",
}
