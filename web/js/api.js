// The hub's HTTP API: JSON GETs with the bearer token, a timeout, and errors as ApiError
// carrying the hub's machine-readable code ({"error": {"code", "message"}}).

const TIMEOUT_MS = 30000;

/** A failed API call: HTTP status (0 for network failures) and the hub's error code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** True when signing in again is the way out (missing, invalid or expired token). */
  get unauthorized() {
    return this.status === 401;
  }

  get expired() {
    return this.code === "auth.token_expired";
  }
}

/**
 * Call the API: `init` is fetch's, plus `params` (the query) and `raw` (return the
 * Response itself when it is OK, e.g. for bytes). JSON bodies come back parsed; a refusal or
 * a network failure is thrown as ApiError with the hub's code and message.
 */
export async function request(path, token, { params = {}, raw = false, ...init } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, {
      ...init,
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json", ...init.headers },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const code = err.name === "TimeoutError" ? "error.timeout" : "error.network";
    throw new ApiError(0, code, err.message);
  }
  if (raw && response.ok) return response;
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

/** GET `path` (with `params` as the query) and return the parsed JSON body. */
export function getJson(path, token, params = {}) {
  return request(path, token, { params });
}

/** POST `body` as JSON to `path`; the parsed JSON answer. */
export function postJson(path, token, body) {
  return request(path, token, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}
