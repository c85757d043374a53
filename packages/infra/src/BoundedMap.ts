/**
 * An in-memory cache's one rule, written once: a `Map` that holds at most `limit` entries, the
 * oldest (first inserted) dropped to make room. A `Map` iterates in insertion order, so its first
 * key is the oldest.
 */

/** Sets `key` in `map`, first dropping the oldest entry when `map` already holds `limit`; a `limit` of 0 keeps nothing. */
export const setBounded = <K, V>(map: Map<K, V>, key: K, value: V, limit: number): void => {
  if (limit <= 0) return
  if (!map.has(key) && map.size >= limit) map.delete(map.keys().next().value as K)
  map.set(key, value)
}
