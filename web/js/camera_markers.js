// Camera markers on the map (雪亮工程 点位): a camera glyph on a rounded square for every camera
// with a place, coloured by its status (offline greyed), flashing red for a while after an
// alarm, outlined while its player is open. Clicking one opens the camera.

import { onLangChange } from "./i18n.js";
import { svg } from "./map_geometry.js";

/** Half the width and height of the marker's square, in screen pixels: markers keep their
 * size however far the map's viewBox is scaled down to fit. */
const HALF_W = 11;
const HALF_H = 9;

function placed(camera) {
  return Number.isFinite(camera?.lat) && Number.isFinite(camera?.lon);
}

/** The glyph: a rounded square, the camera body and its lens. */
function glyph() {
  return [
    svg("rect", {
      class: "camera-marker-bg",
      x: -HALF_W,
      y: -HALF_H,
      width: 2 * HALF_W,
      height: 2 * HALF_H,
      rx: 4,
    }),
    svg("rect", { class: "camera-marker-glyph", x: -7, y: -4.5, width: 9, height: 9, rx: 1.5 }),
    svg("path", { class: "camera-marker-glyph", d: "M3,-1.5L7.5,-4.5V4.5L3,1.5Z" }),
  ];
}

/**
 * The markers. `overlay` is the map's overlay API (map.js); `describe(camera)` gives the
 * tooltip lines; `onOpen(id)` opens the camera. Feed it with `draw(camera)` / `remove(id)`.
 */
export function createCameraMarkers(overlay, { describe, onOpen }) {
  const cameras = new Map(); // id -> the camera as last drawn
  const markers = new Map(); // id -> <g>
  let scale = 1; // SVG units per screen pixel

  /** SVG units per screen pixel now (the last known one while the map is hidden). */
  function measure() {
    const ctm = overlay.cameraLayer.getScreenCTM?.();
    if (ctm && ctm.a > 0) scale = 1 / ctm.a;
    return scale;
  }

  function create(id) {
    const node = svg("g", { "data-camera-id": id, role: "button", tabindex: 0 });
    node.append(...glyph());
    node.addEventListener("mousemove", (event) => {
      const camera = cameras.get(id);
      if (camera) overlay.showTooltip(event, describe(camera));
    });
    node.addEventListener("mouseleave", overlay.hideTooltip);
    node.addEventListener("click", () => {
      overlay.hideTooltip();
      onOpen(id);
    });
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        onOpen(id);
      }
    });
    overlay.cameraLayer.append(node);
    return node;
  }

  /** Place or restyle the camera's marker (`camera.alarm` and `camera.open` are flags). */
  function draw(camera) {
    cameras.set(camera.id, camera);
    if (!markers.size) measure();
    const at = placed(camera) ? overlay.project(camera.lon, camera.lat) : null;
    let node = markers.get(camera.id);
    if (!at) {
      node?.remove();
      markers.delete(camera.id);
      return;
    }
    if (!node) {
      node = create(camera.id);
      markers.set(camera.id, node);
    }
    node.setAttribute(
      "transform",
      `translate(${at[0].toFixed(1)},${at[1].toFixed(1)}) scale(${scale.toFixed(3)})`,
    );
    const flags = `${camera.alarm ? " alarm" : ""}${camera.open ? " open" : ""}`;
    node.setAttribute("class", `camera-marker status-${camera.status}${flags}`);
    node.dataset.status = camera.status;
    node.setAttribute("aria-label", describe(camera).join(" · "));
  }

  function remove(id) {
    cameras.delete(id);
    markers.get(id)?.remove();
    markers.delete(id);
  }

  function redraw() {
    measure();
    for (const camera of cameras.values()) draw(camera);
  }

  const stopProjection = overlay.onProjection(redraw);
  const stopLang = onLangChange(redraw);
  const resized = new ResizeObserver(redraw);
  if (overlay.cameraLayer.ownerSVGElement) resized.observe(overlay.cameraLayer.ownerSVGElement);

  return {
    draw,
    remove,
    /** Forget every marker (before a full reload). */
    clear() {
      for (const id of [...cameras.keys()]) remove(id);
    },
    destroy() {
      resized.disconnect();
      stopProjection();
      stopLang();
      overlay.cameraLayer.replaceChildren();
      cameras.clear();
      markers.clear();
    },
  };
}
