// Small charts as inline SVG (no chart library: the console loads nothing from outside the
// hub): a horizontal bar chart and a donut chart. Each chart is an <svg role="img"> with a
// <title> and a <desc> summing it up, and a <title> on each bar or segment (its tooltip).

const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 480;
const BAR = { height: 22, gap: 8, label: 170, value: 56, top: 8 };
const DONUT = { height: 220, cx: 110, cy: 110, outer: 96, inner: 58, legendX: 236, row: 22 };
const FALLBACK_COLOURS = ["#3fa7ff", "#f5a623", "#2ecc71", "#b07cff", "#ff6b6b", "#4dd0c6"];

let chartIds = 0;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

/** The chart's frame: an accessible <svg> whose name is `title` and description `desc`. */
function frame(className, height, title, desc) {
  const id = `chart-${++chartIds}`;
  const root = svg("svg", {
    class: `chart ${className}`,
    viewBox: `0 0 ${WIDTH} ${height}`,
    role: "img",
    "aria-labelledby": `${id}-title ${id}-desc`,
    preserveAspectRatio: "xMinYMin meet",
  });
  root.append(svg("title", { id: `${id}-title` }, title), svg("desc", { id: `${id}-desc` }, desc));
  return root;
}

function shown(items) {
  return items
    .filter((item) => Number(item.value) > 0)
    .map((item, i) => ({ ...item, colour: item.colour ?? FALLBACK_COLOURS[i % 6] }));
}

const summary = (items, format) =>
  items.map((item) => `${item.label}: ${format(item.value)}`).join("; ");

function emptyChart(className, title, emptyText) {
  const root = frame(className, 60, title, emptyText);
  root.append(svg("text", { x: WIDTH / 2, y: 34, class: "chart-empty" }, emptyText));
  return root;
}

/** Cut `text` to `max` characters with an ellipsis (full text stays in the <title>). */
function clip(text, max) {
  const chars = [...String(text)];
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : String(text);
}

/**
 * A horizontal bar chart: one bar per item with a value above zero, longest first as given.
 * `items`: [{key, label, value, colour?}]; `format(value)` labels the values.
 */
export function barChart({ title, items, format = String, emptyText = "" }) {
  const bars = shown(items);
  if (!bars.length) return emptyChart("bar-chart", title, emptyText);
  const height = BAR.top * 2 + bars.length * (BAR.height + BAR.gap) - BAR.gap;
  const root = frame("bar-chart", height, title, summary(bars, format));
  const max = Math.max(...bars.map((bar) => bar.value));
  const span = WIDTH - BAR.label - BAR.value;
  bars.forEach((bar, i) => {
    const y = BAR.top + i * (BAR.height + BAR.gap);
    const width = Math.max(2, (bar.value / max) * span);
    const group = svg("g", { class: "chart-item", "data-key": bar.key });
    group.append(
      svg("title", {}, `${bar.label}: ${format(bar.value)}`),
      svg(
        "text",
        { x: BAR.label - 8, y: y + BAR.height / 2, class: "chart-label", "text-anchor": "end" },
        clip(bar.label, 18),
      ),
      svg("rect", {
        x: BAR.label,
        y,
        width: width.toFixed(1),
        height: BAR.height,
        rx: 3,
        fill: bar.colour,
        class: "chart-bar",
        "data-key": bar.key,
        "data-value": bar.value,
      }),
      svg(
        "text",
        { x: BAR.label + width + 6, y: y + BAR.height / 2, class: "chart-value" },
        format(bar.value),
      ),
    );
    root.append(group);
  });
  return root;
}

/** SVG path of a ring segment from angle a0 to a1 (radians, clockwise from 12 o'clock). */
function arc(a0, a1) {
  const { cx, cy, outer, inner } = DONUT;
  const at = (r, a) => `${(cx + r * Math.sin(a)).toFixed(2)},${(cy - r * Math.cos(a)).toFixed(2)}`;
  const large = a1 - a0 > Math.PI ? 1 : 0;
  return (
    `M${at(outer, a0)}A${outer},${outer} 0 ${large} 1 ${at(outer, a1)}` +
    `L${at(inner, a1)}A${inner},${inner} 0 ${large} 0 ${at(inner, a0)}Z`
  );
}

/**
 * A donut chart with its legend: one segment per item with a value above zero, the total in
 * the middle. `items`: [{key, label, value, colour?}]; `format(value)` labels the values.
 */
export function donutChart({ title, items, format = String, emptyText = "", totalLabel = "" }) {
  const segments = shown(items);
  if (!segments.length) return emptyChart("donut-chart", title, emptyText);
  const total = segments.reduce((sum, item) => sum + item.value, 0);
  const legendHeight = segments.length * DONUT.row + 16;
  const height = Math.max(DONUT.height, legendHeight);
  const root = frame("donut-chart", height, title, summary(segments, format));
  const percent = (value) => `${((value / total) * 100).toFixed(1)}%`;
  let angle = 0;
  segments.forEach((item, i) => {
    const sweep = (item.value / total) * 2 * Math.PI;
    // A full ring cannot be one arc (its ends coincide): draw it as two halves.
    const d =
      segments.length === 1
        ? `${arc(0, Math.PI)}${arc(Math.PI, 2 * Math.PI)}`
        : arc(angle, angle + sweep);
    angle += sweep;
    const label = `${item.label}: ${format(item.value)} (${percent(item.value)})`;
    const segment = svg("path", {
      d,
      fill: item.colour,
      class: "chart-segment",
      "data-key": item.key,
      "data-value": item.value,
    });
    segment.append(svg("title", {}, label));
    const y = 16 + i * DONUT.row;
    const legend = svg("g", { class: "chart-legend-item", "data-key": item.key });
    legend.append(
      svg("rect", { x: DONUT.legendX, y: y - 6, width: 12, height: 12, rx: 2, fill: item.colour }),
      svg("text", { x: DONUT.legendX + 20, y, class: "chart-label" }, clip(item.label, 14)),
      svg(
        "text",
        { x: WIDTH - 4, y, class: "chart-value", "text-anchor": "end" },
        `${format(item.value)} · ${percent(item.value)}`,
      ),
    );
    root.append(segment, legend);
  });
  root.append(
    svg("text", { x: DONUT.cx, y: DONUT.cy - 4, class: "chart-total" }, format(total)),
    svg("text", { x: DONUT.cx, y: DONUT.cy + 16, class: "chart-total-label" }, totalLabel),
  );
  return root;
}
