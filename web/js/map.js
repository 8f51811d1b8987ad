// The grid-worker map (网格员实时位置): grid polygons as SVG in an equirectangular projection
// fitted to their bounding box, one dot per worker, and the worker list beside it.
// No tiles and no map library: everything is drawn from the hub's GeoJSON and positions.

import { el, formatBattery, formatTime } from "./format.js";
import { onLangChange, t } from "./i18n.js";
import { LEVELS, Projection, levelOf, pathData, ringsOf, svg } from "./map_geometry.js";

const DOT_RADIUS = 7;
/** Degrees added around worker dots when there are no grid polygons to fit the view to. */
const BARE_MARGIN_DEG = 0.003;
const STATUS_ORDER = { outside: 0, offline: 1, online: 2, unknown: 3 };

function statusOf(worker) {
  if (worker.online === false) return "offline";
  if (worker.outside) return "outside";
  return worker.online ? "online" : "unknown";
}

/**
 * The map panel. `elements`: {svg, wrap, tooltip, message, tbody, count, empty}.
 * `lookupWorker(id)` resolves to {name, grid} for a worker first heard of live;
 * `onNamesChanged()` is called when it did; `onWorkerPick(id)` when a worker's dot or row is
 * clicked (track playback).
 */
export function createWorkerMap(elements, { lookupWorker, onNamesChanged, onWorkerPick }) {
  // id -> {id, name, grid, lat, lon, accuracy_m, fix_time, battery_pct, online, outside}
  const workers = new Map();
  const orgNames = new Map(); // org path -> name, from the grid features
  const dots = new Map(); // id -> <circle>
  const lookups = new Set();
  let projection = null;
  let fittedToGrids = false;
  let listScheduled = false;
  let highlighted = null;

  const gridLayer = svg("g", { class: "grids" });
  const outlineLayer = svg("g", { class: "outlines" });
  const caseLayer = svg("g", { class: "cases" }); // drawn by case_markers.js
  const cameraLayer = svg("g", { class: "cameras" }); // drawn by camera_markers.js
  const trackLayer = svg("g", { class: "track" }); // drawn by track.js
  const dotLayer = svg("g", { class: "workers" });
  elements.svg.replaceChildren(
    gridLayer,
    outlineLayer,
    caseLayer,
    cameraLayer,
    dotLayer,
    trackLayer,
  );
  const projectionListeners = new Set();
  const projected = () => projectionListeners.forEach((fn) => fn());

  let message = null; // [key, vars] of the message over the map, re-rendered on a language switch

  function showMessage(key, vars = {}) {
    message = key ? [key, vars] : null;
    elements.message.textContent = key ? t(key, vars) : "";
    elements.message.hidden = !key;
  }

  function showTooltip(event, lines) {
    const tip = elements.tooltip;
    tip.replaceChildren(...lines.map((line, i) => el("div", i === 0 ? "tip-title" : "", line)));
    tip.hidden = false;
    const box = elements.wrap.getBoundingClientRect();
    const x = Math.min(event.clientX - box.left + 14, box.width - tip.offsetWidth - 4);
    const y = Math.min(event.clientY - box.top + 14, box.height - tip.offsetHeight - 4);
    tip.style.transform = `translate(${Math.max(4, x)}px, ${Math.max(4, y)}px)`;
  }

  function hideTooltip() {
    elements.tooltip.hidden = true;
  }

  function orgName(path) {
    return orgNames.get(path) ?? path;
  }

  /** Draw the grid polygons of a GeoJSON FeatureCollection (replacing any drawn before). */
  function setGrids(collection) {
    const features = (collection?.features ?? []).filter((f) => ringsOf(f.geometry).length);
    for (const feature of features) {
      const { path, name } = feature.properties ?? {};
      if (path && name) orgNames.set(path, name);
    }
    gridLayer.replaceChildren();
    outlineLayer.replaceChildren();
    const points = features.flatMap((f) => ringsOf(f.geometry).flat());
    projection = Projection.fit(points);
    fittedToGrids = projection !== null;
    if (!fittedToGrids) {
      showMessage("map.no_grids");
      redrawDots();
      projected();
      return;
    }
    showMessage(null);
    elements.svg.setAttribute("viewBox", projection.viewBox());
    // Grids are filled and hoverable; coarser levels are outlines drawn over them.
    const byDepth = [...features].sort(
      (a, b) => LEVELS.indexOf(levelOf(b)) - LEVELS.indexOf(levelOf(a)),
    );
    for (const feature of byDepth) {
      const level = levelOf(feature);
      const { path = "", name = path } = feature.properties ?? {};
      const d = pathData(feature, projection);
      const shape = svg("path", {
        d,
        class: `area level-${level}`,
        "data-path": path,
        "fill-rule": "evenodd",
      });
      shape.setAttribute("aria-label", name);
      if (level === "grid") {
        shape.addEventListener("mousemove", (event) => showTooltip(event, [name, path]));
        shape.addEventListener("mouseleave", hideTooltip);
        gridLayer.append(shape);
      } else {
        outlineLayer.append(shape);
      }
    }
    redrawDots();
    projected();
    scheduleList();
  }

  function ensureProjection() {
    if (fittedToGrids) return;
    const placed = [...workers.values()].filter(
      (w) => Number.isFinite(w.lat) && Number.isFinite(w.lon),
    );
    if (!placed.length) return;
    const lons = placed.map((w) => w.lon);
    const lats = placed.map((w) => w.lat);
    projection = new Projection(
      Math.min(...lons) - BARE_MARGIN_DEG,
      Math.min(...lats) - BARE_MARGIN_DEG,
      Math.max(...lons) + BARE_MARGIN_DEG,
      Math.max(...lats) + BARE_MARGIN_DEG,
    );
    elements.svg.setAttribute("viewBox", projection.viewBox());
    projected();
  }

  function drawDot(worker) {
    if (!projection || !Number.isFinite(worker.lat) || !Number.isFinite(worker.lon)) return;
    let dot = dots.get(worker.id);
    if (!dot) {
      dot = svg("circle", { r: DOT_RADIUS, "data-worker-id": worker.id });
      dot.addEventListener("mouseenter", () => highlight(worker.id));
      dot.addEventListener("mousemove", (event) =>
        showTooltip(event, describeWorker(workers.get(worker.id))),
      );
      dot.addEventListener("mouseleave", () => {
        hideTooltip();
        highlight(null);
      });
      dot.addEventListener("click", () => onWorkerPick?.(worker.id));
      dots.set(worker.id, dot);
      dotLayer.append(dot);
    }
    const [x, y] = projection.project(worker.lon, worker.lat);
    dot.setAttribute("cx", x.toFixed(1));
    dot.setAttribute("cy", y.toFixed(1));
    dot.setAttribute(
      "class",
      `worker-dot status-${statusOf(worker)}${highlighted === worker.id ? " hl" : ""}`,
    );
    dot.setAttribute("aria-label", worker.name ?? worker.id);
  }

  function redrawDots() {
    ensureProjection();
    for (const worker of workers.values()) drawDot(worker);
  }

  function describeWorker(worker) {
    if (!worker) return [];
    const lines = [`${worker.name ?? worker.id} · ${orgName(worker.grid)}`];
    const liveness = worker.online === false ? "offline" : worker.online ? "online" : "unknown";
    const status = [t(`worker.${liveness}`)];
    if (worker.outside) status.push(t("worker.outside"));
    lines.push(status.join(" · "));
    if (Number.isFinite(worker.fix_time)) {
      const accuracy = Number.isFinite(worker.accuracy_m)
        ? ` (${t("worker.accuracy", { m: Math.round(worker.accuracy_m) })})`
        : "";
      lines.push(
        `${formatTime(worker.fix_time)}${accuracy} · ${formatBattery(worker.battery_pct)}`,
      );
    }
    return lines;
  }

  function highlight(id) {
    highlighted = id;
    for (const [workerId, dot] of dots) dot.classList.toggle("hl", workerId === id);
    if (id && dots.has(id)) dotLayer.append(dots.get(id)); // bring to front
    for (const row of elements.tbody.children)
      row.classList.toggle("hl", row.dataset.workerId === id);
  }

  function scheduleList() {
    if (listScheduled) return;
    listScheduled = true;
    requestAnimationFrame(() => {
      listScheduled = false;
      renderList();
    });
  }

  function renderList() {
    const rows = [...workers.values()].sort(
      (a, b) =>
        STATUS_ORDER[statusOf(a)] - STATUS_ORDER[statusOf(b)] ||
        String(a.name ?? a.id).localeCompare(String(b.name ?? b.id), "zh-CN"),
    );
    elements.tbody.replaceChildren(
      ...rows.map((worker) => {
        const status = statusOf(worker);
        const row = el("tr", `status-${status}${highlighted === worker.id ? " hl" : ""}`);
        row.dataset.workerId = worker.id;
        const name = el("td", "name");
        name.append(el("span", "swatch"), el("span", "", worker.name ?? worker.id));
        const badges = el("td", "status");
        badges.append(el("span", `badge ${status}`, t(`worker.${status}`)));
        const battery = el("td", "battery", formatBattery(worker.battery_pct));
        if (typeof worker.battery_pct === "number" && worker.battery_pct < 20)
          battery.classList.add("low");
        row.append(
          name,
          el("td", "grid", orgName(worker.grid)),
          el("td", "fix", Number.isFinite(worker.fix_time) ? formatTime(worker.fix_time) : "—"),
          battery,
          badges,
        );
        row.addEventListener("mouseenter", () => highlight(worker.id));
        row.addEventListener("mouseleave", () => highlight(null));
        row.addEventListener("click", () => onWorkerPick?.(worker.id));
        return row;
      }),
    );
    elements.count.textContent = t("workers.count", { count: workers.size });
    elements.empty.hidden = workers.size > 0;
  }

  function update(id, changes) {
    let worker = workers.get(id);
    if (!worker) {
      worker = { id, name: null, grid: changes.grid ?? "", online: null, outside: false };
      workers.set(id, worker);
      if (changes.name === undefined) resolveName(id);
    }
    Object.assign(worker, changes);
    if (fittedToGrids) drawDot(worker);
    else redrawDots(); // no polygons: the view follows the workers
    scheduleList();
  }

  function resolveName(id) {
    if (lookups.has(id)) return;
    lookups.add(id);
    lookupWorker(id)
      .then((info) => {
        if (info && workers.has(id)) {
          update(id, { name: info.name, grid: info.grid || workers.get(id).grid });
          onNamesChanged();
        }
      })
      .catch(() => lookups.delete(id)); // try again on the next event
  }

  /** Take the latest positions from GET /api/v1/workers/positions (newer live fixes win). */
  function setPositions(items) {
    for (const item of items) {
      const known = workers.get(item.worker_id);
      const position =
        known && Number.isFinite(known.fix_time) && known.fix_time > item.fix_time
          ? {}
          : {
              lat: item.lat,
              lon: item.lon,
              accuracy_m: item.accuracy_m,
              fix_time: item.fix_time,
              battery_pct: item.battery_pct,
            };
      update(item.worker_id, {
        name: item.name,
        grid: item.grid,
        online: item.online,
        outside: item.in_grid === "outside",
        duty: item.duty,
        ...position,
      });
    }
  }

  /** Apply a live event to the map; returns true if it was about a worker. */
  function apply(envelope) {
    const data = envelope.data ?? {};
    const id = data.worker_id;
    if (typeof id !== "string") return false;
    switch (envelope.type) {
      case "worker.position": {
        const known = workers.get(id);
        if (known && Number.isFinite(known.fix_time) && data.fix_time < known.fix_time) return true;
        update(id, {
          lat: data.lat,
          lon: data.lon,
          accuracy_m: data.accuracy_m,
          fix_time: data.fix_time,
          battery_pct: data.battery_pct ?? known?.battery_pct ?? null,
          online: true, // the hub just heard the phone
          ...(known ? {} : { grid: envelope.org }),
        });
        return true;
      }
      case "worker.left_grid":
        update(id, { outside: true, grid: data.grid });
        return true;
      case "worker.entered_grid":
        update(id, { outside: false, grid: data.grid });
        return true;
      case "worker.offline":
        update(id, { online: false, grid: data.grid });
        return true;
      case "worker.online":
        update(id, { online: true, grid: data.grid });
        return true;
      default:
        return false;
    }
  }

  const stopLang = onLangChange(() => {
    renderList();
    if (message) showMessage(...message);
  });
  showMessage("map.loading");
  renderList();

  return {
    setGrids,
    setPositions,
    apply,
    showMessage,
    orgName,
    workerName: (id) => workers.get(id)?.name ?? id,
    /** The workers the map knows, as [{id, name}]. */
    workerList: () => [...workers.values()].map(({ id, name }) => ({ id, name })),
    /** What other layers drawn over the map need (the case and camera markers). */
    overlay: {
      layer: caseLayer,
      cameraLayer,
      trackLayer,
      /** SVG [x, y] of a point, or null before there is a projection. */
      project: (lon, lat) => projection?.project(lon, lat) ?? null,
      /** Call `fn` whenever the projection changes (everything must be placed again). */
      onProjection(fn) {
        projectionListeners.add(fn);
        return () => projectionListeners.delete(fn);
      },
      showTooltip,
      hideTooltip,
    },
    destroy() {
      stopLang();
      projectionListeners.clear();
    },
  };
}
