// The leaders' statistics page (案件统计): GET /api/v1/cases/stats for a date range and a
// breakdown level; the overall KPIs, cases by state (donut) and by category (bars), and the
// org ranking by on-time closure rate (按期办结率). A report, not a live view: fetched when the
// page opens, when the range or level changes, and on the refresh button.

import { getJson } from "./api.js";
import { errorText } from "./case_api.js";
import { STATES, stateLabel } from "./case_rules.js";
import { barChart, donutChart } from "./charts.js";
import { el } from "./format.js";
import { onLangChange, t } from "./i18n.js";

const STATS = "/api/v1/cases/stats";
/** Roles the hub serves the statistics to (hub/api/case_stats.py STATS_ROLES). */
export const STATS_ROLES = ["leader", "dispatcher", "admin", "department"];
const LEVELS = ["district", "street", "community", "grid"];
const DEFAULT_DAYS = 30;
const STATE_COLOURS = {
  reported: "#3fa7ff",
  registered: "#6c8cff",
  rejected: "#8a96a3",
  assigned: "#f5a623",
  handling: "#ff8c42",
  fed_back: "#ffc857",
  closed: "#2ecc71",
  evaluated: "#1abc9c",
};
const KPIS = ["total", "closed", "closure_rate", "on_time_rate", "satisfaction"];

/** True when `claims` may see the statistics. */
export const maySeeStats = (claims) => claims.roles.some((role) => STATS_ROLES.includes(role));

/** A rate (0–1) as a percentage with one decimal; a dash when there is none. */
export const formatRate = (rate) =>
  typeof rate === "number" ? `${(rate * 100).toFixed(1)}%` : "—";
/** An average satisfaction (1–5) with two decimals; a dash when nobody rated. */
export const formatScore = (score) => (typeof score === "number" ? score.toFixed(2) : "—");

const pad = (n) => String(n).padStart(2, "0");
const isoDate = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

/** Local midnight of an ISO date, with the local UTC offset (the hub reads UTC otherwise). */
function localMidnight(value, addDays = 0) {
  const [y, m, d] = value.split("-").map(Number);
  const date = new Date(y, m - 1, d + addDays);
  const offset = -date.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return `${isoDate(date)}T00:00:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/**
 * The page. `elements`: {form (from, to, level, refresh), scope, error, kpis, stateChart,
 * categoryChart, ranking (table)}; `options`: {token, claims, orgName(path), categories()}.
 */
export function createCaseStats(elements, { token, claims, orgName, categories }) {
  const form = elements.form;
  const depth = claims.org.split(".").length;
  let stats = null;
  let generation = 0;
  let loaded = false;
  let stopped = false;
  let failure = null; // [key, vars] of the message shown

  // The breakdown can be the org's own level or any below it (never above: the hub says 400).
  for (const option of [...form.elements.level.options]) {
    option.hidden = option.disabled = LEVELS.indexOf(option.value) + 1 < depth;
  }
  form.elements.level.value = LEVELS[Math.min(depth, LEVELS.length - 1)];
  const today = new Date();
  form.elements.to.value = isoDate(today);
  form.elements.from.value = isoDate(
    new Date(today.getFullYear(), today.getMonth(), today.getDate() - DEFAULT_DAYS),
  );

  function showError(key, vars = {}) {
    failure = key ? [key, vars] : null;
    elements.error.textContent = key ? t(key, vars) : "";
    elements.error.hidden = !key;
  }

  /** The query the form asks for; null when the range is not a range. */
  function query() {
    const { from, to, level } = form.elements;
    if (!from.value || !to.value || from.value > to.value) return null;
    // The end date is inclusive on the page, exclusive for the hub: its next midnight.
    return { from: localMidnight(from.value), to: localMidnight(to.value, 1), level: level.value };
  }

  async function load() {
    loaded = true;
    const params = query();
    if (!params) {
      showError("stats.bad_range");
      return;
    }
    const mine = ++generation;
    elements.root.dataset.loading = "true";
    try {
      const answer = await getJson(STATS, token, params);
      if (stopped || mine !== generation) return;
      stats = answer;
      showError(null);
      render();
    } catch (err) {
      if (!stopped && mine === generation) showError("stats.load_failed", { message: errorText(err) });
    } finally {
      if (mine === generation) delete elements.root.dataset.loading;
    }
  }

  function renderKpis() {
    const overall = stats.overall;
    const text = {
      total: String(overall.total),
      closed: String(overall.closed),
      closure_rate: formatRate(overall.closure_rate),
      on_time_rate: formatRate(overall.on_time_rate),
      satisfaction: formatScore(overall.satisfaction),
    };
    elements.kpis.replaceChildren(
      ...KPIS.map((name) => {
        const tile = el("div", `kpi kpi-${name}`);
        tile.dataset.kpi = name;
        tile.append(el("dt", "", t(`stats.kpi.${name}`)), el("dd", "", text[name]));
        return tile;
      }),
    );
  }

  function renderCharts() {
    const names = categories();
    const byState = STATES.map((state) => ({
      key: state,
      label: stateLabel(state),
      value: stats.by_state[state] ?? 0,
      colour: STATE_COLOURS[state],
    }));
    elements.stateChart.replaceChildren(
      donutChart({
        title: t("stats.chart.state"),
        items: byState,
        emptyText: t("stats.chart.empty"),
        totalLabel: t("stats.chart.total"),
      }),
    );
    const byCategory = Object.entries(stats.by_category)
      .map(([code, value]) => ({ key: code, label: names.label(code), value }))
      .sort((a, b) => b.value - a.value);
    elements.categoryChart.replaceChildren(
      barChart({
        title: t("stats.chart.category"),
        items: byCategory,
        emptyText: t("stats.chart.empty"),
      }),
    );
  }

  function renderRanking() {
    const rows = stats.by_org.map((org) => {
      const row = el("tr", org.rank === 1 ? "first" : "");
      row.dataset.org = org.org;
      row.append(
        el("td", "rank", org.rank ?? "—"),
        el("td", "org", org.name ?? orgName(org.org)),
        el("td", "num total", org.total),
        el("td", "num closed", org.closed),
        el("td", "num closure-rate", formatRate(org.closure_rate)),
        el("td", "num on-time-rate", formatRate(org.on_time_rate)),
        el("td", "num satisfaction", formatScore(org.satisfaction)),
      );
      return row;
    });
    elements.ranking.tBodies[0].replaceChildren(...rows);
    elements.rankingEmpty.hidden = rows.length > 0;
  }

  function render() {
    elements.scope.textContent = t("stats.scope", {
      org: orgName(stats.org),
      level: t(`stats.level.${stats.level}`),
    });
    renderKpis();
    renderCharts();
    renderRanking();
    elements.root.dataset.loaded = "true";
  }

  const listening = new AbortController();
  const { signal } = listening;
  form.addEventListener("change", () => load(), { signal });
  form.addEventListener("submit", (event) => event.preventDefault(), { signal });
  form.elements.refresh.addEventListener("click", () => load(), { signal });
  const stopLang = onLangChange(() => {
    if (stats) render();
    if (failure) showError(...failure);
  });

  return {
    /** The page was opened: fetch the first time (later only on changes or refresh). */
    show() {
      if (!loaded) load();
    },
    /** Names of categories arrived: re-render with them. */
    refresh() {
      if (stats) render();
    },
    destroy() {
      stopped = true;
      listening.abort();
      stopLang();
      showError(null);
      delete elements.root.dataset.loaded;
      elements.kpis.replaceChildren();
      elements.stateChart.replaceChildren();
      elements.categoryChart.replaceChildren();
      elements.ranking.tBodies[0].replaceChildren();
      elements.scope.textContent = "";
    },
  };
}
