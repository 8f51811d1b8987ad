// GB/T 28181 video devices (cameras, NVRs, lower platforms registered to the hub over SIP)
// in the cameras pane: a compact list under the cameras, shown only when the user's subtree
// has any. The hub publishes no device events: the list is read again when the cameras are
// (subscribed, camera.* events, debounced) and every DEVICES_REFRESH_MS for the keepalives.

import { ApiError, getJson } from "./api.js";
import { el, formatTime } from "./format.js";
import { onLangChange, t } from "./i18n.js";

/** Read the list again this often (last keepalive, online state). */
const DEVICES_REFRESH_MS = 30000;
/** Wait after a camera event before reading the list (a burst reads once). */
const EVENT_RELOAD_MS = 1000;
/** Statuses the list knows (anything else is shown as offline). */
const STATUSES = new Set(["online", "offline"]);
/** Camera events after which the devices are read again. */
const DEVICE_HINTS = new Set(["camera.online", "camera.offline", "camera.changed"]);
/** Roles the hub lists video devices to (hub/api/video_devices.py): others never ask. */
const DEVICE_ROLES = ["admin", "dispatcher", "leader"];
/** Answers meaning "not for you" or "no such API here": hide the section, stop asking. */
const QUIET_STATUSES = new Set([403, 404]);

/** The last keepalive as a time, or a dash when none came yet. */
const keepalive = (value) => (value ? formatTime(value) : "—");

/** The message of a failed load worth showing. */
const failure = (err) => (err instanceof ApiError && err.status === 0 ? t(err.code) : err.message);

/** Whether the user (claims {roles}) may read the video devices at all. */
export const maySeeVideoDevices = (claims) =>
  claims.roles.some((role) => DEVICE_ROLES.includes(role));

/**
 * The video devices. `elements`: {section, tbody, count, error}; `allowed`: whether the user
 * may read them (otherwise the section stays hidden and nothing is asked: a refused request
 * would show in the browser's console as an error); `onAuthFailure(err)` when the hub
 * refused the token.
 */
export function createVideoDevices(elements, { token, allowed = true, onAuthFailure }) {
  let devices = [];
  let loadError = null;
  let generation = 0;
  let stopped = false;
  let forbidden = !allowed;
  let eventTimer = null;
  let refreshTimer = null;

  function render() {
    elements.tbody.replaceChildren(
      ...devices.map((device) => {
        const status = STATUSES.has(device.status) ? device.status : "offline";
        const row = el("tr", `video-device-row status-${status}`);
        row.dataset.deviceId = device.id;
        const name = el("td", "name", device.name || device.id);
        name.title = device.name ? `${device.name} · ${device.id}` : device.id;
        const state = el("td", "status");
        state.append(el("span", `badge camera-${status}`, t(`camera.status.${status}`)));
        row.append(
          name,
          state,
          el("td", "transport", String(device.transport ?? "").toUpperCase() || "—"),
          el("td", "keepalive", keepalive(device.last_keepalive_at)),
          el("td", "channels", device.channel_count ?? 0),
        );
        return row;
      }),
    );
    const online = devices.filter((device) => device.status === "online").length;
    elements.count.textContent = t("video_devices.count", { online, count: devices.length });
    elements.error.textContent = loadError
      ? t("video_devices.load_failed", { message: loadError })
      : "";
    elements.error.hidden = !loadError;
    elements.section.hidden = forbidden || (devices.length === 0 && !loadError);
  }

  function schedule() {
    clearTimeout(refreshTimer);
    if (!stopped && !forbidden) refreshTimer = setTimeout(reload, DEVICES_REFRESH_MS);
  }

  /** Read the devices again. */
  async function reload() {
    if (stopped || forbidden) return;
    const mine = ++generation;
    clearTimeout(eventTimer);
    try {
      const answer = await getJson("/api/v1/video-devices", token);
      if (stopped || mine !== generation) return;
      devices = answer?.items ?? [];
      loadError = null;
    } catch (err) {
      if (stopped || mine !== generation) return;
      if (err instanceof ApiError && err.unauthorized) {
        onAuthFailure(err);
        return;
      }
      if (err instanceof ApiError && QUIET_STATUSES.has(err.status)) {
        forbidden = true; // a role that may not read devices: no section, no error
        devices = [];
        loadError = null;
      } else {
        // Only worth telling when there is a list to be stale; else stay out of the way.
        loadError = devices.length === 0 ? null : failure(err);
      }
    }
    render();
    schedule();
  }

  const stopLang = onLangChange(render);
  render();

  return {
    reload,
    /** A camera event of `type` arrived: a device may have come, gone or changed state
     * (alarms say nothing about devices); read the list soon. */
    cameraEvent(type) {
      if (stopped || forbidden || !DEVICE_HINTS.has(type)) return;
      clearTimeout(eventTimer);
      eventTimer = setTimeout(reload, EVENT_RELOAD_MS);
    },
    destroy() {
      stopped = true;
      stopLang();
      clearTimeout(eventTimer);
      clearTimeout(refreshTimer);
      devices = [];
    },
  };
}
