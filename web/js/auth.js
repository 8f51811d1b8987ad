// The sign-in token: taken from ?token= or the sign-in form, kept in sessionStorage (gone
// when the tab closes), decoded for display only. The hub verifies it on every request.

const STORAGE_KEY = "gridhub.token";

/** Move a ?token= from the address bar into sessionStorage, and out of the URL and history. */
export function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) return;
  url.searchParams.delete("token");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  if (token.trim()) storeToken(token);
}

/** The stored token, or null. */
export function storedToken() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function storeToken(token) {
  sessionStorage.setItem(STORAGE_KEY, token.trim());
}

export function clearToken() {
  sessionStorage.removeItem(STORAGE_KEY);
}

function base64UrlDecode(segment) {
  const base64 = segment.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/**
 * The token's claims as {user, org, roles, exp}, without verifying the signature (the hub
 * does that). Throws Error for anything that is not a JWT with the hub's claims.
 */
export function decodeToken(token) {
  const parts = token.trim().split(".");
  if (parts.length !== 3) throw new Error("not a JWT");
  let claims;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    throw new Error("unreadable JWT payload");
  }
  if (typeof claims !== "object" || claims === null || typeof claims.sub !== "string") {
    throw new Error("JWT without a subject");
  }
  if (typeof claims.org !== "string" || !claims.org) throw new Error("JWT without an org");
  return {
    user: claims.sub,
    org: claims.org,
    roles: Array.isArray(claims.roles) ? claims.roles.filter((r) => typeof r === "string") : [],
    exp: typeof claims.exp === "number" ? claims.exp : null,
  };
}

/** True when the claims' expiry has passed. */
export function isExpired(claims, nowSeconds = Date.now() / 1000) {
  return claims.exp !== null && claims.exp <= nowSeconds;
}
