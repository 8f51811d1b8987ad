// Camera alarm toasts (视频告警): a card per camera.alarm, in the case alerts' style, newest
// first, with a button that opens the camera's live view. Each event is shown once.

import { el, formatTime } from "./format.js";
import { has, onLangChange, t } from "./i18n.js";

const MAX_TOASTS = 5;
const MAX_SEEN = 500;
/** Alarm levels as the case alert style names them (console.css .case-toast.alert-*). */
const STYLE = { info: "info", warning: "due_soon", critical: "overdue" };

/** A readable alarm kind (the kind itself when the dictionary does not know it). */
export function alarmKind(kind) {
  return has(`camera.alarm.${kind}`) ? t(`camera.alarm.${kind}`) : String(kind ?? "");
}

/** The toasts in `container`; `cameraName(id)`; `onOpen(cameraId)` opens the camera. */
export function createCameraAlerts(container, { cameraName, onOpen }) {
  let toasts = []; // newest first: {id, data}
  const seen = new Set();

  function card(toast) {
    const { data } = toast;
    const level = STYLE[data.level] ? data.level : "warning";
    const node = el("section", `case-toast camera-toast alert-${STYLE[level]}`);
    node.setAttribute("role", "alert");
    node.dataset.cameraId = data.camera_id;
    node.dataset.level = level;
    node.append(
      el("h3", "case-toast-title", t("camera.toast.title", { level: t(`alert.${level}`) })),
    );
    node.append(
      el("p", "case-toast-case", `${cameraName(data.camera_id)} · ${alarmKind(data.kind)}`),
    );
    if (data.description) node.append(el("p", "camera-toast-text", data.description));
    if (data.at) node.append(el("p", "case-toast-due", formatTime(data.at)));
    const open = el("button", "ghost camera-toast-open", t("camera.toast.open"));
    open.type = "button";
    open.addEventListener("click", () => {
      dismiss(toast.id);
      onOpen(data.camera_id);
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
    /** A live envelope; shows a toast for a camera alarm not seen before. */
    apply(envelope) {
      if (envelope?.type !== "camera.alarm" || !envelope.data?.camera_id) return;
      const id = envelope.id ?? `${envelope.data.camera_id}:${envelope.data.at}`;
      if (seen.has(id)) return;
      seen.add(id);
      if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value);
      toasts.unshift({ id, data: envelope.data });
      toasts = toasts.slice(0, MAX_TOASTS);
      render();
    },
    /** Names may have arrived after the toast: draw again. */
    refresh: render,
    destroy() {
      stopLang();
      toasts = [];
      render();
    },
  };
}
