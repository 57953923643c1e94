/**
 * Deadlines by key in a binary min-heap with lazy deletion: set/cancel O(log n), next O(1).
 * The protocol machines use it to answer "when do you next need to run?" without timers.
 */
export class TimerQueue {
  private heap: { at: number; key: string; gen: number }[] = [];
  private live = new Map<string, { at: number; gen: number }>();
  private gen = 0;

  get size(): number {
    return this.live.size;
  }

  /** Sets (or moves) the deadline of `key`; `undefined` cancels it. */
  set(key: string, at: number | undefined): void {
    if (at === undefined) {
      this.live.delete(key);
      return;
    }
    const cur = this.live.get(key);
    if (cur && cur.at === at) return;
    const gen = ++this.gen;
    this.live.set(key, { at, gen });
    this.push({ at, key, gen });
  }

  cancel(key: string): void {
    this.live.delete(key);
  }

  get(key: string): number | undefined {
    return this.live.get(key)?.at;
  }

  /** Earliest live deadline. */
  next(): number | undefined {
    this.prune();
    return this.heap[0]?.at;
  }

  /** Removes and returns the keys due at or before `now`, earliest first (ties by insertion). */
  popDue(now: number): string[] {
    const out: string[] = [];
    for (;;) {
      this.prune();
      const top = this.heap[0];
      if (!top || top.at > now) break;
      this.pop();
      this.live.delete(top.key);
      out.push(top.key);
    }
    return out;
  }

  private prune(): void {
    for (;;) {
      const top = this.heap[0];
      if (!top) return;
      const l = this.live.get(top.key);
      if (l && l.gen === top.gen) return;
      this.pop();
    }
  }

  private less(a: { at: number; gen: number }, b: { at: number; gen: number }): boolean {
    return a.at < b.at || (a.at === b.at && a.gen < b.gen);
  }

  private push(e: { at: number; key: string; gen: number }): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
    // Keep the heap from growing without bound under many moves of the same keys.
    if (h.length > 64 && h.length > 4 * this.live.size) this.rebuild();
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }

  private rebuild(): void {
    const entries = [...this.live.entries()].map(([key, v]) => ({ at: v.at, key, gen: v.gen }));
    entries.sort((a, b) => (this.less(a, b) ? -1 : 1));
    this.heap = entries; // a sorted array is a valid min-heap
  }
}
