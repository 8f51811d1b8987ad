// The hub's camera API as the console uses it: the list, WHEP live view (SDP offer in,
// SDP answer and a session URL out), snapshots as blobs and recordings.

import { getJson, postJson, request } from "./api.js";

/** The largest page GET /api/v1/cameras serves. */
const PAGE_LIMIT = 500;
/** Pages read at most: the console shows at most this many thousand cameras. */
const MAX_PAGES = 10;
/** Seconds a "record" button press asks the hub to record. */
export const RECORD_SECONDS = 30;

const base = (id) => `/api/v1/cameras/${encodeURIComponent(id)}`;

/** The camera calls signed with `token`. */
export function cameraApi(token) {
  return {
    /** Every camera of the caller's subtree (all pages). */
    async list() {
      const items = [];
      let cursor;
      for (let page = 0; page < MAX_PAGES; page++) {
        const answer = await getJson("/api/v1/cameras", token, { limit: PAGE_LIMIT, cursor });
        items.push(...(answer.items ?? []));
        cursor = answer.next_cursor;
        if (!cursor) break;
      }
      return items;
    },

    /** POST the SDP offer (WHEP): {answer, location}. Refusals throw ApiError. */
    async whep(id, offer) {
      const response = await request(`${base(id)}/whep`, token, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Accept: "application/sdp" },
        body: offer,
        raw: true,
      });
      return { answer: await response.text(), location: response.headers.get("Location") };
    },

    /** DELETE a WHEP session (its Location); survives the page being closed. */
    async leave(location) {
      if (!location) return;
      await request(location, token, { method: "DELETE", raw: true, keepalive: true });
    },

    /** The latest picture as a Blob (image/jpeg). */
    async snapshot(id) {
      const response = await request(`${base(id)}/snapshot.jpg`, token, {
        headers: { Accept: "image/jpeg" },
        raw: true,
      });
      return response.blob();
    },

    /** Ask the hub to record the next `seconds`; the hub's answer. */
    record(id, seconds = RECORD_SECONDS) {
      return postJson(`${base(id)}/recordings`, token, { seconds });
    },
  };
}
