/**
 * Deadlines by key in an indexed binary min-heap: set/cancel O(log n), next O(1), ties broken
 * by the order of the last `set`. Each key owns one entry that moves in place: setting a
 * deadline again (every keep-alive moves one) allocates nothing, and nothing stale stays behind.
 * The protocol machines use it to answer "when do you next need to run?" without timers.
 */
interface Entry {
  readonly key: string;
  at: number;
  gen: number;
  /** Index in the heap array. */
  pos: number;
}

export class TimerQueue {
  private heap: Entry[] = [];
  private byKey = new Map<string, Entry>();
  private gen = 0;

  get size(): number {
    return this.byKey.size;
  }

  /** Sets (or moves) the deadline of `key`; `undefined` cancels it. */
  set(key: string, at: number | undefined): void {
    if (at === undefined) {
      this.cancel(key);
      return;
    }
    const e = this.byKey.get(key);
    if (!e) {
      const n: Entry = { key, at, gen: ++this.gen, pos: this.heap.length };
      this.byKey.set(key, n);
      this.heap.push(n);
      this.up(n.pos);
      return;
    }
    if (e.at === at) return;
    e.at = at;
    e.gen = ++this.gen;
    this.up(e.pos);
    this.down(e.pos);
  }

  cancel(key: string): void {
    const e = this.byKey.get(key);
    if (!e) return;
    this.byKey.delete(key);
    this.removeAt(e.pos);
  }

  get(key: string): number | undefined {
    return this.byKey.get(key)?.at;
  }

  /** Earliest deadline. */
  next(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Removes and returns the keys due at or before `now`, earliest first (ties by last set). */
  popDue(now: number): string[] {
    const out: string[] = [];
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > now) break;
      this.byKey.delete(top.key);
      this.removeAt(0);
      out.push(top.key);
    }
    return out;
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.gen < b.gen);
  }

  private place(e: Entry, i: number): void {
    this.heap[i] = e;
    e.pos = i;
  }

  private removeAt(i: number): void {
    const h = this.heap;
    const last = h.pop()!;
    if (i >= h.length) return;
    this.place(last, i);
    this.up(i);
    this.down(last.pos);
  }

  private up(i: number): void {
    const h = this.heap;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!this.less(e, parent)) break;
      this.place(parent, i);
      i = p;
    }
    this.place(e, i);
  }

  private down(i: number): void {
    const h = this.heap;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && this.less(h[r]!, h[l]!) ? r : l;
      if (!this.less(h[c]!, e)) break;
      this.place(h[c]!, i);
      i = c;
    }
    this.place(e, i);
  }
}
