// Supervision alert toasts (督办): a yellow card for case.due_soon, a red one for case.overdue,
// top-right, newest first, until closed or opened. Events come from the org channel and the
// personal channel alike; each is shown once.

import { el, formatTime } from "./format.js";
import { onLangChange, t } from "./i18n.js";

const MAX_TOASTS = 5;
const MAX_SEEN = 500;
const KINDS = { "case.due_soon": "due_soon", "case.overdue": "overdue" };

/** The toasts in `container`; `onOpen(caseId)` shows the case. */
export function createCaseAlerts(container, { onOpen }) {
  let toasts = []; // newest first: {id, kind, data}
  const seen = new Set();

  function card(toast) {
    const node = el("section", `case-toast alert-${toast.kind}`);
    node.setAttribute("role", "alert");
    node.dataset.caseId = toast.data.case_id;
    node.dataset.kind = toast.kind;
    node.append(el("h3", "case-toast-title", t(`case.toast.${toast.kind}`)));
    node.append(el("p", "case-toast-case", `${toast.data.number} ${toast.data.title}`));
    if (toast.data.due_at) {
      node.append(
        el("p", "case-toast-due", t("case.toast.due", { time: formatTime(toast.data.due_at) })),
      );
    }
    const open = el("button", "ghost", t("case.toast.open"));
    open.type = "button";
    open.addEventListener("click", () => {
      dismiss(toast.id);
      onOpen(toast.data.case_id);
    });
    const close = el("button", "ghost", t("case.toast.dismiss"));
    close.type = "button";
    close.addEventListener("click", () => dismiss(toast.id));
    const buttons = el("div", "case-toast-buttons");
    buttons.append(open, close);
    node.append(buttons);
    return node;
  }

  function render() {
    container.replaceChildren(...toasts.map(card));
    container.hidden = toasts.length === 0;
  }

  function dismiss(id) {
    toasts = toasts.filter((toast) => toast.id !== id);
    render();
  }

  const stopLang = onLangChange(render);

  return {
    /** A live envelope; shows a toast for a case alert not seen before. */
    apply(envelope) {
      const kind = KINDS[envelope?.type];
      if (!kind || !envelope.data?.case_id) return;
      const id = envelope.id ?? `${envelope.type}:${envelope.data.case_id}:${envelope.data.at}`;
      if (seen.has(id)) return;
      seen.add(id);
      if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value);
      // A newer alert about the same case replaces the older one (red after yellow).
      toasts = toasts.filter((toast) => toast.data.case_id !== envelope.data.case_id);
      toasts.unshift({ id, kind, data: envelope.data });
      toasts = toasts.slice(0, MAX_TOASTS);
      render();
    },
    destroy() {
      stopLang();
      toasts = [];
      render();
    },
  };
}
