/** Reading a histogram out of a Prometheus exposition (the daemon's GET /metrics). */

/**
 * Cumulative bucket counts (`le` in seconds -> count, `+Inf` as Infinity) of histogram `name`,
 * summed over the series whose labels include every pair of `match`.
 */
export function histogramBuckets(
  text: string,
  name: string,
  match: Record<string, string>,
): Map<number, number> {
  const out = new Map<number, number>();
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const close = line.indexOf('}');
    const labels = new Map<string, string>();
    for (const m of line.slice(prefix.length, close).matchAll(/(\w+)="([^"]*)"/g))
      labels.set(m[1]!, m[2]!);
    if (!Object.entries(match).every(([k, v]) => labels.get(k) === v)) continue;
    const le = labels.get('le');
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    out.set(bound, (out.get(bound) ?? 0) + Number(line.slice(close + 1).trim()));
  }
  return out;
}

/**
 * Share (percent) of the observations made between two readings that were above each bound;
 * null when nothing was observed in between.
 */
export function shareAbove(
  before: Map<number, number>,
  after: Map<number, number>,
  bounds: readonly number[],
): { count: number; above: Record<string, number> } | null {
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total <= 0) return null;
  const above: Record<string, number> = {};
  for (const b of bounds) {
    const le = (after.get(b) ?? 0) - (before.get(b) ?? 0);
    above[`${b * 1000}ms`] = Math.round(((total - le) / total) * 10_000) / 100;
  }
  return { count: total, above };
}
