// The hub's HTTP API: JSON GETs with the bearer token, a timeout, and errors as ApiError
// carrying the hub's machine-readable code ({"error": {"code", "message"}}).

const TIMEOUT_MS = 15000;

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

/** GET `path` (with `params` as the query) and return the parsed JSON body. */
export async function getJson(path, token, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const code = err.name === "TimeoutError" ? "error.timeout" : "error.network";
    throw new ApiError(0, code, err.message);
  }
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
