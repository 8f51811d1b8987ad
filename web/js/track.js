// Track playback (轨迹回放): a worker's stored fixes over a time range, from
// GET /api/v1/workers/{id}/track, drawn as a line on the map with a marker that moves along it
// by time. Play/pause at 1×–64×, a time slider to scrub, the current time shown.
// Positions between two fixes are interpolated linearly in time (track_math.js).

import { ApiError, getJson } from "./api.js";
import { el } from "./format.js";
import { locale, onLangChange, t } from "./i18n.js";
import { svg } from "./map_geometry.js";
import { fromInputValue, positionAt, toInputValue } from "./track_math.js";

/** Default range: the last hour. */
const DEFAULT_RANGE_S = 3600;
const SPEEDS = [1, 4, 16, 64];
const MARKER_RADIUS = 8;

/**
 * The playback bar under the map. `elements`: {bar, open, close, form, worker, from, to,
 * play, speed, slider, time, summary, message}; `overlay` is the map's (map.js);
 * `workers()` lists the workers the map knows as [{id, name}].
 */
export function createTrackPlayback(elements, { token, overlay, workers, onAuthFailure }) {
  const layer = overlay.trackLayer;
  let track = null; // {worker, name, times: [s], coords: [[lon, lat]], properties}
  let now = null; // the playback time (Unix s)
  let playing = false;
  let lastFrame = null;
  let frame = null;
  let message = null; // [key, vars]
  let loadSeq = 0;

  function setState(state) {
    elements.bar.dataset.state = state;
  }

  function showMessage(key, vars = {}) {
    message = key ? [key, vars] : null;
    elements.message.textContent = key ? t(key, vars) : "";
    elements.message.hidden = !key;
  }

  function fillWorkers(selected) {
    const list = [...workers()].sort((a, b) =>
      String(a.name ?? a.id).localeCompare(String(b.name ?? b.id), "zh-CN"),
    );
    const keep = selected ?? elements.worker.value;
    elements.worker.replaceChildren(
      ...list.map((w) => {
        const option = el("option", "", w.name && w.name !== w.id ? `${w.name} (${w.id})` : w.id);
        option.value = w.id;
        return option;
      }),
    );
    if (keep && !list.some((w) => w.id === keep)) {
      const option = el("option", "", keep);
      option.value = keep;
      elements.worker.append(option);
    }
    if (keep) elements.worker.value = keep;
  }

  /** Open the bar (for `workerId` if given) with the default range: the last hour. */
  function open(workerId = null) {
    fillWorkers(workerId);
    const end = Date.now() / 1000;
    elements.from.value = toInputValue(end - DEFAULT_RANGE_S);
    elements.to.value = toInputValue(end);
    elements.bar.hidden = false;
    elements.open.setAttribute("aria-pressed", "true");
    if (workerId) load();
  }

  function close() {
    pause();
    loadSeq += 1;
    track = null;
    now = null;
    layer.replaceChildren();
    elements.bar.hidden = true;
    elements.open.setAttribute("aria-pressed", "false");
    showMessage(null);
    setState("idle");
    renderControls();
  }

  async function load() {
    const worker = elements.worker.value;
    const from = fromInputValue(elements.from.value);
    const to = fromInputValue(elements.to.value);
    pause();
    if (!worker) {
      showMessage("track.pick_worker");
      return;
    }
    if (!(from < to)) {
      showMessage("track.bad_range");
      return;
    }
    const seq = ++loadSeq;
    setState("loading");
    showMessage("track.loading");
    let feature;
    try {
      feature = await getJson(`/api/v1/workers/${encodeURIComponent(worker)}/track`, token, {
        from: from.toFixed(3),
        to: to.toFixed(3),
      });
    } catch (err) {
      if (seq !== loadSeq) return;
      if (err instanceof ApiError && err.unauthorized) {
        onAuthFailure(err);
        return;
      }
      track = null;
      draw();
      setState("error");
      showMessage("track.load_failed", { message: err.message });
      return;
    }
    if (seq !== loadSeq) return;
    const geometry = feature?.geometry;
    const times = feature?.properties?.times ?? [];
    let coords = [];
    if (geometry?.type === "LineString") coords = geometry.coordinates;
    else if (geometry?.type === "Point") coords = [geometry.coordinates];
    const name = elements.worker.selectedOptions[0]?.textContent ?? worker;
    if (!coords.length || coords.length !== times.length) {
      track = null;
      draw();
      setState("empty");
      showMessage("track.empty");
      return;
    }
    track = { worker, name, times, coords, properties: feature.properties };
    now = times[0];
    showMessage(null);
    setState("ready");
    draw();
  }

  /** Draw the line and place the marker for `now` (again after a projection change). */
  function draw() {
    layer.replaceChildren();
    if (!track) {
      renderControls();
      return;
    }
    const points = track.coords.map(([lon, lat]) => overlay.project(lon, lat));
    if (points.some((p) => p === null)) return; // no projection yet: drawn once there is
    const line = svg("polyline", {
      class: "track-line",
      points: points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "),
      "data-worker-id": track.worker,
    });
    const [sx, sy] = points[0];
    const [ex, ey] = points[points.length - 1];
    const startDot = svg("circle", { class: "track-end track-start", r: 4, cx: sx, cy: sy });
    const endDot = svg("circle", { class: "track-end track-stop", r: 4, cx: ex, cy: ey });
    const marker = svg("circle", {
      class: "track-marker",
      r: MARKER_RADIUS,
      "data-worker-id": track.worker,
    });
    layer.append(line, startDot, endDot, marker);
    placeMarker();
    renderControls();
  }

  function placeMarker() {
    const marker = layer.querySelector(".track-marker");
    if (!track || !marker) return;
    const [lon, lat] = positionAt(track.times, track.coords, now);
    const point = overlay.project(lon, lat);
    if (!point) return;
    marker.setAttribute("cx", point[0].toFixed(1));
    marker.setAttribute("cy", point[1].toFixed(1));
    marker.dataset.time = String(now);
  }

  function formatClock(seconds) {
    return new Intl.DateTimeFormat(locale(), {
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hour12: false,
    }).format(new Date(seconds * 1000));
  }

  function renderControls() {
    const ready = track !== null;
    elements.play.disabled = !ready || track.times.length < 2;
    elements.slider.disabled = !ready || track.times.length < 2;
    elements.play.textContent = t(playing ? "track.pause" : "track.play");
    elements.play.setAttribute("aria-pressed", String(playing));
    if (!ready) {
      elements.slider.min = "0";
      elements.slider.max = "0";
      elements.slider.value = "0";
      elements.time.textContent = "—";
      elements.summary.textContent = "";
      return;
    }
    const first = track.times[0];
    const last = track.times[track.times.length - 1];
    // The slider counts seconds from the first fix: a range input keeps too few digits for
    // Unix times to land exactly on the last fix.
    elements.slider.min = "0";
    elements.slider.max = String(last - first);
    elements.slider.value = String(now - first);
    elements.time.textContent = formatClock(now);
    elements.time.dataset.time = String(now);
    const props = track.properties ?? {};
    elements.summary.textContent = t("track.summary", {
      points: props.point_count ?? track.times.length,
      km: ((props.distance_m ?? 0) / 1000).toFixed(2),
      minutes: Math.round((props.duration_s ?? last - first) / 60),
    });
  }

  function tick(timestamp) {
    frame = null;
    if (!playing || !track) return;
    const speed = Number(elements.speed.value) || 1;
    if (lastFrame !== null) now += ((timestamp - lastFrame) / 1000) * speed;
    lastFrame = timestamp;
    const last = track.times[track.times.length - 1];
    if (now >= last) {
      now = last;
      pause();
      setState("ended");
    }
    placeMarker();
    renderControls();
    if (playing) frame = requestAnimationFrame(tick);
  }

  function play() {
    if (!track || track.times.length < 2) return;
    if (now >= track.times[track.times.length - 1]) now = track.times[0]; // again from the start
    playing = true;
    lastFrame = null;
    setState("playing");
    renderControls();
    frame = requestAnimationFrame(tick);
  }

  function pause() {
    if (frame !== null) cancelAnimationFrame(frame);
    frame = null;
    if (playing) {
      playing = false;
      if (track) setState("ready");
    }
    renderControls();
  }

  elements.open.addEventListener("click", () => (elements.bar.hidden ? open() : close()));
  elements.close.addEventListener("click", close);
  elements.form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  elements.play.addEventListener("click", () => (playing ? pause() : play()));
  elements.slider.addEventListener("input", () => {
    if (!track) return;
    const first = track.times[0];
    const last = track.times[track.times.length - 1];
    const offset = Number(elements.slider.value);
    now = offset >= last - first ? last : first + Math.max(0, offset);
    lastFrame = null;
    placeMarker();
    renderControls();
  });
  elements.speed.replaceChildren(
    ...SPEEDS.map((speed) => {
      const option = el("option", "", `${speed}×`);
      option.value = String(speed);
      return option;
    }),
  );
  const stopProjection = overlay.onProjection(draw);
  const stopLang = onLangChange(() => {
    renderControls();
    if (message) showMessage(...message);
  });
  setState("idle");
  renderControls();

  return {
    open,
    close,
    destroy() {
      pause();
      stopProjection();
      stopLang();
      layer.replaceChildren();
    },
  };
}
