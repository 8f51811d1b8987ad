// The arithmetic of track playback: where a worker was at a time between two fixes, and
// the <input type="datetime-local"> values of Unix times (local time, to the second).

/** Index of the last fix at or before `time` (binary search; times ascend). */
export function segmentAt(times, time) {
  let lo = 0;
  let hi = times.length - 1;
  if (time <= times[0]) return 0;
  if (time >= times[hi]) return hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (times[mid] <= time) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** [lon, lat] at `time`: linear in time between the two fixes around it, clamped to the ends. */
export function positionAt(times, coords, time) {
  const i = segmentAt(times, time);
  if (i >= coords.length - 1) return coords[coords.length - 1];
  const [t0, t1] = [times[i], times[i + 1]];
  const f = t1 > t0 ? Math.min(1, Math.max(0, (time - t0) / (t1 - t0))) : 0;
  const [lon0, lat0] = coords[i];
  const [lon1, lat1] = coords[i + 1];
  return [lon0 + (lon1 - lon0) * f, lat0 + (lat1 - lat0) * f];
}

const pad = (n) => String(n).padStart(2, "0");

/** A Unix time as a datetime-local value ("YYYY-MM-DDTHH:MM:SS", local time). */
export function toInputValue(seconds) {
  const d = new Date(seconds * 1000);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** A datetime-local value as Unix seconds (NaN when empty or invalid). */
export function fromInputValue(value) {
  return value ? new Date(value).getTime() / 1000 : NaN;
}
