// The cases REST API (hub/api/cases.py) as the console uses it, through api.js: JSON reads
// and writes, multipart uploads, attachment bytes as object URLs (downloads need the bearer token,
// so an <img src> or <a href> cannot fetch them directly).

import { getJson, postJson, request } from "./api.js";

const CASES = "/api/v1/cases";

/** The case endpoints bound to a token. */
export function caseApi(token) {
  const one = (id) => `${CASES}/${encodeURIComponent(id)}`;
  return {
    list: (params) => getJson(CASES, token, params),
    get: (id) => getJson(one(id), token),
    categories: () => getJson(`${CASES}/categories`, token),
    users: (org) => getJson("/api/v1/users", token, { org, active: true, limit: 500 }),
    orgNodes: () => getJson("/api/v1/org/nodes", token),
    report: (body) => postJson(CASES, token, body),
    act: (id, body) => postJson(`${one(id)}/actions`, token, body),
    upload(id, file) {
      const form = new FormData();
      form.append("file", file, file.name);
      return request(`${one(id)}/attachments`, token, { method: "POST", body: form });
    },
    /** An attachment's bytes as an object URL (the caller revokes it). */
    async attachmentUrl(url) {
      const response = await request(url, token, { raw: true });
      return URL.createObjectURL(await response.blob());
    },
  };
}

/** The message to show for a refused or failed call: the server's own words. */
export function errorText(err) {
  return err?.message || err?.code || String(err);
}
