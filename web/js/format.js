// Small display helpers shared by the panels.

import { locale, t } from "./i18n.js";

const DAY_MS = 24 * 3600 * 1000;

/** A time as HH:MM:SS when it is today, else as MM-DD HH:MM (local time). */
export function formatTime(value) {
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return "—";
  const sameDay =
    Math.abs(Date.now() - date.getTime()) < DAY_MS && new Date().getDate() === date.getDate();
  const options = sameDay
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }
    : { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false };
  return new Intl.DateTimeFormat(locale(), options).format(date);
}

/** Battery level as "85%", or a dash when unknown. */
export function formatBattery(pct) {
  return typeof pct === "number" && Number.isFinite(pct) ? `${Math.round(pct)}%` : "—";
}

/** An element with a class and text (never HTML: event data comes from outside). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** An element whose text is the translation of `key` and follows the language
 * (applyStatic in i18n.js refreshes every data-i18n). */
export function i18nText(tag, className, key) {
  const node = el(tag, className, t(key));
  node.dataset.i18n = key;
  return node;
}

/** A form field: `input` under its translated label. */
export function labelled(key, input) {
  const wrap = el("label", "case-input");
  wrap.append(i18nText("span", "case-input-label", key), input);
  return wrap;
}
