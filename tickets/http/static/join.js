// The join page's one script (SPEC section 12): times in the viewer's own time zone, and the Join button.
// Opening the page never exchanges the ticket; only a click does, once: the button is disabled first.
// The token goes to TICKETS_JOIN_URL in the URL fragment (never sent to a server), or, in a sandbox
// without one, is shown to copy. Every word shown is in the page already (tickets/http/join_words.py).
"use strict";

(function () {
  const main = document.getElementById("join");
  const lang = document.documentElement.lang || undefined;

  function localTime(element, date) {
    element.dateTime = date.toISOString();
    element.textContent = date.toLocaleString(lang, { dateStyle: "full", timeStyle: "short" });
  }

  function show(outcome) {
    for (const element of main.querySelectorAll("[data-outcome]")) {
      element.hidden = element.dataset.outcome !== outcome;
    }
  }

  async function exchange(button) {
    show("joining");
    let answer;
    try {
      answer = await fetch(main.dataset.tokenUrl, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "ticket", ticket: main.dataset.ticket }),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      button.disabled = false;
      show("error");
      return;
    }
    const body = await answer.json().catch(() => ({}));
    if (answer.ok && body.access_token) {
      joined(body);
    } else if (answer.status === 429) {
      show("throttled");
    } else if (main.querySelector(`[data-outcome="${CSS.escape(body.error_description || "")}"]`)) {
      show(body.error_description);
    } else {
      button.disabled = false;
      show("error");
    }
  }

  function joined(body) {
    const fragment = new URLSearchParams({
      access_token: body.access_token,
      token_type: body.token_type,
      expires_in: String(body.expires_in),
    });
    if (main.dataset.joinUrl) {
      show("forwarding");
      window.location.replace(`${main.dataset.joinUrl}#${fragment}`);
      return;
    }
    document.getElementById("join-button").hidden = true;
    document.getElementById("ready-line").hidden = true;
    localTime(document.getElementById("until"), new Date(Date.now() + body.expires_in * 1000));
    document.getElementById("token").value = body.access_token;
    show("joined");
  }

  async function copyToken() {
    const token = document.getElementById("token");
    try {
      await navigator.clipboard.writeText(token.value);
    } catch (error) {
      token.select();
      document.execCommand("copy");
    }
    document.getElementById("copied").hidden = false;
  }

  for (const element of document.querySelectorAll("time.local[datetime]")) {
    localTime(element, new Date(element.getAttribute("datetime")));
  }
  const button = document.getElementById("join-button");
  if (button) {
    button.hidden = false;
    button.addEventListener("click", () => {
      if (button.disabled) return;
      button.disabled = true;
      exchange(button);
    });
    document.getElementById("copy-button").addEventListener("click", copyToken);
  }
})();
