// Small LRU map with hit/miss counters (used for the compiled-expression cache).
// A JS Map keeps insertion order, so "most recently used" = re-inserted last.

export class LruMap<K, V> {
  readonly capacity: number;
  hits = 0;
  misses = 0;
  private readonly map = new Map<K, V>();

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`LRU capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.map.size;
  }

  /** Looks up a key, counting a hit or a miss, and marks it most recently used. */
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  /** Reads without counting or reordering. */
  peek(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V): this {
    if (this.map.has(key)) this.map.delete(key);
    else if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value as K);
    this.map.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  resetStats(): void {
    this.hits = 0;
    this.misses = 0;
  }

  keys(): IterableIterator<K> {
    return this.map.keys();
  }
}
