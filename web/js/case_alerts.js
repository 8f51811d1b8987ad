// Supervision alert toasts (督办): a yellow card for case.due_soon, a red one for case.overdue,
// top-right, newest first, until closed or opened. Events come from the org channel and the
// personal channel alike; each is shown once.

import { el, formatTime } from "./format.js";
import { t } from "./i18n.js";
import { createToastStack } from "./toasts.js";

const KINDS = { "case.due_soon": "due_soon", "case.overdue": "overdue" };

/** The toasts in `container`; `onOpen(caseId)` shows the case. */
export function createCaseAlerts(container, { onOpen }) {
  const stack = createToastStack(container, (toast, buttons) => {
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
    node.append(buttons(t("case.toast.open"), () => onOpen(toast.data.case_id)));
    return node;
  });

  return {
    /** A live envelope; shows a toast for a case alert not seen before. */
    apply(envelope) {
      const kind = KINDS[envelope?.type];
      if (!kind || !envelope.data?.case_id) return;
      const id = envelope.id ?? `${envelope.type}:${envelope.data.case_id}:${envelope.data.at}`;
      // A newer alert about the same case replaces the older one (red after yellow).
      stack.push({ id, key: envelope.data.case_id, kind, data: envelope.data });
    },
    destroy: stack.destroy,
  };
}
