// Cameras in the console (雪亮工程): the cameras of the user's subtree loaded once subscribed,
// kept current by camera.* events, drawn as map markers and listed beside the workers;
// opening one adds a floating live-view player to the players grid; camera.alarm flashes the
// marker and shows a toast that opens the camera.

import { ApiError } from "./api.js";
import { alarmKind, createCameraAlerts } from "./camera_alerts.js";
import { cameraApi } from "./camera_api.js";
import { createCameraMarkers } from "./camera_markers.js";
import { createPlayer } from "./camera_player.js";
import { el } from "./format.js";
import { onLangChange, t } from "./i18n.js";

/** How long a marker flashes red after an alarm. */
const ALARM_FLASH_MS = 60000;
/** Players open at once; opening one more closes the oldest. */
const MAX_PLAYERS = 6;
/** Players side by side at most (more go on a new row). */
const MAX_COLUMNS = 3;
/** Wait after a camera.changed event before reloading (a burst reloads once). */
const CHANGED_RELOAD_MS = 500;
const STATUS_ORDER = { offline: 0, online: 1, unknown: 2 };
const STATUSES = new Set(["online", "offline", "unknown"]);
/** The tag the hub gives the channels of GB/T 28181 devices. */
const GB28181_TAG = "gb28181";

/** True for a channel of a GB/T 28181 device (its cameras carry the tag). */
const isGb28181 = (camera) => Array.isArray(camera.tags) && camera.tags.includes(GB28181_TAG);

/**
 * The cameras. `elements`: {tbody, count, empty, error, players, alerts}; `overlay` is the
 * map's overlay API; `orgName(path)`; `onAuthFailure(err)` when the hub refused the token.
 */
export function createCameras(elements, { token, overlay, orgName, onAuthFailure }) {
  const api = cameraApi(token);
  const cameras = new Map(); // id -> {id, name, org, lat, lon, status, ptz, tags, alarm, open}
  const players = new Map(); // id -> player
  const alarmTimers = new Map(); // id -> timeout
  const touched = new Set(); // ids whose status changed live while a load was in flight
  let generation = 0;
  let stopped = false;
  let reloadTimer = null;
  let loadError = null;

  function describe(camera) {
    const lines = [camera.name, `${orgName(camera.org)} · ${t(`camera.status.${camera.status}`)}`];
    if (camera.alarm) lines.push(t("camera.alarm_active", { kind: alarmKind(camera.alarm) }));
    if (camera.tags?.length) lines.push(camera.tags.join(" · "));
    return lines;
  }

  const markers = createCameraMarkers(overlay, { describe, onOpen: open });
  const alerts = createCameraAlerts(elements.alerts, {
    cameraName: (id) => cameras.get(id)?.name ?? id,
    onOpen: open,
  });

  function renderList() {
    const rows = [...cameras.values()].sort(
      (a, b) =>
        (STATUS_ORDER[a.status] ?? 3) - (STATUS_ORDER[b.status] ?? 3) ||
        String(a.name).localeCompare(String(b.name), "zh-CN"),
    );
    elements.tbody.replaceChildren(
      ...rows.map((camera) => {
        const row = el("tr", `camera-row status-${camera.status}`);
        if (camera.alarm) row.classList.add("alarm");
        if (camera.open) row.classList.add("open");
        row.dataset.cameraId = camera.id;
        row.tabIndex = 0;
        const name = el("td", "name");
        name.append(el("span", "camera-icon"), el("span", "", camera.name));
        if (isGb28181(camera)) {
          const tag = el("span", "badge camera-tag camera-tag-gb28181", t("camera.tag.gb28181"));
          tag.title = t("camera.tag.gb28181.title");
          name.append(tag);
        }
        const status = el("td", "status");
        status.append(
          el("span", `badge camera-${camera.status}`, t(`camera.status.${camera.status}`)),
        );
        row.append(name, el("td", "org", orgName(camera.org)), status);
        row.addEventListener("click", () => open(camera.id));
        row.addEventListener("keydown", (event) => {
          if (event.key === "Enter") open(camera.id);
        });
        return row;
      }),
    );
    elements.count.textContent = t("cameras.count", { count: cameras.size });
    elements.empty.hidden = cameras.size > 0;
    elements.error.textContent = loadError ? t("cameras.load_failed", { message: loadError }) : "";
    elements.error.hidden = !loadError;
  }

  function changed(camera) {
    markers.draw(camera);
    renderList();
  }

  function layoutPlayers() {
    elements.players.style.setProperty("--columns", Math.min(players.size, MAX_COLUMNS));
    elements.players.hidden = players.size === 0;
  }

  /** Open the camera's player (or draw attention to it when it is open already). */
  function open(id) {
    const camera = cameras.get(id);
    if (stopped || !camera) return;
    const known = players.get(id);
    if (known) {
      known.flash();
      return;
    }
    if (players.size >= MAX_PLAYERS) players.values().next().value.close();
    const player = createPlayer(camera, {
      api,
      orgName,
      onAuthFailure,
      onClose: (closedId) => {
        players.delete(closedId);
        const gone = cameras.get(closedId);
        if (gone) changed(Object.assign(gone, { open: false }));
        layoutPlayers();
      },
    });
    players.set(id, player);
    elements.players.append(player.node);
    layoutPlayers();
    changed(Object.assign(camera, { open: true }));
  }

  function setStatus(id, status, reason) {
    const camera = cameras.get(id);
    if (!camera || !STATUSES.has(status)) return;
    camera.status = status;
    touched.add(id);
    players.get(id)?.setStatus(status, reason);
    changed(camera);
  }

  function alarm(id, kind) {
    const camera = cameras.get(id);
    if (!camera) return;
    camera.alarm = kind || "alarm";
    clearTimeout(alarmTimers.get(id));
    alarmTimers.set(
      id,
      setTimeout(() => {
        alarmTimers.delete(id);
        const still = cameras.get(id);
        if (still) changed(Object.assign(still, { alarm: null }));
      }, ALARM_FLASH_MS),
    );
    players.get(id)?.flash();
    changed(camera);
  }

  /** Load the cameras again (after subscribing, a reconnect that lost events, a change). */
  async function reload() {
    const mine = ++generation;
    touched.clear();
    let items;
    try {
      items = await api.list();
    } catch (err) {
      if (stopped || mine !== generation) return;
      if (err instanceof ApiError && err.unauthorized) {
        onAuthFailure(err);
        return;
      }
      loadError = err instanceof ApiError && err.status === 0 ? t(err.code) : err.message;
      renderList();
      return;
    }
    if (stopped || mine !== generation) return;
    loadError = null;
    const fresh = new Map(items.map((item) => [item.id, item]));
    for (const id of [...cameras.keys()]) {
      if (fresh.has(id)) continue;
      cameras.delete(id);
      markers.remove(id);
      players.get(id)?.close();
    }
    for (const item of fresh.values()) {
      const known = cameras.get(item.id);
      const camera = {
        ...item,
        status: STATUSES.has(item.status) ? item.status : "unknown",
        alarm: known?.alarm ?? null,
        open: players.has(item.id),
      };
      // A status heard live during the load is newer than the page.
      if (known && touched.has(item.id)) camera.status = known.status;
      cameras.set(item.id, camera);
      markers.draw(camera);
    }
    renderList();
    alerts.refresh();
  }

  function scheduleReload() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(reload, CHANGED_RELOAD_MS);
  }

  const stopLang = onLangChange(renderList);
  const closeAll = () => [...players.values()].forEach((player) => player.close());
  window.addEventListener("pagehide", closeAll);
  renderList();

  return {
    reload,
    open,
    /** A live envelope from the org channel; true if it was about a camera. */
    apply(envelope) {
      const data = envelope?.data ?? {};
      if (stopped || typeof data.camera_id !== "string") return false;
      switch (envelope.type) {
        case "camera.online":
          setStatus(data.camera_id, "online", data.reason);
          return true;
        case "camera.offline":
          setStatus(data.camera_id, "offline", data.reason);
          return true;
        case "camera.alarm":
          alarm(data.camera_id, data.kind);
          alerts.apply(envelope);
          return true;
        case "camera.changed":
          scheduleReload();
          return true;
        default:
          return false;
      }
    },
    /** Org names arrived (the grids loaded): draw the names again. */
    refresh() {
      renderList();
      for (const camera of cameras.values()) markers.draw(camera);
    },
    destroy() {
      stopped = true;
      stopLang();
      window.removeEventListener("pagehide", closeAll);
      clearTimeout(reloadTimer);
      alarmTimers.forEach((timer) => clearTimeout(timer));
      closeAll();
      markers.destroy();
      alerts.destroy();
      cameras.clear();
    },
  };
}
