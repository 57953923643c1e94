/**
 * Deadlines by key in a binary min-heap with lazy deletion: set/cancel O(log n), next O(1).
 * The protocol machines use it to answer "when do you next need to run?" without timers.
 */
import { MinHeap } from './heap.js';

interface Entry {
  readonly at: number;
  readonly key: string;
  readonly gen: number;
}

function earlier(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.gen < b.gen);
}

export class TimerQueue {
  private heap = new MinHeap<Entry>(earlier);
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
    this.heap.push({ at, key, gen });
    // Keep the heap from growing without bound under many moves of the same keys.
    if (this.heap.size > 64 && this.heap.size > 4 * this.live.size) this.rebuild();
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
    return this.heap.peek()?.at;
  }

  /** Removes and returns the keys due at or before `now`, earliest first (ties by insertion). */
  popDue(now: number): string[] {
    const out: string[] = [];
    for (;;) {
      this.prune();
      const top = this.heap.peek();
      if (!top || top.at > now) break;
      this.heap.pop();
      this.live.delete(top.key);
      out.push(top.key);
    }
    return out;
  }

  private prune(): void {
    for (;;) {
      const top = this.heap.peek();
      if (!top) return;
      const l = this.live.get(top.key);
      if (l && l.gen === top.gen) return;
      this.heap.pop();
    }
  }

  private rebuild(): void {
    this.heap.reset([...this.live.entries()].map(([key, v]) => ({ at: v.at, key, gen: v.gen })));
  }
}
