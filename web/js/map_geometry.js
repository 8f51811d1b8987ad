// Map geometry shared by the map's layers: SVG element creation, the org levels of grid
// features, polygon rings and the equirectangular projection the map draws with.

const SVG_NS = "http://www.w3.org/2000/svg";
const VIEW_WIDTH = 1000;
const PADDING = 24;
export const LEVELS = ["district", "street", "community", "grid"];

/** An SVG element with these attributes. */
export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

/** The org level of a grid feature (its `level`, or the depth of its path). */
export function levelOf(feature) {
  const props = feature.properties ?? {};
  if (LEVELS.includes(props.level)) return props.level;
  const depth = String(props.path ?? "").split(".").length;
  return LEVELS[Math.min(depth, LEVELS.length) - 1];
}

/** The outer and inner rings of a Polygon or MultiPolygon, as arrays of [lon, lat]. */
export function ringsOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return geometry.coordinates;
  if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
  return [];
}

/** The SVG path data of a feature's rings under `projection`. */
export function pathData(feature, projection) {
  return ringsOf(feature.geometry)
    .map(
      (ring) =>
        "M" +
        ring
          .map(([lon, lat]) =>
            projection
              .project(lon, lat)
              .map((v) => v.toFixed(1))
              .join(","),
          )
          .join("L") +
        "Z",
    )
    .join("");
}

/** Equirectangular projection of a lon/lat box onto a VIEW_WIDTH-wide canvas. */
export class Projection {
  constructor(minLon, minLat, maxLon, maxLat) {
    const midLat = ((minLat + maxLat) / 2) * (Math.PI / 180);
    this.kx = Math.cos(midLat); // a degree of longitude is shorter than one of latitude
    this.minLon = minLon;
    this.maxLat = maxLat;
    const spanX = Math.max((maxLon - minLon) * this.kx, 1e-9);
    const spanY = Math.max(maxLat - minLat, 1e-9);
    this.scale = (VIEW_WIDTH - 2 * PADDING) / spanX;
    this.height = spanY * this.scale + 2 * PADDING;
  }

  static fit(points) {
    let minLon = Infinity;
    let minLat = Infinity;
    let maxLon = -Infinity;
    let maxLat = -Infinity;
    for (const [lon, lat] of points) {
      if (!Number.isFinite(lon) || !Number.isFinite(lat)) continue;
      minLon = Math.min(minLon, lon);
      maxLon = Math.max(maxLon, lon);
      minLat = Math.min(minLat, lat);
      maxLat = Math.max(maxLat, lat);
    }
    return minLon === Infinity ? null : new Projection(minLon, minLat, maxLon, maxLat);
  }

  project(lon, lat) {
    return [
      PADDING + (lon - this.minLon) * this.kx * this.scale,
      PADDING + (this.maxLat - lat) * this.scale,
    ];
  }

  viewBox() {
    return `0 0 ${VIEW_WIDTH} ${this.height.toFixed(1)}`;
  }
}
