// The cases REST API (hub/api/cases.py) as the console uses it: JSON reads through api.js,
// JSON and multipart writes, attachment bytes as object URLs (downloads need the bearer token,
// so an <img src> or <a href> cannot fetch them directly).

import { ApiError, getJson } from "./api.js";

const TIMEOUT_MS = 30000;
const CASES = "/api/v1/cases";

async function send(path, token, init) {
  let response;
  try {
    response = await fetch(new URL(path, window.location.origin), {
      ...init,
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json", ...init.headers },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const code = err.name === "TimeoutError" ? "error.timeout" : "error.network";
    throw new ApiError(0, code, err.message);
  }
  if (init.raw && response.ok) return response;
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null; // not JSON: reported below by status
  }
  if (!response.ok) {
    const error = body?.error ?? {};
    throw new ApiError(
      response.status,
      error.code ?? `http.${response.status}`,
      error.message ?? response.statusText,
    );
  }
  return body;
}

/** The case endpoints bound to a token. */
export function caseApi(token) {
  const one = (id) => `${CASES}/${encodeURIComponent(id)}`;
  return {
    list: (params) => getJson(CASES, token, params),
    get: (id) => getJson(one(id), token),
    categories: () => getJson(`${CASES}/categories`, token),
    users: (org) => getJson("/api/v1/users", token, { org, active: true, limit: 500 }),
    orgNodes: () => getJson("/api/v1/org/nodes", token),
    report: (body) =>
      send(CASES, token, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }),
    act: (id, body) =>
      send(`${one(id)}/actions`, token, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }),
    upload(id, file) {
      const form = new FormData();
      form.append("file", file, file.name);
      return send(`${one(id)}/attachments`, token, { method: "POST", body: form });
    },
    /** An attachment's bytes as an object URL (the caller revokes it). */
    async attachmentUrl(url) {
      const response = await send(url, token, { method: "GET", raw: true });
      return URL.createObjectURL(await response.blob());
    },
  };
}

/** The message to show for a refused or failed call: the server's own words. */
export function errorText(err) {
  return err?.message || err?.code || String(err);
}
