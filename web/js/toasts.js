// A stack of alert cards (top-right, newest first, bounded), each event shown once, redrawn
// when the language changes. The case and camera alerts fill it with their own cards.

import { el } from "./format.js";
import { onLangChange, t } from "./i18n.js";

const MAX_TOASTS = 5;
const MAX_SEEN = 500;

/**
 * Toasts in `container`; `card(toast, buttons)` draws one, where `buttons(openLabel, onOpen)`
 * gives the row with its open and dismiss buttons. A toast is `{id, key, data, ...}`: a new
 * one replaces those with the same `key` (e.g. the same case, red after yellow).
 */
export function createToastStack(container, card) {
  let toasts = [];
  const seen = new Set();

  function buttons(toast, openLabel, onOpen) {
    const open = el("button", "ghost toast-open", openLabel);
    open.type = "button";
    open.addEventListener("click", () => {
      dismiss(toast.id);
      onOpen();
    });
    const close = el("button", "ghost", t("case.toast.dismiss"));
    close.type = "button";
    close.addEventListener("click", () => dismiss(toast.id));
    const row = el("div", "case-toast-buttons");
    row.append(open, close);
    return row;
  }

  function render() {
    container.replaceChildren(
      ...toasts.map((toast) => card(toast, (label, onOpen) => buttons(toast, label, onOpen))),
    );
    container.hidden = toasts.length === 0;
  }

  function dismiss(id) {
    toasts = toasts.filter((toast) => toast.id !== id);
    render();
  }

  const stopLang = onLangChange(render);

  return {
    /** Show `toast` unless its id was seen before. */
    push(toast) {
      if (seen.has(toast.id)) return;
      seen.add(toast.id);
      if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value);
      if (toast.key !== undefined) toasts = toasts.filter((other) => other.key !== toast.key);
      toasts.unshift(toast);
      toasts = toasts.slice(0, MAX_TOASTS);
      render();
    },
    render,
    destroy() {
      stopLang();
      toasts = [];
      render();
    },
  };
}
