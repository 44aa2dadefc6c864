"""Hotkeys: which key labels which tag, and the tiny script that makes keys click buttons.

Plain Streamlit has no global hotkeys. `install()` renders a zero-height
`components.html` iframe whose script adds ONE keydown listener to the parent
page (the iframe is same-origin). The listener looks the key up in a map the app
refreshes on every run and clicks the button whose Streamlit key matches
(Streamlit gives each keyed widget the CSS class `st-key-<key>`). Keys typed into
text fields are left alone. Keys typed faster than the app answers are queued and
replayed in order, one run at a time, so none is lost.
"""

from __future__ import annotations

import json

# One keyboard row per group, in vocabulary order: hair colour on the top row,
# eye colour on the home row, hair style on the bottom row, the rest on digits.
ROWS = ["qwertyuiop[]\\", "asdfghjkl;'", "zxcvb", "123456"]
SPARE = "7890-=m,."
# Action keys (event.key values) -> action name. Kept off every tag row.
ACTIONS = {
    "Enter": "accept",
    "Backspace": "undo",
    "ArrowRight": "skip",
    "n": "reject",
    "/": "unsure",
}
MISSING_MS = 5000   # how long a queued key waits for its button to be on the page (a rerun redraws it)
KEY_NAMES = {"Enter": "Enter", "Backspace": "⌫", "ArrowRight": "→", "\\": "\\", " ": "Space"}


def tag_keys(groups: list[dict], stored: dict[str, str] | None = None) -> dict[str, str]:
    """Tag -> key. A hotkey stored in the vocabulary wins; others take their group's row,
    then the spare keys; tags left over get no key (their button still works)."""
    stored = {t: k for t, k in (stored or {}).items() if k not in ACTIONS}
    taken = set(stored.values()) | set(ACTIONS)
    spare = [k for k in SPARE if k not in taken]
    out = dict(stored)
    for i, g in enumerate(groups):
        row = [k for k in (ROWS[i] if i < len(ROWS) else "") if k not in taken]
        for tag in g["tags"]:
            if tag in out:
                continue
            pool = row if row else spare
            if pool:
                key = pool.pop(0)
                out[tag] = key
                taken.add(key)
    return out


def key_label(key: str) -> str:
    return KEY_NAMES.get(key, key.upper() if len(key) == 1 and key.isalpha() else key)


def widget_key(prefix: str, name: str) -> str:
    """A Streamlit widget key that is also a safe CSS class name."""
    return prefix + "-" + "".join(c if c.isalnum() else f"_{ord(c)}_" for c in name)


_SCRIPT = """
<script>
(function () {
  const win = window.parent, doc = win.document;
  win.__labelAppKeys = %(map)s;
  if (win.__labelAppListening) return;
  win.__labelAppListening = true;
  // Created in the parent page so the listener outlives this iframe.
  const s = doc.createElement("script");
  s.textContent = `
    // Keys pressed while the app is still running are queued and clicked one at a time once
    // it is idle: a click that lands mid-run can be coalesced away by Streamlit.
    const queue = [];
    let waiting = false, sawRun = false, since = 0, missing = 0;
    const state = () => {
      const app = document.querySelector('[data-testid="stApp"]');
      return app ? app.getAttribute("data-test-script-state") : null;
    };
    const pump = () => {
      const s = state();
      if (waiting) {
        if (s === "running") sawRun = true;
        if (s === null || (sawRun && s !== "running") || performance.now() - since > 3000) waiting = false;
        else return;
      }
      if (s === "running" || !queue.length) return;
      // A rerun redraws the page: the key's button can be missing or disabled for a moment. The key
      // waits for it (dropped only if it stays away MISSING_MS: a button this page does not have).
      const btn = document.querySelector(".st-key-" + queue[0] + " button");
      if (!btn || btn.disabled) {
        if (!missing) missing = performance.now();
        else if (performance.now() - missing > %(missing_ms)d) { queue.shift(); missing = 0; }
        return;
      }
      queue.shift(); missing = 0;
      waiting = true; sawRun = false; since = performance.now();
      btn.click();
    };
    setInterval(pump, 15);
    document.addEventListener("keydown", function (ev) {
      const t = ev.target;
      if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" ||
                t.isContentEditable || (t.getAttribute && t.getAttribute("role") === "combobox"))) return;
      const widget = (window.__labelAppKeys || {})[ev.key];
      if (!widget) return;
      ev.preventDefault();
      ev.stopPropagation();
      if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
      if (queue.length < 8) queue.push(widget);
      pump();
    }, true);`;
  doc.head.appendChild(s);
})();
</script>
"""


def script(key_to_widget: dict[str, str]) -> str:
    """The hotkey script for this key map, as the page embeds it."""
    # "<" escaped: a hotkey stored in the catalog as "</script>" must not end the script
    return _SCRIPT % {"map": json.dumps(key_to_widget, sort_keys=True).replace("<", "\\u003c"),
                      "missing_ms": MISSING_MS}


def install(key_to_widget: dict[str, str]) -> None:
    """Bind keys (event.key values) to the buttons with these Streamlit keys."""
    import streamlit as st

    html = script(key_to_widget)
    if hasattr(st, "iframe"):  # Streamlit >= 1.52; components.html is deprecated there
        st.iframe(html, height=1)
    else:
        import streamlit.components.v1 as components

        components.html(html, height=0)
