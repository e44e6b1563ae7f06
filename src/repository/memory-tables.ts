/**
 * Storage primitives of `MockRepository`: a table is a map of immutable rows, and a transaction
 * is an overlay that records its own writes and applies them row by row on commit — so a commit
 * never overwrites rows the transaction did not touch (go-hookd's mock replaced the whole
 * parent state, losing concurrent writes).
 */

/** The map operations a repository needs; a `Map` satisfies it. */
export interface Table<K, V> {
  get(key: K): V | undefined;
  has(key: K): boolean;
  set(key: K, value: V): unknown;
  delete(key: K): boolean;
  values(): IterableIterator<V>;
}

const DELETED = Symbol('deleted');

/** A transaction's view of a table: its own writes over the shared rows. */
export class OverlayTable<K, V> implements Table<K, V> {
  readonly #base: Map<K, V>;
  readonly #changes = new Map<K, V | typeof DELETED>();

  constructor(base: Map<K, V>) {
    this.#base = base;
  }

  get(key: K): V | undefined {
    if (this.#changes.has(key)) {
      const value = this.#changes.get(key);
      return value === DELETED ? undefined : value;
    }
    return this.#base.get(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  set(key: K, value: V): this {
    this.#changes.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    const existed = this.has(key);
    this.#changes.set(key, DELETED);
    return existed;
  }

  *values(): IterableIterator<V> {
    for (const [key, value] of this.#base) {
      if (!this.#changes.has(key)) yield value;
    }
    for (const value of this.#changes.values()) {
      if (value !== DELETED) yield value;
    }
  }

  /** Applies this transaction's writes to the shared table. */
  commitInto(): void {
    for (const [key, value] of this.#changes) {
      if (value === DELETED) this.#base.delete(key);
      else this.#base.set(key, value);
    }
    this.#changes.clear();
  }
}
