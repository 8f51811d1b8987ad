// Camera alarm toasts (视频告警): a card per camera.alarm, in the case alerts' style, newest
// first, with a button that opens the camera's live view. Each event is shown once.

import { el, formatTime } from "./format.js";
import { has, t } from "./i18n.js";
import { createToastStack } from "./toasts.js";

/** Alarm levels as the case alert style names them (console.css .case-toast.alert-*). */
const STYLE = { info: "info", warning: "due_soon", critical: "overdue" };

/** A readable alarm kind (the kind itself when the dictionary does not know it). */
export function alarmKind(kind) {
  return has(`camera.alarm.${kind}`) ? t(`camera.alarm.${kind}`) : String(kind ?? "");
}

/** The toasts in `container`; `cameraName(id)`; `onOpen(cameraId)` opens the camera. */
export function createCameraAlerts(container, { cameraName, onOpen }) {
  const stack = createToastStack(container, (toast, buttons) => {
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
    const row = buttons(t("camera.toast.open"), () => onOpen(data.camera_id));
    row.firstChild.classList.add("camera-toast-open");
    node.append(row);
    return node;
  });

  return {
    /** A live envelope; shows a toast for a camera alarm not seen before. */
    apply(envelope) {
      if (envelope?.type !== "camera.alarm" || !envelope.data?.camera_id) return;
      const id = envelope.id ?? `${envelope.data.camera_id}:${envelope.data.at}`;
      stack.push({ id, data: envelope.data });
    },
    /** Names may have arrived after the toast: draw again. */
    refresh: stack.render,
    destroy: stack.destroy,
  };
}
